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

mod faults;
mod fleet;
mod parse;
mod raw;
pub use raw::{TimingKey, TIMING};
mod unparse;
mod willy_kind;

pub use fleet::Fleet;
pub use parse::parse;
pub use unparse::check_recorded;
pub use willy_kind::WillyKind;

/// The topic willy reports its state on, as in the seed.
pub const STATUS_TOPIC: &str = "test/connected";
/// What monit subscribes to.
pub const MONITOR_FILTER: &str = "test/#";

/// The scenarios shipped in `scenarios/`, compiled in so the binary runs them from anywhere.
pub const BUILTIN: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/builtin_scenarios.rs"));

/// The built-ins a bare `unplug suite` runs: all but fleets, which are benchmarks that take the
/// whole machine (their harness-lag bound would fail beside other runs); name one to run it.
pub fn suite_default() -> Vec<String> {
    BUILTIN
        .iter()
        .filter(|(n, text)| parse(n, n, text).is_ok_and(|s| s.fleet.is_none()))
        .map(|(n, _)| n.to_string())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Ws,
    /// MQTT over TLS (port 8883 in production).
    Tls,
    /// MQTT over WebSocket over TLS (443/8884).
    Wss,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
            Transport::Tls => "tls",
            Transport::Wss => "wss",
        }
    }

    /// Over WebSocket (plain or TLS).
    pub fn is_ws(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    /// Over TLS (MQTT or WebSocket).
    pub fn is_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// The same framing without TLS: what the wire tap decodes inside it.
    pub fn plain(self) -> Transport {
        match self {
            Transport::Tls => Transport::Tcp,
            Transport::Wss => Transport::Ws,
            t => t,
        }
    }

    /// The URL scheme a client is given for it.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Tcp => "mqtt",
            Transport::Ws => "ws",
            Transport::Tls => "mqtts",
            Transport::Wss => "wss",
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
    /// Both sides of every open connection get a FIN, without an MQTT DISCONNECT (over TLS,
    /// a close_notify first: the clean close of a TLS connection).
    Close,
    /// Over TLS, both sides get one of the closes TLS makes possible: a TCP FIN without a
    /// close_notify (`notify` false: a truncated session), or a close_notify with the TCP left
    /// open (`fin` false). The proxy must end TLS itself (it does by default).
    TlsClose { notify: bool, fin: bool },
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
    /// An intermediary's idle timeout, as a load balancer has one: a connection that carried no
    /// bytes either way for `idle` is closed on both sides (FIN, or RST when `reset`).
    IdleTimeout { idle: Duration, reset: bool },
    /// WebSocket frames of these kinds (`proxy::wsgate` bits: data, ping, pong, close) vanish,
    /// whole frames; the rest passes. `data` silences MQTT while WebSocket pings go on.
    WsDrop { direction: Direction, frames: u8 },
    /// toxiproxy's `slicer`: each chunk is cut into slices of about `average` bytes (+-
    /// `variation`), written one at a time with `delay` between them.
    Slicer {
        direction: Direction,
        average: u32,
        variation: u32,
        delay: Duration,
    },
    /// toxiproxy's `limit_data`: a connection is closed (FIN both ways) once `bytes` passed
    /// this way on it, counted from when the fault met it.
    LimitData { direction: Direction, bytes: u64 },
    /// toxiproxy's `slow_close`: when this way's sender closes, its FIN is passed on `delay`
    /// late.
    SlowClose {
        direction: Direction,
        delay: Duration,
    },
}

impl FaultKind {
    /// Short name for logs and tables.
    pub fn label(&self) -> String {
        match self {
            FaultKind::Blackhole { direction } => format!("blackhole{}", direction.suffix()),
            FaultKind::Reset => "reset".to_string(),
            FaultKind::Close => "close".to_string(),
            FaultKind::TlsClose { notify, fin } => match (notify, fin) {
                (false, _) => "close-without-notify".to_string(),
                (true, _) => "notify-without-fin".to_string(),
            },
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
            FaultKind::WsDrop { direction, frames } => {
                let names: Vec<&str> = crate::tap::ws_kinds::KINDS
                    .iter()
                    .filter(|(_, b)| frames & b != 0)
                    .map(|(n, _)| *n)
                    .collect();
                format!("ws-drop {}{}", names.join(","), direction.suffix())
            }
            FaultKind::Slicer {
                direction,
                average,
                variation,
                delay,
            } => format!(
                "slicer {average} B +{variation} B {} us{}",
                delay.as_micros(),
                direction.suffix()
            ),
            FaultKind::LimitData { direction, bytes } => {
                format!("limit-data {bytes} B{}", direction.suffix())
            }
            FaultKind::SlowClose { direction, delay } => {
                format!("slow-close {} ms{}", delay.as_millis(), direction.suffix())
            }
            FaultKind::IdleTimeout { idle, reset } => format!(
                "idle-timeout {} ms {}",
                idle.as_millis(),
                if *reset { "rst" } else { "fin" }
            ),
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
            // MQTT rides in data frames: with them gone upstream the broker hears no MQTT,
            // whatever WebSocket pings still reach it.
            FaultKind::WsDrop { direction, frames } => {
                direction.up() && frames & crate::tap::ws_kinds::DATA != 0
            }
            _ => false,
        }
    }

