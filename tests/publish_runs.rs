//! `[tap] publishes = "runs"` (`--publishes runs`): the wire tap records QoS 0 PUBLISHes as
//! runs, and the checks, which expand a run back into its PUBLISHes, give the verdicts they
//! give with a record each. Fresh runs on the builtin broker.

mod common;

use common::{out_dir, run_scenario};
use serde_json::Value;

/// Each check's name and status.
fn verdicts(summary: &Value) -> Vec<(String, String)> {
    summary["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {summary:#}"))
        .iter()
        .map(|c| (c["name"].to_string(), c["status"].to_string()))
        .collect()
}

fn assert_same_verdicts_in_both_modes(name: &str) {
    let each_out = out_dir(&format!("runs-each-{name}"));
    let runs_out = out_dir(&format!("runs-runs-{name}"));
    let (each_code, each) = run_scenario(name, &each_out, &["--publishes", "each"]);
    let (runs_code, runs) = run_scenario(name, &runs_out, &["--publishes", "runs"]);
    assert_eq!(verdicts(&runs), verdicts(&each), "{name}: {runs:#}");
    assert_eq!(runs["pass"], each["pass"], "{name}");
    assert_eq!(runs_code, each_code, "{name}: exit code");
    // The runs run really recorded runs, and no QoS 0 PUBLISH alone.
    let journal = std::fs::read_to_string(runs_out.join(format!("{name}.events.jsonl"))).unwrap();
    assert!(
        journal.contains(r#""event":"publish_run""#),
        "{name}: no publish_run record"
    );
    assert!(
        !journal
            .lines()
            .any(|l| l.contains(r#""kind":"PUBLISH""#) && l.contains(r#""qos":0"#)),
        "{name}: a QoS 0 PUBLISH recorded alone"
    );
    let each_journal =
        std::fs::read_to_string(each_out.join(format!("{name}.events.jsonl"))).unwrap();
    assert!(!each_journal.contains(r#""event":"publish_run""#), "{name}");
    let _ = std::fs::remove_dir_all(&each_out);
    let _ = std::fs::remove_dir_all(&runs_out);
}

/// willy's own PUBLISHes are paired with monit's copies (no-will-after-disconnect).
#[test]
fn a_last_will_run_recorded_as_runs_gives_the_same_verdicts() {
    assert_same_verdicts_in_both_modes("ws-last-will");
}

/// The broker's PUBLISHes to a silent willy are counted (keepalive on a busy topic).
#[test]
fn a_busy_topic_run_recorded_as_runs_gives_the_same_verdicts() {
    assert_same_verdicts_in_both_modes("keepalive-busy-topic");
}
