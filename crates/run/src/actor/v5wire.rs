//! MQTT 5 packets willy writes itself, byte by byte as the spec lays them out.
//!
//! rumqttc's v5 client cannot say *how* to disconnect: its `disconnect()` takes no reason code,
//! and its encoder writes a reason code without properties as `e0 01 04 00` (length 1, two
//! bytes follow). A harness that asks "does the broker publish the will on reason 0x04, and not
//! on 0x00 in either of its encodings?" must choose the bytes, so for MQTT 5 willy encodes its
//! own packets here and reads the broker's with the wire tap's decoder. Hand-written because
//! the point is the exact bytes: a library's encoder would choose them for us.
//!
//! ```text
//!  CONNECT    10 RL | 00 04 'MQTT' 05 flags keepalive props | client-id [will-props topic payload]
//!             will-props: [18 delay(4)] [03 content-type(string)]
//!  PUBLISH    30 RL | topic 00(props) payload                       (QoS 0)
//!  PINGREQ    c0 00
//!  DISCONNECT e0 00                (short form: reason 0x00 implied, [MQTT-3.14.2-1])
//!             e0 01 RR             (reason code, no properties)
//!             e0 02 RR 00          (reason code, empty properties)
//! ```

use crate::mqtt::{connect_flags, packet, string, varint};
/// The WebSocket bytes our clients write live in the wire codec; re-exported for the callers
/// that knew them here.
pub use crate::tap::codec::{ws_frame, ws_upgrade};

/// A will as CONNECT carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
    /// Will Delay Interval (property 0x18), seconds.
    pub delay_s: Option<u32>,
    /// Content Type (property 0x03), a UTF-8 string the server forwards with the will.
    pub content_type: Option<&'a str>,
}

/// A v5 CONNECT.
pub fn connect(
    client_id: &str,
    keepalive_s: u16,
    clean_start: bool,
    session_expiry_s: Option<u32>,
    will: Option<&Will>,
) -> Vec<u8> {
    connect_as(
        client_id,
        keepalive_s,
        clean_start,
        session_expiry_s,
        will,
        None,
    )
}

/// A v5 CONNECT with a login: User Name flag 0x80 and Password flag 0x40, the two written
/// after the will [MQTT-3.1.3-1].
pub fn connect_as(
    client_id: &str,
    keepalive_s: u16,
    clean_start: bool,
    session_expiry_s: Option<u32>,
    will: Option<&Will>,
    login: Option<&crate::broker::url::Login>,
) -> Vec<u8> {
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(5);
    body.push(connect_flags(
        clean_start,
        will.map(|w| (w.qos, w.retain)),
        login.is_some(),
        login.is_some_and(|l| l.password.is_some()),
    ));
    body.extend_from_slice(&keepalive_s.to_be_bytes());
    let mut props = Vec::new();
    if let Some(e) = session_expiry_s {
        props.push(0x11);
        props.extend_from_slice(&e.to_be_bytes());
    }
    varint(props.len(), &mut body);
    body.extend_from_slice(&props);
    string(client_id.as_bytes(), &mut body);
    if let Some(w) = will {
        let mut wp = Vec::new();
        if let Some(d) = w.delay_s {
            wp.push(0x18);
            wp.extend_from_slice(&d.to_be_bytes());
        }
        if let Some(c) = w.content_type {
            wp.push(0x03);
            string(c.as_bytes(), &mut wp);
        }
        varint(wp.len(), &mut body);
        body.extend_from_slice(&wp);
        string(w.topic.as_bytes(), &mut body);
        string(w.payload, &mut body);
    }
    login_fields(login, &mut body);
    packet(0x10, &body)
}

/// The end of a CONNECT's payload, either version: the user name, then the password, last of
/// its fields [MQTT-3.1.3-1].
pub(super) fn login_fields(login: Option<&crate::broker::url::Login>, body: &mut Vec<u8>) {
    if let Some(l) = login {
        string(l.username.as_bytes(), body);
        if let Some(p) = &l.password {
            string(p.as_bytes(), body);
        }
    }
}

/// A v5 PUBLISH at QoS 0 with no properties.
pub fn publish(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic.as_bytes(), &mut body);
    body.push(0); // property length
    body.extend_from_slice(payload);
    packet(0x30 | u8::from(retain), &body)
}

