//! The judge: pure functions of (scenario, broker profile, records).
//!
//! ```text
//!  records --facts::Facts::from_records--> Facts   (live.rs: the same, as a run goes)
//!  (scenario, profile, facts) --spec::spec_checks--> [Finding { id: CheckId, holds, ... }]
//!  [Finding] + profile's deviations --evaluate (each status computed once)--> [Check]
//!  timing.rs: the spec's arithmetic (1.5 x keepalive, will delay, allowances), for all
//! ```
//!
//! A check tests the spec only. The profile then says whether a failure is a known deviation
//! of that broker (`deviation`, not a failure of the run) and flags a listed deviation that did
//! not happen (`unexpected-pass`).
//!
//! No I/O and no clock: a saved run can be judged again from its JSONL, and every rule is
//! tested on hand-made record lists.

pub mod facts;
pub use crate::check_id as id;
pub mod layers;
pub mod live;
pub mod spec;
pub use crate::timing;
pub mod fleet;
pub mod verdict;

pub use facts::*;
pub use id::CheckId;
pub use live::LiveFacts;
pub use spec::faults::client_detect_expected;
pub use verdict::{Check, Status};

/// The broker profile the judge judges by (its data; re-exported so that what only judges,
/// like a fleet's figures, names the judge and not the broker).
pub use crate::profile::Profile;
use crate::scenario::{Protocol, Scenario};

/// Judge a run: the spec checks, read against the profile's known deviations.
pub fn evaluate(s: &Scenario, p: &Profile, f: &Facts) -> Vec<Check> {
    spec::spec_checks(s, p, f)
        .into_iter()
        .map(|finding| judged(s, p, finding))
        .collect()
}

/// Findings made elsewhere (a fleet's, `fleet`), read against the profile like any.
pub fn judge_findings(s: &Scenario, p: &Profile, findings: Vec<spec::Finding>) -> Vec<Check> {
    findings.into_iter().map(|f| judged(s, p, f)).collect()
}

/// One finding read against the profile: its status, decided here and only here.
fn judged(s: &Scenario, p: &Profile, f: spec::Finding) -> Check {
    let listed = p.deviation(&f.id, s);
    let status = match (f.holds, listed) {
        (true, None) => Status::Pass,
        (false, None) => Status::Fail,
        (false, Some(_)) => Status::Deviation,
        (true, Some(d)) if d.applies.certain() => Status::UnexpectedPass,
        (true, Some(_)) => Status::Pass,
    };
    let mut actual = f.actual;
    if let (Some(d), Status::Deviation | Status::UnexpectedPass) = (listed, status) {
        actual += &format!(
            " [{} lists this as a known deviation: {} ({})]",
            p.broker, d.reason, d.evidence
        );
    }
    Check {
        name: f.id,
        spec: f.spec,
        status,
        pass: status != Status::Fail,
        expected: f.expected,
        actual,
    }
}

/// How long after the broker closes willy the will is due in this scenario
/// ([`timing::will_delay_ms`]).
pub fn will_delay_ms(s: &Scenario) -> f64 {
    timing::will_delay_ms(
        s.protocol == Protocol::V5,
        s.will.as_ref().and_then(|w| w.delay_s),
        s.session_expiry_s,
    )
}

/// The will deadline of this run so far: after this, a will that has not come is not coming.
pub fn will_deadline_ms(s: &Scenario, p: &Profile, f: &Facts) -> Option<f64> {
    timing::will_deadline_ms(
        f.reference_ms().or(f.cut_at_ms),
        s.keepalive,
        p.will_late_ms(s.transport),
        will_delay_ms(s),
    )
}

/// When willy's client should notice a cut ([`timing::client_ping_window`]).
pub fn client_ping_window(s: &Scenario) -> (f64, f64) {
    timing::client_ping_window(s.keepalive)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod layers_tests;

/// The windows this run's timing checks allowed, by the summary figure each one judges
/// (`will_after_last_packet_ms` -> [lo, hi] ms): what `--repeat` sets a distribution against.
/// Only for the checks the run has. (client-detect's window depends on how willy learns of
/// the fault: its check says it in words.)
pub fn allowed_windows(
    s: &Scenario,
    p: &Profile,
    f: &Facts,
    checks: &[Check],
) -> std::collections::BTreeMap<String, [f64; 2]> {
    // The checks measured against the keepalive that binds (spec::spec_checks).
    let effective = spec::layers::effective_keepalive(s, f).map(|k| Scenario {
        keepalive: k,
        ..s.clone()
    });
    let s = effective.as_ref().unwrap_or(s);
    let has = |id: CheckId| checks.iter().any(|c| c.name == id);
    let mut out = std::collections::BTreeMap::new();
    if has(CheckId::KeepaliveDrop) {
        let (lo, hi) = spec::keepalive::drop_window(s, p);
        out.insert("drop_after_last_packet_ms".to_string(), [lo, hi]);
    }
    if has(CheckId::WillTiming) {
        let (lo, hi) = spec::will::will_window(s, p);
        out.insert("will_after_last_packet_ms".to_string(), [lo, hi]);
    }
    out
}
