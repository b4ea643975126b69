//! The run's design, checked from the wire tap: what each of willy's cycles was to do, and
//! what of it reached the broker.
//!
//! ```text
//!  records --CycleSeen::collect--> [CycleSeen { its connections; the CONNECT on the wire;
//!            the library's clean disconnect; the DISCONNECT on the wire; how willy's side
//!            closed; the will that answered a close without DISCONNECT }]
//! ```
//!
//! A connection is a cycle's when the proxy accepted it (or the tap first saw it) while that
//! cycle ran. Times, not record order: a saved journal is not strictly in time order.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::event::{Actor, Event, Record, Side};
use crate::mqtt::PacketKind;
use crate::scenario::Scenario;
use crate::timing::PROMPT_MS;

/// One of willy's cycles as the records show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CycleSeen {
    pub cycle: u32,
    pub started_ms: f64,
    /// The proxy's connections opened while this cycle ran (one per connection attempt).
    pub conns: Vec<u64>,
    /// The cycle's connection: the last one whose CONNECT the tap saw reach the broker.
    pub conn: Option<u64>,
    pub connect_on_wire_ms: Option<f64>,
    /// willy's library's CONNACK.
    pub connected_ms: Option<f64>,
    /// willy asked its library for a clean disconnect, and the library said it was done.
    pub disconnect_requested_ms: Option<f64>,
    pub disconnect_reported_ms: Option<f64>,
    /// willy's DISCONNECT as the tap saw it leave willy (`sent`, even if a fault then swallowed
    /// it) and reach the broker (`reached`).
    pub disconnect_sent_ms: Option<f64>,
    pub disconnect_reached_ms: Option<f64>,
    /// How willy's side of the cycle's connection closed, seen by the proxy.
    pub client_closed: Option<SideEnd>,
    /// A fault was in effect when willy asked to disconnect: what it does to the DISCONNECT is
    /// the fault's, not the client's.
    pub fault_at_disconnect: bool,
    /// Connection attempts of this cycle that failed.
    pub failed_attempts: u32,
    /// The will monit got after the cycle's connection closed without a DISCONNECT reaching
    /// the broker (before the next CONNECT reached it).
    pub will_after_close_ms: Option<f64>,
    /// The faults (their 1-based number) that took effect while this cycle ran, and when.
    pub faults_applied: Vec<(u32, f64)>,
    /// willy ended the cycle without DISCONNECT and left its connection open, as the scenario
    /// asks (`[willy] leave_open`); None for a cycle that ended any other way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_open_ms: Option<f64>,
    /// A left-open cycle's connection as the next cycle's CONNECT took it over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_over: Option<TakenOver>,
}

/// A connection willy left open, and the next cycle's CONNECT (same client id) that takes the
/// session over: the broker must close the old connection [MQTT-3.1.4-2], and since that
/// close is no DISCONNECT, publish its will [MQTT-3.1.2-8].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TakenOver {
    /// The cycle whose CONNECT takes it over, and when that cycle started (willy's first
    /// connection attempt of it follows at once).
    pub by_cycle: u32,
    pub by_cycle_started_ms: Option<f64>,
    /// That CONNECT, and the broker's CONNACK to it, as the wire tap saw them; None when
    /// they never reached the broker or willy.
    pub connect_ms: Option<f64>,
    pub connack_ms: Option<f64>,
    /// When the proxy saw the broker close the left-open connection.
    pub closed_ms: Option<f64>,
    /// The will monit got at the takeover: the first will copy from that CONNECT on (less
    /// [`PROMPT_MS`] for the stamps), before the CONNECT after it and before the cut.
    pub will_ms: Option<f64>,
}

/// A step of the run's design that did not happen: in the summary, the journal and the picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingStep {
    pub cycle: u32,
    /// When it shows (the close that came instead, the fault that acted elsewhere).
    pub ms: f64,
    /// A few words for the picture: `no DISCONNECT on the wire`.
    pub what: String,
    /// The whole sentence, for the output, the summary and the log.
    pub words: String,
}

/// Every step of the design the records show did not happen, in time order: a clean
/// disconnect whose DISCONNECT never left willy, a fault that acted in another cycle than the
/// scenario's.
pub fn missing_steps(s: &Scenario, cycles: &[CycleSeen]) -> Vec<MissingStep> {
    let mut out: Vec<MissingStep> = cycles
        .iter()
        .filter_map(|c| {
            Some(MissingStep {
                cycle: c.cycle,
                ms: c
                    .client_closed
                    .as_ref()
                    .map(|e| e.ms)
                    .or(c.disconnect_reported_ms)?,
                what: "no DISCONNECT on the wire".into(),
                words: c.missing_disconnect_words()?,
            })
        })
        .collect();
    out.extend(misplaced_faults(s, cycles));
    out.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    out
}