    /// True when the fault ends willy's connection at once, with a close the broker sees.
    pub fn ends_at_once(&self) -> bool {
        matches!(
            self,
            FaultKind::Reset
                | FaultKind::Close
                | FaultKind::TlsClose { .. }
                | FaultKind::Crash { .. }
        )
    }

    /// True when the proxy must read inside TLS to apply it (MQTT packets, WebSocket frames, the
    /// TLS session itself): such a fault needs the proxy to end TLS, not pass it through.
    pub fn sees_inside_tls(&self) -> bool {
        matches!(
            self,
            FaultKind::TlsClose { .. } | FaultKind::Drop { .. } | FaultKind::WsDrop { .. }
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
    /// Where the fault acts: the proxy (default) or the kernel (`layer = "kernel" | "link"`).
    #[serde(default)]
    pub layer: crate::cut::CutLayer,
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

/// `[willy]`: WebSocket pings from willy (seed 004), beside MQTT's keepalive. Only willy's own
/// client can send them (MQTT 5, and 3.1.1 with v311wire.rs when a scenario asks for pings): rumqttc 0.25.1 wraps its WebSocket in ws_stream_tungstenite's
/// `WsStream` (src/eventloop.rs, src/v5/eventloop.rs), a byte stream of binary messages with
/// no way to send a control frame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct WillySetup {
    /// A WebSocket ping every this long.
    pub ws_ping: Option<Duration>,
    /// willy gives the connection up when a pong is not back within this.
    pub ws_pong_timeout: Option<Duration>,
    /// false: willy sends no PINGREQ (its MQTT keepalive is silent; only what else it sends,
    /// WebSocket pings, crosses the network). Its own client only.
    #[serde(default = "yes")]
    pub mqtt_pings: bool,
    /// The cycles willy ends without DISCONNECT, in ascending order: it publishes `false` and
    /// keeps the connection open (and pinging) instead of disconnecting, so the next cycle's
    /// CONNECT, same client id, takes the session over [MQTT-3.1.4-2] and the broker closes
    /// the old connection, which earns its will [MQTT-3.1.2-8]. Its own client only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leave_open: Vec<u32>,
}

impl WillySetup {
    /// willy ends `cycle` without DISCONNECT, its connection left open.
    pub fn leaves_open(&self, cycle: u32) -> bool {
        self.leave_open.contains(&cycle)
    }
}

impl Default for WillySetup {
    fn default() -> Self {
        WillySetup {
            ws_ping: None,
            ws_pong_timeout: None,
            mqtt_pings: true,
            leave_open: Vec::new(),
        }
    }
}

/// `[broker]`: what the runner configures in a broker it starts. A broker that has no such
/// setting says so in its profile (`Profile::cannot`), and runs as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub struct BrokerSettings {
    /// The most keepalive the broker allows: mosquitto's `max_keepalive`, answered to an MQTT 5
    /// client that asks for more with a Server Keep Alive in the CONNACK [MQTT-3.2.2-21].
    pub max_keepalive_s: Option<u16>,
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
    /// Settings for a broker the runner starts (`[broker]`).
    #[serde(default)]
    pub broker: BrokerSettings,
    /// willy's WebSocket pings (`[willy]`).
    #[serde(default)]
    pub willy: WillySetup,
    pub faults: Vec<Fault>,
    pub expect: Expect,
    /// willy's client library: rumqttc built in (the default), or a driver program
    /// (`[willy] client = "mqttjs"`, `--willy`; see the run crate's `driver`).
    #[serde(default)]
    pub client: crate::scenario::WillyKind,
    /// How long after the cut the run keeps watching for a drop or a will later than the
    /// broker's profile allows (`--observe`); None: [`Scenario::observe_window`]'s default.
    #[serde(default)]
    pub observe: Option<Duration>,
    /// How the wire tap records PUBLISHes (`[tap] publishes`); left out of a journal when it
    /// is the default, so journals stay as they were.
    #[serde(default, skip_serializing_if = "PublishRecords::is_each")]
    pub publishes: PublishRecords,
    /// Over TLS, whether the proxy ends willy's TLS so the tap sees MQTT (`[tap] tls`); left
    /// out of a journal when it is the default.
    #[serde(default, skip_serializing_if = "TlsTap::is_terminate")]
    pub tls_tap: TlsTap,
    /// Many willies instead of one (`[fleet]`): run by the run crate's `fleet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
}

fn yes() -> bool {
    true
}

/// How the wire tap records PUBLISH packets: the scenario's `[tap] publishes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishRecords {
    /// A `packet` record each, with its topic and fields (the default).
    #[default]
    Each,
    /// For floods: the QoS 0 PUBLISHes one side sends back to back with the same topic,
    /// retain flag and payload size as one `publish_run` record with their exact count, bytes,
    /// first and last time. Every other packet is still recorded alone (QoS 1 and 2 PUBLISHes
    /// too: the delivery checks pair their packet ids); a run ends at any other packet of that
    /// side, at a change of key or fate, when the connection says something (a side closed)
    /// and whenever the recorder has caught up.
    Runs,
}

