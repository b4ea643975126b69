//! The run's journal: everything that happens becomes a [`Record`] first.
//!
//! ```text
//!  willy ─┐
//!  monit ─┤  Journal::record(actor, event)      ┌─> NAME.events.jsonl (one JSON object a line)
//!  proxy ─┼─ stamps ms (monotonic) + t (UTC) ──>│   NAME.log (seed compose style)
//!  mqtt  ─┤  and sends it down one channel      ├─> the terminal (unless --quiet)
//!  runner┘                                      └─> Vec<Record> handed to the checks
//! ```
//!
//! Both clocks are read at the moment of the call, so a record's time is when it happened, not
//! when the writer got to it. Checks and reports read only records, never the live actors.
//!
//! `mod.rs` holds the types; `format.rs` the log line of each; `packet.rs` a wire packet's
//! typed parts as the JSONL spells them; `journal.rs` the writer;
//! `read.rs` a saved journal read back in bounded memory; `error_kind.rs` what kind of failure
//! a client's error text names.

mod error_kind;
mod format;
mod journal;
mod live;
mod packet;
mod read;
pub mod thin;

pub use error_kind::ErrorKind;
pub use journal::{ms_of, read_jsonl, write_files, Budget, Cursor, Echo, Filter, Fresh, Journal};
pub use read::{for_each_record, for_each_record_within, Lines, Piece, ReadLimits, PUBLISH_COST};

/// The `fault` a connection closed by an intermediary's idle timeout is recorded with
/// (`ConnectionCut`): written by the proxy, read by the judge.
pub const IDLE_TIMEOUT_FAULT: &str = "idle-timeout";

/// How log lines name the two sides of a proxied connection: willy and the broker in a run;
/// the device and the upstream in front of a person's device (`unplug proxy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    #[default]
    Run,
    Device,
}

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::mqtt::PacketKind;
use crate::tap::{Fields, Framing, WsOpcode};

/// Who a record is about: the log's first column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Willy,
    Monit,
    /// The third client: publishes to a topic at a fixed interval, straight to the broker.
    Pubby,
    /// A second client with willy's client id (a takeover).
    Twin,
    Mqtt,
    Proxy,
    Wire,
    Runner,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Willy => "willy",
            Actor::Monit => "monit",
            Actor::Pubby => "pubby",
            Actor::Twin => "twin",
            Actor::Mqtt => "mqtt",
            Actor::Proxy => "proxy",
            Actor::Wire => "wire",
            Actor::Runner => "runner",
        }
    }
}

/// Which side of a proxied connection something happened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The client (willy) side of the proxy.
    Client,
    /// The broker side of the proxy.
    Broker,
}

