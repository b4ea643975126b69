//! The session around a disconnect, for real, with a third client (pubby) straight to the
//! broker: traffic to a silent client, and the checks each broker passes or, as its profile
//! documents, deviates from.
//!
//! - [MQTT-3.1.2-24]: the broker drops a client 1.5 x keepalive after the last packet it
//!   *received* from it; what it sends the client does not count.
//! - [MQTT-3.1.2-5], [MQTT-4.4.0-1], [MQTT-3.2.2-2]: with Clean Session 0 the broker keeps the
//!   QoS 1 and 2 messages published while willy is away and sends them when it comes back,
//!   saying Session Present 1; [MQTT-3.3.1-1]: one sent before is sent again with DUP 1;
//!   [MQTT-4.3.3-2]: at QoS 2, never twice.
//! - [MQTT-3.8.4-6]: a message arrives at the lower of its publish QoS and the granted QoS.
//! - [MQTT-3.1.4-2]: a second connection with willy's client id makes the broker close willy's;
//!   that close is no DISCONNECT, so the will follows [MQTT-3.1.2-8].
//! - [MQTT-3.1.2-5], [MQTT-4.4.0-1]: a QoS 1 will published while a Clean Session 0 subscriber
//!   is away waits in its session and reaches it, once, at QoS 1, when it reconnects.

mod common;

use common::*;
use serde_json::Value;

fn run(name: &str, broker: &str) -> Value {
    run_on("session", name, broker)
}

#[test]
fn rumqttd_never_drops_a_silent_client_it_keeps_sending_to_as_its_profile_documents() {
    let s = run("keepalive-busy-topic", "builtin");
    assert_eq!(status(&s, "keepalive-drop"), "deviation");
    assert_eq!(status(&s, "will"), "deviation");
    assert!(num(&s, "broker_drop_ms").is_none());
    assert!(num(&s, "will_received_ms").is_none());
    // willy's own client still notices: its PINGREQs get no PINGRESP.
    assert_eq!(status(&s, "client-detect"), "pass");
}

#[test]
fn mosquitto_drops_a_silent_client_on_a_busy_topic_and_publishes_its_will() {
    if mosquitto_or_skip("keepalive-busy-topic").is_none() {
        return;
    }
    let s = run("keepalive-busy-topic", "mosquitto");
    for c in ["keepalive-drop", "will", "will-timing"] {
        assert_eq!(status(&s, c), "pass", "{c}");
    }
    let d = num(&s, "drop_after_last_packet_ms").unwrap();
    // 1.5 x 2 s, then at most mosquitto's 6 s keepalive scan (see its profile).
    assert!((2950.0..=9350.0).contains(&d), "{d}");
}

/// On mosquitto every check of `name` holds to the spec.
fn on_mosquitto_all_pass(name: &str) -> Option<Value> {
    mosquitto_or_skip(name)?;
    let s = run(name, "mosquitto");
    let not_pass: Vec<&Value> = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .collect();
    assert!(not_pass.is_empty(), "{name} on mosquitto: {not_pass:#?}");
    Some(s)
}

/// rumqttd keeps the session and its queue, but resends without DUP and closes late.
fn rumqttd_persistent_session(name: &str) -> Value {
    let s = run(name, "builtin");
    for c in ["session-present", "queued-delivery", "delivery-qos"] {
        assert_eq!(status(&s, c), "pass", "{name}: {c}");
    }
    assert_eq!(status(&s, "dup-on-resend"), "deviation", "{name}");
    // Its writes into the cut put off its keepalive close (see keepalive-busy-topic).
    assert_eq!(status(&s, "keepalive-drop"), "deviation", "{name}");
    s
}

#[test]
fn rumqttd_delivers_a_qos1_queue_but_resends_without_dup_as_its_profile_documents() {
    rumqttd_persistent_session("persistent-session-qos1");
}

#[test]
fn rumqttd_delivers_a_qos2_queue_once_but_resends_without_dup_as_its_profile_documents() {
    let s = rumqttd_persistent_session("persistent-session-qos2");
    assert_eq!(status(&s, "no-duplicates"), "pass");
}

#[test]
fn mosquitto_delivers_a_qos1_queue_with_dup() {
    if let Some(s) = on_mosquitto_all_pass("persistent-session-qos1") {
        assert_eq!(status(&s, "dup-on-resend"), "pass");
    }
}

#[test]
fn mosquitto_delivers_a_qos2_queue_once_with_dup() {
    if let Some(s) = on_mosquitto_all_pass("persistent-session-qos2") {
        assert_eq!(status(&s, "dup-on-resend"), "pass");
        assert_eq!(status(&s, "no-duplicates"), "pass");
    }
}

#[test]
fn the_lower_qos_wins_on_both_brokers() {
    let s = run("qos-downgrade", "builtin");
    assert_eq!(status(&s, "delivery-qos"), "pass");
    on_mosquitto_all_pass("qos-downgrade");
}

/// The will's delay after the twin's CONNACK (the takeover), from the run's own records.
fn will_after_takeover(s: &Value, name: &str) -> f64 {
    let c = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    assert_eq!(c["status"], "pass", "{c:#}");
    num(s, "will_received_ms").expect("a will")
}

