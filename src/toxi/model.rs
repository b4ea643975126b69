//! Toxiproxy's vocabulary (toxics, their attributes, its error shape) and what each toxic means
//! in our fault model. Pure: JSON in, faults out, so every rule is tested without a socket.
//!
//! ```text
//!  POST /proxies/P/toxics {"type","stream","toxicity","attributes"}
//!      --Toxic::create--> Toxic (defaults filled in, attributes checked)
//!      --Toxic::effect--> Effect { now: [(FaultKind, NewConnections)], later: (after, FaultKind) }
//! ```
//!
//! toxiproxy's `upstream` stream is client -> server, which is our `Flow::Up` (willy -> broker);
//! its default stream is `downstream`, its default name `TYPE_STREAM`, its default toxicity 1.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::scenario::{Direction, FaultKind, NewConnections};

/// toxiproxy's error body, `{"error": "...", "status": N}`, sent with the same HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub error: String,
    pub status: u16,
}

impl ApiError {
    fn new(error: impl Into<String>, status: u16) -> ApiError {
        ApiError {
            error: error.into(),
            status,
        }
    }
    pub fn bad_body(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(format!("bad request body: {why}"), 400)
    }
    pub fn missing_field(field: &str) -> ApiError {
        ApiError::new(format!("missing required field: {field}"), 400)
    }
    pub fn proxy_not_found() -> ApiError {
        ApiError::new("proxy not found", 404)
    }
    pub fn proxy_exists() -> ApiError {
        ApiError::new("proxy already exists", 409)
    }
    pub fn invalid_stream() -> ApiError {
        ApiError::new(
            "stream was invalid, can be either upstream or downstream",
            400,
        )
    }
    /// toxiproxy's words, exactly (clients match them); the command line adds the list.
    pub fn invalid_toxic_type() -> ApiError {
        ApiError::new("invalid toxic type", 400)
    }
    pub fn toxic_exists() -> ApiError {
        ApiError::new("toxic already exists", 409)
    }
    pub fn toxic_not_found() -> ApiError {
        ApiError::new("toxic not found", 404)
    }
    /// Something toxiproxy does that unplug does not (yet): said as such, in its error shape.
    pub fn not_covered(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(format!("not implemented by unplug: {what}"), 501)
    }
    /// More than a limit of unplug's allows (proxies, toxics): the limit named.
    pub fn too_many(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(format!("limit reached: {what}"), 429)
    }
    /// A request body over the limit.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            format!("request body too large: at most {limit} bytes"),
            413,
        )
    }
    /// A request that took too long to arrive whole.
    pub fn too_slow(limit: std::time::Duration) -> ApiError {
        ApiError::new(
            format!("request not complete within {} s", limit.as_secs()),
            408,
        )
    }
    /// What toxiproxy answers when the OS refuses (a listen address in use, say).
    pub fn internal(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(why.to_string(), 500)
    }
}

