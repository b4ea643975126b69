//! The session around a disconnect, for real, with a third client (pubby) straight to the
//! broker: traffic to a silent client, and the checks each broker passes or, as its profile
//! documents, deviates from.
//!
//! - [MQTT-3.1.2-24]: the broker drops a client 1.5 x keepalive after the last packet it
//!   *received* from it; what it sends the client does not count.

mod common;

use common::*;
use serde_json::Value;

/// The status of the check named `name` in a summary.
fn status<'a>(s: &'a Value, name: &str) -> &'a str {
    s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#}", s["checks"]))["status"]
        .as_str()
        .unwrap()
}

fn run(name: &str, broker: &str) -> Value {
    let out = out_dir(&format!("session-{name}-{broker}"));
    let (code, s) = run_scenario(name, &out, &["--broker", broker]);
    assert_eq!(code, 0, "{name} on {broker}: {:?}", failed_checks(&s));
    s
}

#[test]
fn rumqttd_never_drops_a_silent_client_it_keeps_sending_to_as_its_profile_documents() {
    let s = run("keepalive-busy-topic", "builtin");
    assert_eq!(status(&s, "keepalive-drop"), "deviation");
    assert_eq!(status(&s, "will"), "deviation");
    assert!(num(&s, "broker_drop_ms").is_none());
    assert!(num(&s, "will_received_ms").is_none());
    // willy's own client still notices: its PINGREQs get no PINGRESP.
    assert_eq!(status(&s, "client-detect"), "pass");
}

#[test]
fn mosquitto_drops_a_silent_client_on_a_busy_topic_and_publishes_its_will() {
    if mosquitto_or_skip("keepalive-busy-topic").is_none() {
        return;
    }
    let s = run("keepalive-busy-topic", "mosquitto");
    for c in ["keepalive-drop", "will", "will-timing"] {
        assert_eq!(status(&s, c), "pass", "{c}");
    }
    let d = num(&s, "drop_after_last_packet_ms").unwrap();
    // 1.5 x 2 s, then at most mosquitto's 6 s keepalive scan (see its profile).
    assert!((2950.0..=9350.0).contains(&d), "{d}");
}
