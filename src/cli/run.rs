//! `unplug scenario`: one run in this process, its verdict printed, its files written.
//!
//! ```text
//! NAME or FILE --load--> Scenario --+ overrides (timing, transport, name)
//!                                   v
//!                  runner::run --> Summary --> verdict lines; exit 0, 1, or 128 + signal
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use unplug::event::Echo;
use unplug::runner::{self, RunOptions};
use unplug::scenario;

use super::args::{
    parse_cut, parse_name, parse_transport, parse_willy, BrokerArgs, StartAt, Timing,
};

/// The flags of `unplug scenario` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct ScenarioArgs {
    /// A built-in scenario name (see `unplug list`) or a path to a .toml file.
    scenario: String,
    #[command(flatten)]
    timing: Timing,
    /// Directory for the log, events and summary.
    #[arg(long, default_value = "results", value_name = "DIR")]
    out: PathBuf,
    /// Print nothing but the verdict.
    #[arg(long, short)]
    quiet: bool,
    /// Also write the run's summary JSON (as NAME.summary.json has it) to FILE; `-` prints it on
    /// stdout instead of the log and the check lines.
    #[arg(long, value_name = "FILE", conflicts_with = "repeat")]
    json: Option<PathBuf>,
    /// Also print every MQTT packet and WebSocket frame the proxy saw (`wire` lines; they
    /// always go to the JSONL and the log file).
    #[arg(long)]
    wire: bool,
    #[command(flatten)]
    broker: BrokerArgs,
    /// Run over this transport instead of the scenario's own.
    #[arg(long, value_parser = parse_transport, value_name = "tcp|ws|tls|wss")]
    transport: Option<unplug::scenario::Transport>,
    /// willy's client: the built-in rumqttc, a shipped driver (mqtt.js, paho) or any program
    /// that speaks the driver line protocol (docs/guide.md, "willy drivers").
    #[arg(long, value_parser = parse_willy, value_name = "rumqttc|mqttjs|paho|cmd:PATH")]
    willy: Option<unplug::driver::WillyKind>,
    /// Where the network faults cut: in the proxy (default), in the kernel (nftables rules in
    /// willy's own network namespace) or the link (its veth down). Kernel and link need root.
    #[arg(long, value_parser = parse_cut, value_name = "proxy|kernel|link")]
    cut: Option<unplug::kernelcut::CutLayer>,
    /// Name the run (and its files) NAME instead of the scenario's name.
    #[arg(long, value_parser = parse_name, value_name = "NAME")]
    name: Option<String>,
    /// How the wire tap records PUBLISHes: a record each, or runs of them for floods
    /// (overrides the scenario's `[tap] publishes`).
    #[arg(long, value_name = "each|runs")]
    publishes: Option<unplug::scenario::PublishRecords>,
    /// Over TLS: end willy's TLS in the proxy so the wire tap sees MQTT (terminate, the
    /// default), or pass the encrypted bytes through (the tap sees TLS records only).
    #[arg(long, value_name = "terminate|pass-through")]
    tls_tap: Option<unplug::scenario::TlsTap>,
    /// The run's id in its summary.json (suite, compare and conformance give each child
    /// one, to read back only what that child wrote).
    #[arg(long, hide = true, value_name = "ID")]
    run_id: Option<String>,
    /// Run the scenario N times, independently and at once (each its own child process and
    /// broker), keep every run (NAME.r1 ..), and write NAME.repeat.json: the verdict over all
    /// runs and each figure's distribution against the window its check allowed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: Option<u32>,
    /// With --repeat: how many runs at once [default: all of them, at most 64].
    #[arg(long, short, value_name = "N", requires = "repeat",
          value_parser = clap::value_parser!(u16).range(1..=super::args::MAX_JOBS as i64))]
    jobs: Option<u16>,
    #[command(flatten)]
    start: StartAt,
    /// For a fleet: run only shard K of N of its willies (willy i, 0-based, is in shard
    /// i % N + 1), with its own proxy and monit against the shared `--broker URL`, and write
    /// NAME.willies.json and SHARD.json into --out for `unplug merge`. With --start-at every
    /// shard connects from that moment and cuts at the same one.
    #[arg(long, value_name = "K/N", value_parser = parse_partition)]
    partition: Option<unplug::shard::Partition>,
    /// Show the run live in a browser: a page at ADDR (default 127.0.0.1, a free port; the
    /// address is printed) with its cycle, what it waits for, willy's connection, the will and
    /// the timeline; it stays up with the result after the run, until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0",
          conflicts_with_all = ["repeat", "json"])]
    ui: Option<String>,
}

