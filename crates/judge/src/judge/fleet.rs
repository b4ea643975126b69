//! A fleet run's figures and checks, pure over its records.
//!
//! ```text
//!  records --per proxy connection: CONNECT's client id, its last packet toward the broker,
//!            the broker's close (side closed), its CONNACK--> Conn
//!          --monit's message_received on PREFIX/NNNNN--> wills per willy
//!  -> FleetFigures (counts, quantiles of drop and will after each willy's own last packet)
//!  -> findings (every will, once, within the profile's window) -> judged by the profile
//! ```
//!
//! Every time is measured from the willy's *own* last packet that reached the broker (the
//! proxy's wire record of it, or its last forwarded bytes when there is none), as the spec's
//! keepalive rule is: a willy that pinged just before the cut is due later than one that
//! pinged a keepalive earlier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Actor, Event, Record, Side};
use crate::judge::spec::Finding;
use crate::judge::{timing, CheckId, Profile};
use crate::mqtt::PacketKind;
use crate::scenario::{Fleet, Scenario};
use crate::tap::Fields;

/// p50, p90, p99 and max of a set of durations, in ms (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Quantiles {
    /// None for an empty set.
    pub fn of(values: &[f64]) -> Option<Quantiles> {
        let mut v: Vec<f64> = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            round(v[rank - 1])
        };
        (!v.is_empty()).then(|| Quantiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// The harness measuring itself: what it costs and how late it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Harness {
    /// The open-file limit the run had (raised to the hard limit at its start).
    pub nofile_limit: u64,
    /// User + system CPU of this process over the run, seconds.
    pub cpu_s: f64,
    /// How late a 10 ms tokio timer fired from the cut to the end: p99 and max, ms.
    pub loop_lag_p99_ms: f64,
    pub loop_lag_max_ms: f64,
    /// When that worst lag was, ms after the cut.
    pub loop_lag_max_after_cut_ms: f64,
    /// The same during the connect waves (reported, not bounded: no will is timed then).
    pub connect_loop_lag_max_ms: f64,
    /// How late the proxy recorded the cut against its scheduled moment, ms.
    pub cut_lag_ms: f64,
    /// The bound on the two lags above, past which the run is a harness error.
    pub lag_bound_ms: f64,
}

/// `summary.json`'s `fleet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSummary {
    pub willies: u32,
    /// willies whose CONNACK came (the others never had a session to leave a will).
    pub connected: u32,
    pub wills_expected: u32,
    pub wills_received: u32,
    pub wills_lost: u32,
    /// willies whose will came more than once (each counted once).
    pub wills_duplicated: u32,
    /// Connections the broker never closed.
    pub drops_missing: u32,
    pub drop_after_last_packet_ms: Option<Quantiles>,
    pub will_after_last_packet_ms: Option<Quantiles>,
    /// From the cut to the last will that came.
    pub cut_to_last_will_ms: Option<f64>,
    /// The window a drop and a will must fall in after the willy's last packet:
    /// 1.5 x keepalive, minus [`timing::EARLY_MS`], plus the profile's late allowance.
    pub window_ms: (f64, f64),
    /// Connections accepted per second, from the first accept to the last CONNACK.
    pub connect_rate_per_s: Option<f64>,
    pub connect_s: Option<f64>,
    pub harness_peak_rss_mb: f64,
    pub harness: Harness,
    /// A merged fleet's shards (`unplug merge`): each one's own counts, harness and clock;
    /// then `harness` above is the worst of them (CPU: their sum) and `harness_peak_rss_mb`
    /// the largest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardFigures>,
}

/// One shard of a merged fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFigures {
    /// `K/N`.
    pub partition: String,
    /// Its output directory, as given to merge.
    pub dir: String,
    pub willies: u32,
    pub connected: u32,
    pub wills_received: u32,
    pub wills_lost: u32,
    pub wills_duplicated: u32,
    pub connect_rate_per_s: Option<f64>,
    pub cut_to_last_will_ms: Option<f64>,
    /// Its cut by its own machine's wall clock.
    pub cut_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its cut after the fleet's planned moment (`--start-at` + connect window + after_ms),
    /// by its own clock, ms: how late its timer fired, plus its clock's offset from the
    /// planner's.
    pub cut_after_planned_ms: Option<f64>,
    /// Its cut after the earliest shard's, by their wall clocks, ms: on one machine the
    /// spread of the cuts; across machines it includes their clocks' offset.
    pub cut_after_first_ms: Option<f64>,
    pub harness_peak_rss_mb: f64,
    pub harness: Harness,
}