/// What happened, in the past tense. Serialized flat into the JSONL line next to `ms`, `t` and
/// `actor`, with the variant name in `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run's id, as its summary carries it (`unplug judge` reads it back).
    RunIdentified { run_id: String },
    /// The runner has started every part and is about to drive the cycles.
    RunStarted {
        scenario: String,
        broker: String,
        transport: String,
        protocol: String,
        keepalive_s: u64,
    },
    /// What the run runs, whole, so that a saved journal can be judged again (`unplug judge`):
    /// the validated scenario, and the broker profile the checks read, by the name
    /// `--profile` takes (`rumqttd`, `mosquitto 2.0.11`, `unknown broker`).
    ScenarioRecorded {
        scenario: Box<crate::scenario::Scenario>,
        profile: String,
    },
    /// willy begins a cycle (the seed's banner).
    CycleStarted { cycle: u32 },
    /// willy is about to connect with this configuration.
    Connecting {
        url: String,
        will: Option<String>,
        attempt: u32,
    },
    /// The client library reported the broker's CONNACK.
    Connected { session_present: bool },
    /// The client library wrote a PUBLISH to its socket.
    Published { topic: String, payload: String },
    /// willy asked its client library to disconnect cleanly.
    DisconnectRequested,
    /// The client library wrote DISCONNECT and willy closed its connection.
    Disconnected,
    /// willy ended its cycle without DISCONNECT and kept the connection open, as the scenario
    /// asks (`[willy] leave_open`): the next cycle's CONNECT takes it over.
    LeftOpen,
    /// The client library reported an error (connection refused, timeout, ping timeout ...).
    ConnectionFailed { error: String },
    /// A flaky monit closed its connection without DISCONNECT, as scheduled.
    ConnectionAbandoned,
    /// monit's subscription was acknowledged.
    Subscribed { filter: String },
    /// monit received a message.
    MessageReceived {
        topic: String,
        payload: String,
        retain: bool,
        qos: u8,
    },
    /// willy's client got a message on its own subscription.
    Received {
        topic: String,
        payload: String,
        qos: u8,
        retain: bool,
        /// The DUP flag: the broker says it may have sent this one before [MQTT-3.3.1-1].
        dup: bool,
    },
    /// The broker granted a subscription (SUBACK): the QoS per filter, 128 for a failure.
    SubscribeGranted { filter: String, granted: Vec<u8> },
    /// The late subscriber (connected after the will) got a message: a retained one, if any.
    LateReceived {
        topic: String,
        payload: String,
        retain: bool,
    },
    /// The late subscriber's subscription was acknowledged.
    LateSubscribed,
    /// The proxy accepted a connection from willy.
    ConnectionAccepted {
        conn: u64,
        /// True when it was accepted during an outage and is being held (the SYN into a dead link).
        held: bool,
    },
    /// The proxy opened the broker side of a connection.
    UpstreamOpened { conn: u64 },
    /// One side of a proxied connection was closed (EOF or error) as seen by the proxy.
    SideClosed { conn: u64, side: Side, how: String },
    /// A proxied connection is gone on both sides.
    ConnectionClosed {
        conn: u64,
        up_bytes: u64,
        down_bytes: u64,
        dropped_up_bytes: u64,
        dropped_down_bytes: u64,
    },
    /// A drop fault made one MQTT packet vanish.
    PacketDropped {
        conn: u64,
        /// Who sent it.
        from: Side,
        packet: String,
    },
    /// A fault acted on one connection (reset it, closed it, ...).
    ConnectionCut {
        conn: u64,
        fault: String,
        /// What both sides got, e.g. "RST to willy and to the broker".
        how: String,
    },
    /// A fault acted on willy's process.
    ProcessSignalled { pid: u32, signal: String },
    /// The proxy's listener was closed (refuse) or opened again.
    ListenerChanged { open: bool },
    /// A fault took effect.
    FaultApplied {
        fault: String,
        /// Which of the scenario's faults (1-based, in file order); 0 in older records.
        #[serde(default)]
        n: u32,
        /// For each connection open at that moment: when the proxy last forwarded client bytes
        /// to the broker (ms since the run's start), or None if it never did.
        last_upstream: Vec<ConnLastUpstream>,
    },
    /// A fault was lifted.
    FaultHealed {
        fault: String,
        #[serde(default)]
        n: u32,
    },
    /// An MQTT packet the wire tap decoded in the bytes passing the proxy.
    Packet {
        conn: u64,
        /// Who sent it: `client` is willy -> mqtt.
        from: Side,
        /// A fault swallowed it: it never reached the other side.
        dropped: bool,
        /// `PINGREQ`, `CONNECT`, ...
        kind: PacketKind,
        /// `tcp`, or the WebSocket frame that carried it: `ws binary masked`.
        #[serde(with = "packet::framing")]
        framing: Framing,
        size: usize,
        /// The whole packet in hex when it is 16 bytes or less (seed 001: `c000`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
        /// The packet's fields (client id, keepalive, will, topic, reason code ...), written
        /// with their keys in alphabetical order.
        #[serde(
            default,
            skip_serializing_if = "Fields::is_none",
            serialize_with = "packet::serialize_fields"
        )]
        fields: Fields,
    },
    /// A run of QoS 0 PUBLISH packets one side sent back to back with one topic, retain flag
    /// and payload size, as one record: what the wire tap records instead of a `packet` each
    /// when told to aggregate floods (`[tap] publishes = "runs"`). Exact: every PUBLISH is in
    /// exactly one run or one `packet` record.
    PublishRun {
        conn: u64,
        from: Side,
        dropped: bool,
        /// What the PUBLISHes of the run share.
        topic: String,
        qos: u8,
        retain: bool,
        payload_len: usize,
        /// How many PUBLISH packets, and their bytes (MQTT packet sizes).
        count: u64,
        bytes: u64,
        /// When the first and the last of them were forwarded (ms since the run's start).
        first_ms: f64,
        last_ms: f64,
    },
    /// Something else the wire tap saw: the HTTP upgrade, a WebSocket control frame
    /// (ping, pong, close), or bytes it could not decode.
    WireFrame {
        conn: u64,
        from: Side,
        dropped: bool,
        what: String,
    },
    /// A line of the broker's own log.
    BrokerLog { level: String, line: String },
    /// A free-form line from the runner.
    Note { message: String },
    /// The runner stopped driving and is judging.
    RunEnded { reason: String },
    /// The judge found a step of the run's design that did not happen (recorded after the
    /// run, about the moment `at_ms`): a clean disconnect with no DISCONNECT on the wire, a
    /// fault in another cycle. Facts never read it: a saved run is judged again from the rest.
    StepMissing {
        cycle: u32,
        at_ms: f64,
        words: String,
    },
    /// The judge's account of a message monit got (recorded after the run, about the message
    /// received at `received_ms`): a will, or one nothing accounts for. willy's and pubby's
    /// own messages are not repeated here.
    MessageAccounted {
        received_ms: f64,
        topic: String,
        payload: String,
        /// `the will of cycle 2`, `unaccounted: no client published it`.
        source: String,
    },
}

