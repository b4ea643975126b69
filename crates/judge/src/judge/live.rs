//! Facts as a run goes: the runner's control loop and the status line read them every tick.
//!
//! ```text
//!  Journal --read_fresh(cursor)--> Fresh { from, records } --LiveFacts::update--> the records
//!                                  (only what this reader has not seen)           so far
//!                                                                                   |
//!                                    only when some came: Facts::from_records <-----+
//! ```
//!
//! The reduction is the one a saved run gets ([`Facts::from_records`]), so the loop decides on
//! the facts the judge will see; what is incremental is the reading: a tick with nothing new
//! copies nothing and reduces nothing, and a tick with news copies only the news.

use super::facts::Facts;
use crate::event::{Fresh, Record};
use crate::scenario::Scenario;

/// The records a reader of a live journal has seen, and the facts they make.
pub struct LiveFacts<'s> {
    scenario: &'s Scenario,
    /// Every record so far, in the journal's (time) order.
    records: Vec<Record>,
    /// Where the last update's records begin: what [`LiveFacts::fresh`] shows.
    fresh_from: usize,
    facts: Facts,
}

impl<'s> LiveFacts<'s> {
    /// Nothing seen yet.
    pub fn new(scenario: &'s Scenario) -> LiveFacts<'s> {
        LiveFacts {
            scenario,
            records: Vec::new(),
            fresh_from: 0,
            facts: Facts::from_records(scenario, &[]),
        }
    }

    /// Take what the journal had not shown this reader; the facts are reduced again only when
    /// something came. Says whether it did.
    pub fn update(&mut self, fresh: Fresh) -> bool {
        let from = fresh.from.min(self.records.len());
        self.fresh_from = from;
        if from == self.records.len() && fresh.records.is_empty() {
            return false;
        }
        self.records.truncate(from);
        self.records.extend(fresh.records);
        self.facts = Facts::from_records(self.scenario, &self.records);
        true
    }

    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The records the last update brought (from the first place that changed).
    pub fn fresh(&self) -> &[Record] {
        &self.records[self.fresh_from..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, Event, Journal};
    use std::time::Duration;

    /// Every journal committed in results/, its records in the order the run recorded them
    /// (the file's order: the proxy's come a little late, and go in before later ones).
    fn committed_journals() -> Vec<(std::path::PathBuf, Vec<Record>)> {
        let mut paths = Vec::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.to_string_lossy().ends_with(".events.jsonl") {
                    paths.push(p);
                }
            }
        }
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                let records = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                (p, records)
            })
            .collect()
    }

    fn scenario_of(records: &[Record]) -> Option<Scenario> {
        records.iter().find_map(|r| match &r.event {
            Event::ScenarioRecorded { scenario, .. } => Some(scenario.as_ref().clone()),
            _ => None,
        })
    }

    /// `unplug proxy`'s journal: no scenario, no willy of ours (the rule of
    /// `toxi::judge::is_proxy_journal` in the binary, which this crate cannot see).
    fn is_proxy_journal(records: &[Record]) -> bool {
        !records.iter().any(|r| {
            matches!(r.event, Event::ScenarioRecorded { .. })
                || r.actor == crate::event::Actor::Willy
        })
    }

    #[test]
    fn live_facts_equal_the_facts_of_every_record_at_every_tick_of_every_committed_run() {
        let journals = committed_journals();
        assert!(journals.len() >= 100, "only {} journals", journals.len());
        let mut late = 0;
        for (path, saved) in &journals {
            if is_proxy_journal(saved) {
                // `unplug proxy`'s: no run, no control loop.
                continue;
            }
            let s = scenario_of(saved)
                .unwrap_or_else(|| panic!("{}: no ScenarioRecorded", path.display()));
            let journal = Journal::in_memory();
            let mut cursor = journal.cursor();
            let mut live = LiveFacts::new(&s);
            // The files are in time order; the proxy's wire records reach a live journal a
            // little after records stamped later (its recorder thread): replay each one after
            // the record that follows it.
            let mut arriving: Vec<&Record> = saved.iter().collect();
            let mut k = 0;
            while k + 1 < arriving.len() {
                if arriving[k].actor == Actor::Wire && arriving[k + 1].actor != Actor::Wire {
                    arriving.swap(k, k + 1);
                    k += 1;
                }
                k += 1;
            }
            // Ticks of a few records: the loop sees the journal part-way, late records and all.
            for (i, r) in arriving.into_iter().enumerate() {
                let at = journal.start() + Duration::from_secs_f64(r.ms / 1000.0);
                journal.record_at(at, r.t, r.actor, r.event.clone());
                if i % 3 != 2 && i + 1 != saved.len() {
                    continue;
                }
                let fresh = journal.read_fresh(&mut cursor);
                late += usize::from(fresh.from < live.records.len());
                live.update(fresh);
                let all = journal.records();
                assert_eq!(live.records, all, "{}: records after {i}", path.display());
                assert_eq!(
                    *live.facts(),
                    Facts::from_records(&s, &all),
                    "{}: facts after record {i}",
                    path.display()
                );
            }
            // A tick with nothing new changes nothing.
            assert!(!live.update(journal.read_fresh(&mut cursor)));
            assert!(live.fresh().is_empty());
        }
        // The proxy's late records really went in before ones the reader had.
        assert!(
            late > 0,
            "no journal had a late record: the test shows nothing"
        );
    }

    #[test]
    fn a_late_record_before_what_the_reader_has_is_fresh_again_from_its_place() {
        let journal = Journal::in_memory();
        let mut cursor = journal.cursor();
        let t0 = journal.start();
        let note = |m: &str| Event::Note {
            message: m.to_string(),
        };
        journal.record_at(
            t0 + Duration::from_millis(10),
            chrono::Utc::now(),
            Actor::Runner,
            note("a"),
        );
        journal.record_at(
            t0 + Duration::from_millis(30),
            chrono::Utc::now(),
            Actor::Runner,
            note("c"),
        );
        assert_eq!(journal.read_fresh(&mut cursor).from, 0);
        journal.record_at(
            t0 + Duration::from_millis(20),
            chrono::Utc::now(),
            Actor::Proxy,
            note("b"),
        );
        let fresh = journal.read_fresh(&mut cursor);
        assert_eq!(fresh.from, 1);
        assert_eq!(fresh.records.len(), 2);
        assert_eq!(fresh.records[0].event, note("b"));
        assert!(journal.read_fresh(&mut cursor).records.is_empty());
    }
}
