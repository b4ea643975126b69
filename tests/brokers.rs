//! Real brokers: mosquitto spawned by the runner, a broker given by URL, and `compare`.
//!
//! Bounds come from the spec (the will 1.5 x keepalive after willy's last packet,
//! [MQTT-3.1.2-24, MQTT-3.1.2-8]) widened only by mosquitto 2.0's documented timing model
//! (`Profile::mosquitto`: its keepalive scan runs every 6 s of a whole-second clock, so a drop
//! may come up to 6.1 s late, plus 250 ms for the proxy and a loaded machine).
//!
//! Without mosquitto installed these tests say SKIPPED loudly and pass; with CI=true a missing
//! mosquitto fails them.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const KA_MS: f64 = 2000.0;
/// The spec's lower edge, as in check.rs: 50 ms for the proxy's stamping.
const EARLY_MS: f64 = 50.0;
/// mosquitto 2.0's late allowance (Profile::mosquitto): 6 s scan + 100 ms wake-up + 250 ms.
const MOSQUITTO_LATE_MS: f64 = 6350.0;

/// A port held for a broker this test starts, until it is dropped (see `PortHold`): no other
/// process is handed it meanwhile.
fn free_port() -> unplug::broker::PortHold {
    unplug::broker::hold_port().unwrap()
}

/// Run a scenario on mosquitto at keepalive 2 s; return its summary.
fn on_mosquitto(scenario: &str, extra: &[&str]) -> Value {
    let out = out_dir(&format!("mosq-{scenario}"));
    let mut args = vec!["--broker", "mosquitto", "--keepalive", "2"];
    args.extend_from_slice(extra);
    let (code, s) = run_scenario(scenario, &out, &args);
    assert_eq!(code, 0, "{scenario} on mosquitto: {:?}", failed_checks(&s));
    s
}

fn assert_mosquitto_window(s: &Value, key: &str) {
    let d = num(s, key).unwrap_or_else(|| panic!("{key} is null: {s:#}"));
    let (lo, hi) = (1.5 * KA_MS - EARLY_MS, 1.5 * KA_MS + MOSQUITTO_LATE_MS);
    assert!(
        (lo..=hi).contains(&d),
        "{} {key} = {d:.0} ms, outside {lo}..{hi} (mosquitto's timing model)",
        s["scenario"]
    );
}

fn check_mosquitto_run(scenario: &str, will: bool) {
    let s = on_mosquitto(scenario, &[]);
    assert!(
        s["broker"].as_str().unwrap().starts_with("mosquitto 2."),
        "{}",
        s["broker"]
    );
    assert_mosquitto_window(&s, "drop_after_last_packet_ms");
    if will {
        assert_mosquitto_window(&s, "will_after_last_packet_ms");
    } else {
        assert!(s["will_received_ms"].is_null(), "{s:#}");
    }
    // Its own log joined the timeline, as in the seed.
    let log = std::fs::read_to_string(
        out_dir_path(&format!("mosq-{scenario}")).join(format!("{scenario}.log")),
    )
    .unwrap();
    assert!(
        log.lines().any(|l| l.starts_with("mqtt   | ")
            && l.contains("New client connected from")
            && l.contains("as willy")),
        "no mosquitto connection line in the log"
    );
}

/// The directory `out_dir` made, without emptying it again.
fn out_dir_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("unplug-test-{}-{test}", std::process::id()))
}

#[test]
fn native_no_will_on_mosquitto() {
    if mosquitto_or_skip("native_no_will_on_mosquitto").is_some() {
        check_mosquitto_run("native-no-will", false);
    }
}

#[test]
fn native_last_will_on_mosquitto() {
    if mosquitto_or_skip("native_last_will_on_mosquitto").is_some() {
        check_mosquitto_run("native-last-will", true);
    }
}

#[test]
fn ws_no_will_on_mosquitto() {
    if mosquitto_or_skip("ws_no_will_on_mosquitto").is_some() {
        check_mosquitto_run("ws-no-will", false);
    }
}

