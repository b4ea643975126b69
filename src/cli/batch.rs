//! The commands of many runs, each a child process: `suite` (scenarios on one broker),
//! `compare` (scenarios x brokers x transports) and `conformance` (the will's spec checks x
//! brokers). Each prints its table, writes it as Markdown and a picture, and exits as its runs did.
//!
//! ```text
//! names --load (refuse a bad one first)--> plan --(--partition K/N: this shard's runs;
//!   --start-at: wait)--> child specs --children::run_*--> Batch
//!                                                            |
//!        table (stdout) + TABLE.md + TABLE.svg + --junit/--json + SHARD.json (partitioned) <--+
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use unplug::broker::BrokerChoice;
use unplug::compare;

use unplug::conformance;
use unplug::report::table;
use unplug::scenario;
use unplug::suite;

use super::args::{
    jobs_for, parse_brokers, parse_cut, parse_transport, parse_willy, print_table, write_file,
    BrokerArgs, MachineOut, ShardArgs, Timing, MAX_JOBS,
};
use super::children::{
    children_exit_code, interrupted_note, own_transports, run_cells, show_progress, write_picture,
};

/// The flags of `unplug suite` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct SuiteArgs {
    /// Scenario names or paths; all built-in scenarios but fleets (will-storm) when none are given.
    scenarios: Vec<String>,
    #[command(flatten)]
    timing: Timing,
    /// How many scenarios run at once [default: all of them, at most 64].
    #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    jobs: Option<u16>,
    /// Directory for every run's files and SUITE.md.
    #[arg(long, default_value = "results", value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    machine: MachineOut,
    #[command(flatten)]
    shard: ShardArgs,
}

/// `unplug suite`: the scenarios (all built-in ones by default) on one broker.
pub fn suite(args: SuiteArgs) -> anyhow::Result<ExitCode> {
    let SuiteArgs {
        scenarios,
        timing,
        jobs,
        out,
        broker,
        machine,
        shard,
    } = args;
    machine.claim_stdout();
    let broker = broker.choice()?;
    let planned_names: Vec<String> = if scenarios.is_empty() {
        scenario::suite_default()
    } else {
        // Refuse a bad name before starting anything.
        for n in &scenarios {
            scenario::load(n)?;
        }
        scenarios
    };
    let plan = suite::planned(&planned_names, broker.label());
    let owned = shard.owned(&plan)?;
    let names: Vec<String> = owned.iter().map(|i| planned_names[*i].clone()).collect();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let interactive = std::io::stderr().is_terminal();
    let jobs = jobs_for(jobs, names.len());
    if interactive {
        eprintln!("running {} scenarios, {jobs} at a time ...", names.len());
    }
    // Runs on a broker given by URL share it: one at a time (see run_specs_sharing).
    let jobs = if matches!(broker, BrokerChoice::Url(_)) {
        if interactive && jobs > 1 {
            eprintln!("a broker given by URL is shared by every run: running them one at a time");
        }
        1
    } else {
        jobs
    };
    let mut extra = timing.args();
    extra.extend(broker.args());
    shard.wait()?;
    let batch = rt.block_on(suite::run_children(
        &names,
        &out,
        jobs as usize,
        &extra,
        show_progress(),
    ))?;
    let labels: Vec<(String, String)> = batch
        .runs
        .iter()
        .map(|_| (broker.label().to_string(), "-".to_string()))
        .collect();
    write_suite(&out, &batch, &labels)?;
    machine.write(&batch, "suite")?;
    shard.write_manifest(&out, "suite", Vec::new(), plan, &owned, &batch)?;
    Ok(children_exit_code(&batch))
}

