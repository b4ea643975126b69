//! The conformance table: every spec check of the conformance scenarios, per broker.
//!
//! ```text
//!  CONFORMANCE_SCENARIOS x brokers --compare::plan--> children (one broker each)
//!  summaries --table--> | check | spec | scenario | builtin | mosquitto | ...
//!                        cells: pass / FAIL / deviation / unexpected-pass / - (not run)
//! ```
//!
//! A `deviation` cell is a spec violation the broker's profile documents, with its evidence; the
//! reasons are listed under the table so every cell is explained.

use crate::report::{table, Summary};
use crate::suite::ChildRun;

/// What `unplug conformance` runs: the will's life in MQTT 3.1.1 and 5, and the session
/// around a disconnect.
pub const CONFORMANCE_SCENARIOS: &[&str] = &[
    "native-last-will",
    "native-no-will",
    "ws-last-will",
    "v5-last-will",
    "v5-disconnect-with-will",
    "v5-disconnect-with-will-properties",
    "v5-disconnect-normal",
    "v5-disconnect-normal-short",
    "v5-will-delay",
    "v5-session-expiry-shorter-than-delay",
    "v5-will-delay-no-session",
    "v5-will-to-v4-subscriber",
    "retained-will",
    "keepalive-busy-topic",
    "persistent-session-qos1",
    "persistent-session-qos2",
    "qos-downgrade",
    "client-id-takeover",
    "will-qos1-flaky-monit",
];

/// One row: a check of one scenario, and its status on each broker (None: not run there).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub check: String,
    pub spec: String,
    pub cells: Vec<Option<String>>,
}

/// Build the rows from (scenario, broker column, summary) triples, in first-seen order.
pub fn rows(brokers: &[String], runs: &[(String, usize, &Summary)]) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    for (scenario, col, s) in runs {
        for c in &s.checks {
            let i = match out
                .iter()
                .position(|r| r.scenario == *scenario && r.check == c.name.to_string())
            {
                Some(i) => i,
                None => {
                    out.push(Row {
                        scenario: scenario.clone(),
                        check: c.name.to_string(),
                        spec: c.spec.clone().unwrap_or_default(),
                        cells: vec![None; brokers.len()],
                    });
                    out.len() - 1
                }
            };
            let status = c.status.as_str();
            out[i].cells[*col] = Some(if status == "fail" {
                "FAIL".to_string()
            } else {
                status.to_string()
            });
        }
    }
    out
}

/// A run that has no verdict (`status`: error, interrupted, not-run) fills its broker's cells of
/// its scenario with that word, never leaving them to read as "not run there" or as a pass;
/// a scenario no broker finished gets a row of its own.
pub fn mark_missing(rows: &mut Vec<Row>, brokers: usize, missing: &[(String, usize, &str)]) {
    for (scenario, col, status) in missing {
        let mut any = false;
        for r in rows.iter_mut().filter(|r| r.scenario == *scenario) {
            r.cells[*col] = Some(status.to_string());
            any = true;
        }
        if !any {
            let mut cells = vec![None; brokers];
            cells[*col] = Some(status.to_string());
            rows.push(Row {
                scenario: scenario.clone(),
                check: "-".to_string(),
                spec: String::new(),
                cells,
            });
        }
    }
}

pub fn header(brokers: &[String]) -> Vec<String> {
    let mut h = vec![
        "scenario".to_string(),
        "check".to_string(),
        "spec".to_string(),
    ];
    h.extend(brokers.iter().cloned());
    h
}

pub fn cells(rows: &[Row]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            let mut v = vec![r.scenario.clone(), r.check.clone(), r.spec.clone()];
            v.extend(
                r.cells
                    .iter()
                    .map(|c| c.clone().unwrap_or_else(|| "-".to_string())),
            );
            v
        })
        .collect()
}

