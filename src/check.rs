//! Spec checks: pure functions of (scenario, broker profile, records).
//!
//! ```text
//!  records --Facts::from_records--> Facts { cut, last upstream, broker drop, will, ... }
//!  (scenario, profile, facts) --evaluate--> [Check { name, pass, expected, actual }]
//! ```
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
}

impl Facts {
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
        let Some(cut) = f.cut_at_ms else { return f };
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
        let news_until = own_publish_after_heal.unwrap_or(f64::INFINITY);
        for r in records.iter().filter(|r| r.ms > cut && r.ms < news_until) {
            if let (Actor::Monit, Event::MessageReceived { topic, payload, .. }) =
                (r.actor, &r.event)
            {
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
        f
    }
}

/// One verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// The normative statement it tests, where there is one.
    pub spec: Option<String>,
    pub pass: bool,
    pub expected: String,
    pub actual: String,
}

fn ms(x: Option<f64>) -> String {
    x.map_or("never".to_string(), |v| format!("{v:.0} ms"))
}

/// The 1.5 x keepalive window after the last packet, widened late by the broker's profile.
fn keepalive_window(s: &Scenario, p: &Profile) -> (f64, f64) {
    let bound = s.keepalive.as_secs_f64() * 1500.0;
    (bound - EARLY_MS, bound + p.keepalive_late_ms as f64)
}

/// The will deadline: after this, a will that has not come is not coming.
pub fn will_deadline_ms(s: &Scenario, p: &Profile, f: &Facts) -> Option<f64> {
    let (_, late) = keepalive_window(s, p);
    f.last_upstream_ms.or(f.cut_at_ms).map(|l| l + late)
}

/// Judge a run.
pub fn evaluate(s: &Scenario, p: &Profile, f: &Facts) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(cut) = s.cut() else { return checks };
    if f.cut_at_ms.is_none() {
        checks.push(Check {
            name: "fault-applied".into(),
            spec: None,
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
            pass: f.will_received_ms.is_some() == s.expect.will,
            expected: if s.expect.will {
                format!("monit receives the will {}: {}", w.topic, w.payload)
            } else {
                "the will never reaches monit".into()
            },
            actual: match f.will_received_ms {
                Some(t) => format!("will received at {t:.0} ms"),
                None => "no will received".into(),
            },
        },
        None => Check {
            name: "no-news-without-will".into(),
            spec: Some("MQTT-3.1.2-8".into()),
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
    if cut.kind.silences_client() && !healed_early {
        if let Some(last) = f.last_upstream_ms {
            let delta = f.broker_drop_ms.map(|d| d - last);
            checks.push(Check {
                name: "keepalive-drop".into(),
                spec: Some("MQTT-3.1.2-24".into()),
                pass: delta.is_some_and(|d| d >= lo && d <= hi),
                expected: format!("the broker closes willy {lo:.0}..{hi:.0} ms after its last packet (1.5 x {} s, {} late allowance {} ms)", s.keepalive.as_secs(), p.broker, p.keepalive_late_ms),
                actual: match delta {
                    Some(d) => format!("closed {d:.0} ms after the last packet"),
                    None => "the broker never closed the connection".into(),
                },
            });
            if s.expect.will {
                let delta = f.will_received_ms.map(|w| w - last);
                checks.push(Check {
                    name: "will-timing".into(),
                    spec: Some("MQTT-3.1.2-24, MQTT-3.1.2-8".into()),
                    pass: delta.is_some_and(|d| d >= lo && d <= hi),
                    expected: format!(
                        "the will reaches monit {lo:.0}..{hi:.0} ms after willy's last packet"
                    ),
                    actual: match delta {
                        Some(d) => format!(
                            "{d:.0} ms after the last packet (at {})",
                            ms(f.will_received_ms)
                        ),
                        None => "no will".into(),
                    },
                });
            }
        }
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

    #[test]
    fn will_on_time_passes_every_check() {
        let s = scenario("ws-last-will");
        let records = vec![
            msg(100.0, "true"),
            cut(101.0, 99.0),
            drop_at(3101.0),
            msg(3102.0, "false"),
        ];
        let f = Facts::from_records(&s, &records);
        assert_eq!(f.last_upstream_ms, Some(99.0));
        assert_eq!(f.will_received_ms, Some(3102.0));
        let checks = evaluate(&s, &Profile::rumqttd(), &f);
        assert!(checks.iter().all(|c| c.pass), "{checks:#?}");
        assert_eq!(checks.len(), 3);
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
        assert_eq!(c.len(), 1);
        assert!(!c[0].pass);
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
}
