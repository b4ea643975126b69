//! Input that used to pass validation and fail late (issue 11, defect 5): big wills, NUL in a
//! topic, scenario paths that are not regular files. Each is refused at once with exit 2 and
//! the limit named, or (a will that is big but valid) runs.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A two-cycle scenario cut in cycle 2, with this will; `transport` may carry a protocol line
/// after it (`tcp\"\nprotocol = \"5`).
fn will_scenario(dir: &Path, name: &str, transport: &str, topic: &str, payload: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "transport = \"{transport}\"\nkeepalive_s = 1\ncycles = 2\nconnected_for_ms = 300\nidle_ms = 300\nreconnect_ms = 300\n[will]\ntopic = \"{topic}\"\npayload = \"{payload}\"\n[[faults]]\nkind = \"blackhole\"\ncycle = 2\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_12_kb_will_reaches_monit_over_tcp_ws_and_mqtt_5() {
    let dir = out_dir("big-will");
    let payload = "x".repeat(12_000);
    for (tag, transport) in [
        ("tcp", "tcp"),
        ("ws", "ws"),
        ("v5", "tcp\"\nprotocol = \"5"),
    ] {
        let name = format!("big-{tag}");
        let path = will_scenario(&dir, &name, transport, "test/big", &payload);
        // Bounded well under the run's time limit (44 s), which is where the old code ended.
        let o = unplug_within(
            &["scenario", &path, "--quiet", "--out", dir.to_str().unwrap()],
            Duration::from_secs(30),
        );
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(o.status.code(), Some(0), "{:?}", failed_checks(&s));
        assert!(num(&s, "will_received_ms").is_some());
    }
}

#[test]
fn a_will_payload_over_65535_bytes_is_exit_2_naming_the_limit() {
    let dir = out_dir("huge-will");
    let path = will_scenario(&dir, "huge", "tcp", "test/big", &"x".repeat(65_536));
    let o = unplug_within(
        &["scenario", &path, "--out", dir.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("huge.toml:9")
            && e.contains("will.payload")
            && e.contains("65536 bytes")
            && e.contains("at most 65535"),
        "{e}"
    );
    assert!(!dir.join("huge.log.inprogress").exists());
}

#[test]
fn a_nul_in_a_topic_is_exit_2_naming_the_spec_clause() {
    let dir = out_dir("nul-topic");
    let path = will_scenario(&dir, "nul", "tcp", "test/a\\u0000b", "x");
    let o = unplug_within(
        &["scenario", &path, "--out", dir.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("nul.toml:8") && e.contains("will.topic") && e.contains("MQTT-1.5.3-2"),
        "{e}"
    );
}

#[test]
fn a_fifo_a_device_or_a_directory_as_the_scenario_is_exit_2_at_once() {
    let dir = out_dir("not-regular");
    let fifo = dir.join("s.toml");
    common::mkfifo(&fifo);
    let dir_arg = format!("{}/", dir.display());
    for (path, kind) in [
        (fifo.to_str().unwrap(), "a FIFO"),
        ("/dev/zero", "a character device"),
        (dir_arg.as_str(), "a directory"),
    ] {
        // The old code waited forever for the FIFO's writer and read /dev/zero without end.
        let o = unplug_within(
            &["scenario", path, "--out", dir.to_str().unwrap()],
            Duration::from_secs(10),
        );
        assert_eq!(o.status.code(), Some(2), "{path}");
        let e = stderr(&o);
        assert!(e.contains(path) && e.contains(kind), "{e}");
    }
    // suite refuses it before starting anything, too.
    let o = unplug_within(
        &[
            "suite",
            fifo.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_scenario_file_over_1_mib_is_exit_2() {
    let dir = out_dir("big-file");
    let path = dir.join("big.toml");
    let mut text = "# padding\n".repeat(110_000);
    text += "transport = \"tcp\"\n";
    std::fs::write(&path, text).unwrap();
    let o = unplug_within(
        &[
            "scenario",
            path.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("larger than 1048576 bytes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn list_json_names_every_builtin_scenario() {
    let o = unplug(&["list", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = v.as_array().unwrap();
    let text = String::from_utf8(unplug(&["list"]).stdout).unwrap();
    // The text table: a header, a rule, then one line per scenario.
    assert_eq!(list.len(), text.lines().count() - 2);
    let ws = list.iter().find(|s| s["name"] == "ws-last-will").unwrap();
    assert_eq!(ws["transport"], "ws");
    assert_eq!(ws["will"], true);
    assert_eq!(ws["faults"][0], "blackhole");
}
