//! When a run is decided: pure functions of the scenario, the profile and the facts so far,
//! tested on made-up instants.

use crate::event::{Actor, Event};
use crate::judge::{self, timing, CheckId, Facts};
use crate::scenario::Scenario;

/// The broker's refusal of willy's CONNECT (a login it does not accept, a protocol it does not
/// speak), said in the broker's terms: retrying will not change it.
pub(super) fn willy_refused(records: &[crate::event::Record]) -> Option<String> {
    records.iter().find_map(|r| match (&r.actor, &r.event) {
        (Actor::Willy, Event::ConnectionFailed { error })
            if error.starts_with(crate::broker::access::REFUSED) =>
        {
            Some(format!(
                "the broker refused willy: {}",
                &error[crate::broker::access::REFUSED.len()..]
            ))
        }
        (Actor::Willy, Event::ConnectionFailed { error })
            if error.starts_with("the broker closed the connection after an MQTT 5") =>
        {
            Some(format!("willy: {error}"))
        }
        _ => None,
    })
}

/// willy cannot finish its cycles because the network never comes back: it has shown its
/// reconnect behaviour (a failure in the last cycle, or two anywhere after the cut, as when a
/// short keepalive makes it notice the dead link before the cycle ends).
pub fn stuck_for_good(s: &Scenario, f: &Facts, in_final_cycle: bool) -> bool {
    let heals = s.faults.iter().any(|f| f.heal_after.is_some());
    !heals
        && (f.attempts_failed_after_cut >= 2
            || (in_final_cycle && f.attempts_failed_after_cut >= 1))
}

/// Has the wire tap's view caught up with willy's last clean disconnect: its DISCONNECT reached
/// the broker, or SETTLE_MS passed since willy's library reported it (a library that resets
/// instead)? The proxy's record of the close is no sign: it comes from the link, and the tap's
/// record of the DISCONNECT before it may come after it, from the recorder thread.
fn last_disconnect_on_the_wire(f: &Facts, now_ms: f64) -> bool {
    f.cycles
        .iter()
        .rev()
        .find_map(|c| c.disconnect_reported_ms.map(|r| (c, r)))
        .map_or(true, |(c, reported)| {
            c.disconnect_reached_ms.is_some() || now_ms >= reported + timing::SETTLE_MS
        })
}

/// Is there nothing more to learn from waiting? (Pure, so it is tested on hand-made facts.)
pub fn outcome_decided(
    s: &Scenario,
    p: &crate::broker::profile::Profile,
    f: &Facts,
    now_ms: f64,
) -> bool {
    use timing::SETTLE_MS;
    if s.cut().is_none() {
        // A will that follows willy's last DISCONNECT needs a moment to reach monit. The wire
        // tap's records reach the live facts a little after willy's own: until the last
        // cycle's DISCONNECT (or its close) is in, the last one seen is an earlier cycle's,
        // whose will may have come (a run once ended 2 ms after its last DISCONNECT, before
        // the will that followed it).
        return last_disconnect_on_the_wire(f, now_ms)
            && f.disconnects
                .last()
                .map_or(true, |d| d.will_ms.is_some() || now_ms >= d.ms + SETTLE_MS);
    }
    let Some(deadline) = judge::will_deadline_ms(s, p, f) else {
        return false; // the fault has not happened yet
    };
    // A flaky monit must be back, and given the time its queued will may take.
    if s.monit.flaky.is_some() {
        return f
            .flaky_monit
            .as_ref()
            .and_then(|m| m.back_ms)
            .is_some_and(|b| now_ms >= b + timing::QUEUED_WAIT_MS + SETTLE_MS);
    }
    // The late subscriber needs the will, then a moment after its SUBACK for a retained one.
    if s.late_subscriber && f.will_received_ms.is_some() {
        return f
            .late_subscribed_ms
            .is_some_and(|t| now_ms >= t + SETTLE_MS);
    }
    if now_ms >= deadline + SETTLE_MS {
        // Past the profile's deadline: what the spec says must happen and has not is late, not
        // absent. Keep watching for it until the observation window ends, so a late drop or
        // will is measured with its real time.
        let watch_until =
            f.cut_at_ms.unwrap_or(deadline) + s.observe_window().as_secs_f64() * 1000.0;
        if !awaiting_late_outcome(s, p, f) || now_ms >= watch_until {
            return true;
        }
    }
    // willy's own detection is checked too: wait for it, up to the end of its window.
    // (Its window passing decides only the detection, not the will, which may still be due.)
    let detect_by = f
        .cut_at_ms
        .map_or(f64::INFINITY, |c| c + judge::client_ping_window(s).1);
    let detected = f.client_detect_ms.is_some()
        || !judge::client_detect_expected(s)
        || now_ms >= detect_by + SETTLE_MS;
    match (f.will_received_ms, f.broker_drop_ms) {
        // The will came: nothing more to learn once willy noticed too (or had its time).
        (Some(w), _) if s.expect.will => detected || now_ms >= w + SETTLE_MS,
        // No will: wait past the drop for as long as the broker may still be closing (over a
        // WebSocket whose library waits for the peer's FIN, mosquitto 1.4's 20 s), so "no
        // news" is judged past the moment a will would have been published.
        (_, Some(drop)) if !s.expect.will => {
            detected && now_ms >= drop + p.close_wait(s.transport) as f64 + SETTLE_MS
        }
        _ => false,
    }
}