/// One proxy connection, as its records tell it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Conn {
    client_id: Option<String>,
    accepted_ms: Option<f64>,
    connack_ms: Option<f64>,
    /// The last packet from willy that got through (not dropped).
    last_packet_ms: Option<f64>,
    /// The last bytes forwarded, as the proxy said at the cut.
    last_upstream_ms: Option<f64>,
    broker_closed_ms: Option<f64>,
}

impl Conn {
    fn reference_ms(&self) -> Option<f64> {
        timing::reference_ms(self.last_packet_ms, self.last_upstream_ms)
    }
}

/// The moments of each willy, from the records: every time in ms of one clock (one
/// process's journal, or shards' shifted onto one wall clock by [`FleetFacts::merge`]).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FleetFacts {
    cut_at_ms: Option<f64>,
    /// By willy number.
    willies: BTreeMap<u32, Conn>,
    /// Arrival of each will at monit, by willy number.
    wills: BTreeMap<u32, Vec<f64>>,
}

impl FleetFacts {
    pub fn from_records(s: &Scenario, records: &[Record]) -> FleetFacts {
        let prefix = s.will.as_ref().map_or("", |w| w.topic.as_str());
        let mut conns: BTreeMap<u64, Conn> = BTreeMap::new();
        let mut f = FleetFacts::default();
        for r in records {
            match &r.event {
                Event::ConnectionAccepted { conn, .. } => {
                    conns.entry(*conn).or_default().accepted_ms = Some(r.ms);
                }
                Event::Packet {
                    conn,
                    from,
                    dropped: false,
                    kind,
                    fields,
                    ..
                } => {
                    let c = conns.entry(*conn).or_default();
                    match (from, kind) {
                        (Side::Client, _) => {
                            if let Fields::Connect { client_id, .. } = fields {
                                c.client_id = Some(client_id.clone());
                            }
                            // Only before the cut: a packet after it cannot have passed.
                            if f.cut_at_ms.is_none() {
                                c.last_packet_ms = Some(r.ms);
                            }
                        }
                        (Side::Broker, PacketKind::Connack) => c.connack_ms = Some(r.ms),
                        _ => {}
                    }
                }
                Event::FaultApplied { last_upstream, .. } if f.cut_at_ms.is_none() => {
                    f.cut_at_ms = Some(r.ms);
                    for l in last_upstream {
                        conns.entry(l.conn).or_default().last_upstream_ms = l.ms;
                    }
                }
                Event::SideClosed {
                    conn,
                    side: Side::Broker,
                    ..
                } => {
                    let c = conns.entry(*conn).or_default();
                    c.broker_closed_ms.get_or_insert(r.ms);
                }
                Event::MessageReceived { topic, .. } if r.actor == Actor::Monit => {
                    if let Some(i) = Fleet::willy_of(prefix, topic) {
                        f.wills.entry(i).or_default().push(r.ms);
                    }
                }
                _ => {}
            }
        }
        for c in conns.into_values() {
            let Some(i) = c
                .client_id
                .as_deref()
                .and_then(|id| id.strip_prefix("willy-"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            f.willies.insert(i, c);
        }
        f
    }

    /// The willies this holds (those whose CONNECT the proxy saw), by number.
    pub fn willy_numbers(&self) -> impl Iterator<Item = u32> + '_ {
        self.willies
            .keys()
            .copied()
            .chain(self.wills.keys().copied())
    }

    /// The cut, ms.
    pub fn cut_at_ms(&self) -> Option<f64> {
        self.cut_at_ms
    }

    /// Shards' facts as one fleet's: each shard's times moved by its `shift` (ms) onto one
    /// clock, the cut the earliest of theirs. Willies must be disjoint (the caller checks):
    /// a willy in two parts keeps the later part's moments.
    pub fn merge(parts: Vec<(FleetFacts, f64)>) -> FleetFacts {
        let mut out = FleetFacts::default();
        let move_by = |v: &mut Option<f64>, by: f64| {
            if let Some(x) = v {
                *x += by;
            }
        };
        for (part, by) in parts {
            if let Some(c) = part.cut_at_ms.map(|c| c + by) {
                out.cut_at_ms = Some(out.cut_at_ms.map_or(c, |o: f64| o.min(c)));
            }
            for (i, mut c) in part.willies {
                for v in [
                    &mut c.accepted_ms,
                    &mut c.connack_ms,
                    &mut c.last_packet_ms,
                    &mut c.last_upstream_ms,
                    &mut c.broker_closed_ms,
                ] {
                    move_by(v, by);
                }
                out.willies.insert(i, c);
            }
            for (i, w) in part.wills {
                out.wills.insert(i, w.into_iter().map(|x| x + by).collect());
            }
        }
        out
    }

    /// Each willy's drop and will after its own last packet, ms (for the picture).
    pub fn latencies(&self) -> (Vec<f64>, Vec<f64>) {
        let mut drops = Vec::new();
        let mut wills = Vec::new();
        for (i, c) in self.willies.iter().filter(|(_, c)| c.connack_ms.is_some()) {
            let Some(r) = c.reference_ms() else { continue };
            if let Some(d) = c.broker_closed_ms {
                drops.push(d - r);
            }
            if let Some(w) = self.wills.get(i) {
                wills.push(w[0] - r);
            }
        }
        (drops, wills)
    }

    /// When each will (each copy) arrived after the cut, ms.
    pub fn wills_after_cut(&self) -> Vec<f64> {
        let Some(cut) = self.cut_at_ms else {
            return Vec::new();
        };
        self.wills.values().flatten().map(|w| w - cut).collect()
    }

    /// The figures, without the harness's own (the runner adds those).
    pub fn figures(&self, s: &Scenario, p: &Profile) -> FleetSummary {
        let n = s.fleet.map_or(0, |f| f.willies);
        let connected: Vec<(&u32, &Conn)> = self
            .willies
            .iter()
            .filter(|(_, c)| c.connack_ms.is_some())
            .collect();
        let (drops, wills_after) = self.latencies();
        let mut received = 0;
        let mut duplicated = 0;
        let mut drops_missing = 0;
        for (i, c) in &connected {
            if c.broker_closed_ms.is_none() || c.reference_ms().is_none() {
                drops_missing += 1;
            }
            if let Some(w) = self.wills.get(i) {
                received += 1;
                duplicated += u32::from(w.len() > 1);
            }
        }
        let last_will = self
            .wills
            .values()
            .filter_map(|w| w.first().copied())
            .max_by(f64::total_cmp);
        let first_accept = connected
            .iter()
            .filter_map(|(_, c)| c.accepted_ms)
            .min_by(f64::total_cmp);
        let last_connack = connected
            .iter()
            .filter_map(|(_, c)| c.connack_ms)
            .max_by(f64::total_cmp);
        let connect_s = first_accept
            .zip(last_connack)
            .map(|(a, b)| (b - a) / 1000.0);
        let expected = connected.len() as u32;
        FleetSummary {
            willies: n,
            connected: expected,
            wills_expected: expected,
            wills_received: received,
            wills_lost: expected - received,
            wills_duplicated: duplicated,
            drops_missing,
            drop_after_last_packet_ms: Quantiles::of(&drops),
            will_after_last_packet_ms: Quantiles::of(&wills_after),
            cut_to_last_will_ms: self.cut_at_ms.zip(last_will).map(|(c, l)| round(l - c)),
            window_ms: timing::keepalive_window(s.keepalive, p.keepalive_late_ms),
            connect_rate_per_s: connect_s
                .filter(|s| *s > 0.0)
                .map(|s| (expected as f64 / s).round()),
            connect_s: connect_s.map(|s| (s * 1000.0).round() / 1000.0),
            harness_peak_rss_mb: 0.0,
            harness: Harness::default(),
            shards: Vec::new(),
        }
    }

    /// Every will arrived, once, and every drop and will fell in the profile's window after
    /// that willy's own last packet.
    pub fn findings(&self, s: &Scenario, p: &Profile) -> Vec<Finding> {
        let (early, late) = timing::keepalive_window(s.keepalive, p.keepalive_late_ms);
        let connected: Vec<(&u32, &Conn)> = self
            .willies
            .iter()
            .filter(|(_, c)| c.connack_ms.is_some())
            .collect();
        let lost: Vec<u32> = connected
            .iter()
            .filter(|(i, _)| !self.wills.contains_key(i))
            .map(|(i, _)| **i)
            .collect();
        let twice: Vec<u32> = connected
            .iter()
            .filter(|(i, _)| self.wills.get(i).is_some_and(|w| w.len() > 1))
            .map(|(i, _)| **i)
            .collect();
        let outside =
            |at: &dyn Fn(&Conn, u32) -> Option<f64>| outside(&connected, (early, late), at);
        let (drops_bad, drop_worst) = outside(&|c, _| c.broker_closed_ms);
        let (wills_bad, will_worst) = outside(&|_, i| self.wills.get(&i).map(|w| w[0]));
        let missing_drops: Vec<u32> = connected
            .iter()
            .filter(|(_, c)| c.broker_closed_ms.is_none())
            .map(|(i, _)| **i)
            .collect();
        let n = connected.len();
        let window = format!(
            "{:.0}-{:.0} ms after each willy's own last packet ({} keepalive, late allowance {} ms)",
            early,
            late,
            timing::FACTOR_WORDS,
            p.keepalive_late_ms
        );
        let of = |bad: &[u32], what: &str| {
            if bad.is_empty() {
                format!("all {n} {what}")
            } else {
                format!("{} of {n} not: {}", bad.len(), names(bad))
            }
        };
        vec![
            Finding {
                id: CheckId::Will,
                spec: Some("MQTT-3.1.2-8".to_string()),
                holds: lost.is_empty() && n > 0,
                expected: format!("a will from each of the {n} willies"),
                actual: if lost.is_empty() {
                    format!("{n} of {n} received")
                } else {
                    format!("{} lost: {}", lost.len(), names(&lost))
                },
            },
            Finding {
                id: CheckId::WillOnce,
                spec: None,
                holds: twice.is_empty(),
                expected: "each will once".to_string(),
                actual: if twice.is_empty() {
                    "none twice".to_string()
                } else {
                    format!("{} twice or more: {}", twice.len(), names(&twice))
                },
            },
            Finding {
                id: CheckId::KeepaliveDrop,
                spec: Some("MQTT-3.1.2-24".to_string()),
                holds: drops_bad.is_empty() && missing_drops.is_empty() && n > 0,
                expected: format!("the broker closes each willy {window}"),
                actual: if missing_drops.is_empty() {
                    format!("{}; latest {drop_worst:.0} ms", of(&drops_bad, "within"))
                } else {
                    format!(
                        "{} never closed: {}",
                        missing_drops.len(),
                        names(&missing_drops)
                    )
                },
            },
            Finding {
                id: CheckId::WillTiming,
                spec: Some("MQTT-3.1.2-8".to_string()),
                holds: wills_bad.is_empty() && lost.is_empty() && n > 0,
                expected: format!("each will {window}"),
                actual: format!(
                    "{}; latest {will_worst:.0} ms",
                    of(&wills_bad, "that came within")
                ),
            },
        ]
    }
}

/// The first five of `ids` by client id, and how many more.
fn names(ids: &[u32]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(|&i| Fleet::client_id(i)).collect();
    let more = ids.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// The willies whose moment `at` falls outside `(early, late)` ms after their own last
/// packet, and the latest such moment.
fn outside(
    connected: &[(&u32, &Conn)],
    (early, late): (f64, f64),
    at: &dyn Fn(&Conn, u32) -> Option<f64>,
) -> (Vec<u32>, f64) {
    let mut bad = Vec::new();
    let mut worst: f64 = 0.0;
    for (i, c) in connected {
        let (Some(r), Some(t)) = (c.reference_ms(), at(c, **i)) else {
            continue;
        };
        let d = t - r;
        worst = worst.max(d);
        if d < early || d > late {
            bad.push(**i);
        }
    }
    (bad, worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ConnLastUpstream;

    fn rec(ms: f64, actor: Actor, event: Event) -> Record {
        Record {
            ms,
            t: chrono::Utc::now(),
            actor,
            event,
        }
    }

    fn packet(ms: f64, conn: u64, from: Side, kind: &str, fields: Fields) -> Record {
        let event = Event::Packet {
            conn,
            from,
            dropped: false,
            kind: PacketKind::from_name(kind).expect("a packet kind"),
            framing: crate::tap::Framing::Tcp,
            size: 2,
            hex: None,
            fields,
        };
        rec(ms, Actor::Wire, event)
    }

    /// willy `i` on proxy connection `i + 1`: CONNECT at `at`, CONNACK 1 ms later.
    fn connected(i: u32, at: f64) -> Vec<Record> {
        let conn = u64::from(i) + 1;
        let id = Fields::Connect {
            client_id: Fleet::client_id(i),
            protocol_level: 4,
            keepalive_s: 4,
            clean: true,
            will: None,
            session_expiry_s: None,
        };
        vec![
            rec(
                at,
                Actor::Proxy,
                Event::ConnectionAccepted { conn, held: false },
            ),
            packet(at, conn, Side::Client, "CONNECT", id),
            packet(at + 1.0, conn, Side::Broker, "CONNACK", Fields::None),
        ]
    }

    fn closed(ms: f64, i: u32) -> Record {
        let event = Event::SideClosed {
            conn: u64::from(i) + 1,
            side: Side::Broker,
            how: "closed (EOF)".to_string(),
        };
        rec(ms, Actor::Proxy, event)
    }

    fn will(ms: f64, i: u32) -> Record {
        let event = Event::MessageReceived {
            topic: Fleet::will_topic("fleet/will", i),
            payload: "(4 bytes)".to_string(),
            retain: false,
            qos: 0,
        };
        rec(ms, Actor::Monit, event)
    }

    fn storm() -> Scenario {
        let mut s = crate::scenario::load("will-storm").unwrap();
        s.keepalive = std::time::Duration::from_secs(2);
        s.fleet = Some(Fleet {
            willies: 3,
            ..s.fleet.unwrap()
        });
        s
    }

    /// Three willies, keepalive 2 s (bound 3000 ms): 0 on time, 1 whose will came twice and
    /// late (3400 ms), 2 whose will never came; 1 pinged at 500, so it is timed from there.
    fn records() -> Vec<Record> {
        let mut r = Vec::new();
        for i in 0..3 {
            r.extend(connected(i, 10.0 * f64::from(i)));
        }
        r.push(packet(500.0, 2, Side::Client, "PINGREQ", Fields::None));
        let last_upstream = (1..=3)
            .map(|conn| ConnLastUpstream {
                conn,
                ms: Some(0.0),
            })
            .collect();
        let cut = Event::FaultApplied {
            fault: "blackhole".to_string(),
            n: 0,
            last_upstream,
        };
        r.push(rec(1000.0, Actor::Proxy, cut));
        // A ping after the cut did not get through: not a reference.
        r.push(packet(2000.0, 1, Side::Client, "PINGREQ", Fields::None));
        r.push(closed(3010.0, 0));
        r.push(will(3012.0, 0));
        r.push(closed(3900.0, 1));
        r.push(will(3900.0, 1));
        r.push(will(3950.0, 1));
        r.push(closed(3020.0, 2));
        r
    }

    #[test]
    fn every_figure_is_timed_from_each_willys_own_last_packet() {
        let s = storm();
        let p = Profile::rumqttd();
        let f = FleetFacts::from_records(&s, &records());
        let fig = f.figures(&s, &p);
        assert_eq!(
            (
                fig.wills_expected,
                fig.wills_received,
                fig.wills_lost,
                fig.wills_duplicated
            ),
            (3, 2, 1, 1)
        );
        // willy 0: 3010 - 0; willy 1: 3900 - 500; willy 2: 3020 - 20.
        let (mut drops, mut wills) = f.latencies();
        drops.sort_by(f64::total_cmp);
        wills.sort_by(f64::total_cmp);
        assert_eq!(drops, [3000.0, 3010.0, 3400.0]);
        assert_eq!(wills, [3012.0, 3400.0]);
        assert_eq!(fig.cut_to_last_will_ms, Some(2900.0));
        assert_eq!(fig.window_ms, (2950.0, 3250.0));
    }

    #[test]
    fn a_lost_a_twice_and_a_late_will_each_fail_their_check() {
        let s = storm();
        let p = Profile::rumqttd();
        let f = FleetFacts::from_records(&s, &records());
        let holds: Vec<(CheckId, bool)> = f
            .findings(&s, &p)
            .into_iter()
            .map(|x| (x.id, x.holds))
            .collect();
        assert_eq!(
            holds,
            [
                (CheckId::Will, false),
                (CheckId::WillOnce, false),
                (CheckId::KeepaliveDrop, false),
                (CheckId::WillTiming, false),
            ]
        );
        let all = f.findings(&s, &p);
        assert!(
            all[0].actual.contains("1 lost: willy-00002"),
            "{}",
            all[0].actual
        );
        assert!(all[1].actual.contains("willy-00001"), "{}", all[1].actual);
        assert!(
            all[2].actual.contains("1 of 3 not: willy-00001"),
            "{}",
            all[2].actual
        );
    }

    #[test]
    fn wills_all_in_time_and_once_pass_every_check() {
        let s = storm();
        let p = Profile::rumqttd();
        let mut r: Vec<Record> = records()
            .into_iter()
            .filter(|x| {
                !matches!(
                    x.event,
                    Event::MessageReceived { .. } | Event::SideClosed { .. }
                )
            })
            .collect();
        for i in 0..3 {
            r.push(closed(3005.0 + 10.0 * f64::from(i), i));
            r.push(will(3006.0 + 10.0 * f64::from(i), i));
        }
        // Without willy 1's ping at 500 every willy is timed from its CONNECT (0, 10, 20 ms).
        r.retain(|x| {
            !matches!(
                x.event,
                Event::Packet {
                    conn: 2,
                    kind: PacketKind::Pingreq,
                    ..
                }
            )
        });
        let f = FleetFacts::from_records(&s, &r);
        assert!(
            f.findings(&s, &p).iter().all(|x| x.holds),
            "{:#?}",
            f.findings(&s, &p)
        );
    }

    #[test]
    fn shards_merged_on_one_clock_keep_each_willys_figures_and_the_earliest_cut() {
        let s = storm();
        let p = Profile::rumqttd();
        let whole = FleetFacts::from_records(&s, &records());
        // The same three willies as two shards: willy 1 alone, its journal started 250 ms
        // after the other's (so its times are 250 ms smaller there) and its cut 5 ms later.
        let part = |keep: &dyn Fn(u32) -> bool, by: f64| {
            let mut f = whole.clone();
            f.willies.retain(|i, _| keep(*i));
            f.wills.retain(|i, _| keep(*i));
            let mut moved = FleetFacts::merge(vec![(f, -by)]);
            moved.cut_at_ms = whole
                .cut_at_ms
                .map(|c| c - by + if by > 0.0 { 5.0 } else { 0.0 });
            moved
        };
        let merged = FleetFacts::merge(vec![
            (part(&|i| i != 1, 0.0), 0.0),
            (part(&|i| i == 1, 250.0), 250.0),
        ]);
        assert_eq!(merged.latencies(), whole.latencies());
        assert_eq!(merged.cut_at_ms(), whole.cut_at_ms());
        let (a, b) = (merged.figures(&s, &p), whole.figures(&s, &p));
        assert_eq!(a, b);
        assert_eq!(
            merged.willy_numbers().count(),
            whole.willy_numbers().count()
        );
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let q = Quantiles::of(&v).unwrap();
        assert_eq!((q.p50, q.p90, q.p99, q.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Quantiles::of(&[]), None);
        let one = Quantiles::of(&[7.0]).unwrap();
        assert_eq!((one.p50, one.max), (7.0, 7.0));
    }
}
