//! The sizes MQTT and our brokers and clients allow, checked before a run starts: a scenario
//! that cannot work is refused with the limit named, instead of looping until its time limit.
//!
//! ```text
//!  scenario file --parse--> topic: UTF-8, <= 65,535 bytes, no U+0000; will payload <= 65,535 B
//!  Scenario + broker --check--> willy's CONNECT and the will's PUBLISH <= the broker's maximum
//!                               packet and our clients' (and <= the spec's 268,435,455)
//! ```
//!
//! Sizes are remaining lengths (the packet after its fixed header), which is what both the
//! spec's maximum and rumqttd's `max_payload_size` measure.

use crate::broker::BrokerChoice;
use crate::mqtt::varint_len;
use crate::scenario::{Protocol, Scenario};

pub use crate::mqtt::{string_problem, will_payload_problem, MAX_FIELD_BYTES, SPEC_MAX_REMAINING};

/// What willy's and monit's rumqttc accept and send (its default is 10 KiB, which refused any
/// will over ~10 KB): room for the largest CONNECT a valid scenario can make (a 65,535-byte
/// will topic and payload) with margin.
pub const CLIENT_MAX_PACKET: usize = 256 * 1024;

/// The will's client id, as willy connects.
const CLIENT_ID: &str = "willy";

/// What rumqttc's clients accept unless told otherwise (incoming and outgoing).
const RUMQTTC_DEFAULT_MAX: usize = 10 * 1024;

