//! Scenario files: `scenarios/NAME.toml` -> a validated [`Scenario`].
//!
//! ```text
//!  text --toml + serde (unknown keys refused)--> RawScenario (values keep their spans)
//!       --validate (ranges, cross-key rules)--> Scenario (typed, Durations)
//! ```
//!
//! Every error names the file, the line and the key, and says what was expected.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// The topic willy reports its state on, as in the seed.
pub const STATUS_TOPIC: &str = "test/connected";
/// What monit subscribes to.
pub const MONITOR_FILTER: &str = "test/#";

/// The scenarios shipped in `scenarios/`, compiled in so the binary runs them from anywhere.
pub const BUILTIN: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/builtin_scenarios.rs"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Ws,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Protocol {
    #[serde(rename = "3.1.1")]
    V311,
    #[serde(rename = "5")]
    V5,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::V311 => "3.1.1",
            Protocol::V5 => "5",
        }
    }
}

/// When, within a cycle, a fault takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// willy's CONNACK arrived.
    Connected,
    /// monit received willy's `true` (the seed's moment: the network was cut while connected).
    AfterTrue,
    /// willy is about to publish `false`.
    BeforeFalse,
    /// willy is about to disconnect.
    BeforeDisconnect,
    /// willy has disconnected cleanly.
    Disconnected,
}

impl Trigger {
    pub const ALL: &'static str =
        "connected, after-true, before-false, before-disconnect, disconnected";
}

/// Which way a fault acts on bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Both,
    /// willy -> broker.
    Upstream,
    /// broker -> willy.
    Downstream,
}

impl Direction {
    pub fn up(self) -> bool {
        self != Direction::Downstream
    }
    pub fn down(self) -> bool {
        self != Direction::Upstream
    }
    fn suffix(self) -> &'static str {
        match self {
            Direction::Both => "",
            Direction::Upstream => " upstream",
            Direction::Downstream => " downstream",
        }
    }
}

/// What a connection attempt meets while the fault is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NewConnections {
    /// Accepted and served like any connection (the fault then acts on it too).
    Accept,
    /// Accepted and held without an answer, like a SYN into a dead link.
    Hang,
    /// The proxy's listener is closed: connection refused.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// The unplugged cable: nothing passes, both sockets stay open.
    Blackhole { direction: Direction },
    /// Both sides of every open connection get a TCP RST, at once.
    Reset,
    /// Both sides of every open connection get a FIN, without an MQTT DISCONNECT.
    Close,
    /// Every chunk is delivered `delay` (+ up to `jitter`) after it arrived, in order.
    Latency {
        direction: Direction,
        delay: Duration,
        jitter: Duration,
    },
    /// Bytes go through at most `bytes_per_s`.
    Bandwidth {
        direction: Direction,
        bytes_per_s: u64,
    },
    /// MQTT packets of these types (type nibbles) vanish, packet-exact; the rest passes.
    Drop {
        direction: Direction,
        packets: Vec<u8>,
    },
    /// Open connections are untouched; new ones are refused.
    Refuse,
    /// Open connections are untouched; new ones are held without an answer.
    Hang,
    /// willy's process is killed (SIGKILL): its kernel closes the socket.
    Crash { restart: bool },
    /// willy's process is stopped (SIGSTOP) until the fault heals (SIGCONT).
    Freeze,
}

impl FaultKind {
    /// Short name for logs and tables.
    pub fn label(&self) -> String {
        match self {
            FaultKind::Blackhole { direction } => format!("blackhole{}", direction.suffix()),
            FaultKind::Reset => "reset".to_string(),
            FaultKind::Close => "close".to_string(),
            FaultKind::Latency {
                direction,
                delay,
                jitter,
            } => format!(
                "latency {} ms +{} ms{}",
                delay.as_millis(),
                jitter.as_millis(),
                direction.suffix()
            ),
            FaultKind::Bandwidth {
                direction,
                bytes_per_s,
            } => format!("bandwidth {bytes_per_s} B/s{}", direction.suffix()),
            FaultKind::Drop { direction, packets } => {
                let names: Vec<&str> = packets.iter().map(|&t| crate::mqtt::v311_name(t)).collect();
                format!("drop {}{}", names.join(","), direction.suffix())
            }
            FaultKind::Refuse => "refuse".to_string(),
            FaultKind::Hang => "hang".to_string(),
            FaultKind::Crash { .. } => "crash".to_string(),
            FaultKind::Freeze => "freeze".to_string(),
        }
    }

    /// True when the broker can only learn of the loss through the keepalive timer: nothing
    /// willy sends reaches it and no close does either.
    pub fn silences_client(&self) -> bool {
        match self {
            FaultKind::Blackhole { direction } => direction.up(),
            FaultKind::Freeze => true,
            // A PINGREQ-only stream with its PINGREQs gone is as silent as a cut cable.
            FaultKind::Drop { direction, packets } => direction.up() && packets.contains(&12),
            _ => false,
        }
    }

    /// True when the fault ends willy's connection at once, with a close the broker sees.
    pub fn ends_at_once(&self) -> bool {
        matches!(
            self,
            FaultKind::Reset | FaultKind::Close | FaultKind::Crash { .. }
        )
    }

    /// True when it acts on willy's process rather than on the network.
    pub fn on_process(&self) -> bool {
        matches!(self, FaultKind::Crash { .. } | FaultKind::Freeze)
    }

