//! `unplug judge RUN.events.jsonl`: a saved run judged again from its journal alone gives the
//! verdict and every check the run itself gave. Fresh runs on the builtin broker, keepalive as
//! the scenario files set it.

mod common;

use common::{out_dir, run_scenario, unplug};
use serde_json::Value;

/// Run `name`, then judge its journal again: both summaries' verdicts and checks.
fn run_then_rejudge(name: &str) -> (Value, Value, i32, i32) {
    let out = out_dir(&format!("rejudge-{name}"));
    let (code, summary) = run_scenario(name, &out, &[]);
    let journal = out.join(format!("{name}.events.jsonl"));
    let o = unplug(&["judge", journal.to_str().unwrap(), "--json"]);
    let again: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: {e}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let _ = std::fs::remove_dir_all(&out);
    (summary, again, code, o.status.code().unwrap_or(-1))
}

fn assert_same_verdict(name: &str) {
    let (run, again, code, again_code) = run_then_rejudge(name);
    assert_eq!(again["pass"], run["pass"], "{name}: {again:#}");
    assert_eq!(again_code, code, "{name}: exit code");
    assert_eq!(again["checks"], run["checks"], "{name}");
    assert_eq!(again["timing_model"], run["timing_model"], "{name}");
    assert_eq!(again["scenario"], run["scenario"], "{name}");
}

#[test]
fn rejudging_a_keepalive_drop_reproduces_its_checks() {
    assert_same_verdict("ws-last-will");
}

#[test]
fn rejudging_a_v5_disconnect_reproduces_its_checks_and_deviations() {
    assert_same_verdict("v5-disconnect-with-will");
}

#[test]
fn rejudging_a_flaky_monit_run_reproduces_its_session_checks() {
    assert_same_verdict("will-qos1-flaky-monit");
}

#[test]
fn rejudging_a_takeover_reproduces_its_checks() {
    assert_same_verdict("client-id-takeover");
}

#[test]
fn rejudging_a_delayed_will_reproduces_its_deviations() {
    assert_same_verdict("v5-will-delay");
}

#[test]
fn a_journal_without_its_scenario_is_refused_saying_why() {
    let out = out_dir("rejudge-old-journal");
    let path = out.join("old.events.jsonl");
    std::fs::write(
        &path,
        "{\"ms\":0.0,\"t\":\"2026-01-01T00:00:00Z\",\"actor\":\"runner\",\"event\":\"run_ended\",\"reason\":\"done\"}\n",
    )
    .unwrap();
    let o = unplug(&["judge", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not record its scenario"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}