/// A day, the longest time an attribute takes, in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// A toxic's attribute: (name, default, maximum).
pub type Attribute = (&'static str, i64, i64);

/// The toxic types unplug knows, with each one's attributes: (name, default, maximum).
/// toxiproxy's first, then ours (MQTT-aware, or about new connections). toxiproxy sets no
/// maximum; these keep every time, rate and size in range of the arithmetic that uses them
/// (a day for a time, 1 TB/s for a rate, 2^53 bytes), so no value an API client sends can
/// overflow or panic the proxy.
pub const TYPES: &[(&str, &[Attribute])] = &[
    ("latency", &[("latency", 0, DAY_MS), ("jitter", 0, DAY_MS)]),
    // KB/s.
    ("bandwidth", &[("rate", 0, 1_000_000_000)]),
    ("timeout", &[("timeout", 0, DAY_MS)]),
    ("reset_peer", &[("timeout", 0, DAY_MS)]),
    ("slow_close", &[("delay", 0, DAY_MS)]),
    // Sizes in bytes (a slice of at most 1 MiB: a read is 32 KiB), the delay in microseconds.
    (
        "slicer",
        &[
            ("average_size", 0, 1 << 20),
            ("size_variation", 0, 1 << 20),
            ("delay", 0, DAY_MS * 1000),
        ],
    ),
    ("limit_data", &[("bytes", 0, 1 << 53)]),
    // Ours.
    ("blackhole", &[]),
    ("drop", &[]),
    ("hang", &[]),
    ("refuse", &[]),
];

/// The type names, for an error that lists them.
pub fn type_names() -> String {
    TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ")
}

/// Toxic types that act on the listener, not on connections: a toxicity between 0 and 1
/// (decided per connection) means nothing for them.
pub const ON_THE_LISTENER: &[&str] = &["hang", "refuse"];

/// The streams a cut of `which` (`both`, `upstream` or `downstream`) takes: what
/// `unplug proxy cut --stream` and the page's cut button mean.
pub fn cut_streams(which: &str) -> Result<&'static [&'static str], ApiError> {
    match which {
        "both" => Ok(&["upstream", "downstream"]),
        "upstream" => Ok(&["upstream"]),
        "downstream" => Ok(&["downstream"]),
        _ => Err(ApiError::bad_body(format!(
            "stream {which:?}: expected both, upstream or downstream"
        ))),
    }
}

/// The toxic a cut puts on `stream`: toxiproxy's `timeout` at 0 (nothing passes, the sockets
/// stay open), named `cut_STREAM`.
pub fn cut_toxic(stream: &str) -> Value {
    serde_json::json!({"name": format!("cut_{stream}"), "type": "timeout", "stream": stream,
        "toxicity": 1.0, "attributes": {"timeout": 0}})
}

/// The names of the toxics in a `GET /proxies/NAME/toxics` answer: what a heal removes.
pub fn toxic_names(toxics: &Value) -> Vec<String> {
    toxics
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The direction a toxic acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Client -> server (willy -> broker).
    Upstream,
    /// Server -> client.
    Downstream,
}

impl Stream {
    pub fn parse(s: &str) -> Result<Stream, ApiError> {
        match s {
            "upstream" => Ok(Stream::Upstream),
            "downstream" => Ok(Stream::Downstream),
            _ => Err(ApiError::invalid_stream()),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
    fn direction(self) -> Direction {
        match self {
            Stream::Upstream => Direction::Upstream,
            Stream::Downstream => Direction::Downstream,
        }
    }
}

/// One toxic as the API shows it (toxiproxy's `ToxicWrapper`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Toxic {
    pub attributes: Map<String, Value>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub stream: String,
    /// Written as toxiproxy's Go writes its float32: `1`, not `1.0`.
    #[serde(serialize_with = "as_go_number")]
    pub toxicity: f32,
}

fn as_go_number<S: serde::Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
    if x.fract() == 0.0 {
        s.serialize_i64(*x as i64)
    } else {
        s.serialize_f64(f64::from(*x))
    }
}

/// What a toxic does to the proxy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Effect {
    /// Faults in effect for as long as the toxic is there.
    pub now: Vec<(FaultKind, NewConnections)>,
    /// A fault that acts once on the open connections this long after the toxic came (a
    /// `timeout` above 0 closes them, `reset_peer` resets them).
    pub later: Option<(Duration, FaultKind)>,
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::bad_body(format!(
            "expected a JSON object, got {other}"
        ))),
        Err(e) => Err(ApiError::bad_body(e)),
    }
}

fn string_field(m: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_body(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

fn toxicity_field(m: &Map<String, Value>) -> Result<Option<f32>, ApiError> {
    match m.get("toxicity") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => Ok(Some(t as f32)),
            _ => Err(ApiError::bad_body(format!(
                "toxicity {n} is not between 0 and 1"
            ))),
        },
        Some(other) => Err(ApiError::bad_body(format!(
            "toxicity must be a number, not {other}"
        ))),
    }
}

