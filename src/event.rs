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

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

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
        kind: String,
        /// `tcp`, or the WebSocket frame that carried it: `ws binary masked`.
        framing: String,
        size: usize,
        /// The whole packet in hex when it is 16 bytes or less (seed 001: `c000`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
        /// The packet's fields (client id, keepalive, will, topic, reason code ...).
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        fields: serde_json::Value,
    },
    /// A run of PUBLISH packets one side sent back to back, as one record: what the wire tap
    /// records instead of a `packet` each when a proxy is told to aggregate floods. Exact:
    /// every PUBLISH is in exactly one run or one `packet` record.
    PublishRun {
        conn: u64,
        from: Side,
        dropped: bool,
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
    pub t: DateTime<Utc>,
    pub actor: Actor,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    /// The record as a log line in the seed's compose style: `willy  | 2026-...Z connected`.
    pub fn log_line(&self) -> String {
        format!(
            "{:<6} | {} {}",
            self.actor.as_str(),
            self.t.to_rfc3339_opts(SecondsFormat::Nanos, true),
            self.event
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::RunStarted {
                scenario,
                broker,
                transport,
                protocol,
                keepalive_s,
            } => write!(
                f,
                "scenario {scenario}: broker {broker}, transport {transport}, MQTT {protocol}, keepalive {keepalive_s} s"
            ),
            Event::ScenarioRecorded { scenario, profile } => write!(
                f,
                "judged by the {profile} profile; scenario {} recorded whole in the events.jsonl",
                scenario.name
            ),
            Event::CycleStarted { cycle } => {
                let bar = "_".repeat(38);
                write!(f, "{bar} Cycle {cycle} {bar}")
            }
            Event::Connecting { url, will, attempt } => {
                let will = match will {
                    Some(w) => format!("{{ will: {w} }}"),
                    None => "{}".to_string(),
                };
                if *attempt > 1 {
                    write!(f, "Connection configuration {url} {will} (attempt {attempt})")
                } else {
                    write!(f, "Connection configuration {url} {will}")
                }
            }
            Event::Connected { session_present } => {
                write!(f, "connected (session present: {session_present})")
            }
            Event::Published { topic, payload } => {
                if topic == crate::scenario::STATUS_TOPIC {
                    write!(f, "connected: {payload} was published")
                } else {
                    write!(f, "{topic}: {payload} was published")
                }
            }
            Event::DisconnectRequested => write!(f, "disconnect"),
            Event::Disconnected => write!(f, "disconnected"),
            Event::ConnectionFailed { error } => write!(f, "connection lost: {error}"),
            Event::ConnectionAbandoned => {
                write!(f, "closed its connection without DISCONNECT (flaky, as scheduled)")
            }
            Event::Subscribed { filter } => write!(f, "subscribed to {filter}"),
            Event::LateReceived {
                topic,
                payload,
                retain,
            } => write!(f, "late subscriber: {topic}: {payload} (retain {})", u8::from(*retain)),
            Event::Received {
                topic,
                payload,
                qos,
                retain,
                dup,
            } => write!(
                f,
                "received {topic}: {payload} (q{qos}, r{}, dup {})",
                u8::from(*retain),
                u8::from(*dup)
            ),
            Event::SubscribeGranted { filter, granted } => {
                let g: Vec<String> = granted
                    .iter()
                    .map(|q| match q {
                        0..=2 => format!("QoS {q}"),
                        _ => format!("failure 0x{q:02x}"),
                    })
                    .collect();
                write!(f, "subscribed to {filter}: granted {}", g.join(", "))
            }
            Event::LateSubscribed => write!(f, "late subscriber: subscribed to {}", crate::scenario::MONITOR_FILTER),
            Event::MessageReceived {
                topic,
                payload,
                retain,
                qos,
            } => {
                write!(f, "{topic}: {payload}")?;
                if *retain || *qos > 0 {
                    write!(f, " (q{qos}, r{})", u8::from(*retain))?;
                }
                Ok(())
            }
            Event::ConnectionAccepted { conn, held } => {
                if *held {
                    write!(f, "conn {conn}: accepted while the network is down; held")
                } else {
                    write!(f, "conn {conn}: accepted from willy")
                }
            }
            Event::UpstreamOpened { conn } => write!(f, "conn {conn}: connected to the broker"),
            Event::SideClosed { conn, side, how } => {
                let side = match side {
                    Side::Client => "willy",
                    Side::Broker => "broker",
                };
                write!(f, "conn {conn}: {side} side {how}")
            }
            Event::ConnectionClosed {
                conn,
                up_bytes,
                down_bytes,
                dropped_up_bytes,
                dropped_down_bytes,
            } => write!(
                f,
                "conn {conn}: closed; forwarded {up_bytes} B up, {down_bytes} B down; dropped {dropped_up_bytes} B up, {dropped_down_bytes} B down"
            ),
            Event::PacketDropped { conn, from, packet } => {
                let from = match from {
                    Side::Client => "willy",
                    Side::Broker => "the broker",
                };
                write!(f, "conn {conn}: dropped a {packet} from {from}")
            }
            Event::ConnectionCut { conn, fault, how } => {
                write!(f, "conn {conn}: fault {fault} cut it: {how}")
            }
            Event::ProcessSignalled { pid, signal } => {
                write!(f, "willy's process {pid} got {signal}")
            }
            Event::ListenerChanged { open } => {
                if *open {
                    write!(f, "listener open again")
                } else {
                    write!(f, "listener closed: new connections are refused")
                }
            }
            Event::FaultApplied {
                fault,
                n,
                last_upstream,
            } => {
                write!(f, "fault {fault} applied")?;
                if *n > 0 {
                    write!(f, " (fault {n} of the scenario)")?;
                }
                for c in last_upstream {
                    match c.ms {
                        Some(ms) => write!(f, "; conn {}: last bytes to broker at {ms:.1} ms", c.conn)?,
                        None => write!(f, "; conn {}: nothing sent to broker yet", c.conn)?,
                    }
                }
                Ok(())
            }
            Event::FaultHealed { fault, n } => {
                write!(f, "fault {fault} healed")?;
                if *n > 0 {
                    write!(f, " (fault {n} of the scenario)")?;
                }
                Ok(())
            }
            Event::Packet {
                conn,
                from,
                dropped,
                kind,
                framing,
                size,
                hex,
                fields,
            } => {
                write!(f, "conn {conn}: {} {kind} ({framing}, {size} B", arrow(*from))?;
                if let Some(h) = hex {
                    write!(f, ": {h}")?;
                }
                write!(f, ")")?;
                if let serde_json::Value::Object(m) = fields {
                    for (k, v) in m {
                        match v {
                            serde_json::Value::Null => {}
                            serde_json::Value::String(s) => write!(f, " {k}={s}")?,
                            other => write!(f, " {k}={other}")?,
                        }
                    }
                }
                if *dropped {
                    write!(f, " dropped by the fault")?;
                }
                Ok(())
            }
            Event::PublishRun {
                conn,
                from,
                dropped,
                count,
                bytes,
                first_ms,
                last_ms,
            } => {
                write!(
                    f,
                    "conn {conn}: {} {count} PUBLISH ({bytes} B) from {first_ms:.3} to {last_ms:.3} ms",
                    arrow(*from)
                )?;
                if *dropped {
                    write!(f, " dropped by the fault")?;
                }
                Ok(())
            }
            Event::WireFrame {
                conn,
                from,
                dropped,
                what,
            } => {
                write!(f, "conn {conn}: {} {what}", arrow(*from))?;
                if *dropped {
                    write!(f, " dropped by the fault")?;
                }
                Ok(())
            }
            Event::BrokerLog { line, .. } => write!(f, "{line}"),
            Event::Note { message } => write!(f, "{message}"),
            Event::RunEnded { reason } => write!(f, "run ended: {reason}"),
        }
    }
}

