//! One scenario run N times: N independent child runs, each kept, read as a distribution.
//!
//! ```text
//!  scenario NAME --repeat N --> [ChildSpec NAME.r1 .. NAME.rN] --suite::run_specs--> [ChildRun]
//!  compare --repeat N       --> every cell N times (CELL.r1 .. CELL.rN)
//!  [ChildRun] --Repeated::of--> runs, passed, verdict, {figure: {min, p50, p90, max}},
//!                               the windows the runs' checks allowed
//!            --> NAME.repeat.json, a table, NAME.repeat.svg
//! ```
//!
//! A figure is every number of a summary whose key ends in `_ms`
//! (`will_after_last_packet_ms`, `drop_after_last_packet_ms`, `client_detect_after_cut_ms`
//! ...); a run that did not measure it leaves it out (`n` says how many did). Percentiles are
//! nearest-rank: p50 of 5 runs is the 3rd smallest, p90 the 5th.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::batch::ChildRun;

/// The name of run `k` (1-based) of `name`: `ws-last-will.r3`.
pub fn run_name(name: &str, k: u32) -> String {
    format!("{name}.r{k}")
}

/// The name `run_name` made a run of: `ws-last-will.r3` -> `ws-last-will`.
pub fn base_name(run: &str) -> &str {
    match run.rsplit_once(".r") {
        Some((base, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => run,
    }
}

/// A figure in a table cell: `p50 3005, p90 3010 (2990..3020)`; `-` when no run measured it.
pub fn cell(d: Option<&Distribution>) -> String {
    match d {
        Some(d) => format!(
            "p50 {:.0}, p90 {:.0} ({:.0}..{:.0}){}",
            d.p50,
            d.p90,
            d.min,
            d.max,
            match d.outside {
                Some(o) if o > 0 => format!(", {o} outside"),
                _ => String::new(),
            }
        ),
        None => "-".to_string(),
    }
}

/// One figure over the runs that measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// How many runs measured it.
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
    /// How many of them fell outside the window the checks allowed (when there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside: Option<usize>,
}

impl Distribution {
    /// None for no values.
    pub fn of(values: &[f64], allowed: Option<[f64; 2]>) -> Option<Distribution> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Distribution {
            n: v.len(),
            min: v[0],
            p50: rank(50.0),
            p90: rank(90.0),
            max: v[v.len() - 1],
            outside: allowed.map(|[lo, hi]| v.iter().filter(|x| **x < lo || **x > hi).count()),
        })
    }
}

/// What `NAME.repeat.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repeated {
    /// The scenario's (or the cell's) name.
    pub name: String,
    /// How many runs were asked for, and how many passed.
    pub runs: usize,
    pub passed: usize,
    /// `pass` when every run passed, `fail` when one failed, `error` when one did not finish.
    pub verdict: String,
    /// Each run's file name and status word, in order.
    pub each: Vec<(String, String)>,
    /// Every figure's distribution, by its summary key.
    pub figures: BTreeMap<String, Distribution>,
    /// The window each timing figure was judged against (the runs' `allowed`; the widest when
    /// they differ, as with a broker recognised differently).
    pub allowed: BTreeMap<String, [f64; 2]>,
}

