//! Spec checks: pure functions of (scenario, broker profile, records).
//!
//! ```text
//!  records --Facts::from_records--> Facts { cut, last upstream, broker drop, will, ... }
//!  (scenario, profile, facts) --evaluate--> [Check { name, status, pass, expected, actual }]
//! ```
//!
//! A check tests the spec only. The profile then says whether a failure is a known deviation
//! of that broker (`deviation`, not a failure of the run) and flags a listed deviation that did
//! not happen (`unexpected-pass`).
//!
//! No I/O and no clock: a saved run can be judged again from its JSONL, and every rule is
//! tested on hand-made record lists.

use serde::{Deserialize, Serialize};

use crate::broker::profile::Profile;
use crate::event::{Actor, Event, Record, Side};
use crate::scenario::Scenario;

/// How early before 1.5 x keepalive a close still counts: the proxy stamps the last forwarded
/// bytes a little after the broker's read completes, and timers may fire a hair early.
pub const EARLY_MS: f64 = 50.0;

/// What the records say happened, reduced to the moments the checks and the summary use.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    /// When the first fault took effect.
    pub cut_at_ms: Option<f64>,
    /// willy's last bytes the proxy forwarded to the broker before the cut.
    pub last_upstream_ms: Option<f64>,
    /// The last complete MQTT packet from willy that reached the broker on a connection open
    /// at the cut (the wire tap's view): the keepalive timer's true reference.
    pub last_packet_ms: Option<f64>,
    pub last_packet_kind: Option<String>,
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
    /// Walk the run up to the cut: every message monit gets on the will topic with the will's
    /// payload is one of willy's own PUBLISHes that reached the broker (the wire tap counts them
    /// by topic and payload size) or, when none is left to pair it with, a will. A will after a
    /// clean DISCONNECT breaks the spec; the seed's will payload is willy's own `false`, so only
    /// this count tells them apart. A PUBLISH is recorded just after the proxy wrote it, and
    /// monit's copy may be recorded a hair before that: a copy pairs with an own PUBLISH recorded
    /// up to [`PROMPT_MS`] after it, or up to [`OWN_COPY_MS`] before it.
    fn collect(s: &Scenario, records: &[Record], cut: Option<f64>) -> Vec<CleanDisconnectWill> {
        let Some(w) = &s.will else {
            return Vec::new();
        };
        let until = cut.unwrap_or(f64::INFINITY);
        let mut own: Vec<(f64, bool)> = Vec::new(); // (ms, paired)
        let mut copies: Vec<f64> = Vec::new();
        // Clean DISCONNECTs (not 0x04: that one asks for the will): (cycle, ms, bytes).
        let mut clean: Vec<(u32, f64, String)> = Vec::new();
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
                ) => match kind.as_str() {
                    "PUBLISH"
                        if fields.get("topic").and_then(|t| t.as_str()) == Some(&w.topic)
                            && fields.get("payload_len").and_then(|l| l.as_u64())
                                == Some(w.payload.len() as u64) =>
                    {
                        own.push((r.ms, false))
                    }
                    "DISCONNECT" if fields.get("reason").and_then(|v| v.as_u64()) != Some(4) => {
                        clean.push((cycle, r.ms, hex.clone().unwrap_or_default()))
                    }
                    _ => {}
                },
                (Actor::Monit, Event::MessageReceived { topic, payload, .. })
                    if *topic == w.topic && *payload == w.payload =>
                {
                    copies.push(r.ms)
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for c in copies {
            let pair = own
                .iter_mut()
                .find(|(t, paired)| !*paired && *t >= c - OWN_COPY_MS && *t <= c + PROMPT_MS);
            if let Some(p) = pair {
                p.1 = true;
                continue;
            }
            if let Some((cycle, ms, hex)) = clean.iter().rev().find(|(_, ms, _)| *ms <= c) {
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

/// How long before monit's copy willy's own PUBLISH may have reached the broker: the broker
/// forwards a QoS 0 message to a subscriber on loopback within a few ms; a second is ample.
pub const OWN_COPY_MS: f64 = 1000.0;

/// A flaky monit: when it left, when it was back, and each copy of the will it got.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlakyMonitSeen {
    /// monit closed its connection without DISCONNECT.
    pub away_ms: Option<f64>,
    /// monit's CONNACK on its return.
    pub back_ms: Option<f64>,
    pub session_present: Option<bool>,
    /// Each copy of the will monit received after the cut: (ms, QoS).
    pub wills: Vec<(f64, u8)>,
}

impl FlakyMonitSeen {
    fn collect(s: &Scenario, records: &[Record], cut: Option<f64>) -> Option<FlakyMonitSeen> {
        s.monit.flaky?;
        let mut seen = FlakyMonitSeen::default();
        let cut = cut?;
        for r in records.iter().filter(|r| r.actor == Actor::Monit) {
            match &r.event {
                Event::ConnectionAbandoned => {
                    seen.away_ms.get_or_insert(r.ms);
                }
                Event::Connected { session_present } if seen.back_ms.is_none() => {
                    seen.back_ms = Some(r.ms);
                    seen.session_present = Some(*session_present);
                }
                Event::MessageReceived {
                    topic,
                    payload,
                    qos,
                    ..
                } if r.ms > cut
                    && s.will
                        .as_ref()
                        .is_some_and(|w| w.topic == *topic && w.payload == *payload) =>
                {
                    seen.wills.push((r.ms, *qos))
                }
                _ => {}
            }
        }
        Some(seen)
    }
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
                ) if kind == "DISCONNECT" => {
                    let reason = fields
                        .get("reason")
                        .and_then(|v| v.as_u64())
                        .map(|v| v as u8);
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

/// pubby's messages and what willy's subscription got of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delivery {
    /// pubby's messages willy should get, as (ms written, payload): from the cut on when pubby
    /// publishes from the cut, else those written while willy was subscribed and connected.
    pub due: Vec<(f64, String)>,
    /// What willy received on pubby's topic.
    pub received: Vec<Delivered>,
    /// The QoS the broker granted willy's subscription (its first SUBACK); 128: refused.
    pub granted: Option<u8>,
    /// willy's first CONNACK after the first fault healed, and its Session Present flag.
    pub reconnected_ms: Option<f64>,
    pub session_present: Option<bool>,
    /// PUBLISHes of pubby's topic the broker sent willy again on a later connection (same
    /// packet id, not acknowledged on the earlier one), as the wire tap saw them.
    pub resent: Vec<Resent>,
}

/// A PUBLISH the broker sent again on a new connection [MQTT-4.4.0-1].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resent {
    pub ms: f64,
    pub packet_id: u64,
    pub dup: bool,
}

/// One message willy received from pubby.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivered {
    pub ms: f64,
    pub payload: String,
    pub qos: u8,
    pub dup: bool,
}

impl Delivery {
    fn collect(s: &Scenario, records: &[Record]) -> Option<Delivery> {
        let (Some(p), Some(sub)) = (&s.publisher, &s.subscribe) else {
            return None;
        };
        if !crate::scenario::filter_matches(&sub.filter, &p.topic) {
            return None;
        }
        let mut d = Delivery::default();
        let mut cut = None;
        let mut heal = None;
        let mut subscribed_since = None;
        let mut connected = false;
        // (conn, packet id) of PUBLISHes to willy not yet acknowledged.
        let mut unacked: Vec<(u64, u64)> = Vec::new();
        for r in records {
            if let Event::Packet {
                conn,
                from,
                dropped,
                kind,
                fields,
                ..
            } = &r.event
            {
                let id = fields.get("packet_id").and_then(|v| v.as_u64());
                let topic = fields.get("topic").and_then(|v| v.as_str());
                match (from, kind.as_str(), id) {
                    (Side::Broker, "PUBLISH", Some(id)) if topic == Some(p.topic.as_str()) => {
                        if let Some(i) = unacked.iter().position(|(c, x)| *x == id && c != conn) {
                            unacked.remove(i);
                            d.resent.push(Resent {
                                ms: r.ms,
                                packet_id: id,
                                dup: fields.get("dup").and_then(|v| v.as_bool()) == Some(true),
                            });
                        }
                        unacked.push((*conn, id));
                    }
                    (Side::Client, "PUBACK" | "PUBREC", Some(id)) if !dropped => {
                        unacked.retain(|(c, x)| !(c == conn && *x == id));
                    }
                    _ => {}
                }
            }
            match (r.actor, &r.event) {
                (Actor::Proxy, Event::FaultApplied { n, .. }) if *n <= 1 && cut.is_none() => {
                    cut = Some(r.ms)
                }
                (Actor::Proxy, Event::FaultHealed { n, .. }) if *n <= 1 && heal.is_none() => {
                    heal = Some(r.ms)
                }
                (Actor::Willy, Event::SubscribeGranted { granted, .. }) => {
                    d.granted
                        .get_or_insert(granted.first().copied().unwrap_or(0x80));
                    subscribed_since.get_or_insert(r.ms);
                }
                (Actor::Willy, Event::Connected { session_present }) => {
                    connected = true;
                    if heal.is_some() && d.reconnected_ms.is_none() {
                        d.reconnected_ms = Some(r.ms);
                        d.session_present = Some(*session_present);
                    }
                }
                (Actor::Willy, Event::DisconnectRequested | Event::ConnectionFailed { .. }) => {
                    connected = false
                }
                (Actor::Pubby, Event::Published { payload, .. }) => {
                    let due = match p.from {
                        crate::scenario::PublishFrom::Cut => true,
                        crate::scenario::PublishFrom::Start => {
                            subscribed_since.is_some() && connected && cut.is_none()
                        }
                    };
                    if due {
                        d.due.push((r.ms, payload.clone()));
                    }
                }
                (
                    Actor::Willy,
                    Event::Received {
                        topic,
                        payload,
                        qos,
                        dup,
                        ..
                    },
                ) if *topic == p.topic => d.received.push(Delivered {
                    ms: r.ms,
                    payload: payload.clone(),
                    qos: *qos,
                    dup: *dup,
                }),
                _ => {}
            }
        }
        Some(d)
    }

    /// The QoS willy's messages must arrive at: the lower of pubby's and the granted one.
    pub fn effective_qos(&self, s: &Scenario) -> Option<u8> {
        let p = s.publisher.as_ref()?;
        let granted = self
            .granted
            .filter(|g| *g <= 2)
            .or(s.subscribe.as_ref().map(|sub| sub.qos))?;
        Some(p.qos.min(granted))
    }