/// The direction of a wire record as the broker's verbose log would say it.
fn arrow(from: Side) -> &'static str {
    match from {
        Side::Client => "willy -> mqtt",
        Side::Broker => "mqtt -> willy",
    }
}

/// Where the writer puts records besides the in-memory list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Echo {
    /// Print log lines on stdout.
    pub stdout: bool,
    /// Print `wire` lines too (they always go to the files).
    pub wire: bool,
}

/// The shared handle every part records through. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    start: Instant,
    inner: Arc<Mutex<Sink>>,
}

struct Sink {
    records: Vec<Record>,
    /// Each record is written whole, in one write, as it is recorded: a run killed outright
    /// loses at most the line in flight.
    jsonl: Option<File>,
    log: Option<File>,
    echo: Echo,
    /// Where an echoed line goes: given by the runner (the terminal, around its status line),
    /// so the journal knows nothing of the screen.
    print: Option<fn(&str)>,
    /// One JSON line per record, flushed at once: how a child process (willy under a crash or
    /// freeze fault) hands its records to the runner as they happen.
    stream: Option<Box<dyn Write + Send>>,
    /// The first write error, reported once at the end instead of lost.
    error: Option<std::io::Error>,
    /// Set by [`Journal::close`]: what comes later (rumqttd's threads outlive a run) is not
    /// recorded, so the files and the records a run's picture is drawn from are the same.
    closed: bool,
}

