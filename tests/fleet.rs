//! Fleets (`[fleet]`): many willies through one proxy, cut at once, every will counted and
//! timed from each willy's own last packet. Small fleets here (the 4,000-willy `will-storm` is
//! a benchmark, run by hand: see docs/guide.md), on the in-process broker, mosquitto, and a
//! broker that drops late on purpose (tests/brokers/misbroker.py).
//!
//! Bounds are the spec's, never widened: each will 1.5 x keepalive after the willy's last
//! packet, minus 50 ms, plus the profile's late allowance (250 ms for rumqttd and for a broker
//! judged by the spec; mosquitto 2.0's 6.35 s scan).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// A fleet scenario file of `willies` at keepalive 2 s, written into `out`.
fn fleet_file(out: &Path, name: &str, willies: u32, extra: &str) -> PathBuf {
    let path = out.join(format!("{name}.toml"));
    let text = format!(
        r#"transport = "tcp"
keepalive_s = 2
cycles = 1
connected_for_ms = 0
idle_ms = 0
reconnect_ms = 500
{extra}
[will]
topic = "fleet/will"
payload = "gone"

[[faults]]
kind = "blackhole"
cycle = 1

[fleet]
willies = {willies}
wave_size = 10
wave_interval_ms = 10
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn quantile(f: &Value, key: &str, q: &str) -> f64 {
    f[key][q]
        .as_f64()
        .unwrap_or_else(|| panic!("fleet.{key}.{q} in {f:#}"))
}

#[test]
fn a_fleet_of_50_on_the_builtin_broker_gets_every_will_once_within_the_bound() {
    let out = out_dir("fleet-builtin-50");
    let file = fleet_file(&out, "fleet50", 50, "");
    let (code, s) = run_scenario(file.to_str().unwrap(), &out, &[]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let f = &s["fleet"];
    assert_eq!(f["willies"], 50, "{f:#}");
    assert_eq!(f["wills_received"], 50, "{f:#}");
    assert_eq!(f["wills_lost"], 0, "{f:#}");
    assert_eq!(f["wills_duplicated"], 0, "{f:#}");
    // rumqttd: 1.5 x 2 s after each willy's own last packet, with its 250 ms.
    for key in ["drop_after_last_packet_ms", "will_after_last_packet_ms"] {
        for q in ["p50", "p90", "p99", "max"] {
            let v = quantile(f, key, q);
            assert!((2950.0..=3250.0).contains(&v), "{key}.{q} = {v}");
        }
        assert!(quantile(f, key, "p50") <= quantile(f, key, "max"));
    }
    // The last will comes at most the bound after the cut (every last packet precedes it).
    let last = f["cut_to_last_will_ms"].as_f64().unwrap();
    assert!(last > 0.0 && last <= 3250.0, "cut to last will {last}");
    assert!(f["harness_peak_rss_mb"].as_f64().unwrap() > 1.0, "{f:#}");
    assert!(
        f["harness"]["nofile_limit"].as_u64().unwrap() >= 256,
        "{f:#}"
    );
    let lag = f["harness"]["loop_lag_max_ms"].as_f64().unwrap();
    assert!(
        lag <= f["harness"]["lag_bound_ms"].as_f64().unwrap(),
        "{lag}"
    );
    for c in ["will", "will-once", "keepalive-drop", "will-timing"] {
        assert_eq!(status(&s, c), "pass", "{c}");
    }
    picture_rasterises(&out.join("fleet50.svg"));
    // Judged again from its journal: the same checks and counts.
    let jsonl = out.join("fleet50.events.jsonl");
    let o = unplug(&["judge", jsonl.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again["checks"], s["checks"]);
    for key in ["wills_received", "wills_lost", "drop_after_last_packet_ms"] {
        assert_eq!(again["fleet"][key], f[key], "{key}");
    }
}

/// The fleet's picture is an SVG resvg reads and draws with ink (kept as a PNG beside it).
fn picture_rasterises(svg: &Path) {
    let text = std::fs::read_to_string(svg).unwrap();
    assert!(text.contains(r#"<g id="cdf">"#) && text.contains(r#"<g id="arrivals">"#));
    let mut opt = resvg::usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(&text, &opt).expect("usvg reads the fleet picture");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let inked = pixmap
        .pixels()
        .iter()
        .filter(|p| p.red().min(p.green()).min(p.blue()) < 245)
        .count();
    assert!(inked > 1000, "{inked} inked pixels");
    pixmap.save_png(svg.with_extension("png")).unwrap();
}

#[test]
fn a_fleet_of_30_on_mosquitto_gets_every_will_once_within_its_profile() {
    let Some(_) = mosquitto_or_skip("a_fleet_of_30_on_mosquitto") else {
        return;
    };
    let out = out_dir("fleet-mosquitto-30");
    let file = fleet_file(&out, "fleet30", 30, "");
    let (code, s) = run_scenario(file.to_str().unwrap(), &out, &["--broker", "mosquitto"]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let f = &s["fleet"];
    assert_eq!(f["wills_received"], 30, "{f:#}");
    assert_eq!(f["wills_duplicated"], 0, "{f:#}");
    // mosquitto 2.0: its 6 s keepalive scan, 1.5 x 2 s - 50 ms to 1.5 x 2 s + 6.35 s.
    let max = quantile(f, "will_after_last_packet_ms", "max");
    assert!((2950.0..=9350.0).contains(&max), "{max}");
}

/// misbroker, running; killed on drop (and it exits when our end of its stdin closes).
struct Misbroker {
    child: std::process::Child,
    tcp: u16,
}

impl Misbroker {
    fn start(flags: &[&str]) -> Misbroker {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/brokers/misbroker.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--tcp", "0", "--exit-on-stdin-eof"])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs misbroker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Value = serde_json::from_str(&line).unwrap();
        Misbroker {
            tcp: ports["tcp"].as_u64().unwrap() as u16,
            child,
        }
    }
}

impl Drop for Misbroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_broker_that_drops_a_fleet_at_three_times_keepalive_fails_with_its_figures() {
    let b = Misbroker::start(&["--drop-factor", "3"]);
    let out = out_dir("fleet-misbroker-3x");
    let file = fleet_file(&out, "fleet20", 20, "");
    let url = format!("tcp://127.0.0.1:{}", b.tcp);
    let (code, s) = run_scenario(file.to_str().unwrap(), &out, &["--broker", &url]);
    assert_eq!(code, 1, "{s:#}");
    assert_eq!(status(&s, "keepalive-drop"), "fail");
    assert_eq!(status(&s, "will-timing"), "fail");
    // Every will still came, once: late, not lost.
    assert_eq!(status(&s, "will"), "pass");
    let f = &s["fleet"];
    assert_eq!(f["wills_received"], 20, "{f:#}");
    // 3 x 2 s after each willy's last packet, as misbroker's exact timer does it.
    let p50 = quantile(f, "drop_after_last_packet_ms", "p50");
    assert!((5950.0..=6250.0).contains(&p50), "{p50}");
}

#[test]
fn a_fleet_over_websocket_is_refused_with_the_key_named() {
    let out = out_dir("fleet-ws");
    let file = fleet_file(&out, "fleetws", 5, "");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("transport = \"tcp\"", "transport = \"ws\"");
    std::fs::write(&file, text).unwrap();
    let o = unplug(&[
        "scenario",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("fleet.willies") && err.contains("plain TCP"),
        "{err}"
    );
}

#[test]
fn a_fleet_larger_than_the_open_file_limit_is_refused_before_it_starts() {
    let out = out_dir("fleet-too-big");
    let file = fleet_file(&out, "fleetbig", 100_000, "");
    let o = unplug(&[
        "scenario",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("open files") && err.contains("hard limit"),
        "{err}"
    );
}

#[test]
fn an_mqtt_5_fleet_of_20_on_the_builtin_broker_gets_every_will_once() {
    let out = out_dir("fleet-v5-20");
    let file = fleet_file(&out, "fleetv5", 20, "protocol = \"5\"");
    let (code, s) = run_scenario(file.to_str().unwrap(), &out, &[]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    assert_eq!(s["protocol"], "5");
    assert_eq!(s["fleet"]["wills_received"], 20, "{:#}", s["fleet"]);
    assert_eq!(s["fleet"]["wills_duplicated"], 0);
}

#[test]
fn a_fleet_refuses_the_keys_of_one_willys_cycles_and_any_cut_but_one_blackhole() {
    let out = out_dir("fleet-refused");
    let cases: [(&str, &str, &str); 3] = [
        (
            "[publisher]\ntopic = \"p\"\nevery_ms = 100\n",
            "",
            "[publisher]",
        ),
        (
            "",
            "[[faults]]\nkind = \"blackhole\"\ncycle = 1\n",
            "exactly one",
        ),
        ("", "heal_after_ms = 1000\n", "never heals"),
    ];
    for (i, (table, fault, says)) in cases.iter().enumerate() {
        let file = fleet_file(&out, &format!("refused{i}"), 5, "");
        let text = std::fs::read_to_string(&file).unwrap();
        // A table goes before [will]; a fault key or entry after the one [[faults]] entry.
        let text = text
            .replace("[will]", &format!("{table}[will]"))
            .replace("cycle = 1\n", &format!("cycle = 1\n{fault}"));
        std::fs::write(&file, text).unwrap();
        let o = unplug(&[
            "scenario",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "case {i}: {err}");
    }
}
