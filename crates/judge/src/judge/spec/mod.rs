//! The spec checks, one file per family. Each returns [`Finding`]s: whether the spec holds, with
//! no word on the broker; [`crate::judge::evaluate`] reads them against the profile once.
//!
//! ```text
//!  (scenario, profile's allowances, facts) --spec_checks--> [Finding { id, holds, expected, actual }]
//!     design.rs    clean-disconnect, unaccounted-message: the run was the experiment it claims
//!     will.rs      will, will-timing, will-delay, will-on-disconnect, retained-will, ...
//!     keepalive.rs keepalive-drop
//!     delivery.rs  delivery-qos, queued-delivery, dup-on-resend, no-qos-upgrade, ...
//!     session.rs   a flaky monit's session, a twin's takeover, a left-open cycle's takeover
//!     faults.rs    fault-applied, will-prompt, no-broker-drop, client-detect, attempts-*
//!     layers.rs    idle-timeout-cut, will-after-idle-cut, no-idle-timeout-cut, server-keepalive,
//!                  ws-pings-not-keepalive, ws-pong-timeout
//! ```

pub mod delivery;
pub mod design;
pub mod faults;
pub mod keepalive;
pub mod layers;
pub mod session;
pub mod will;

use super::facts::Facts;
use super::id::CheckId;
use super::timing;
use crate::profile::Profile;
use crate::scenario::Scenario;

/// What a spec check found, before any broker's profile is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub id: CheckId,
    /// The normative statement it tests, where there is one.
    pub spec: Option<String>,
    /// Whether the spec holds in this run.
    pub holds: bool,
    pub expected: String,
    pub actual: String,
}

pub(crate) fn finding(
    id: CheckId,
    spec: Option<&str>,
    holds: bool,
    expected: String,
    actual: String,
) -> Finding {
    Finding {
        id,
        spec: spec.map(str::to_string),
        holds,
        expected,
        actual,
    }
}

/// "never" said with how long the run looked: `observed for 18.3 s after willy's last packet`.
pub(crate) fn observed(f: &Facts, from_ms: f64) -> String {
    match f.observed_until_ms {
        Some(end) => format!(
            "observed for {:.1} s after willy's last packet",
            (end - from_ms) / 1000.0
        ),
        None => "the run ended before it was observed".into(),
    }
}

pub(crate) fn ms(x: Option<f64>) -> String {
    x.map_or("never".to_string(), |v| format!("{v:.0} ms"))
}

/// The spec checks alone, in the order the summary lists them: `holds` is whether the spec
/// holds. The profile's allowances widen the timing windows; its deviations are not read here.
pub fn spec_checks(s: &Scenario, p: &Profile, f: &Facts) -> Vec<Finding> {
    // Every check below measures against the keepalive that binds: the server's, when its
    // CONNACK set one (layers.rs says which, with the figures).
    let effective;
    let s = match layers::effective_keepalive(s, f) {
        Some(k) => {
            effective = Scenario {
                keepalive: k,
                ..s.clone()
            };
            &effective
        }
        None => s,
    };
    let mut checks = Vec::new();
    checks.extend(design::clean_disconnect(f));
    checks.extend(design::fault_cycles(s, f));
    checks.extend(design::unaccounted_message(f));
    checks.extend(session::left_open_checks(s, f));
    match (s.disconnect, &s.will) {
        (Some(d), Some(_)) => checks.push(will::will_on_disconnect(d, f)),
        (None, Some(w)) => checks.extend(will::no_will_after_clean_disconnect(w, f)),
        _ => {}
    }
    if let (true, Some(w)) = (s.late_subscriber, &s.will) {
        checks.push(will::retained_will(w, f));
    }
    if let Some(d) = &f.delivery {
        checks.extend(delivery::delivery_checks(s, d));
    }
    if s.monit.qos > 0 {
        checks.push(delivery::no_qos_upgrade(s, f));
    }
    checks.extend(layers::server_keepalive_check(s, p, f));
    let Some(cut) = s.cut() else { return checks };
    if f.cut_at_ms.is_none() {
        checks.push(faults::fault_not_applied(cut));
        return checks;
    }
    checks.push(will::will(s, f));

    // [MQTT-3.1.2-24]: only when the cut silences willy for 1.5 x keepalive.
    let healed_early = cut
        .heal_after
        .is_some_and(|h| timing::healed_before_bound(h, s.keepalive));
    if let Some(t) = s.takeover {
        checks.extend(session::takeover_checks(s, t, f));
    } else if cut.kind.silences_client() && !healed_early {
        if let Some(last) = f.reference_ms() {
            checks.push(keepalive::keepalive_drop(s, p, f, last));
            // A flaky monit was away when the will was published: when it got it says nothing
            // of when the broker published it (its own checks judge that).
            if s.expect.will && s.monit.flaky.is_none() {
                checks.push(will::will_timing(s, p, f, last));
                checks.extend(will::will_delay_check(s, p, f));
            }
        }
    }
    if let Some(m) = &f.flaky_monit {
        checks.extend(session::flaky_monit_checks(s, m, f));
    }
    checks.extend(faults::fault_checks(s, f));
    checks.extend(layers::layer_checks(s, p, f));
    checks
}