/// The flags of `unplug compare` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct CompareArgs {
    /// Scenario names or paths; the seed's four (native-no-will, native-last-will, ws-no-will,
    /// ws-last-will) when none are given.
    scenarios: Vec<String>,
    /// Brokers to compare: builtin, mosquitto, or a broker's URLs (a ws:// URL joins the
    /// tcp:// URL before it), separated by commas.
    #[arg(long, default_value = "builtin,mosquitto", value_name = "LIST")]
    brokers: String,
    /// Transports to run every scenario over; each scenario's own when not given.
    #[arg(long, value_delimiter = ',', value_parser = parse_transport, value_name = "tcp,ws,tls,wss")]
    transports: Option<Vec<unplug::scenario::Transport>>,
    /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
    #[arg(long, value_name = "PATH")]
    mosquitto_bin: Option<PathBuf>,
    /// willy clients to compare, separated by commas (rumqttc, mqttjs, paho, cmd:PATH): every
    /// run once per client.
    #[arg(long, value_delimiter = ',', value_parser = parse_willy, value_name = "LIST")]
    willies: Option<Vec<unplug::driver::WillyKind>>,
    /// Cut layers to compare (proxy, kernel, link), with --willies; rumqttc through a kernel or
    /// link cut runs as its own driver process in willy's namespace.
    #[arg(long, value_delimiter = ',', value_parser = parse_cut, value_name = "LIST")]
    cuts: Option<Vec<unplug::kernelcut::CutLayer>>,
    #[command(flatten)]
    timing: Timing,
    /// Run every cell N times (CELL.r1 .. CELL.rN, each kept): the table shows each figure's
    /// distribution per cell, and every cell gets CELL.repeat.json.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: Option<u32>,
    /// How many runs at once [default: all of them, at most 64].
    #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    jobs: Option<u16>,
    /// Directory for every run's files and COMPARE.md.
    #[arg(long, default_value = "results", value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    machine: MachineOut,
    #[command(flatten)]
    shard: ShardArgs,
}

/// `unplug compare`: every scenario on every broker (and transport), side by side.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let CompareArgs {
        scenarios,
        brokers,
        transports,
        mosquitto_bin,
        willies,
        cuts,
        timing,
        repeat,
        jobs,
        out,
        machine,
        shard,
    } = args;
    machine.claim_stdout();
    let brokers = parse_brokers(&brokers, mosquitto_bin.as_ref())?;
    let scenarios: Vec<String> = if scenarios.is_empty() {
        compare::DEFAULT_SCENARIOS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        scenarios
    };
    // Refuse a bad name before starting anything; learn each one's own transport.
    let own = own_transports(&scenarios)?;
    let cells = compare::plan(
        &scenarios,
        &brokers,
        transports.as_deref(),
        |n| own[n],
        &timing.args(),
    );
    let cells = if willies.is_some() || cuts.is_some() {
        let willies = willies.unwrap_or_default();
        let willies = if willies.is_empty() {
            vec![unplug::driver::WillyKind::Rumqttc]
        } else {
            willies
        };
        let cuts = cuts.unwrap_or_else(|| vec![unplug::kernelcut::CutLayer::Proxy]);
        // What a client or cut needs is there, or exit 2 before any run starts.
        for w in &willies {
            unplug::driver::process::resolve(w)?;
        }
        if cuts.iter().any(|c| c.in_kernel()) {
            unplug::kernelcut::check_privilege()?;
        }
        compare::across_clients(cells, &willies, &cuts)
    } else {
        cells
    };
    let repeat = repeat.filter(|n| *n > 1);
    let cells = match repeat {
        Some(n) => compare::repeated(cells, n),
        None => cells,
    };
    let labels = compare::labels(&cells, |n| own[n]);
    let plan = compare::planned(&cells, &labels);
    let owned = shard.owned(&plan)?;
    let cells: Vec<compare::Cell> = owned.iter().map(|i| cells[*i].clone()).collect();
    let labels: Vec<(String, String)> = owned.iter().map(|i| labels[*i].clone()).collect();
    shard.wait()?;
    let batch = run_cells(&cells, &out, jobs_for(jobs, cells.len()))?;
    write_picture(
        &out.join("COMPARE.svg"),
        "unplug compare",
        &batch.runs,
        &labels,
    )?;
    if repeat.is_some() {
        let (rows, cells) = compare::repeat_rows(&cells, &batch.runs);
        for r in &cells {
            write_file(
                &out.join(format!("{}.repeat.json", r.name)),
                &(serde_json::to_string_pretty(r)? + "\n"),
            )?;
        }
        let text = table::render_text(&compare::REPEAT_HEADER, &rows);
        print_table(&text);
        write_file(
            &out.join("COMPARE.md"),
            &(interrupted_note(&batch)
                + "# Brokers side by side, repeated\n\nEach figure: p50, p90 (min..max) over the cell's runs, in ms.\n\n"
                + &table::render_markdown(&compare::REPEAT_HEADER, &rows)),
        )?;
    } else {
        let rows = compare::rows(&cells, &batch.runs);
        print_table(&table::render_text(&table::COMPARE_HEADER, &rows));
        write_file(
            &out.join("COMPARE.md"),
            &(interrupted_note(&batch) + &compare::markdown(&rows, &batch.runs)),
        )?;
    }
    machine.write(&batch, "compare")?;
    shard.write_manifest(&out, "compare", Vec::new(), plan, &owned, &batch)?;
    Ok(children_exit_code(&batch))
}

