//! One fleet in shards (issue 28): 40 willies, keepalive 2 s, in 2 shard processes against one
//! mosquitto this test starts on a free 127.0.0.1 port, at one `--start-at`, merged; beside it
//! the same fleet unsharded (on a mosquitto of its own). The merge must count what the one
//! fleet counts: every willy, every will once, none lost; and refuse what does not fit.
//! Then `unplug storm` does the same in one command.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A mosquitto on a free loopback port, killed (and reaped) on drop.
struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start(bin: &Path, dir: &Path) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n"),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let m = Mosquitto { child, port };
        // Accepting within 5 s, or the test fails (and drop kills it).
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < until,
                "mosquitto not up on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 40 willies at keepalive 2 s, cut 2.5 s after connecting (after their first ping).
fn fleet_file(dir: &Path) -> PathBuf {
    let path = dir.join("fleet40.toml");
    std::fs::write(
        &path,
        r#"transport = "tcp"
keepalive_s = 2
cycles = 1
connected_for_ms = 0
idle_ms = 0
reconnect_ms = 500
connect_timeout_s = 3

[will]
topic = "fleet/will"
payload = "gone"

[[faults]]
kind = "blackhole"
cycle = 1
after_ms = 2500

[fleet]
willies = 40
wave_size = 10
wave_interval_ms = 10
"#,
    )
    .unwrap();
    path
}

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn summary(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// What does not depend on timing: the counts and each check's status.
fn counts(s: &Value) -> Vec<String> {
    let f = &s["fleet"];
    let mut v: Vec<String> = [
        "willies",
        "connected",
        "wills_expected",
        "wills_received",
        "wills_lost",
        "wills_duplicated",
        "drops_missing",
    ]
    .iter()
    .map(|k| format!("{k}={}", f[k]))
    .collect();
    for c in s["checks"].as_array().unwrap() {
        v.push(format!("{}={}", c["name"], c["status"]));
    }
    v
}

fn stderr_of(c: Child, what: &str) -> String {
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{what}: {err}");
    err
}

#[test]
fn two_shards_of_a_fleet_merged_count_what_the_one_fleet_counts() {
    let Some(bin) = mosquitto_or_skip("two_shards_of_a_fleet_merged") else {
        return;
    };
    let dir = out_dir("fleet-shards");
    let broker = Mosquitto::start(&bin, &dir);
    let url = broker.url();
    let file = fleet_file(&dir);
    let file = file.to_str().unwrap();
    let (s1, s2, one, merged) = (
        dir.join("s1"),
        dir.join("s2"),
        dir.join("one"),
        dir.join("merged"),
    );
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let shard = |k: &str, out: &Path| {
        let out = out.to_str().unwrap().to_string();
        spawn(&[
            "scenario",
            file,
            "--partition",
            k,
            "--start-at",
            &at,
            "--broker",
            &url,
            "--out",
            &out,
            "--quiet",
        ])
    };
    let (c1, c2) = (shard("1/2", &s1), shard("2/2", &s2));
    // The same fleet whole, at the same time, on a mosquitto of its own (its client ids are
    // the shards' too, so not on theirs).
    let c3 = spawn(&[
        "scenario",
        file,
        "--broker",
        "mosquitto",
        "--out",
        one.to_str().unwrap(),
        "--quiet",
    ]);
    // Each is bounded: 2 s to the start, the 3 s connect window and 2.5 s, mosquitto's 6 s
    // scan at most, and its own time limit; a hang would fail here after 90 s.
    for (mut c, what) in [(c1, "shard 1/2"), (c2, "shard 2/2"), (c3, "unsharded")] {
        wait_or_kill_keep(&mut c, Duration::from_secs(90), what);
        stderr_of(c, what);
    }
    for (d, k, own) in [(&s1, 1, [0, 2]), (&s2, 2, [1, 3])] {
        let m = summary(d.join("SHARD.json"));
        assert_eq!(m["command"], "fleet", "{m:#}");
        assert_eq!(m["partition"]["k"], k);
        let w = summary(d.join("fleet40.willies.json"));
        let mut ids: Vec<u64> = w["facts"]["willies"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        ids.sort();
        assert_eq!(ids.len(), 20);
        // Round-robin over the global index.
        assert!(ids.iter().all(|i| i % 2 == (k - 1)), "{ids:?}");
        assert_eq!(&ids[..2], own);
        let s = summary(d.join("fleet40.summary.json"));
        assert_eq!(s["fleet"]["wills_received"], 20, "{:#}", s["fleet"]);
    }

    let o = unplug_within(
        &[
            "merge",
            merged.to_str().unwrap(),
            s1.to_str().unwrap(),
            s2.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = summary(merged.join("fleet40.summary.json"));
    let u = summary(one.join("fleet40.summary.json"));
    assert_eq!(counts(&m), counts(&u));
    let f = &m["fleet"];
    assert_eq!(
        (f["willies"].as_u64(), f["wills_received"].as_u64()),
        (Some(40), Some(40))
    );
    assert_eq!(f["wills_lost"], 0);
    assert_eq!(f["wills_duplicated"], 0);
    // Each shard with its harness and its cut by its own clock, near the planned moment.
    let shards = f["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    for s in shards {
        assert_eq!(s["willies"], 20);
        assert!(s["harness_peak_rss_mb"].as_f64().unwrap() > 1.0, "{s:#}");
        let late = s["cut_after_planned_ms"].as_f64().unwrap();
        assert!((0.0..100.0).contains(&late), "{s:#}");
    }
    let svg = std::fs::read_to_string(merged.join("fleet40.svg")).unwrap();
    assert!(svg.contains(r#"<g id="cdf">"#) && svg.contains("40 willies"));
    assert!(merged.join("FLEET.md").is_file() && merged.join("index.html").is_file());

    // Refused, exit 2: a shard missing, a shard twice, a willies file of another shard's run.
    let refused = |args: &[&str], says: &str| {
        let o = unplug_within(args, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    let m2 = dir.join("m2");
    let (m2, s1s, s2s) = (
        m2.to_str().unwrap(),
        s1.to_str().unwrap(),
        s2.to_str().unwrap(),
    );
    refused(&["merge", m2, s1s], "shards not given: 2/2");
    refused(&["merge", m2, s1s, s1s], "shard 1/2 given twice");
    std::fs::copy(
        s2.join("fleet40.willies.json"),
        s1.join("fleet40.willies.json"),
    )
    .unwrap();
    refused(&["merge", m2, s1s, s2s], "overwritten since?");

    // The same in one command (after the shards: the same client ids on the same broker).
    let storm = dir.join("storm");
    let o = unplug_within(
        &[
            "storm",
            "--shards",
            "2",
            "--broker",
            &url,
            "--start-in",
            "1",
            "--out",
            storm.to_str().unwrap(),
            file,
        ],
        Duration::from_secs(90),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let st = summary(storm.join("merged/fleet40.summary.json"));
    assert_eq!(counts(&st), counts(&u));
    assert_eq!(st["fleet"]["shards"].as_array().unwrap().len(), 2);
}

/// [`wait_or_kill`] that leaves the child to be reaped by its caller.
fn wait_or_kill_keep(child: &mut Child, within: Duration, what: &str) {
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