    /// Payloads received more than once.
    pub fn duplicates(&self) -> Vec<String> {
        let mut seen: Vec<&str> = Vec::new();
        let mut dups = Vec::new();
        for r in &self.received {
            if seen.contains(&r.payload.as_str()) {
                dups.push(r.payload.clone());
            } else {
                seen.push(&r.payload);
            }
        }
        dups
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
        let (conn, what, dropped) = match &r.event {
            Event::Packet {
                conn,
                kind,
                dropped,
                ..
            } => (*conn, kind.as_str(), *dropped),
            Event::WireFrame {
                conn,
                what,
                dropped,
                ..
            } => (*conn, what.as_str(), *dropped),
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
        match what {
            "PINGREQ" => {
                c.pingreq += 1;
                c.pingreq_dropped += u32::from(dropped);
            }
            "PINGRESP" => c.pingresp += 1,
            w if w.starts_with("ws ping") => c.ws_ping += 1,
            w if w.starts_with("ws pong") => c.ws_pong += 1,
            w if w.starts_with("ws close") => c.ws_close += 1,
            _ => {}
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
    /// What the keepalive is measured from: the last packet that reached the broker, or, when
    /// the tap saw none (a stream it could not decode), the last bytes forwarded.
    pub fn reference_ms(&self) -> Option<f64> {
        self.last_packet_ms.or(self.last_upstream_ms)
    }

    pub fn from_records(s: &Scenario, records: &[Record]) -> Facts {
        let mut f = Facts::default();
        let mut cut_conns: Vec<u64> = Vec::new();
        for r in records {
            if let (Actor::Proxy, Event::FaultApplied { last_upstream, .. }) = (r.actor, &r.event) {
                f.cut_at_ms = Some(r.ms);
                f.last_upstream_ms = last_upstream.iter().filter_map(|c| c.ms).reduce(f64::max);
                cut_conns = last_upstream.iter().map(|c| c.conn).collect();
                break;
            }
        }
        for r in records {
            WireCounts::count(&mut f.wire_counts, r);
        }
        f.disconnects = DisconnectSeen::collect(s, records);
        f.delivery = Delivery::collect(s, records);
        for r in records.iter().filter(|r| r.actor == Actor::Twin) {
            match r.event {
                Event::Connecting { .. } => {
                    f.twin_connecting_ms.get_or_insert(r.ms);
                }
                Event::Connected { .. } => {
                    f.twin_connack_ms.get_or_insert(r.ms);
                }
                _ => {}
            }
        }
        for r in records {
            match &r.event {
                Event::LateSubscribed => {
                    f.late_subscribed_ms.get_or_insert(r.ms);
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
                    f.late_will_retained.get_or_insert(*retain);
                }
                _ => {}
            }
        }
        f.observed_until_ms = records.iter().rev().find_map(|r| match r.event {
            Event::RunEnded { .. } => Some(r.ms),
            _ => None,
        });
        f.wills_after_clean_disconnect = CleanDisconnectWill::collect(s, records, f.cut_at_ms);
        let Some(cut) = f.cut_at_ms else {
            // No network fault: what monit learns comes from willy's own DISCONNECTs.
            f.will_received_ms = f.disconnects.iter().find_map(|d| d.will_ms);
            return f;
        };
        // After a heal, willy's own publishes reach monit again: from the first one on, a
        // message is no longer news of the cut.
        let mut own_publish_after_heal = None;
        for r in records.iter().filter(|r| r.ms >= cut) {
            match (&r.actor, &r.event) {
                (Actor::Proxy, Event::FaultHealed { .. }) if f.heal_ms.is_none() => {
                    f.heal_ms = Some(r.ms)
                }
                (
                    Actor::Proxy,
                    Event::SideClosed {
                        conn,
                        side: Side::Broker,
                        ..
                    },
                ) if f.broker_drop_ms.is_none() && cut_conns.contains(conn) => {
                    f.broker_drop_ms = Some(r.ms)
                }
                (Actor::Willy, Event::ConnectionFailed { .. }) => {
                    f.client_detect_ms.get_or_insert(r.ms);
                    f.attempts_failed_after_cut += 1;
                }
                (Actor::Willy, Event::Published { .. })
                    if f.heal_ms.is_some() && own_publish_after_heal.is_none() =>
                {
                    own_publish_after_heal = Some(r.ms)
                }
                _ => {}
            }
        }
        // Packets are recorded just after they are written, so one forwarded before the cut
        // may be recorded after it; what the fault swallowed is marked dropped.
        let drop_at = f.broker_drop_ms.unwrap_or(f64::INFINITY);
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
                    f.last_packet_ms = Some(r.ms);
                    f.last_packet_kind = Some(kind.clone());
                }
            }
        }
        if let Some(last) = f.last_packet_ms {
            f.publishes_to_silent_willy = records
                .iter()
                .filter(|r| r.ms > last && r.ms <= drop_at)
                .filter(|r| {
                    matches!(&r.event, Event::Packet { conn, from: Side::Broker, kind, .. }
                        if kind == "PUBLISH" && cut_conns.contains(conn))
                })
                .count() as u32;
        }
        let news_until = own_publish_after_heal.unwrap_or(f64::INFINITY);
        // What willy published just before the cut may reach monit just after it: its own
        // message, not news of the cut (a fault at "disconnected" follows the last "false").
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
        // After the cut, a slow link may still deliver willy's own PUBLISHes: the wire tap saw
        // each one go through, so a message matching one (topic, payload size) is willy's.
        let mut forwarded: Vec<(String, u64)> = Vec::new();
        for r in records.iter().filter(|r| r.ms > cut && r.ms < news_until) {
            if let Event::Packet {
                from: Side::Client,
                dropped: false,
                kind,
                fields,
                ..
            } = &r.event
            {
                if kind == "PUBLISH" {
                    let topic = fields
                        .get("topic")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default();
                    let len = fields
                        .get("payload_len")
                        .and_then(|l| l.as_u64())
                        .unwrap_or(u64::MAX);
                    forwarded.push((topic.to_string(), len));
                }
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
                if f.first_news_ms.is_none() {
                    f.first_news_ms = Some(r.ms);
                    f.first_news = Some(format!("{topic}: {payload}"));
                }
                if let Some(w) = &s.will {
                    if f.will_received_ms.is_none() && *topic == w.topic && *payload == w.payload {
                        f.will_received_ms = Some(r.ms);
                    }
                }
            }
        }
        f.add_fault_facts(records, cut, &cut_conns);
        f.flaky_monit = FlakyMonitSeen::collect(s, records, f.cut_at_ms);
        f.status_true_qos = records
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
                ) if topic == crate::scenario::STATUS_TOPIC && payload == "true" => {
                    Some((r.ms, *qos))
                }
                _ => None,
            })
            .collect();
        f
    }
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

/// One verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// The normative statement it tests, where there is one.
    pub spec: Option<String>,
    /// What the run makes of it: the spec verdict, read against the broker's known deviations.
    pub status: Status,
    /// Not a failure of the run: `pass`, `deviation` or `unexpected-pass`.
    pub pass: bool,
    pub expected: String,
    pub actual: String,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The spec holds.
    Pass,
    /// The spec does not hold, and the broker's profile does not expect that.
    Fail,
    /// The spec does not hold, as the broker's profile documents (not a failure of the run).
    Deviation,
    /// The profile lists a deviation for this check, but the spec held: the list needs a look.
    UnexpectedPass,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Deviation => "deviation",
            Status::UnexpectedPass => "unexpected-pass",
        }
    }
}

/// "never" said with how long the run looked: `within 18.3 s of willy's last packet`.
fn observed(f: &Facts, from_ms: f64) -> String {
    match f.observed_until_ms {
        Some(end) => format!(
            "observed for {:.1} s after willy's last packet",
            (end - from_ms) / 1000.0
        ),
        None => "the run ended before it was observed".into(),
    }
}

/// The spec's keepalive arithmetic in words.
pub mod timing {
    use std::time::Duration;

    /// `3.00 x keepalive; spec 1.5 x` or, past the bound, `3.00 x keepalive, 7.5 s late; spec
    /// 1.5 x`; `delay_ms` is a will delay due on top of the bound.
    pub fn ratio(d_ms: f64, keepalive: Duration, delay_ms: f64) -> String {
        let ka = keepalive.as_secs_f64() * 1000.0;
        let bound = 1.5 * ka + delay_ms;
        let x = (d_ms - delay_ms) / ka;
        let late = d_ms - bound;
        let spec = if delay_ms > 0.0 {
            format!("spec 1.5 x + will delay {:.1} s", delay_ms / 1000.0)
        } else {
            "spec 1.5 x".to_string()
        };
        if late >= 1000.0 {
            format!("{x:.2} x keepalive, {:.1} s late; {spec}", late / 1000.0)
        } else if late <= -1000.0 {
            format!("{x:.2} x keepalive, {:.1} s early; {spec}", -late / 1000.0)
        } else {
            format!("{x:.2} x keepalive; {spec}")
        }
    }
}

fn ms(x: Option<f64>) -> String {
    x.map_or("never".to_string(), |v| format!("{v:.0} ms"))
}

/// The 1.5 x keepalive window after the last packet, widened late by the broker's profile.
fn keepalive_window(s: &Scenario, p: &Profile) -> (f64, f64) {
    let bound = s.keepalive.as_secs_f64() * 1500.0;
    (bound - EARLY_MS, bound + p.keepalive_late_ms as f64)
}

/// [MQTT-3.14.4-3]: on a DISCONNECT with reason 0x00 (either encoding) the server discards
/// the will; with 0x04 "Disconnect with Will Message" it publishes it [MQTT-3.14.2-1 table].
/// Named after the bytes willy wrote (`will-on-disconnect e00104`), because brokers differ by
/// encoding and a profile's deviation names exactly one.
fn will_on_disconnect(d: crate::scenario::V5Disconnect, f: &Facts) -> Check {
    let bytes = crate::actor::v5wire::disconnect(d.reason, d.form).unwrap_or_default();
    let wrong: Vec<String> = f
        .disconnects
        .iter()
        .filter(|d| (d.reason == Some(0x04)) != d.will_ms.is_some())
        .map(|d| {
            let r = d
                .reason
                .map_or("none (e000)".to_string(), |r| format!("0x{r:02x}"));
            match d.will_ms {
                Some(w) => format!(
                    "reason {r} at {:.0} ms: will published {:.0} ms later",
                    d.ms,
                    w - d.ms
                ),
                None => format!("reason {r} at {:.0} ms: no will", d.ms),
            }
        })
        .collect();
    let seen: Vec<String> = f
        .disconnects
        .iter()
        .map(|d| {
            let r = d
                .reason
                .map_or("e000".to_string(), |r| format!("0x{r:02x}"));
            match d.will_ms {
                Some(w) => format!("{r}: will after {:.0} ms", w - d.ms),
                None => format!("{r}: no will"),
            }
        })
        .collect();
    Check {
        name: format!("will-on-disconnect {}", crate::actor::v5wire::hex(&bytes)),
        spec: Some("MQTT-3.14.4-3, MQTT-3.1.2-10".into()),
        status: Status::Fail, // judged by `evaluate` from `pass`
        pass: !f.disconnects.is_empty() && wrong.is_empty(),
        expected: "each DISCONNECT with reason 0x04 is followed by the will; 0x00 (e000 or a reason byte) never".into(),
        actual: if f.disconnects.is_empty() {
            "no DISCONNECT from willy reached the broker".into()
        } else if wrong.is_empty() {
            seen.join("; ")
        } else {
            wrong.join("; ")
        },
    }
}

