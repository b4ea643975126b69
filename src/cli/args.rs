//! The flags several commands share, and the parsers behind them: which broker (`--broker`,
//! `--brokers`, `--mosquitto-bin`, a URL broker's login and profile), the timing overrides, a
//! run's name and transport, the machine-readable outputs of many runs, and a shard's
//! `--partition` and `--start-at`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use unplug::broker::BrokerChoice;
use unplug::scenario::Overrides;
use unplug::suite;

/// Machine-readable results of many runs, for CI.
#[derive(Args, Clone)]
pub struct MachineOut {
    /// Also write JUnit XML to FILE: a testsuite per run, a testcase for its verdict and one per
    /// check (a failure with expected and actual; a run that did not finish is an error).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write every run's status and whole summary as one JSON document to FILE; `-` (or
    /// `--json` alone) prints it on stdout, the table then on stderr.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
}

/// Where tables go: stdout, or stderr when stdout carries `--json -`.
static TABLES_TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Print a batch's table where it belongs (see [`MachineOut::claim_stdout`]).
pub fn print_table(text: &str) {
    if TABLES_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

impl MachineOut {
    /// With `--json -`, stdout is the JSON document's: tables go to stderr. Call before the
    /// batch prints anything.
    pub fn claim_stdout(&self) {
        if self.json.as_deref() == Some(std::path::Path::new("-")) {
            TABLES_TO_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn write(&self, batch: &suite::Batch, command: &str) -> anyhow::Result<()> {
        if let Some(p) = &self.junit {
            write_file(p, &batch.to_junit(&format!("unplug {command}")))?;
        }
        if let Some(p) = &self.json {
            emit_json(p, &batch.to_json(command))?;
        }
        Ok(())
    }
}

/// `--json`'s document to where it goes: `-` is stdout, anything else a file of ours.
pub fn emit_json(to: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if to == std::path::Path::new("-") {
        print!("{text}");
        Ok(())
    } else {
        write_file(to, text)
    }
}

/// Write a file of ours whole (temp file + rename: never through a symlink).
pub fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    unplug::fsx::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Which broker a run uses.
#[derive(Args, Clone)]
pub struct BrokerArgs {
    /// builtin (rumqttd in-process), mosquitto (a child process), or the URLs of a running
    /// broker: tcp://HOST[:PORT][,ws://HOST[:PORT]/PATH][,mqtts://HOST[:PORT]][,wss://...]; a
    /// missing port is the scheme's (1883, 80, 8883, 443).
    #[arg(long, default_value = "builtin", value_parser = BrokerParser, value_name = "BROKER")]
    broker: BrokerChoice,
    /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
    #[arg(long, value_name = "PATH")]
    mosquitto_bin: Option<PathBuf>,
    #[command(flatten)]
    access: AccessArgs,
}

/// How a broker given by URL is reached and judged.
#[derive(Args, Clone)]
pub struct AccessArgs {
    /// The user name every client logs in with (a URL broker; or put user:pass@ in the URL).
    #[arg(long, value_name = "USER")]
    username: Option<String>,
    /// The environment variable holding the password (never given on the command line).
    #[arg(long, value_name = "VAR", requires = "username")]
    password_env: Option<String>,
    /// Judge a URL broker by this profile instead of recognising it (see `unplug profiles`).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The CA certificate(s), PEM, that a URL broker's mqtts:// and wss:// certificates are
    /// checked against (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Accept any certificate from a URL broker's TLS listeners: for a self-signed lab
    /// broker. Never the default; the journal says so.
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
    /// A client certificate (PEM) for a URL broker that requires one; with --client-key.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); never printed.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
}

impl AccessArgs {
    /// Attach the login and profile to a URL broker; refuse them for the others.
    pub fn apply(&self, choice: BrokerChoice) -> anyhow::Result<BrokerChoice> {
        let login = match &self.username {
            None => None,
            Some(u) => Some(unplug::broker::url::Login {
                username: u.clone(),
                password: match &self.password_env {
                    None => None,
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        anyhow::anyhow!("--password-env {var}: that environment variable is not set (or not UTF-8)")
                    })?),
                },
            }),
        };
        if let Some(p) = &self.profile {
            if unplug::broker::profile::Profile::by_name(p).is_none() {
                anyhow::bail!("--profile {p:?}: no such profile (see `unplug profiles`)");
            }
        }
        let tls = unplug::broker::url::TlsOptions {
            ca: self.ca.clone(),
            insecure: self.insecure,
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        };
        match choice {
            BrokerChoice::Url(u) => {
                let mut u = u.with_login(login)?;
                if self.profile.is_some() {
                    u.profile = self.profile.clone();
                }
                if tls != Default::default() {
                    if u.tls.is_none() && u.wss.is_none() {
                        anyhow::bail!("--ca, --insecure, --client-cert and --client-key apply to a broker's mqtts:// or wss:// URL; none was given");
                    }
                    // Read now, so a bad file is named before any run starts.
                    tls.trust("localhost")?;
                    u.tls_options = tls;
                }
                Ok(BrokerChoice::Url(u))
            }
            c if login.is_some() || self.profile.is_some() || tls != Default::default() => anyhow::bail!(
                "--username, --password-env, --profile, --ca, --insecure, --client-cert and --client-key apply to a broker given by URL (not {}: its TLS listeners use the run's own certificates)",
                c.label()
            ),
            c => Ok(c),
        }
    }
}

