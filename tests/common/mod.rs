//! Helpers for the integration tests: run the built binary, read what it wrote.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_unplug");

/// Where one test's output goes.
fn dir_of(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("unplug-test-{}-{test}", std::process::id()))
}

/// A fresh, empty directory for one test's output.
pub fn out_dir(test: &str) -> PathBuf {
    let d = dir_of(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `unplug ARGS...` to completion.
pub fn unplug(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the unplug binary runs")
}

/// Run `unplug ARGS` to completion within `within`, its output read as it comes (a full pipe
/// never stalls it); killed, and the test failed, if it takes longer.
pub fn unplug_within(args: &[&str], within: Duration) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the unplug binary runs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(within) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // Our own child, not yet reaped: its waiter has not returned.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("unplug {args:?} still running after {within:?}");
        }
    }
}

/// Make a FIFO at `path` (a file that blocks whoever opens it for reading until a writer comes).
pub fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// Wait for `child` to exit within `within`; else kill it and fail the test, saying `what`.
pub fn wait_or_kill(child: &mut std::process::Child, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run one scenario quietly into `out` and return (exit code, summary JSON).
pub fn run_scenario(name: &str, out: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["scenario", name, "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = unplug(&args);
    let stem = Path::new(name).file_stem().unwrap().to_str().unwrap();
    let summary_path = out.join(format!("{stem}.summary.json"));
    let text = std::fs::read_to_string(&summary_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nstdout:\n{}\nstderr:\n{}",
            summary_path.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_str(&text).unwrap(),
    )
}

/// A short MQTT 3.1.1 scenario over TCP with a will: `cycles` cycles of `ms` connected and `ms`
/// idle, a blackhole in the last one as soon as monit has willy's `true`.
pub fn short_cut_scenario(description: &str, keepalive_s: u64, cycles: u32, ms: u64) -> String {
    format!(
        "description = \"{description}\"\ntransport = \"tcp\"\nprotocol = \"3.1.1\"\n\
         keepalive_s = {keepalive_s}\ncycles = {cycles}\nconnected_for_ms = {ms}\n\
         idle_ms = {ms}\nreconnect_ms = 500\n\n[will]\ntopic = \"test/connected\"\n\
         payload = \"false\"\n\n[[faults]]\nkind = \"blackhole\"\ncycle = {cycles}\n\
         trigger = \"after-true\"\n\n[expect]\nwill = true\n"
    )
}

/// A number from the summary, or None for null.
pub fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key)
        .unwrap_or_else(|| panic!("summary has no key {key}: {v:#}"))
        .as_f64()
}

/// Every check's name, for messages.
pub fn failed_checks(v: &Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] != Value::Bool(true))
        .map(|c| format!("{}: expected {}; {}", c["name"], c["expected"], c["actual"]))
        .collect()
}

/// The mosquitto binary, or None after saying loudly why the test is skipped.
pub fn mosquitto_or_skip(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("mosquitto"))
                .find(|p| p.is_file())
        })
        .or_else(|| Some(PathBuf::from("/usr/sbin/mosquitto")).filter(|p| p.is_file()));
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: mosquitto not installed, and CI=true (apt-get install mosquitto)");
        }
        eprintln!(
            "\n*** SKIPPED {test}: mosquitto not installed (apt-get install mosquitto) ***\n"
        );
    }
    found
}

/// The status of the check named `name` in a summary.
pub fn status<'a>(s: &'a Value, name: &str) -> &'a str {
    s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#}", s["checks"]))["status"]
        .as_str()
        .unwrap()
}

/// The directory [`run_on`] wrote into, to read a run's other files.
pub fn out_dir_of(tag: &str, name: &str, broker: &str) -> PathBuf {
    dir_of(&format!("{tag}-{name}-{broker}"))
}

/// Run built-in scenario `name` on `broker` into its own directory; it must exit 0.
pub fn run_on(tag: &str, name: &str, broker: &str) -> Value {
    let out = out_dir(&format!("{tag}-{name}-{broker}"));
    let (code, s) = run_scenario(name, &out, &["--broker", broker]);
    assert_eq!(code, 0, "{name} on {broker}: {:?}", failed_checks(&s));
    s
}

