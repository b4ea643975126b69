//! What reaches a subscriber, and at which QoS: willy's subscription, monit's true.

use super::{finding, Finding};
use crate::judge::facts::*;
use crate::judge::id::CheckId;
use crate::scenario::Scenario;

/// What willy's subscription got of pubby's messages:
/// - [MQTT-3.8.4-6]: each arrives at the lower of the publish QoS and the granted QoS;
/// - [MQTT-3.2.2-2]: a broker that kept willy's session (Clean Session 0) says so in CONNACK;
/// - [MQTT-3.1.2-5], [MQTT-4.4.0-1]: QoS 1 and 2 messages published while willy was away are
///   kept in its session and sent (again, if they were in flight) when it reconnects;
/// - [MQTT-4.3.3-2]: at QoS 2, none is delivered twice.
pub(crate) fn delivery_checks(s: &Scenario, d: &Delivery) -> Vec<Finding> {
    let mut checks = Vec::new();
    let Some(q) = d.effective_qos(s) else {
        return checks;
    };
    checks.push(qos_check(s, d, q));
    let queued = !s.clean_session
        && s.publisher
            .as_ref()
            .is_some_and(|p| p.from == crate::scenario::PublishFrom::Cut)
        && s.cut().is_some_and(|c| c.heal_after.is_some());
    if !queued {
        return checks;
    }
    checks.push(finding(
        CheckId::SessionPresent,
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
    let dups = d.duplicates();
    checks.push(queued_delivery_check(d, q, &dups));
    if !d.resent.is_empty() {
        checks.push(dup_on_resend_check(d));
    }
    if q == 2 {
        checks.push(finding(
            CheckId::NoDuplicates,
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

/// [MQTT-3.8.4-6]: each of pubby's messages arrives at willy at QoS `q`, the lower of the
/// publish QoS and the granted QoS.
fn qos_check(s: &Scenario, d: &Delivery, q: u8) -> Finding {
    let pub_qos = s.publisher.as_ref().map_or(0, |p| p.qos);
    let wrong: Vec<String> = d
        .received
        .iter()
        .filter(|r| r.qos != q)
        .map(|r| format!("{} at QoS {}", r.payload, r.qos))
        .collect();
    finding(
        CheckId::DeliveryQos,
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
    )
}

/// [MQTT-3.1.2-5], [MQTT-4.4.0-1]: every QoS `q` message published while willy was cut off
/// reaches it once it reconnects with its session. `dups`: the messages received twice.
fn queued_delivery_check(d: &Delivery, q: u8, dups: &[String]) -> Finding {
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
    finding(
        CheckId::QueuedDelivery,
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
    )
}

/// [MQTT-3.3.1-1], [MQTT-4.4.0-1]: a PUBLISH sent again on willy's new connection has DUP 1.
fn dup_on_resend_check(d: &Delivery) -> Finding {
    let plain: Vec<String> = d
        .resent
        .iter()
        .filter(|r| !r.dup)
        .map(|r| r.packet_id.to_string())
        .collect();
    finding(
        CheckId::DupOnResend,
        Some("MQTT-3.3.1-1, MQTT-4.4.0-1"),
        plain.is_empty(),
        "a PUBLISH sent again on willy's new connection (its first copy unacknowledged) has DUP 1"
            .into(),
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
    )
}

/// [MQTT-3.8.4-6]: a message is delivered at the lower of its publish QoS and the granted QoS,
/// so willy's `true` (published at QoS 0) reaches a QoS 1 or 2 subscriber at QoS 0.
pub(crate) fn no_qos_upgrade(s: &Scenario, f: &Facts) -> Finding {
    let upgraded: Vec<String> = f
        .status_true_qos
        .iter()
        .filter(|(_, q)| *q != 0)
        .map(|(t, q)| format!("QoS {q} at {t:.0} ms"))
        .collect();
    finding(
        CheckId::NoQosUpgrade,
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