impl Default for Sink {
    /// Records in memory only, echoed nowhere.
    fn default() -> Sink {
        Sink {
            records: Vec::new(),
            jsonl: None,
            log: None,
            echo: Echo::default(),
            print: None,
            stream: None,
            error: None,
            closed: false,
        }
    }
}

impl Journal {
    /// A journal that writes each record to `jsonl` (one JSON object a line) and `log` (the
    /// log line) as it goes, so a run that is killed still leaves every line it recorded. The
    /// files are the run's `.inprogress` ones ([`crate::report::files::RunFiles`]).
    /// Lines `echo` selects go to `print`.
    pub fn to_writers(jsonl: File, log: File, echo: Echo, print: fn(&str)) -> Journal {
        Self::with_sink(Sink {
            jsonl: Some(jsonl),
            log: Some(log),
            echo,
            print: Some(print),
            ..Sink::default()
        })
    }

    /// A journal that only keeps records in memory (tests).
    pub fn in_memory() -> Journal {
        Self::with_sink(Sink::default())
    }

    /// A journal that writes each record as one JSON line to `out`, flushed at once.
    pub fn streaming(out: Box<dyn Write + Send>) -> Journal {
        Self::with_sink(Sink {
            stream: Some(out),
            ..Sink::default()
        })
    }

    fn with_sink(sink: Sink) -> Journal {
        Journal {
            start: Instant::now(),
            inner: Arc::new(Mutex::new(sink)),
        }
    }

    /// Milliseconds since the run's start on the monotonic clock.
    pub fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64() * 1000.0
    }

    /// The run's start on the monotonic clock.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Record an event now. The clocks are read under the lock, so records are in time order.
    pub fn record(&self, actor: Actor, event: Event) {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if sink.closed {
            return;
        }
        let rec = Record {
            ms: self.ms_since_start(Instant::now()),
            t: Utc::now(),
            actor,
            event,
        };
        sink.write(&rec);
        sink.records.push(rec);
    }

    /// Record an event that happened at `at` (the monotonic clock) and `t` (UTC), both read
    /// earlier by the caller: the proxy stamps its wire records on the data path, where the
    /// bytes were forwarded, and records them later from its recorder. In memory it takes its
    /// place in time order (after the records of the same moment), so the checks, which read
    /// the records in order, see it where it happened; the files get it when it comes.
    pub fn record_at(&self, at: Instant, t: DateTime<Utc>, actor: Actor, event: Event) {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if sink.closed {
            return;
        }
        let rec = Record {
            ms: self.ms_since_start(at),
            t,
            actor,
            event,
        };
        sink.write(&rec);
        // Usually last already; else a few places back (the records made meanwhile).
        let i = sink
            .records
            .iter()
            .rposition(|r| r.ms <= rec.ms)
            .map_or(0, |i| i + 1);
        sink.records.insert(i, rec);
    }

    /// End the journal: flush the files, record nothing more, and return every record, which
    /// is then exactly what the files hold.
    pub fn close(&self) -> std::io::Result<Vec<Record>> {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sink.closed = true;
        Self::flush_sink(&mut sink)?;
        Ok(sink.records.clone())
    }

    /// Flush the files; returns the first write error seen, if any.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Self::flush_sink(&mut sink)
    }

    fn flush_sink(sink: &mut Sink) -> std::io::Result<()> {
        if let Some(w) = sink.jsonl.as_mut() {
            w.flush()?;
        }
        if let Some(w) = sink.log.as_mut() {
            w.flush()?;
        }
        match sink.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<Record> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .clone()
    }
}

impl Sink {
    fn write(&mut self, rec: &Record) {
        let line = rec.log_line();
        if let Some(print) = self.print {
            if self.echo.stdout && (self.echo.wire || rec.actor != Actor::Wire) {
                print(&line);
            }
        }
        let json = serde_json::to_string(rec).expect("records always serialize");
        let mut result = Ok(());
        if let Some(w) = self.jsonl.as_mut() {
            result = result.and_then(|_| w.write_all(format!("{json}\n").as_bytes()));
        }
        if let Some(w) = self.log.as_mut() {
            result = result.and_then(|_| w.write_all(format!("{line}\n").as_bytes()));
        }
        if let Some(w) = self.stream.as_mut() {
            result = result.and_then(|_| writeln!(w, "{json}").and_then(|_| w.flush()));
        }
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }
}

/// Read a saved `NAME.events.jsonl` back (for re-judging or re-drawing a run).
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Record>> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut records: Vec<Record> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not an event record", path.display(), i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    // The proxy's records reach the file a little after they happened (its recorder thread):
    // read back in time order, as the journal held them in memory (a stable sort keeps the
    // order of records of one instant).
    records.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    Ok(records)
}

#[cfg(test)]
mod tests {

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