    /// What new connections meet when the scenario does not say.
    pub fn default_new_connections(&self) -> NewConnections {
        match self {
            FaultKind::Blackhole {
                direction: Direction::Both,
            }
            | FaultKind::Hang => NewConnections::Hang,
            FaultKind::Refuse => NewConnections::Refuse,
            _ => NewConnections::Accept,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub cycle: u32,
    pub trigger: Trigger,
    pub after: Duration,
    pub heal_after: Option<Duration>,
    pub new_connections: NewConnections,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Will {
    pub topic: String,
    pub payload: String,
    #[serde(default)]
    pub qos: u8,
    #[serde(default)]
    pub retain: bool,
    /// MQTT 5 Will Delay Interval, seconds.
    #[serde(default)]
    pub delay_s: Option<u32>,
    /// MQTT 5 Content Type (property 0x03): a will property the server forwards with the will
    /// to v5 subscribers, and must drop for a 3.1.1 one, which has no properties.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// When pubby starts publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishFrom {
    /// As soon as monit is subscribed, before willy's first cycle.
    Start,
    /// When the first fault takes effect (messages published while willy is cut off).
    Cut,
}

/// pubby: a third client, straight to the broker, publishing `1`, `2`, ... to one topic.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Publisher {
    pub topic: String,
    pub qos: u8,
    pub every: Duration,
    pub from: PublishFrom,
    /// Stop after this many; None: until the run ends (at most [`Publisher::MAX_COUNT`]).
    pub count: Option<u32>,
}

impl Publisher {
    /// A bound on an open-ended publisher, whatever the run's length.
    pub const MAX_COUNT: u32 = 100_000;

    pub fn limit(&self) -> u32 {
        self.count.unwrap_or(Self::MAX_COUNT)
    }
}

/// A second client with willy's client id connects straight to the broker, `after` the first
/// fault took effect: the broker must close willy's connection [MQTT-3.1.4-2].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Takeover {
    pub after: Duration,
}

/// How monit subscribes, and whether it drops out for a while (`[monit]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct MonitSetup {
    /// The QoS of monit's subscription to `test/#`.
    pub qos: u8,
    /// false: monit's session (subscription, queued QoS 1/2 messages) outlives its connection.
    pub clean_session: bool,
    /// monit's connection goes away and comes back, if it does.
    pub flaky: Option<Flaky>,
}

impl Default for MonitSetup {
    fn default() -> Self {
        MonitSetup {
            qos: 0,
            clean_session: true,
            flaky: None,
        }
    }
}

/// A flaky monit: it closes its connection without DISCONNECT `away_after` the cut, and
/// reconnects (same client id, same session) `back_after_drop` after the broker dropped willy,
/// so the will is published while monit is away, whatever the broker's keepalive timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Flaky {
    pub away_after: Duration,
    pub back_after_drop: Duration,
}

/// willy's own subscription, made after each CONNACK that has no session.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Subscription {
    pub filter: String,
    pub qos: u8,
}

/// How an MQTT 5 willy ends each cycle: the DISCONNECT it writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct V5Disconnect {
    /// 0x00 normal disconnection, 0x04 disconnect with will message, ...
    pub reason: u8,
    pub form: crate::mqtt::DisconnectForm,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Expect {
    /// The will must reach monit (true) or must never arrive (false).
    pub will: bool,
}

/// A validated scenario: what the runner runs.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Where it came from: a path, or `builtin:NAME`.
    pub source: String,
    pub transport: Transport,
    pub protocol: Protocol,
    pub keepalive: Duration,
    pub cycles: u32,
    pub connected_for: Duration,
    pub idle: Duration,
    pub reconnect: Duration,
    /// How long one connection attempt may take before the client gives up (rumqttc's default: 5 s).
    pub connect_timeout: Duration,
    pub will: Option<Will>,
    /// MQTT 5 Session Expiry Interval willy asks for, seconds.
    #[serde(default)]
    pub session_expiry_s: Option<u32>,
    /// MQTT 5: how willy's clean disconnects are encoded.
    #[serde(default)]
    pub disconnect: Option<V5Disconnect>,
    /// A second subscriber connects once the will has arrived, to see whether it was retained.
    #[serde(default)]
    pub late_subscriber: bool,
    /// The protocol monit subscribes with, when it is not willy's: a v5 willy's will delivered
    /// to a 3.1.1 subscriber.
    #[serde(default)]
    pub monit_protocol: Option<Protocol>,
    /// monit's subscription QoS and session, and its schedule if it is flaky.
    #[serde(default)]
    pub monit: MonitSetup,
    /// pubby, the third client, if the scenario has one.
    #[serde(default)]
    pub publisher: Option<Publisher>,
    /// What willy subscribes to, if anything.
    #[serde(default)]
    pub subscribe: Option<Subscription>,
    /// willy's CONNECT asks for a new session: Clean Session (3.1.1) / Clean Start (5).
    /// false: the broker keeps willy's subscriptions and queued messages across connections.
    #[serde(default = "yes")]
    pub clean_session: bool,
    /// A second client takes willy's client id over while willy is cut off.
    #[serde(default)]
    pub takeover: Option<Takeover>,
    pub faults: Vec<Fault>,
    pub expect: Expect,
    /// How long after the cut the run keeps watching for a drop or a will later than the
    /// broker's profile allows (`--observe`); None: [`Scenario::observe_window`]'s default.
    #[serde(default)]
    pub observe: Option<Duration>,
}

fn yes() -> bool {
    true
}

/// Timing overrides from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub keepalive_s: Option<u64>,
    /// The seed's own timing: keepalive 60 s, 20 s connected, 10 s idle.
    pub seed_timing: bool,
    /// How long to keep watching after the cut for a late drop or will, seconds.
    pub observe_s: Option<u64>,
}

impl Scenario {
    pub fn apply(&mut self, o: Overrides) {
        if o.seed_timing {
            self.keepalive = Duration::from_secs(60);
            self.connected_for = Duration::from_secs(20);
            self.idle = Duration::from_secs(10);
        }
        if let Some(ka) = o.keepalive_s {
            self.keepalive = Duration::from_secs(ka);
        }
        if let Some(w) = o.observe_s {
            self.observe = Some(Duration::from_secs(w));
        }
    }

    /// How long after the cut a run keeps watching for the broker's drop and the will when they
    /// are later than the profile allows, so that a late outcome is measured, not called
    /// "never": 4 x keepalive + 10 s by default (a drop at twice the spec's 1.5 x keepalive,
    /// with room), plus a will delay that is due on top; `--observe` sets it.
    pub fn observe_window(&self) -> Duration {
        let delay = self.will.as_ref().and_then(|w| w.delay_s).unwrap_or(0);
        let delay = Duration::from_secs(u64::from(delay.min(self.session_expiry_s.unwrap_or(0))));
        self.observe
            .unwrap_or(self.keepalive * 4 + Duration::from_secs(10) + delay)
    }

    /// The first fault, which decides the run's outcome (the cut).
    pub fn cut(&self) -> Option<&Fault> {
        self.faults.first()
    }

    /// The protocol monit (and a late subscriber) speak: willy's unless the scenario says.
    pub fn monit_protocol(&self) -> Protocol {
        self.monit_protocol.unwrap_or(self.protocol)
    }
}