fn parse_partition(s: &str) -> Result<unplug::shard::Partition, String> {
    s.parse()
}

/// `unplug scenario NAME`: run it, print its verdict, and say where its files are.
pub fn scenario(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    let ScenarioArgs {
        scenario: name,
        timing,
        out,
        quiet,
        json,
        wire,
        broker,
        transport,
        willy,
        cut,
        name: run_name,
        publishes,
        tls_tap,
        run_id,
        repeat,
        jobs,
        start,
        ui,
        partition,
    } = args;
    start.check()?;
    let json_on_stdout = json.as_deref() == Some(std::path::Path::new("-"));
    if partition.is_some() && repeat.is_some_and(|n| n > 1) {
        anyhow::bail!("--partition splits one fleet's willies; it does not go with --repeat");
    }
    if let Some(n) = repeat.filter(|n| *n > 1) {
        let argv: Vec<String> = std::env::args().collect();
        let stem = match &run_name {
            Some(n) => n.clone(),
            None => scenario::load(&name)?.name,
        };
        start.wait()?;
        return repeated(&name, &stem, n, jobs, &out, &argv, quiet);
    }
    let mut s = scenario::load(&name)?;
    apply_flags(&mut s, &timing, publishes, tls_tap, transport, willy, cut)?;
    if let Some(n) = run_name {
        s.name = n;
    }
    let fleet_shard = match partition {
        Some(p) => Some(fleet_shard(
            &mut s,
            p,
            start.at(),
            !(quiet || json_on_stdout),
        )?),
        None => None,
    };
    let broker = broker.choice()?;
    if fleet_shard.is_some() && matches!(broker, unplug::broker::BrokerChoice::Builtin) {
        anyhow::bail!(
            "--partition: a fleet's shards share one broker, and the in-process one is this process's own: give --broker URL (e.g. a mosquitto every shard reaches), or --broker mosquitto for a shard that is the only one"
        );
    }
    let quiet = quiet || json_on_stdout;
    let page = ui.as_deref().map(start_page).transpose()?;
    let opts = RunOptions {
        out_dir: out.clone(),
        echo: Echo {
            stdout: !quiet,
            wire,
            floods: false,
        },
        broker,
        progress: !quiet && std::io::stdout().is_terminal(),
        run_id,
        watcher: unplug::runner::Watching(page.as_ref().map(|(hub, _)| {
            Arc::new(unplug::toxi::page::RunPage(hub.clone())) as Arc<dyn unplug::runner::Watcher>
        })),
        fleet_shard: fleet_shard.clone(),
    };
    start.wait()?;
    let result = runner::run(&s, &opts);
    if let Some(sh) = &fleet_shard {
        fleet_manifest(&out, &s.name, sh, &result)?;
    }
    let result = result?;
    print_result(
        &result,
        &s.name,
        &out,
        json.as_deref(),
        json_on_stdout,
        quiet,
    )?;
    if let Some(page) = page {
        finish_page(page, &result, &s.name, &out)?;
    }
    Ok(if let Some(sig) = result.interrupted {
        ExitCode::from(unplug::lifeline::exit_code(sig))
    } else if result.summary.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--ui`: a run that finished shows its result on the page until Ctrl-C; then (or at once,
/// for an interrupted run) the page's server stops.
fn finish_page(
    (hub, server): (
        Arc<unplug::toxi::page::Hub>,
        unplug::toxi::ui::RunPageServer,
    ),
    result: &runner::RunResult,
    name: &str,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    if result.interrupted.is_none() {
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).ok();
        hub.finished(name, &result.summary, svg);
        println!(
            "page: the result stays at http://{}/ui until Ctrl-C",
            server.addr
        );
        wait_for_interrupt()?;
    }
    server.stop();
    Ok(())
}

/// The flags that change the scenario: its timing, how the tap records, the transport,
/// willy's client and where the faults cut.
fn apply_flags(
    s: &mut scenario::Scenario,
    timing: &Timing,
    publishes: Option<scenario::PublishRecords>,
    tls_tap: Option<scenario::TlsTap>,
    transport: Option<scenario::Transport>,
    willy: Option<unplug::driver::WillyKind>,
    cut: Option<unplug::kernelcut::CutLayer>,
) -> anyhow::Result<()> {
    s.apply(timing.overrides());
    s.publishes = publishes.unwrap_or(s.publishes);
    s.tls_tap = tls_tap.unwrap_or(s.tls_tap);
    if let Some(t) = transport {
        s.transport = t;
    }
    if let Some(w) = willy {
        s.client = w;
    }
    if let Some(c) = cut {
        s.set_cut_layer(c).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// `--partition K/N`: `s` cut down to shard K's willies, said on stderr when `say`.
fn fleet_shard(
    s: &mut scenario::Scenario,
    p: unplug::shard::Partition,
    at: Option<chrono::DateTime<chrono::Utc>>,
    say: bool,
) -> anyhow::Result<unplug::fleet::FleetShard> {
    let sh = unplug::fleet::FleetShard::apply(s, p, at)?;
    if say {
        eprintln!(
            "shard {p}: {} of {} willies, will topics {}/NNNNN",
            sh.own_count(),
            sh.total,
            sh.prefix_of_shard()
        );
    }
    Ok(sh)
}

/// The run's verdict (its line alone with --quiet, as its help says), the summary JSON where
/// --json asks, and where its files are.
fn print_result(
    result: &runner::RunResult,
    name: &str,
    out: &std::path::Path,
    json: Option<&std::path::Path>,
    json_on_stdout: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    if !quiet {
        println!();
    }
    match (json, quiet) {
        (Some(to), _) if json_on_stdout => super::args::emit_json(to, &result.summary.to_json())?,
        (_, true) => print!("{}", result.summary.verdict_line()),
        (_, false) => print!("{}", result.summary.verdict_lines()),
    }
    if let Some(to) = json.filter(|_| !json_on_stdout) {
        super::args::emit_json(to, &result.summary.to_json())?;
    }
    if !quiet {
        let stem = match result.interrupted {
            Some(_) => unplug::report::files::incomplete_stem(name),
            None => name.to_string(),
        };
        println!(
            "files: {}/{stem}.{{log,events.jsonl,summary.json,svg}}",
            out.display(),
        );
    }
    Ok(())
}

/// `--ui ADDR`: the page's hub and its server, listening (its address printed).
fn start_page(
    addr: &str,
) -> anyhow::Result<(
    Arc<unplug::toxi::page::Hub>,
    unplug::toxi::ui::RunPageServer,
)> {
    let at: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| anyhow::anyhow!("--ui {addr:?}: expected ADDR:PORT, e.g. 127.0.0.1:8475"))?;
    let hub = Arc::new(unplug::toxi::page::Hub::new(
        unplug::toxi::api::Limits::default().page_clients,
    ));
    let server = unplug::toxi::ui::RunPageServer::start(at, hub.clone())?;
    println!("page: http://{}/ui (open it in a browser)", server.addr);
    Ok((hub, server))
}

/// Block until SIGINT or SIGTERM.
fn wait_for_interrupt() -> anyhow::Result<()> {
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime to wait for Ctrl-C")?;
    rt.block_on(async {
        let interrupts =
            unplug::lifeline::Interrupts::listen().context("listening for SIGINT and SIGTERM")?;
        interrupts.wait().await;
        Ok(())
    })
}

/// A fleet shard's SHARD.json: its one run as it ended, for `unplug merge`.
fn fleet_manifest(
    out: &std::path::Path,
    name: &str,
    shard: &unplug::fleet::FleetShard,
    result: &anyhow::Result<runner::RunResult>,
) -> anyhow::Result<()> {
    let (status, detail, exit, run_id) = match result {
        Ok(r) if r.interrupted.is_some() => (
            "interrupted",
            r.interrupted.map(|s| s.as_str().to_string()),
            r.interrupted
                .map(|s| i32::from(unplug::lifeline::exit_code(s))),
            None,
        ),
        Ok(r) => (
            if r.summary.pass { "pass" } else { "fail" },
            None,
            Some(i32::from(!r.summary.pass)),
            Some(r.summary.run_id.clone()),
        ),
        Err(e) => ("error", Some(format!("{e:#}")), Some(2), None),
    };
    let run = unplug::shard::OwnedRun {
        index: 0,
        name: name.to_string(),
        status: status.to_string(),
        reason: detail.clone(),
        detail: detail.clone(),
        exit,
        summary: run_id.as_ref().map(|_| format!("{name}.summary.json")),
        run_id,
        error: detail.unwrap_or_default(),
    };
    std::fs::create_dir_all(out)?;
    unplug::shard::Manifest {
        schema_version: unplug::shard::MANIFEST_SCHEMA,
        command: unplug::fleet::shard::COMMAND.to_string(),
        partition: shard.partition,
        split: unplug::fleet::shard::SPLIT.to_string(),
        start_at: shard.start_at,
        columns: Vec::new(),
        plan: Vec::new(),
        runs: vec![run],
        interrupted: match result {
            Ok(r) => r.interrupted.map(|s| s.as_str().to_string()),
            Err(_) => None,
        },
        unplug_version: env!("CARGO_PKG_VERSION").to_string(),
        fleet: Some(shard.clone()),
    }
    .write(out)
}

/// The flags each of a repeated run's children gets: the user's own after `scenario`, minus
/// what the parent decides (the scenario, --out, --quiet, --wire, --name, --repeat, --jobs,
/// --run-id, --start-at).
fn child_flags(argv: &[String], scenario: &str) -> Vec<String> {
    const WITH_VALUE: [&str; 7] = [
        "--out",
        "--name",
        "--repeat",
        "--jobs",
        "-j",
        "--run-id",
        "--start-at",
    ];
    const ALONE: [&str; 3] = ["--quiet", "-q", "--wire"];
    let after = argv
        .iter()
        .position(|a| a == "scenario")
        .map_or(0, |i| i + 1);
    let mut out = Vec::new();
    let mut skip_value = false;
    let mut positional_seen = false;
    for a in &argv[after..] {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if WITH_VALUE.contains(&a.as_str()) {
            skip_value = true;
        } else if ALONE.contains(&a.as_str())
            || WITH_VALUE.iter().any(|f| a.starts_with(&format!("{f}=")))
        {
        } else if a == scenario && !positional_seen {
            positional_seen = true;
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// `scenario NAME --repeat N`: N child runs of this binary, at once (`jobs` at a time); each
/// kept as NAME.rK; NAME.repeat.json, NAME.repeat.svg and the table. Exit 0 when every run
/// passed, 1 when one failed, 2 when one did not finish.
fn repeated(
    scenario: &str,
    stem: &str,
    n: u32,
    jobs: Option<u16>,
    out: &std::path::Path,
    argv: &[String],
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let spec = unplug::suite::ChildSpec {
        scenario: scenario.to_string(),
        output_name: None,
        args: child_flags(argv, scenario),
    };
    let specs = unplug::suite::repeated_specs(&spec, stem, n);
    let jobs = super::args::jobs_for(jobs, n as usize);
    std::fs::create_dir_all(out)?;
    let rt = tokio::runtime::Runtime::new()?;
    let batch = rt.block_on(super::children::run_specs_sharing(&specs, out, jobs))?;
    let runs: Vec<&unplug::suite::ChildRun> = batch.runs.iter().collect();
    let r = unplug::repeat::Repeated::of(stem, &runs);
    super::args::write_file(
        &out.join(format!("{stem}.repeat.json")),
        &(serde_json::to_string_pretty(&r)? + "\n"),
    )?;
    super::args::write_file(
        &out.join(format!("{stem}.repeat.svg")),
        &unplug::report::svg::render_repeat(&r),
    )?;
    if !quiet {
        print!(
            "{}",
            unplug::report::table::render_text(&unplug::repeat::HEADER, &r.rows())
        );
        println!(
            "files: {}/{stem}.r1 .. {stem}.r{n}.*, {stem}.repeat.{{json,svg}}",
            out.display()
        );
    }
    println!("{}", r.headline());
    Ok(super::children::children_exit_code(&batch))
}

#[cfg(test)]
mod tests {
    use super::child_flags;

    #[test]
    fn a_repeated_runs_children_get_the_users_flags_but_not_the_parents() {
        let argv: Vec<String> = [
            "unplug",
            "scenario",
            "ws-last-will",
            "--repeat",
            "5",
            "--broker",
            "mosquitto",
            "--out=/tmp/x",
            "-q",
            "--keepalive",
            "2",
            "--jobs",
            "3",
            "--name",
            "n",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            child_flags(&argv, "ws-last-will"),
            ["--broker", "mosquitto", "--keepalive", "2"]
        );
    }
}
