//! mosquitto, spawned as a child process with a config of ours on free loopback ports.
//!
//! ```text
//!  find the binary (--mosquitto-bin, PATH, /usr/sbin) --`-h`--> version --> dialect (1.4 | 2.0)
//!  temp dir: $TMPDIR/unplug-mosquitto-PID-RANDOM, created fresh, 0700
//!      unplug.owner (our pid and its start time), mosquitto.conf (tcp + websockets listeners on
//!      127.0.0.1), both created new: nothing already there is followed or reused
//!  spawn (own process group, parent-death signal, kill on drop)
//!      stdout/stderr --each line--> journal `mqtt | ...` (BrokerLog)
//!  wait until both ports accept --> Broker { process: Some(..) }
//!  stop: SIGTERM, wait up to 2 s, SIGKILL, reap; Drop does the same without waiting long
//! ```
//!
//! The child must never outlive the run: `stop` at the end, `Drop` on an error or a panic
//! (SIGINT or SIGTERM during the cycles ends the run normally, so it reaches `stop`; during the
//! start the run is dropped, so `Drop`), and `PR_SET_PDEATHSIG` for a runner
//! that is killed outright. It runs in its own process group so a terminal's Ctrl-C reaches only
//! unplug, which then ends the run in order instead of losing the broker mid-judgement.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{hold_port, wait_until_accepting, Broker, Endpoints};
use crate::event::{Actor, Event, Journal};
use crate::scenario::BrokerSettings;

/// Where Debian puts it (not on a normal user's PATH).
pub const DEBIAN_PATH: &str = "/usr/sbin/mosquitto";

/// The start of every temp dir we make (`unplug-mosquitto-PID-RANDOM`): tests find a leaked
/// child by it in /proc/*/cmdline.
pub const TEMP_PREFIX: &str = "unplug-mosquitto-";

/// The file in each temp dir that says which process made it: `unplug-mosquitto pid=P start=T`
/// (T: the process's start time in clock ticks after boot, /proc/P/stat field 22, so a reused
/// pid is told apart).
const OWNER_FILE: &str = "unplug.owner";

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
    let mut cmd = std::process::Command::new(bin);
    crate::lifeline::die_with_parent_std(&mut cmd, nix::sys::signal::Signal::SIGKILL);
    let out = cmd
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
    // 1.4 adds its build date: `mosquitto version 1.4.15 (build date 2018-02-28 ...)`.
    let v = first
        .strip_prefix("mosquitto version ")?
        .split_whitespace()
        .next()?;
    Some(v.to_string())
}

/// The config we run it with. Every listener is bound to 127.0.0.1 explicitly: mosquitto 2.0
/// binds a websockets listener to every interface unless `socket_domain ipv4` and an address
/// are given.
///
/// Started as root, mosquitto switches to the `mosquitto` user, and a change of credentials
/// clears the parent-death signal (prctl(2)): then a killed runner would leave it behind. So as
/// root it stays root (`user root`); it listens on loopback only and lives for one run.
pub fn config(tcp_port: u16, ws_port: u16, as_root: bool) -> String {
    config_with(tcp_port, ws_port, as_root, &BrokerSettings::default())
}

/// The least `max_keepalive` mosquitto 2.0 starts with. Measured (2.0.11): `max_keepalive 9`
/// stops it with "Error: Invalid max_keepalive value (9).", 10 is accepted.
pub const MIN_MAX_KEEPALIVE_S: u16 = 10;

/// Which config language a mosquitto speaks: 1.4 knows none of 2.0's `per_listener_settings`,
/// `socket_domain`, `log_timestamp_format` or `max_keepalive` and stops at the first unknown
/// option (1.4.15 src/conf.c: "Error: Unknown configuration variable").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// mosquitto 1.4.x.
    V14,
    /// mosquitto 2.0 (and what the profile treats as it).
    V20,
}

impl Dialect {
    /// The dialect of the mosquitto that says it is `version` (`1.4.15`, `2.0.11`).
    pub fn of(version: &str) -> Dialect {
        if version.starts_with("1.4.") || version == "1.4" {
            Dialect::V14
        } else {
            Dialect::V20
        }
    }
}

/// [`config`] with a scenario's `[broker]` settings: `max_keepalive` (2.0: a v5 client asking
/// for more, or for 0, gets it as Server Keep Alive in the CONNACK; a 3.1.1 one is refused).
pub fn config_with(
    tcp_port: u16,
    ws_port: u16,
    as_root: bool,
    settings: &BrokerSettings,
) -> String {
    config_for(Dialect::V20, tcp_port, ws_port, as_root, settings)
}