/// CONFORMANCE.md: the table, then every deviation and failure with what was measured.
pub fn markdown(
    brokers: &[String],
    rows: &[Row],
    runs: &[(String, usize, &Summary)],
    errors: &[&ChildRun],
) -> String {
    let h = header(brokers);
    let h: Vec<&str> = h.iter().map(|s| s.as_str()).collect();
    let mut out = String::from(
        "# Conformance: the will's life and the session around a disconnect, per broker\n\n",
    );
    out += "Each cell is a spec check judged from a real run (`unplug conformance`). `deviation`: the spec does not hold, as the broker's profile documents with evidence; `FAIL`: it does not hold and nothing explains it; `-`: not run.\n\n";
    out += &table::render_markdown(&h, &cells(rows));
    out += "\n## What the non-passing cells measured\n\n";
    for (scenario, col, s) in runs {
        for c in s.checks.iter().filter(|c| c.status.as_str() != "pass") {
            out += &format!(
                "- **{}**, {scenario}, `{}`: expected {}; {}\n",
                brokers[*col], c.name, c.expected, c.actual
            );
        }
    }
    for e in errors {
        out += &format!(
            "- {} has no verdict: {}\n",
            e.name,
            e.problem().unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{Check, Status};

    fn summary(checks: Vec<(&str, Status)>) -> Summary {
        let sc = crate::scenario::load("v5-disconnect-normal").unwrap();
        let f = crate::judge::Facts::default();
        let mut s = Summary::new(&sc, "b", chrono::Utc::now(), &f, Vec::new(), "done", 1.0);
        s.checks = checks
            .into_iter()
            .map(|(n, st)| Check {
                name: n.parse().unwrap(),
                spec: Some("MQTT-3.14.4-3".into()),
                status: st,
                pass: st != Status::Fail,
                expected: "e".into(),
                actual: "a".into(),
            })
            .collect();
        s
    }

    #[test]
    fn one_row_per_check_one_column_per_broker() {
        let brokers = vec!["builtin".to_string(), "mosquitto".to_string()];
        let a = summary(vec![("will-on-disconnect e0020400", Status::Deviation)]);
        let b = summary(vec![("will-on-disconnect e0020400", Status::Pass)]);
        let runs = vec![("v5-x".to_string(), 0, &a), ("v5-x".to_string(), 1, &b)];
        let r = rows(&brokers, &runs);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].cells,
            vec![Some("deviation".to_string()), Some("pass".to_string())]
        );
        let md = markdown(&brokers, &r, &runs, &[]);
        assert!(
            md.contains(
                "| v5-x | will-on-disconnect e0020400 | MQTT-3.14.4-3 | deviation | pass |"
            ),
            "{md}"
        );
        assert!(md.contains("**builtin**, v5-x"), "{md}");
    }

    #[test]
    fn a_run_without_a_verdict_fills_its_cells_with_why() {
        let brokers = vec!["builtin".to_string(), "mosquitto".to_string()];
        let a = summary(vec![("will", Status::Pass)]);
        let mut r = rows(&brokers, &[("s".to_string(), 0, &a)]);
        mark_missing(
            &mut r,
            2,
            &[
                ("s".to_string(), 1, "error"),
                ("t".to_string(), 0, "interrupted"),
            ],
        );
        assert_eq!(
            cells(&r)[0],
            vec!["s", "will", "MQTT-3.14.4-3", "pass", "error"]
        );
        assert_eq!(cells(&r)[1], vec!["t", "-", "", "interrupted", "-"]);
    }

    #[test]
    fn a_broker_that_did_not_run_a_check_shows_a_dash() {
        let brokers = vec!["builtin".to_string(), "mosquitto".to_string()];
        let a = summary(vec![("will", Status::Fail)]);
        let r = rows(&brokers, &[("s".to_string(), 0, &a)]);
        assert_eq!(
            cells(&r)[0],
            vec!["s", "will", "MQTT-3.14.4-3", "FAIL", "-"]
        );
    }
}
