//! A wire packet's typed parts as the journal spells them, so the JSONL stays what it was when
//! they were untyped JSON: `framing` as one string (`ws binary masked`), and `fields` as an
//! object with its keys in alphabetical order and every field present (`null` for none).
//!
//! ```text
//!  tap::Fields::Publish { topic, qos, retain, dup, packet_id, payload_len }
//!    -> {"dup":false,"packet_id":null,"payload_len":4,"qos":0,"retain":false,"topic":"a/b"}
//!    -> log line: dup=false payload_len=4 qos=0 retain=false topic=a/b   (nulls left out)
//! ```

use std::fmt;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};

use crate::tap::{Fields, Framing, WillInfo};

/// `framing` as a string, both ways.
pub mod framing {
    use super::*;

    pub fn serialize<S: Serializer>(f: &Framing, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(f)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Framing, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One field's value, as JSON writes it and as the log line shows it.
enum Value<'a> {
    Str(&'a str),
    Num(u64),
    Bool(bool),
    Null,
    /// Shown as compact JSON (a will, a list of filters or codes).
    Json(Json<'a>),
}

enum Json<'a> {
    Will(&'a WillInfo),
    Filters(&'a [(String, u8)]),
    Names(&'a [String]),
    Codes(&'a [u8]),
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::Num(v) => s.serialize_u64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Null => s.serialize_unit(),
            Value::Json(Json::Will(w)) => Sorted(&will(w)).serialize(s),
            Value::Json(Json::Filters(v)) => v.serialize(s),
            Value::Json(Json::Names(v)) => v.serialize(s),
            Value::Json(Json::Codes(v)) => v.serialize(s),
        }
    }
}

fn opt<T: Into<u64> + Copy>(v: Option<T>) -> Value<'static> {
    v.map_or(Value::Null, |v| Value::Num(v.into()))
}

fn will(w: &WillInfo) -> Vec<(&'static str, Value<'_>)> {
    vec![
        ("delay_s", opt(w.delay_s)),
        ("payload_len", Value::Num(w.payload_len as u64)),
        ("qos", Value::Num(w.qos.into())),
        ("retain", Value::Bool(w.retain)),
        ("topic", Value::Str(&w.topic)),
    ]
}

/// The fields by name, in alphabetical order (how the journal always wrote them).
fn entries(f: &Fields) -> Vec<(&'static str, Value<'_>)> {
    use Value::*;
    match f {
        Fields::None => Vec::new(),
        Fields::Connect {
            client_id,
            protocol_level,
            keepalive_s,
            clean,
            will,
            session_expiry_s,
        } => vec![
            ("clean", Bool(*clean)),
            ("client_id", Str(client_id)),
            ("keepalive_s", Num((*keepalive_s).into())),
            ("protocol_level", Num((*protocol_level).into())),
            ("session_expiry_s", opt(*session_expiry_s)),
            (
                "will",
                will.as_ref().map_or(Null, |w| Json(self::Json::Will(w))),
            ),
        ],
        Fields::Connack {
            session_present,
            code,
            server_keepalive_s,
        } => {
            // Server Keep Alive only when the CONNACK carried it, as the journal always had.
            let mut v = vec![("code", Num((*code).into()))];
            if let Some(k) = server_keepalive_s {
                v.push(("server_keepalive_s", Num((*k).into())));
            }
            v.push(("session_present", Bool(*session_present)));
            v
        }
        Fields::Publish {
            topic,
            qos,
            retain,
            dup,
            packet_id,
            payload_len,
        } => vec![
            ("dup", Bool(*dup)),
            ("packet_id", opt(*packet_id)),
            ("payload_len", Num(*payload_len as u64)),
            ("qos", Num((*qos).into())),
            ("retain", Bool(*retain)),
            ("topic", Str(topic)),
        ],
        Fields::Subscribe { packet_id, filters } => vec![
            ("filters", Json(self::Json::Filters(filters))),
            ("packet_id", Num((*packet_id).into())),
        ],
        Fields::Suback { packet_id, codes } => vec![
            ("codes", Json(self::Json::Codes(codes))),
            ("packet_id", Num((*packet_id).into())),
        ],
        Fields::Unsubscribe { packet_id, filters } => vec![
            ("filters", Json(self::Json::Names(filters))),
            ("packet_id", Num((*packet_id).into())),
        ],
        Fields::Ack { packet_id } => vec![("packet_id", Num((*packet_id).into()))],
        Fields::Disconnect { reason } => vec![("reason", opt(*reason))],
    }
}

/// Entries written as one JSON object, in their order.
struct Sorted<'a, 'b>(&'b [(&'static str, Value<'a>)]);

impl Serialize for Sorted<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `fields` with its keys in alphabetical order (`serialize_with`).
pub fn serialize_fields<S: Serializer>(f: &Fields, s: S) -> Result<S::Ok, S::Error> {
    match f {
        Fields::None => s.serialize_unit(),
        f => Sorted(&entries(f)).serialize(s),
    }
}

/// The fields on a log line: ` key=value` each, in alphabetical order, nulls left out; strings
/// bare, lists and the will as compact JSON.
pub struct LogFields<'a>(pub &'a Fields);

impl fmt::Display for LogFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in entries(self.0) {
            match v {
                Value::Null => {}
                Value::Str(s) => write!(f, " {k}={s}")?,
                Value::Num(n) => write!(f, " {k}={n}")?,
                Value::Bool(b) => write!(f, " {k}={b}")?,
                json @ Value::Json(_) => {
                    let text = serde_json::to_string(&json).map_err(|_| fmt::Error)?;
                    write!(f, " {k}={text}")?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the journal wrote fields before they were typed: through a JSON value (a map with
    /// sorted keys), and the log line from that map.
    fn as_before(f: &Fields) -> (String, String) {
        let v = serde_json::to_value(f).unwrap();
        let mut log = String::new();
        if let serde_json::Value::Object(m) = &v {
            for (k, v) in m {
                match v {
                    serde_json::Value::Null => {}
                    serde_json::Value::String(s) => log.push_str(&format!(" {k}={s}")),
                    other => log.push_str(&format!(" {k}={other}")),
                }
            }
        }
        (v.to_string(), log)
    }

    fn now(f: &Fields) -> (String, String) {
        let mut json = Vec::new();
        serialize_fields(f, &mut serde_json::Serializer::new(&mut json)).unwrap();
        (String::from_utf8(json).unwrap(), LogFields(f).to_string())
    }

    #[test]
    fn every_kind_of_fields_is_written_as_the_json_value_wrote_it() {
        let will = WillInfo {
            topic: "t/w".into(),
            qos: 1,
            retain: true,
            payload_len: 5,
            delay_s: Some(3),
        };
        let all = [
            Fields::Connect {
                client_id: "willy".into(),
                protocol_level: 5,
                keepalive_s: 2,
                clean: true,
                will: Some(will.clone()),
                session_expiry_s: Some(60),
            },
            Fields::Connect {
                client_id: "w \"q\"".into(),
                protocol_level: 4,
                keepalive_s: 0,
                clean: false,
                will: None,
                session_expiry_s: None,
            },
            Fields::Connack {
                session_present: true,
                code: 0x87,
                server_keepalive_s: None,
            },
            Fields::Connack {
                session_present: false,
                code: 0,
                server_keepalive_s: Some(10),
            },
            Fields::Publish {
                topic: "a/b".into(),
                qos: 2,
                retain: true,
                dup: true,
                packet_id: Some(65535),
                payload_len: 70000,
            },
            Fields::Publish {
                topic: String::new(),
                qos: 0,
                retain: false,
                dup: false,
                packet_id: None,
                payload_len: 0,
            },
            Fields::Subscribe {
                packet_id: 1,
                filters: vec![("a/#".into(), 1), ("+/b".into(), 0)],
            },
            Fields::Suback {
                packet_id: 1,
                codes: vec![0, 128],
            },
            Fields::Unsubscribe {
                packet_id: 2,
                filters: vec!["a/#".into()],
            },
            Fields::Ack { packet_id: 7 },
            Fields::Disconnect { reason: Some(4) },
            Fields::Disconnect { reason: None },
        ];
        for f in &all {
            assert_eq!(now(f), as_before(f), "{f:?}");
            // ... and read back as the variant it was written from.
            let back: Fields = serde_json::from_str(&now(f).0).unwrap();
            assert_eq!(&back, f);
        }
    }

    #[test]
    fn framing_reads_back_as_written() {
        use crate::tap::WsOpcode;
        for f in [
            Framing::Tcp,
            Framing::Ws {
                opcode: WsOpcode::Binary,
                masked: true,
            },
            Framing::Ws {
                opcode: WsOpcode::Continuation,
                masked: false,
            },
            Framing::Ws {
                opcode: WsOpcode::Other(0xb),
                masked: true,
            },
        ] {
            assert_eq!(f.to_string().parse::<Framing>(), Ok(f));
        }
        assert!("udp".parse::<Framing>().is_err());
    }
}
