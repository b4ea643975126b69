//! willy drivers (mqtt.js, paho) through real cuts on a real broker, and the seed's
//! WebSocket finding reproduced: mqtt.js's `disconnect` into a dead link comes back 30 s
//! later.
//!
//! The drivers' libraries come from `scripts/drivers.sh`; without them these tests say
//! SKIPPED (with CI=true they fail).

mod common;

use std::path::Path;

use common::{drivers_or_skip, failed_checks, out_dir, root_or_skip, run_scenario};
use serde_json::Value;

fn records(out: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(out.join(format!("{name}.events.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn is(r: &Value, actor: &str, event: &str) -> bool {
    r["actor"] == actor && r["event"] == event
}

/// willy's typed lines (not its notes), in order.
fn willy_events(rs: &[Value]) -> Vec<String> {
    rs.iter()
        .filter(|r| r["actor"] == "willy" && r["event"] != "note")
        .map(|r| r["event"].as_str().unwrap().to_string())
        .collect()
}

/// The cut, and willy's disconnect request and its return after it (ms since the start).
fn disconnect_after_cut(rs: &[Value]) -> (f64, f64, Option<f64>) {
    let cut = rs
        .iter()
        .find(|r| is(r, "proxy", "fault_applied"))
        .expect("the fault was applied")["ms"]
        .as_f64()
        .unwrap();
    let asked = rs
        .iter()
        .find(|r| is(r, "willy", "disconnect_requested") && r["ms"].as_f64().unwrap() > cut)
        .expect("willy asked to disconnect after the cut")["ms"]
        .as_f64()
        .unwrap();
    let back = rs
        .iter()
        .find(|r| is(r, "willy", "disconnected") && r["ms"].as_f64().unwrap() > asked)
        .map(|r| r["ms"].as_f64().unwrap());
    (cut, asked, back)
}

/// A clean cycle through the driver reads as rumqttc's does: banner, connecting, connected,
/// true, false, disconnect, disconnected; and the library said who it is.
fn assert_round_trip(rs: &[Value], library: &str) {
    let ev = willy_events(rs);
    let first: Vec<&str> = ev.iter().take(7).map(String::as_str).collect();
    assert_eq!(
        first,
        [
            "cycle_started",
            "connecting",
            "connected",
            "published",
            "published",
            "disconnect_requested",
            "disconnected"
        ]
    );
    assert!(
        rs.iter().any(|r| r["actor"] == "willy"
            && r["event"] == "note"
            && r["message"].as_str().unwrap().contains(library)),
        "no note naming {library}"
    );
}

#[test]
fn mqttjs_over_websocket_returns_from_disconnect_into_a_dead_link_after_ws_close_timeout() {
    if drivers_or_skip("mqttjs_ws").is_none() {
        return;
    }
    let out = out_dir("mqttjs-ws");
    let (code, s) = run_scenario("ws-last-will", &out, &["--willy", "mqttjs"]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let rs = records(&out, "ws-last-will");
    assert_round_trip(&rs, "mqtt.js 5.16.0");
    // The seed: `disconnect` at 12:41:38.58, `disconnected` at 12:42:08.54. mqtt.js 5.16.0's
    // end() writes DISCONNECT and ends the stream; over WebSocket that is ws.close(), which
    // waits for the broker's close frame at most closeTimeout, ws 8.23.0's CLOSE_TIMEOUT of
    // 30000 ms (lib/constants.js; "Duration in milliseconds to wait for the closing handshake
    // to finish after websocket.close() is called", lib/websocket.js), then destroys the
    // socket; 'close' -> end()'s callback. The timer starts after our request is recorded, so
    // never sooner; 1 s allows for the pipes and a loaded 2-core machine.
    let (_, asked, back) = disconnect_after_cut(&rs);
    let d = back.expect("mqtt.js's end() came back") - asked;
    assert!(
        (30_000.0..=31_000.0).contains(&d),
        "disconnect -> disconnected {d:.0} ms; ws's close timeout is 30000 ms"
    );
}

#[test]
fn mqttjs_over_tcp_never_returns_from_disconnect_into_a_blackhole() {
    if drivers_or_skip("mqttjs_tcp").is_none() {
        return;
    }
    let out = out_dir("mqttjs-tcp");
    let (code, s) = run_scenario("native-last-will", &out, &["--willy", "mqttjs"]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let rs = records(&out, "native-last-will");
    assert_round_trip(&rs, "mqtt.js 5.16.0");
    // The seed's native run: "the client has to wait for the socket timeout". end() over TCP
    // sends FIN and waits for the socket's 'close', which needs the broker's FIN: the proxy
    // forwards none. So the runner's own wait (45 s) ends the cycle, not mqtt.js.
    let (_, asked, back) = disconnect_after_cut(&rs);
    assert!(
        back.is_none(),
        "end() came back into a blackhole at {back:?}"
    );
    let failed = rs
        .iter()
        .find(|r| is(r, "willy", "connection_failed") && r["ms"].as_f64().unwrap() > asked)
        .expect("the runner gave up on the disconnect");
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("no disconnect_returned report"));
}

#[test]
fn paho_round_trip_over_websocket_through_a_proxy_cut() {
    if drivers_or_skip("paho_ws").is_none() {
        return;
    }
    let out = out_dir("paho-ws");
    let (code, s) = run_scenario("ws-last-will", &out, &["--willy", "paho"]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let rs = records(&out, "ws-last-will");
    assert_round_trip(&rs, "paho-mqtt 2.2.0");
    // paho's disconnect() queues DISCONNECT and returns: no wait for the link.
    let (_, asked, back) = disconnect_after_cut(&rs);
    assert!(back.expect("paho's disconnect returned") - asked < 1000.0);
}

#[test]
fn mqttjs_and_paho_round_trip_through_a_kernel_cut_on_mosquitto() {
    if drivers_or_skip("kernel_drivers").is_none() || root_or_skip("kernel_drivers").is_none() {
        return;
    }
    let Some(mosq) = common::mosquitto_or_skip("kernel_drivers") else {
        return;
    };
    for willy in ["paho", "mqttjs"] {
        let out = out_dir(&format!("kernel-{willy}"));
        let (code, s) = run_scenario(
            "ws-last-will",
            &out,
            &[
                "--willy",
                willy,
                "--cut",
                "kernel",
                "--broker",
                "mosquitto",
                "--mosquitto-bin",
                mosq.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{willy}: {:?}", failed_checks(&s));
        let rs = records(&out, "ws-last-will");
        assert_round_trip(
            &rs,
            if willy == "paho" {
                "paho-mqtt"
            } else {
                "mqtt.js"
            },
        );
        assert!(rs
            .iter()
            .any(|r| r["event"] == "note"
                && r["message"].as_str().unwrap().contains("in the kernel")));
        // Cycle 4 cannot connect: the SYN is dropped in willy's namespace.
        assert!(rs.iter().any(|r| is(r, "willy", "connection_failed")));
    }
}

/// rumqttc's own driver (`unplug driver-rumqttc`) over TCP through a kernel cut on mosquitto:
/// the same round trip as any driver; its disconnect into the dead link is back at once (the
/// DISCONNECT goes into the socket's buffer) and the next attempt fails on rumqttc's own
/// connection timeout (the SYN dropped in willy's namespace).
#[test]
fn rumqttc_round_trip_over_tcp_through_a_kernel_cut_on_mosquitto() {
    if root_or_skip("kernel_rumqttc_tcp").is_none() {
        return;
    }
    let Some(mosq) = common::mosquitto_or_skip("kernel_rumqttc_tcp") else {
        return;
    };
    let out = out_dir("kernel-rumqttc-tcp");
    let (code, s) = run_scenario(
        "native-last-will",
        &out,
        &[
            "--cut",
            "kernel",
            "--broker",
            "mosquitto",
            "--mosquitto-bin",
            mosq.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let rs = records(&out, "native-last-will");
    assert_round_trip(&rs, "rumqttc 0.25.1");
    let (_, asked, back) = disconnect_after_cut(&rs);
    assert!(back.expect("rumqttc's disconnect returned") - asked < 1000.0);
    let failed: Vec<&str> = rs
        .iter()
        .filter(|r| is(r, "willy", "connection_failed"))
        .map(|r| r["error"].as_str().unwrap_or(""))
        .collect();
    assert!(
        failed.first().is_some_and(|e| e.contains("NetworkTimeout")),
        "{failed:?}"
    );
}

#[test]
fn a_missing_driver_or_a_bad_willy_is_exit_2_saying_what_to_do() {
    let o = common::unplug(&["scenario", "ws-last-will", "--willy", "hivemq"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("expected rumqttc, mqttjs, paho or cmd:PATH")
    );
    let o = std::process::Command::new(common::BIN)
        .args(["scenario", "ws-last-will", "--willy", "mqttjs", "--out"])
        .arg(out_dir("no-driver"))
        .env("UNPLUG_DRIVERS", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("scripts/drivers.sh"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // rumqttc through a kernel cut is its driver, which speaks 3.1.1: an MQTT 5 run says to
    // use the proxy cut.
    let o = common::unplug(&["scenario", "v5-last-will", "--cut", "kernel"]);
    assert_eq!(o.status.code(), Some(2));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("speaks MQTT 3.1.1") && said.contains("--cut proxy"),
        "{said}"
    );
    let o = common::unplug(&["scenario", "v5-last-will", "--willy", "paho"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("speaks MQTT 3.1.1"));
    let o = common::unplug(&["scenario", "close", "--cut", "kernel", "--willy", "paho"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no kernel layer"));
}