/// [MQTT-3.1.2-10], [MQTT-3.14.4-3]: a DISCONNECT that reached the broker removes the will, so
/// no clean cycle may end in one. Judged in every run with a will (3.1.1 and 5, TCP and WS)
/// whose DISCONNECT is willy's default; a chosen v5 DISCONNECT has `will-on-disconnect`.
fn no_will_after_clean_disconnect(w: &crate::scenario::Will, f: &Facts) -> Check {
    let wrong: Vec<String> = f
        .wills_after_clean_disconnect
        .iter()
        .map(|x| {
            format!(
                "cycle {}: the will {}: {} reached monit {:.0} ms after willy's DISCONNECT ({}) reached the broker at {:.0} ms",
                x.cycle,
                w.topic,
                w.payload,
                x.will_ms - x.disconnect_ms,
                if x.disconnect_hex.is_empty() { "?" } else { &x.disconnect_hex },
                x.disconnect_ms
            )
        })
        .collect();
    check(
        "no-will-after-disconnect",
        Some("MQTT-3.1.2-10, MQTT-3.14.4-3"),
        wrong.is_empty(),
        "no will after a DISCONNECT that reached the broker: monit gets only what willy published"
            .into(),
        if wrong.is_empty() {
            "every message on the will topic before the cut was one willy published".into()
        } else {
            wrong.join("; ")
        },
    )
}

/// [MQTT-3.1.2-17]: a will with Will Retain 1 is published as a retained message, so a
/// subscriber that comes later still learns willy is gone; with Will Retain 0 it must not be.
fn retained_will(w: &crate::scenario::Will, f: &Facts) -> Check {
    let actual = match (
        f.will_received_ms,
        f.late_subscribed_ms,
        f.late_will_retained,
    ) {
        (None, _, _) => "no will was published, so nothing to retain".to_string(),
        (Some(_), None, _) => "the late subscriber never subscribed".to_string(),
        (Some(_), Some(t), None) => {
            format!("the late subscriber (subscribed at {t:.0} ms) got no will")
        }
        (Some(_), Some(_), Some(r)) => format!(
            "the late subscriber got the will with retain {}",
            u8::from(r)
        ),
    };
    Check {
        name: "retained-will".into(),
        spec: Some(
            if w.retain {
                "MQTT-3.1.2-17"
            } else {
                "MQTT-3.1.2-16"
            }
            .into(),
        ),
        status: Status::Fail, // judged by `evaluate` from `pass`
        pass: f.will_received_ms.is_some()
            && f.late_subscribed_ms.is_some()
            && if w.retain {
                f.late_will_retained == Some(true)
            } else {
                f.late_will_retained.is_none()
            },
        expected: if w.retain {
            "a subscriber arriving after the will gets it, retained".into()
        } else {
            "a subscriber arriving after the will gets nothing (will retain 0)".into()
        },
        actual,
    }
}

/// What willy's subscription got of pubby's messages:
/// - [MQTT-3.8.4-6]: each arrives at the lower of the publish QoS and the granted QoS;
/// - [MQTT-3.2.2-2]: a broker that kept willy's session (Clean Session 0) says so in CONNACK;
/// - [MQTT-3.1.2-5], [MQTT-4.4.0-1]: QoS 1 and 2 messages published while willy was away are
///   kept in its session and sent (again, if they were in flight) when it reconnects;
/// - [MQTT-4.3.3-2]: at QoS 2, none is delivered twice.
fn delivery_checks(s: &Scenario, d: &Delivery) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(q) = d.effective_qos(s) else {
        return checks;
    };
    let pub_qos = s.publisher.as_ref().map_or(0, |p| p.qos);
    let wrong: Vec<String> = d
        .received
        .iter()
        .filter(|r| r.qos != q)
        .map(|r| format!("{} at QoS {}", r.payload, r.qos))
        .collect();
    checks.push(check(
        "delivery-qos",
        Some("MQTT-3.8.4-6"),
        !d.received.is_empty() && wrong.is_empty(),
        format!(
            "every message arrives at QoS {q}: the lower of the publish QoS {pub_qos} and the granted QoS {}",
            d.granted.map_or("?".to_string(), |g| g.to_string())
        ),
        if d.received.is_empty() {
            "willy received none of pubby's messages".into()
        } else if wrong.is_empty() {
            format!("{} messages, all at QoS {q}", d.received.len())
        } else {
            format!("{} of {} at another QoS: {}", wrong.len(), d.received.len(), wrong.join(", "))
        },
    ));
    let queued = !s.clean_session
        && s.publisher
            .as_ref()
            .is_some_and(|p| p.from == crate::scenario::PublishFrom::Cut)
        && s.cut().is_some_and(|c| c.heal_after.is_some());
    if !queued {
        return checks;
    }
    checks.push(check(
        "session-present",
        Some("MQTT-3.2.2-2"),
        d.session_present == Some(true),
        "willy reconnects with Clean Session 0 after the heal: CONNACK says Session Present 1"
            .into(),
        match d.session_present {
            Some(p) => format!("Session Present {}", u8::from(p)),
            None => "willy did not reconnect after the heal".into(),
        },
    ));
    if q == 0 {
        return checks;
    }
    let got = |p: &str| d.received.iter().find(|r| r.payload == p);
    let missing: Vec<&str> = d
        .due
        .iter()
        .filter(|(_, p)| got(p).is_none())
        .map(|(_, p)| p.as_str())
        .collect();
    let last = d
        .due
        .iter()
        .filter_map(|(_, p)| got(p).map(|r| r.ms))
        .reduce(f64::max);
    let resent = d.received.iter().filter(|r| r.dup).count();
    let dups = d.duplicates();
    checks.push(check(
        "queued-delivery",
        Some("MQTT-3.1.2-5, MQTT-4.4.0-1"),
        !d.due.is_empty() && missing.is_empty(),
        format!(
            "every QoS {q} message pubby published while willy was cut off reaches willy once it reconnects with its session"
        ),
        if d.due.is_empty() {
            "pubby published nothing while willy was cut off".into()
        } else {
            let mut a = format!(
                "{} of {} delivered",
                d.due.len() - missing.len(),
                d.due.len()
            );
            if !missing.is_empty() {
                a += &format!("; missing: {}", missing.join(", "));
            }
            if let (Some(l), Some(c)) = (last, d.reconnected_ms) {
                a += &format!("; the last {:.0} ms after willy's reconnect", l - c);
            }
            a + &format!("; {resent} with DUP set; {} duplicates", dups.len())
        },
    ));
    if !d.resent.is_empty() {
        let plain: Vec<String> = d
            .resent
            .iter()
            .filter(|r| !r.dup)
            .map(|r| r.packet_id.to_string())
            .collect();
        checks.push(check(
            "dup-on-resend",
            Some("MQTT-3.3.1-1, MQTT-4.4.0-1"),
            plain.is_empty(),
            "a PUBLISH sent again on willy's new connection (its first copy unacknowledged) has DUP 1".into(),
            if plain.is_empty() {
                format!("{} resent, all with DUP 1", d.resent.len())
            } else {
                format!(
                    "{} resent, {} with DUP 0 (packet ids {})",
                    d.resent.len(),
                    plain.len(),
                    plain.join(", ")
                )
            },
        ));
    }
    if q == 2 {
        checks.push(check(
            "no-duplicates",
            Some("MQTT-4.3.3-2"),
            dups.is_empty(),
            "at QoS 2 no message reaches willy twice".into(),
            if dups.is_empty() {
                format!("{} messages, each once", d.received.len())
            } else {
                format!("received twice: {}", dups.join(", "))
            },
        ));
    }
    checks
}

/// [MQTT-3.8.4-6]: a message is delivered at the lower of its publish QoS and the granted QoS,
/// so willy's `true` (published at QoS 0) reaches a QoS 1 or 2 subscriber at QoS 0.
fn no_qos_upgrade(s: &Scenario, f: &Facts) -> Check {
    let upgraded: Vec<String> = f
        .status_true_qos
        .iter()
        .filter(|(_, q)| *q != 0)
        .map(|(t, q)| format!("QoS {q} at {t:.0} ms"))
        .collect();
    check(
        "no-qos-upgrade",
        Some("MQTT-3.8.4-6"),
        !f.status_true_qos.is_empty() && upgraded.is_empty(),
        format!(
            "willy's true, published at QoS 0, reaches monit (subscribed at QoS {}) at QoS 0",
            s.monit.qos
        ),
        if f.status_true_qos.is_empty() {
            "monit received no true".into()
        } else if upgraded.is_empty() {
            format!("{} at QoS 0", f.status_true_qos.len())
        } else {
            upgraded.join(", ")
        },
    )
}

/// How long after a flaky monit's return its queued will may take: the spec sets no time
/// ("re-send" on reconnect, [MQTT-4.4.0-1]); on loopback a queued message follows the CONNACK
/// within milliseconds, so a second is the harness's wait, not a tolerance of the spec.
pub const QUEUED_WAIT_MS: f64 = 1000.0;