impl BrokerArgs {
    pub fn choice(&self) -> anyhow::Result<BrokerChoice> {
        let c = self
            .access
            .apply(with_bin(self.broker.clone(), self.mosquitto_bin.as_ref())?)?;
        c.export_password();
        Ok(c)
    }
}

/// Attach `--mosquitto-bin` to a mosquitto choice; refuse it for any other broker.
pub fn with_bin(choice: BrokerChoice, bin: Option<&PathBuf>) -> anyhow::Result<BrokerChoice> {
    match (choice, bin) {
        (BrokerChoice::Mosquitto { .. }, Some(b)) => Ok(BrokerChoice::Mosquitto {
            bin: Some(b.clone()),
        }),
        (c, None) => Ok(c),
        (c, Some(_)) => anyhow::bail!(
            "--mosquitto-bin only applies to the mosquitto broker (not {})",
            c.label()
        ),
    }
}

/// `--broker`'s value parser. clap's own error ("invalid value '...' for ...") would print the
/// argument as typed, password and all; this one says only what [`parse_broker`] says, which
/// names the URL without its login.
#[derive(Clone)]
pub struct BrokerParser;

impl clap::builder::TypedValueParser for BrokerParser {
    type Value = BrokerChoice;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<BrokerChoice, clap::Error> {
        let invalid = |why: String| {
            let flag = arg.map_or_else(|| "--broker".to_string(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{flag}': {why}\n"),
            )
            .with_cmd(cmd)
        };
        let s = value
            .to_str()
            .ok_or_else(|| invalid("not UTF-8".to_string()))?;
        parse_broker(s).map_err(invalid)
    }
}

pub fn parse_broker(s: &str) -> Result<BrokerChoice, String> {
    BrokerChoice::parse(s).map_err(|e| {
        if s.contains("://") {
            format!("{e} (or builtin, or mosquitto)")
        } else {
            let hint = unplug::scenario::closest(s.trim(), &["builtin", "mosquitto", "rumqttd"])
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            let shown = unplug::broker::url::without_login(s.trim());
            format!("unknown broker {shown:?}: {hint}expected builtin, mosquitto, or a URL such as tcp://HOST[:PORT]")
        }
    })
}

/// `--brokers builtin,mosquitto,tcp://h:1,ws://h:2/mqtt`: a ws:// URL joins the tcp:// URL
/// before it, making one broker.
pub fn parse_brokers(list: &str, bin: Option<&PathBuf>) -> anyhow::Result<Vec<BrokerChoice>> {
    Ok(parse_labelled_brokers(list, bin)?
        .into_iter()
        .map(|(_, b)| b)
        .collect())
}

/// The same, where a URL broker may carry a name for tables and files: `amqtt=tcp://h:1`.
pub fn parse_labelled_brokers(
    list: &str,
    bin: Option<&PathBuf>,
) -> anyhow::Result<Vec<(Option<String>, BrokerChoice)>> {
    let mut groups: Vec<String> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match groups.last_mut() {
            Some(g) if part.starts_with("ws://") && g.contains("://") => {
                g.push(',');
                g.push_str(part);
            }
            _ => groups.push(part.to_string()),
        }
    }
    if groups.is_empty() {
        anyhow::bail!("--brokers: no broker given (expected e.g. builtin,mosquitto)");
    }
    let is_mosquitto = |g: &String| g == "mosquitto" || g.ends_with("=mosquitto");
    if bin.is_some() && !groups.iter().any(is_mosquitto) {
        anyhow::bail!("--mosquitto-bin only applies when mosquitto is one of --brokers");
    }
    // Child runs get a URL's password through one environment variable: one password per call.
    let mut passwords = std::collections::HashSet::new();
    groups
        .iter()
        .map(|g| {
            let (label, g) = match g.split_once('=') {
                // A URL, or the spawned mosquitto (`mosquitto-1.4.15=mosquitto`: a second
                // mosquitto's rows and files beside the first's).
                Some((l, rest))
                    if (rest.contains("://") || rest == "mosquitto") && !l.contains("://") =>
                {
                    parse_name(l).map_err(|e| anyhow::anyhow!("--brokers: {e}"))?;
                    (Some(l.to_string()), rest)
                }
                _ => (None, g.as_str()),
            };
            let c = BrokerChoice::parse(g).map_err(|e| anyhow::anyhow!("--brokers: {e}"))?;
            let c = match c {
                BrokerChoice::Mosquitto { .. } => with_bin(c, bin)?,
                c => c,
            };
            // Child runs read a URL's password from their environment.
            if let BrokerChoice::Url(u) = &c {
                passwords.insert(u.login.as_ref().and_then(|l| l.password.clone()));
                if passwords.iter().flatten().count() > 1 {
                    anyhow::bail!(
                        "--brokers: two brokers with different passwords; run them one call each"
                    );
                }
            }
            c.export_password();
            Ok((label, c))
        })
        .collect()
}