/// A scenario file that does not parse or does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The file (or name) the error is about.
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: Option<String>,
    transport: Spanned<String>,
    #[serde(default)]
    protocol: Option<Spanned<String>>,
    keepalive_s: Spanned<i64>,
    cycles: Spanned<i64>,
    connected_for_ms: Spanned<i64>,
    idle_ms: Spanned<i64>,
    reconnect_ms: Spanned<i64>,
    connect_timeout_s: Option<Spanned<i64>>,
    session_expiry_s: Option<Spanned<i64>>,
    late_subscriber: Option<bool>,
    monit_protocol: Option<Spanned<String>>,
    clean_session: Option<Spanned<bool>>,
    clean_start: Option<Spanned<bool>>,
    disconnect_reason: Option<Spanned<i64>>,
    disconnect_form: Option<Spanned<String>>,
    will: Option<RawWill>,
    publisher: Option<RawPublisher>,
    subscribe: Option<RawSubscribe>,
    takeover: Option<RawTakeover>,
    monit: Option<RawMonit>,
    #[serde(default)]
    faults: Vec<RawFault>,
    expect: Option<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWill {
    topic: Spanned<String>,
    payload: Spanned<String>,
    qos: Option<Spanned<i64>>,
    retain: Option<bool>,
    delay_s: Option<Spanned<i64>>,
    content_type: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublisher {
    topic: Spanned<String>,
    qos: Option<Spanned<i64>>,
    every_ms: Spanned<i64>,
    from: Option<Spanned<String>>,
    count: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTakeover {
    after_ms: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonit {
    qos: Option<Spanned<i64>>,
    clean_session: Option<Spanned<bool>>,
    away_after_ms: Option<Spanned<i64>>,
    back_after_drop_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscribe {
    topic: Spanned<String>,
    qos: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    kind: Spanned<String>,
    cycle: Spanned<i64>,
    trigger: Option<Spanned<String>>,
    after_ms: Option<Spanned<i64>>,
    heal_after_ms: Option<Spanned<i64>>,
    direction: Option<Spanned<String>>,
    new_connections: Option<Spanned<String>>,
    delay_ms: Option<Spanned<i64>>,
    jitter_ms: Option<Spanned<i64>>,
    bytes_per_s: Option<Spanned<i64>>,
    packets: Option<Spanned<Vec<Spanned<String>>>>,
    restart: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    will: Option<bool>,
}

/// Checks values against their ranges, turning spans into line numbers.
struct Validator<'a> {
    source: &'a str,
    text: &'a str,
}

impl Validator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err<T>(
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

    fn int_in(&self, v: &Spanned<i64>, key: &str, lo: i64, hi: i64) -> Result<u64, ScenarioError> {
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

    fn choice<T: for<'de> Deserialize<'de>>(
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

/// Parse and validate a scenario. `source` names the file in errors; `name` is the scenario's name.
pub fn parse(name: &str, source: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let v = Validator { source, text };
        ScenarioError {
            file: source.to_string(),
            line: e.span().map(|s| v.line_of(s.start)),
            key: None,
            message: e.message().trim().to_string(),
        }
    })?;
    let v = Validator { source, text };

    let transport: Transport = v.choice(&raw.transport, "transport", "tcp, ws")?;
    let protocol = match &raw.protocol {
        None => Protocol::V311,
        Some(p) if p.get_ref() == "3.1.1" || p.get_ref() == "4" => Protocol::V311,
        Some(p) if p.get_ref() == "5" || p.get_ref() == "5.0" => Protocol::V5,
        Some(p) => {
            return v.err(
                p.span(),
                "protocol",
                format!(
                    "unsupported protocol {:?}: expected \"3.1.1\" or \"5\"",
                    p.get_ref()
                ),
            )
        }
    };
    // Keys that only MQTT 5 can express are refused on 3.1.1 rather than ignored.
    let v5_only = |span: std::ops::Range<usize>, key: &str| -> Result<(), ScenarioError> {
        if protocol == Protocol::V5 {
            Ok(())
        } else {
            v.err(
                span,
                key,
                "is an MQTT 5 feature: set protocol = \"5\"".to_string(),
            )
        }
    };
    let session_expiry_s = match &raw.session_expiry_s {
        Some(x) => {
            v5_only(x.span(), "session_expiry_s")?;
            Some(v.int_in(x, "session_expiry_s", 0, u32::MAX as i64)? as u32)
        }
        None => None,
    };
    let disconnect = match (&raw.disconnect_reason, &raw.disconnect_form) {
        (None, None) => None,
        (reason, form) => {
            let span = reason
                .as_ref()
                .map(|r| r.span())
                .or(form.as_ref().map(|f| f.span()))
                .unwrap_or(0..0);
            v5_only(
                span,
                if reason.is_some() {
                    "disconnect_reason"
                } else {
                    "disconnect_form"
                },
            )?;
            let code = match reason {
                Some(r) => v.int_in(r, "disconnect_reason", 0, 255)? as u8,
                None => 0,
            };
            use crate::mqtt::DisconnectForm;
            let form: DisconnectForm = match form {
                Some(f) => v.choice(f, "disconnect_form", "short, reason, properties")?,
                None if code == 0 => DisconnectForm::Short,
                None => DisconnectForm::Reason,
            };
            if form == DisconnectForm::Short && code != 0 {
                let span = match (&raw.disconnect_form, &raw.disconnect_reason) {
                    (Some(f), _) => f.span(),
                    (None, Some(r)) => r.span(),
                    (None, None) => 0..0,
                };
                return v.err(span, "disconnect_form", format!("the short form (e0 00) means reason 0x00; reason 0x{code:02x} needs \"reason\" or \"properties\""));
            }
            Some(V5Disconnect { reason: code, form })
        }
    };
    // rumqttc refuses a keepalive under 1 s, and 0 would switch keepalive off entirely: no
    // timer, nothing to measure.
    let keepalive = Duration::from_secs(v.int_in(&raw.keepalive_s, "keepalive_s", 1, 65535)?);
    let cycles = v.int_in(&raw.cycles, "cycles", 1, 1000)? as u32;
    let ms = |x: &Spanned<i64>, key: &str, lo: i64| -> Result<Duration, ScenarioError> {
        Ok(Duration::from_millis(v.int_in(x, key, lo, 3_600_000)?))
    };
    let connected_for = ms(&raw.connected_for_ms, "connected_for_ms", 0)?;
    let idle = ms(&raw.idle_ms, "idle_ms", 0)?;
    let reconnect = ms(&raw.reconnect_ms, "reconnect_ms", 10)?;
    let connect_timeout = match &raw.connect_timeout_s {
        Some(x) => Duration::from_secs(v.int_in(x, "connect_timeout_s", 1, 600)?),
        None => Duration::from_secs(5),
    };
    let will = match raw.will {
        Some(w) => {
            let t = w.topic.get_ref();
            if t.is_empty() || t.contains(['#', '+']) {
                return v.err(
                    w.topic.span(),
                    "will.topic",
                    format!(
                        "{t:?} is not a topic name: expected a non-empty topic without wildcards"
                    ),
                );
            }
            if let Some(p) = crate::mqtt::string_problem(t) {
                return v.err(w.topic.span(), "will.topic", format!("the topic {p}"));
            }
            if let Some(p) = crate::mqtt::will_payload_problem(w.payload.get_ref()) {
                return v.err(w.payload.span(), "will.payload", format!("the payload {p}"));
            }
            let qos = match &w.qos {
                Some(q) => v.int_in(q, "will.qos", 0, 2)? as u8,
                None => 0,
            };
            let delay_s = match &w.delay_s {
                Some(d) => {
                    v5_only(d.span(), "will.delay_s")?;
                    Some(v.int_in(d, "will.delay_s", 0, u32::MAX as i64)? as u32)
                }
                None => None,
            };
            let content_type = match &w.content_type {
                Some(c) => {
                    v5_only(c.span(), "will.content_type")?;
                    if let Some(p) = crate::mqtt::string_problem(c.get_ref()) {
                        return v.err(c.span(), "will.content_type", format!("the value {p}"));
                    }
                    Some(c.get_ref().clone())
                }
                None => None,
            };
            Some(Will {
                topic: t.clone(),
                payload: w.payload.into_inner(),
                qos,
                retain: w.retain.unwrap_or(false),
                delay_s,
                content_type,
            })
        }
        None => None,
    };

    // monit on another protocol than willy: only a v5 willy and a 3.1.1 monit, the mix whose
    // delivery (the will's properties dropped) is the question.
    let monit_protocol = match &raw.monit_protocol {
        Some(m) => {
            v5_only(m.span(), "monit_protocol")?;
            match m.get_ref().as_str() {
                "3.1.1" | "4" => Some(Protocol::V311),
                "5" | "5.0" => None,
                other => {
                    return v.err(
                        m.span(),
                        "monit_protocol",
                        format!("unsupported protocol {other:?}: expected \"3.1.1\" or \"5\""),
                    )
                }
            }
        }
        None => None,
    };

    // The same CONNECT flag, under the name each protocol's spec gives it.
    let clean_session = match (&raw.clean_session, &raw.clean_start, protocol) {
        (Some(c), _, Protocol::V5) => {
            return v.err(
                c.span(),
                "clean_session",
                "MQTT 5 calls this flag Clean Start: write clean_start".to_string(),
            )
        }
        (_, Some(c), Protocol::V311) => {
            return v.err(
                c.span(),
                "clean_start",
                "MQTT 3.1.1 calls this flag Clean Session: write clean_session".to_string(),
            )
        }
        (Some(c), _, _) | (_, Some(c), _) => *c.get_ref(),
        (None, None, _) => true,
    };
    let publisher = match &raw.publisher {
        Some(p) => {
            let t = p.topic.get_ref();
            if t.is_empty() || t.contains(['#', '+']) {
                return v.err(
                    p.topic.span(),
                    "publisher.topic",
                    format!(
                        "{t:?} is not a topic name: expected a non-empty topic without wildcards"
                    ),
                );
            }
            if let Some(problem) = crate::mqtt::string_problem(t) {
                return v.err(
                    p.topic.span(),
                    "publisher.topic",
                    format!("the topic {problem}"),
                );
            }
            Some(Publisher {
                topic: t.clone(),
                qos: match &p.qos {
                    Some(q) => v.int_in(q, "publisher.qos", 0, 2)? as u8,
                    None => 0,
                },
                every: ms(&p.every_ms, "publisher.every_ms", 10)?,
                from: match &p.from {
                    Some(f) => v.choice(f, "publisher.from", "start, cut")?,
                    None => PublishFrom::Start,
                },
                count: p
                    .count
                    .as_ref()
                    .map(|c| v.int_in(c, "publisher.count", 1, Publisher::MAX_COUNT as i64))
                    .transpose()?
                    .map(|c| c as u32),
            })
        }
        None => None,
    };
    let subscribe = match &raw.subscribe {
        Some(sub) => {
            let t = sub.topic.get_ref();
            if protocol == Protocol::V5 {
                return v.err(
                    sub.topic.span(),
                    "subscribe.topic",
                    "willy subscribes over MQTT 3.1.1 only: an MQTT 5 willy writes its packets itself and has no SUBSCRIBE yet".to_string(),
                );
            }
            if !crate::mqtt::valid_filter(t) {
                return v.err(
                    sub.topic.span(),
                    "subscribe.topic",
                    format!("{t:?} is not a topic filter: expected levels split by '/', with '+' or '#' (last) only as a whole level"),
                );
            }
            if let Some(problem) = crate::mqtt::string_problem(t) {
                return v.err(
                    sub.topic.span(),
                    "subscribe.topic",
                    format!("the filter {problem}"),
                );
            }
            Some(Subscription {
                filter: t.clone(),
                qos: match &sub.qos {
                    Some(q) => v.int_in(q, "subscribe.qos", 0, 2)? as u8,
                    None => 0,
                },
            })
        }
        None => None,
    };

    let mut faults = Vec::new();
    for f in &raw.faults {
        let kind = fault_kind(&v, f, transport)?;
        let cycle = v.int_in(&f.cycle, "faults.cycle", 1, 1000)? as u32;
        if cycle > cycles {
            return v.err(
                f.cycle.span(),
                "faults.cycle",
                format!("cycle {cycle} is beyond the scenario's cycles = {cycles}"),
            );
        }
        let trigger = match &f.trigger {
            Some(t) => v.choice(t, "faults.trigger", Trigger::ALL)?,
            None => Trigger::AfterTrue,
        };
        let after = match &f.after_ms {
            Some(x) => ms(x, "faults.after_ms", 0)?,
            None => Duration::ZERO,
        };
        let heal_after = f
            .heal_after_ms
            .as_ref()
            .map(|x| ms(x, "faults.heal_after_ms", 1))
            .transpose()?;
        let new_connections = match &f.new_connections {
            Some(n) if kind.on_process() => {
                return v.err(
                    n.span(),
                    "faults.new_connections",
                    format!(
                        "a {} fault acts on willy's process, not the network: remove it",
                        kind.label()
                    ),
                )
            }
            Some(n) => v.choice(n, "faults.new_connections", "accept, hang, refuse")?,
            None => kind.default_new_connections(),
        };
        faults.push(Fault {
            kind,
            cycle,
            trigger,
            after,
            heal_after,
            new_connections,
        });
    }

    let takeover = match &raw.takeover {
        Some(t) => {
            if protocol == Protocol::V5 {
                return v.err(
                    t.after_ms.span(),
                    "takeover.after_ms",
                    "a takeover runs over MQTT 3.1.1 only for now: the twin is a 3.1.1 client"
                        .to_string(),
                );
            }
            if faults.is_empty() {
                return v.err(
                    t.after_ms.span(),
                    "takeover.after_ms",
                    "a takeover is timed from the first fault: add a [[faults]] entry (e.g. a blackhole)".to_string(),
                );
            }
            Some(Takeover {
                after: ms(&t.after_ms, "takeover.after_ms", 0)?,
            })
        }
        None => None,
    };

    let monit = match &raw.monit {
        Some(m) => {
            // The first key given, for errors about the table as a whole.
            let first = [
                m.qos.as_ref().map(|x| (x.span(), "monit.qos")),
                m.clean_session
                    .as_ref()
                    .map(|x| (x.span(), "monit.clean_session")),
                m.away_after_ms
                    .as_ref()
                    .map(|x| (x.span(), "monit.away_after_ms")),
                m.back_after_drop_ms
                    .as_ref()
                    .map(|x| (x.span(), "monit.back_after_drop_ms")),
            ]
            .into_iter()
            .flatten()
            .next();
            if let (Some((span, key)), Protocol::V5) = (&first, protocol) {
                return v.err(
                    span.clone(),
                    key,
                    "the [monit] table runs over MQTT 3.1.1 only for now: monit's session and schedule are set on its 3.1.1 client".to_string(),
                );
            }
            let flaky = match (&m.away_after_ms, &m.back_after_drop_ms) {
                (None, None) => None,
                (Some(a), Some(b)) => {
                    if faults.is_empty() {
                        return v.err(
                            a.span(),
                            "monit.away_after_ms",
                            "a flaky monit is timed from the first fault: add a [[faults]] entry (e.g. a blackhole)".to_string(),
                        );
                    }
                    Some(Flaky {
                        away_after: ms(a, "monit.away_after_ms", 0)?,
                        back_after_drop: ms(b, "monit.back_after_drop_ms", 0)?,
                    })
                }
                (Some(x), None) | (None, Some(x)) => {
                    return v.err(
                        x.span(),
                        if m.away_after_ms.is_some() {
                            "monit.back_after_drop_ms"
                        } else {
                            "monit.away_after_ms"
                        },
                        "a flaky monit needs both away_after_ms (after the cut) and back_after_drop_ms (after the broker dropped willy)".to_string(),
                    )
                }
            };
            MonitSetup {
                qos: match &m.qos {
                    Some(q) => v.int_in(q, "monit.qos", 0, 2)? as u8,
                    None => 0,
                },
                clean_session: m.clean_session.as_ref().map_or(true, |c| *c.get_ref()),
                flaky,
            }
        }
        None => MonitSetup::default(),
    };

    // With no abnormal disconnect there is nothing for the broker to publish the will for.
    // A fault that silences willy only gets it dropped if it lasts 1.5 x keepalive.
    let derived = will.is_some()
        && faults.first().is_some_and(|f| {
            f.kind.ends_at_once()
                || (f.kind.silences_client()
                    && f.heal_after.map_or(true, |h| {
                        h >= crate::judge::timing::keepalive_bound(keepalive)
                    }))
        });
    // [MQTT-3.14.4-3]: DISCONNECT with reason 0x04 asks the server to publish the will.
    let derived = derived || (will.is_some() && disconnect.is_some_and(|d| d.reason == 0x04));
    // The broker closes willy's connection for the twin: not a DISCONNECT [MQTT-3.1.2-8].
    let derived = derived || (will.is_some() && takeover.is_some());
    let expect = Expect {
        will: raw.expect.and_then(|e| e.will).unwrap_or(derived),
    };

    Ok(Scenario {
        name: name.to_string(),
        description: raw.description.unwrap_or_default(),
        source: source.to_string(),
        transport,
        protocol,
        keepalive,
        cycles,
        connected_for,
        idle,
        reconnect,
        connect_timeout,
        will,
        session_expiry_s,
        disconnect,
        late_subscriber: raw.late_subscriber.unwrap_or(false),
        monit_protocol,
        monit,
        publisher,
        subscribe,
        clean_session,
        takeover,
        faults,
        expect,
        observe: None,
    })
}

/// The kind of one `[[faults]]` entry with its own parameters; a key that belongs to another
/// kind is refused by name, so a typo does not silently do nothing.
fn fault_kind(
    v: &Validator<'_>,
    f: &RawFault,
    transport: Transport,
) -> Result<FaultKind, ScenarioError> {
    const KINDS: &str =
        "blackhole, reset, close, latency, bandwidth, drop, refuse, hang, crash, freeze";
    let name = f.kind.get_ref().as_str();
    let direction = |v: &Validator<'_>| -> Result<Direction, ScenarioError> {
        match &f.direction {
            Some(d) => v.choice(d, "faults.direction", "both, upstream, downstream"),
            None => Ok(Direction::Both),
        }
    };
    let ms = |x: &Spanned<i64>, key: &str, lo: i64| -> Result<Duration, ScenarioError> {
        Ok(Duration::from_millis(v.int_in(x, key, lo, 3_600_000)?))
    };
    // Which optional keys each kind takes.
    let takes: &[&str] = match name {
        "blackhole" => &["direction"],
        "latency" => &["direction", "delay_ms", "jitter_ms"],
        "bandwidth" => &["direction", "bytes_per_s"],
        "drop" => &["direction", "packets"],
        "crash" => &["restart"],
        "reset" | "close" | "refuse" | "hang" | "freeze" => &[],
        other => {
            return v.err(
                f.kind.span(),
                "faults.kind",
                format!("unknown fault kind {other:?}: expected one of {KINDS}"),
            )
        }
    };
    let given: [(&str, Option<std::ops::Range<usize>>); 6] = [
        ("direction", f.direction.as_ref().map(|x| x.span())),
        ("delay_ms", f.delay_ms.as_ref().map(|x| x.span())),
        ("jitter_ms", f.jitter_ms.as_ref().map(|x| x.span())),
        ("bytes_per_s", f.bytes_per_s.as_ref().map(|x| x.span())),
        ("packets", f.packets.as_ref().map(|x| x.span())),
        ("restart", f.restart.as_ref().map(|x| x.span())),
    ];
    for (key, span) in given {
        if let Some(span) = span {
            if !takes.contains(&key) {
                let fits = if takes.is_empty() {
                    "it takes no parameters of its own".to_string()
                } else {
                    format!("it takes {}", takes.join(", "))
                };
                return v.err(
                    span,
                    &format!("faults.{key}"),
                    format!("a {name} fault has no `{key}`: {fits}"),
                );
            }
        }
    }
    Ok(match name {
        "blackhole" => FaultKind::Blackhole {
            direction: direction(v)?,
        },
        "reset" => FaultKind::Reset,
        "close" => FaultKind::Close,
        "latency" => {
            let Some(delay) = &f.delay_ms else {
                return v.err(
                    f.kind.span(),
                    "faults.delay_ms",
                    "a latency fault needs `delay_ms` (1 to 3600000)".to_string(),
                );
            };
            FaultKind::Latency {
                direction: direction(v)?,
                delay: ms(delay, "faults.delay_ms", 1)?,
                jitter: match &f.jitter_ms {
                    Some(j) => ms(j, "faults.jitter_ms", 0)?,
                    None => Duration::ZERO,
                },
            }
        }
        "bandwidth" => {
            let Some(rate) = &f.bytes_per_s else {
                return v.err(
                    f.kind.span(),
                    "faults.bytes_per_s",
                    "a bandwidth fault needs `bytes_per_s` (1 to 1000000000)".to_string(),
                );
            };
            FaultKind::Bandwidth {
                direction: direction(v)?,
                bytes_per_s: v.int_in(rate, "faults.bytes_per_s", 1, 1_000_000_000)?,
            }
        }
        "drop" => {
            let Some(list) = &f.packets else {
                return v.err(
                    f.kind.span(),
                    "faults.packets",
                    "a drop fault needs `packets`, e.g. [\"PINGREQ\"]".to_string(),
                );
            };
            if list.get_ref().is_empty() {
                return v.err(
                    list.span(),
                    "faults.packets",
                    "no packet types given: expected e.g. [\"PINGREQ\"]".to_string(),
                );
            }
            if transport == Transport::Ws {
                // Dropping one packet inside WebSocket framing means rewriting frames; not yet.
                return v.err(
                    f.kind.span(),
                    "faults.kind",
                    "a drop fault works on transport = \"tcp\" only: over WebSocket one \
                     packet cannot be dropped without rewriting the frame that carries it"
                        .to_string(),
                );
            }
            let mut packets = Vec::new();
            for p in list.get_ref() {
                let t = crate::mqtt::PacketKind::v311()
                    .find(|k| k.as_str().eq_ignore_ascii_case(p.get_ref()));
                match t {
                    Some(t) => packets.push(t.type_code()),
                    None => {
                        let names: Vec<&str> = crate::mqtt::PacketKind::v311()
                            .map(|k| k.as_str())
                            .collect();
                        return v.err(
                            p.span(),
                            "faults.packets",
                            format!(
                                "unknown MQTT packet type {:?}: expected one of {}",
                                p.get_ref(),
                                names.join(", ")
                            ),
                        );
                    }
                }
            }
            FaultKind::Drop {
                direction: direction(v)?,
                packets,
            }
        }
        "refuse" => FaultKind::Refuse,
        "hang" => FaultKind::Hang,
        "crash" => FaultKind::Crash {
            restart: f.restart.as_ref().is_some_and(|r| *r.get_ref()),
        },
        _ => FaultKind::Freeze,
    })
}

/// The most a scenario file may hold: the built-ins are under 2 KB. A larger file is refused
/// before it is read whole (`/dev/zero` would otherwise grow memory without bound).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Find a scenario by built-in name or by path (anything ending in `.toml` or containing `/`).
/// Only a regular file is read (a FIFO would block, a device never end), up to
/// [`MAX_FILE_BYTES`].
pub fn load(arg: &str) -> Result<Scenario, ScenarioError> {
    if arg.ends_with(".toml") || arg.contains('/') {
        let path = Path::new(arg);
        let text =
            crate::fsx::read_regular_capped(path, MAX_FILE_BYTES).map_err(|e| ScenarioError {
                file: arg.to_string(),
                line: None,
                key: None,
                message: format!("cannot read the scenario file: {e}"),
            })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario");
        return parse(name, arg, &text);
    }
    match BUILTIN.iter().find(|(n, _)| *n == arg) {
        Some((n, text)) => parse(n, &format!("scenarios/{n}.toml"), text),
        None => {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            let hint = closest(arg, &names)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            Err(ScenarioError {
                file: arg.to_string(),
                line: None,
                key: None,
                message: format!(
                    "no such scenario; {hint}known scenarios: {}",
                    names.join(", ")
                ),
            })
        }
    }
}

/// The known name closest to `word` by edit distance, if any is reasonably close.
pub fn closest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (edit_distance(word, n), *n))
        .filter(|(d, n)| *d <= (n.len().max(word.len()) / 2).max(2))
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Where a scenario's output goes.
pub fn out_path(dir: &Path, name: &str, ext: &str) -> PathBuf {
    dir.join(format!("{name}.{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
description = "WebSocket willy with a last will; network cut in cycle 3"
transport = "ws"
protocol = "3.1.1"
keepalive_s = 2
cycles = 4
connected_for_ms = 2000
idle_ms = 1000
reconnect_ms = 1000
[will]
topic = "test/connected"
payload = "false"
[[faults]]
kind = "blackhole"
cycle = 3
trigger = "after-true"
[expect]
will = true
"#;

    fn parse_err(text: &str) -> ScenarioError {
        parse("t", "t.toml", text).unwrap_err()
    }

    #[test]
    fn the_issue_example_parses() {
        let s = parse("ws-last-will", "x.toml", GOOD).unwrap();
        assert_eq!(s.transport, Transport::Ws);
        assert_eq!(s.keepalive, Duration::from_secs(2));
        assert_eq!(s.cycles, 4);
        assert_eq!(s.faults[0].cycle, 3);
        assert_eq!(s.faults[0].trigger, Trigger::AfterTrue);
        assert_eq!(s.faults[0].new_connections, NewConnections::Hang);
        assert!(s.expect.will);
        assert_eq!(s.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = parse_err(&GOOD.replace("idle_ms = 1000", "idle_ms = 1000\nidle_s = 1"));
        let msg = e.to_string();
        assert!(msg.starts_with("t.toml:9:"), "{msg}");
        assert!(msg.contains("idle_s"), "{msg}");
    }

    #[test]
    fn cut_cycle_beyond_cycles_is_refused_with_its_line() {
        let e = parse_err(&GOOD.replace("cycle = 3", "cycle = 5"));
        assert_eq!(e.line, Some(15));
        assert_eq!(e.key.as_deref(), Some("faults.cycle"));
        assert!(e.message.contains("beyond"), "{e}");
    }

    #[test]
    fn keepalive_zero_is_refused() {
        let e = parse_err(&GOOD.replace("keepalive_s = 2", "keepalive_s = 0"));
        assert_eq!(e.key.as_deref(), Some("keepalive_s"));
        assert_eq!(e.line, Some(5));
        assert!(e.to_string().contains("expected 1 to 65535"), "{e}");
    }

    #[test]
    fn unknown_transport_lists_the_choices() {
        let e = parse_err(&GOOD.replace("\"ws\"", "\"quic\""));
        assert_eq!(e.key.as_deref(), Some("transport"));
        assert!(e.message.contains("tcp, ws"), "{e}");
    }

    #[test]
    fn unknown_trigger_lists_the_choices() {
        let e = parse_err(&GOOD.replace("after-true", "whenever"));
        assert!(e.message.contains("after-true"), "{e}");
        assert_eq!(e.line, Some(16));
    }

    #[test]
    fn missing_key_is_named() {
        let e = parse_err(&GOOD.replace("cycles = 4\n", ""));
        assert!(e.message.contains("cycles"), "{e}");
    }

    #[test]
    fn wildcard_will_topic_is_refused() {
        let e = parse_err(&GOOD.replace("topic = \"test/connected\"", "topic = \"test/#\""));
        assert_eq!(e.key.as_deref(), Some("will.topic"));
    }

    #[test]
    fn no_will_means_no_will_expected_by_default() {
        let text = GOOD
            .replace(
                "[will]\ntopic = \"test/connected\"\npayload = \"false\"\n",
                "",
            )
            .replace("will = true", "");
        let s = parse("t", "t.toml", &text).unwrap();
        assert!(s.will.is_none());
        assert!(!s.expect.will);
    }

    #[test]
    fn seed_timing_overrides() {
        let mut s = parse("t", "t.toml", GOOD).unwrap();
        s.apply(Overrides {
            seed_timing: true,
            ..Overrides::default()
        });
        assert_eq!(s.keepalive, Duration::from_secs(60));
        assert_eq!(s.connected_for, Duration::from_secs(20));
        assert_eq!(s.idle, Duration::from_secs(10));
    }

    #[test]
    fn every_builtin_scenario_parses() {
        assert!(BUILTIN.len() >= 4);
        for (name, _) in BUILTIN {
            load(name).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    const BUSY: &str = "\n[publisher]\ntopic = \"busy/ticks\"\nqos = 1\nevery_ms = 300\n[subscribe]\ntopic = \"busy/+\"\nqos = 1\n";

    #[test]
    fn publisher_and_subscribe_parse() {
        let s = parse(
            "t",
            "t.toml",
            &GOOD.replace("[[faults]]", &format!("{BUSY}[[faults]]")),
        )
        .unwrap();
        let p = s.publisher.unwrap();
        assert_eq!(p.topic, "busy/ticks");
        assert_eq!(p.qos, 1);
        assert_eq!(p.every, Duration::from_millis(300));
        assert_eq!(p.from, PublishFrom::Start);
        assert_eq!(p.count, None);
        assert_eq!(p.limit(), Publisher::MAX_COUNT);
        let sub = s.subscribe.unwrap();
        assert_eq!((sub.filter.as_str(), sub.qos), ("busy/+", 1));
    }

    fn busy_err(from: &str, to: &str) -> ScenarioError {
        parse_err(&GOOD.replace(
            "[[faults]]",
            &format!("{}[[faults]]", BUSY.replace(from, to)),
        ))
    }

    #[test]
    fn publisher_errors_name_line_and_key() {
        let e = busy_err("every_ms = 300", "every_ms = 0");
        assert_eq!(e.key.as_deref(), Some("publisher.every_ms"));
        assert_eq!(e.line, Some(17));
        assert!(
            e.to_string()
                .starts_with("t.toml:17: key `publisher.every_ms`"),
            "{e}"
        );
        let e = busy_err("qos = 1\nevery", "qos = 3\nevery");
        assert_eq!(e.key.as_deref(), Some("publisher.qos"));
        let e = busy_err("\"busy/ticks\"", "\"busy/#\"");
        assert_eq!(e.key.as_deref(), Some("publisher.topic"));
        let e = busy_err("every_ms = 300", "every_ms = 300\nfrom = \"later\"");
        assert_eq!(e.key.as_deref(), Some("publisher.from"));
        assert!(e.message.contains("start, cut"), "{e}");
        let e = busy_err("every_ms = 300", "every_ms = 300\ncount = 0");
        assert_eq!(e.key.as_deref(), Some("publisher.count"));
        let e = busy_err("every_ms = 300", "every_ms = 300\nevery_s = 1");
        assert!(e.message.contains("every_s"), "{e}");
        assert_eq!(e.line, Some(18));
    }

    #[test]
    fn subscribe_errors_name_line_and_key() {
        let e = busy_err("\"busy/+\"", "\"busy/#/x\"");
        assert_eq!(e.key.as_deref(), Some("subscribe.topic"));
        assert_eq!(e.line, Some(19));
        let e = busy_err("qos = 1\n", "qos = 1\nqos = 7\n");
        assert!(e.line.is_some(), "{e}");
        let e = parse_err(
            &GOOD
                .replace("\"ws\"", "\"tcp\"")
                .replace("\"3.1.1\"", "\"5\"")
                .replace("[[faults]]", &format!("{BUSY}[[faults]]")),
        );
        assert_eq!(e.key.as_deref(), Some("subscribe.topic"));
        assert!(e.message.contains("3.1.1"), "{e}");
    }

    #[test]
    fn clean_session_is_named_as_each_protocol_names_it() {
        let s = parse(
            "t",
            "t.toml",
            &GOOD.replace("cycles = 4", "cycles = 4\nclean_session = false"),
        )
        .unwrap();
        assert!(!s.clean_session);
        assert!(parse("t", "t.toml", GOOD).unwrap().clean_session);
        let e = parse_err(&GOOD.replace("cycles = 4", "cycles = 4\nclean_start = false"));
        assert_eq!(e.key.as_deref(), Some("clean_start"));
        assert_eq!(e.line, Some(7));
        assert!(e.message.contains("clean_session"), "{e}");
        let v5 = GOOD
            .replace("\"ws\"", "\"tcp\"")
            .replace("\"3.1.1\"", "\"5\"");
        let e = parse_err(&v5.replace("cycles = 4", "cycles = 4\nclean_session = false"));
        assert_eq!(e.key.as_deref(), Some("clean_session"));
        let s = parse(
            "t",
            "t.toml",
            &v5.replace("cycles = 4", "cycles = 4\nclean_start = false"),
        )
        .unwrap();
        assert!(!s.clean_session);
    }

    #[test]
    fn a_takeover_needs_a_fault_to_follow() {
        let t = GOOD.replace("[[faults]]", "[takeover]\nafter_ms = 500\n[[faults]]");
        let s = parse("t", "t.toml", &t).unwrap();
        assert_eq!(s.takeover.unwrap().after, Duration::from_millis(500));
        let no_fault =
            GOOD.split("[[faults]]").next().unwrap().to_string() + "[takeover]\nafter_ms = 500\n";
        let e = parse_err(&no_fault);
        assert_eq!(e.key.as_deref(), Some("takeover.after_ms"));
        assert_eq!(e.line, Some(14));
        assert!(e.message.contains("[[faults]]"), "{e}");
        let e = parse_err(&t.replace("after_ms = 500", "after_ms = -1"));
        assert_eq!(e.key.as_deref(), Some("takeover.after_ms"));
        let e = parse_err(&t.replace("after_ms = 500", "after = 500"));
        assert!(e.message.contains("after"), "{e}");
    }

    #[test]
    fn a_v311_monit_and_a_will_content_type_need_a_v5_willy() {
        let v5 = GOOD
            .replace("\"ws\"", "\"tcp\"")
            .replace("\"3.1.1\"", "\"5\"");
        let mixed = v5
            .replace("cycles = 4", "cycles = 4\nmonit_protocol = \"3.1.1\"")
            .replace(
                "payload = \"false\"",
                "payload = \"false\"\ncontent_type = \"text/plain\"",
            );
        let s = parse("t", "t.toml", &mixed).unwrap();
        assert_eq!(s.monit_protocol(), Protocol::V311);
        assert_eq!(s.protocol, Protocol::V5);
        assert_eq!(s.will.unwrap().content_type.as_deref(), Some("text/plain"));
        // Unset, or the same as willy's: monit speaks willy's protocol.
        assert_eq!(
            parse("t", "t.toml", &v5).unwrap().monit_protocol(),
            Protocol::V5
        );
        let same = v5.replace("cycles = 4", "cycles = 4\nmonit_protocol = \"5\"");
        assert_eq!(
            parse("t", "t.toml", &same).unwrap().monit_protocol(),
            Protocol::V5
        );
        // On a 3.1.1 willy both are refused with their line.
        let e = parse_err(&GOOD.replace("cycles = 4", "cycles = 4\nmonit_protocol = \"3.1.1\""));
        assert_eq!(e.key.as_deref(), Some("monit_protocol"));
        assert_eq!(e.line, Some(7));
        assert!(e.message.contains("protocol = \"5\""), "{e}");
        let e = parse_err(&GOOD.replace(
            "payload = \"false\"",
            "payload = \"false\"\ncontent_type = \"text/plain\"",
        ));
        assert_eq!(e.key.as_deref(), Some("will.content_type"));
        assert_eq!(e.line, Some(13));
        let e = parse_err(&v5.replace("cycles = 4", "cycles = 4\nmonit_protocol = \"3\""));
        assert_eq!(e.key.as_deref(), Some("monit_protocol"));
        assert!(
            e.to_string().starts_with("t.toml:7: key `monit_protocol`"),
            "{e}"
        );
        assert!(e.message.contains("\"3.1.1\" or \"5\""), "{e}");
    }

    #[test]
    fn a_flaky_monit_needs_both_times_a_fault_and_mqtt_3_1_1() {
        const MONIT: &str = "[monit]\nqos = 1\nclean_session = false\naway_after_ms = 1000\nback_after_drop_ms = 2000\n";
        let with = |t: &str| GOOD.replace("[[faults]]", &format!("{t}[[faults]]"));
        let s = parse("t", "t.toml", &with(MONIT)).unwrap();
        assert_eq!((s.monit.qos, s.monit.clean_session), (1, false));
        let fl = s.monit.flaky.unwrap();
        assert_eq!(fl.away_after, Duration::from_millis(1000));
        assert_eq!(fl.back_after_drop, Duration::from_millis(2000));
        assert_eq!(
            parse("t", "t.toml", GOOD).unwrap().monit,
            MonitSetup::default()
        );
        let e = parse_err(&with(&MONIT.replace("back_after_drop_ms = 2000\n", "")));
        assert_eq!(e.key.as_deref(), Some("monit.back_after_drop_ms"));
        assert_eq!(e.line, Some(16));
        let e = parse_err(&with(&MONIT.replace("qos = 1", "qos = 3")));
        assert!(
            e.to_string().starts_with("t.toml:14: key `monit.qos`"),
            "{e}"
        );
        let e = parse_err(&with(&MONIT.replace("away_after_ms", "away_ms")));
        assert!(e.message.contains("away_ms"), "{e}");
        let no_fault = GOOD.split("[[faults]]").next().unwrap().to_string() + MONIT;
        let e = parse_err(&no_fault);
        assert_eq!(e.key.as_deref(), Some("monit.away_after_ms"));
        assert!(e.message.contains("[[faults]]"), "{e}");
        let v5 = with(MONIT)
            .replace("\"ws\"", "\"tcp\"")
            .replace("\"3.1.1\"", "\"5\"");
        let e = parse_err(&v5);
        assert_eq!(e.key.as_deref(), Some("monit.qos"));
        assert!(e.message.contains("3.1.1"), "{e}");
    }

    #[test]
    fn unknown_name_suggests_the_closest() {
        let e = load("ws-last-wil").unwrap_err();
        assert!(e.message.contains("did you mean `ws-last-will`"), "{e}");
    }
}