/// monit was away (its connection closed, its session kept) when the broker dropped willy:
/// - [MQTT-3.1.2-5], [MQTT-4.4.0-1]: the will, a QoS 1 message for monit's subscription, is kept
///   in monit's session and sent when monit reconnects;
/// - [MQTT-3.2.2-2]: the broker says it kept the session (Session Present 1);
/// - [MQTT-3.8.4-6]: at the lower of the will's QoS [MQTT-3.1.2-14] and monit's granted QoS;
/// - [MQTT-4.3.2-1]: once: monit acknowledged it, so there is nothing to send again.
fn flaky_monit_checks(s: &Scenario, m: &FlakyMonitSeen, f: &Facts) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(w) = &s.will else { return checks };
    let at = |x: Option<f64>| x.map_or("never".to_string(), |v| format!("{v:.0} ms"));
    checks.push(check(
        "monit-session-present",
        Some("MQTT-3.2.2-2"),
        m.session_present == Some(true),
        "monit reconnects with Clean Session 0 and the broker says it kept the session".into(),
        match m.session_present {
            Some(p) => format!("session present {} at {}", u8::from(p), at(m.back_ms)),
            None => "monit never reconnected".into(),
        },
    ));
    let away_at_publish = matches!((m.away_ms, f.broker_drop_ms, m.back_ms),
        (Some(a), Some(d), Some(b)) if a < d && d < b);
    let first = m.wills.first().map(|(t, _)| *t);
    let after_back = m.back_ms.zip(first).map(|(b, t)| t - b);
    checks.push(check(
        "will-queued-for-subscriber",
        Some("MQTT-3.1.2-5, MQTT-4.4.0-1"),
        away_at_publish && after_back.is_some_and(|d| (0.0..=QUEUED_WAIT_MS).contains(&d)),
        format!("the broker drops willy while monit is away; the will reaches monit 0..{QUEUED_WAIT_MS:.0} ms after monit's CONNACK on its return"),
        format!(
            "monit away at {}, willy dropped at {}, monit back at {}; will {}",
            at(m.away_ms),
            at(f.broker_drop_ms),
            at(m.back_ms),
            match after_back {
                Some(d) => format!("{d:.0} ms after monit's return"),
                None => match first {
                    Some(t) => format!("at {t:.0} ms, before monit's return"),
                    None => "never reached monit".into(),
                },
            }
        ),
    ));
    let q = w.qos.min(s.monit.qos);
    let wrong: Vec<String> = m
        .wills
        .iter()
        .filter(|(_, got)| *got != q)
        .map(|(t, got)| format!("QoS {got} at {t:.0} ms"))
        .collect();
    checks.push(check(
        "will-qos",
        Some("MQTT-3.1.2-14, MQTT-3.8.4-6"),
        !m.wills.is_empty() && wrong.is_empty(),
        format!(
            "the will arrives at QoS {q}: the lower of the will QoS {} and monit's subscription QoS {}",
            w.qos, s.monit.qos
        ),
        if m.wills.is_empty() {
            "no will".into()
        } else if wrong.is_empty() {
            format!("at QoS {q}")
        } else {
            wrong.join(", ")
        },
    ));
    checks.push(check(
        "will-once",
        Some("MQTT-4.3.2-1"),
        m.wills.len() == 1,
        "the will reaches monit exactly once: monit acknowledged it, so nothing is sent again"
            .into(),
        format!("{} copies", m.wills.len()),
    ));
    checks
}

/// A second client with willy's id connects while willy is cut off (3.1.1 section 3.1.4):
/// "If the ClientId represents a Client already connected to the Server then the Server MUST
/// disconnect the existing Client [MQTT-3.1.4-2]", before it acknowledges the new CONNECT
/// (step 1 of 3.1.4, the CONNACK is step 3). That close is no DISCONNECT from willy, so "the
/// Will Message MUST be published when the Network Connection is subsequently closed"
/// [MQTT-3.1.2-8]. Both are measured from the twin's CONNACK, the takeover.
fn takeover_checks(s: &Scenario, t: crate::scenario::Takeover, f: &Facts) -> Vec<Check> {
    let mut checks = Vec::new();
    let (Some(start), Some(ack)) = (f.twin_connecting_ms, f.twin_connack_ms) else {
        checks.push(check(
            "takeover",
            Some("MQTT-3.1.4-2"),
            false,
            format!(
                "a client with willy's id connects {} ms after the cut",
                t.after.as_millis()
            ),
            match f.twin_connecting_ms {
                Some(c) => format!("the twin started at {c:.0} ms and got no CONNACK"),
                None => "the twin never connected".into(),
            },
        ));
        return checks;
    };
    let rel = |x: Option<f64>| x.map(|x| x - ack);
    let said = |d: Option<f64>| match d {
        // No "-0 ms" for a hair before it.
        Some(d) if d.abs() < 0.5 => "at the twin's CONNACK (within 0.5 ms)".into(),
        Some(d) if d < 0.0 => format!("{:.0} ms before the twin's CONNACK", -d),
        Some(d) => format!("{d:.0} ms after the twin's CONNACK"),
        None => "never".into(),
    };
    let lo = start - ack;
    let close = rel(f.broker_drop_ms);
    checks.push(check(
        "takeover-close",
        Some("MQTT-3.1.4-2"),
        close.is_some_and(|d| d >= lo && d <= PROMPT_MS),
        format!("the broker closes willy's connection when the twin connects: {lo:.0}..{PROMPT_MS:.0} ms from the twin's CONNACK"),
        said(close),
    ));
    if s.will.is_some() {
        let will = rel(f.will_received_ms);
        checks.push(check(
            "takeover-will",
            Some("MQTT-3.1.2-8"),
            will.is_some_and(|d| d >= lo && d <= PROMPT_MS),
            format!("willy's will reaches monit {lo:.0}..{PROMPT_MS:.0} ms from the twin's CONNACK: the broker closed willy without a DISCONNECT"),
            said(will),
        ));
    }
    checks
}

/// The will deadline: after this, a will that has not come is not coming.
pub fn will_deadline_ms(s: &Scenario, p: &Profile, f: &Facts) -> Option<f64> {
    let (_, late) = keepalive_window(s, p);
    f.reference_ms()
        .or(f.cut_at_ms)
        .map(|l| l + late + will_delay_ms(s))
}

/// How long after the broker closes willy the will is due. [MQTT-3.1.3-9]: the server
/// publishes it when the Will Delay Interval has passed or the session has ended, whichever
/// is first; a v5 session without a Session Expiry Interval ends when the connection closes.
pub fn will_delay_ms(s: &Scenario) -> f64 {
    match (s.protocol, s.will.as_ref().and_then(|w| w.delay_s)) {
        (crate::scenario::Protocol::V5, Some(d)) => {
            f64::from(d.min(s.session_expiry_s.unwrap_or(0))) * 1000.0
        }
        _ => 0.0,
    }
}

/// Judge a run: the spec checks, read against the profile's known deviations.
pub fn evaluate(s: &Scenario, p: &Profile, f: &Facts) -> Vec<Check> {
    let mut checks = spec_checks(s, p, f);
    for c in &mut checks {
        let listed = p.deviation(&c.name, s);
        c.status = match (c.pass, listed) {
            (true, None) => Status::Pass,
            (false, None) => Status::Fail,
            (false, Some(_)) => Status::Deviation,
            (true, Some(d)) if d.applies.certain() => Status::UnexpectedPass,
            (true, Some(_)) => Status::Pass,
        };
        c.pass = c.status != Status::Fail;
        if let (Some(d), Status::Deviation | Status::UnexpectedPass) = (listed, c.status) {
            c.actual += &format!(
                " [{} lists this as a known deviation: {} ({})]",
                p.broker, d.reason, d.evidence
            );
        }
    }
    checks
}

/// The spec checks alone: `pass` is whether the spec holds.
fn spec_checks(s: &Scenario, p: &Profile, f: &Facts) -> Vec<Check> {
    let mut checks = Vec::new();
    match (s.disconnect, &s.will) {
        (Some(d), Some(_)) => checks.push(will_on_disconnect(d, f)),
        (None, Some(w)) => checks.push(no_will_after_clean_disconnect(w, f)),
        _ => {}
    }
    if let (true, Some(w)) = (s.late_subscriber, &s.will) {
        checks.push(retained_will(w, f));
    }
    if let Some(d) = &f.delivery {
        checks.extend(delivery_checks(s, d));
    }
    if s.monit.qos > 0 {
        checks.push(no_qos_upgrade(s, f));
    }
    let Some(cut) = s.cut() else { return checks };
    if f.cut_at_ms.is_none() {
        checks.push(Check {
            name: "fault-applied".into(),
            spec: None,
            status: Status::Fail,
            pass: false,
            expected: format!(
                "the {} fault in cycle {} at {:?}",
                cut.kind.label(),
                cut.cycle,
                cut.trigger
            ),
            actual: "the run never reached the fault's trigger".into(),
        });
        return checks;
    }

    // [MQTT-3.1.2-8]: the will is published when the connection closes without DISCONNECT;
    // [MQTT-3.1.2-10]: it is removed on DISCONNECT. No will set: nothing but willy's own publishes.
    let will = match &s.will {
        Some(w) => Check {
            name: "will".into(),
            spec: Some("MQTT-3.1.2-8, MQTT-3.1.2-10".into()),
            status: Status::Fail, // judged by `evaluate` from `pass`
            pass: f.will_received_ms.is_some() == s.expect.will,
            expected: if s.expect.will {
                format!("monit receives the will {}: {}", w.topic, w.payload)
            } else {
                "the will never reaches monit".into()
            },
            actual: match f.will_received_ms {
                Some(t) => format!("will received at {t:.0} ms"),
                None => format!(
                    "no will received ({})",
                    observed(f, f.reference_ms().unwrap_or(f.cut_at_ms.unwrap_or(0.0)))
                ),
            },
        },
        None => Check {
            name: "no-news-without-will".into(),
            spec: Some("MQTT-3.1.2-8".into()),
            status: Status::Fail, // judged by `evaluate` from `pass`
            pass: f.first_news_ms.is_none(),
            expected: "no will set: monit hears nothing of willy after the cut".into(),
            actual: match (&f.first_news, f.first_news_ms) {
                (Some(m), Some(t)) => format!("monit received {m} at {t:.0} ms"),
                _ => "monit heard nothing".into(),
            },
        },
    };
    checks.push(will);

    // [MQTT-3.1.2-24]: a client silent for 1.5 x keepalive is disconnected, measured from the
    // last bytes the broker received. Only when the cut silences willy for that long.
    let (lo, hi) = keepalive_window(s, p);
    let healed_early = cut
        .heal_after
        .is_some_and(|h| h.as_secs_f64() * 1000.0 < lo);
    if let Some(t) = s.takeover {
        checks.extend(takeover_checks(s, t, f));
    } else if cut.kind.silences_client() && !healed_early {
        if let Some(last) = f.reference_ms() {
            let delta = f.broker_drop_ms.map(|d| d - last);
            checks.push(Check {
                name: "keepalive-drop".into(),
                spec: Some("MQTT-3.1.2-24".into()),
                status: Status::Fail, // judged by `evaluate` from `pass`
                pass: delta.is_some_and(|d| d >= lo && d <= hi),
                expected: format!("the broker closes willy {lo:.0}..{hi:.0} ms after its last packet (1.5 x {} s, {} late allowance {} ms)", s.keepalive.as_secs(), p.broker, p.keepalive_late_ms),
                actual: match delta {
                    Some(d) => format!(
                        "closed {d:.0} ms after the last packet = {}",
                        timing::ratio(d, s.keepalive, 0.0)
                    ),
                    None => format!("the broker never closed the connection ({})", observed(f, last)),
                } + &match f.publishes_to_silent_willy {
                    0 => String::new(),
                    n => format!(" (meanwhile it sent willy {n} PUBLISHes)"),
                },
            });
            // A flaky monit was away when the will was published: when it got it says nothing
            // of when the broker published it (its own checks judge that).
            if s.expect.will && s.monit.flaky.is_none() {
                let delta = f.will_received_ms.map(|w| w - last);
                let delay = will_delay_ms(s);
                let (lo, hi) = (lo + delay, hi + delay);
                checks.push(Check {
                    name: "will-timing".into(),
                    spec: Some(if delay > 0.0 || s.will.as_ref().is_some_and(|w| w.delay_s.is_some()) {
                        "MQTT-3.1.2-24, MQTT-3.1.3-9".into()
                    } else {
                        "MQTT-3.1.2-24, MQTT-3.1.2-8".into()
                    }),
                    status: Status::Fail, // judged by `evaluate` from `pass`
                    pass: delta.is_some_and(|d| d >= lo && d <= hi),
                    expected: if delay > 0.0 {
                        format!("the will reaches monit {lo:.0}..{hi:.0} ms after willy's last packet (1.5 x keepalive, then the will delay of {delay:.0} ms)")
                    } else {
                        format!("the will reaches monit {lo:.0}..{hi:.0} ms after willy's last packet")
                    },
                    actual: match delta {
                        Some(d) => format!(
                            "will {d:.0} ms after the last packet (at {}): {}",
                            ms(f.will_received_ms),
                            timing::ratio(d, s.keepalive, delay)
                        ),
                        None => format!("no will ({})", observed(f, last)),
                    },
                });
                if let Some(c) = will_delay_check(s, p, f) {
                    checks.push(c);
                }
            }
        }
    }
    if let Some(m) = &f.flaky_monit {
        checks.extend(flaky_monit_checks(s, m, f));
    }
    checks.extend(fault_checks(s, p, f));
    checks
}