#[test]
fn a_takeover_closes_willy_and_publishes_its_will_on_rumqttd() {
    let s = run("client-id-takeover", "builtin");
    will_after_takeover(&s, "takeover-close");
    let w = will_after_takeover(&s, "takeover-will");
    // Long before the keepalive could have done it: 1.5 x 2 s after the cut.
    assert!(w - num(&s, "cut_at_ms").unwrap() < 2000.0, "{w}");
}

#[test]
fn a_takeover_closes_willy_and_publishes_its_will_on_mosquitto() {
    if let Some(s) = on_mosquitto_all_pass("client-id-takeover") {
        assert!(num(&s, "will_received_ms").is_some());
    }
}

/// The flaky monit's checks all hold: it was away when willy was dropped, and the will came
/// with its return, once, at QoS 1. Returns (willy's drop, the will) in ms.
fn flaky_monit_gets_the_will_on_its_return(s: &Value) -> (f64, f64) {
    for c in [
        "will",
        "keepalive-drop",
        "monit-session-present",
        "will-queued-for-subscriber",
        "will-qos",
        "will-once",
    ] {
        assert_eq!(status(s, c), "pass", "{c}");
    }
    let drop = num(s, "broker_drop_ms").unwrap();
    let will = num(s, "will_received_ms").unwrap();
    // monit came back 2 s after the drop: the will cannot have reached it before.
    assert!(will - drop >= 1950.0, "drop {drop}, will {will}");
    (drop, will)
}

#[test]
fn rumqttd_keeps_a_qos1_will_for_an_absent_subscriber_and_sends_it_on_its_return() {
    let s = run("will-qos1-flaky-monit", "builtin");
    flaky_monit_gets_the_will_on_its_return(&s);
    // rumqttd sends willy's QoS 0 true at monit's subscription QoS (its profile lists it);
    // mosquitto's run above passes every check, this one included.
    assert_eq!(status(&s, "no-qos-upgrade"), "deviation");
}

#[test]
fn mosquitto_keeps_a_qos1_will_for_an_absent_subscriber_and_sends_it_on_its_return() {
    if let Some(s) = on_mosquitto_all_pass("will-qos1-flaky-monit") {
        flaky_monit_gets_the_will_on_its_return(&s);
    }
}

/// `left-open-takeover`: willy leaves cycle 2's connection open; cycle 3's CONNECT (same
/// client id) takes the session over; cycle 3 is cut. What every broker must do, whatever it
/// does with the cut connection's will: close the old connection at the takeover
/// [MQTT-3.1.4-2] and publish its will [MQTT-3.1.2-8]; drop the cut connection 1.5 x
/// keepalive after its last packet, within the profile's allowance [MQTT-3.1.2-24]; and the
/// checks name only cycle 1 as a clean disconnect, and account for every message.
fn left_open_takeover(broker: &str, p: &unplug::broker::profile::Profile) -> Value {
    let s = run("left-open-takeover", broker);
    for c in [
        "takeover-close",
        "takeover-will",
        "no-will-after-disconnect",
        "clean-disconnect",
        "unaccounted-message",
        "keepalive-drop",
    ] {
        assert_eq!(status(&s, c), "pass", "{broker}: {c}: {:#}", s["checks"]);
    }
    let actual = |name: &str| {
        s["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["actual"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let nw = actual("no-will-after-disconnect");
    assert!(nw.starts_with("cycle 1: "), "{broker}: {nw}");
    assert!(nw.contains("cycle 2 left open by design"), "{broker}: {nw}");
    assert!(actual("takeover-will").starts_with("cycle 2: its will "));
    let keepalive = std::time::Duration::from_secs(2);
    let (lo, hi) = unplug::judge::timing::keepalive_window(keepalive, p.keepalive_late_ms);
    let d = num(&s, "drop_after_last_packet_ms").unwrap();
    assert!(
        (lo..=hi).contains(&d),
        "{broker}: drop {d} ms, not in {lo}..{hi}"
    );
    s
}

#[test]
fn rumqttd_publishes_no_will_for_a_connection_that_took_over_a_left_open_one_as_its_profile_documents(
) {
    let s = left_open_takeover("builtin", &unplug::broker::profile::Profile::rumqttd());
    assert_eq!(status(&s, "will"), "deviation");
    assert_eq!(status(&s, "will-timing"), "deviation");
    assert!(num(&s, "will_received_ms").is_none());
}

#[test]
fn mosquitto_publishes_the_will_of_a_connection_that_took_over_a_left_open_one() {
    if mosquitto_or_skip("left-open-takeover").is_none() {
        return;
    }
    let p = unplug::broker::profile::Profile::mosquitto("2.0.11");
    let s = left_open_takeover("mosquitto", &p);
    for c in ["will", "will-timing"] {
        assert_eq!(status(&s, c), "pass", "{c}");
    }
    let keepalive = std::time::Duration::from_secs(2);
    let (lo, hi) = unplug::judge::timing::keepalive_window(
        keepalive,
        p.will_late_ms(unplug::scenario::Transport::Tcp),
    );
    let w = num(&s, "will_after_last_packet_ms").unwrap();
    assert!((lo..=hi).contains(&w), "will {w} ms, not in {lo}..{hi}");
}
