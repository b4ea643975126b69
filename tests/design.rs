//! A run checks that it was the experiment it claims: each designed step seen on the wire.
//!
//! ```text
//!  willy = cmd:tests/fixtures/drivers/reset-on-disconnect.py (says "disconnected", resets)
//!    -> builtin rumqttd through the proxy; cut in cycle 2
//!    -> exit 1: clean-disconnect names cycle 1 and the missing DISCONNECT, in the output,
//!       the summary, the log and the picture; no-will-after-disconnect claims no cycle;
//!       the will that answered the reset is labelled "the will of cycle 1"
//! ```

mod common;

use std::path::Path;

use common::*;

/// Two short cycles at keepalive 2 s; the cut in cycle 2 after monit got `true`.
#[test]
fn a_client_that_reports_a_clean_disconnect_but_resets_fails_clean_disconnect_naming_the_cycle() {
    let out = out_dir("design-reset");
    let path = out.join("reset-willy.toml");
    std::fs::write(
        &path,
        short_cut_scenario("a client that says it disconnected but reset", 2, 2, 300),
    )
    .unwrap();
    let driver =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drivers/reset-on-disconnect.py");
    let willy = format!("cmd:{}", driver.display());
    let o = unplug(&[
        "scenario",
        path.to_str().unwrap(),
        "--willy",
        &willy,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    let want = "cycle 1: willy's library reported a clean disconnect at";
    let said = "but no DISCONNECT reached the broker (the connection was reset at";
    let fail_line = stdout
        .lines()
        .find(|l| l.contains("FAIL") && l.contains("clean-disconnect"))
        .unwrap_or_else(|| panic!("no clean-disconnect failure in the output:\n{stdout}"));
    assert!(
        fail_line.contains(want) && fail_line.contains(said),
        "{fail_line}"
    );
    // The broker answered the reset with the will, and the sentence says so.
    assert!(fail_line.contains("answers that reset"), "{fail_line}");

    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("reset-willy.summary.json")).unwrap(),
    )
    .unwrap();
    let checks = summary["checks"].as_array().unwrap();
    let clean = checks
        .iter()
        .find(|c| c["name"] == "clean-disconnect")
        .unwrap();
    assert_eq!(clean["status"], "fail");
    assert!(clean["actual"].as_str().unwrap().contains(want), "{clean}");
    assert_eq!(summary["missing_steps"][0]["cycle"], 1, "{summary:#}");
    // No check claims the cycle it could not judge: cycle 1 had no DISCONNECT on the wire, and
    // cycle 2's went into the cut.
    assert!(
        checks
            .iter()
            .all(|c| c["name"] != "no-will-after-disconnect"),
        "{checks:#?}"
    );
    let log = std::fs::read_to_string(out.join("reset-willy.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("a step of the design did not happen: cycle 1")),
        "{log}"
    );
    // The will that answered the reset is labelled as one, with its cycle, in the log and the
    // picture; every message monit got is accounted for.
    assert!(
        log.lines()
            .any(|l| l.contains("(test/connected: false) was the will of cycle 1")),
        "{log}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "unaccounted-message" && c["status"] == "pass"),
        "{checks:#?}"
    );
    let svg = std::fs::read_to_string(out.join("reset-willy.svg")).unwrap();
    assert!(svg.contains("cycle 1: no DISCONNECT on the wire"), "{svg}");
    assert!(svg.contains("will (cycle 1): false"), "{svg}");
    let _ = std::fs::remove_dir_all(&out);
}
