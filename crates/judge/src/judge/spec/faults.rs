//! The fault catalog's checks: what each kind of fault implies for the will, the broker's
//! close and willy's own detection.

use super::{finding, ms, Finding};
use crate::judge::facts::*;
use crate::judge::id::CheckId;
use crate::judge::timing::{self, PROMPT_MS};
use crate::scenario::{Fault, Scenario};

/// Does willy's client have to notice the first fault by itself, and how?
pub(crate) enum Detection {
    /// Nothing to notice, or willy cannot (crashed, frozen).
    None,
    /// It gets the RST or FIN at once.
    Prompt,
    /// Only its missing PINGRESP (or the broker's close) tells it.
    Ping,
    /// Nothing goes wrong for it: no error at all.
    NoError,
}

pub(crate) fn detection(s: &Scenario) -> Detection {
    use crate::scenario::FaultKind as K;
    let Some(cut) = s.cut() else {
        return Detection::None;
    };
    let (lo, _) = timing::client_ping_window(s.keepalive);
    let healed_before =
        |h: Option<std::time::Duration>| h.is_some_and(|h| h.as_secs_f64() * 1000.0 < lo);
    // The ping window is rumqttc's; a driver's library notices on its own schedule, which
    // the run measures (client_detect_ms) and the driver tests bound.
    if s.client.is_driver() && matches!(cut.kind, K::Blackhole { .. } | K::Drop { .. }) {
        return if healed_before(cut.heal_after) {
            Detection::NoError
        } else {
            Detection::None
        };
    }
    match &cut.kind {
        K::Reset | K::Close | K::TlsClose { .. } => Detection::Prompt,
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

/// The fault catalog's checks: what each kind of fault implies for the will, the broker's
/// close and willy's own detection.
pub(crate) fn fault_checks(s: &Scenario, f: &Facts) -> Vec<Finding> {
    let mut checks = Vec::new();
    let (Some(cut), Some(cut_ms)) = (s.cut(), f.cut_at_ms) else {
        return checks;
    };
    checks.extend(will_prompt(s, f, cut, cut_ms));
    checks.extend(no_broker_drop(s, f, cut));
    checks.extend(will_after_client_close(s, f, cut));
    checks.extend(client_detect(s, f, cut, cut_ms));
    checks.extend(attempts_during_faults(s, f));
    checks
}

/// `d` is known and within lo..=hi.
fn in_window(d: Option<f64>, lo: f64, hi: f64) -> bool {
    d.is_some_and(|d| d >= lo && d <= hi)
}

/// How long after `from` `x` came, when both did.
fn after(x: Option<f64>, from: Option<f64>) -> Option<f64> {
    Some(x? - from?)
}

/// "N ms after what", or "never".
fn said(d: Option<f64>, what: &str) -> String {
    match d {
        Some(d) => format!("{d:.0} ms after {what}"),
        None => "never".to_string(),
    }
}

/// A close the broker sees (RST, FIN, the kernel closing a killed process's socket) ends
/// the network connection without DISCONNECT: the will goes out then [MQTT-3.1.2-8].
fn will_prompt(s: &Scenario, f: &Facts, cut: &Fault, cut_ms: f64) -> Option<Finding> {
    if !(cut.kind.ends_at_once() && s.will.is_some() && s.expect.will) {
        return None;
    }
    let d = after(f.will_received_ms, Some(cut_ms));
    Some(finding(
        CheckId::WillPrompt,
        Some("MQTT-3.1.2-8"),
        in_window(d, 0.0, PROMPT_MS),
        format!(
            "the will reaches monit within {PROMPT_MS:.0} ms of the {}",
            cut.kind.label()
        ),
        said(d, "the fault"),
    ))
}

/// The broker hears willy all along (its PINGREQs, or everything, only later or slower):
/// it must not close the connection [MQTT-3.1.2-24 sets a floor, not a licence].
fn no_broker_drop(s: &Scenario, f: &Facts, cut: &Fault) -> Option<Finding> {
    use crate::scenario::FaultKind as K;
    let broker_hears = match &cut.kind {
        K::Blackhole { direction } => !direction.up(),
        K::Latency { delay, jitter, .. } => (*delay + *jitter) * 2 < s.keepalive,
        K::Bandwidth { .. } => true,
        K::Drop { direction, packets } => !(direction.up() && packets.contains(&12)),
        _ => false,
    } || (cut.kind.silences_client()
        && cut
            .heal_after
            .is_some_and(|h| timing::healed_before_bound(h, s.keepalive)));
    if !broker_hears {
        return None;
    }
    // After willy's DISCONNECT the broker closes too: that is no drop.
    let first = match (f.broker_drop_ms, f.client_close_ms) {
        _ if f.broker_closed_after_disconnect() => false,
        (Some(b), Some(c)) => b < c,
        (Some(_), None) => true,
        _ => false,
    };
    Some(finding(
        CheckId::NoBrokerDrop,
        Some("MQTT-3.1.2-24"),
        !first,
        "the broker keeps willy's connection until willy closes it: it still hears willy".into(),
        match (f.broker_drop_ms, f.client_close_ms) {
            (Some(b), c) if first => format!(
                "the broker closed it at {b:.0} ms (willy's side: {})",
                ms(c)
            ),
            (Some(b), _) if f.broker_closed_after_disconnect() => {
                format!("the broker closed it at {b:.0} ms, after willy's DISCONNECT reached it")
            }
            (b, c) => format!("broker side closed {}, willy's side {}", ms(b), ms(c)),
        },
    ))
}

/// willy's own FIN without DISCONNECT (half-open downstream, a lost PINGRESP): the will
/// follows that close at once.
/// (An idle timeout's close has its own check, layers.rs.)
fn will_after_client_close(s: &Scenario, f: &Facts, cut: &Fault) -> Option<Finding> {
    use crate::scenario::FaultKind as K;
    if !(s.expect.will
        && s.will.is_some()
        && !cut.kind.ends_at_once()
        && !cut.kind.silences_client()
        && !matches!(cut.kind, K::IdleTimeout { .. }))
    {
        return None;
    }
    let d = after(f.will_received_ms, f.client_close_ms);
    Some(finding(
        CheckId::WillAfterClientClose,
        Some("MQTT-3.1.2-8"),
        in_window(d, 0.0, PROMPT_MS),
        format!("the will reaches monit within {PROMPT_MS:.0} ms of willy closing its socket"),
        said(d, "willy closed its side"),
    ))
}

/// When willy itself finds out.
fn client_detect(s: &Scenario, f: &Facts, cut: &Fault, cut_ms: f64) -> Option<Finding> {
    let detect = after(f.client_detect_ms, Some(cut_ms));
    match detection(s) {
        Detection::None => None,
        Detection::Prompt => Some(finding(
            CheckId::ClientDetect,
            None,
            in_window(detect, 0.0, PROMPT_MS),
            format!(
                "willy's client reports the {} within {PROMPT_MS:.0} ms",
                cut.kind.label()
            ),
            said(detect, "the fault"),
        )),
        Detection::NoError => Some(finding(
            CheckId::NoClientError,
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
                    .any(|a| f.cut_at_ms.is_some_and(|c| a.started_ms > c)) =>
        {
            None
        }
        Detection::Ping
            if f.detect_attempt_started_ms.is_some() || f.disconnected_before_detect =>
        {
            Some(next_attempt_detect(s, f, cut))
        }
        Detection::Ping => {
            let (lo, hi) = timing::client_ping_window(s.keepalive);
            Some(finding(
                CheckId::ClientDetect,
                None,
                in_window(detect, lo, hi),
                format!(
                    "willy's client notices {lo:.0}..{hi:.0} ms after the cut (keepalive {} s: the next PINGREQ is due without a PINGRESP, rumqttc AwaitPingResp)",
                    s.keepalive.as_secs()
                ),
                said(detect, "the cut"),
            ))
        }
    }
}

/// willy's cycle ended (its DISCONNECT went into the cut) before the ping could fail: what
/// fails is its next connection attempt, after the connect timeout.
fn next_attempt_detect(s: &Scenario, f: &Facts, cut: &Fault) -> Finding {
    let d = after(f.client_detect_ms, f.detect_attempt_started_ms);
    let held = cut.new_connections == crate::scenario::NewConnections::Hang;
    // A link taken down (rumqttc's driver in willy's namespace): the kernel may give
    // up on the route first (EHOSTUNREACH, ~0.3 s here) or let the SYN hang until
    // rumqttc's connection timeout; either way no later than that timeout.
    let link = cut.layer == crate::cut::CutLayer::Link;
    let (lo, hi, why) = if link {
        let (_, hi) = timing::connect_timeout_window(s.connect_timeout);
        (
            0.0,
            hi,
            "a link down: no route to host, or rumqttc's connection timeout",
        )
    } else if held {
        let (lo, hi) = timing::connect_timeout_window(s.connect_timeout);
        (lo, hi, "rumqttc's connection timeout")
    } else {
        (0.0, PROMPT_MS, "refused")
    };
    finding(
        CheckId::ClientDetect,
        None,
        in_window(d, lo, hi),
        format!(
            "willy disconnected before its ping could fail; its next attempt fails {lo:.0}..{hi:.0} ms after it starts ({why})"
        ),
        said(d, "the attempt started"),
    )
}

/// What connection attempts meet while a fault refuses or holds new connections.
fn attempts_during_faults(s: &Scenario, f: &Facts) -> Vec<Finding> {
    use crate::scenario::FaultKind as K;
    use crate::scenario::NewConnections as N;
    let mut checks = Vec::new();
    for (i, fault) in s.faults.iter().enumerate() {
        let Some(span) = f.faults.iter().find(|fs| fs.n == i as u32 + 1) else {
            continue;
        };
        let until = span.healed_ms.unwrap_or(f64::INFINITY);
        let during: Vec<&Attempt> = f
            .attempts
            .iter()
            .filter(|a| a.started_ms >= span.applied_ms && a.ended_ms <= until)
            .collect();
        let (name, lo, hi, what) = match fault.new_connections {
            N::Refuse => (CheckId::AttemptsRefused, 0.0, PROMPT_MS, "refused at once"),
            N::Hang if matches!(fault.kind, K::Hang | K::Refuse) => {
                let (lo, hi) = timing::connect_timeout_window(s.connect_timeout);
                (
                    CheckId::AttemptsHang,
                    lo,
                    hi,
                    "time out after rumqttc's connection timeout",
                )
            }
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
        checks.push(finding(
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

/// The run never reached the fault's trigger: nothing after it can be judged.
pub(crate) fn fault_not_applied(cut: &crate::scenario::Fault) -> Finding {
    finding(
        CheckId::FaultApplied,
        None,
        false,
        format!(
            "the {} fault in cycle {} at {:?}",
            cut.kind.label(),
            cut.cycle,
            cut.trigger
        ),
        "the run never reached the fault's trigger".into(),
    )
}