pub fn parse_transport(s: &str) -> Result<unplug::scenario::Transport, String> {
    match s.trim() {
        "tcp" => Ok(unplug::scenario::Transport::Tcp),
        "ws" => Ok(unplug::scenario::Transport::Ws),
        "tls" | "mqtts" => Ok(unplug::scenario::Transport::Tls),
        "wss" => Ok(unplug::scenario::Transport::Wss),
        other => Err(format!(
            "unknown transport {other:?} (expected tcp, ws, tls or wss)"
        )),
    }
}

/// `--willy`: rumqttc, mqttjs, paho or cmd:PATH.
pub fn parse_willy(s: &str) -> Result<unplug::driver::WillyKind, String> {
    s.parse()
}

/// `--cut`: proxy, kernel or link.
pub fn parse_cut(s: &str) -> Result<unplug::kernelcut::CutLayer, String> {
    s.parse()
}

pub fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a usable run name (letters, digits, '.', '_' and '-', not starting with '.')"
        ))
    }
}

#[derive(Args, Clone, Copy)]
pub struct Timing {
    /// Override the scenario's keepalive, in seconds.
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=65535))]
    keepalive: Option<u64>,
    /// The seed's own timing: keepalive 60 s, 20 s connected, 10 s idle (a run takes minutes).
    #[arg(long)]
    seed_timing: bool,
    /// How long after the cut to keep watching for a drop or will later than the broker's
    /// profile allows, in seconds (default: 4 x keepalive + 10 s).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=86400))]
    observe: Option<u64>,
}

impl Timing {
    pub fn overrides(self) -> Overrides {
        Overrides {
            keepalive_s: self.keepalive,
            seed_timing: self.seed_timing,
            observe_s: self.observe,
        }
    }

    pub fn args(self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(k) = self.keepalive {
            v.extend(["--keepalive".to_string(), k.to_string()]);
        }
        if self.seed_timing {
            v.push("--seed-timing".to_string());
        }
        if let Some(o) = self.observe {
            v.extend(["--observe".to_string(), o.to_string()]);
        }
        v
    }
}

/// The most runs at once `--jobs` takes.
pub const MAX_JOBS: u16 = 64;

