//! The MQTT 3.1.1 packets willy writes itself when rumqttc cannot do what a scenario asks:
//! WebSocket pings of its own (`[willy] ws_ping_ms`) need a client that frames WebSocket
//! itself, and rumqttc's WebSocket (ws_stream_tungstenite's `WsStream`) sends binary messages
//! only. The session (v5client.rs) is the same; only CONNECT and PUBLISH differ from v5.
//!
//! ```text
//!  CONNECT  10 RL | 00 04 'MQTT' 04 flags keepalive | client-id [will-topic will-payload] [user [pass]]
//!  PUBLISH  30 RL | topic payload                     (QoS 0, no properties)
//! ```

use super::v5wire::{login_fields, Will};
use crate::mqtt::{connect_flags, packet, string};

/// A 3.1.1 CONNECT; the will's v5-only properties (delay, content type) are not written.
pub fn connect(
    client_id: &str,
    keepalive_s: u16,
    clean_session: bool,
    will: Option<&Will>,
    login: Option<&crate::broker::url::Login>,
) -> Vec<u8> {
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(4);
    body.push(connect_flags(
        clean_session,
        will.map(|w| (w.qos, w.retain)),
        login.is_some(),
        login.is_some_and(|l| l.password.is_some()),
    ));
    body.extend_from_slice(&keepalive_s.to_be_bytes());
    string(client_id.as_bytes(), &mut body);
    if let Some(w) = will {
        string(w.topic.as_bytes(), &mut body);
        string(w.payload, &mut body);
    }
    login_fields(login, &mut body);
    packet(0x10, &body)
}

/// A 3.1.1 PUBLISH at QoS 0.
pub fn publish(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic.as_bytes(), &mut body);
    body.extend_from_slice(payload);
    packet(0x30 | u8::from(retain), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::{Decoded, Decoder, Direction, Fields};
    use std::sync::atomic::AtomicU8;
    use std::sync::Arc;

    #[test]
    fn a_3_1_1_connect_and_publish_decode_back_through_the_tap() {
        let will = Will {
            topic: "test/connected",
            payload: b"false",
            qos: 0,
            retain: false,
            delay_s: None,
            content_type: None,
        };
        let mut bytes = connect("willy", 2, true, Some(&will), None);
        bytes.extend(publish("test/connected", b"true", false));
        let mut d = Decoder::new(Direction::Upstream, Arc::new(AtomicU8::new(0)));
        let mut out = Vec::new();
        d.feed(&bytes, &mut out);
        let fields: Vec<&Fields> = out
            .iter()
            .filter_map(|x| match x {
                Decoded::Packet(p) => Some(&p.fields),
                _ => None,
            })
            .collect();
        assert!(
            matches!(fields[0], Fields::Connect { protocol_level: 4, keepalive_s: 2, clean: true, will: Some(w), .. } if w.topic == "test/connected"),
            "{fields:?}"
        );
        assert!(
            matches!(fields[1], Fields::Publish { topic, payload_len: 4, .. } if topic == "test/connected"),
            "{fields:?}"
        );
    }
}