/// Is something the spec requires still missing after the cut: the broker's drop of a
/// silenced willy, or an expected will? Not when the broker's profile already says it never
/// comes in this run (a certain deviation), nor once the network healed before the drop.
fn awaiting_late_outcome(s: &Scenario, p: &crate::broker::profile::Profile, f: &Facts) -> bool {
    let Some(cut) = s.cut() else { return false };
    let certain_deviation =
        |check: CheckId| p.deviation(&check, s).is_some_and(|d| d.applies.certain());
    let drop_due = cut.kind.silences_client()
        && s.takeover.is_none()
        && f.heal_ms.is_none()
        && !certain_deviation(CheckId::KeepaliveDrop);
    let will_due = s.expect.will && s.will.is_some() && !certain_deviation(CheckId::Will);
    (drop_due && f.broker_drop_ms.is_none()) || (will_due && f.will_received_ms.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::profile::Profile;
    use crate::runner::time_limit;
    use std::time::Duration;

    fn facts(last: f64, drop: Option<f64>, will: Option<f64>) -> Facts {
        Facts {
            cut_at_ms: Some(last + 1.0),
            last_upstream_ms: Some(last),
            broker_drop_ms: drop,
            // willy hears of it when the broker closes (a FIN), or never.
            client_detect_ms: drop,
            will_received_ms: will,
            ..Facts::default()
        }
    }

    #[test]
    fn with_a_will_expected_the_run_may_end_once_it_arrived() {
        let s = crate::scenario::load("ws-last-will").unwrap();
        let p = Profile::rumqttd();
        assert!(!outcome_decided(&s, &p, &facts(1000.0, None, None), 2000.0));
        assert!(outcome_decided(
            &s,
            &p,
            &facts(1000.0, Some(4000.0), Some(4001.0)),
            4002.0
        ));
    }

    #[test]
    fn without_a_will_the_run_waits_past_the_drop() {
        let s = crate::scenario::load("ws-no-will").unwrap();
        let p = Profile::rumqttd();
        assert!(!outcome_decided(
            &s,
            &p,
            &facts(1000.0, Some(4000.0), None),
            4100.0
        ));
        assert!(outcome_decided(
            &s,
            &p,
            &facts(1000.0, Some(4000.0), None),
            4600.0
        ));
    }

    #[test]
    fn without_a_will_the_run_waits_past_the_brokers_websocket_close_too() {
        let s = crate::scenario::load("ws-no-will").unwrap();
        let p = Profile::mosquitto_14("1.4.15");
        let f = facts(1000.0, Some(4000.0), None);
        let wait = p.close_wait(s.transport) as f64;
        assert!(wait > 20_000.0);
        assert!(!outcome_decided(&s, &p, &f, 4600.0));
        assert!(!outcome_decided(&s, &p, &f, 4000.0 + wait));
        assert!(outcome_decided(&s, &p, &f, 4000.0 + wait + 500.0));
    }

    #[test]
    fn a_will_that_never_comes_is_watched_for_until_the_observation_window_ends() {
        let s = crate::scenario::load("ws-last-will").unwrap();
        let p = Profile::rumqttd();
        assert!(!outcome_decided(&s, &p, &facts(1000.0, None, None), 4000.0));
        // Past the profile's deadline, no drop and no will yet: late, not absent.
        assert!(!outcome_decided(
            &s,
            &p,
            &facts(1000.0, None, None),
            1000.0 + 3250.0 + 500.0
        ));
        // 4 x keepalive + 10 s after the cut (at 1001 ms): nothing came, decided.
        assert_eq!(s.observe_window(), Duration::from_secs(18));
        assert!(!outcome_decided(
            &s,
            &p,
            &facts(1000.0, None, None),
            1001.0 + 17_900.0
        ));
        assert!(outcome_decided(
            &s,
            &p,
            &facts(1000.0, None, None),
            1001.0 + 18_000.0
        ));
    }

    #[test]
    fn a_late_will_ends_the_run_once_it_arrives() {
        let s = crate::scenario::load("ws-last-will").unwrap();
        let p = Profile::unknown();
        // Dropped at 3 x keepalive, will right after: the run ends then, not at the window.
        assert!(!outcome_decided(&s, &p, &facts(1000.0, None, None), 6900.0));
        let f = facts(1000.0, Some(7000.0), Some(7001.0));
        assert!(outcome_decided(&s, &p, &f, 7001.0 + 1.0));
    }

    #[test]
    fn a_will_the_profile_says_never_comes_is_not_waited_for() {
        let s = crate::scenario::load("keepalive-busy-topic").unwrap();
        let p = Profile::rumqttd();
        assert!(!awaiting_late_outcome(&s, &p, &facts(1000.0, None, None)));
        assert!(awaiting_late_outcome(
            &s,
            &Profile::unknown(),
            &facts(1000.0, None, None)
        ));
    }

    #[test]
    fn without_a_cut_the_run_waits_for_the_last_disconnect_to_reach_the_wire() {
        let s = crate::scenario::load("v5-disconnect-with-will").unwrap();
        assert!(s.cut().is_none());
        let p = Profile::rumqttd();
        let cycle = |n: u32, reported: f64, reached: Option<f64>| crate::judge::CycleSeen {
            cycle: n,
            disconnect_reported_ms: Some(reported),
            disconnect_reached_ms: reached,
            ..Default::default()
        };
        let seen = |ms: f64, will: Option<f64>| crate::judge::DisconnectSeen {
            ms,
            reason: Some(4),
            will_ms: will,
        };
        // Cycle 1's DISCONNECT and its will are in; willy reported cycle 2's at 2000 ms, but
        // the tap's record of it has not reached the facts yet.
        let mut f = Facts {
            cycles: vec![cycle(1, 1000.0, Some(1000.5)), cycle(2, 2000.0, None)],
            disconnects: vec![seen(1000.5, Some(1002.0))],
            ..Facts::default()
        };
        assert!(!outcome_decided(&s, &p, &f, 2001.0));
        // It came: now its will is waited for, up to SETTLE_MS.
        f.cycles[1].disconnect_reached_ms = Some(2000.5);
        f.disconnects.push(seen(2000.5, None));
        assert!(!outcome_decided(&s, &p, &f, 2002.0));
        f.disconnects[1].will_ms = Some(2003.0);
        assert!(outcome_decided(&s, &p, &f, 2003.5));
        // A DISCONNECT that never reaches the wire is waited for SETTLE_MS, no longer.
        let never = Facts {
            cycles: vec![cycle(1, 1000.0, None)],
            ..Facts::default()
        };
        assert!(!outcome_decided(&s, &p, &never, 1400.0));
        assert!(outcome_decided(&s, &p, &never, 1500.0));
    }

    #[test]
    fn before_the_cut_nothing_is_decided() {
        let s = crate::scenario::load("ws-last-will").unwrap();
        assert!(!outcome_decided(
            &s,
            &Profile::rumqttd(),
            &Facts::default(),
            1e9
        ));
    }

    #[test]
    fn a_flaky_monit_run_waits_for_monits_return_and_its_queued_will() {
        let s = crate::scenario::load("will-qos1-flaky-monit").unwrap();
        let p = Profile::rumqttd();
        let mut f = facts(1000.0, Some(4000.0), None);
        // Long past the will's deadline, monit still away: not decided.
        assert!(!outcome_decided(&s, &p, &f, 20_000.0));
        f.flaky_monit = Some(crate::judge::FlakyMonitSeen {
            away_ms: Some(2000.0),
            back_ms: Some(6000.0),
            session_present: Some(true),
            wills: vec![(6005.0, 1)],
        });
        assert!(!outcome_decided(&s, &p, &f, 6005.0 + 500.0));
        assert!(outcome_decided(&s, &p, &f, 6000.0 + 1000.0 + 500.0));
    }

    #[test]
    fn an_unhealed_cut_ends_the_cycles_once_willy_has_shown_its_reconnects() {
        let s = crate::scenario::load("native-last-will").unwrap();
        let failed = |n| Facts {
            attempts_failed_after_cut: n,
            ..Facts::default()
        };
        assert!(!stuck_for_good(&s, &failed(0), true));
        assert!(stuck_for_good(&s, &failed(1), true));
        assert!(
            !stuck_for_good(&s, &failed(1), false),
            "a ping timeout mid-cycle is not the end"
        );
        assert!(stuck_for_good(&s, &failed(2), false));
    }

    #[test]
    fn seed_timing_fits_in_the_time_limit() {
        let mut s = crate::scenario::load("ws-last-will").unwrap();
        s.apply(crate::scenario::Overrides {
            keepalive_s: None,
            seed_timing: true,
            observe_s: None,
        });
        // 2 cycles of 30 s, the cut, 90 s of keepalive: well inside.
        assert!(time_limit(&s) > Duration::from_secs(60 + 90 + 10));
    }
}
