//! Brokers nobody here wrote, installed from the package registries by
//! scripts/third-party-brokers.sh (which .ci/run calls) and reached only by URL:
//! - amqtt 0.12.1 (PyPI) never drops a silent client [breaks MQTT-3.1.2-24]: it must fail, with
//!   "never" said with how long the run watched;
//! - aedes 1.2.0 (npm) drops at 1.5 x keepalive and says nothing of its name: judged by the
//!   spec's own bound, it must pass.
//!
//! Without them installed these tests say SKIPPED loudly and pass; with CI=true they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A port held for a broker this test starts, until it is dropped (see `PortHold`): no other
/// process is handed it meanwhile.
fn free_port() -> unplug::broker::PortHold {
    unplug::broker::hold_port().unwrap()
}

fn installed(test: &str, what: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("UNPLUG_THIRD_PARTY").unwrap_or("/opt/unplug-third-party".into()),
    );
    let p = dir.join(what);
    if p.exists() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{test}: {} missing, and CI=true (run scripts/third-party-brokers.sh)",
            p.display()
        );
    }
    eprintln!(
        "\n*** SKIPPED {test}: {} missing (run scripts/third-party-brokers.sh) ***\n",
        p.display()
    );
    None
}

/// A third-party broker in the foreground; killed on drop.
struct Running {
    child: Child,
    tcp: u16,
    ws: u16,
}

impl Running {
    fn start(mut cmd: Command, tcp: u16, ws: u16) -> Running {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker starts");
        let r = Running { child, tcp, ws };
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [tcp, ws] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "the broker did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        r
    }

    fn urls(&self) -> String {
        format!(
            "tcp://127.0.0.1:{},ws://127.0.0.1:{}/mqtt",
            self.tcp, self.ws
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/independent")
        .join(name)
}

fn amqtt(dir: &Path) -> Running {
    let holds = (free_port(), free_port());
    let (tcp, ws) = (holds.0.port, holds.1.port);
    let mut cmd = Command::new(dir.join("amqtt/bin/python"));
    cmd.arg(script("start-amqtt.py")).args([
        "--port",
        &tcp.to_string(),
        "--ws-port",
        &ws.to_string(),
    ]);
    Running::start(cmd, tcp, ws)
}

fn aedes(dir: &Path) -> Running {
    let holds = (free_port(), free_port());
    let (tcp, ws) = (holds.0.port, holds.1.port);
    let mut cmd = Command::new("node");
    cmd.arg(script("start-aedes.js")).args([
        "--prefix",
        dir.join("aedes").to_str().unwrap(),
        "--port",
        &tcp.to_string(),
        "--ws-port",
        &ws.to_string(),
        "--ws-path",
        "/mqtt",
    ]);
    Running::start(cmd, tcp, ws)
}

#[test]
fn amqtt_never_drops_a_silent_client_and_fails_saying_how_long_it_watched() {
    let Some(dir) = installed("amqtt", "amqtt/bin/python") else {
        return;
    };
    let b = amqtt(&dir);
    let out = out_dir("amqtt-ws-last-will");
    let (code, s) = run_scenario(
        "ws-last-will",
        &out,
        &["--broker", &b.urls(), "--keepalive", "2"],
    );
    assert_eq!(code, 1, "{s:#}");
    assert_eq!(status(&s, "keepalive-drop"), "fail");
    assert_eq!(status(&s, "will"), "fail");
    let drop = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "keepalive-drop")
        .unwrap()["actual"]
        .as_str()
        .unwrap()
        .to_string();
    // 4 x keepalive + 10 s after the cut, then "never".
    assert!(
        drop.contains("never closed the connection (observed for 1"),
        "{drop}"
    );
    assert!(num(&s, "duration_ms").unwrap() > 18_000.0);
}

#[test]
fn aedes_is_judged_by_the_spec_and_passes() {
    let Some(dir) = installed("aedes", "aedes/node_modules/aedes") else {
        return;
    };
    let b = aedes(&dir);
    for name in ["ws-last-will", "native-last-will"] {
        let out = out_dir(&format!("aedes-{name}"));
        let (code, s) = run_scenario(name, &out, &["--broker", &b.urls(), "--keepalive", "2"]);
        assert_eq!(code, 0, "{name}: {:?}", failed_checks(&s));
        assert!(
            s["broker"].as_str().unwrap().contains("judged by the spec"),
            "{}",
            s["broker"]
        );
        let d = num(&s, "drop_after_last_packet_ms").unwrap();
        assert!((2950.0..=3250.0).contains(&d), "{name}: drop {d} ms");
    }
}

#[test]
fn probe_prints_the_row_of_a_broker_given_by_url() {
    let Some(dir) = installed("probe", "amqtt/bin/python") else {
        return;
    };
    let b = amqtt(&dir);
    let out = out_dir("amqtt-probe");
    let o = unplug(&[
        "probe",
        "--brokers",
        &format!("tcp://127.0.0.1:{}", b.tcp),
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "4",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    // amqtt breaks the spec: exit 1, a failed check, not a harness error.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| unknown broker | tcp |"))
        .unwrap_or_else(|| panic!("no tcp row: {stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(!cells[3].contains('!'), "abrupt close: will at once: {row}");
    assert_eq!(cells[4], "never !", "{row}");
    assert_eq!(cells[5], "never !", "{row}");
    assert_eq!(cells[6], "no will (6 DISCONNECTs)", "{row}");
    // amqtt speaks no MQTT 5: its v5 cells say so.
    assert_eq!(cells[7], "no MQTT 5", "{row}");
    assert!(std::fs::read_to_string(out.join("PROBE.md"))
        .unwrap()
        .contains(row));
}
