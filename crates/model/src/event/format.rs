//! Each record as a log line, in the seed's compose style: `willy  | 2026-...Z connected`.

use std::fmt;

use std::cell::RefCell;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Event, Record, Side};

impl Record {
    /// The record as a log line in the seed's compose style: `willy  | 2026-...Z connected`.
    pub fn log_line(&self) -> String {
        self.log_line_display().to_string()
    }

    /// The log line as a journal of that naming writes it (`unplug proxy`'s: the device and the
    /// upstream).
    pub fn log_line_as(&self, naming: super::Naming) -> String {
        named(naming, || self.log_line())
    }

    /// The log line, written where the caller wants it (the journal's reused buffer).
    pub fn log_line_display(&self) -> impl fmt::Display + '_ {
        LogLine(self)
    }
}

struct LogLine<'a>(&'a Record);

impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        LOG_TIME.with_borrow_mut(|c| {
            let t = c.text(r.t, |t| t.to_rfc3339_opts(SecondsFormat::Nanos, true));
            write!(f, "{:<6} | {t} {}", r.actor.as_str(), r.event)
        })
    }
}

/// The last wall time formatted, and its text: the wire records of one chunk share their
/// stamp, so in a flood the time is formatted once per chunk, not once per record.
#[derive(Default)]
pub(super) struct TimeText {
    t: Option<DateTime<Utc>>,
    text: String,
}

impl TimeText {
    fn text(&mut self, t: DateTime<Utc>, format: impl FnOnce(&DateTime<Utc>) -> String) -> &str {
        if self.t != Some(t) {
            self.text = format(&t);
            self.t = Some(t);
        }
        &self.text
    }
}

/// Run `f` with log lines naming the sides as `naming` says (the journal's writer sets it
/// around each line it formats; the default is a run's names).
pub(super) fn named<R>(naming: super::Naming, f: impl FnOnce() -> R) -> R {
    let before = NAMING.replace(naming);
    let r = f();
    NAMING.set(before);
    r
}

/// (the client, the broker) as this thread's log lines name them.
fn sides() -> (&'static str, &'static str) {
    match NAMING.get() {
        super::Naming::Run => ("willy", "broker"),
        super::Naming::Device => ("device", "upstream"),
    }
}

thread_local! {
    static NAMING: std::cell::Cell<super::Naming> = const { std::cell::Cell::new(super::Naming::Run) };
    static LOG_TIME: RefCell<TimeText> = RefCell::default();
    static JSON_TIME: RefCell<TimeText> = RefCell::default();
}

/// `t` in the JSONL as chrono writes it (`serialize_with`), formatted once per distinct time.
pub(super) fn serialize_t<S: serde::Serializer>(
    t: &DateTime<Utc>,
    s: S,
) -> Result<S::Ok, S::Error> {
    JSON_TIME.with_borrow_mut(|c| {
        let text = c.text(*t, |t| {
            let quoted = serde_json::to_string(t).expect("a time always serializes");
            quoted.trim_matches('"').to_string()
        });
        s.serialize_str(text)
    })
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By who records them; each group writes its own.
        match self {
            Event::RunStarted { .. }
            | Event::RunIdentified { .. }
            | Event::ScenarioRecorded { .. }
            | Event::CycleStarted { .. }
            | Event::BrokerLog { .. }
            | Event::Note { .. }
            | Event::RunEnded { .. }
            | Event::StepMissing { .. }
            | Event::MessageAccounted { .. } => self.fmt_run(f),
            Event::Connecting { .. }
            | Event::Connected { .. }
            | Event::Published { .. }
            | Event::DisconnectRequested
            | Event::Disconnected
            | Event::LeftOpen
            | Event::ConnectionFailed { .. }
            | Event::ConnectionAbandoned
            | Event::Subscribed { .. }
            | Event::LateReceived { .. }
            | Event::Received { .. }
            | Event::SubscribeGranted { .. }
            | Event::LateSubscribed
            | Event::MessageReceived { .. } => self.fmt_client(f),
            Event::ConnectionAccepted { .. }
            | Event::UpstreamOpened { .. }
            | Event::SideClosed { .. }
            | Event::ConnectionClosed { .. }
            | Event::PacketDropped { .. }
            | Event::ConnectionCut { .. }
            | Event::ProcessSignalled { .. }
            | Event::ListenerChanged { .. }
            | Event::FaultApplied { .. }
            | Event::FaultHealed { .. } => self.fmt_proxy(f),
            Event::Packet { .. } | Event::PublishRun { .. } | Event::WireFrame { .. } => {
                self.fmt_wire(f)
            }
        }
    }
}