/// Each fault that took effect in another cycle than the scenario put it in.
pub fn misplaced_faults(s: &Scenario, cycles: &[CycleSeen]) -> Vec<MissingStep> {
    let mut out = Vec::new();
    for c in cycles {
        for (n, ms) in &c.faults_applied {
            let Some(planned) = (*n as usize).checked_sub(1).and_then(|i| s.faults.get(i)) else {
                continue;
            };
            // An offset after the trigger may carry a fault into a later cycle, never an earlier.
            let late_ok = c.cycle > planned.cycle && !planned.after.is_zero();
            if planned.cycle != c.cycle && !late_ok {
                out.push(MissingStep {
                    cycle: planned.cycle,
                    ms: *ms,
                    what: format!("fault {n} in cycle {}", c.cycle),
                    words: format!(
                        "fault {n} ({}) was to act in cycle {} at {}; it acted in cycle {} at {ms:.0} ms",
                        planned.kind.label(),
                        planned.cycle,
                        serde_json::to_string(&planned.trigger)
                            .unwrap_or_default()
                            .trim_matches('"'),
                        c.cycle
                    ),
                });
            }
        }
    }
    out
}

/// Each left-open cycle's takeover by the cycle after it. `acked_closed`: each cycle's
/// connection's CONNACK and broker close on the wire; `wills`: monit's will copies no own
/// PUBLISH accounts for, before the cut.
fn take_overs(
    cycles: &mut [CycleSeen],
    acked_closed: &[(Option<f64>, Option<f64>)],
    wills: &[f64],
) {
    for i in 0..cycles.len() {
        if cycles[i].left_open_ms.is_none() {
            continue;
        }
        let next = cycles.get(i + 1);
        let next_started_ms = next.map(|n| n.started_ms);
        let connect_ms = next.and_then(|n| n.connect_on_wire_ms);
        let after_next = cycles
            .get(i + 2..)
            .unwrap_or_default()
            .iter()
            .find_map(|n| n.connect_on_wire_ms)
            .unwrap_or(f64::INFINITY);
        let will_ms = connect_ms.and_then(|from| {
            wills
                .iter()
                .copied()
                .find(|w| *w >= from - PROMPT_MS && *w < after_next)
        });
        let c = &mut cycles[i];
        c.taken_over = Some(TakenOver {
            by_cycle: c.cycle + 1,
            by_cycle_started_ms: next_started_ms,
            connect_ms,
            connack_ms: acked_closed.get(i + 1).and_then(|a| a.0),
            closed_ms: acked_closed.get(i).and_then(|a| a.1),
            will_ms,
        });
    }
}

/// How one side of a connection ended (the proxy's `side_closed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideEnd {
    pub ms: f64,
    pub how: String,
}

impl SideEnd {
    /// The proxy saw a reset, not an orderly close.
    pub fn reset(&self) -> bool {
        self.how.to_lowercase().contains("reset")
    }
}

/// What the tap saw on one connection.
#[derive(Default)]
struct ConnSeen {
    cycle: u32,
    connect_ms: Option<f64>,
    connack_ms: Option<f64>,
    disconnect_sent_ms: Option<f64>,
    disconnect_reached_ms: Option<f64>,
    client_closed: Option<SideEnd>,
    broker_closed_ms: Option<f64>,
}

impl ConnSeen {
    /// A connection's record, made the first time it is seen: in `cycle`.
    fn of(all: &mut HashMap<u64, ConnSeen>, id: u64, cycle: u32) -> &mut ConnSeen {
        all.entry(id).or_insert_with(|| ConnSeen {
            cycle,
            ..ConnSeen::default()
        })
    }
}

impl CycleSeen {
    /// willy's library reported a clean disconnect with no fault in effect, on a connection
    /// the tap could read (its CONNECT is on the wire): its DISCONNECT must be on the wire too.
    pub fn disconnect_judged(&self) -> bool {
        self.disconnect_reported_ms.is_some()
            && !self.fault_at_disconnect
            && self.connect_on_wire_ms.is_some()
    }

    /// A judged clean disconnect whose DISCONNECT the tap never saw leave willy.
    pub fn disconnect_missing(&self) -> bool {
        self.disconnect_judged() && self.disconnect_sent_ms.is_none()
    }

