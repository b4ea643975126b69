//! Facts: the journal reduced to the moments the checks, the summary, the runner's control loop
//! and the status line use.
//!
//! ```text
//!  records --Facts::from_records--> Facts { cut, last upstream, broker drop, will, ... }
//! ```
//!
//! No I/O and no clock: built from a saved journal as from a live one.

use serde::{Deserialize, Serialize};

use super::timing::{self, OWN_COPY_MS, PROMPT_MS};
use crate::event::{Actor, Event, Record, Side};
use crate::mqtt::PacketKind;
use crate::scenario::Scenario;
use crate::tap::{Fields, WsOpcode};

mod accounting;
mod delivery;
mod design;
mod flaky;

pub use accounting::{MessageAccount, Source};
pub use delivery::{Delivered, Delivery, Resent};
pub use design::{misplaced_faults, missing_steps, CycleSeen, MissingStep, SideEnd, TakenOver};
pub use flaky::FlakyMonitSeen;

/// What the records say happened, reduced to the moments the checks and the summary use.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    /// What the layers below MQTT did: an intermediary's idle timeout (layers.rs).
    pub layers: super::layers::LayerFacts,
    /// When the first fault took effect.
    pub cut_at_ms: Option<f64>,
    /// willy's last bytes the proxy forwarded to the broker before the cut.
    pub last_upstream_ms: Option<f64>,
    /// The last complete MQTT packet from willy that reached the broker on a connection open
    /// at the cut (the wire tap's view): the keepalive timer's true reference.
    pub last_packet_ms: Option<f64>,
    pub last_packet_kind: Option<PacketKind>,
    /// PUBLISHes the broker sent on a connection open at the cut after willy's last packet
    /// (traffic *to* a silent client, as on a busy subscription).
    pub publishes_to_silent_willy: u32,
    /// The twin (willy's client id, straight to the broker): when it started to connect and
    /// when its CONNACK came.
    pub twin_connecting_ms: Option<f64>,
    pub twin_connack_ms: Option<f64>,
    /// What willy's own subscription got of pubby's messages (when it subscribes to them).
    pub delivery: Option<Delivery>,
    /// PINGREQ/PINGRESP and WebSocket control frames seen, per connection.
    pub wire_counts: Vec<WireCounts>,
    /// When the late subscriber's SUBACK came, and the will as it got it (retain flag).
    pub late_subscribed_ms: Option<f64>,
    pub late_will_retained: Option<bool>,
    /// Every DISCONNECT willy got through to the broker, and whether the will followed it.
    pub disconnects: Vec<DisconnectSeen>,
    /// When the broker closed a connection that was open at the cut (seen by the proxy).
    pub broker_drop_ms: Option<f64>,
    /// That connection: the close answers willy's DISCONNECT when one reached the broker on
    /// it first.
    pub broker_drop_conn: Option<u64>,
    /// When willy's client library first reported the connection lost after the cut.
    pub client_detect_ms: Option<f64>,
    /// When the first fault healed.
    pub heal_ms: Option<f64>,
    /// The will reaching monit after the cut; None if it never did.
    pub will_received_ms: Option<f64>,
    /// The first message monit got after the cut that willy did not publish after the network
    /// came back: with no will set, there must be none.
    pub first_news_ms: Option<f64>,
    pub first_news: Option<String>,
    /// How willy's connection attempts went after the cut: (failed, succeeded).
    pub attempts_failed_after_cut: u32,
    /// When willy's side of a connection open at the cut closed (seen by the proxy).
    pub client_close_ms: Option<f64>,
    /// When the connection attempt that failed first after the cut started, if the first
    /// failure was a connection attempt rather than an established connection.
    pub detect_attempt_started_ms: Option<f64>,
    /// willy disconnected cleanly after the cut and before it first reported an error.
    pub disconnected_before_detect: bool,
    /// Every fault that took effect, with when it healed.
    pub faults: Vec<FaultSpan>,
    /// Every connection attempt of willy's, from `Connecting` to `Connected` or the error.
    pub attempts: Vec<Attempt>,
    /// A flaky monit's absence and what reached it after (scenarios with `[monit]` away/back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky_monit: Option<FlakyMonitSeen>,
    /// Each `true` monit received (willy publishes it at QoS 0): when, and at what QoS.
    pub status_true_qos: Vec<(f64, u8)>,
    /// When the run stopped observing (its `RunEnded`): "never" means never before this.
    pub observed_until_ms: Option<f64>,
    /// Will messages monit got after one of willy's clean DISCONNECTs, before the cut: each a
    /// message on the will topic with the will payload that willy did not publish itself.
    pub wills_after_clean_disconnect: Vec<CleanDisconnectWill>,
    /// Each of willy's cycles step by step, as the wire tap and the proxy saw it (design.rs).
    pub cycles: Vec<CycleSeen>,
    /// Every message monit got, with where it came from (accounting.rs).
    pub messages: Vec<MessageAccount>,
}

