//! The command line as a user meets it: help, list, bad input, a scenario file of one's own.

mod common;

use common::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let o = unplug(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("unplug scenario ws-last-will"), "{text}");
    assert!(text.contains("Exit codes"), "{text}");
}

#[test]
fn list_names_the_seed_scenarios() {
    let o = unplug(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    for name in [
        "native-no-will",
        "native-last-will",
        "ws-no-will",
        "ws-last-will",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[test]
fn unknown_scenario_is_exit_2_with_the_closest_name() {
    let o = unplug(&[
        "scenario",
        "ws-last-wil",
        "--out",
        out_dir("unknown").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("did you mean `ws-last-will`"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

/// Run `unplug scenario DIR/mine.toml` for a file with `text`, in a fresh directory.
fn run_file(test: &str, text: &str) -> std::process::Output {
    let dir = out_dir(test);
    let path = dir.join("mine.toml");
    std::fs::write(&path, text).unwrap();
    unplug(&[
        "scenario",
        path.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ])
}

#[test]
fn bad_scenario_file_is_exit_2_naming_file_line_and_key() {
    let o = run_file("badfile", "transport = \"tcp\"\nkeepalive_s = 2\ncycles = 2\nconnected_for_ms = 100\nidle_ms = 100\nreconnect_ms = 100\n[[faults]]\nkind = \"blackhole\"\ncycle = 3\n");
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("mine.toml:9") && e.contains("faults.cycle") && e.contains("beyond"),
        "{e}"
    );
}

#[test]
fn missing_scenario_file_is_exit_2() {
    let o = unplug(&["scenario", "/nonexistent/x.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/x.toml"), "{}", stderr(&o));
}

#[test]
fn bad_flag_value_is_exit_2() {
    let o = unplug(&["scenario", "ws-last-will", "--keepalive", "0"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A `--broker` value that does not parse is refused with exit 2, and the refusal never shows
/// the password it carried (clap's own error prints the argument as typed).
#[test]
fn a_bad_broker_url_is_exit_2_without_its_password() {
    for bad in [
        "tcp://u:hunter2@[::1",
        "tcp://u:hunter2@h:99999",
        "quic://u:hunter2@h",
        "u:hunter2@localhost:1883",
    ] {
        let o = unplug(&["scenario", "native-no-will", "--broker", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = stderr(&o);
        assert!(e.contains("--broker"), "{bad}: {e}");
        assert!(!e.contains("hunter2"), "{bad}: {e}");
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("hunter2"),
            "{bad}"
        );
    }
}

#[test]
fn a_scenario_file_written_by_someone_else_runs_the_same_way() {
    let dir = out_dir("own-file");
    let path = dir.join("short-cut.toml");
    std::fs::write(
        &path,
        r#"description = "two cycles, cut in the second right after connecting"
transport = "tcp"
keepalive_s = 1
cycles = 2
connected_for_ms = 500
idle_ms = 200
reconnect_ms = 200
[will]
topic = "test/connected"
payload = "gone"
[[faults]]
kind = "blackhole"
cycle = 2
trigger = "connected"
"#,
    )
    .unwrap();
    let (code, s) = run_scenario(path.to_str().unwrap(), &dir, &[]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    assert_eq!(s["scenario"], "short-cut");
    assert!(num(&s, "will_received_ms").is_some());
}

#[test]
fn suite_runs_scenarios_in_parallel_and_prints_a_table() {
    let dir = out_dir("suite");
    let o = unplug(&[
        "suite",
        "--jobs",
        "2",
        "--out",
        dir.to_str().unwrap(),
        "native-no-will",
        "ws-last-will",
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{table}\n{}", stderr(&o));
    assert!(
        table.contains("native-no-will") && table.contains("ws-last-will"),
        "{table}"
    );
    assert!(dir.join("SUITE.md").exists());
    assert!(dir.join("ws-last-will.summary.json").exists());
}

#[test]
fn v5_only_keys_on_a_3_1_1_scenario_are_exit_2_naming_the_key() {
    let o = run_file("v5-key", "transport = \"tcp\"\nkeepalive_s = 2\ncycles = 1\nconnected_for_ms = 100\nidle_ms = 100\nreconnect_ms = 100\ndisconnect_reason = 4\n");
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("mine.toml:7")
            && e.contains("disconnect_reason")
            && e.contains("protocol = \"5\""),
        "{e}"
    );
}