    /// The missing step in words: `cycle 2: willy's library reported a clean disconnect, but no
    /// DISCONNECT reached the broker (the connection was reset at 5038 ms); the will at 5040 ms
    /// answers that reset`. None when the cycle's disconnect went as designed.
    pub fn missing_disconnect_words(&self) -> Option<String> {
        if !self.disconnect_missing() {
            return None;
        }
        let reported = self.disconnect_reported_ms.unwrap_or(0.0);
        let close = match &self.client_closed {
            Some(e) if e.reset() => format!("the connection was reset at {:.0} ms", e.ms),
            Some(e) => format!("willy's side closed at {:.0} ms: {}", e.ms, e.how),
            None => "the proxy saw willy's side still open".into(),
        };
        let answer = match (&self.client_closed, self.will_after_close_ms) {
            (Some(e), Some(w)) if e.reset() => {
                format!("; the will at {w:.0} ms answers that reset")
            }
            (_, Some(w)) => format!("; the will at {w:.0} ms answers that close"),
            _ => String::new(),
        };
        Some(format!(
            "cycle {}: willy's library reported a clean disconnect at {reported:.0} ms, but no DISCONNECT reached the broker ({close}){answer}",
            self.cycle
        ))
    }

    /// Every cycle of the run. `wills`: monit's will copies no own PUBLISH accounts for.
    pub(crate) fn collect(records: &[Record], wills: &[f64]) -> Vec<CycleSeen> {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        let mut walk = Walk::default();
        for r in &sorted {
            walk.record(r);
        }
        walk.cycles_by_connack();
        let acked_closed = walk.choose_connections();
        let mut cycles = walk.cycles;
        take_overs(&mut cycles, &acked_closed, wills);
        wills_after_close(&mut cycles, wills);
        cycles
    }
}

/// The records walked in time order: the cycles, the connections the tap saw in them, the
/// faults, and the cycle of each CONNACK willy's library reported.
#[derive(Default)]
struct Walk {
    cycles: Vec<CycleSeen>,
    conns: HashMap<u64, ConnSeen>,
    /// (n, applied, healed)
    faults: Vec<(u32, f64, f64)>,
    /// The cycle of each CONNACK willy's library reported, in order.
    connected: Vec<u32>,
}

impl Walk {
    /// One record, in time order.
    fn record(&mut self, r: &Record) {
        match (&r.actor, &r.event) {
            (Actor::Willy, Event::CycleStarted { cycle }) => self.cycles.push(CycleSeen {
                cycle: *cycle,
                started_ms: r.ms,
                ..CycleSeen::default()
            }),
            (Actor::Proxy, Event::FaultApplied { n, .. }) => {
                self.faults.push((*n, r.ms, f64::INFINITY))
            }
            (Actor::Proxy, Event::FaultHealed { n, .. }) => {
                if let Some(f) = self
                    .faults
                    .iter_mut()
                    .find(|f| f.0 == *n && f.2 == f64::INFINITY)
                {
                    f.2 = r.ms;
                }
            }
            _ => {}
        }
        let Some(c) = self.cycles.last_mut() else {
            return;
        };
        let cycle = c.cycle;
        let conns = &mut self.conns;
        match (&r.actor, &r.event) {
            (Actor::Proxy, Event::FaultApplied { n, .. }) => c.faults_applied.push((*n, r.ms)),
            (Actor::Proxy, Event::ConnectionAccepted { conn: id, .. }) => {
                ConnSeen::of(conns, *id, cycle);
                c.conns.push(*id);
            }
            (Actor::Willy, Event::Connected { .. }) => {
                c.connected_ms = Some(r.ms);
                self.connected.push(cycle);
            }
            (Actor::Willy, Event::DisconnectRequested) => c.disconnect_requested_ms = Some(r.ms),
            (Actor::Willy, Event::Disconnected) => c.disconnect_reported_ms = Some(r.ms),
            (Actor::Willy, Event::LeftOpen) => c.left_open_ms = Some(r.ms),
            (Actor::Willy, Event::ConnectionFailed { .. }) => c.failed_attempts += 1,
            _ => ConnSeen::on_wire(conns, cycle, r),
        }
    }

    /// A willy in a process of its own records its cycle a hair after the proxy accepts its
    /// connection: when every CONNACK on the wire has its library's report, the n-th
    /// CONNACK is the n-th report's cycle, whatever the stamps say.
    fn cycles_by_connack(&mut self) {
        let mut acked: Vec<(f64, u64)> = self
            .conns
            .iter()
            .filter_map(|(id, s)| Some((s.connack_ms?, *id)))
            .collect();
        acked.sort_by(|a, b| a.0.total_cmp(&b.0));
        if acked.len() == self.connected.len() {
            for ((_, id), cycle) in acked.iter().zip(&self.connected) {
                if let Some(s) = self.conns.get_mut(id) {
                    s.cycle = *cycle;
                }
            }
        }
    }

