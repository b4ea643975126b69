//! Judging a standalone proxy's journal: no scenario was run, so the one the checks read is
//! made from what the wire tap saw.
//!
//! ```text
//!  NAME.events.jsonl (proxy, wire and monit records; no ScenarioRecorded)
//!     CONNECT on the connection open at the first fault --> keepalive, will topic, protocol,
//!                                                           transport, clean session
//!     monit's message on the will topic (its payload's length the CONNECT's) --> will payload
//!     first FaultApplied / FaultHealed --> the cut, and how long it lasted; a cut ridden
//!                                          out (healed before the drop) expects no will
//!     a second cut --> the observation's end (the first cut alone is judged)
//!  --> Scenario --> the same Facts, checks and picture as a scenario run
//! ```
//!
//! Checks that read willy's own client (when its library noticed, its connection attempts, a
//! takeover twin) do not apply: a person's device reports nothing to us.
//!
//! [`judge_journal`] is `unplug judge`: a saved journal read (`event/read.rs`: capped, every
//! record checked), then judged this way if a proxy wrote it, else by the scenario it records
//! (`report::rejudge`).

use std::time::Duration;

use anyhow::Context;

use crate::event::{Actor, Event, Record, Side};
use crate::judge::CheckId;
use crate::mqtt::{PacketKind, MAX_FIELD_BYTES};
use crate::scenario::{Direction, Fault, FaultKind, Protocol, Scenario, Transport, Trigger, Will};
use crate::tap::{Fields, Framing};

/// A CONNECT the tap saw a device send.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSeen {
    pub conn: u64,
    pub keepalive_s: u64,
    /// 4: MQTT 3.1.1, 5: MQTT 5.
    pub protocol_level: u64,
    pub clean: bool,
    pub ws: bool,
    pub will: Option<WillSeen>,
}

/// The will in a CONNECT: the tap records its payload's length, not its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct WillSeen {
    pub topic: String,
    pub payload_len: u64,
    pub qos: u8,
    pub retain: bool,
    pub delay_s: Option<u32>,
}

/// The CONNECT in `r`, if it is one the tap saw from a client.
pub fn connect_of(r: &Record) -> Option<ConnectSeen> {
    let Event::Packet {
        conn,
        from: Side::Client,
        kind,
        framing,
        fields,
        ..
    } = &r.event
    else {
        return None;
    };
    let Fields::Connect {
        protocol_level,
        keepalive_s,
        clean,
        will,
        ..
    } = fields
    else {
        return None;
    };
    if *kind != PacketKind::Connect {
        return None;
    }
    Some(ConnectSeen {
        conn: *conn,
        keepalive_s: u64::from(*keepalive_s),
        protocol_level: u64::from(*protocol_level),
        clean: *clean,
        ws: matches!(framing, Framing::Ws { .. }),
        will: will.as_ref().map(|w| WillSeen {
            topic: w.topic.clone(),
            payload_len: w.payload_len as u64,
            qos: w.qos,
            retain: w.retain,
            delay_s: w.delay_s,
        }),
    })
}

/// True for a journal a standalone proxy wrote: the tap saw a CONNECT, and nothing of a
/// scenario run is in it (no scenario recorded, no willy of ours).
pub fn is_proxy_journal(records: &[Record]) -> bool {
    !records
        .iter()
        .any(|r| matches!(r.event, Event::ScenarioRecorded { .. }) || r.actor == Actor::Willy)
        && records.iter().any(|r| connect_of(r).is_some())
}