impl Event {
    /// The opcode of the WebSocket control frame (ping, pong, close) a `WireFrame` records,
    /// typed: read back from its `what` as the wire codec wrote it, so the journal's JSON keeps
    /// its form and a committed run re-judges the same. `None` for every other record.
    pub fn ws_frame_kind(&self) -> Option<WsOpcode> {
        match self {
            Event::WireFrame { what, .. } => crate::tap::codec::ws_control_opcode(what),
            _ => None,
        }
    }
}

/// When the proxy last forwarded client bytes on one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnLastUpstream {
    pub conn: u64,
    pub ms: Option<f64>,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Milliseconds since the run's start, from the one monotonic clock.
    pub ms: f64,
    /// Wall-clock time, for the log lines only; never used to measure.
    #[serde(serialize_with = "format::serialize_t")]
    pub t: DateTime<Utc>,
    pub actor: Actor,
    #[serde(flatten)]
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    #[test]
    fn journal_milliseconds_print_without_float_noise() {
        for (ns, text) in [
            (37_109_145, "37.109145"),
            (37_648_748, "37.648748"),
            (5_000, "0.005"),
        ] {
            let ms = super::ms_of(std::time::Duration::from_nanos(ns));
            assert_eq!(serde_json::to_string(&ms).unwrap(), text);
        }
    }

    #[test]
    fn a_closed_journal_records_nothing_more() {
        let j = Journal::in_memory();
        j.record(Actor::Runner, Event::LateSubscribed);
        let at_close = j.close().unwrap();
        j.record(Actor::Runner, Event::LateSubscribed);
        assert_eq!(at_close.len(), 1);
        assert_eq!(j.records(), at_close);
    }

    use super::*;

    #[test]
    fn a_record_stamped_earlier_takes_its_place_in_time_order() {
        let j = Journal::in_memory();
        let earlier = (Instant::now(), Utc::now());
        j.record(Actor::Runner, Event::LateSubscribed);
        j.record_at(earlier.0, earlier.1, Actor::Runner, Event::Disconnected);
        let same = Instant::now();
        j.record_at(
            same,
            Utc::now(),
            Actor::Runner,
            Event::CycleStarted { cycle: 1 },
        );
        j.record_at(
            same,
            Utc::now(),
            Actor::Runner,
            Event::CycleStarted { cycle: 2 },
        );
        let events: Vec<Event> = j.records().into_iter().map(|r| r.event).collect();
        assert_eq!(
            events,
            [
                Event::Disconnected,
                Event::LateSubscribed,
                Event::CycleStarted { cycle: 1 },
                Event::CycleStarted { cycle: 2 },
            ]
        );
    }

    #[test]
    fn record_round_trips_through_jsonl() {
        let j = Journal::in_memory();
        j.record(
            Actor::Monit,
            Event::MessageReceived {
                topic: "test/connected".into(),
                payload: "false".into(),
                retain: false,
                qos: 0,
            },
        );
        let rec = &j.records()[0];
        let json = serde_json::to_string(rec).unwrap();
        assert!(json.contains(r#""actor":"monit""#), "{json}");
        assert!(json.contains(r#""event":"message_received""#), "{json}");
        let mut back: Record = serde_json::from_str(&json).unwrap();
        // serde_json's float parsing may land one ulp off (no `float_roundtrip` feature): the
        // time survives to far below a microsecond, which is all a record's time means.
        assert!((back.ms - rec.ms).abs() < 1e-9, "{} vs {}", back.ms, rec.ms);
        back.ms = rec.ms;
        assert_eq!(&back, rec);
    }

    #[test]
    fn log_line_has_aligned_actor_and_nanosecond_utc() {
        let j = Journal::in_memory();
        j.record(
            Actor::Willy,
            Event::Published {
                topic: "test/connected".into(),
                payload: "true".into(),
            },
        );
        let line = j.records()[0].log_line();
        assert!(line.starts_with("willy  | "), "{line}");
        assert!(line.ends_with("Z connected: true was published"), "{line}");
        // 2026-11-22T12:41:18.358688100Z: nine fractional digits
        let ts = line.split_whitespace().nth(2).unwrap();
        assert_eq!(ts.split('.').nth(1).unwrap().len(), 10, "{ts}");
    }
}
