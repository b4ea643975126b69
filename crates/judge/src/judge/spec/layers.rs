//! Checks of the layers beside MQTT's keepalive: an intermediary's idle timeout.
//!
//! ```text
//!  idle timeout < keepalive: idle-timeout-cut (the box closes a client that never missed a
//!                            ping), will-after-idle-cut [MQTT-3.1.2-8]
//!  idle timeout >= keepalive: no-idle-timeout-cut (willy's PINGREQs keep the box's timer fed)
//! ```

use super::{finding, ms, Finding};
use crate::judge::facts::Facts;
use crate::judge::id::CheckId;
use crate::judge::timing::{self, PROMPT_MS};
use crate::profile::Profile;
use crate::scenario::{FaultKind, Scenario};

/// The keepalive the checks measure against when it is not the scenario's: the Server Keep
/// Alive of willy's CONNACK.
pub(crate) fn effective_keepalive(s: &Scenario, f: &Facts) -> Option<std::time::Duration> {
    let k = timing::effective_keepalive(s.keepalive, f.layers.server_keepalive_s);
    (k != s.keepalive).then_some(k)
}

/// [MQTT-3.1.2-21]: willy uses the Server Keep Alive the CONNACK carries, else its own; run
/// when the scenario asks the broker for a maximum or the CONNACK carried one. `s` already has
/// the keepalive that binds.
pub(crate) fn server_keepalive_check(s: &Scenario, p: &Profile, f: &Facts) -> Option<Finding> {
    let server = f.layers.server_keepalive_s;
    if s.broker.max_keepalive_s.is_none() && server.is_none() {
        return None;
    }
    let (lo, hi) = timing::first_ping_window(s.keepalive);
    let first = f.layers.first_ping_after_ms;
    let bound = timing::keepalive_bound_ms(s.keepalive);
    let expected = match server {
        Some(k) => format!(
            "the CONNACK's Server Keep Alive {k} s replaces the keepalive willy sent: its first PINGREQ {lo:.0}..{hi:.0} ms after the CONNACK, and the broker's close judged against {} = {:.1} s [MQTT-3.2.2-21]",
            timing::BOUND_WORDS,
            bound / 1000.0
        ),
        None => format!(
            "with no Server Keep Alive in the CONNACK both sides keep willy's {} s [MQTT-3.2.2-22]: its first PINGREQ {lo:.0}..{hi:.0} ms after the CONNACK, the close judged against {} = {:.1} s",
            s.keepalive.as_secs(),
            timing::BOUND_WORDS,
            bound / 1000.0
        ),
    };
    let why_not = match (
        server,
        p.cannot.iter().find(|c| c.setting == "max_keepalive"),
    ) {
        (None, Some(c)) => format!(
            "; {} cannot set max_keepalive: {} ({})",
            p.broker, c.reason, c.evidence
        ),
        _ => String::new(),
    };
    let actual = format!(
        "CONNACK: {}; first PINGREQ {}{why_not}",
        server.map_or("no Server Keep Alive".into(), |k| format!(
            "Server Keep Alive {k} s"
        )),
        first.map_or("never".into(), |d| format!("{d:.0} ms after it")),
    );
    Some(finding(
        CheckId::ServerKeepalive,
        Some("MQTT-3.1.2-21"),
        first.is_some_and(|d| d >= lo && d <= hi),
        expected,
        actual,
    ))
}

/// The WebSocket layer's checks, when willy pings at it: pings are not MQTT control packets,
/// so a broker that hears nothing else still closes willy at 1.5 x keepalive
/// [MQTT-3.1.2-24] (keepalive-drop has the bound; this says what the WebSocket layer did
/// meanwhile); and willy gives up when its pongs stop.
fn ws_checks(s: &Scenario, f: &Facts, checks: &mut Vec<Finding>) {
    let (Some(every), Some(cut), Some(cut_ms)) = (s.willy.ws_ping, s.cut(), f.cut_at_ms) else {
        return;
    };
    let l = &f.layers;
    if cut.kind.silences_client() {
        let until = f.broker_drop_ms.unwrap_or(f64::INFINITY);
        let pings = l.ws_pings_after_cut.iter().filter(|t| **t < until).count();
        let pongs = l.ws_pongs_after_cut.iter().filter(|t| **t < until).count();
        let last_ping = l.ws_pings_after_cut.iter().rfind(|t| **t < until);
        checks.push(finding(
            CheckId::WsPingsNotKeepalive,
            Some("MQTT-3.1.2-24"),
            f.broker_drop_ms.is_some() && pings > 0,
            format!(
                "willy's WebSocket pings (every {} ms) keep crossing and are answered, yet the broker closes it on MQTT's keepalive alone: WebSocket pings are not MQTT control packets",
                every.as_millis()
            ),
            match f.broker_drop_ms {
                Some(d) => format!(
                    "{pings} pings and {pongs} pongs crossed between the cut and the broker's close at {d:.0} ms ({} after willy's last MQTT packet); the last ping {} before the close",
                    f.reference_ms().map_or("?".into(), |r| format!("{:.2} s", (d - r) / 1000.0)),
                    last_ping.map_or("none".into(), |p| format!("{:.0} ms", d - p))
                ),
                None => format!("the broker never closed willy; {pings} pings and {pongs} pongs crossed after the cut"),
            },
        ));
    }
    if let Some(t) = s.willy.ws_pong_timeout {
        // The first ping after the cut goes out within one interval; its pong is due `t` later.
        let (lo, hi) = (
            t.as_secs_f64() * 1000.0 - timing::EARLY_MS,
            (t + every).as_secs_f64() * 1000.0 + timing::CLIENT_LATE_MS,
        );
        let pongs_stop = matches!(&cut.kind, FaultKind::WsDrop { direction, frames }
            if direction.down() && frames & crate::tap::ws_kinds::PONG != 0);
        if pongs_stop {
            let d = l.ws_pong_timeout_ms.map(|x| x - cut_ms);
            checks.push(finding(
                CheckId::WsPongTimeout,
                None,
                d.is_some_and(|d| d >= lo && d <= hi),
                format!(
                    "with its pongs swallowed, willy gives the connection up {lo:.0}..{hi:.0} ms after the cut (pong timeout {} ms, a ping every {} ms), before MQTT's keepalive ({} s) could tell it",
                    t.as_millis(),
                    every.as_millis(),
                    s.keepalive.as_secs()
                ),
                d.map_or("never".into(), |d| format!("{d:.0} ms after the cut")),
            ));
        }
    }
}