/// MQTT 5 (3.1.3.2.2, 3.1.2.11.2): a delayed will is published when the Will Delay Interval has
/// passed or the session has ended, whichever is first; with no Session Expiry the session ends
/// at the close. Measured from the broker's close, so a late keepalive drop does not hide it.
fn will_delay_check(s: &Scenario, p: &Profile, f: &Facts) -> Option<Check> {
    let delay_s = s.will.as_ref()?.delay_s.filter(|d| *d > 0)?;
    if s.protocol != crate::scenario::Protocol::V5 {
        return None;
    }
    let (drop, will) = (f.broker_drop_ms?, f.will_received_ms?);
    let due = will_delay_ms(s);
    let (lo, hi) = (due - 50.0, due + p.will_delay_late_ms as f64);
    let d = will - drop;
    Some(Check {
        name: "will-delay".into(),
        spec: Some("MQTT 5 3.1.3.2.2, 3.1.2.11.2".into()),
        status: Status::Fail, // judged by `evaluate` from `pass`
        pass: d >= lo && d <= hi,
        expected: format!(
            "the will {lo:.0}..{hi:.0} ms after the broker's close: min(Will Delay {delay_s} s, Session Expiry {} s), {} late allowance {} ms",
            s.session_expiry_s.unwrap_or(0),
            p.broker,
            p.will_delay_late_ms
        ),
        actual: format!("{d:.0} ms after the close"),
    })
}

/// "At once": a close the broker sees becomes a will within this, and an error willy sees
/// becomes its error within this. The seed measured "close to 100 ms" from socket close to will
/// over a real network; on loopback it is a few ms, so 100 ms only rules out a timer.
pub const PROMPT_MS: f64 = 100.0;

/// How late willy's client may report a missing PINGRESP or a connect timeout: rumqttc's
/// timers are tokio sleeps, late by the scheduler only.
pub const CLIENT_LATE_MS: f64 = 100.0;

/// When willy should notice a cut that leaves its connection open, as rumqttc 0.25.1
/// implements it (eventloop.rs `select`, state.rs `outgoing_ping`): it sends a PINGREQ every
/// keepalive from the CONNACK, whatever else it sent, and fails with `AwaitPingResp` when the
/// next one is due while the previous PINGRESP has not come. The first ping after the cut goes
/// out within (0, ka] of it and is lost; the next, ka later, fails: (ka, 2 ka] after the cut.
/// A FIN that reaches it first (the broker's keepalive close, half-open upstream) is noticed
/// at once, which falls inside the same window.
pub fn client_ping_window(s: &Scenario) -> (f64, f64) {
    let ka = s.keepalive.as_secs_f64() * 1000.0;
    (ka - EARLY_MS, 2.0 * ka + CLIENT_LATE_MS)
}

/// Does willy's client have to notice the first fault by itself, and how?
enum Detection {
    /// Nothing to notice, or willy cannot (crashed, frozen).
    None,
    /// It gets the RST or FIN at once.
    Prompt,
    /// Only its missing PINGRESP (or the broker's close) tells it.
    Ping,
    /// Nothing goes wrong for it: no error at all.
    NoError,
}

fn detection(s: &Scenario) -> Detection {
    use crate::scenario::FaultKind as K;
    let Some(cut) = s.cut() else {
        return Detection::None;
    };
    let (lo, _) = client_ping_window(s);
    let healed_before =
        |h: Option<std::time::Duration>| h.is_some_and(|h| h.as_secs_f64() * 1000.0 < lo);
    match &cut.kind {
        K::Reset | K::Close => Detection::Prompt,
        K::Crash { .. } | K::Freeze => Detection::None,
        K::Blackhole { .. } if healed_before(cut.heal_after) => Detection::NoError,
        K::Blackhole { .. } => Detection::Ping,
        K::Drop { packets, .. } if packets.contains(&12) || packets.contains(&13) => {
            Detection::Ping
        }
        K::Latency { delay, jitter, .. } if (*delay + *jitter) < s.keepalive => Detection::NoError,
        K::Bandwidth { .. } => Detection::NoError,
        // Only new connections meet it; the check is on the attempts.
        _ => Detection::None,
    }
}

/// True when the run should wait for willy's own detection before it is decided.
pub fn client_detect_expected(s: &Scenario) -> bool {
    matches!(detection(s), Detection::Prompt | Detection::Ping)
}

fn check(name: &str, spec: Option<&str>, pass: bool, expected: String, actual: String) -> Check {
    Check {
        name: name.into(),
        spec: spec.map(str::to_string),
        status: Status::Fail, // judged by `evaluate` from `pass`
        pass,
        expected,
        actual,
    }
}

