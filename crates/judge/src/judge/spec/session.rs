//! Sessions: a flaky monit's queued will, a twin taking willy's client id over, willy's next
//! cycle taking over a connection it left open.

use super::{finding, Finding};
use crate::judge::facts::*;
use crate::judge::id::CheckId;
use crate::judge::timing::{PROMPT_MS, QUEUED_WAIT_MS};
use crate::scenario::Scenario;

/// monit was away (its connection closed, its session kept) when the broker dropped willy:
/// - [MQTT-3.1.2-5], [MQTT-4.4.0-1]: the will, a QoS 1 message for monit's subscription, is kept
///   in monit's session and sent when monit reconnects;
/// - [MQTT-3.2.2-2]: the broker says it kept the session (Session Present 1);
/// - [MQTT-3.8.4-6]: at the lower of the will's QoS [MQTT-3.1.2-14] and monit's granted QoS;
/// - [MQTT-4.3.2-1]: once: monit acknowledged it, so there is nothing to send again.
pub(crate) fn flaky_monit_checks(s: &Scenario, m: &FlakyMonitSeen, f: &Facts) -> Vec<Finding> {
    let mut checks = Vec::new();
    let Some(w) = &s.will else { return checks };
    let at = |x: Option<f64>| x.map_or("never".to_string(), |v| format!("{v:.0} ms"));
    checks.push(finding(
        CheckId::MonitSessionPresent,
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
    checks.push(finding(
        CheckId::WillQueuedForSubscriber,
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
    checks.push(finding(
        CheckId::WillQos,
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
    checks.push(finding(
        CheckId::WillOnce,
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
pub(crate) fn takeover_checks(
    s: &Scenario,
    t: crate::scenario::Takeover,
    f: &Facts,
) -> Vec<Finding> {
    let mut checks = Vec::new();
    let (Some(start), Some(ack)) = (f.twin_connecting_ms, f.twin_connack_ms) else {
        checks.push(finding(
            CheckId::Takeover,
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
    checks.push(finding(
        CheckId::TakeoverClose,
        Some("MQTT-3.1.4-2"),
        close.is_some_and(|d| d >= lo && d <= PROMPT_MS),
        format!("the broker closes willy's connection when the twin connects: {lo:.0}..{PROMPT_MS:.0} ms from the twin's CONNACK"),
        said(close),
    ));
    if s.will.is_some() {
        let will = rel(f.will_received_ms);
        checks.push(finding(
            CheckId::TakeoverWill,
            Some("MQTT-3.1.2-8"),
            will.is_some_and(|d| d >= lo && d <= PROMPT_MS),
            format!("willy's will reaches monit {lo:.0}..{PROMPT_MS:.0} ms from the twin's CONNACK: the broker closed willy without a DISCONNECT"),
            said(will),
        ));
    }
    checks
}

/// A cycle willy left open (`[willy] leave_open`) is taken over by its next cycle's CONNECT,
/// same client id: the broker "MUST disconnect the existing Client" [MQTT-3.1.4-2], and since
/// that close is no DISCONNECT, the old connection's will "MUST be published"
/// [MQTT-3.1.2-8]. Both from the next cycle's start (its CONNECT follows at once) to
/// [`PROMPT_MS`] after the broker's CONNACK to it (the wire tap's, else willy's library's).
/// One finding each over every left-open cycle; none when no cycle was left open.
pub(crate) fn left_open_checks(s: &Scenario, f: &Facts) -> Vec<Finding> {
    let taken: Vec<(u32, &TakenOver)> = f
        .cycles
        .iter()
        .filter_map(|c| Some((c.cycle, c.taken_over.as_ref()?)))
        .collect();
    if taken.is_empty() {
        return Vec::new();
    }
    let connack = |t: &TakenOver| {
        t.connack_ms.or_else(|| {
            f.cycles
                .iter()
                .find(|c| c.cycle == t.by_cycle)
                .and_then(|c| c.connected_ms)
        })
    };
    // (holds, words) for one cycle's moment `at`.
    let judge = |cycle: u32, t: &TakenOver, what: &str, at: Option<f64>| -> (bool, String) {
        let (Some(start), Some(ack)) = (t.by_cycle_started_ms, connack(t)) else {
            return (
                false,
                format!(
                    "cycle {cycle}: cycle {} never got a CONNACK, so nothing took the connection over",
                    t.by_cycle
                ),
            );
        };
        match at {
            Some(x) => {
                let d = x - ack;
                let when = match d {
                    d if d.abs() < 0.5 => format!("at cycle {}'s CONNACK (within 0.5 ms)", t.by_cycle),
                    d if d < 0.0 => format!("{:.0} ms before cycle {}'s CONNACK", -d, t.by_cycle),
                    d => format!("{d:.0} ms after cycle {}'s CONNACK", t.by_cycle),
                };
                (
                    x >= start && d <= PROMPT_MS,
                    format!("cycle {cycle}: {what} {when}, at {x:.0} ms"),
                )
            }
            None => (
                false,
                format!(
                    "cycle {cycle}: {what} never came between cycle {}'s start at {start:.0} ms and {:.0} ms",
                    t.by_cycle,
                    ack + PROMPT_MS
                ),
            ),
        }
    };
    let mut checks = Vec::new();
    let closes: Vec<(bool, String)> = taken
        .iter()
        .map(|(c, t)| judge(*c, t, "the broker's close", t.closed_ms))
        .collect();
    checks.push(finding(
        CheckId::TakeoverClose,
        Some("MQTT-3.1.4-2"),
        closes.iter().all(|(ok, _)| *ok),
        format!("the broker closes each connection willy left open when its next cycle's CONNECT (same client id) arrives: from that cycle's start to {PROMPT_MS:.0} ms after its CONNACK"),
        closes.into_iter().map(|(_, w)| w).collect::<Vec<_>>().join("; "),
    ));
    if s.will.is_some() {
        let wills: Vec<(bool, String)> = taken
            .iter()
            .map(|(c, t)| judge(*c, t, "its will", t.will_ms))
            .collect();
        checks.push(finding(
            CheckId::TakeoverWill,
            Some("MQTT-3.1.2-8"),
            wills.iter().all(|(ok, _)| *ok),
            format!("each left-open connection's will reaches monit when the next cycle takes it over (no DISCONNECT was sent): from that cycle's start to {PROMPT_MS:.0} ms after its CONNACK"),
            wills.into_iter().map(|(_, w)| w).collect::<Vec<_>>().join("; "),
        ));
    }
    checks
}
