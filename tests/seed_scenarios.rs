//! The seed's four runs, for real: rumqttd in-process, the proxy, willy and monit on loopback.
//!
//! Bounds come from the spec and rumqttd's profile: a silent client is closed 1.5 x keepalive
//! after its last packet [MQTT-3.1.2-24] (rumqttd: a per-read timeout, exact to the scheduler,
//! allowed 250 ms late); the will is published iff one was set and the close was abnormal.

mod common;

use common::*;

/// 1.5 x keepalive in ms, and the window the rumqttd profile allows around it.
fn window(keepalive_s: f64) -> (f64, f64) {
    let bound = keepalive_s * 1500.0;
    (bound - 50.0, bound + 250.0)
}

fn assert_seed_run(name: &str, keepalive: &str, will: bool) {
    let out = out_dir(&format!("{name}-ka{keepalive}"));
    let (code, s) = run_scenario(name, &out, &["--keepalive", keepalive]);
    assert_eq!(code, 0, "{name} failed checks: {:?}", failed_checks(&s));
    assert_eq!(s["pass"], true);
    let (lo, hi) = window(keepalive.parse().unwrap());

    let last = num(&s, "last_upstream_ms").expect("willy sent bytes before the cut");
    let cut = num(&s, "cut_at_ms").expect("the cut happened");
    assert!(last <= cut, "the last packet is before the cut");
    let drop = num(&s, "broker_drop_ms").expect("the broker closed the silent connection");
    assert!(
        (lo..=hi).contains(&(drop - last)),
        "{name}: broker drop {} ms after the last packet, not in {lo}..{hi}",
        drop - last
    );

    match num(&s, "will_received_ms") {
        Some(w) if will => {
            assert!(
                (lo..=hi).contains(&(w - last)),
                "{name}: will {} ms after the last packet",
                w - last
            );
            assert!(w >= drop, "the will follows the broker's close");
        }
        None if !will => {}
        other => panic!("{name}: will expected {will}, received at {other:?}"),
    }
    // willy's reconnect attempts in the last cycle fail while the network stays down.
    assert!(num(&s, "client_detect_ms").expect("willy noticed") > cut);

    // Every file is there and every JSONL line is a complete record.
    let log = std::fs::read_to_string(out.join(format!("{name}.log"))).unwrap();
    assert!(
        log.contains("Cycle 3"),
        "the log shows the cycle of the cut"
    );
    // At keepalive 1 s willy's own ping timeout (2 x ka after the cut) falls on the same
    // millisecond as the end of the cycle (connected_for 2 s): if it wins, willy never finishes
    // cycle 3 and the run ends on its failed reconnects instead. At 2 s it cannot win.
    if keepalive != "1" {
        assert!(
            log.contains("Cycle 4"),
            "the log shows the cycle after the cut"
        );
    }
    assert!(
        log.contains("fault blackhole applied"),
        "the log shows the cut"
    );
    let jsonl = std::fs::read_to_string(out.join(format!("{name}.events.jsonl"))).unwrap();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(
            v["ms"].is_number()
                && v["t"].is_string()
                && v["actor"].is_string()
                && v["event"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn ws_last_will_publishes_the_will_one_and_a_half_keepalives_after_the_last_packet() {
    assert_seed_run("ws-last-will", "2", true);
}

#[test]
fn native_last_will_publishes_the_will_one_and_a_half_keepalives_after_the_last_packet() {
    assert_seed_run("native-last-will", "2", true);
}

#[test]
fn ws_no_will_drops_the_client_and_tells_monit_nothing() {
    assert_seed_run("ws-no-will", "2", false);
}

#[test]
fn native_no_will_drops_the_client_and_tells_monit_nothing() {
    assert_seed_run("native-no-will", "2", false);
}

#[test]
fn keepalive_one_second_halves_nothing_but_the_bound() {
    assert_seed_run("native-last-will", "1", true);
}
