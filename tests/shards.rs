//! `--partition K/N`, `--start-at` and `unplug merge` (issue 16, item 5): two shards of a suite,
//! merged, give the table one unpartitioned suite of the same scenarios gives; bad input is
//! refused with exit 2. Real runs of four short scenarios on the in-process broker.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

/// Four short built-in scenarios (1.5-2.5 s each): a will on a v5 DISCONNECT, none on a normal
/// one, a closed and a reset connection.
const SCENARIOS: [&str; 4] = [
    "v5-disconnect-normal",
    "v5-disconnect-with-will",
    "close",
    "reset",
];

fn suite(out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["suite", "--out"])
        .arg(out)
        .args(extra)
        .args(SCENARIOS)
        .stdin(Stdio::null());
    c
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run's name, status, verdict, and its checks' names and statuses.
type Verdict = (String, String, bool, Vec<(String, String)>);

/// What of a combined JSON does not depend on timing: each run's [`Verdict`], in order.
fn verdicts(json: &Path) -> Vec<Verdict> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let checks = r["summary"]["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["summary"]["pass"].as_bool().unwrap(),
                checks,
            )
        })
        .collect()
}

/// SUITE.md's rows without the measured milliseconds (columns 4-6).
fn table_without_times(md: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(md)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().to_string())
                .enumerate()
                .filter(|(i, _)| !(4..=6).contains(i))
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

#[test]
fn two_shards_merged_give_the_table_of_one_suite() {
    let dir = out_dir("shards-merge");
    let (s1, s2, all, merged) = (
        dir.join("shard-1"),
        dir.join("shard-2"),
        dir.join("all"),
        dir.join("merged"),
    );
    // The shards start together, 2 s from now; the unpartitioned suite beside them.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let mut children: Vec<_> = [
        suite(&s1, &["--partition", "1/2", "--start-at", &at]),
        suite(&s2, &["--partition", "2/2", "--start-at", &at]),
        suite(&all, &["--json", all.join("suite.json").to_str().unwrap()]),
    ]
    .into_iter()
    .map(|mut c| {
        c.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    })
    .collect();
    // Each suite ends on its own (its runs are bounded); wait_with_output waits for it.
    let outs: Vec<Output> = children
        .drain(..)
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert_eq!(code(o), 0, "{}", stderr(o));
    }
    // Round-robin: shard 1 has the plan's runs 0 and 2, shard 2 runs 1 and 3.
    for (d, want) in [(&s1, [0, 2]), (&s2, [1, 3])] {
        let m: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("SHARD.json")).unwrap()).unwrap();
        let idx: Vec<u64> = m["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect();
        assert_eq!(idx, want, "{m}");
        assert_eq!(m["plan"].as_array().unwrap().len(), 4);
        for r in m["runs"].as_array().unwrap() {
            let summary = d.join(r["summary"].as_str().unwrap());
            let s: Value =
                serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
            assert_eq!(s["run_id"], r["run_id"]);
        }
        assert_eq!(table_without_times(&d.join("SUITE.md")).len(), 2 + 2);
    }

    let o = unplug(&[
        "merge",
        merged.to_str().unwrap(),
        s1.to_str().unwrap(),
        s2.to_str().unwrap(),
        "--json",
        merged.join("suite.json").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        table_without_times(&merged.join("SUITE.md")),
        table_without_times(&all.join("SUITE.md"))
    );
    let (m, a) = (
        verdicts(&merged.join("suite.json")),
        verdicts(&all.join("suite.json")),
    );
    assert_eq!(m, a);
    assert_eq!(
        m.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        SCENARIOS
    );
    for f in [
        "SUITE.svg",
        "index.html",
        "close.summary.json",
        "reset.events.jsonl",
    ] {
        assert!(merged.join(f).is_file(), "{f} not in the merge");
    }
    let index = std::fs::read_to_string(merged.join("index.html")).unwrap();
    assert!(index.contains("4 runs, 0 failed"), "{index}");

    // Refused: a shard given twice (its runs named), a shard missing, a shard as the output.
    let o = unplug(&[
        "merge",
        dir.join("m2").to_str().unwrap(),
        s1.to_str().unwrap(),
        s1.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than one shard: v5-disconnect-normal")
            && stderr(&o).contains("close (in"),
        "{}",
        stderr(&o)
    );
    let o = unplug(&[
        "merge",
        dir.join("m3").to_str().unwrap(),
        s2.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("v5-disconnect-normal, close")
            && stderr(&o).contains("shards not given: 1/2"),
        "{}",
        stderr(&o)
    );
    let o = unplug(&[
        "merge",
        dir.join("m4").to_str().unwrap(),
        s2.to_str().unwrap(),
        "--allow-missing",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let md = std::fs::read_to_string(dir.join("m4/SUITE.md")).unwrap();
    assert_eq!(md.matches("missing: no shard").count(), 2, "{md}");
    let o = unplug(&[
        "merge",
        s1.to_str().unwrap(),
        s1.to_str().unwrap(),
        s2.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    // Not a shard: an unpartitioned suite's directory has no SHARD.json.
    let o = unplug(&[
        "merge",
        dir.join("m5").to_str().unwrap(),
        all.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("SHARD.json"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_partition_or_start_is_refused_before_anything_runs() {
    let dir = out_dir("shards-refused");
    let out = dir.join("out");
    for bad in ["0/2", "3/2", "1/0", "2", "a/b", "1/2/3"] {
        for cmd in ["suite", "compare", "conformance"] {
            let o = unplug(&[cmd, "--partition", bad, "--out", out.to_str().unwrap()]);
            assert_eq!(code(&o), 2, "{cmd} --partition {bad}: {}", stderr(&o));
            assert!(stderr(&o).contains("--partition"), "{}", stderr(&o));
        }
    }
    let ahead = (chrono::Utc::now() + chrono::Duration::minutes(11)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .timestamp()
        .to_string();
    for at in [ahead.as_str(), past.as_str(), "tomorrow"] {
        for cmd in [
            &["suite", "close"][..],
            &["compare", "close", "--brokers", "builtin"][..],
            &["scenario", "close"][..],
        ] {
            let mut args = cmd.to_vec();
            args.extend(["--start-at", at, "--out", out.to_str().unwrap()]);
            let o = unplug(&args);
            assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains("start-at"), "{}", stderr(&o));
        }
    }
    // Nothing ran.
    assert!(!out.join("close.summary.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