    /// Each cycle's connection, what the tap saw of it, and whether a fault was in effect when
    /// willy asked to disconnect. Returns the chosen connection's CONNACK and broker close, for
    /// the takeovers.
    fn choose_connections(&mut self) -> Vec<(Option<f64>, Option<f64>)> {
        let mut ids: Vec<(&u64, &ConnSeen)> = self.conns.iter().collect();
        ids.sort_by_key(|(id, _)| **id);
        let mut acked_closed: Vec<(Option<f64>, Option<f64>)> = Vec::new();
        for c in self.cycles.iter_mut() {
            let asked = c.disconnect_requested_ms.or(c.disconnect_reported_ms);
            c.fault_at_disconnect =
                asked.is_some_and(|t| self.faults.iter().any(|(_, a, h)| *a <= t && t < *h));
            let mut mine = ids.iter().filter(|(_, s)| s.cycle == c.cycle);
            // The one the broker accepted; else the last that got a CONNECT through; else the
            // last the tap saw anything of.
            let chosen = mine
                .clone()
                .rfind(|(_, s)| s.connack_ms.is_some())
                .or_else(|| mine.clone().rfind(|(_, s)| s.connect_ms.is_some()))
                .or_else(|| mine.next_back());
            let Some((id, seen)) = chosen else {
                acked_closed.push((None, None));
                continue;
            };
            acked_closed.push((seen.connack_ms, seen.broker_closed_ms));
            c.conn = Some(**id);
            c.connect_on_wire_ms = seen.connect_ms;
            c.disconnect_sent_ms = seen.disconnect_sent_ms;
            c.disconnect_reached_ms = seen.disconnect_reached_ms;
            c.client_closed = seen.client_closed.clone();
        }
        acked_closed
    }
}

impl ConnSeen {
    /// What the tap and the proxy saw of a connection in `cycle` (its packets, its sides'
    /// closes); any other record leaves `conns` alone.
    fn on_wire(conns: &mut HashMap<u64, ConnSeen>, cycle: u32, r: &Record) {
        match (&r.actor, &r.event) {
            (
                _,
                Event::Packet {
                    conn: id,
                    from: Side::Client,
                    dropped,
                    kind,
                    ..
                },
            ) => {
                let seen = ConnSeen::of(conns, *id, cycle);
                match kind {
                    PacketKind::Connect if !dropped => {
                        seen.connect_ms.get_or_insert(r.ms);
                    }
                    PacketKind::Disconnect => {
                        seen.disconnect_sent_ms.get_or_insert(r.ms);
                        if !dropped {
                            seen.disconnect_reached_ms.get_or_insert(r.ms);
                        }
                    }
                    _ => {}
                }
            }
            (
                _,
                Event::Packet {
                    conn: id,
                    from: Side::Broker,
                    dropped: false,
                    kind: PacketKind::Connack,
                    ..
                },
            ) => {
                ConnSeen::of(conns, *id, cycle)
                    .connack_ms
                    .get_or_insert(r.ms);
            }
            (
                Actor::Proxy,
                Event::SideClosed {
                    conn: id,
                    side: Side::Client,
                    how,
                },
            ) => {
                ConnSeen::of(conns, *id, cycle)
                    .client_closed
                    .get_or_insert(SideEnd {
                        ms: r.ms,
                        how: how.clone(),
                    });
            }
            (
                Actor::Proxy,
                Event::SideClosed {
                    conn: id,
                    side: Side::Broker,
                    ..
                },
            ) => {
                ConnSeen::of(conns, *id, cycle)
                    .broker_closed_ms
                    .get_or_insert(r.ms);
            }
            _ => {}
        }
    }
}

/// The will that answers a close without DISCONNECT: the first will copy after it, before
/// willy's next CONNECT reached the broker.
fn wills_after_close(cycles: &mut [CycleSeen], wills: &[f64]) {
    for i in 0..cycles.len() {
        let next_connect = cycles[i + 1..]
            .iter()
            .find_map(|n| n.connect_on_wire_ms)
            .unwrap_or(f64::INFINITY);
        let c = &mut cycles[i];
        if let (Some(end), None) = (&c.client_closed, c.disconnect_reached_ms) {
            c.will_after_close_ms = wills
                .iter()
                .copied()
                .find(|w| *w >= end.ms - PROMPT_MS && *w < next_connect);
        }
    }
}