/// The idle timeout's checks, when the scenario has one; the WebSocket layer's.
pub(crate) fn layer_checks(s: &Scenario, _p: &Profile, f: &Facts) -> Vec<Finding> {
    let mut checks = Vec::new();
    ws_checks(s, f, &mut checks);
    let Some(idle) = s.faults.iter().find_map(|x| match x.kind {
        FaultKind::IdleTimeout { idle, .. } => Some(idle),
        _ => None,
    }) else {
        return checks;
    };
    let ka = s.keepalive;
    let secs = |ms: f64| format!("{:.2} s", ms / 1000.0);
    let cut = f.layers.idle_cut.as_ref();
    if !timing::idle_timeout_cuts(idle, ka) {
        checks.push(finding(
            CheckId::NoIdleTimeoutCut,
            None,
            cut.is_none(),
            format!(
                "willy's PINGREQ every {} s keeps bytes crossing within the {} idle timeout: the intermediary never closes the connection",
                ka.as_secs(),
                secs(idle.as_secs_f64() * 1000.0)
            ),
            match cut {
                Some(c) => format!("closed at {:.0} ms ({})", c.ms, c.how),
                None => "never closed by the idle timeout".into(),
            },
        ));
        return checks;
    }
    let (lo, hi) = timing::idle_cut_window(idle);
    let bound = timing::keepalive_bound_ms(ka);
    let silent = cut.and_then(|c| Some(c.ms - c.last_packet_ms?));
    let client_silent = cut.and_then(|c| Some(c.ms - c.last_client_packet_ms?));
    // Cut on time, and willy had not broken its keepalive: its own silence was under 1.5 x
    // keepalive when the box closed it.
    let holds = silent.is_some_and(|d| d >= lo && d <= hi)
        && client_silent.is_some_and(|d| d < bound - timing::EARLY_MS);
    checks.push(finding(
        CheckId::IdleTimeoutCut,
        None,
        holds,
        format!(
            "the intermediary closes willy's connection {lo:.0}..{hi:.0} ms after its last byte (idle timeout {}), although willy never broke its keepalive ({} s: silent < {} = {})",
            secs(idle.as_secs_f64() * 1000.0),
            ka.as_secs(),
            timing::BOUND_WORDS,
            secs(bound)
        ),
        match cut {
            Some(c) => format!(
                "closed at {:.0} ms, {} after the last packet either way; willy's last packet ({}) {} before: {}",
                c.ms,
                silent.map_or("?".into(), secs),
                c.last_client_packet_kind.as_deref().unwrap_or("none"),
                client_silent.map_or("?".into(), secs),
                c.how
            ),
            None => "the intermediary never closed it".into(),
        },
    ));
    if s.will.is_some() && s.expect.will {
        let d = cut.and_then(|c| Some(c.will_ms? - c.ms));
        checks.push(finding(
            CheckId::WillAfterIdleCut,
            Some("MQTT-3.1.2-8"),
            d.is_some_and(|d| (0.0..=PROMPT_MS).contains(&d)),
            format!(
                "the broker sees the close without DISCONNECT and publishes the will within {PROMPT_MS:.0} ms, though willy never misbehaved"
            ),
            match (cut, d) {
                (Some(c), Some(d)) => format!(
                    "will {d:.0} ms after the close, {} after willy's last packet ({} is {}); willy's client noticed {}",
                    client_silent.map_or("?".into(), |x| secs(x + d)),
                    timing::BOUND_WORDS,
                    secs(bound),
                    c.client_detect_ms
                        .map_or("never".into(), |t| format!("{:.0} ms after the close", t - c.ms))
                ),
                (Some(c), None) => format!("no will after the close at {}", ms(Some(c.ms))),
                (None, _) => "no close, no will".into(),
            },
        ));
    }
    checks
}