/// `--jobs`, or by default every run at once (at most [`MAX_JOBS`]). Measured on a 2-core
/// machine: the 34 built-in scenarios all at once finish in their longest run's time (15-16 s a
/// suite, 8 suites beside a CPU burner and busy builds, 0 flaky verdicts), where 4 at a time took
/// 57-63 s. A run spends its time waiting for the broker's timers, not on the CPU.
pub fn jobs_for(jobs: Option<u16>, runs: usize) -> u16 {
    jobs.unwrap_or_else(|| u16::try_from(runs).unwrap_or(MAX_JOBS).clamp(1, MAX_JOBS))
}

#[cfg(test)]
mod jobs_tests {
    use super::*;

    #[test]
    fn by_default_every_run_starts_at_once_up_to_the_cap() {
        assert_eq!(jobs_for(None, 34), 34);
        assert_eq!(jobs_for(None, 0), 1);
        assert_eq!(jobs_for(None, 500), MAX_JOBS);
        assert_eq!(jobs_for(Some(2), 34), 2);
    }
}

/// `--start-at`: a shared start, so runs on many machines cut together.
#[derive(Args, Clone, Copy)]
pub struct StartAt {
    /// Start the runs at this time, RFC 3339 (2026-11-29T15:40:00Z) or unix seconds, so shards
    /// on several machines start and cut together: at most 10 min ahead; up to 60 s past starts
    /// at once, later is refused.
    #[arg(long, value_name = "TIME", value_parser = unplug::shard::parse_start_at)]
    start_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl StartAt {
    pub fn at(self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.start_at
    }

    /// Refuse a start too far ahead or past (exit 2), before anything starts.
    pub fn check(self) -> anyhow::Result<()> {
        if let Some(at) = self.start_at {
            unplug::shard::wait_until(at, chrono::Utc::now())?;
        }
        Ok(())
    }

    /// Sleep until the start (bounded by the check: at most 10 min).
    pub fn wait(self) -> anyhow::Result<()> {
        if let Some(at) = self.start_at {
            let d = unplug::shard::wait_until(at, chrono::Utc::now())?;
            if !d.is_zero() {
                eprintln!(
                    "unplug: waiting {:.1} s for --start-at {}",
                    d.as_secs_f64(),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                std::thread::sleep(d);
            }
        }
        Ok(())
    }
}

/// `--partition K/N` and `--start-at`: one shard of a batch split across machines.
#[derive(Args, Clone, Copy)]
pub struct ShardArgs {
    /// Run only shard K of N of the planned runs (round-robin: the plan's run i, 0-based, is in
    /// shard i % N + 1) and write SHARD.json into --out for `unplug merge`.
    #[arg(long, value_name = "K/N", value_parser = parse_partition)]
    partition: Option<unplug::shard::Partition>,
    #[command(flatten)]
    start: StartAt,
}

fn parse_partition(s: &str) -> Result<unplug::shard::Partition, String> {
    s.parse()
}

impl ShardArgs {
    /// Check the start and the plan's run names (merge tells runs by them), before anything
    /// starts; the plan's indices this shard runs (all of them unpartitioned).
    pub fn owned(self, plan: &[unplug::shard::PlannedRun]) -> anyhow::Result<Vec<usize>> {
        self.start.check()?;
        let Some(p) = self.partition else {
            return Ok((0..plan.len()).collect());
        };
        let mut seen = std::collections::HashSet::new();
        for r in plan {
            if !seen.insert(&r.name) {
                anyhow::bail!(
                    "--partition: the run {} is planned twice; merge tells runs by name, so each must be unique",
                    r.name
                );
            }
        }
        let owned = p.owned(plan.len());
        if std::io::stderr().is_terminal() {
            eprintln!("shard {p}: {} of {} runs", owned.len(), plan.len());
        }
        Ok(owned)
    }

    pub fn wait(self) -> anyhow::Result<()> {
        self.start.wait()
    }

    /// Write SHARD.json into `out` when partitioned.
    pub fn write_manifest(
        self,
        out: &std::path::Path,
        command: &str,
        columns: Vec<String>,
        plan: Vec<unplug::shard::PlannedRun>,
        owned: &[usize],
        batch: &suite::Batch,
    ) -> anyhow::Result<()> {
        if let Some(p) = self.partition {
            unplug::shard::Manifest::new(command, p, self.start.at(), columns, plan, owned, batch)
                .write(out)?;
        }
        Ok(())
    }
}