/// The largest packet monit is to receive in this process's run (see [`expect_incoming`]).
static LARGEST_INCOMING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Note the largest packet monit will receive in the run of `s` (the will's PUBLISH, with a
/// fixed header of up to 5 bytes), for [`v5_max_packet`]. One run per process.
pub fn expect_incoming(s: &Scenario) {
    let largest = largest_packets(s)
        .iter()
        .map(|(_, n)| n + 5)
        .max()
        .unwrap_or(0);
    LARGEST_INCOMING.store(largest, std::sync::atomic::Ordering::SeqCst);
}

/// The Maximum Packet Size an MQTT 5 monit announces in its CONNECT. rumqttc's v5 client raises
/// its 10 KiB limit only through that property, and a broker that speaks only 3.1.1 (amqtt)
/// stops answering a CONNECT that carries it instead of refusing the protocol level: so only a
/// run whose will needs more sends it.
pub fn v5_max_packet() -> Option<u32> {
    let need = LARGEST_INCOMING.load(std::sync::atomic::Ordering::SeqCst);
    (need > RUMQTTC_DEFAULT_MAX).then_some(CLIENT_MAX_PACKET as u32)
}

/// The largest packets a run of `s` sends through the broker, as (what, remaining length):
/// willy's CONNECT with its will, and the will's PUBLISH to monit.
pub fn largest_packets(s: &Scenario) -> Vec<(&'static str, usize)> {
    let Some(w) = &s.will else {
        return Vec::new();
    };
    let v5 = s.protocol == Protocol::V5;
    // Protocol name, level, flags, keepalive; then the client id, will topic and payload.
    let mut connect = 10 + 2 + CLIENT_ID.len() + 2 + w.topic.len() + 2 + w.payload.len();
    let mut publish = 2 + w.topic.len() + if w.qos > 0 { 2 } else { 0 } + w.payload.len();
    if v5 {
        // CONNECT properties (Session Expiry Interval), will properties (Will Delay Interval,
        // Content Type) and the PUBLISH's forwarded Content Type.
        let props =
            5 + w.delay_s.map_or(0, |_| 5) + w.content_type.as_ref().map_or(0, |c| 3 + c.len());
        connect += 2 + props;
        publish += varint_len(props) + props;
    }
    vec![
        ("willy's CONNECT with its will", connect),
        ("the will's PUBLISH to monit", publish),
    ]
}

/// The largest remaining length `broker` takes, and where that limit comes from.
pub fn broker_limit(broker: &BrokerChoice) -> (usize, &'static str) {
    match broker {
        BrokerChoice::Builtin => (
            crate::broker::builtin::MAX_PACKET,
            "the builtin broker's maximum packet size (rumqttd max_payload_size, crates/run/src/broker/builtin.rs)",
        ),
        BrokerChoice::Mosquitto { .. } => (
            SPEC_MAX_REMAINING,
            "mosquitto's max_packet_size (unset in our config: the spec's maximum)",
        ),
        BrokerChoice::Url(_) => (
            SPEC_MAX_REMAINING,
            "the spec's maximum packet size (the broker's own limit is not known)",
        ),
    }
}

/// Refuse a scenario whose packets exceed `limit` (named `limit_name`) or our clients' limit.
pub fn check_packets(s: &Scenario, limit: usize, limit_name: &str) -> Result<(), String> {
    for (what, size) in largest_packets(s) {
        let (max, name) = if limit <= CLIENT_MAX_PACKET {
            (limit, limit_name)
        } else {
            (
                CLIENT_MAX_PACKET,
                "willy's and monit's maximum packet size (limits::CLIENT_MAX_PACKET)",
            )
        };
        if size > max {
            return Err(format!(
                "scenario {}: {what} would be {size} bytes (remaining length), over {name} of {max} bytes: shorten the will's topic or payload",
                s.name
            ));
        }
    }
    Ok(())
}

/// [`check_packets`] against the broker a run will use.
pub fn check(s: &Scenario, broker: &BrokerChoice) -> anyhow::Result<()> {
    let (limit, name) = broker_limit(broker);
    check_packets(s, limit, name).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_will(topic: &str, payload: &str) -> Scenario {
        let mut s = crate::scenario::load("ws-last-will").unwrap();
        let w = s.will.as_mut().unwrap();
        w.topic = topic.to_string();
        w.payload = payload.to_string();
        s
    }

    #[test]
    fn the_largest_valid_will_fits_every_broker_and_our_clients() {
        let max = "x".repeat(MAX_FIELD_BYTES);
        for proto in ["ws-last-will", "v5-last-will"] {
            let mut s = crate::scenario::load(proto).unwrap();
            let w = s.will.as_mut().unwrap();
            w.topic = max.clone();
            w.payload = max.clone();
            w.content_type = (s.protocol == Protocol::V5).then(|| max.clone());
            for b in [BrokerChoice::Builtin, BrokerChoice::Mosquitto { bin: None }] {
                check(&s, &b).unwrap_or_else(|e| panic!("{proto} on {}: {e}", b.label()));
            }
        }
    }

    #[test]
    fn a_packet_over_the_limit_is_refused_with_the_limit_named() {
        let s = with_will("test/w", &"x".repeat(2000));
        let e = check_packets(&s, 1000, "a test broker's maximum").unwrap_err();
        assert!(
            e.contains("willy's CONNECT") && e.contains("a test broker's maximum of 1000 bytes"),
            "{e}"
        );
        assert!(check_packets(&s, 3000, "x").is_ok());
    }

    #[test]
    fn an_mqtt5_monit_announces_a_packet_size_only_for_a_will_that_needs_it() {
        expect_incoming(&with_will("test/w", "small"));
        assert_eq!(v5_max_packet(), None);
        expect_incoming(&with_will("test/w", &"x".repeat(12_000)));
        assert_eq!(v5_max_packet(), Some(CLIENT_MAX_PACKET as u32));
        expect_incoming(&with_will("test/w", "small"));
    }

    #[test]
    fn a_connect_size_is_its_remaining_length() {
        // 10 (variable header) + 2+5 (willy) + 2+1 (topic t) + 2+1 (payload p) = 23.
        let s = with_will("t", "p");
        assert_eq!(
            largest_packets(&s)[0],
            ("willy's CONNECT with its will", 23)
        );
        // The PUBLISH monit gets: 2+1 topic, 1 payload (QoS 0: no packet id).
        assert_eq!(largest_packets(&s)[1].1, 4);
    }

    #[test]
    fn strings_with_nul_or_over_65535_bytes_are_named() {
        assert!(string_problem("a\0b").unwrap().contains("U+0000"));
        assert!(string_problem(&"t".repeat(65_536))
            .unwrap()
            .contains("65535"));
        assert_eq!(string_problem(&"t".repeat(65_535)), None);
        assert!(will_payload_problem(&"p".repeat(65_536))
            .unwrap()
            .contains("at most 65535 bytes"));
    }
}
