//! `unplug storm --shards N --broker URL FLEET`: one fleet in N shard processes on this
//! machine, started together and merged, in one command.
//!
//! ```text
//! FLEET --load: a fleet? N <= willies? URL broker?--> T = now + --start-in
//!   N children: unplug scenario FLEET --partition K/N --start-at T --broker URL
//!               --out OUT/shard-K --quiet   (stdout+stderr -> OUT/shard-K.txt; each dies
//!               with this process: PR_SET_PDEATHSIG SIGTERM, so it ends its run in order)
//!   wait for all (bounded: the start, the connect window, the cut, the observe window, 60 s)
//!   --> merge OUT/merged OUT/shard-1 .. OUT/shard-N (the same code as `unplug merge`)
//! ```
//!
//! This is what a CI matrix or a Kubernetes Indexed Job does across machines, on one: the
//! shards share nothing but the broker and the start time.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use nix::sys::signal::Signal;

use unplug::broker::BrokerChoice;
use unplug::shard::{Manifest, Partition, MAX_SHARDS};

use super::args::MachineOut;

/// The flags of `unplug storm` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct StormArgs {
    /// A fleet scenario (a built-in name such as will-storm, or a .toml with a [fleet] table).
    scenario: String,
    /// How many shard processes (each its own proxy and monit, its share of the willies).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SHARDS as i64))]
    shards: u32,
    /// The broker every shard shares, by URL (tcp://HOST[:PORT]): the in-process broker is one
    /// process's own, and `mosquitto` would start one per shard.
    #[arg(long, value_name = "URL")]
    broker: String,
    /// Where each shard's directory (shard-K, shard-K.txt) and the merge (merged) go.
    #[arg(long, default_value = "results/storm", value_name = "DIR")]
    out: PathBuf,
    /// Seconds from now to the shards' shared --start-at (time for N processes to start).
    #[arg(long, default_value_t = 3, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    start_in: u64,
    #[command(flatten)]
    machine: MachineOut,
}

/// `unplug storm`.
pub fn storm(args: StormArgs) -> anyhow::Result<ExitCode> {
    let StormArgs {
        scenario: name,
        shards: n,
        broker,
        out,
        start_in,
        machine,
    } = args;
    let s = unplug::scenario::load(&name)?;
    let fleet = s.fleet.with_context(|| {
        format!("{name} has no [fleet] table: storm splits a fleet's willies (try will-storm)")
    })?;
    if n > fleet.willies {
        anyhow::bail!(
            "--shards {n}: more shards than the fleet's {} willies",
            fleet.willies
        );
    }
    match super::args::parse_broker(&broker).map_err(anyhow::Error::msg)? {
        BrokerChoice::Url(_) => {}
        other => anyhow::bail!(
            "--broker {}: the shards share one broker, so give its URL (tcp://HOST:PORT); start a mosquitto for them first (docs/guide.md, \"A storm in shards\")",
            other.label()
        ),
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let start_at = chrono::Utc::now() + chrono::Duration::seconds(start_in as i64);
    let at = start_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // The longest a shard may take: its start, the connect window, the cut, the observe
    // window, and a margin for its judgement and files.
    let cut = s.cut().map_or(Duration::ZERO, |c| c.after);
    let window = unplug::fleet::FleetShard {
        partition: Partition { k: 1, n },
        total: fleet.willies,
        prefix: String::new(),
        start_at: None,
    }
    .connect_window(&fleet, s.connect_timeout);
    let limit =
        Duration::from_secs(start_in) + window + cut + s.observe_window() + Duration::from_secs(60);
    let exe = std::env::current_exe().context("finding this unplug binary")?;
    let dirs: Vec<PathBuf> = (1..=n).map(|k| out.join(format!("shard-{k}"))).collect();
    eprintln!(
        "storm: {} willies of {name} in {n} shards against {broker}, starting at {at} (at most {} s)",
        fleet.willies,
        limit.as_secs()
    );
    let mut children: Vec<(u32, Child)> = Vec::new();
    for (k, dir) in (1..=n).zip(&dirs) {
        let text = out.join(format!("shard-{k}.txt"));
        let log =
            std::fs::File::create(&text).with_context(|| format!("creating {}", text.display()))?;
        let mut cmd = Command::new(&exe);
        cmd.arg("scenario")
            .arg(&name)
            .args(["--partition", &format!("{k}/{n}")])
            .args(["--start-at", &at])
            .args(["--broker", &broker])
            .arg("--out")
            .arg(dir)
            .arg("--quiet")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // This (main) thread lives as long as the children: they die with it.
        unplug::lifeline::die_with_parent_std(&mut cmd, Signal::SIGTERM);
        match cmd.spawn() {
            Ok(c) => children.push((k, c)),
            Err(e) => {
                end_all(&mut children);
                return Err(anyhow::anyhow!("starting shard {k}/{n}: {e}"));
            }
        }
    }
    let deadline = Instant::now() + limit;
    let mut exits: Vec<(u32, Option<i32>)> = Vec::new();
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            if let Some(status) = children[i].1.try_wait()? {
                let (k, _) = children.remove(i);
                exits.push((k, status.code()));
                eprintln!(
                    "storm: shard {k}/{n} ended: exit {}",
                    status
                        .code()
                        .map_or("by a signal".to_string(), |c| c.to_string())
                );
            } else {
                i += 1;
            }
        }
        if Instant::now() > deadline {
            let left: Vec<String> = children.iter().map(|(k, _)| format!("{k}/{n}")).collect();
            end_all(&mut children);
            anyhow::bail!(
                "shards {} still running after {} s: ended (SIGTERM, then SIGKILL); see {}/shard-K.txt",
                left.join(", "),
                limit.as_secs(),
                out.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let manifests: Vec<Manifest> = dirs
        .iter()
        .zip(1..)
        .map(|(d, k)| {
            Manifest::read(d).with_context(|| {
                format!(
                    "shard {k}/{n} wrote no manifest; its output: {}",
                    out.join(format!("shard-{k}.txt")).display()
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    super::merge::merge_fleet(&out.join("merged"), &dirs, &manifests, &machine)
}

/// SIGTERM every child still running, give them 5 s to end their runs, then SIGKILL; reap.
fn end_all(children: &mut Vec<(u32, Child)>) {
    for (_, c) in children.iter() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), Signal::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(5);
    for (_, c) in children.iter_mut() {
        while Instant::now() < until && matches!(c.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    children.clear();
}
