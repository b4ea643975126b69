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