impl Event {
    /// The runner's own: the run, its cycles, the broker's log, notes, the accounting.
    fn fmt_run(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
            Event::RunIdentified { run_id } => write!(f, "run {run_id}"),
            Event::ScenarioRecorded { scenario, profile } => write!(
                f,
                "judged by the {profile} profile; scenario {} recorded whole in the events.jsonl",
                scenario.name
            ),
            Event::CycleStarted { cycle } => {
                let bar = "_".repeat(38);
                write!(f, "{bar} Cycle {cycle} {bar}")
            }
            Event::BrokerLog { line, .. } => write!(f, "{line}"),
            Event::Note { message } => write!(f, "{message}"),
            Event::RunEnded { reason } => write!(f, "run ended: {reason}"),
            Event::StepMissing { words, .. } => {
                write!(f, "a step of the design did not happen: {words}")
            }
            Event::MessageAccounted {
                received_ms,
                topic,
                payload,
                source,
            } => write!(
                f,
                "monit's message at {received_ms:.0} ms ({topic}: {payload}) was {source}"
            ),
            _ => unreachable!("Event::fmt sends only these events to fmt_run"),
        }
    }

    /// willy's and monit's: connecting, publishing, subscribing, receiving.
    fn fmt_client(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            Event::LeftOpen => write!(
                f,
                "left the connection open without DISCONNECT (leave_open): the next cycle takes it over"
            ),
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
            _ => unreachable!("Event::fmt sends only these events to fmt_client"),
        }
    }

    /// The proxy's and the faults': connections, cuts, faults applied and healed.
    fn fmt_proxy(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::ConnectionAccepted { conn, held } => {
                if *held {
                    write!(f, "conn {conn}: accepted while the network is down; held")
                } else {
                    write!(f, "conn {conn}: accepted from {}", sides().0)
                }
            }
            Event::UpstreamOpened { conn } => {
                write!(f, "conn {conn}: connected to the {}", sides().1)
            }
            Event::SideClosed { conn, side, how } => {
                let side = match side {
                    Side::Client => sides().0,
                    Side::Broker => sides().1,
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
                let from = match (NAMING.get(), from) {
                    (super::Naming::Run, Side::Client) => "willy",
                    (super::Naming::Device, Side::Client) => "the device",
                    (_, Side::Broker) => "the broker",
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
                write_fault_number(f, *n)?;
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
                write_fault_number(f, *n)?;
                Ok(())
            }
            _ => unreachable!("Event::fmt sends only these events to fmt_proxy"),
        }
    }

    /// The wire tap's: packets, runs of PUBLISHes, WebSocket frames.
    fn fmt_wire(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
                write!(
                    f,
                    "conn {conn}: {} {kind} ({framing}, {size} B",
                    arrow(*from)
                )?;
                if let Some(h) = hex {
                    write!(f, ": {h}")?;
                }
                write!(f, ")")?;
                write!(f, "{}", super::packet::LogFields(fields))?;
                if *dropped {
                    write!(f, " dropped by the fault")?;
                }
                Ok(())
            }
            Event::PublishRun {
                conn,
                from,
                dropped,
                topic,
                qos,
                retain,
                payload_len,
                count,
                bytes,
                first_ms,
                last_ms,
            } => {
                write!(
                    f,
                    "conn {conn}: {} {count} PUBLISH ({bytes} B) from {first_ms:.3} to {last_ms:.3} ms: topic={topic} qos={qos} retain={retain} payload_len={payload_len}",
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
            _ => unreachable!("Event::fmt sends only these events to fmt_wire"),
        }
    }
}

/// Which fault: of the scenario's, in a run; in front of a device, the proxy's own count (its
/// toxics' faults).
fn write_fault_number(f: &mut fmt::Formatter<'_>, n: u32) -> fmt::Result {
    match (n, NAMING.get()) {
        (0, _) => Ok(()),
        (n, super::Naming::Run) => write!(f, " (fault {n} of the scenario)"),
        (n, super::Naming::Device) => write!(f, " (fault {n})"),
    }
}

/// The direction of a wire record as the broker's verbose log would say it.
fn arrow(from: Side) -> &'static str {
    match (NAMING.get(), from) {
        (super::Naming::Run, Side::Client) => "willy -> mqtt",
        (super::Naming::Run, Side::Broker) => "mqtt -> willy",
        (super::Naming::Device, Side::Client) => "device -> upstream",
        (super::Naming::Device, Side::Broker) => "upstream -> device",
    }
}
