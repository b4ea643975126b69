//! The scenario file as written: TOML tables whose values keep their spans, and the validator
//! that turns a bad value into an error naming the file, the line and the key.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Protocol, ScenarioError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) description: Option<String>,
    pub(super) transport: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) keepalive_s: Option<Spanned<i64>>,
    pub(super) cycles: Option<Spanned<i64>>,
    pub(super) connected_for_ms: Option<Spanned<i64>>,
    pub(super) idle_ms: Option<Spanned<i64>>,
    pub(super) reconnect_ms: Option<Spanned<i64>>,
    pub(super) connect_timeout_s: Option<Spanned<i64>>,
    pub(super) session_expiry_s: Option<Spanned<i64>>,
    pub(super) late_subscriber: Option<bool>,
    pub(super) monit_protocol: Option<Spanned<String>>,
    pub(super) clean_session: Option<Spanned<bool>>,
    pub(super) clean_start: Option<Spanned<bool>>,
    pub(super) disconnect_reason: Option<Spanned<i64>>,
    pub(super) disconnect_form: Option<Spanned<String>>,
    pub(super) will: Option<RawWill>,
    pub(super) publisher: Option<RawPublisher>,
    pub(super) subscribe: Option<RawSubscribe>,
    pub(super) takeover: Option<RawTakeover>,
    pub(super) monit: Option<RawMonit>,
    pub(super) broker: Option<RawBroker>,
    pub(super) willy: Option<RawWilly>,
    #[serde(default)]
    pub(super) faults: Vec<RawFault>,
    pub(super) expect: Option<RawExpect>,
    pub(super) fleet: Option<RawFleet>,
    pub(super) tap: Option<RawTap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTap {
    pub(super) publishes: Option<Spanned<String>>,
    pub(super) tls: Option<Spanned<String>>,
}

/// `[willy]`: how willy keeps its connection besides MQTT's keepalive.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWilly {
    pub(super) ws_ping_ms: Option<Spanned<i64>>,
    pub(super) ws_pong_timeout_ms: Option<Spanned<i64>>,
    pub(super) mqtt_pings: Option<Spanned<bool>>,
    /// The client library willy runs on: rumqttc (built in), mqttjs, paho or cmd:PATH.
    pub(super) client: Option<Spanned<String>>,
    /// The cycles willy ends without DISCONNECT, its connection left open for the next
    /// cycle's CONNECT to take over.
    pub(super) leave_open: Option<Spanned<Vec<Spanned<i64>>>>,
}