/// What the proxy does with willy's TLS: the scenario's `[tap] tls`, `--tls-tap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsTap {
    /// End it with the run's certificate (which willy trusts) and open TLS to the broker: the
    /// wire tap decodes every MQTT packet, and the TLS-only closes are possible (default).
    #[default]
    Terminate,
    /// Forward the encrypted bytes: the tap sees TLS records only. For a broker that checks
    /// client certificates end to end; willy then trusts the broker's certificate.
    PassThrough,
}

impl TlsTap {
    fn is_terminate(&self) -> bool {
        *self == TlsTap::Terminate
    }
}

impl std::str::FromStr for TlsTap {
    type Err = String;

    fn from_str(s: &str) -> Result<TlsTap, String> {
        match s {
            "terminate" => Ok(TlsTap::Terminate),
            "pass-through" => Ok(TlsTap::PassThrough),
            _ => Err(format!(
                "unknown value {s:?}: expected terminate or pass-through"
            )),
        }
    }
}

impl PublishRecords {
    fn is_each(&self) -> bool {
        *self == PublishRecords::Each
    }
}

impl std::str::FromStr for PublishRecords {
    type Err = String;

    /// `each` or `runs` (the command line's `--publishes`).
    fn from_str(s: &str) -> Result<PublishRecords, String> {
        match s {
            "each" => Ok(PublishRecords::Each),
            "runs" => Ok(PublishRecords::Runs),
            _ => Err(format!("unknown value {s:?}: expected each or runs")),
        }
    }
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
    /// A fault of the run acts in the kernel (willy in a network namespace of its own).
    pub fn kernel_cut(&self) -> bool {
        self.faults.iter().any(|f| f.layer.in_kernel())
    }

    /// willy runs through the driver protocol, as a process of its own: every driver, and
    /// rumqttc when a kernel cut puts willy in a network namespace (`unplug driver-rumqttc`).
    pub fn willy_runs_as_driver(&self) -> bool {
        self.client.is_driver() || self.kernel_cut()
    }

    /// Every network fault at `layer` (`--cut`); an error says which fault has none there.
    pub fn set_cut_layer(&mut self, layer: crate::cut::CutLayer) -> Result<(), String> {
        for (i, f) in self.faults.iter_mut().enumerate() {
            if f.kind.on_process() {
                continue;
            }
            parse::kernel_layer_fits(&f.kind, layer)
                .map_err(|why| format!("--cut {}: fault {}: {why}", layer.as_str(), i + 1))?;
            f.layer = layer;
        }
        Ok(())
    }
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
    /// "never": [`crate::timing::observe_window`] by default; `--observe` sets it.
    pub fn observe_window(&self) -> Duration {
        let delay = self.will.as_ref().and_then(|w| w.delay_s).unwrap_or(0);
        let delay = Duration::from_secs(u64::from(delay.min(self.session_expiry_s.unwrap_or(0))));
        self.observe
            .unwrap_or(crate::timing::observe_window(self.keepalive, delay))
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
                    "no such scenario; {hint}`unplug list` shows the {} built-in ones, or \
                     give a scenario file's path (NAME.toml)",
                    names.len()
                ),
            })
        }
    }
}

/// The known name closest to `word` by edit (Levenshtein) distance, if any is reasonably close.
pub fn closest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (strsim::levenshtein(word, n), *n))
        .filter(|(d, n)| *d <= (n.len().max(word.len()) / 2).max(2))
        .min()
        .map(|(_, n)| n)
}

/// Where a scenario's output goes.
pub fn out_path(dir: &Path, name: &str, ext: &str) -> PathBuf {
    dir.join(format!("{name}.{ext}"))
}

#[cfg(test)]
mod tests;
