//! MQTT 5 and the will's life, for real: what each DISCONNECT encoding, will delay and session
//! expiry does, on rumqttd (with the deviations its profile documents) and on mosquitto.
//!
//! Expectations come from the spec: [MQTT-3.14.4-3] (0x00 discards the will, 0x04 publishes
//! it), [MQTT-3.1.3-9] (the will waits min(will delay, session expiry) after the close),
//! [MQTT-3.1.2-17] (a retained will reaches a later subscriber).

mod common;

use common::*;
use serde_json::Value;

fn run(name: &str, broker: &str) -> Value {
    run_on("v5", name, broker)
}

#[test]
fn disconnect_0x04_publishes_the_will_on_rumqttd() {
    let s = run("v5-disconnect-with-will", "builtin");
    assert_eq!(status(&s, "will-on-disconnect e00104"), "pass");
    assert!(num(&s, "will_received_ms").is_some());
}

#[test]
fn rumqttd_ignores_0x04_in_the_long_form_as_its_profile_documents() {
    let s = run("v5-disconnect-with-will-properties", "builtin");
    assert_eq!(status(&s, "will-on-disconnect e0020400"), "deviation");
}

#[test]
fn rumqttd_publishes_the_will_after_a_one_byte_0x00_as_its_profile_documents() {
    let s = run("v5-disconnect-normal", "builtin");
    assert_eq!(status(&s, "will-on-disconnect e00100"), "deviation");
}

#[test]
fn the_short_disconnect_never_publishes_the_will_on_rumqttd() {
    let s = run("v5-disconnect-normal-short", "builtin");
    assert_eq!(status(&s, "will-on-disconnect e000"), "pass");
    assert!(num(&s, "will_received_ms").is_none());
}

#[test]
fn a_v5_will_follows_a_cut_at_one_and_a_half_keepalives_on_rumqttd() {
    let s = run("v5-last-will", "builtin");
    let d = num(&s, "will_after_last_packet_ms").unwrap();
    assert!((2950.0..=3250.0).contains(&d), "{d}");
}

#[test]
fn a_will_delay_without_session_expiry_is_due_at_the_drop_on_rumqttd() {
    let s = run("v5-will-delay-no-session", "builtin");
    assert_eq!(status(&s, "will-timing"), "pass");
    assert_eq!(status(&s, "will-delay"), "pass");
}

/// mosquitto waits out the Will Delay although the session ended at the close: the spec has the
/// will due then (whichever comes first), mosquitto's profile lists it.
#[test]
fn mosquitto_waits_out_a_will_delay_without_a_session_as_its_profile_documents() {
    if mosquitto_or_skip("will-delay-no-session").is_none() {
        return;
    }
    let s = run("v5-will-delay-no-session", "mosquitto");
    assert_eq!(status(&s, "will"), "pass");
    assert_eq!(status(&s, "will-delay"), "deviation");
}

#[test]
fn rumqttd_loses_a_delayed_will_as_its_profile_documents() {
    let s = run("v5-will-delay", "builtin");
    assert_eq!(status(&s, "will-on-disconnect e000"), "deviation");
    assert_eq!(status(&s, "will"), "deviation");
}

#[test]
fn a_retained_will_reaches_a_later_subscriber_on_rumqttd() {
    let s = run("retained-will", "builtin");
    assert_eq!(status(&s, "retained-will"), "pass");
}

/// On mosquitto every one of these holds to the spec.
fn on_mosquitto_all_pass(name: &str) {
    if mosquitto_or_skip(name).is_none() {
        return;
    }
    let s = run(name, "mosquitto");
    let not_pass: Vec<&Value> = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .collect();
    assert!(not_pass.is_empty(), "{name} on mosquitto: {not_pass:#?}");
}

#[test]
fn mosquitto_publishes_the_will_on_0x04_in_both_forms() {
    on_mosquitto_all_pass("v5-disconnect-with-will");
    on_mosquitto_all_pass("v5-disconnect-with-will-properties");
}

#[test]
fn mosquitto_discards_the_will_on_0x00_in_both_forms() {
    on_mosquitto_all_pass("v5-disconnect-normal");
    on_mosquitto_all_pass("v5-disconnect-normal-short");
}

#[test]
fn mosquitto_delays_the_will_by_the_shorter_of_delay_and_session() {
    on_mosquitto_all_pass("v5-will-delay");
    on_mosquitto_all_pass("v5-session-expiry-shorter-than-delay");
}

#[test]
fn mosquitto_retains_a_retained_will() {
    on_mosquitto_all_pass("retained-will");
}

/// The `connection_failed` records of monit after the cut, in ms since the run's start.
fn monit_failures_after_cut(s: &Value, name: &str, broker: &str) -> Vec<f64> {
    let dir = out_dir_of("v5", name, broker);
    let cut = num(s, "cut_at_ms").unwrap();
    std::fs::read_to_string(dir.join(format!("{name}.events.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["actor"] == "monit" && e["event"] == "connection_failed")
        .map(|e| e["ms"].as_f64().unwrap())
        .filter(|&ms| ms > cut)
        .collect()
}

/// rumqttd panics writing a v5 will with properties to a 3.1.1 subscriber: monit's connection
/// drops as the will is due, its reconnects are closed at once, and no will arrives.
#[test]
fn rumqttd_loses_a_v5_will_to_a_v311_subscriber_and_its_connection_as_its_profile_documents() {
    let name = "v5-will-to-v4-subscriber";
    let s = run(name, "builtin");
    assert_eq!(status(&s, "will"), "deviation");
    assert_eq!(status(&s, "will-timing"), "deviation");
    assert_eq!(status(&s, "keepalive-drop"), "pass");
    assert!(num(&s, "will_received_ms").is_none());
    let drop = num(&s, "broker_drop_ms").unwrap();
    let lost = monit_failures_after_cut(&s, name, "builtin");
    // The loss, then at least one reconnect (500 ms later) closed at once.
    assert!(lost.len() >= 2, "{lost:?}");
    // With the will, due at willy's drop (measured 2-159 ms after it), and long before monit's
    // own keepalive (2 s) could have ended anything.
    assert!(
        (0.0..1000.0).contains(&(lost[0] - drop)),
        "monit lost {lost:?}, willy dropped at {drop}"
    );
}

#[test]
fn mosquitto_delivers_a_v5_will_with_properties_to_a_v311_subscriber() {
    let name = "v5-will-to-v4-subscriber";
    if mosquitto_or_skip(name).is_none() {
        return;
    }
    let s = run(name, "mosquitto");
    for c in ["will", "will-timing", "keepalive-drop"] {
        assert_eq!(status(&s, c), "pass", "{c}");
    }
    assert!(monit_failures_after_cut(&s, name, "mosquitto").is_empty());
}
