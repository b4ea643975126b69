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

/// MQTT 5 Server Keep Alive: willy asks for 15 s, the broker is configured with
/// max_keepalive 10 (mosquitto 2.0's least). The bounds: willy's first PINGREQ one keepalive
/// after the CONNACK (-50/+100 ms, `timing::first_ping_window`), the drop at 1.5 x the
/// keepalive that binds, late by the broker's profile only.
fn server_keepalive_binds(broker: &str, connack_says: Option<u64>, binds_s: f64) {
    let s = run_on("layers", "v5-server-keepalive", broker);
    assert_eq!(status(&s, "server-keepalive"), "pass", "{s:#}");
    assert_eq!(status(&s, "keepalive-drop"), "pass");
    let actual = check(&s, "server-keepalive")["actual"].as_str().unwrap();
    match connack_says {
        Some(k) => assert!(
            actual.contains(&format!("Server Keep Alive {k} s")),
            "{actual}"
        ),
        None => assert!(
            actual.contains("no Server Keep Alive") && actual.contains("cannot set max_keepalive"),
            "{actual}"
        ),
    }
    let expected = check(&s, "keepalive-drop")["expected"].as_str().unwrap();
    assert!(
        expected.contains(&format!("1.5 x {binds_s} s")),
        "judged against the keepalive that binds: {expected}"
    );
}

#[test]
fn mosquitto_with_max_keepalive_sends_server_keep_alive_and_willy_and_the_judge_use_it() {
    if mosquitto_or_skip("v5-server-keepalive on mosquitto").is_some() {
        server_keepalive_binds("mosquitto", Some(10), 10.0);
    }
}

#[test]
fn rumqttd_has_no_max_keepalive_so_the_clients_keepalive_binds_and_its_profile_says_why() {
    server_keepalive_binds("builtin", None, 15.0);
}

#[test]
fn max_keepalive_is_refused_on_3_1_1_and_below_mosquittos_least_with_exit_2() {
    let dir = out_dir("layers-bad-max-keepalive");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/v5-server-keepalive.toml"
    ))
    .unwrap();
    let v311 = dir.join("v311.toml");
    std::fs::write(
        &v311,
        text.replace("protocol = \"5\"", "protocol = \"3.1.1\""),
    )
    .unwrap();
    let o = unplug(&["scenario", v311.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("broker.max_keepalive_s"), "{err}");
    if mosquitto_or_skip("max_keepalive below 10 on mosquitto").is_some() {
        let low = dir.join("low.toml");
        std::fs::write(
            &low,
            text.replace("max_keepalive_s = 10", "max_keepalive_s = 2"),
        )
        .unwrap();
        let o = unplug(&[
            "scenario",
            low.to_str().unwrap(),
            "--quiet",
            "--broker",
            "mosquitto",
            "--out",
            dir.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("accepts max_keepalive 10 to 65535"), "{err}");
    }
}

/// WebSocket pings are not MQTT control packets [MQTT-3.1.2-24]: with willy's MQTT silent
/// and its pings answered, the broker drops it at 1.5 x keepalive (keepalive-drop holds the
/// bound: rumqttd 2950..3250 ms, mosquitto up to 6.35 s later by its scan).
fn ws_pings_do_not_keep_mqtt_alive(broker: &str) {
    let s = run_on("layers", "ws-pings-only", broker);
    assert_eq!(status(&s, "keepalive-drop"), "pass", "{s:#}");
    assert_eq!(status(&s, "ws-pings-not-keepalive"), "pass", "{s:#}");
    let actual = check(&s, "ws-pings-not-keepalive")["actual"]
        .as_str()
        .unwrap();
    assert!(!actual.starts_with("0 pings"), "{actual}");
}

/// willy's own pong timeout (1000 ms, a ping every 500 ms) notices swallowed pongs
/// 950..1600 ms after the cut, before MQTT's keepalive (2 s) could; the will follows its
/// close without DISCONNECT within 100 ms [MQTT-3.1.2-8].
fn swallowed_pongs_are_noticed_by_the_websocket_layer(broker: &str) {
    let s = run_on("layers", "ws-pongs-swallowed", broker);
    assert_eq!(status(&s, "ws-pong-timeout"), "pass", "{s:#}");
    assert_eq!(status(&s, "will-after-client-close"), "pass", "{s:#}");
}

#[test]
fn websocket_pings_alone_do_not_keep_willy_on_rumqttd() {
    ws_pings_do_not_keep_mqtt_alive("builtin");
}

#[test]
fn websocket_pings_alone_do_not_keep_willy_on_mosquitto() {
    if mosquitto_or_skip("ws-pings-only on mosquitto").is_some() {
        ws_pings_do_not_keep_mqtt_alive("mosquitto");
    }
}

#[test]
fn swallowed_pongs_end_willys_connection_and_rumqttd_publishes_the_will() {
    swallowed_pongs_are_noticed_by_the_websocket_layer("builtin");
}

#[test]
fn swallowed_pongs_end_willys_connection_and_mosquitto_publishes_the_will() {
    if mosquitto_or_skip("ws-pongs-swallowed on mosquitto").is_some() {
        swallowed_pongs_are_noticed_by_the_websocket_layer("mosquitto");
    }
}

#[test]
fn websocket_keys_on_plain_tcp_and_unknown_frame_kinds_are_refused_with_exit_2() {
    let dir = out_dir("layers-bad-ws");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/ws-pongs-swallowed.toml"
    ))
    .unwrap();
    for (name, edited, says) in [
        (
            "tcp",
            text.replace("transport = \"ws\"", "transport = \"tcp\""),
            // The ws-drop fault is read first; either key says the same.
            "transport = \"ws\"",
        ),
        (
            "kind",
            text.replace("frames = [\"pong\"]", "frames = [\"pongs\"]"),
            "unknown WebSocket frame kind \"pongs\"",
        ),
        (
            "silent",
            text.replace("ws_ping_ms = 500", "mqtt_pings = false")
                .replace("ws_pong_timeout_ms = 1000", ""),
            "mqtt_pings = false needs `ws_ping_ms`",
        ),
    ] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, edited).unwrap();
        let o = unplug(&["scenario", path.to_str().unwrap(), "--quiet"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
    }
}