/// mosquitto 1.4's config: the same listeners on 127.0.0.1 (1.4 binds a listener to its host
/// given on the `listener` line, libwebsockets' `iface` for a websockets one: websockets.c
/// 670), its log timestamps in its own form (`1528807278: `, seconds since the epoch, as in
/// the seed), no `max_keepalive` (the profile's `cannot`).
fn config_14(tcp_port: u16, ws_port: u16, as_root: bool) -> String {
    let user = if as_root { "user root\n" } else { "" };
    format!(
        "# written by unplug for one run (mosquitto 1.4 dialect); deleted when the run ends
{user}allow_anonymous true
persistence false
log_dest stdout
log_type all
connection_messages true
log_timestamp true
listener {tcp_port} 127.0.0.1
protocol mqtt
listener {ws_port} 127.0.0.1
protocol websockets
"
    )
}

/// The config for a mosquitto of `dialect`.
pub fn config_for(
    dialect: Dialect,
    tcp_port: u16,
    ws_port: u16,
    as_root: bool,
    settings: &BrokerSettings,
) -> String {
    if dialect == Dialect::V14 {
        return config_14(tcp_port, ws_port, as_root);
    }
    let max_keepalive = settings
        .max_keepalive_s
        .map_or(String::new(), |k| format!("max_keepalive {k}\n"));
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
{max_keepalive}"
    )
}

/// The TLS listeners (MQTT over TLS, WebSocket over TLS) added to [`config_with`]'s, with
/// the run's certificate. No `cafile`: mosquitto asks no client certificate then.
pub fn tls_listeners(tls_port: u16, wss_port: u16, cert: &Path, key: &Path) -> String {
    tls_listeners_for(Dialect::V20, tls_port, wss_port, cert, key)
}

/// [`tls_listeners`] in `dialect` (1.4: no `socket_domain`).
pub fn tls_listeners_for(
    dialect: Dialect,
    tls_port: u16,
    wss_port: u16,
    cert: &Path,
    key: &Path,
) -> String {
    let (cert, key) = (cert.display(), key.display());
    if dialect == Dialect::V14 {
        return format!(
            "listener {tls_port} 127.0.0.1
protocol mqtt
certfile {cert}
keyfile {key}
listener {wss_port} 127.0.0.1
protocol websockets
certfile {cert}
keyfile {key}
"
        );
    }
    format!(
        "listener {tls_port} 127.0.0.1
protocol mqtt
socket_domain ipv4
certfile {cert}
keyfile {key}
listener {wss_port} 127.0.0.1
protocol websockets
socket_domain ipv4
certfile {cert}
keyfile {key}
"
    )
}

/// A private temp dir for one broker's files (mosquitto's config, the run's certificates),
/// removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A new dir with a random name in $TMPDIR (never one that already exists), 0700, with our
    /// owner file in it.
    pub fn new() -> std::io::Result<TempDir> {
        let tmp = std::env::temp_dir();
        sweep_stale(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
            .rand_bytes(10)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&tmp)?;
        let mut owner = crate::fsx::create_new(&dir.path().join(OWNER_FILE))?;
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap_or(0);
        writeln!(
            owner,
            "{} pid={me} start={start}",
            TEMP_PREFIX.trim_end_matches('-')
        )?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A process's start time (clock ticks after boot), field 22 of /proc/PID/stat; None if gone.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The process a temp dir of ours belongs to: `unplug-mosquitto-PID-RANDOM` gives PID.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let (pid, random) = rest.split_once('-')?;
    if random.is_empty() || !random.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

/// Is `dir` (named for process `pid`) a temp dir that an unplug process of this user made,
/// and is that process gone? Anything else (a symlink, another user's dir, a dir without our
/// owner file or whose owner file names another process) is not ours to remove.
fn ours_and_abandoned(dir: &Path, pid: i32) -> bool {
    // /proc/self belongs to our effective uid.
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return false;
    };
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return false;
    }
    let owner = dir.join(OWNER_FILE);
    let Ok(ometa) = std::fs::symlink_metadata(&owner) else {
        return false;
    };
    if !ometa.is_file() || ometa.uid() != uid || ometa.len() > 256 {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(&owner) else {
        return false;
    };
    let expected = format!("{} pid={pid} start=", TEMP_PREFIX.trim_end_matches('-'));
    let Some(start) = text
        .trim_end()
        .strip_prefix(&expected)
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return false;
    };
    let gone = matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    );
    // A live process with another start time is a new process under a reused pid.
    gone || start_time(pid).is_some_and(|t| t != start)
}

/// Remove the temp dirs of unplug processes that are gone: a run killed with SIGKILL never
/// drops its TempDir, so the next run cleans up after it. Only dirs that are provably ours
/// ([`ours_and_abandoned`]) are removed; `remove_dir_all` does not follow symlinks inside.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if ours_and_abandoned(&e.path(), pid) {
            let _ = std::fs::remove_dir_all(e.path());
        }
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
    start_with(explicit_bin, journal, &BrokerSettings::default()).await
}