/// A will the broker published after willy's clean DISCONNECT [MQTT-3.1.2-10, MQTT-3.14.4-3].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanDisconnectWill {
    /// willy's cycle, from the runner's `CycleStarted`.
    pub cycle: u32,
    /// When the DISCONNECT reached the broker (the wire tap's record) and its bytes.
    pub disconnect_ms: f64,
    pub disconnect_hex: String,
    /// When monit got the will.
    pub will_ms: f64,
}

impl CleanDisconnectWill {
    /// Walk the run up to the cut: every will copy no own PUBLISH accounts for
    /// ([`will_copies`]) is a will. A will after a clean DISCONNECT breaks the spec. A copy is a
    /// will after a clean DISCONNECT only while that DISCONNECT was willy's last word: until its
    /// next CONNECT reached the broker. (A connection that ends without its DISCONNECT reaching
    /// the broker, as when rumqttc's WebSocket close resets it with a PINGRESP unread, earns its
    /// will: that is MQTT-3.1.2-8, not a broken 3.1.2-10.)
    fn collect(s: &Scenario, records: &[Record], cut: Option<f64>) -> Vec<CleanDisconnectWill> {
        let until = cut.unwrap_or(f64::INFINITY);
        // Clean DISCONNECTs (not 0x04: that one asks for the will): (cycle, ms, bytes, until
        // the next CONNECT).
        let mut clean: Vec<(u32, f64, String, f64)> = Vec::new();
        let mut cycle = 0;
        for r in records.iter().filter(|r| r.ms < until) {
            match (&r.actor, &r.event) {
                (Actor::Willy, Event::CycleStarted { cycle: c }) => cycle = *c,
                (
                    _,
                    Event::Packet {
                        from: Side::Client,
                        dropped: false,
                        kind,
                        fields,
                        hex,
                        ..
                    },
                ) => match (kind, fields) {
                    (PacketKind::Disconnect, f) if disconnect_reason(f) != Some(4) => {
                        clean.push((cycle, r.ms, hex.clone().unwrap_or_default(), f64::INFINITY))
                    }
                    (PacketKind::Connect, _) => {
                        for d in clean.iter_mut().filter(|d| d.3 == f64::INFINITY) {
                            d.3 = r.ms;
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let copies = will_copies(s, records, until);
        let mut out = Vec::new();
        for c in copies {
            if let Some((cycle, ms, hex, _)) = clean
                .iter()
                .rev()
                .find(|(_, ms, _, until)| *ms <= c && c < *until)
            {
                out.push(CleanDisconnectWill {
                    cycle: *cycle,
                    disconnect_ms: *ms,
                    disconnect_hex: hex.clone(),
                    will_ms: c,
                });
            }
        }
        out
    }
}

/// monit's copies of the will (its topic and payload) recorded before `until` that none of
/// willy's own PUBLISHes accounts for: each one a will the broker published. The seed's will
/// payload is willy's own `false`, so only the wire tap's count of willy's PUBLISHes that reached
/// the broker (by topic and payload size) tells them apart. A PUBLISH is recorded just after the
/// proxy wrote it, and monit's copy may be recorded a hair before that: a copy pairs with an own
/// PUBLISH recorded up to [`PROMPT_MS`] after it, or up to [`OWN_COPY_MS`] before it.
pub(crate) fn will_copies(s: &Scenario, records: &[Record], until: f64) -> Vec<f64> {
    let Some(w) = &s.will else {
        return Vec::new();
    };
    let mut own: Vec<(f64, bool)> = Vec::new(); // (ms, paired)
    let mut copies: Vec<f64> = Vec::new();
    for r in records.iter().filter(|r| r.ms < until) {
        own.extend(
            own_publishes(r, |t, n| t == w.topic && n == w.payload.len()).map(|p| (p.ms, false)),
        );
        if let (Actor::Monit, Event::MessageReceived { topic, payload, .. }) = (&r.actor, &r.event)
        {
            if *topic == w.topic && *payload == w.payload {
                copies.push(r.ms);
            }
        }
    }
    copies.sort_by(f64::total_cmp);
    copies.retain(|c| {
        let pair = own
            .iter_mut()
            .find(|(t, paired)| !*paired && *t >= c - OWN_COPY_MS && *t <= c + PROMPT_MS);
        match pair {
            Some(p) => {
                p.1 = true;
                false
            }
            None => true,
        }
    });
    copies
}

/// A DISCONNECT from willy that reached the broker (the wire tap's view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisconnectSeen {
    pub ms: f64,
    /// The v5 reason code; None for the two-byte form `e000`.
    pub reason: Option<u8>,
    /// When monit got the will after it (before willy's next connection attempt).
    pub will_ms: Option<f64>,
}

impl DisconnectSeen {
    /// Pair each DISCONNECT willy sent with the will message, if one followed it before willy
    /// tried to connect again.
    fn collect(s: &Scenario, records: &[Record]) -> Vec<DisconnectSeen> {
        // Only a v5 willy chooses its DISCONNECT; a 3.1.1 will of "false" could not be told
        // from willy's own "false" published just before it.
        let (Some(w), Some(_)) = (&s.will, s.disconnect) else {
            return Vec::new();
        };
        let mut out: Vec<DisconnectSeen> = Vec::new();
        let mut open = false;
        for r in records {
            match (&r.actor, &r.event) {
                (
                    _,
                    Event::Packet {
                        from: Side::Client,
                        dropped: false,
                        kind,
                        fields,
                        ..
                    },
                ) if *kind == PacketKind::Disconnect => {
                    let reason = disconnect_reason(fields);
                    out.push(DisconnectSeen {
                        ms: r.ms,
                        reason,
                        will_ms: None,
                    });
                    open = true;
                }
                // A will after a DISCONNECT belongs to it until the next DISCONNECT or a fault
                // (a broker may fire it late, at willy's next CONNECT); the will payload is
                // the scenario's own, so it is never willy's "false".
                (Actor::Proxy, Event::FaultApplied { .. }) => open = false,
                (Actor::Monit, Event::MessageReceived { topic, payload, .. })
                    if open && *topic == w.topic && *payload == w.payload =>
                {
                    if let Some(d) = out.last_mut() {
                        d.will_ms.get_or_insert(r.ms);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// What the wire tap counted on one connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireCounts {
    pub conn: u64,
    /// PINGREQs willy sent (forwarded or not) and how many of them a fault swallowed.
    pub pingreq: u32,
    pub pingreq_dropped: u32,
    pub pingresp: u32,
    pub ws_ping: u32,
    pub ws_pong: u32,
    pub ws_close: u32,
}

impl WireCounts {
    fn count(all: &mut Vec<WireCounts>, r: &Record) {
        let conn = match &r.event {
            Event::Packet { conn, .. } | Event::WireFrame { conn, .. } => *conn,
            _ => return,
        };
        let i = match all.iter().position(|c| c.conn == conn) {
            Some(i) => i,
            None => {
                all.push(WireCounts {
                    conn,
                    ..WireCounts::default()
                });
                all.len() - 1
            }
        };
        let c = &mut all[i];
        match &r.event {
            Event::Packet {
                kind: PacketKind::Pingreq,
                dropped,
                ..
            } => {
                c.pingreq += 1;
                c.pingreq_dropped += u32::from(*dropped);
            }
            Event::Packet {
                kind: PacketKind::Pingresp,
                ..
            } => c.pingresp += 1,
            e => match e.ws_frame_kind() {
                Some(WsOpcode::Ping) => c.ws_ping += 1,
                Some(WsOpcode::Pong) => c.ws_pong += 1,
                Some(WsOpcode::Close) => c.ws_close += 1,
                _ => {}
            },
        }
    }
}

/// One fault's time in effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultSpan {
    pub n: u32,
    pub fault: String,
    pub applied_ms: f64,
    pub healed_ms: Option<f64>,
}

/// One connection attempt of willy's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub started_ms: f64,
    pub ended_ms: f64,
    pub connected: bool,
}

impl Facts {
    /// The broker's close of the cut connection came after willy's own DISCONNECT reached it
    /// on that connection: the orderly end of a clean disconnect, not a drop [MQTT-3.14.4-1].
    pub fn broker_closed_after_disconnect(&self) -> bool {
        let (Some(b), Some(conn)) = (self.broker_drop_ms, self.broker_drop_conn) else {
            return false;
        };
        self.cycles
            .iter()
            .filter(|c| c.conn == Some(conn))
            .any(|c| c.disconnect_reached_ms.is_some_and(|d| d <= b))
    }

    /// What the keepalive is measured from: the last packet that reached the broker, or, when
    /// the tap saw none (a stream it could not decode), the last bytes forwarded.
    pub fn reference_ms(&self) -> Option<f64> {
        timing::reference_ms(self.last_packet_ms, self.last_upstream_ms)
    }

    pub fn from_records(s: &Scenario, records: &[Record]) -> Facts {
        let mut f = Facts {
            layers: super::layers::LayerFacts::collect(s, records),
            ..Facts::default()
        };
        let cut_conns = f.add_first_cut(records);
        for r in records {
            WireCounts::count(&mut f.wire_counts, r);
        }
        f.disconnects = DisconnectSeen::collect(s, records);
        f.delivery = Delivery::collect(s, records);
        f.add_twin(records);
        f.add_late_subscriber(s, records);
        f.observed_until_ms = records.iter().rev().find_map(|r| match r.event {
            Event::RunEnded { .. } => Some(r.ms),
            _ => None,
        });
        f.wills_after_clean_disconnect = CleanDisconnectWill::collect(s, records, f.cut_at_ms);
        f.cycles = CycleSeen::collect(
            records,
            &will_copies(s, records, f.cut_at_ms.unwrap_or(f64::INFINITY)),
        );
        f.messages = MessageAccount::collect(s, records, &f.cycles, f.cut_at_ms);
        let Some(cut) = f.cut_at_ms else {
            // No network fault: what monit learns comes from willy's own DISCONNECTs.
            f.will_received_ms = f.disconnects.iter().find_map(|d| d.will_ms);
            return f;
        };
        let own_publish_after_heal = f.add_after_cut(records, cut, &cut_conns);
        f.add_last_packet(records, &cut_conns);
        let news_until = own_publish_after_heal.unwrap_or(f64::INFINITY);
        f.add_first_news(s, records, cut, news_until);
        f.add_fault_facts(records, cut, &cut_conns);
        f.flaky_monit = FlakyMonitSeen::collect(s, records, f.cut_at_ms);
        f.status_true_qos = status_true_qos(records);
        f
    }

    /// The first fault applied: when, the last bytes forwarded to the broker before it, and
    /// the connections it met (returned).
    fn add_first_cut(&mut self, records: &[Record]) -> Vec<u64> {
        for r in records {
            if let (Actor::Proxy, Event::FaultApplied { last_upstream, .. }) = (r.actor, &r.event) {
                self.cut_at_ms = Some(r.ms);
                self.last_upstream_ms = last_upstream.iter().filter_map(|c| c.ms).reduce(f64::max);
                return last_upstream.iter().map(|c| c.conn).collect();
            }
        }
        Vec::new()
    }

    /// When the twin first connected and got its CONNACK.
    fn add_twin(&mut self, records: &[Record]) {
        for r in records.iter().filter(|r| r.actor == Actor::Twin) {
            match r.event {
                Event::Connecting { .. } => {
                    self.twin_connecting_ms.get_or_insert(r.ms);
                }
                Event::Connected { .. } => {
                    self.twin_connack_ms.get_or_insert(r.ms);
                }
                _ => {}
            }
        }
    }

    /// When the late subscriber subscribed, and whether the will it got was retained.
    fn add_late_subscriber(&mut self, s: &Scenario, records: &[Record]) {
        for r in records {
            match &r.event {
                Event::LateSubscribed => {
                    self.late_subscribed_ms.get_or_insert(r.ms);
                }
                Event::LateReceived {
                    topic,
                    payload,
                    retain,
                } if s
                    .will
                    .as_ref()
                    .is_some_and(|w| w.topic == *topic && w.payload == *payload) =>
                {
                    self.late_will_retained.get_or_insert(*retain);
                }
                _ => {}
            }
        }
    }

    /// From the cut on: the heal, the broker's close of a cut connection, willy's failures.
    /// Returns when willy's own publishes reach monit again after a heal: from the first one
    /// on, a message is no longer news of the cut.
    fn add_after_cut(&mut self, records: &[Record], cut: f64, cut_conns: &[u64]) -> Option<f64> {
        let mut own_publish_after_heal = None;
        for r in records.iter().filter(|r| r.ms >= cut) {
            match (&r.actor, &r.event) {
                (Actor::Proxy, Event::FaultHealed { .. }) if self.heal_ms.is_none() => {
                    self.heal_ms = Some(r.ms)
                }
                (
                    Actor::Proxy,
                    Event::SideClosed {
                        conn,
                        side: Side::Broker,
                        ..
                    },
                ) if self.broker_drop_ms.is_none() && cut_conns.contains(conn) => {
                    self.broker_drop_ms = Some(r.ms);
                    self.broker_drop_conn = Some(*conn);
                }
                (Actor::Willy, Event::ConnectionFailed { .. }) => {
                    self.client_detect_ms.get_or_insert(r.ms);
                    self.attempts_failed_after_cut += 1;
                }
                (Actor::Willy, Event::Published { .. })
                    if self.heal_ms.is_some() && own_publish_after_heal.is_none() =>
                {
                    own_publish_after_heal = Some(r.ms)
                }
                _ => {}
            }
        }
        own_publish_after_heal
    }

    /// The last packet willy's side sent through on a cut connection before the broker
    /// closed it, and the PUBLISHes the broker sent willy after it.
    fn add_last_packet(&mut self, records: &[Record], cut_conns: &[u64]) {
        // Packets are recorded just after they are written, so one forwarded before the cut
        // may be recorded after it; what the fault swallowed is marked dropped.
        let drop_at = self.broker_drop_ms.unwrap_or(f64::INFINITY);
        for r in records.iter().filter(|r| r.ms <= drop_at) {
            if let Event::Packet {
                conn,
                from: Side::Client,
                dropped: false,
                kind,
                ..
            } = &r.event
            {
                if cut_conns.contains(conn) {
                    self.last_packet_ms = Some(r.ms);
                    self.last_packet_kind = Some(*kind);
                }
            }
            if let (Event::PublishRun { .. }, Some(w)) = (&r.event, WireRun::of(r)) {
                let n = w.through(drop_at);
                if w.own() && n > 0 && cut_conns.contains(&w.conn) {
                    self.last_packet_ms = Some(w.at(n - 1));
                    self.last_packet_kind = Some(PacketKind::Publish);
                }
            }
        }
        if let Some(last) = self.last_packet_ms {
            let to_willy = records
                .iter()
                .filter_map(WireRun::of)
                .filter(|w| w.from == Side::Broker && cut_conns.contains(&w.conn))
                .map(|w| w.through(drop_at) - w.through(last))
                .sum::<u64>();
            self.publishes_to_silent_willy = u32::try_from(to_willy).unwrap_or(u32::MAX);
        }
    }

    /// The first message monit got after the cut that is news of it (not willy's own, in
    /// flight or forwarded late), and when the will reached monit.
    fn add_first_news(&mut self, s: &Scenario, records: &[Record], cut: f64, news_until: f64) {
        let mut in_flight = in_flight_at(records, cut);
        // After the cut, a slow link may still deliver willy's own PUBLISHes: the wire tap saw
        // each one go through, so a message matching one (topic, payload size) is willy's.
        let mut forwarded: Vec<(String, u64)> = Vec::new();
        let wanted = monit_got(records);
        // (A run of PUBLISHes begun before the cut may go on after it: its record comes first.)
        for r in records.iter().filter(|r| r.ms < news_until) {
            forwarded.extend(
                own_publishes(r, |t, n| wanted.contains(&(t, n)))
                    .filter(|p| p.ms > cut && p.ms < news_until)
                    .map(|p| (p.topic.to_string(), p.payload_len as u64)),
            );
            if r.ms <= cut {
                continue;
            }
            if let (Actor::Monit, Event::MessageReceived { topic, payload, .. }) =
                (r.actor, &r.event)
            {
                if let Some(i) = in_flight
                    .iter()
                    .position(|(t, p)| t == topic && p == payload)
                {
                    in_flight.remove(i);
                    continue;
                }
                if let Some(i) = forwarded
                    .iter()
                    .position(|(t, n)| t == topic && *n == payload.len() as u64)
                {
                    forwarded.remove(i);
                    continue;
                }
                if self.first_news_ms.is_none() {
                    self.first_news_ms = Some(r.ms);
                    self.first_news = Some(format!("{topic}: {payload}"));
                }
                if let Some(w) = &s.will {
                    if self.will_received_ms.is_none() && *topic == w.topic && *payload == w.payload
                    {
                        self.will_received_ms = Some(r.ms);
                    }
                }
            }
        }
    }
}

/// What willy published just before the cut may reach monit just after it: its own
/// message, not news of the cut (a fault at "disconnected" follows the last "false"). The
/// (topic, payload) of those monit had not got by the cut.
fn in_flight_at(records: &[Record], cut: f64) -> Vec<(String, String)> {
    let mut in_flight: Vec<(String, String)> = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.ms < cut && r.ms >= cut - PROMPT_MS)
    {
        match (r.actor, &r.event) {
            (Actor::Willy, Event::Published { topic, payload }) => {
                in_flight.push((topic.clone(), payload.clone()))
            }
            (Actor::Monit, Event::MessageReceived { topic, payload, .. }) => {
                if let Some(i) = in_flight
                    .iter()
                    .position(|(t, p)| t == topic && p == payload)
                {
                    in_flight.remove(i);
                }
            }
            _ => {}
        }
    }
    in_flight
}

/// When monit got the status "true", at which QoS.
fn status_true_qos(records: &[Record]) -> Vec<(f64, u8)> {
    records
        .iter()
        .filter_map(|r| match (r.actor, &r.event) {
            (
                Actor::Monit,
                Event::MessageReceived {
                    topic,
                    payload,
                    qos,
                    ..
                },
            ) if topic == crate::scenario::STATUS_TOPIC && payload == "true" => Some((r.ms, *qos)),
            _ => None,
        })
        .collect()
}

impl Facts {
    /// The facts the fault catalog's checks use (beyond the first cut).
    fn add_fault_facts(&mut self, records: &[Record], cut: f64, cut_conns: &[u64]) {
        let mut attempt_start: Option<f64> = None;
        for r in records {
            match (r.actor, &r.event) {
                (Actor::Proxy, Event::FaultApplied { fault, n, .. }) => {
                    self.faults.push(FaultSpan {
                        n: *n,
                        fault: fault.clone(),
                        applied_ms: r.ms,
                        healed_ms: None,
                    })
                }
                (Actor::Proxy, Event::FaultHealed { n, .. }) => {
                    if let Some(fs) = self
                        .faults
                        .iter_mut()
                        .find(|fs| fs.n == *n && fs.healed_ms.is_none())
                    {
                        fs.healed_ms = Some(r.ms);
                    }
                }
                (
                    Actor::Proxy,
                    Event::SideClosed {
                        conn,
                        side: Side::Client,
                        ..
                    },
                ) if r.ms >= cut && self.client_close_ms.is_none() && cut_conns.contains(conn) => {
                    self.client_close_ms = Some(r.ms)
                }
                (Actor::Willy, Event::Connecting { .. }) => attempt_start = Some(r.ms),
                (Actor::Willy, Event::Connected { .. }) => {
                    if let Some(st) = attempt_start.take() {
                        self.attempts.push(Attempt {
                            started_ms: st,
                            ended_ms: r.ms,
                            connected: true,
                        });
                    }
                }
                (Actor::Willy, Event::Disconnected)
                    if r.ms >= cut && self.client_detect_ms.map_or(true, |d| r.ms < d) =>
                {
                    self.disconnected_before_detect = true
                }
                (Actor::Willy, Event::ConnectionFailed { .. }) => {
                    if let Some(st) = attempt_start.take() {
                        self.attempts.push(Attempt {
                            started_ms: st,
                            ended_ms: r.ms,
                            connected: false,
                        });
                        if Some(r.ms) == self.client_detect_ms {
                            self.detect_attempt_started_ms = Some(st);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The reason code of a DISCONNECT's fields; `None` for the two-byte form (and other packets).
fn disconnect_reason(f: &Fields) -> Option<u8> {
    match f {
        Fields::Disconnect { reason } => *reason,
        _ => None,
    }
}

/// The packet identifier of a packet's fields, if it has one.
fn packet_id(f: &Fields) -> Option<u16> {
    match f {
        Fields::Publish { packet_id, .. } => *packet_id,
        Fields::Subscribe { packet_id, .. }
        | Fields::Suback { packet_id, .. }
        | Fields::Unsubscribe { packet_id, .. }
        | Fields::Ack { packet_id } => Some(*packet_id),
        _ => None,
    }
}

/// The (topic, payload size) of every message monit got: the only PUBLISHes of willy's worth
/// holding one by one to pair with monit's copies (a flood monit never saw stays a count).
pub(crate) fn monit_got(records: &[Record]) -> std::collections::HashSet<(&str, usize)> {
    records
        .iter()
        .filter_map(|r| match (&r.actor, &r.event) {
            (Actor::Monit, Event::MessageReceived { topic, payload, .. }) => {
                Some((topic.as_str(), payload.len()))
            }
            _ => None,
        })
        .collect()
}

/// One PUBLISH of willy's the wire tap saw reach the broker.
pub(crate) struct WirePublish<'a> {
    pub ms: f64,
    pub topic: &'a str,
    pub payload_len: usize,
}

/// The PUBLISHes one record stands for, all alike: a `packet` record's one, or a
/// `publish_run`'s `count` (`[tap] publishes = "runs"`), so the checks count and pair them alike
/// in both modes. A run keeps only its first and last times: its PUBLISHes are placed evenly
/// between them. Callers pick runs by their shared fields first and place or count PUBLISHes
/// by index, so a run of millions costs nothing unless its PUBLISHes are needed one by one.
struct WireRun<'a> {
    conn: u64,
    from: Side,
    dropped: bool,
    topic: &'a str,
    payload_len: usize,
    count: u64,
    first: f64,
    last: f64,
}

impl<'a> WireRun<'a> {
    fn of(r: &'a Record) -> Option<WireRun<'a>> {
        match &r.event {
            Event::Packet {
                conn,
                from,
                dropped,
                kind: PacketKind::Publish,
                fields:
                    Fields::Publish {
                        topic, payload_len, ..
                    },
                ..
            } => Some(WireRun {
                conn: *conn,
                from: *from,
                dropped: *dropped,
                topic: topic.as_str(),
                payload_len: *payload_len,
                count: 1,
                first: r.ms,
                last: r.ms,
            }),
            Event::PublishRun {
                conn,
                from,
                dropped,
                topic,
                payload_len,
                count,
                first_ms,
                last_ms,
                ..
            } => Some(WireRun {
                conn: *conn,
                from: *from,
                dropped: *dropped,
                topic: topic.as_str(),
                payload_len: *payload_len,
                count: *count,
                first: *first_ms,
                last: *last_ms,
            }),
            _ => None,
        }
    }

    /// A PUBLISH of willy's that reached the broker.
    fn own(&self) -> bool {
        self.from == Side::Client && !self.dropped
    }

    /// When the `i`th PUBLISH went through.
    fn at(&self, i: u64) -> f64 {
        if i + 1 >= self.count {
            return self.last;
        }
        self.first + (self.last - self.first) / (self.count - 1) as f64 * i as f64
    }

    /// How many PUBLISHes went through at or before `t` (their times never go back).
    fn through(&self, t: f64) -> u64 {
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.at(mid) <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn publishes(self) -> impl Iterator<Item = WirePublish<'a>> {
        (0..self.count).map(move |i| WirePublish {
            ms: self.at(i),
            topic: self.topic,
            payload_len: self.payload_len,
        })
    }
}

/// What pairing willy's PUBLISHes with monit's copies holds in memory, in the units of
/// [`crate::event::ReadLimits::publish_bytes`]: only the runs whose topic and payload size
/// monit got are held one by one.
pub fn paired_publish_bytes(records: &[Record]) -> u64 {
    let wanted = monit_got(records);
    records
        .iter()
        .filter_map(WireRun::of)
        .filter(|w| w.own() && wanted.contains(&(w.topic, w.payload_len)))
        .map(|w| {
            w.count
                .saturating_mul(w.topic.len() as u64 + crate::event::PUBLISH_COST)
        })
        .fold(0u64, u64::saturating_add)
}

/// Does `r` stand for a PUBLISH of willy's that reached the broker?
pub(crate) fn wire_runs_own(r: &Record) -> bool {
    WireRun::of(r).is_some_and(|w| w.own() && w.count > 0)
}

/// The PUBLISHes of willy's that reached the broker, one by one, of the records whose topic and
/// payload size `keep` accepts.
pub(crate) fn own_publishes<'a>(
    r: &'a Record,
    keep: impl Fn(&str, usize) -> bool,
) -> impl Iterator<Item = WirePublish<'a>> {
    WireRun::of(r)
        .filter(|w| w.own() && keep(w.topic, w.payload_len))
        .into_iter()
        .flat_map(WireRun::publishes)
}
