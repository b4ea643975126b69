//! mosquitto, spawned as a child process with a config of ours on free loopback ports.
//!
//! ```text
//!  find the binary (--mosquitto-bin, PATH, /usr/sbin) --`-h`--> version
//!  temp dir: mosquitto.conf (tcp + websockets listeners on 127.0.0.1)
//!  spawn (own process group, parent-death signal, kill on drop)
//!      stdout/stderr --each line--> journal `mqtt | ...` (BrokerLog)
//!  wait until both ports accept --> Broker { process: Some(..) }
//!  stop: SIGTERM, wait up to 2 s, SIGKILL, reap; Drop does the same without waiting long
//! ```
//!
//! The child must never outlive the run: `stop` at the end, `Drop` on an error or a panic
//! (Ctrl-C ends the run normally, so it reaches `stop`), and `PR_SET_PDEATHSIG` for a runner
//! that is killed outright. It runs in its own process group so a terminal's Ctrl-C reaches only
//! unplug, which then ends the run in order instead of losing the broker mid-judgement.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{free_port, wait_until_accepting, Broker, Endpoints};
use crate::event::{Actor, Event, Journal};

/// Where Debian puts it (not on a normal user's PATH).
pub const DEBIAN_PATH: &str = "/usr/sbin/mosquitto";

/// The start of every temp dir we make: tests find a leaked child by it in /proc/*/cmdline.
pub const TEMP_PREFIX: &str = "unplug-mosquitto-";

/// How to install it, for the error when it is missing.
pub const INSTALL_HINT: &str =
    "install it with `apt-get install mosquitto` (Debian/Ubuntu), or pass --mosquitto-bin PATH";

/// Find the mosquitto binary: the one given, else PATH, else Debian's /usr/sbin.
pub fn find(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        anyhow::bail!("--mosquitto-bin {}: no such file", p.display());
    }
    if let Some(p) = on_path("mosquitto") {
        return Ok(p);
    }
    let debian = PathBuf::from(DEBIAN_PATH);
    if debian.is_file() {
        return Ok(debian);
    }
    anyhow::bail!("mosquitto not found on PATH or at {DEBIAN_PATH}: {INSTALL_HINT}")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// `mosquitto -h` prints `mosquitto version 2.0.11` on its first line (and exits non-zero).
pub fn version(bin: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} -h", bin.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    parse_version(&text).with_context(|| {
        format!(
            "{} -h did not print `mosquitto version X.Y.Z` on its first line: {:?}",
            bin.display(),
            text.lines().next().unwrap_or("")
        )
    })
}

fn parse_version(help: &str) -> Option<String> {
    let first = help.lines().next()?;
    let v = first.strip_prefix("mosquitto version ")?.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The config we run it with. Every listener is bound to 127.0.0.1 explicitly: mosquitto 2.0
/// binds a websockets listener to every interface unless `socket_domain ipv4` and an address
/// are given.
///
/// Started as root, mosquitto switches to the `mosquitto` user, and a change of credentials
/// clears the parent-death signal (prctl(2)): then a killed runner would leave it behind. So as
/// root it stays root (`user root`); it listens on loopback only and lives for one run.
pub fn config(tcp_port: u16, ws_port: u16, as_root: bool) -> String {
    let user = if as_root { "user root\n" } else { "" };
    format!(
        "# written by unplug for one run; deleted when the run ends
{user}per_listener_settings false
allow_anonymous true
persistence false
log_dest stdout
log_type all
connection_messages true
log_timestamp true
log_timestamp_format %Y-%m-%dT%H:%M:%S
listener {tcp_port} 127.0.0.1
protocol mqtt
socket_domain ipv4
listener {ws_port} 127.0.0.1
protocol websockets
socket_domain ipv4
"
    )
}

/// A private temp dir for one broker's config, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        sweep_stale(&std::env::temp_dir());
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

/// The process a temp dir of ours belongs to: `unplug-mosquitto-PID-N` gives PID.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Remove the temp dirs of unplug processes that are gone: a run killed with SIGKILL never
/// drops its TempDir, so the next run cleans up after it. A dir whose process still exists
/// (or whose PID was reused) is left alone.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running mosquitto. Dropping it kills and reaps the child.
pub struct Process {
    child: tokio::process::Child,
    /// Holds the config until the child is gone.
    _dir: TempDir,
}

impl Process {
    /// SIGTERM, up to 2 s for a clean exit (its last log lines join the journal), then SIGKILL;
    /// always reaped.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // An error or a panic got here before `stop`: kill now and reap without an executor.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.start_kill();
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The level of a mosquitto log line: it prints none, so it is read off the text.
fn level(line: &str, stderr: bool) -> &'static str {
    let msg = line.split_once(": ").map_or(line, |(_, m)| m);
    if msg.starts_with("Error") {
        "error"
    } else if msg.starts_with("Warning") {
        "warning"
    } else if stderr {
        "stderr"
    } else {
        "info"
    }
}

fn forward_lines<R: AsyncRead + Unpin + Send + 'static>(r: R, journal: Journal, stderr: bool) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            journal.record(
                Actor::Mqtt,
                Event::BrokerLog {
                    level: level(&line, stderr).to_string(),
                    line,
                },
            );
        }
    });
}