/// [`start`] with a scenario's `[broker]` settings written into its config.
pub async fn start_with(
    explicit_bin: Option<&Path>,
    journal: &Journal,
    settings: &BrokerSettings,
) -> anyhow::Result<Broker> {
    let bin = find(explicit_bin)?;
    let version = version(&bin)?;
    let dialect = Dialect::of(&version);
    if let Some(k) = settings
        .max_keepalive_s
        .filter(|k| *k < MIN_MAX_KEEPALIVE_S && dialect == Dialect::V20)
    {
        anyhow::bail!(
            "[broker] max_keepalive_s = {k}: mosquitto 2.0 accepts max_keepalive {MIN_MAX_KEEPALIVE_S} to 65535 (it stops with 'Invalid max_keepalive value ({k})')"
        );
    }
    let dir = TempDir::new().context("creating a temp dir for the mosquitto config")?;
    // Held until mosquitto listens on them (see `PortHold`).
    let holds = [hold_port()?, hold_port()?, hold_port()?, hold_port()?];
    let [tcp_port, ws_port, tls_port, wss_port] = holds.each_ref().map(|h| h.port);
    let certs = crate::tls::RunCerts::generate(dir.path(), &[])?;
    let conf = dir.path().join("mosquitto.conf");
    // /proc/self belongs to our effective uid.
    let as_root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    crate::fsx::create_new(&conf)
        .and_then(|mut f| {
            f.write_all(config_for(dialect, tcp_port, ws_port, as_root, settings).as_bytes())?;
            f.write_all(
                tls_listeners_for(dialect, tls_port, wss_port, &certs.cert, &certs.key).as_bytes(),
            )
        })
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
        .current_dir(dir.path())
        // Its log timestamps (strftime on local time) in UTC, like every other line.
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // Die with the thread that spawns it (the runner's main thread, alive for the whole run),
    // so a SIGKILLed unplug leaves no broker behind.
    crate::lifeline::die_with_parent(&mut cmd, nix::sys::signal::Signal::SIGKILL);
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
    let tls = ([127, 0, 0, 1], tls_port).into();
    let wss = ([127, 0, 0, 1], wss_port).into();
    let within = Duration::from_secs(10);
    for addr in [tcp, ws, tls, wss] {
        if let Err(e) = wait_until_accepting(addr, within).await {
            let exited = process.child.try_wait().ok().flatten();
            process.stop().await;
            return Err(match exited {
                Some(status) => anyhow::anyhow!(
                    "mosquitto exited at start ({status}); its log is in the run's NAME.incomplete.log"
                ),
                None => e,
            });
        }
    }
    drop(holds);
    Ok(Broker {
        name: format!("mosquitto {version}"),
        endpoints: Endpoints {
            tcp,
            ws: Some(ws),
            ws_path: "/mqtt".to_string(),
            v5: None,
            tls: Some(tls),
            wss: Some(wss),
            v5_tls: None,
            no_plain: false,
        },
        profile: super::profile::Profile::for_mosquitto(&version),
        process: Some(process),
        trust: Some(certs.trust()),
        files: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_temp_dirs_name_an_owner() {
        assert_eq!(owner_pid("unplug-mosquitto-4242-0"), Some(4242));
        assert_eq!(owner_pid("unplug-mosquitto-4242-Ab3xZ9"), Some(4242));
        assert_eq!(owner_pid("unplug-mosquitto-4242-"), None);
        assert_eq!(owner_pid("unplug-mosquitto-4242"), None);
        assert_eq!(owner_pid("unplug-test-4242-x"), None);
        assert_eq!(owner_pid("unplug-mosquitto-x-1"), None);
    }

    /// A dir as a run of process `pid` (started at `start`) leaves it, 0700 with its owner file.
    fn our_dir(path: &Path, pid: i32, start: u64) {
        std::fs::create_dir(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(
            path.join(OWNER_FILE),
            format!("unplug-mosquitto pid={pid} start={start}\n"),
        )
        .unwrap();
    }

    #[test]
    fn a_dead_runs_temp_dir_is_swept_and_a_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let tmp = tmp.path();
        // Above Linux's largest pid_max (2^22): no process can have this PID.
        let dead = tmp.join(format!("{TEMP_PREFIX}99999999-a1"));
        our_dir(&dead, 99_999_999, 5);
        let me = std::process::id() as i32;
        let live = tmp.join(format!("{TEMP_PREFIX}{me}-b2"));
        our_dir(&live, me, start_time(me).unwrap());
        // Our pid, another start time: a dead run whose pid was reused.
        let reused = tmp.join(format!("{TEMP_PREFIX}{me}-c3"));
        our_dir(&reused, me, start_time(me).unwrap() + 1);
        let other = tmp.join("someone-else-1-0");
        std::fs::create_dir(&other).unwrap();
        sweep_stale(tmp);
        assert!(!dead.exists() && !reused.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn the_sweep_leaves_what_it_cannot_prove_is_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let tmp = tmp.path();
        let victim = tmp.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("precious"), "data").unwrap();
        our_dir(&victim.join("inner"), 99_999_999, 5);
        // A symlink named like ours, pointing at someone's dir.
        let link = tmp.join(format!("{TEMP_PREFIX}99999999-link"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        // Named like ours, no owner file (the old predictable name an attacker pre-creates).
        let bare = tmp.join(format!("{TEMP_PREFIX}99999999-0"));
        std::fs::create_dir(&bare).unwrap();
        std::fs::set_permissions(&bare, std::fs::Permissions::from_mode(0o700)).unwrap();
        // An owner file that names another process.
        let foreign = tmp.join(format!("{TEMP_PREFIX}99999999-f"));
        our_dir(&foreign, 99_999_998, 5);
        // An owner file that is a symlink to a file that would pass.
        let linked = tmp.join(format!("{TEMP_PREFIX}99999999-g"));
        std::fs::create_dir(&linked).unwrap();
        std::fs::set_permissions(&linked, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(
            victim.join("inner").join(OWNER_FILE),
            linked.join(OWNER_FILE),
        )
        .unwrap();
        // Open to others: not a dir we made.
        let open = tmp.join(format!("{TEMP_PREFIX}99999999-h"));
        our_dir(&open, 99_999_999, 5);
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        sweep_stale(tmp);
        for kept in [&link, &bare, &foreign, &linked, &open] {
            assert!(
                std::fs::symlink_metadata(kept).is_ok(),
                "{} was removed",
                kept.display()
            );
        }
        assert_eq!(
            std::fs::read_to_string(victim.join("precious")).unwrap(),
            "data"
        );
    }

    #[test]
    fn a_new_temp_dir_is_private_random_and_says_whose_it_is() {
        let a = TempDir::new().unwrap();
        let b = TempDir::new().unwrap();
        assert_ne!(a.path(), b.path());
        let meta = std::fs::symlink_metadata(a.path()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        let name = a.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(owner_pid(name), Some(std::process::id() as i32));
        let owner = std::fs::read_to_string(a.path().join(OWNER_FILE)).unwrap();
        assert!(owner.starts_with(&format!(
            "unplug-mosquitto pid={} start=",
            std::process::id()
        )));
        assert!(!ours_and_abandoned(a.path(), std::process::id() as i32));
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn version_is_read_off_the_first_help_line() {
        let help = "mosquitto version 2.0.11\n\nmosquitto is an MQTT v5.0/v3.1.1/v3.1 broker.\n";
        assert_eq!(parse_version(help).as_deref(), Some("2.0.11"));
        assert_eq!(parse_version("Usage: mosquitto"), None);
        assert_eq!(parse_version("mosquitto version "), None);
        let help14 = "mosquitto version 1.4.15 (build date 2018-02-28 22:23:58+0000)\n\nmosquitto is an MQTT v3.1.1/v3.1 broker.\n";
        assert_eq!(parse_version(help14).as_deref(), Some("1.4.15"));
    }

    #[test]
    fn a_scenarios_max_keepalive_goes_into_the_config_and_nothing_without_one() {
        let with = BrokerSettings {
            max_keepalive_s: Some(10),
        };
        assert!(config_with(1111, 2222, false, &with).ends_with("\nmax_keepalive 10\n"));
        assert!(!config(1111, 2222, false).contains("max_keepalive"));
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
    fn mosquitto_14_gets_a_config_without_the_options_it_does_not_know() {
        assert_eq!(Dialect::of("1.4.15"), Dialect::V14);
        assert_eq!(Dialect::of("2.0.11"), Dialect::V20);
        let c = config_for(Dialect::V14, 1111, 2222, true, &BrokerSettings::default());
        for unknown in [
            "per_listener_settings",
            "socket_domain",
            "log_timestamp_format",
            "max_keepalive",
        ] {
            assert!(!c.contains(unknown), "{unknown} in {c}");
        }
        assert!(c.contains("\nuser root\n"));
        assert!(c.contains("listener 1111 127.0.0.1\nprotocol mqtt\n"));
        assert!(c.contains("listener 2222 127.0.0.1\nprotocol websockets\n"));
        let t = tls_listeners_for(Dialect::V14, 3, 4, Path::new("c.pem"), Path::new("k.pem"));
        assert!(!t.contains("socket_domain") && t.contains("listener 4 127.0.0.1"));
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