impl Toxic {
    /// A new toxic from a create request's body, with toxiproxy's defaults.
    pub fn create(body: &[u8]) -> Result<Toxic, ApiError> {
        let m = object(body)?;
        let stream = string_field(&m, "stream")?.unwrap_or_else(|| "downstream".to_string());
        Stream::parse(&stream)?;
        let kind = string_field(&m, "type")?.unwrap_or_default();
        let Some((_, defaults)) = TYPES.iter().find(|(t, _)| *t == kind) else {
            return Err(ApiError::invalid_toxic_type());
        };
        let name = string_field(&m, "name")?
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{kind}_{stream}"));
        let mut attributes: Map<String, Value> = defaults
            .iter()
            .map(|(k, v, _)| (k.to_string(), Value::from(*v)))
            .collect();
        let toxic = Toxic {
            attributes: Map::new(),
            name,
            stream,
            toxicity: toxicity_field(&m)?.unwrap_or(1.0),
            kind,
        };
        merge_attributes(&mut attributes, m.get("attributes"), defaults)?;
        let toxic = Toxic {
            attributes,
            ..toxic
        };
        toxic.effect()?;
        Ok(toxic)
    }

    /// This toxic after an update request: the attributes given replace theirs, the rest stay
    /// (toxiproxy's rule); so does the toxicity when none is given.
    pub fn updated(&self, body: &[u8]) -> Result<Toxic, ApiError> {
        let m = object(body)?;
        let mut t = self.clone();
        let defaults = TYPES
            .iter()
            .find(|(k, _)| *k == t.kind)
            .map_or(&[][..], |(_, d)| *d);
        merge_attributes(&mut t.attributes, m.get("attributes"), defaults)?;
        if let Some(x) = toxicity_field(&m)? {
            t.toxicity = x;
        }
        t.effect()?;
        Ok(t)
    }

    /// A toxicity strictly between 0 and 1: the toxic acts on some connections, decided per
    /// connection.
    pub fn partial(&self) -> bool {
        self.toxicity > 0.0 && self.toxicity < 1.0
    }