/// The fault a `FaultApplied` label names (`FaultKind::label`'s words, read back): what the
/// checks need of it is whether it silences the device and how new connections fare.
fn kind_of_label(label: &str) -> FaultKind {
    let words: Vec<&str> = label.split_whitespace().collect();
    let direction = match words.last() {
        Some(&"upstream") => Direction::Upstream,
        Some(&"downstream") => Direction::Downstream,
        _ => Direction::Both,
    };
    let num = |i: usize| {
        words
            .get(i)
            .and_then(|w| w.trim_start_matches('+').parse::<u64>().ok())
    };
    match words.first().copied().unwrap_or_default() {
        "reset" => FaultKind::Reset,
        "close" => FaultKind::Close,
        "refuse" => FaultKind::Refuse,
        "hang" => FaultKind::Hang,
        "latency" => FaultKind::Latency {
            direction,
            delay: Duration::from_millis(num(1).unwrap_or(0)),
            jitter: Duration::from_millis(num(3).unwrap_or(0)),
        },
        "bandwidth" => FaultKind::Bandwidth {
            direction,
            bytes_per_s: num(1).unwrap_or(1),
        },
        "drop" => FaultKind::Drop {
            direction,
            packets: words
                .get(1)
                .map(|list| {
                    list.split(',')
                        .filter_map(|n| {
                            crate::mqtt::PacketKind::v311()
                                .find(|k| k.as_str() == n)
                                .map(|k| k.type_code())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        "slicer" => FaultKind::Slicer {
            direction,
            average: num(1).unwrap_or(1) as u32,
            variation: num(3).unwrap_or(0) as u32,
            delay: Duration::from_micros(num(5).unwrap_or(0)),
        },
        "limit-data" => FaultKind::LimitData {
            direction,
            bytes: num(1).unwrap_or(0),
        },
        "slow-close" => FaultKind::SlowClose {
            direction,
            delay: Duration::from_millis(num(1).unwrap_or(0)),
        },
        _ => FaultKind::Blackhole { direction },
    }
}

/// The scenario a proxy's journal amounts to, named `name`.
pub fn scenario_of(records: &[Record], name: &str) -> anyhow::Result<Scenario> {
    // The first fault, and the connections open at it.
    let first = records.iter().find_map(|r| match &r.event {
        Event::FaultApplied {
            fault,
            n,
            last_upstream,
        } => Some((r.ms, fault.clone(), *n, last_upstream.clone())),
        _ => None,
    });
    let connects: Vec<(f64, ConnectSeen)> = records
        .iter()
        .filter_map(|r| connect_of(r).map(|c| (r.ms, c)))
        .collect();
    let device = match &first {
        Some((at, _, _, open)) => connects
            .iter()
            .rev()
            .find(|(ms, c)| *ms <= *at && open.iter().any(|o| o.conn == c.conn))
            .or_else(|| connects.iter().rev().find(|(ms, _)| *ms <= *at)),
        None => connects.last(),
    }
    .or(connects.first())
    .map(|(_, c)| c.clone())
    .context("the journal holds no CONNECT the wire tap could read: nothing to judge")?;

    let mut s = crate::scenario::load("native-last-will")
        .map_err(|e| anyhow::anyhow!("the template scenario: {e}"))?;
    s.name = name.to_string();
    s.description = "a device through `unplug proxy`: its CONNECT as the wire tap saw it".into();
    s.source = "proxy journal".into();
    s.transport = if device.ws {
        Transport::Ws
    } else {
        Transport::Tcp
    };
    s.protocol = if device.protocol_level == 5 {
        Protocol::V5
    } else {
        Protocol::V311
    };
    s.keepalive = Duration::from_secs(device.keepalive_s);
    s.clean_session = device.clean;
    s.will = device.will.as_ref().map(|w| {
        let template = s.will.clone();
        Will {
            topic: w.topic.clone(),
            payload: will_payload(records, w),
            qos: w.qos,
            retain: w.retain,
            delay_s: w.delay_s,
            ..template.expect("the template scenario has a will")
        }
    });
    s.faults = match first {
        Some((at, label, n, open)) => {
            let kind = kind_of_label(&label);
            // A heal after the broker closed the device's connection came too late to matter
            // (a person heals when they see the will): the cut is judged as one never healed.
            let broker_closed = records.iter().find_map(|r| match &r.event {
                Event::SideClosed {
                    conn,
                    side: Side::Broker,
                    ..
                } if r.ms >= at && open.iter().any(|o| o.conn == *conn) => Some(r.ms),
                _ => None,
            });
            let healed = records
                .iter()
                .find_map(|r| match &r.event {
                    Event::FaultHealed { n: m, .. } if *m == n => Some(r.ms),
                    _ => None,
                })
                .filter(|h| !broker_closed.is_some_and(|c| *h >= c));
            let heal_after = healed
                .map(|h| {
                    Duration::try_from_secs_f64((h - at).max(0.0) / 1000.0)
                        .with_context(|| format!("a fault healed at {h} ms: out of range"))
                })
                .transpose()?;
            vec![Fault {
                new_connections: kind.default_new_connections(),
                kind,
                cycle: 1,
                trigger: Trigger::Connected,
                after: Duration::ZERO,
                heal_after,
                layer: crate::kernelcut::CutLayer::Proxy,
            }]
        }
        None => Vec::new(),
    };
    // A cut that silenced the device and healed before the broker closed its connection left
    // that connection as it was: no will is due (whether the broker should have closed it by
    // then is the keepalive check's to say).
    let rode_it_out = s
        .faults
        .first()
        .is_some_and(|f| f.kind.silences_client() && f.heal_after.is_some());
    s.expect.will = s.will.is_some() && !rode_it_out;
    Ok(s)
}

/// The will's payload: the tap knows its length; monit got the message itself. The first one
/// on the will topic with that length that the device did not publish (before the cut, its
/// own publishes on the topic are counted out by the checks); none: words in its place that
/// give its length and say monit never got it (the check's sentence shows them).
fn will_payload(records: &[Record], w: &WillSeen) -> String {
    records
        .iter()
        .filter(|r| r.actor == Actor::Monit)
        .find_map(|r| match &r.event {
            Event::MessageReceived { topic, payload, .. }
                if *topic == w.topic && payload.len() as u64 == w.payload_len =>
            {
                Some(payload.clone())
            }
            _ => None,
        })
        // A will's payload is at most 65,535 bytes (MQTT-1.5.6); a journal may say anything.
        .unwrap_or_else(|| {
            format!(
                "(the {} B payload of its CONNECT, which monit never got)",
                w.payload_len.min(MAX_FIELD_BYTES as u64)
            )
        })
}

/// Does check `id` apply to a device behind the proxy? Those that read the client's own
/// reports (when it noticed, its attempts, a second client taking its id over) do not.
pub fn applies(id: &CheckId) -> bool {
    !matches!(
        id,
        CheckId::ClientDetect
            | CheckId::NoClientError
            | CheckId::AttemptsRefused
            | CheckId::AttemptsHang
            | CheckId::Takeover
            | CheckId::TakeoverClose
            | CheckId::TakeoverWill
    )
}

/// Where each cut of a proxy's journal begins (indices into `records`). A cut runs from a
/// fault applied while no other was on until every fault applied since has healed: `unplug
/// proxy cut` (a fault each way) is one cut, and so is a latency added during a blackhole.
fn cut_starts(records: &[Record]) -> Vec<usize> {
    let mut on = std::collections::BTreeSet::new();
    let mut starts = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match &r.event {
            Event::FaultApplied { n, .. } => {
                if on.is_empty() {
                    starts.push(i);
                }
                on.insert(*n);
            }
            Event::FaultHealed { n, .. } => {
                on.remove(n);
            }
            _ => {}
        }
    }
    starts
}

/// The records a proxy's journal is judged on: its first cut, observed until the second one
/// begins (what follows a later cut, a drop or a will, is no news of the first), or all of
/// them when there is one cut or none. The observation's end says how many cuts there were.
fn first_cut_only(records: &[Record]) -> std::borrow::Cow<'_, [Record]> {
    let starts = cut_starts(records);
    let Some(&next) = starts.get(1) else {
        return std::borrow::Cow::Borrowed(records);
    };
    let at = &records[next];
    let mut window = records[..next].to_vec();
    window.push(Record {
        ms: at.ms,
        t: at.t,
        actor: Actor::Runner,
        event: Event::RunEnded {
            reason: format!(
                "observed until cut 2 of {} began, {:.1} s in: a proxy's journal is judged on \
                 its first cut",
                starts.len(),
                at.ms / 1000.0
            ),
        },
    });
    std::borrow::Cow::Owned(window)
}

/// A proxy's journal judged: the scenario it amounts to, the spec's checks that apply, the
/// summary. `profile` is the broker's when given (`--profile`), else the one the proxy
/// recognised, else the spec's own. Judged on the first cut ([`first_cut_only`]).
pub fn judge(
    records: &[Record],
    profile: Option<crate::broker::profile::Profile>,
    name: &str,
) -> anyhow::Result<crate::report::Summary> {
    let records = &*first_cut_only(records);
    let scenario = scenario_of(records, name)?;
    // A journal read thinned is not capped by what its PUBLISHes take in the checks
    // (`ReadLimits::publish_bytes`): only those monit got copies of are held, so cap those.
    let held = crate::judge::facts::paired_publish_bytes(records);
    let cap = crate::event::ReadLimits::IN_MEMORY.publish_bytes;
    if held > cap {
        anyhow::bail!(
            "the journal's PUBLISHes that monit got copies of would take {held} bytes in the \
             checks, more than {cap}"
        );
    }
    // The broker the proxy recognised when the device connected, else the spec's own.
    let recognised = records.iter().find_map(|r| match &r.event {
        Event::RunStarted { broker, .. } => crate::broker::profile::Profile::by_name(broker),
        _ => None,
    });
    let profile = profile
        .or(recognised)
        .unwrap_or_else(crate::broker::profile::Profile::unknown);
    Ok(crate::report::rejudge::judge_records(
        &scenario, &profile, records, applies,
    ))
}

/// The journal at `path` judged again (`unplug judge`): a scenario run's by the scenario it
/// records, an `unplug proxy` journal by the scenario its tap's CONNECT amounts to. `profile`
/// is `--profile`'s name. The journal is read within [`crate::event::ReadLimits::IN_MEMORY`]
/// and every record checked (`event/read.rs`): a refusal names the file and line.
pub fn judge_journal(
    path: &std::path::Path,
    profile: Option<&str>,
) -> anyhow::Result<crate::report::Summary> {
    let profile = crate::report::rejudge::profile_named(profile)?;
    // A proxy's journal is read as the proxy read it at its stop (its control records, the
    // data record before each, the newest data records), so both give one verdict and a
    // 100 MB journal is not held whole; a run's journal is read whole.
    let (thinned, _) = crate::event::thin::read_thinned(path)?;
    let records = if is_proxy_journal(&thinned) {
        thinned
    } else {
        drop(thinned);
        crate::event::read_jsonl(path)?
    };
    let judged = if is_proxy_journal(&records) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("proxy");
        let name = name.trim_end_matches(".events.jsonl");
        judge(&records, profile, name)
    } else {
        crate::report::rejudge::rejudge(&records, profile)
    };
    judged.with_context(|| format!("{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// results/proxy/: amqtt's client through `unplug proxy` to mosquitto, cut both ways for
    /// 10 s (scripts/proxy-example.sh).
    #[test]
    fn the_scenario_comes_from_the_connect_the_tap_saw() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("results/proxy/sensor-7.events.jsonl");
        let records = crate::event::read_jsonl(&path).unwrap();
        assert!(is_proxy_journal(&records));
        let s = scenario_of(&records, "sensor-7").unwrap();
        assert_eq!(s.keepalive, Duration::from_secs(1));
        assert_eq!((s.transport, s.protocol), (Transport::Tcp, Protocol::V311));
        let w = s.will.as_ref().unwrap();
        assert_eq!(
            (w.topic.as_str(), w.payload.as_str(), w.qos),
            ("sensors/7/status", "offline", 1)
        );
        assert!(s.expect.will);
        assert_eq!(
            s.faults[0].kind,
            FaultKind::Blackhole {
                direction: Direction::Upstream
            }
        );
        // Healed 10 s after the cut, long after the broker had dropped the device: judged as
        // a cut never healed.
        assert_eq!(s.faults[0].heal_after, None);
    }

    /// A cut lasts while any fault is on: two at once, or one added during another, are one.
    #[test]
    fn a_cut_runs_until_every_fault_applied_since_has_healed() {
        let at = |ms: f64, event: Event| Record {
            ms,
            t: chrono::Utc::now(),
            actor: Actor::Proxy,
            event,
        };
        let on = |ms, n| {
            at(
                ms,
                Event::FaultApplied {
                    fault: "blackhole upstream".into(),
                    n,
                    last_upstream: Vec::new(),
                },
            )
        };
        let off = |ms, n| {
            at(
                ms,
                Event::FaultHealed {
                    fault: "blackhole upstream".into(),
                    n,
                },
            )
        };
        let records = [
            on(1.0, 1),
            on(1.0, 2),
            off(2.0, 1),
            on(3.0, 3), // fault 2 still on: the same cut
            off(4.0, 2),
            off(5.0, 3),
            on(9.0, 4), // a second cut
            on(12.0, 5),
        ];
        assert_eq!(cut_starts(&records), [0, 6]);
        let window = first_cut_only(&records);
        assert_eq!(window.len(), 7);
        assert!(matches!(
            &window[6].event,
            Event::RunEnded { reason } if reason.starts_with("observed until cut 2 of 2 began, 0.0 s in")
        ));
        assert_eq!(window[6].ms, 9.0);
        assert_eq!(first_cut_only(&records[..6]).len(), 6);
    }

    #[test]
    fn a_label_reads_back_as_its_fault() {
        for k in [
            FaultKind::Blackhole {
                direction: Direction::Upstream,
            },
            FaultKind::Blackhole {
                direction: Direction::Both,
            },
            FaultKind::Reset,
            FaultKind::Close,
            FaultKind::Refuse,
            FaultKind::Hang,
            FaultKind::Latency {
                direction: Direction::Downstream,
                delay: Duration::from_millis(200),
                jitter: Duration::from_millis(5),
            },
            FaultKind::Bandwidth {
                direction: Direction::Both,
                bytes_per_s: 5000,
            },
            FaultKind::Drop {
                direction: Direction::Upstream,
                packets: vec![12],
            },
            FaultKind::Slicer {
                direction: Direction::Downstream,
                average: 100,
                variation: 20,
                delay: Duration::from_micros(5000),
            },
            FaultKind::LimitData {
                direction: Direction::Upstream,
                bytes: 300,
            },
            FaultKind::SlowClose {
                direction: Direction::Downstream,
                delay: Duration::from_millis(500),
            },
        ] {
            assert_eq!(kind_of_label(&k.label()), k, "{}", k.label());
        }
    }
}