impl Repeated {
    /// The runs of one scenario (or one cell), read as a distribution.
    pub fn of(name: &str, runs: &[&ChildRun]) -> Repeated {
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut allowed: BTreeMap<String, [f64; 2]> = BTreeMap::new();
        for s in runs.iter().filter_map(|r| r.summary.as_ref()) {
            if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(s) {
                for (k, v) in m.iter().filter(|(k, _)| k.ends_with("_ms")) {
                    if let Some(x) = v.as_f64() {
                        values.entry(k.clone()).or_default().push(x);
                    }
                }
            }
            for (k, [lo, hi]) in &s.allowed {
                let w = allowed.entry(k.clone()).or_insert([*lo, *hi]);
                *w = [w[0].min(*lo), w[1].max(*hi)];
            }
        }
        let figures = values
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), Distribution::of(v, allowed.get(k).copied())?)))
            .collect();
        let words: Vec<&str> = runs.iter().map(|r| r.status_word()).collect();
        let passed = words.iter().filter(|w| **w == "pass").count();
        let verdict = if passed == runs.len() {
            "pass"
        } else if words.iter().all(|w| *w == "pass" || *w == "fail") {
            "fail"
        } else {
            "error"
        };
        Repeated {
            name: name.to_string(),
            runs: runs.len(),
            passed,
            verdict: verdict.to_string(),
            each: runs
                .iter()
                .map(|r| (r.name.clone(), r.status_word().to_string()))
                .collect(),
            figures,
            allowed,
        }
    }

    /// The table rows: figure, n, min, p50, p90, max, the allowed window, how many outside.
    /// Timing figures with a window first, then the rest.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let ms = |x: f64| format!("{x:.0}");
        let mut keys: Vec<&String> = self.figures.keys().collect();
        keys.sort_by_key(|k| (!self.allowed.contains_key(*k), (*k).clone()));
        keys.into_iter()
            .map(|k| {
                let d = &self.figures[k];
                let (window, outside) = match (self.allowed.get(k), d.outside) {
                    (Some([lo, hi]), Some(o)) => (format!("{lo:.0}..{hi:.0}"), o.to_string()),
                    _ => ("-".to_string(), "-".to_string()),
                };
                vec![
                    k.trim_end_matches("_ms").to_string(),
                    d.n.to_string(),
                    ms(d.min),
                    ms(d.p50),
                    ms(d.p90),
                    ms(d.max),
                    window,
                    outside,
                ]
            })
            .collect()
    }

    /// The line above the table: `ws-last-will x5: 5 of 5 passed: PASS`.
    pub fn headline(&self) -> String {
        format!(
            "{} x{}: {} of {} passed: {}",
            self.name,
            self.runs,
            self.passed,
            self.runs,
            self.verdict.to_uppercase()
        )
    }
}

/// The repeat table's header (figures in ms).
pub const HEADER: [&str; 8] = [
    "figure (ms)",
    "n",
    "min",
    "p50",
    "p90",
    "max",
    "allowed",
    "outside",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_name_reads_back_as_its_base() {
        assert_eq!(
            base_name(&run_name("ws-last-will.builtin.ws", 12)),
            "ws-last-will.builtin.ws"
        );
        assert_eq!(base_name("x.rumqttc.proxy"), "x.rumqttc.proxy");
        assert_eq!(base_name("x.r"), "x.r");
    }

    #[test]
    fn percentiles_are_nearest_rank_and_count_what_falls_outside_the_window() {
        let d = Distribution::of(
            &[3005.0, 3001.0, 3250.0, 2990.0, 3400.0],
            Some([2950.0, 3250.0]),
        )
        .unwrap();
        assert_eq!(
            d,
            Distribution {
                n: 5,
                min: 2990.0,
                p50: 3005.0,
                p90: 3400.0,
                max: 3400.0,
                outside: Some(1),
            }
        );
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let d = Distribution::of(&ten, None).unwrap();
        assert_eq!((d.p50, d.p90, d.outside), (5.0, 9.0, None));
        assert!(Distribution::of(&[], None).is_none());
    }

    #[test]
    fn runs_read_as_one_verdict_with_every_figure() {
        use crate::report::batch::RunStatus;
        use crate::report::Summary;
        let run = |name: &str, will: f64, pass: bool| {
            let mut s = Summary::blank("rumqttd", 1000.0);
            s.will_after_last_packet_ms = Some(will);
            s.allowed
                .insert("will_after_last_packet_ms".into(), [2950.0, 3250.0]);
            s.pass = pass;
            ChildRun {
                name: name.into(),
                exit: Some(i32::from(!pass)),
                summary: Some(s),
                error: String::new(),
                status: RunStatus::Finished,
            }
        };
        let runs = [run("a.r1", 3001.0, true), run("a.r2", 3300.0, false)];
        let r = Repeated::of("a", &runs.iter().collect::<Vec<_>>());
        assert_eq!((r.runs, r.passed, r.verdict.as_str()), (2, 1, "fail"));
        let w = &r.figures["will_after_last_packet_ms"];
        assert_eq!((w.min, w.max, w.outside), (3001.0, 3300.0, Some(1)));
        assert_eq!(r.figures["duration_ms"].n, 2);
        // The judged figure first, with its window.
        assert_eq!(
            r.rows()[0],
            [
                "will_after_last_packet",
                "2",
                "3001",
                "3001",
                "3300",
                "3300",
                "2950..3250",
                "1"
            ]
        );
        assert_eq!(r.headline(), "a x2: 1 of 2 passed: FAIL");
    }
}