/// Pids of live (not zombie) processes whose command line contains `needle`.
pub fn live_processes_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmd).contains(needle) {
            continue;
        }
        if is_live(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Is process `pid` there and not a zombie?
pub fn is_live(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Poll (every 20 ms, at most `within`) until no live process has `needle` in its command
/// line; the ones left.
pub fn wait_until_gone(needle: &str, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let left = live_processes_with(needle);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The libraries `scripts/drivers.sh` installs, or None after saying why the test is skipped.
pub fn drivers_or_skip(test: &str) -> Option<()> {
    let libs = std::env::var("UNPLUG_DRIVERS").unwrap_or_else(|_| "/opt/unplug-drivers".into());
    let ok = std::path::Path::new(&libs)
        .join("mqttjs/node_modules/mqtt/package.json")
        .is_file()
        && std::path::Path::new(&libs)
            .join("paho/bin/python")
            .is_file();
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: the willy drivers' libraries are not in {libs}, and CI=true (scripts/drivers.sh)");
        }
        eprintln!(
            "\n*** SKIPPED {test}: no willy driver libraries in {libs} (scripts/drivers.sh) ***\n"
        );
        return None;
    }
    Some(())
}

/// Root (or CAP_NET_ADMIN) for a kernel cut, or None after saying why the test is skipped.
pub fn root_or_skip(test: &str) -> Option<()> {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: a kernel cut needs root, and CI=true");
        }
        eprintln!("\n*** SKIPPED {test}: a kernel cut needs root ***\n");
        return None;
    }
    Some(())
}

/// A running `unplug proxy`: its stdout lines as they come; SIGKILLed on drop if still there.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line so far, for messages.
    pub seen: Vec<String>,
}

impl Served {
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::new(BIN)
            .arg("proxy")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unplug proxy starts");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Served {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// `unplug proxy` named `name` in front of the in-process broker ([`broker`]), listening
    /// on a free port, its API on another, its journal in `out`; `extra` flags after those.
    pub fn in_front_of_the_broker(name: &str, out: &Path, extra: &[&str]) -> Served {
        let upstream = broker().to_string();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--api",
            "127.0.0.1:0",
            "--name",
            name,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Served::start(&args)
    }

    /// The first line starting with `prefix` within 10 s.
    pub fn line(&mut self, prefix: &str) -> String {
        self.line_where(prefix, |l| l.starts_with(prefix))
    }

    /// The first line containing `needle` within 10 s.
    pub fn line_with(&mut self, needle: &str) -> String {
        self.line_where(needle, |l| l.contains(needle))
    }

    fn line_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if wanted(&l) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line {what:?}; got:\n{}", self.seen.join("\n"))
    }

    /// The API's ADDR:PORT from the line the server prints.
    pub fn api(&mut self) -> String {
        let l = self.line("api: ");
        l.rsplit("http://").next().unwrap().to_string()
    }

    /// SIGINT, then its exit code (within 10 s).
    pub fn interrupt(&mut self) -> i32 {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // What it printed after the signal, for the tests' messages.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "unplug proxy did not stop on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rumqttd, in this process: started once (it has no shutdown API), shared by the tests that
/// run in one process (`cargo test`; nextest gives each test a process of its own).
pub fn broker() -> std::net::SocketAddr {
    static TCP: std::sync::OnceLock<std::net::SocketAddr> = std::sync::OnceLock::new();
    *TCP.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let b = rt
            .block_on(unplug::broker::start(
                &unplug::broker::BrokerChoice::Builtin,
                &unplug::event::Journal::in_memory(),
            ))
            .unwrap();
        b.endpoints.tcp
    })
}

/// The journal's records, parsed.
pub fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A loopback port that refuses connections for as long as the returned socket lives: bound, so
/// no other test's listener can take it meanwhile, and never listening. (A port taken from a
/// listener just dropped may be handed to another test's listener at once.)
pub fn refusing_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}