/// The flags of `unplug conformance` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct ConformanceArgs {
    /// Brokers to judge: builtin, mosquitto, or a broker's URLs, separated by commas.
    #[arg(long, default_value = "builtin,mosquitto", value_name = "LIST")]
    brokers: String,
    /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
    #[arg(long, value_name = "PATH")]
    mosquitto_bin: Option<PathBuf>,
    /// How many runs at once [default: all of them, at most 64].
    #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    jobs: Option<u16>,
    /// Directory for every run's files and CONFORMANCE.md.
    #[arg(long, default_value = "results", value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    machine: MachineOut,
    #[command(flatten)]
    shard: ShardArgs,
}

/// `unplug conformance`: the table of the will's spec checks x brokers.
pub fn conformance(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let ConformanceArgs {
        brokers,
        mosquitto_bin,
        jobs,
        out,
        machine,
        shard,
    } = args;
    machine.claim_stdout();
    let brokers = parse_brokers(&brokers, mosquitto_bin.as_ref())?;
    let scenarios: Vec<String> = conformance::CONFORMANCE_SCENARIOS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let own = own_transports(&scenarios)?;
    let cells = compare::plan(&scenarios, &brokers, None, |n| own[n], &[]);
    let labels: Vec<String> = brokers.iter().map(|b| b.label().to_string()).collect();
    let plan = compare::planned(&cells, &compare::labels(&cells, |n| own[n]));
    let owned = shard.owned(&plan)?;
    let cells: Vec<compare::Cell> = owned.iter().map(|i| cells[*i].clone()).collect();
    shard.wait()?;
    let batch = run_cells(&cells, &out, jobs_for(jobs, cells.len()))?;
    let placed: Vec<(String, Option<usize>)> = cells
        .iter()
        .map(|c| {
            let column = brokers.iter().position(|b| *b == c.broker);
            (c.scenario.clone(), column)
        })
        .collect();
    write_conformance(&out, &labels, &placed, &batch)?;
    machine.write(&batch, "conformance")?;
    shard.write_manifest(&out, "conformance", labels, plan, &owned, &batch)?;
    Ok(children_exit_code(&batch))
}

/// SUITE.svg, the table on stdout and SUITE.md: a suite's, or its shards' merged.
pub fn write_suite(
    out: &std::path::Path,
    batch: &suite::Batch,
    labels: &[(String, String)],
) -> anyhow::Result<()> {
    write_picture(&out.join("SUITE.svg"), "unplug suite", &batch.runs, labels)?;
    let rows = suite::table_rows(&batch.runs);
    print_table(&table::render_text(&table::SUITE_HEADER, &rows));
    write_file(
        &out.join("SUITE.md"),
        &(interrupted_note(batch) + &table::render_markdown(&table::SUITE_HEADER, &rows)),
    )
}

/// Print the conformance table and write CONFORMANCE.md: `labels` are the broker columns,
/// `placed` each run's scenario and column, in the batch's order.
pub fn write_conformance(
    out: &std::path::Path,
    labels: &[String],
    placed: &[(String, Option<usize>)],
    batch: &suite::Batch,
) -> anyhow::Result<()> {
    let runs = &batch.runs;
    let judged: Vec<(String, usize, &unplug::report::Summary)> = placed
        .iter()
        .zip(runs)
        .filter_map(|((sc, col), r)| Some((sc.clone(), (*col)?, r.summary.as_ref()?)))
        .collect();
    let errors: Vec<&suite::ChildRun> = runs.iter().filter(|r| r.summary.is_none()).collect();
    let mut rows = conformance::rows(labels, &judged);
    let missing: Vec<(String, usize, &str)> = placed
        .iter()
        .zip(runs)
        .filter(|(_, r)| r.summary.is_none())
        .filter_map(|((sc, col), r)| Some((sc.clone(), (*col)?, r.status_word())))
        .collect();
    conformance::mark_missing(&mut rows, labels.len(), &missing);
    let header = conformance::header(labels);
    let header: Vec<&str> = header.iter().map(|h| h.as_str()).collect();
    print_table(&table::render_text(&header, &conformance::cells(&rows)));
    write_file(
        &out.join("CONFORMANCE.md"),
        &(interrupted_note(batch) + &conformance::markdown(labels, &rows, &judged, &errors)),
    )
}
