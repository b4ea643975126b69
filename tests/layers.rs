//! Keepalive at every layer, for real, on rumqttd (builtin) and mosquitto: an intermediary's
//! idle timeout (the proxy as a load balancer).
//!
//! Bounds: the box closes 2000 ms after the last byte, late by at most its 20 ms counter tick
//! and the scheduler (`timing::idle_cut_window`: 1950..2120 ms); the broker sees a close
//! without DISCONNECT and publishes the will at once [MQTT-3.1.2-8] (within 100 ms); willy's
//! own silence when the box closes it is under 1.5 x keepalive (6 s at keepalive 4 s).

mod common;

use common::*;
use serde_json::Value;

fn check<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#}", s["checks"]))
}

fn idle_timeout_cuts_a_device_that_never_misbehaved(broker: &str) {
    let s = run_on("layers", "lb-idle-timeout", broker);
    assert_eq!(status(&s, "idle-timeout-cut"), "pass", "{s:#}");
    assert_eq!(status(&s, "will-after-idle-cut"), "pass", "{s:#}");
    assert_eq!(status(&s, "will"), "pass");
    // The will came from the box's close, long before the keepalive could have.
    let will = num(&s, "will_received_ms").unwrap();
    let applied = num(&s, "cut_at_ms").unwrap();
    assert!(
        will - applied < 6000.0,
        "will {will} ms, idle timeout applied at {applied} ms"
    );
}

fn pings_keep_the_idle_timeout_fed(broker: &str) {
    let s = run_on("layers", "lb-idle-timeout-pinged", broker);
    assert_eq!(status(&s, "no-idle-timeout-cut"), "pass", "{s:#}");
    assert_eq!(status(&s, "will"), "pass");
    assert!(check(&s, "no-idle-timeout-cut")["actual"]
        .as_str()
        .unwrap()
        .contains("never closed"));
}

#[test]
fn an_idle_timeout_shorter_than_keepalive_cuts_willy_and_rumqttd_publishes_the_will() {
    idle_timeout_cuts_a_device_that_never_misbehaved("builtin");
}

#[test]
fn an_idle_timeout_shorter_than_keepalive_cuts_willy_and_mosquitto_publishes_the_will() {
    if mosquitto_or_skip("lb-idle-timeout on mosquitto").is_some() {
        idle_timeout_cuts_a_device_that_never_misbehaved("mosquitto");
    }
}

#[test]
fn pings_shorter_than_the_idle_timeout_keep_the_connection_on_rumqttd() {
    pings_keep_the_idle_timeout_fed("builtin");
}

#[test]
fn pings_shorter_than_the_idle_timeout_keep_the_connection_on_mosquitto() {
    if mosquitto_or_skip("lb-idle-timeout-pinged on mosquitto").is_some() {
        pings_keep_the_idle_timeout_fed("mosquitto");
    }
}

#[test]
fn an_idle_timeout_without_idle_ms_or_with_an_unknown_close_is_refused_with_exit_2() {
    let dir = out_dir("layers-bad-idle");
    for (fault, says) in [
        ("kind = \"idle-timeout\"", "needs `idle_ms`"),
        (
            "kind = \"idle-timeout\"\nidle_ms = 1000\nclose = \"slam\"",
            "expected one of fin, rst",
        ),
        (
            "kind = \"reset\"\nidle_ms = 1000",
            "a reset fault has no `idle_ms`",
        ),
    ] {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/lb-idle-timeout.toml"
        ))
        .unwrap();
        let start = text.find("[[faults]]").unwrap();
        let end = text.find("[expect]").unwrap();
        let text = format!(
            "{}[[faults]]\n{fault}\ncycle = 1\ntrigger = \"connected\"\n\n{}",
            &text[..start],
            &text[end..]
        );
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let o = unplug(&["scenario", path.to_str().unwrap(), "--quiet"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{fault}: {err}");
        assert!(err.contains(says), "{fault}: {err}");
    }
}