/// `[broker]`: settings the runner writes into a broker it starts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBroker {
    pub(super) max_keepalive_s: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWill {
    pub(super) topic: Spanned<String>,
    pub(super) payload: Spanned<String>,
    pub(super) qos: Option<Spanned<i64>>,
    pub(super) retain: Option<bool>,
    pub(super) delay_s: Option<Spanned<i64>>,
    pub(super) content_type: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublisher {
    pub(super) topic: Spanned<String>,
    pub(super) qos: Option<Spanned<i64>>,
    pub(super) every_ms: Spanned<i64>,
    pub(super) from: Option<Spanned<String>>,
    pub(super) count: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTakeover {
    pub(super) after_ms: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMonit {
    pub(super) qos: Option<Spanned<i64>>,
    pub(super) clean_session: Option<Spanned<bool>>,
    pub(super) away_after_ms: Option<Spanned<i64>>,
    pub(super) back_after_drop_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscribe {
    pub(super) topic: Spanned<String>,
    pub(super) qos: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub(super) kind: Spanned<String>,
    pub(super) cycle: Spanned<i64>,
    pub(super) trigger: Option<Spanned<String>>,
    pub(super) after_ms: Option<Spanned<i64>>,
    pub(super) heal_after_ms: Option<Spanned<i64>>,
    pub(super) direction: Option<Spanned<String>>,
    pub(super) new_connections: Option<Spanned<String>>,
    pub(super) delay_ms: Option<Spanned<i64>>,
    pub(super) jitter_ms: Option<Spanned<i64>>,
    pub(super) bytes_per_s: Option<Spanned<i64>>,
    pub(super) packets: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) restart: Option<Spanned<bool>>,
    /// idle-timeout: the silence after which the intermediary closes the connection.
    pub(super) idle_ms: Option<Spanned<i64>>,
    /// idle-timeout: how it closes it, "fin" or "rst".
    pub(super) close: Option<Spanned<String>>,
    /// ws-drop: the WebSocket frame kinds that vanish ("data", "ping", "pong", "close").
    pub(super) frames: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) layer: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub(super) will: Option<bool>,
}

/// Checks values against their ranges, turning spans into line numbers.
pub(super) struct Validator<'a> {
    pub(super) source: &'a str,
    pub(super) text: &'a str,
    /// The scenario's protocol, once read: keys only MQTT 5 has are refused on 3.1.1.
    pub(super) protocol: Protocol,
}

impl Validator<'_> {
    /// A key only MQTT 5 can express: refused on 3.1.1 rather than ignored.
    pub(super) fn v5_only(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
    ) -> Result<(), ScenarioError> {
        if self.protocol == Protocol::V5 {
            Ok(())
        } else {
            self.err(
                span,
                key,
                "is an MQTT 5 feature: set protocol = \"5\"".to_string(),
            )
        }
    }

    /// A duration in milliseconds, at least `lo` and at most an hour.
    pub(super) fn ms(
        &self,
        x: &Spanned<i64>,
        key: &str,
        lo: i64,
    ) -> Result<Duration, ScenarioError> {
        Ok(Duration::from_millis(self.int_in(x, key, lo, 3_600_000)?))
    }

    /// A top-level timing key: its value checked against its range in [`TIMING`], or its
    /// default there when the file leaves it out.
    pub(super) fn timing(&self, x: &Option<Spanned<i64>>, key: &str) -> Result<u64, ScenarioError> {
        let t = TIMING
            .iter()
            .find(|t| t.key == key)
            .expect("every timing key is in TIMING");
        match x {
            Some(x) => self.int_in(x, key, t.min, t.max),
            None => Ok(t.default as u64),
        }
    }

    pub(super) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: String,
    ) -> Result<T, ScenarioError> {
        Err(ScenarioError {
            file: self.source.to_string(),
            line: Some(self.line_of(span.start)),
            key: Some(key.to_string()),
            message,
        })
    }

    pub(super) fn int_in(
        &self,
        v: &Spanned<i64>,
        key: &str,
        lo: i64,
        hi: i64,
    ) -> Result<u64, ScenarioError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return self.err(
                v.span(),
                key,
                format!("{x} is out of range: expected {lo} to {hi}"),
            );
        }
        Ok(x as u64)
    }

    pub(super) fn choice<T: for<'de> Deserialize<'de>>(
        &self,
        v: &Spanned<String>,
        key: &str,
        allowed: &str,
    ) -> Result<T, ScenarioError> {
        let s = v.get_ref();
        T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s))
            .or_else(|_| {
                self.err(
                    v.span(),
                    key,
                    format!("unknown value {s:?}: expected one of {allowed}"),
                )
            })
    }
}

/// `[fleet]`: many willies (`fleet.rs` validates it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    pub(super) willies: Spanned<i64>,
    pub(super) wave_size: Option<Spanned<i64>>,
    pub(super) wave_interval_ms: Option<Spanned<i64>>,
}

/// A top-level timing key of a scenario file: its range and the value it takes when left out.
#[derive(Debug, Clone, Copy)]
pub struct TimingKey {
    pub key: &'static str,
    pub min: i64,
    pub max: i64,
    pub default: i64,
    /// What it sets, for `unplug reference`.
    pub meaning: &'static str,
}

/// The timing keys, with defaults that make the seed's shape (keepalive 2 s, four cycles of 2 s
/// connected and 1 s apart): a scenario file can leave them all out.
pub const TIMING: [TimingKey; 5] = [
    TimingKey {
        key: "keepalive_s",
        // rumqttc refuses a keepalive under 1 s, and 0 would switch keepalive off entirely:
        // no timer, nothing to measure.
        min: 1,
        max: 65535,
        default: 2,
        meaning: "willy's MQTT keepalive, in seconds",
    },
    TimingKey {
        key: "cycles",
        min: 1,
        max: 1000,
        default: 4,
        meaning: "how many connect/publish/disconnect cycles willy runs",
    },
    TimingKey {
        key: "connected_for_ms",
        min: 0,
        max: 3_600_000,
        default: 2000,
        meaning: "how long willy stays connected after publishing \"true\", before \"false\"",
    },
    TimingKey {
        key: "idle_ms",
        min: 0,
        max: 3_600_000,
        default: 1000,
        meaning: "after a clean disconnect, how long before the next cycle",
    },
    TimingKey {
        key: "reconnect_ms",
        min: 10,
        max: 3_600_000,
        default: 1000,
        meaning: "between failed connection attempts",
    },
];