pub const PINGREQ: [u8; 2] = [0xc0, 0x00];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{disconnect, hex, DisconnectForm};
    use crate::tap::{Decoded, Decoder, Direction, Fields, PacketKind};
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;

    fn decode(bytes: &[u8]) -> (Vec<Decoded>, u8) {
        let level = Arc::new(AtomicU8::new(0));
        let mut d = Decoder::new(Direction::Upstream, level.clone());
        let mut out = Vec::new();
        d.feed(bytes, &mut out);
        (out, level.load(Ordering::Relaxed))
    }

    #[test]
    fn connect_matches_the_spec_layout() {
        // [MQTT-3.1.2]: protocol name, level 5, flags (clean start 0x02, will 0x04, will QoS 1
        // 0x08, will retain 0x20), keepalive 2, properties {0x11: 10}, client id, will
        // properties {0x18: 3}, will topic, will payload.
        let w = Will {
            topic: "t",
            payload: b"x",
            qos: 1,
            retain: true,
            delay_s: Some(3),
            content_type: None,
        };
        let got = connect("w", 2, true, Some(10), Some(&w));
        let body: Vec<u8> = [
            &[
                0, 4, b'M', b'Q', b'T', b'T', 5, 0x2e, 0, 2, 5, 0x11, 0, 0, 0, 10, 0, 1, b'w',
            ][..],
            &[5, 0x18, 0, 0, 0, 3, 0, 1, b't', 0, 1, b'x'][..],
        ]
        .concat();
        assert_eq!(got, [&[0x10, body.len() as u8][..], &body[..]].concat());
    }

    #[test]
    fn a_will_content_type_is_property_0x03_after_the_delay() {
        // MQTT 5 3.1.3.2: Will Properties, a length then each property; Content Type is
        // identifier 0x03 followed by a UTF-8 string (2-byte length, bytes).
        let w = Will {
            topic: "t",
            payload: b"x",
            qos: 0,
            retain: false,
            delay_s: Some(0),
            content_type: Some("text/plain"),
        };
        let got = connect("w", 2, true, None, Some(&w));
        let will_part: Vec<u8> = [
            &[18, 0x18, 0, 0, 0, 0, 0x03, 0, 10][..],
            b"text/plain",
            &[0, 1, b't', 0, 1, b'x'][..],
        ]
        .concat();
        assert!(got.ends_with(&will_part), "{}", hex(&got));
        // The tap skips the property by its length and still finds the will's topic and payload.
        let (out, _) = decode(&got);
        match &out[..] {
            [Decoded::Packet(p)] => match &p.fields {
                Fields::Connect { will, .. } => {
                    let will = will.as_ref().unwrap();
                    assert_eq!(
                        (will.topic.as_str(), will.payload_len, will.delay_s),
                        ("t", 1, Some(0))
                    );
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connect_decodes_back_through_the_tap() {
        let w = Will {
            topic: "test/connected",
            payload: b"gone",
            qos: 0,
            retain: false,
            delay_s: Some(2),
            content_type: None,
        };
        let (out, level) = decode(&connect("willy", 2, true, Some(0), Some(&w)));
        assert_eq!(level, 5);
        match &out[..] {
            [Decoded::Packet(p)] => {
                assert_eq!(p.kind, PacketKind::Connect);
                match &p.fields {
                    Fields::Connect {
                        client_id,
                        protocol_level,
                        keepalive_s,
                        clean,
                        will,
                        session_expiry_s,
                    } => {
                        assert_eq!(
                            (client_id.as_str(), *protocol_level, *keepalive_s, *clean),
                            ("willy", 5, 2, true)
                        );
                        assert_eq!(*session_expiry_s, Some(0));
                        let will = will.as_ref().unwrap();
                        assert_eq!(
                            (will.topic.as_str(), will.payload_len, will.delay_s),
                            ("test/connected", 4, Some(2))
                        );
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn publish_decodes_back_through_the_tap() {
        let mut bytes = connect("w", 2, true, None, None);
        bytes.extend(publish("test/connected", b"true", false));
        let (out, _) = decode(&bytes);
        match &out[1] {
            Decoded::Packet(p) => match &p.fields {
                Fields::Publish {
                    topic,
                    qos,
                    payload_len,
                    ..
                } => {
                    assert_eq!(
                        (topic.as_str(), *qos, *payload_len),
                        ("test/connected", 0, 4)
                    )
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn disconnect_forms_are_the_spec_bytes_and_decode_to_their_reason() {
        assert_eq!(disconnect(0, DisconnectForm::Short).unwrap(), [0xe0, 0x00]);
        assert_eq!(
            disconnect(4, DisconnectForm::Reason).unwrap(),
            [0xe0, 0x01, 0x04]
        );
        assert_eq!(
            disconnect(4, DisconnectForm::Properties).unwrap(),
            [0xe0, 0x02, 0x04, 0x00]
        );
        assert!(disconnect(4, DisconnectForm::Short).is_err());
        for (form, reason, want) in [
            (DisconnectForm::Short, 0, None),
            (DisconnectForm::Reason, 0, Some(0)),
            (DisconnectForm::Reason, 4, Some(4)),
            (DisconnectForm::Properties, 4, Some(4)),
        ] {
            let mut bytes = connect("w", 2, true, None, None);
            bytes.extend(disconnect(reason, form).unwrap());
            let (out, _) = decode(&bytes);
            assert_eq!(out.len(), 2, "{form:?}: {out:?}");
            match &out[1] {
                Decoded::Packet(p) => {
                    assert_eq!(p.fields, Fields::Disconnect { reason: want }, "{form:?}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn long_packets_use_a_multi_byte_remaining_length() {
        let p = publish("t", &[b'a'; 200], false);
        assert_eq!(&p[..3], &[0x30, 0xcc, 0x01]); // 204 = 0x4c + 0x80, 0x01
        assert_eq!(p.len(), 3 + 204);
    }
}