    /// A numeric attribute (checked in range when it was merged; 0 when absent).
    fn int(&self, key: &str) -> i64 {
        self.attributes
            .get(key)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0)
    }

    fn ms(&self, key: &str) -> Duration {
        Duration::from_millis(self.int(key).max(0) as u64)
    }

    /// What the toxic does in our fault model; an error (toxiproxy's shape) when it cannot be
    /// done.
    pub fn effect(&self) -> Result<Effect, ApiError> {
        let direction = Stream::parse(&self.stream)?.direction();
        if self.partial() && ON_THE_LISTENER.contains(&self.kind.as_str()) {
            return Err(ApiError::not_covered(format!(
                "toxicity {} on a {} toxic (it acts on the listener, not per connection: 1 or 0)",
                self.toxicity, self.kind
            )));
        }
        if self.toxicity == 0.0 {
            return Ok(Effect::default());
        }
        let accept = |k: FaultKind| (k, NewConnections::Accept);
        Ok(match self.kind.as_str() {
            "latency" => Effect {
                now: vec![accept(FaultKind::Latency {
                    direction,
                    delay: self.ms("latency"),
                    jitter: self.ms("jitter"),
                })],
                later: None,
            },
            // toxiproxy's rate is KB/s; 0 lets everything through.
            "bandwidth" => match self.int("rate") {
                0 => Effect::default(),
                kb => Effect {
                    now: vec![accept(FaultKind::Bandwidth {
                        direction,
                        bytes_per_s: (kb as u64).saturating_mul(1000),
                    })],
                    later: None,
                },
            },
            // Nothing passes; above 0, the connections are closed after that long.
            "timeout" | "blackhole" => Effect {
                now: vec![accept(FaultKind::Blackhole { direction })],
                later: match self.int("timeout") {
                    0 => None,
                    _ => Some((self.ms("timeout"), FaultKind::Close)),
                },
            },
            "reset_peer" => Effect {
                now: vec![],
                later: Some((self.ms("timeout"), FaultKind::Reset)),
            },
            // toxiproxy's average_size 0 recurses for ever, and a variation as large as the
            // average cuts outside the chunk: said, not done.
            "slicer" => {
                let (average, variation) = (self.int("average_size"), self.int("size_variation"));
                if average < 1 {
                    return Err(ApiError::bad_body("slicer average_size must be at least 1"));
                }
                if variation >= average {
                    return Err(ApiError::bad_body(format!(
                        "slicer size_variation {variation} must be less than average_size {average}"
                    )));
                }
                Effect {
                    now: vec![accept(FaultKind::Slicer {
                        direction,
                        average: average.min(u32::MAX as i64) as u32,
                        variation: variation.min(u32::MAX as i64) as u32,
                        delay: Duration::from_micros(self.int("delay") as u64),
                    })],
                    later: None,
                }
            }
            "limit_data" => Effect {
                now: vec![accept(FaultKind::LimitData {
                    direction,
                    bytes: self.int("bytes") as u64,
                })],
                later: None,
            },
            "slow_close" => Effect {
                now: vec![accept(FaultKind::SlowClose {
                    direction,
                    delay: self.ms("delay"),
                })],
                later: None,
            },
            "drop" => Effect {
                now: vec![accept(FaultKind::Drop {
                    direction,
                    packets: self.packets()?,
                })],
                later: None,
            },
            "hang" => Effect {
                now: vec![(FaultKind::Hang, NewConnections::Hang)],
                later: None,
            },
            "refuse" => Effect {
                now: vec![(FaultKind::Refuse, NewConnections::Refuse)],
                later: None,
            },
            _ => return Err(ApiError::invalid_toxic_type()),
        })
    }

    /// The MQTT packet types a `drop` toxic takes: `"packets": ["PINGREQ"]` or `"PINGREQ,PUBACK"`.
    fn packets(&self) -> Result<Vec<u8>, ApiError> {
        let names: Vec<String> = match self.attributes.get("packets") {
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| ApiError::bad_body("packets must be names of MQTT packets"))?,
            _ => {
                return Err(ApiError::bad_body(
                    "a drop toxic needs attributes.packets, e.g. [\"PINGREQ\"]",
                ))
            }
        };
        let known = || crate::mqtt::PacketKind::v311();
        let mut types = Vec::new();
        for n in names.iter().filter(|n| !n.is_empty()) {
            match known().find(|k| k.as_str().eq_ignore_ascii_case(n)) {
                Some(k) => types.push(k.type_code()),
                None => {
                    let all: Vec<&str> = known().map(|k| k.as_str()).collect();
                    return Err(ApiError::bad_body(format!(
                        "unknown MQTT packet type {n:?}: expected one of {}",
                        all.join(", ")
                    )));
                }
            }
        }
        if types.is_empty() {
            return Err(ApiError::bad_body(
                "a drop toxic needs attributes.packets, e.g. [\"PINGREQ\"]",
            ));
        }
        Ok(types)
    }
}

