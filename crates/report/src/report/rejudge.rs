//! Judging a saved run again: `unplug judge RUN.events.jsonl [--profile NAME]`.
//!
//! ```text
//!  NAME.events.jsonl --event::read_jsonl--> records (up to the runner's RunEnded)
//!     ScenarioRecorded { scenario, profile } --> Scenario, Profile (or --profile's)
//!     --Facts::from_records--> Facts --judge::evaluate--> [Check] --> Summary
//! ```
//!
//! The journal carries what the runner judged with, so nothing else is read: not the scenario
//! file (it may have changed since) and not the broker.

use anyhow::Context;

use super::Summary;
use crate::event::{Actor, Event, Record};
use crate::judge::{self, Facts};
use crate::profile::Profile;

/// A saved run judged again from its records alone. `profile` overrides the one it ran with.
pub fn rejudge(records: &[Record], profile: Option<Profile>) -> anyhow::Result<Summary> {
    let (scenario, recorded) = records
        .iter()
        .find_map(|r| match (&r.actor, &r.event) {
            (Actor::Runner, Event::ScenarioRecorded { scenario, profile }) => {
                Some((scenario.as_ref().clone(), profile.clone()))
            }
            _ => None,
        })
        .context("the journal does not record its scenario (written before `unplug judge` existed, or not by a run): run it again")?;
    let profile = match profile {
        Some(p) => p,
        None => Profile::by_name(&recorded).with_context(|| {
            format!("the journal names the profile {recorded:?}, which this unplug does not know")
        })?,
    };
    Ok(judge_records(&scenario, &profile, records, |_| true))
}

/// `records` judged as a run of `scenario` by `profile`, up to the runner's `RunEnded`; only
/// the checks `keep` keeps (all of them for a scenario run; `unplug proxy`'s journals leave
/// out those that read the client's own reports).
pub fn judge_records(
    scenario: &crate::scenario::Scenario,
    profile: &Profile,
    records: &[Record],
    keep: impl Fn(&crate::judge::CheckId) -> bool,
) -> Summary {
    // The runner judges when it records RunEnded; what follows (the broker's stop closing
    // willy's connections) is no part of the run.
    let end = records.iter().position(|r| {
        matches!(
            (&r.actor, &r.event),
            (Actor::Runner, Event::RunEnded { .. })
        )
    });
    let judged = &records[..end.map_or(records.len(), |i| i + 1)];
    let broker = judged
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { broker, .. } => Some(broker.clone()),
            _ => None,
        })
        .unwrap_or_else(|| profile.broker.clone());
    let (reason, duration_ms) = match end.map(|i| (&records[i].event, records[i].ms)) {
        Some((Event::RunEnded { reason }, ms)) => (reason.clone(), ms),
        _ => (
            "the journal ends before the run did".to_string(),
            judged.last().map_or(0.0, |r| r.ms),
        ),
    };
    // A fleet's checks are its own (every will, once, in the window); the harness's own
    // figures were measured live and are not in the records.
    let fleet = scenario
        .fleet
        .as_ref()
        .map(|_| crate::judge::fleet::FleetFacts::from_records(scenario, judged));
    let facts = match fleet {
        Some(_) => Facts::default(),
        None => Facts::from_records(scenario, judged),
    };
    let checks: Vec<judge::Check> = match &fleet {
        Some(f) => judge::judge_findings(scenario, profile, f.findings(scenario, profile)),
        None => judge::evaluate(scenario, profile, &facts),
    }
    .into_iter()
    .filter(|c| keep(&c.name))
    .collect();
    let started_at = records.first().map_or_else(chrono::Utc::now, |r| r.t);
    let allowed = match fleet {
        Some(_) => Default::default(),
        None => judge::allowed_windows(scenario, profile, &facts, &checks),
    };
    let mut summary = Summary::new(
        scenario,
        &broker,
        started_at,
        &facts,
        checks,
        &reason,
        duration_ms,
    );
    summary.timing_model = profile.timing_model.clone();
    summary.allowed = allowed;
    // The run's id, where the journal records it (runs since 2026-12-07).
    if let Some(id) = records.iter().find_map(|r| match &r.event {
        Event::RunIdentified { run_id } => Some(run_id.clone()),
        _ => None,
    }) {
        summary.run_id = id;
    }
    summary.fleet = fleet.map(|f| f.figures(scenario, profile));
    if end.is_none() {
        summary.mark_incomplete(None, Some(reason));
    } else if summary.was_interrupted() {
        // Its checks judge a partial journal, as the runner's did: no pass.
        summary.interrupted = true;
        summary.pass = false;
    }
    summary
}

/// The profile `--profile` names, if any.
pub fn profile_named(profile: Option<&str>) -> anyhow::Result<Option<Profile>> {
    profile
        .map(|name| {
            Profile::by_name(name)
                .with_context(|| format!("no profile is called {name:?} (see `unplug profiles`)"))
        })
        .transpose()
}