/// The fault catalog's checks: what each kind of fault implies for the will, the broker's
/// close and willy's own detection.
fn fault_checks(s: &Scenario, _p: &Profile, f: &Facts) -> Vec<Check> {
    use crate::scenario::FaultKind as K;
    let mut checks = Vec::new();
    let (Some(cut), Some(cut_ms)) = (s.cut(), f.cut_at_ms) else {
        return checks;
    };
    let ka_ms = s.keepalive.as_secs_f64() * 1000.0;
    let in_window = |d: Option<f64>, lo: f64, hi: f64| d.is_some_and(|d| d >= lo && d <= hi);
    let after = |x: Option<f64>, from: Option<f64>| Some(x? - from?);
    let said = |d: Option<f64>, what: &str| match d {
        Some(d) => format!("{d:.0} ms after {what}"),
        None => "never".to_string(),
    };

    // A close the broker sees (RST, FIN, the kernel closing a killed process's socket) ends
    // the network connection without DISCONNECT: the will goes out then [MQTT-3.1.2-8].
    if cut.kind.ends_at_once() && s.will.is_some() && s.expect.will {
        let d = after(f.will_received_ms, Some(cut_ms));
        checks.push(check(
            "will-prompt",
            Some("MQTT-3.1.2-8"),
            in_window(d, 0.0, PROMPT_MS),
            format!(
                "the will reaches monit within {PROMPT_MS:.0} ms of the {}",
                cut.kind.label()
            ),
            said(d, "the fault"),
        ));
    }

    // The broker hears willy all along (its PINGREQs, or everything, only later or slower):
    // it must not close the connection [MQTT-3.1.2-24 sets a floor, not a licence].
    let broker_hears = match &cut.kind {
        K::Blackhole { direction } => !direction.up(),
        K::Latency { delay, jitter, .. } => (*delay + *jitter) * 2 < s.keepalive,
        K::Bandwidth { .. } => true,
        K::Drop { direction, packets } => !(direction.up() && packets.contains(&12)),
        _ => false,
    } || (cut.kind.silences_client()
        && cut
            .heal_after
            .is_some_and(|h| h.as_secs_f64() * 1000.0 < ka_ms * 1.5 - EARLY_MS));
    if broker_hears {
        let first = match (f.broker_drop_ms, f.client_close_ms) {
            (Some(b), Some(c)) => b < c,
            (Some(_), None) => true,
            _ => false,
        };
        checks.push(check(
            "no-broker-drop",
            Some("MQTT-3.1.2-24"),
            !first,
            "the broker keeps willy's connection until willy closes it: it still hears willy"
                .into(),
            match (f.broker_drop_ms, f.client_close_ms) {
                (Some(b), c) if first => format!(
                    "the broker closed it at {b:.0} ms (willy's side: {})",
                    ms(c)
                ),
                (b, c) => format!("broker side closed {}, willy's side {}", ms(b), ms(c)),
            },
        ));
    }

    // willy's own FIN without DISCONNECT (half-open downstream, a lost PINGRESP): the will
    // follows that close at once.
    if s.expect.will && s.will.is_some() && !cut.kind.ends_at_once() && !cut.kind.silences_client()
    {
        let d = after(f.will_received_ms, f.client_close_ms);
        checks.push(check(
            "will-after-client-close",
            Some("MQTT-3.1.2-8"),
            in_window(d, 0.0, PROMPT_MS),
            format!("the will reaches monit within {PROMPT_MS:.0} ms of willy closing its socket"),
            said(d, "willy closed its side"),
        ));
    }

    // When willy itself finds out.
    let detect = after(f.client_detect_ms, Some(cut_ms));
    match detection(s) {
        Detection::None => {}
        Detection::Prompt => checks.push(check(
            "client-detect",
            None,
            in_window(detect, 0.0, PROMPT_MS),
            format!(
                "willy's client reports the {} within {PROMPT_MS:.0} ms",
                cut.kind.label()
            ),
            said(detect, "the fault"),
        )),
        Detection::NoError => checks.push(check(
            "no-client-error",
            None,
            f.attempts_failed_after_cut == 0,
            "willy's client reports no error: the same connection goes on".into(),
            match f.client_detect_ms {
                Some(t) => format!(
                    "{} errors, the first at {t:.0} ms",
                    f.attempts_failed_after_cut
                ),
                None => "no error".into(),
            },
        )),
        // willy left cleanly into the cut and had no cycle left to try again in: there is
        // nothing for its client to notice, so nothing to check.
        Detection::Ping
            if f.disconnected_before_detect
                && f.client_detect_ms.is_none()
                && !f
                    .attempts
                    .iter()
                    .any(|a| f.cut_at_ms.is_some_and(|c| a.started_ms > c)) => {}
        Detection::Ping
            if f.detect_attempt_started_ms.is_some() || f.disconnected_before_detect =>
        {
            // willy's cycle ended (its DISCONNECT went into the cut) before the ping could
            // fail: what fails is its next connection attempt, after the connect timeout.
            let ct = s.connect_timeout.as_secs_f64() * 1000.0;
            let d = after(f.client_detect_ms, f.detect_attempt_started_ms);
            let held = cut.new_connections == crate::scenario::NewConnections::Hang;
            let (lo, hi) = if held {
                (ct - EARLY_MS, ct + CLIENT_LATE_MS)
            } else {
                (0.0, PROMPT_MS)
            };
            checks.push(check(
                "client-detect",
                None,
                in_window(d, lo, hi),
                format!(
                    "willy disconnected before its ping could fail; its next attempt fails {lo:.0}..{hi:.0} ms after it starts ({})",
                    if held { "rumqttc's connection timeout" } else { "refused" }
                ),
                said(d, "the attempt started"),
            ));
        }
        Detection::Ping => {
            let (lo, hi) = client_ping_window(s);
            checks.push(check(
                "client-detect",
                None,
                in_window(detect, lo, hi),
                format!(
                    "willy's client notices {lo:.0}..{hi:.0} ms after the cut (keepalive {} s: the next PINGREQ is due without a PINGRESP, rumqttc AwaitPingResp)",
                    s.keepalive.as_secs()
                ),
                said(detect, "the cut"),
            ));
        }
    }

    // What connection attempts meet while a fault refuses or holds new connections.
    for (i, fault) in s.faults.iter().enumerate() {
        use crate::scenario::NewConnections as N;
        let Some(span) = f.faults.iter().find(|fs| fs.n == i as u32 + 1) else {
            continue;
        };
        let until = span.healed_ms.unwrap_or(f64::INFINITY);
        let during: Vec<&Attempt> = f
            .attempts
            .iter()
            .filter(|a| a.started_ms >= span.applied_ms && a.ended_ms <= until)
            .collect();
        let ct = s.connect_timeout.as_secs_f64() * 1000.0;
        let (name, lo, hi, what) = match fault.new_connections {
            N::Refuse => ("attempts-refused", 0.0, PROMPT_MS, "refused at once"),
            N::Hang if matches!(fault.kind, K::Hang | K::Refuse) => (
                "attempts-hang",
                ct - EARLY_MS,
                ct + CLIENT_LATE_MS,
                "time out after rumqttc's connection timeout",
            ),
            _ => continue,
        };
        let ok = !during.is_empty()
            && during.iter().all(|a| {
                !a.connected && a.ended_ms - a.started_ms >= lo && a.ended_ms - a.started_ms <= hi
            });
        let took: Vec<String> = during
            .iter()
            .map(|a| {
                format!(
                    "{:.0} ms{}",
                    a.ended_ms - a.started_ms,
                    if a.connected { " (connected)" } else { "" }
                )
            })
            .collect();
        checks.push(check(
            name,
            None,
            ok,
            format!(
                "every attempt during fault {} ({}) fails in {lo:.0}..{hi:.0} ms: {what}",
                i + 1,
                fault.kind.label()
            ),
            if took.is_empty() {
                "no attempt during the fault".into()
            } else {
                format!("{} attempts: {}", took.len(), took.join(", "))
            },
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ConnLastUpstream;
    use chrono::Utc;

    fn rec(ms: f64, actor: Actor, event: Event) -> Record {
        Record {
            ms,
            t: Utc::now(),
            actor,
            event,
        }
    }

    fn scenario(name: &str) -> Scenario {
        crate::scenario::load(name).unwrap()
    }

    fn msg(ms: f64, payload: &str) -> Record {
        rec(
            ms,
            Actor::Monit,
            Event::MessageReceived {
                topic: "test/connected".into(),
                payload: payload.into(),
                retain: false,
                qos: 0,
            },
        )
    }

    fn cut(ms: f64, last: f64) -> Record {
        rec(
            ms,
            Actor::Proxy,
            Event::FaultApplied {
                fault: "blackhole".into(),
                n: 1,
                last_upstream: vec![ConnLastUpstream {
                    conn: 3,
                    ms: Some(last),
                }],
            },
        )
    }

    fn drop_at(ms: f64) -> Record {
        rec(
            ms,
            Actor::Proxy,
            Event::SideClosed {
                conn: 3,
                side: Side::Broker,
                how: "closed (EOF)".into(),
            },
        )
    }

    fn by_name<'a>(c: &'a [Check], name: &str) -> &'a Check {
        c.iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name} in {c:?}"))
    }

    /// A flaky-monit run: cut at 1000, monit away at 2000, willy dropped at 4000, monit back
    /// at 6000 (session present `present`), then the will copies `wills` (ms, QoS).
    fn flaky_run(present: bool, wills: &[(f64, u8)]) -> Vec<Check> {
        let s = scenario("will-qos1-flaky-monit");
        let mut records = vec![
            cut(1000.0, 999.0),
            rec(2000.0, Actor::Monit, Event::ConnectionAbandoned),
            drop_at(4000.0),
            rec(
                6000.0,
                Actor::Monit,
                Event::Connected {
                    session_present: present,
                },
            ),
        ];
        for (ms, qos) in wills {
            records.push(rec(
                *ms,
                Actor::Monit,
                Event::MessageReceived {
                    topic: "test/connected".into(),
                    payload: "false".into(),
                    retain: false,
                    qos: *qos,
                },
            ));
        }
        let f = Facts::from_records(&s, &records);
        evaluate(&s, &Profile::rumqttd(), &f)
    }

    #[test]
    fn a_will_kept_for_a_flaky_monit_and_sent_once_on_its_return_passes() {
        let c = flaky_run(true, &[(6002.0, 1)]);
        for name in [
            "monit-session-present",
            "will-queued-for-subscriber",
            "will-qos",
            "will-once",
        ] {
            assert!(by_name(&c, name).pass, "{:?}", by_name(&c, name));
        }
        // monit could not see when the broker published it: no will-timing.
        assert!(c.iter().all(|c| c.name != "will-timing"), "{c:?}");
    }

    #[test]
    fn a_flaky_monits_will_lost_twice_or_downgraded_fails() {
        let lost = flaky_run(true, &[]);
        assert!(!by_name(&lost, "will-queued-for-subscriber").pass);
        assert!(!by_name(&lost, "will-once").pass);
        assert!(!by_name(&lost, "will-qos").pass);
        let twice = flaky_run(true, &[(6002.0, 1), (6300.0, 1)]);
        assert!(!by_name(&twice, "will-once").pass);
        assert!(by_name(&twice, "will-queued-for-subscriber").pass);
        let q0 = flaky_run(true, &[(6002.0, 0)]);
        assert!(!by_name(&q0, "will-qos").pass);
        let late = flaky_run(true, &[(6000.0 + QUEUED_WAIT_MS + 1.0, 1)]);
        assert!(!by_name(&late, "will-queued-for-subscriber").pass);
        let no_session = flaky_run(false, &[(6002.0, 1)]);
        assert!(!by_name(&no_session, "monit-session-present").pass);
    }

    #[test]
    fn a_will_published_before_monit_left_is_not_a_queued_delivery() {
        let s = scenario("will-qos1-flaky-monit");
        let records = vec![
            cut(1000.0, 999.0),
            drop_at(1500.0),
            rec(2000.0, Actor::Monit, Event::ConnectionAbandoned),
            rec(
                6000.0,
                Actor::Monit,
                Event::Connected {
                    session_present: true,
                },
            ),
            rec(
                6001.0,
                Actor::Monit,
                Event::MessageReceived {
                    topic: "test/connected".into(),
                    payload: "false".into(),
                    retain: false,
                    qos: 1,
                },
            ),
        ];
        let c = evaluate(&s, &Profile::rumqttd(), &Facts::from_records(&s, &records));
        assert!(!by_name(&c, "will-queued-for-subscriber").pass);
    }

    #[test]
    fn will_on_time_passes_every_check() {
        let s = scenario("ws-last-will");
        let records = vec![
            msg(100.0, "true"),
            cut(101.0, 99.0),
            drop_at(3101.0),
            msg(3102.0, "false"),
            rec(
                4050.0,
                Actor::Willy,
                Event::ConnectionFailed {
                    error: "ping timeout".into(),
                },
            ),
        ];
        let f = Facts::from_records(&s, &records);
        assert_eq!(f.last_upstream_ms, Some(99.0));
        assert_eq!(f.will_received_ms, Some(3102.0));
        let checks = evaluate(&s, &Profile::rumqttd(), &f);
        assert!(checks.iter().all(|c| c.pass), "{checks:#?}");
        assert_eq!(checks.len(), 5);
    }

    fn packet(ms: f64, kind: &str, dropped: bool) -> Record {
        rec(
            ms,
            Actor::Wire,
            Event::Packet {
                conn: 3,
                from: Side::Client,
                dropped,
                kind: kind.into(),
                framing: "tcp".into(),
                size: 2,
                hex: None,
                fields: serde_json::Value::Null,
            },
        )
    }

    #[test]
    fn keepalive_is_measured_from_the_last_packet_that_reached_the_broker() {
        let s = scenario("native-last-will");
        let records = vec![
            packet(98.5, "PUBLISH", false),
            cut(101.0, 99.0),
            packet(2099.0, "PINGREQ", true),
            drop_at(3099.0),
            msg(3100.0, "false"),
        ];
        let f = Facts::from_records(&s, &records);
        assert_eq!(f.last_packet_ms, Some(98.5));
        assert_eq!(f.last_packet_kind.as_deref(), Some("PUBLISH"));
        assert_eq!(f.reference_ms(), Some(98.5));
        assert_eq!(f.wire_counts[0].pingreq, 1);
        assert_eq!(f.wire_counts[0].pingreq_dropped, 1);
        let c = evaluate(&s, &Profile::rumqttd(), &f);
        assert!(
            by_name(&c, "keepalive-drop").actual.contains("3000 ms")
                || by_name(&c, "keepalive-drop").actual.contains("3001 ms"),
            "{c:#?}"
        );
    }

    #[test]
    fn missing_will_fails() {
        let s = scenario("ws-last-will");
        let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(3101.0)]);
        let checks = evaluate(&s, &Profile::rumqttd(), &f);
        assert!(!by_name(&checks, "will").pass);
        assert!(!by_name(&checks, "will-timing").pass);
        assert!(by_name(&checks, "keepalive-drop").pass);
    }

    #[test]
    fn a_drop_before_one_and_a_half_keepalive_fails() {
        let s = scenario("native-no-will");
        let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(2099.0)]);
        let c = evaluate(&s, &Profile::rumqttd(), &f);
        assert!(!by_name(&c, "keepalive-drop").pass, "{c:#?}");
    }

    #[test]
    fn a_drop_later_than_the_profile_allows_fails() {
        let s = scenario("native-no-will");
        let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 3000.0 + 251.0)]);
        assert!(!by_name(&evaluate(&s, &Profile::rumqttd(), &f), "keepalive-drop").pass);
        let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 3000.0 + 249.0)]);
        assert!(by_name(&evaluate(&s, &Profile::rumqttd(), &f), "keepalive-drop").pass);
    }

    #[test]
    fn no_will_scenario_fails_when_monit_hears_something() {
        let s = scenario("native-no-will");
        let f = Facts::from_records(
            &s,
            &[cut(101.0, 99.0), drop_at(3101.0), msg(3102.0, "false")],
        );
        let c = evaluate(&s, &Profile::rumqttd(), &f);
        assert!(!by_name(&c, "no-news-without-will").pass);
        assert!(c.iter().all(|c| c.name != "will-timing"));
    }

    #[test]
    fn messages_before_the_cut_are_not_the_will() {
        let s = scenario("ws-last-will");
        let f = Facts::from_records(&s, &[msg(50.0, "false"), cut(101.0, 99.0)]);
        assert_eq!(f.will_received_ms, None);
    }

    #[test]
    fn willys_own_false_after_heal_is_not_the_will() {
        let s = scenario("ws-last-will");
        let records = vec![
            cut(101.0, 99.0),
            rec(
                1000.0,
                Actor::Proxy,
                Event::FaultHealed {
                    fault: "blackhole".into(),
                    n: 1,
                },
            ),
            rec(
                1500.0,
                Actor::Willy,
                Event::Published {
                    topic: "test/connected".into(),
                    payload: "true".into(),
                },
            ),
            msg(1501.0, "true"),
            msg(3600.0, "false"),
        ];
        let f = Facts::from_records(&s, &records);
        assert_eq!(f.will_received_ms, None);
        assert_eq!(f.first_news_ms, None);
    }

    #[test]
    fn a_run_that_never_reached_its_trigger_fails() {
        let s = scenario("ws-last-will");
        let c = evaluate(&s, &Profile::rumqttd(), &Facts::from_records(&s, &[]));
        assert_eq!(c.len(), 2);
        assert!(!by_name(&c, "fault-applied").pass);
        assert!(by_name(&c, "no-will-after-disconnect").pass);
    }

    /// willy's cycle 1 as the wire tap and monit see it: `false` published and received, then
    /// the DISCONNECT; `extra` more copies of `false` at monit after the DISCONNECT.
    fn clean_cycle(extra: usize) -> Vec<Record> {
        let publish_false = rec(
            20.0,
            Actor::Wire,
            Event::Packet {
                conn: 1,
                from: Side::Client,
                dropped: false,
                kind: "PUBLISH".into(),
                framing: "ws binary masked".into(),
                size: 23,
                hex: None,
                fields: serde_json::json!({"topic": "test/connected", "payload_len": 5}),
            },
        );
        let disconnect = rec(
            30.0,
            Actor::Wire,
            Event::Packet {
                conn: 1,
                from: Side::Client,
                dropped: false,
                kind: "DISCONNECT".into(),
                framing: "ws binary masked".into(),
                size: 2,
                hex: Some("e000".into()),
                fields: serde_json::Value::Null,
            },
        );
        // monit's copy of willy's own `false` may be recorded before the tap's record.
        let mut r = vec![
            rec(0.0, Actor::Willy, Event::CycleStarted { cycle: 1 }),
            msg(19.5, "false"),
            publish_false,
            disconnect,
        ];
        for i in 0..extra {
            r.push(msg(33.0 + i as f64, "false"));
        }
        r
    }

    #[test]
    fn a_will_after_a_clean_disconnect_fails_even_when_it_reads_like_willys_own_false() {
        let s = scenario("ws-last-will");
        let mut records = clean_cycle(1);
        records.extend([msg(5000.0, "true"), cut(5001.0, 4999.0)]);
        let f = Facts::from_records(&s, &records);
        assert_eq!(f.wills_after_clean_disconnect.len(), 1);
        let c = evaluate(&s, &Profile::rumqttd(), &f);
        let bad = by_name(&c, "no-will-after-disconnect");
        assert!(!bad.pass);
        assert!(
            bad.actual.contains("cycle 1") && bad.actual.contains("(e000)"),
            "{}",
            bad.actual
        );
        assert!(bad.actual.contains("3 ms after"), "{}", bad.actual);
    }

    #[test]
    fn willys_own_false_at_monit_is_not_a_will() {
        let s = scenario("native-last-will");
        let mut records = clean_cycle(0);
        records.extend([msg(5000.0, "true"), cut(5001.0, 4999.0)]);
        let f = Facts::from_records(&s, &records);
        assert!(f.wills_after_clean_disconnect.is_empty());
        assert!(
            by_name(
                &evaluate(&s, &Profile::rumqttd(), &f),
                "no-will-after-disconnect"
            )
            .pass
        );
    }

    #[test]
    fn a_late_drop_and_will_are_reported_with_their_ratio() {
        let s = scenario("ws-last-will");
        let records = vec![
            msg(100.0, "true"),
            cut(101.0, 99.0),
            drop_at(6103.0),
            msg(6104.0, "false"),
        ];
        let c = evaluate(&s, &Profile::unknown(), &Facts::from_records(&s, &records));
        let drop = by_name(&c, "keepalive-drop");
        assert!(!drop.pass);
        assert!(
            drop.actual.contains(
                "closed 6004 ms after the last packet = 3.00 x keepalive, 3.0 s late; spec 1.5 x"
            ),
            "{}",
            drop.actual
        );
        let will = by_name(&c, "will-timing");
        assert!(!will.pass);
        assert!(
            will.actual.contains("will 6005 ms after the last packet"),
            "{}",
            will.actual
        );
    }

    #[test]
    fn never_says_how_long_the_run_watched() {
        let s = scenario("ws-last-will");
        let records = vec![
            msg(100.0, "true"),
            cut(101.0, 99.0),
            rec(
                18_200.0,
                Actor::Runner,
                Event::RunEnded { reason: "x".into() },
            ),
        ];
        let c = evaluate(&s, &Profile::unknown(), &Facts::from_records(&s, &records));
        let drop = by_name(&c, "keepalive-drop");
        assert!(
            drop.actual.contains(
                "never closed the connection (observed for 18.1 s after willy's last packet)"
            ),
            "{}",
            drop.actual
        );
    }

    #[test]
    fn client_detection_is_the_first_willy_error_after_the_cut() {
        let s = scenario("ws-last-will");
        let records = vec![
            rec(
                10.0,
                Actor::Willy,
                Event::ConnectionFailed {
                    error: "before".into(),
                },
            ),
            cut(101.0, 99.0),
            rec(
                8000.0,
                Actor::Willy,
                Event::ConnectionFailed {
                    error: "network timeout".into(),
                },
            ),
            rec(
                14000.0,
                Actor::Willy,
                Event::ConnectionFailed {
                    error: "network timeout".into(),
                },
            ),
        ];
        let f = Facts::from_records(&s, &records);
        assert_eq!(f.client_detect_ms, Some(8000.0));
        assert_eq!(f.attempts_failed_after_cut, 2);
    }

    #[test]
    fn a_delayed_will_without_a_session_is_due_at_the_close() {
        let s = scenario("v5-will-delay-no-session");
        let f = |will_after_close: f64| Facts {
            broker_drop_ms: Some(5000.0),
            will_received_ms: Some(5000.0 + will_after_close),
            ..Facts::default()
        };
        let p = Profile::rumqttd();
        assert!(will_delay_check(&s, &p, &f(2.0)).unwrap().pass);
        let late = will_delay_check(&s, &p, &f(2204.0)).unwrap();
        assert!(!late.pass, "{late:?}");
        assert!(late.expected.contains("-50..250 ms"), "{}", late.expected);
        // mosquitto lists waiting out the delay as its deviation, for exactly these runs.
        let m = Profile::mosquitto("2.0.11");
        assert!(m.deviation("will-delay", &s).is_some());
        assert!(m
            .deviation("will-delay", &scenario("v5-will-delay"))
            .is_none());
    }

    #[test]
    fn a_delayed_will_with_a_session_is_due_after_the_shorter_interval() {
        let s = scenario("v5-session-expiry-shorter-than-delay");
        let f = Facts {
            broker_drop_ms: Some(5000.0),
            will_received_ms: Some(6303.0),
            ..Facts::default()
        };
        let c = will_delay_check(&s, &Profile::mosquitto("2.0.11"), &f).unwrap();
        assert!(c.pass, "{c:?}");
        // No will, or no delay: nothing to judge here (the will check says it).
        let none = Facts {
            will_received_ms: None,
            ..f.clone()
        };
        assert!(will_delay_check(&s, &Profile::rumqttd(), &none).is_none());
        assert!(will_delay_check(&scenario("v5-last-will"), &Profile::rumqttd(), &f).is_none());
    }

    #[test]
    fn a_qos0_true_at_a_qos1_subscriber_must_stay_qos0() {
        let mut s = scenario("will-qos1-flaky-monit");
        let f = |q: u8| Facts {
            status_true_qos: vec![(70.0, q)],
            ..Facts::default()
        };
        assert!(no_qos_upgrade(&s, &f(0)).pass);
        let up = no_qos_upgrade(&s, &f(1));
        assert!(!up.pass && up.actual == "QoS 1 at 70 ms", "{up:?}");
        assert!(
            !no_qos_upgrade(&s, &Facts::default()).pass,
            "no true: nothing shown"
        );
        assert!(Profile::rumqttd().deviation("no-qos-upgrade", &s).is_some());
        s.monit.qos = 0;
        assert!(Profile::rumqttd().deviation("no-qos-upgrade", &s).is_none());
    }

    fn profile_listing(check: &'static str, applies: crate::broker::profile::Applies) -> Profile {
        let mut p = Profile::rumqttd();
        p.deviations.push(crate::broker::profile::Deviation {
            check,
            applies,
            reason: "test",
            evidence: "test",
        });
        p
    }

    #[test]
    fn a_listed_failure_is_a_deviation_not_a_failure() {
        use crate::broker::profile::Applies;
        let s = scenario("native-no-will");
        let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 2000.0)]);
        let c = evaluate(&s, &profile_listing("keepalive-drop", Applies::Always), &f);
        let k = by_name(&c, "keepalive-drop");
        assert_eq!(k.status, Status::Deviation);
        assert!(k.pass, "a deviation does not fail the run");
        let c = evaluate(&s, &Profile::rumqttd(), &f);
        assert_eq!(by_name(&c, "keepalive-drop").status, Status::Fail);
    }

    #[test]
    fn a_listed_check_that_holds_is_an_unexpected_pass() {
        use crate::broker::profile::Applies;
        let s = scenario("native-no-will");
        let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 3001.0)]);
        let c = evaluate(&s, &profile_listing("keepalive-drop", Applies::Always), &f);
        let k = by_name(&c, "keepalive-drop");
        assert_eq!(k.status, Status::UnexpectedPass);
        assert!(k.pass);
    }

    #[test]
    fn an_odd_keepalive_deviation_is_only_possible_and_only_at_odd_keepalives() {
        use crate::broker::profile::Applies;
        let p = profile_listing("keepalive-drop", Applies::MayAtOddKeepalive);
        let mut s = scenario("native-no-will");
        // keepalive 2 (even): not listed, an early drop fails.
        let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 2000.0)]);
        assert_eq!(
            by_name(&evaluate(&s, &p, &f), "keepalive-drop").status,
            Status::Fail
        );
        s.keepalive = std::time::Duration::from_secs(3);
        let early = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 4100.0)]);
        assert_eq!(
            by_name(&evaluate(&s, &p, &early), "keepalive-drop").status,
            Status::Deviation
        );
        let on_time = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 4600.0)]);
        assert_eq!(
            by_name(&evaluate(&s, &p, &on_time), "keepalive-drop").status,
            Status::Pass
        );
    }

    #[test]
    fn mosquittos_timing_model_allows_its_six_second_scan_and_no_more() {
        let s = scenario("native-no-will");
        let p = Profile::mosquitto("2.0.11");
        // 1.5 x 2 s + one 6 s scan period + 100 ms wake-up + 250 ms margin.
        let ok = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 9350.0)]);
        assert_eq!(
            by_name(&evaluate(&s, &p, &ok), "keepalive-drop").status,
            Status::Pass
        );
        let late = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 9351.0)]);
        assert_eq!(
            by_name(&evaluate(&s, &p, &late), "keepalive-drop").status,
            Status::Fail
        );
    }

    // --- pubby's messages at willy: QoS, the persistent session, DUP ---

    fn publish_to_willy(ms: f64, conn: u64, id: u64, dup: bool, topic: &str) -> Record {
        rec(
            ms,
            Actor::Wire,
            Event::Packet {
                conn,
                from: Side::Broker,
                dropped: conn == 1,
                kind: "PUBLISH".into(),
                framing: "tcp".into(),
                size: 12,
                hex: None,
                fields: serde_json::json!({"topic": topic, "packet_id": id, "dup": dup, "qos": 1}),
            },
        )
    }

    /// A persistent-session run: cut at 100, pubby's 1..=n into the cut (sent on conn 1 and
    /// lost), heal at 10000, willy back at 10010 and given `got` (payload, qos, dup).
    fn session_run(name: &str, n: u32, got: &[(&str, u8, bool)]) -> Vec<Check> {
        let s = scenario(name);
        let topic = s.publisher.as_ref().unwrap().topic.clone();
        let mut r = vec![
            rec(
                1.0,
                Actor::Willy,
                Event::Connected {
                    session_present: false,
                },
            ),
            rec(
                2.0,
                Actor::Willy,
                Event::SubscribeGranted {
                    filter: topic.clone(),
                    granted: vec![s.subscribe.as_ref().unwrap().qos],
                },
            ),
            cut(100.0, 50.0),
        ];
        for i in 1..=n {
            let ms = 100.0 + f64::from(i) * 250.0;
            r.push(rec(
                ms,
                Actor::Pubby,
                Event::Published {
                    topic: topic.clone(),
                    payload: i.to_string(),
                },
            ));
            r.push(publish_to_willy(ms + 1.0, 1, u64::from(i), false, &topic));
        }
        r.push(rec(
            10000.0,
            Actor::Proxy,
            Event::FaultHealed {
                fault: "blackhole".into(),
                n: 1,
            },
        ));
        r.push(rec(
            10010.0,
            Actor::Willy,
            Event::Connected {
                session_present: true,
            },
        ));
        for (k, (payload, qos, dup)) in got.iter().enumerate() {
            let ms = 10011.0 + k as f64;
            let id: u64 = payload.parse().unwrap();
            r.push(publish_to_willy(ms, 4, id, *dup, &topic));
            r.push(rec(
                ms,
                Actor::Willy,
                Event::Received {
                    topic: topic.clone(),
                    payload: payload.to_string(),
                    qos: *qos,
                    retain: false,
                    dup: *dup,
                },
            ));
        }
        let f = Facts::from_records(&s, &r);
        spec_checks(&s, &Profile::rumqttd(), &f)
    }

    fn verdict(checks: &[Check], name: &str) -> bool {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} in {checks:#?}"))
            .pass
    }

    #[test]
    fn every_queued_message_delivered_once_with_dup_passes() {
        let got: Vec<(&str, u8, bool)> = ["1", "2", "3"].iter().map(|p| (*p, 2, true)).collect();
        let c = session_run("persistent-session-qos2", 3, &got);
        for name in [
            "delivery-qos",
            "session-present",
            "queued-delivery",
            "dup-on-resend",
            "no-duplicates",
        ] {
            assert!(verdict(&c, name), "{name}: {c:#?}");
        }
    }

    #[test]
    fn a_lost_queued_message_fails_queued_delivery() {
        let c = session_run(
            "persistent-session-qos1",
            3,
            &[("1", 1, true), ("3", 1, true)],
        );
        assert!(!verdict(&c, "queued-delivery"));
        let q = c.iter().find(|c| c.name == "queued-delivery").unwrap();
        assert!(q.actual.contains("missing: 2"), "{}", q.actual);
    }

    #[test]
    fn a_qos2_message_delivered_twice_fails_no_duplicates() {
        let c = session_run(
            "persistent-session-qos2",
            2,
            &[("1", 2, true), ("2", 2, true), ("2", 2, true)],
        );
        assert!(!verdict(&c, "no-duplicates"));
        assert!(verdict(&c, "queued-delivery"));
    }

    #[test]
    fn a_resend_without_dup_fails_dup_on_resend() {
        let c = session_run(
            "persistent-session-qos1",
            2,
            &[("1", 1, false), ("2", 1, true)],
        );
        assert!(!verdict(&c, "dup-on-resend"));
    }

    #[test]
    fn a_message_above_the_lower_qos_fails_delivery_qos() {
        // qos-downgrade: published at QoS 2, subscribed at QoS 0.
        let s = scenario("qos-downgrade");
        let got = |qos| {
            vec![
                rec(
                    1.0,
                    Actor::Willy,
                    Event::SubscribeGranted {
                        filter: "presence".into(),
                        granted: vec![0],
                    },
                ),
                rec(
                    5.0,
                    Actor::Willy,
                    Event::Received {
                        topic: "presence".into(),
                        payload: "1".into(),
                        qos,
                        retain: false,
                        dup: false,
                    },
                ),
            ]
        };
        let ok = spec_checks(&s, &Profile::rumqttd(), &Facts::from_records(&s, &got(0)));
        assert!(verdict(&ok, "delivery-qos"));
        let bad = spec_checks(&s, &Profile::rumqttd(), &Facts::from_records(&s, &got(2)));
        assert!(!verdict(&bad, "delivery-qos"));
        // No fault, no session: nothing else is judged.
        assert_eq!(bad.len(), 1, "{bad:#?}");
    }

    // --- client-id takeover ---

    fn takeover_run(close: Option<f64>, will: Option<f64>) -> Vec<Check> {
        let s = scenario("client-id-takeover");
        let mut r = vec![
            cut(100.0, 50.0),
            rec(
                600.0,
                Actor::Twin,
                Event::Connecting {
                    url: "mqtt://127.0.0.1:1".into(),
                    will: None,
                    attempt: 1,
                },
            ),
            rec(
                602.0,
                Actor::Twin,
                Event::Connected {
                    session_present: false,
                },
            ),
        ];
        if let Some(c) = close {
            r.push(drop_at(c));
        }
        if let Some(w) = will {
            r.push(rec(
                w,
                Actor::Monit,
                Event::MessageReceived {
                    topic: "test/will".into(),
                    payload: "offline".into(),
                    retain: false,
                    qos: 0,
                },
            ));
        }
        r.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        spec_checks(&s, &Profile::rumqttd(), &Facts::from_records(&s, &r))
    }

    #[test]
    fn a_takeover_closes_willy_and_publishes_its_will_at_once() {
        let c = takeover_run(Some(601.5), Some(603.0));
        assert!(verdict(&c, "takeover-close"), "{c:#?}");
        assert!(verdict(&c, "takeover-will"), "{c:#?}");
        // The keepalive does not decide this run: its checks are not made.
        assert!(c.iter().all(|c| c.name != "keepalive-drop"), "{c:#?}");
    }

    #[test]
    fn a_will_only_at_the_keepalive_expiry_fails_the_takeover() {
        let c = takeover_run(Some(3050.0), Some(3051.0));
        assert!(!verdict(&c, "takeover-close"));
        assert!(!verdict(&c, "takeover-will"));
        let c = takeover_run(Some(601.5), None);
        assert!(verdict(&c, "takeover-close"));
        assert!(!verdict(&c, "takeover-will"));
    }
}