#[test]
fn ws_last_will_on_mosquitto() {
    if mosquitto_or_skip("ws_last_will_on_mosquitto").is_some() {
        check_mosquitto_run("ws-last-will", true);
    }
}

/// Start a mosquitto run and wait (bounded) until its broker is up and cycle 2 has begun.
fn start_run_until_cycle_2(out: &Path) -> (Child, String) {
    let child = Command::new(BIN)
        .args([
            "scenario",
            "native-last-will",
            "--broker",
            "mosquitto",
            "--keepalive",
            "2",
        ])
        .args(["--quiet", "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // TempDir naming in crates/run/src/broker/mosquitto.rs: unplug-mosquitto-PID-RANDOM.
    let needle = format!("unplug-mosquitto-{}-", child.id());
    // The live journal, under its in-progress name until the run ends.
    let events = out.join("native-last-will.events.jsonl.inprogress");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        if text.contains(r#""event":"cycle_started","cycle":2"#)
            || text.contains(r#""cycle":2,"event":"cycle_started""#)
        {
            break;
        }
        assert!(Instant::now() < deadline, "cycle 2 never started:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, needle)
}

fn wait_bounded(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn an_interrupted_run_stops_mosquitto_and_leaves_complete_json_lines() {
    if mosquitto_or_skip("an_interrupted_run_stops_mosquitto").is_none() {
        return;
    }
    let out = out_dir("mosq-sigint");
    let (mut child, needle) = start_run_until_cycle_2(&out);
    assert_eq!(
        live_processes_with(&needle).len(),
        1,
        "mosquitto is not running"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = wait_bounded(&mut child, Duration::from_secs(15)).expect("runner did not exit");
    assert_eq!(
        st.code(),
        Some(130),
        "an interrupted run exits 128 + SIGINT"
    );
    assert_eq!(
        wait_until_gone(&needle, Duration::from_secs(1)),
        Vec::<u32>::new()
    );
    // Its files are marked as the incomplete set; no complete set was written.
    assert!(!out.join("native-last-will.summary.json").exists());
    let events = std::fs::File::open(out.join("native-last-will.incomplete.events.jsonl")).unwrap();
    let mut n = 0;
    for line in BufReader::new(events).lines() {
        let line = line.unwrap();
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        n += 1;
    }
    assert!(n > 10, "only {n} records");
    let s: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("native-last-will.incomplete.summary.json")).unwrap(),
    )
    .unwrap();
    assert!(
        s["end_reason"]
            .as_str()
            .unwrap()
            .contains("interrupted (SIGINT)"),
        "{s:#}"
    );
    assert_eq!(
        (&s["interrupted"], &s["pass"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
}

#[test]
fn a_killed_runner_takes_mosquitto_with_it() {
    if mosquitto_or_skip("a_killed_runner_takes_mosquitto_with_it").is_none() {
        return;
    }
    let out = out_dir("mosq-sigkill");
    let (mut child, needle) = start_run_until_cycle_2(&out);
    assert_eq!(
        live_processes_with(&needle).len(),
        1,
        "mosquitto is not running"
    );
    child.kill().unwrap(); // SIGKILL: no handler runs, only PR_SET_PDEATHSIG
    child.wait().unwrap();
    assert_eq!(
        wait_until_gone(&needle, Duration::from_secs(2)),
        Vec::<u32>::new()
    );
}

/// A mosquitto the test runs itself, killed when dropped.
struct OwnMosquitto {
    child: Child,
    dir: PathBuf,
    tcp: u16,
    ws: u16,
}

impl OwnMosquitto {
    fn start(bin: &Path, test: &str) -> OwnMosquitto {
        let dir = out_dir(&format!("{test}-broker"));
        let holds = (free_port(), free_port());
        let (tcp, ws) = (holds.0.port, holds.1.port);
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "allow_anonymous true\npersistence false\nlistener {tcp} 127.0.0.1\nlistener {ws} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n"
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [tcp, ws] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "own mosquitto did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        drop(holds);
        OwnMosquitto {
            child,
            dir,
            tcp,
            ws,
        }
    }
}

impl Drop for OwnMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_broker_given_by_url_is_used_as_it_is() {
    let Some(bin) = mosquitto_or_skip("a_broker_given_by_url_is_used_as_it_is") else {
        return;
    };
    let own = OwnMosquitto::start(&bin, "url");
    let urls = format!("tcp://127.0.0.1:{},ws://127.0.0.1:{}/mqtt", own.tcp, own.ws);
    let out = out_dir("url-run");
    let (code, s) = run_scenario(
        "ws-last-will",
        &out,
        &["--broker", &urls, "--keepalive", "2"],
    );
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    // Recognised from what it says of itself, so judged by mosquitto's timing model.
    let broker = s["broker"].as_str().unwrap();
    assert!(
        broker.starts_with("mosquitto 2.")
            && broker.contains(&urls)
            && broker.contains("recognised from $SYS/broker/version"),
        "{broker}"
    );
    assert!(s["timing_model"].as_str().unwrap().contains("6 s"), "{s:#}");
    assert_mosquitto_window(&s, "will_after_last_packet_ms");
}

#[test]
fn a_ws_scenario_without_a_ws_url_is_exit_2() {
    // Any listener will do: the run must stop before speaking MQTT to it.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port());
    let out = out_dir("url-no-ws");
    let o = unplug(&[
        "scenario",
        "ws-last-will",
        "--broker",
        &url,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("WebSocket"), "{e}");
}

#[test]
fn bad_broker_flags_are_exit_2_and_say_what_was_expected() {
    for (args, needle) in [
        (vec!["--broker", "mosquito"], "expected builtin, mosquitto"),
        (
            vec!["--broker", "ws://127.0.0.1:1/mqtt"],
            "no tcp:// or mqtts:// URL",
        ),
        (
            vec!["--broker", "builtin", "--ca", "/nonexistent/ca.pem"],
            "apply to a broker given by URL",
        ),
        (
            vec![
                "--broker",
                "mqtts://127.0.0.1:1",
                "--ca",
                "/nonexistent/ca.pem",
            ],
            "--ca /nonexistent/ca.pem: cannot read",
        ),
        (
            vec!["--broker", "tcp://127.0.0.1:1", "--insecure"],
            "mqtts:// or wss:// URL",
        ),
        (
            vec![
                "--broker",
                "mosquitto",
                "--mosquitto-bin",
                "/nonexistent/mosquitto",
            ],
            "--mosquitto-bin /nonexistent/mosquitto",
        ),
        (
            vec!["--mosquitto-bin", "/usr/sbin/mosquitto"],
            "only applies to the mosquitto broker",
        ),
    ] {
        let out = out_dir("bad-broker");
        let mut a = vec![
            "scenario",
            "native-last-will",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend(args.iter().copied());
        let o = unplug(&a);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn compare_puts_brokers_and_transports_side_by_side() {
    if mosquitto_or_skip("compare_puts_brokers_and_transports_side_by_side").is_none() {
        return;
    }
    let out = out_dir("compare");
    let o = unplug(&[
        "compare",
        "native-last-will",
        "--brokers",
        "builtin,mosquitto",
        "--transports",
        "tcp,ws",
        "--keepalive",
        "2",
        "--jobs",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = std::fs::read_to_string(out.join("COMPARE.md")).unwrap();
    for b in ["builtin", "mosquitto"] {
        for t in ["tcp", "ws"] {
            let s: Value = serde_json::from_str(
                &std::fs::read_to_string(
                    out.join(format!("native-last-will.{b}.{t}.summary.json")),
                )
                .unwrap(),
            )
            .unwrap();
            assert_eq!(s["transport"], t);
            assert!(s["will_received_ms"].is_number(), "{s:#}");
        }
    }
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| native-last-will |"))
        .count();
    assert_eq!(rows, 4, "{md}");
    assert!(
        md.contains("mosquitto 2.") && md.contains("rumqttd"),
        "{md}"
    );
    assert!(text.contains("last pkt -> will at monit (ms)"), "{text}");
}
