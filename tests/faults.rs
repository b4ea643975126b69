//! Every fault of the catalog, for real: each scenario runs in its own process (its own broker
//! on free ports) at keepalive 2 s, and the summary's moments are held to bounds from the spec
//! and from how rumqttc 0.25.1 notices a dead connection.
//!
//! - A close the broker sees (RST, FIN, a killed process's socket) publishes the will at once
//!   [MQTT-3.1.2-8]: within 100 ms here (loopback; the seed saw "close to 100 ms" on a network).
//! - A client silent for 1.5 x keepalive is closed [MQTT-3.1.2-24]: 2950..3250 ms after its
//!   last packet with rumqttd's profile.
//! - rumqttc pings every keepalive and fails when the next ping is due without a PINGRESP:
//!   (ka, 2 ka] after the cut, 1950..4100 ms here.

mod common;

use common::*;
use serde_json::Value;

const PROMPT_MS: f64 = 100.0;
const KA_MS: f64 = 2000.0;

fn run(name: &str) -> Value {
    let out = out_dir(&format!("fault-{name}"));
    let (code, s) = run_scenario(name, &out, &[]);
    assert_eq!(code, 0, "{name} failed checks: {:?}", failed_checks(&s));
    assert_eq!(s["pass"], true);
    s
}

fn check_names(s: &Value) -> Vec<String> {
    s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn since(s: &Value, key: &str, from: &str) -> f64 {
    num(s, key).unwrap_or_else(|| panic!("no {key}: {s:#}"))
        - num(s, from).unwrap_or_else(|| panic!("no {from}: {s:#}"))
}

/// The will follows the fault at once, and (when it can) willy hears of it at once too.
fn assert_prompt_will(name: &str, client_too: bool) {
    let s = run(name);
    let will = since(&s, "will_received_ms", "cut_at_ms");
    assert!(
        (0.0..=PROMPT_MS).contains(&will),
        "{name}: will {will} ms after the fault"
    );
    if client_too {
        let d = since(&s, "client_detect_ms", "cut_at_ms");
        assert!(
            (0.0..=PROMPT_MS).contains(&d),
            "{name}: willy noticed {d} ms after"
        );
    }
    assert!(check_names(&s).contains(&"will-prompt".to_string()));
}

#[test]
fn reset_publishes_the_will_within_100_ms() {
    assert_prompt_will("reset", true);
}

#[test]
fn close_publishes_the_will_within_100_ms() {
    assert_prompt_will("close", true);
}

#[test]
fn ws_reset_publishes_the_will_within_100_ms() {
    assert_prompt_will("ws-reset", true);
}

#[test]
fn ws_close_publishes_the_will_within_100_ms() {
    assert_prompt_will("ws-close", true);
}

#[test]
fn native_crash_publishes_the_will_within_100_ms_and_willy_is_restarted() {
    assert_prompt_will("native-crash", false);
}

#[test]
fn ws_crash_publishes_the_will_within_100_ms() {
    assert_prompt_will("ws-crash", false);
}

/// The broker closes a silent willy 1.5 x keepalive after its last packet and publishes the
/// will: one act of the broker [MQTT-3.1.2-8], which the spec does not order. We see it through
/// two sockets (the proxy reading the broker's FIN, monit reading the PUBLISH), each read by its
/// own task, so either may be seen first: rumqttd 0.20 closes the link before it hands the will
/// to its router, yet CI once saw the will 0.15 ms before the proxy's read of the FIN. Both
/// moments are held to the keepalive window, and to each other within the prompt bound.
fn assert_keepalive_will(s: &Value, name: &str) {
    let drop = since(s, "broker_drop_ms", "last_upstream_ms");
    assert!(
        (2950.0..=3250.0).contains(&drop),
        "{name}: drop {drop} ms after the last packet"
    );
    let will = since(s, "will_received_ms", "broker_drop_ms");
    assert!(
        (-PROMPT_MS..=PROMPT_MS).contains(&will),
        "{name}: will {will} ms from the drop"
    );
    let will_after_last = since(s, "will_received_ms", "last_upstream_ms");
    assert!(
        (2950.0..=3250.0 + PROMPT_MS).contains(&will_after_last),
        "{name}: will {will_after_last} ms after the last packet"
    );
}

#[test]
fn native_freeze_is_dropped_at_one_and_a_half_keepalives() {
    let s = run("native-freeze");
    assert_keepalive_will(&s, "native-freeze");
}

#[test]
fn half_open_upstream_is_dropped_by_the_broker_and_willy_hears_the_fin() {
    let s = run("half-open-upstream");
    assert_keepalive_will(&s, "half-open-upstream");
    // The broker's FIN still reaches willy: it learns then, before its own ping would fail.
    let d = since(&s, "client_detect_ms", "broker_drop_ms");
    assert!(
        (0.0..=PROMPT_MS).contains(&d),
        "willy noticed {d} ms after the broker's close"
    );
}

#[test]
fn half_open_downstream_keeps_the_broker_happy_until_willy_gives_up() {
    let s = run("half-open-downstream");
    let d = since(&s, "client_detect_ms", "cut_at_ms");
    assert!(
        d > KA_MS - 50.0 && d <= 2.0 * KA_MS + 100.0,
        "ping timeout {d} ms after the cut"
    );
    // The broker closed only after willy did: it never timed willy out.
    assert!(num(&s, "broker_drop_ms").unwrap() >= num(&s, "client_detect_ms").unwrap());
    let will = since(&s, "will_received_ms", "client_detect_ms");
    assert!(
        (0.0..=PROMPT_MS).contains(&will),
        "will {will} ms after willy gave up"
    );
}

#[test]
fn dropped_pingreqs_get_willy_dropped_at_one_and_a_half_keepalives() {
    let s = run("pingreq-dropped");
    assert_keepalive_will(&s, "pingreq-dropped");
}

#[test]
fn latency_under_the_keepalive_disconnects_nobody() {
    let s = run("latency-under-keepalive");
    assert!(num(&s, "will_received_ms").is_none());
    assert!(num(&s, "client_detect_ms").is_none());
    assert!(check_names(&s).contains(&"no-broker-drop".to_string()));
}

#[test]
fn bandwidth_under_the_keepalive_disconnects_nobody() {
    let s = run("bandwidth-under-keepalive");
    assert!(num(&s, "will_received_ms").is_none());
    assert!(num(&s, "client_detect_ms").is_none());
}

#[test]
fn a_cut_healed_before_the_keepalive_runs_out_changes_nothing() {
    let s = run("heal-before-timeout");
    assert!(num(&s, "will_received_ms").is_none());
    assert!(
        num(&s, "client_detect_ms").is_none(),
        "the same connection goes on"
    );
    assert!(since(&s, "heal_ms", "cut_at_ms") < 1.5 * KA_MS);
}

#[test]
fn refused_attempts_fail_at_once_and_held_ones_after_the_connect_timeout() {
    let s = run("refuse-vs-hang");
    let names = check_names(&s);
    assert!(names.contains(&"attempts-refused".to_string()), "{names:?}");
    assert!(names.contains(&"attempts-hang".to_string()), "{names:?}");
}

#[test]
fn a_bad_fault_parameter_names_file_line_and_key() {
    let out = out_dir("bad-fault");
    let path = out.join("bad.toml");
    std::fs::write(
        &path,
        "transport = \"tcp\"\nkeepalive_s = 2\ncycles = 1\nconnected_for_ms = 100\nidle_ms = 0\nreconnect_ms = 100\n[[faults]]\nkind = \"latency\"\ncycle = 1\ndelay_ms = 10\nbytes_per_s = 5\n",
    )
    .unwrap();
    let o = unplug(&[
        "scenario",
        path.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:11") && err.contains("faults.bytes_per_s"),
        "{err}"
    );
}