/// Start mosquitto and wait until both of its listeners accept connections.
pub async fn start(explicit_bin: Option<&Path>, journal: &Journal) -> anyhow::Result<Broker> {
    let bin = find(explicit_bin)?;
    let version = version(&bin)?;
    let dir = TempDir::new().context("creating a temp dir for the mosquitto config")?;
    let tcp_port = free_port()?;
    let ws_port = free_port()?;
    let conf = dir.0.join("mosquitto.conf");
    // /proc/self belongs to our effective uid.
    let as_root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    std::fs::write(&conf, config(tcp_port, ws_port, as_root))
        .with_context(|| format!("writing {}", conf.display()))?;

    // mosquitto 2.0 writes its log with stdio and does not flush a pipe per line: without
    // line buffering (coreutils' stdbuf, which then execs it: same pid) every `mqtt` line would
    // reach the journal in one lump at exit, stamped with the wrong times.
    let mut cmd = match on_path("stdbuf") {
        Some(stdbuf) => {
            let mut c = tokio::process::Command::new(stdbuf);
            c.args(["-oL", "-eL"]).arg(&bin);
            c
        }
        None => tokio::process::Command::new(&bin),
    };
    cmd.arg("-c")
        .arg(&conf)
        .current_dir(&dir.0)
        // Its log timestamps (strftime on local time) in UTC, like every other line.
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls: prctl and getppid.
    unsafe {
        cmd.pre_exec(move || {
            // Die with the thread that spawned us (the runner's main thread, alive for the whole
            // run), so a SIGKILLed unplug leaves no broker behind.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            // The parent may have died before the line above took effect.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::other(
                    "unplug exited while starting mosquitto",
                ));
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {} -c {}", bin.display(), conf.display()))?;
    if let Some(out) = child.stdout.take() {
        forward_lines(out, journal.clone(), false);
    }
    if let Some(err) = child.stderr.take() {
        forward_lines(err, journal.clone(), true);
    }
    let mut process = Process { child, _dir: dir };

    let tcp = ([127, 0, 0, 1], tcp_port).into();
    let ws = ([127, 0, 0, 1], ws_port).into();
    let within = Duration::from_secs(10);
    for addr in [tcp, ws] {
        if let Err(e) = wait_until_accepting(addr, within).await {
            let exited = process.child.try_wait().ok().flatten();
            process.stop().await;
            return Err(match exited {
                Some(status) => anyhow::anyhow!(
                    "mosquitto exited at start ({status}); its log is in the run's .log file"
                ),
                None => e,
            });
        }
    }
    Ok(Broker {
        name: format!("mosquitto {version}"),
        endpoints: Endpoints {
            tcp,
            ws: Some(ws),
            ws_path: "/mqtt".to_string(),
            v5: None,
        },
        profile: super::profile::Profile::mosquitto(&version),
        process: Some(process),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_temp_dirs_name_an_owner() {
        assert_eq!(owner_pid("unplug-mosquitto-4242-0"), Some(4242));
        assert_eq!(owner_pid("unplug-mosquitto-4242"), None);
        assert_eq!(owner_pid("unplug-test-4242-x"), None);
        assert_eq!(owner_pid("unplug-mosquitto-x-1"), None);
    }

    #[test]
    fn a_dead_runs_temp_dir_is_swept_and_a_live_ones_kept() {
        let tmp = std::env::temp_dir().join(format!("unplug-sweep-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        // Above Linux's largest pid_max (2^22): no process can have this PID.
        let dead = tmp.join(format!("{TEMP_PREFIX}99999999-0"));
        let live = tmp.join(format!("{TEMP_PREFIX}{}-0", std::process::id()));
        let other = tmp.join("someone-else-1-0");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        sweep_stale(&tmp);
        assert!(!dead.exists() && live.exists() && other.exists());
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn version_is_read_off_the_first_help_line() {
        let help = "mosquitto version 2.0.11\n\nmosquitto is an MQTT v5.0/v3.1.1/v3.1 broker.\n";
        assert_eq!(parse_version(help).as_deref(), Some("2.0.11"));
        assert_eq!(parse_version("Usage: mosquitto"), None);
    }

    #[test]
    fn every_listener_is_bound_to_loopback_ipv4() {
        let c = config(1111, 2222, false);
        assert!(!c.contains("user root"));
        assert!(config(1111, 2222, true).contains("\nuser root\n"));
        assert!(c.contains("listener 1111 127.0.0.1\n"));
        assert!(c.contains("listener 2222 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n"));
        assert!(c.contains("allow_anonymous true"));
        assert!(c.contains("connection_messages true"));
    }

    #[test]
    fn log_levels_are_read_off_the_text() {
        assert_eq!(
            level("2026-01-01T00:00:00: Error: Address in use", false),
            "error"
        );
        assert_eq!(
            level("2026-01-01T00:00:00: New client connected", false),
            "info"
        );
        assert_eq!(level("oops", true), "stderr");
    }

    #[test]
    fn a_missing_explicit_binary_is_named() {
        let e = find(Some(Path::new("/nonexistent/mosquitto"))).unwrap_err();
        assert!(
            e.to_string()
                .contains("--mosquitto-bin /nonexistent/mosquitto"),
            "{e}"
        );
    }
}