/// Put the given attributes over `into`: toxiproxy's are whole numbers from 0 to their
/// maximum in [`TYPES`]; ours (`packets`) are what their toxic says.
fn merge_attributes(
    into: &mut Map<String, Value>,
    given: Option<&Value>,
    known: &[Attribute],
) -> Result<(), ApiError> {
    let given = match given {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(ApiError::bad_body(format!(
                "attributes must be an object, not {other}"
            )))
        }
    };
    for (k, v) in given {
        if k == "packets" {
            into.insert(k.clone(), v.clone());
            continue;
        }
        let Some((_, _, max)) = known.iter().find(|(name, _, _)| name == k) else {
            // toxiproxy ignores keys its toxic does not have; so do we.
            continue;
        };
        match v.as_i64() {
            Some(n) if (0..=*max).contains(&n) => {
                into.insert(k.clone(), Value::from(n));
            }
            _ => {
                return Err(ApiError::bad_body(format!(
                    "attributes.{k} must be a whole number from 0 to {max}, not {v}"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: &str) -> Result<Toxic, ApiError> {
        Toxic::create(json.as_bytes())
    }

    #[test]
    fn a_toxic_gets_toxiproxys_defaults() {
        let t = create(r#"{"type":"latency","attributes":{"latency":100}}"#).unwrap();
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.stream, "downstream");
        assert_eq!(t.toxicity, 1.0);
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({"attributes":{"latency":100,"jitter":0},"name":"latency_downstream",
                "type":"latency","stream":"downstream","toxicity":1})
        );
    }

    #[test]
    fn timeout_zero_is_the_blackhole_and_above_zero_closes_later() {
        let t =
            create(r#"{"type":"timeout","stream":"upstream","attributes":{"timeout":0}}"#).unwrap();
        let e = t.effect().unwrap();
        assert_eq!(
            e.now,
            vec![(
                FaultKind::Blackhole {
                    direction: Direction::Upstream
                },
                NewConnections::Accept
            )]
        );
        assert_eq!(e.later, None);
        let t = create(r#"{"type":"timeout","attributes":{"timeout":1500}}"#).unwrap();
        assert_eq!(
            t.effect().unwrap().later,
            Some((Duration::from_millis(1500), FaultKind::Close))
        );
    }

    #[test]
    fn bandwidth_is_kilobytes_a_second() {
        let t = create(r#"{"type":"bandwidth","attributes":{"rate":5}}"#).unwrap();
        assert_eq!(
            t.effect().unwrap().now[0].0,
            FaultKind::Bandwidth {
                direction: Direction::Downstream,
                bytes_per_s: 5000
            }
        );
    }

    #[test]
    fn drop_names_mqtt_packets() {
        let t =
            create(r#"{"type":"drop","stream":"upstream","attributes":{"packets":["pingreq"]}}"#)
                .unwrap();
        assert_eq!(
            t.effect().unwrap().now[0].0,
            FaultKind::Drop {
                direction: Direction::Upstream,
                packets: vec![12]
            }
        );
        let e = create(r#"{"type":"drop","attributes":{"packets":"PINGREQ,NOPE"}}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.error.contains("\"NOPE\""), "{e:?}");
    }

    #[test]
    fn bad_input_gets_toxiproxys_errors() {
        assert_eq!(
            create(r#"{"type":"nope"}"#).unwrap_err(),
            ApiError::invalid_toxic_type()
        );
        assert_eq!(
            create(r#"{"type":"latency","stream":"sideways"}"#).unwrap_err(),
            ApiError::invalid_stream()
        );
        assert_eq!(create("{").unwrap_err().status, 400);
        let e = create(r#"{"type":"latency","attributes":{"latency":-5}}"#).unwrap_err();
        assert!(e.error.starts_with("bad request body: "), "{e:?}");
        assert_eq!(
            create(r#"{"type":"slicer"}"#).unwrap_err(),
            ApiError::bad_body("slicer average_size must be at least 1")
        );
        let e = create(r#"{"type":"slicer","attributes":{"average_size":10,"size_variation":10}}"#)
            .unwrap_err();
        assert_eq!(e.status, 400, "{e:?}");
        assert_eq!(
            create(r#"{"type":"hang","toxicity":0.5}"#)
                .unwrap_err()
                .status,
            501
        );
        assert!(create(r#"{"type":"latency","toxicity":0.5}"#)
            .unwrap()
            .partial());
    }

    #[test]
    fn slicer_limit_data_and_slow_close_are_faults_on_their_stream() {
        let t = create(
            r#"{"type":"slicer","attributes":{"average_size":100,"size_variation":20,"delay":5000}}"#,
        )
        .unwrap();
        assert_eq!(
            t.effect().unwrap().now[0].0,
            FaultKind::Slicer {
                direction: Direction::Downstream,
                average: 100,
                variation: 20,
                delay: Duration::from_micros(5000)
            }
        );
        let t = create(r#"{"type":"limit_data","stream":"upstream","attributes":{"bytes":300}}"#)
            .unwrap();
        assert_eq!(
            t.effect().unwrap().now[0].0,
            FaultKind::LimitData {
                direction: Direction::Upstream,
                bytes: 300
            }
        );
        let t = create(r#"{"type":"slow_close","attributes":{"delay":500}}"#).unwrap();
        assert_eq!(
            t.effect().unwrap().now[0].0,
            FaultKind::SlowClose {
                direction: Direction::Downstream,
                delay: Duration::from_millis(500)
            }
        );
    }

    #[test]
    fn an_update_keeps_what_it_does_not_give() {
        let t = create(r#"{"type":"latency","attributes":{"latency":100,"jitter":5}}"#).unwrap();
        let u = t.updated(br#"{"attributes":{"latency":200}}"#).unwrap();
        assert_eq!(u.attributes["latency"], 200);
        assert_eq!(u.attributes["jitter"], 5);
        assert_eq!(u.toxicity, 1.0);
        let off = t.updated(br#"{"toxicity":0}"#).unwrap();
        assert_eq!(off.effect().unwrap(), Effect::default());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value an API client might put in an attribute.
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-zA-Z,]{0,12}".prop_map(Value::from),
            Just(Value::Null),
            Just(serde_json::json!([])),
            Just(serde_json::json!({"a": 1})),
        ]
    }

    fn kind() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(TYPES.iter().map(|(t, _)| t.to_string()).collect::<Vec<_>>()),
            "[a-z_]{0,10}",
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "latency",
                "jitter",
                "rate",
                "timeout",
                "delay",
                "average_size",
                "size_variation",
                "bytes",
                "packets",
            ])
            .prop_map(str::to_string),
            "[a-z]{1,8}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever an API client sends: a toxic or a refusal (400 or 501), never a panic; and
        /// a toxic's times and rates stay in range of what the proxy adds up.
        #[test]
        fn any_toxic_request_is_a_toxic_in_range_or_a_refusal(
            kind in kind(),
            stream in prop_oneof![Just("upstream"), Just("downstream"), Just("x")],
            toxicity in prop_oneof![Just(Value::Null), value()],
            attrs in proptest::collection::vec((key(), value()), 0..6),
        ) {
            let attributes: Map<String, Value> = attrs.into_iter().collect();
            let body = serde_json::json!({"type": kind, "stream": stream,
                "toxicity": toxicity, "attributes": attributes});
            match Toxic::create(body.to_string().as_bytes()) {
                Err(e) => prop_assert!(e.status == 400 || e.status == 501, "{e:?}"),
                Ok(t) => {
                    let effect = t.effect().expect("a toxic made is in effect");
                    for (f, _) in &effect.now {
                        if let FaultKind::Latency { delay, jitter, .. } = f {
                            prop_assert!(*delay <= Duration::from_millis(DAY_MS as u64));
                            prop_assert!(*jitter <= Duration::from_millis(DAY_MS as u64));
                        }
                        if let FaultKind::Bandwidth { bytes_per_s, .. } = f {
                            prop_assert!(*bytes_per_s > 0 && *bytes_per_s <= 1_000_000_000_000);
                        }
                    }
                    if let Some((after, _)) = effect.later {
                        prop_assert!(after <= Duration::from_millis(DAY_MS as u64));
                    }
                    // An update with the same attributes is the same toxic.
                    let again = serde_json::json!({"attributes": t.attributes});
                    prop_assert_eq!(t.updated(again.to_string().as_bytes()).unwrap(), t);
                }
            }
        }
    }
}
