//! `unplug probe`: each broker's row of the will table, from a battery of child runs.
//!
//! ```text
//! --brokers (NAME=URL ...) x --transports --probe::plan--> runs --children--> outcomes
//!                                                                              |
//!                       one Markdown row per broker and transport; PROBE.md <---+
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use unplug::broker::BrokerChoice;
use unplug::report::table;

use super::args::{
    jobs_for, parse_labelled_brokers, parse_transport, AccessArgs, Timing, MAX_JOBS,
};
use super::children::{children_exit_code, interrupted_note, run_specs_sharing};

/// The flags of `unplug probe` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct ProbeArgs {
    /// Brokers to probe: builtin, mosquitto, or a broker's URLs, separated by commas; NAME=
    /// before a URL (or before `mosquitto`, for a second mosquitto by --mosquitto-bin) names that
    /// broker in the table and the file names.
    #[arg(long, default_value = "builtin", value_name = "LIST")]
    brokers: String,
    /// Transports to probe on (a broker given by URL only where it has a URL for it).
    #[arg(long, value_delimiter = ',', value_parser = parse_transport, value_name = "tcp,ws,tls,wss", default_value = "tcp,ws")]
    transports: Vec<unplug::scenario::Transport>,
    /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
    #[arg(long, value_name = "PATH")]
    mosquitto_bin: Option<PathBuf>,
    #[command(flatten)]
    access: AccessArgs,
    #[command(flatten)]
    timing: Timing,
    /// How many runs at once [default: all of them, at most 64].
    #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    jobs: Option<u16>,
    /// Directory for every run's files and PROBE.md.
    #[arg(long, default_value = "results", value_name = "DIR")]
    out: PathBuf,
}

/// `unplug probe`: run the battery on every broker and transport and print the table.
pub fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let ProbeArgs {
        brokers,
        transports,
        mosquitto_bin,
        access,
        timing,
        jobs,
        out,
    } = args;
    let brokers = parse_labelled_brokers(&brokers, mosquitto_bin.as_ref())?
        .into_iter()
        .map(|(l, b)| {
            let b = access.apply(b)?;
            b.export_password();
            Ok((l, b))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut urls = 0;
    let labelled: Vec<(BrokerChoice, String)> = brokers
        .iter()
        .map(|(l, b)| {
            let label = match (l, b) {
                (Some(l), _) => l.clone(),
                (None, BrokerChoice::Url(_)) => {
                    urls += 1;
                    format!("url{urls}")
                }
                (None, b) => b.label().to_string(),
            };
            (b.clone(), label)
        })
        .collect();
    let named: Vec<&Option<String>> = brokers.iter().map(|(l, _)| l).collect();
    let plan = unplug::probe::plan(&labelled, &transports, &timing.args());
    let specs: Vec<_> = plan.iter().filter_map(|r| r.spec.clone()).collect();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let jobs = jobs_for(jobs, specs.len());
    if std::io::stderr().is_terminal() {
        eprintln!("probing: {} runs, {jobs} at a time ...", specs.len());
    }
    let runs = rt.block_on(run_specs_sharing(&specs, &out, jobs))?;
    // Back in plan order, None where a run was not possible.
    let mut done = runs.runs.iter();
    let outcomes: Vec<Option<Result<&unplug::report::Summary, String>>> = plan
        .iter()
        .map(|r| {
            r.spec.as_ref()?;
            let run = done.next()?;
            Some(match (&run.summary, run.exit) {
                (Some(s), Some(0 | 1)) => Ok(s),
                _ => Err(run
                    .error
                    .lines()
                    .last()
                    .unwrap_or("no summary")
                    .trim()
                    .to_string()),
            })
        })
        .collect();
    let mut rows = Vec::new();
    for ((b, _), given) in labelled.iter().zip(&named) {
        for &t in &transports {
            let runs: Vec<_> = plan
                .iter()
                .zip(&outcomes)
                .filter(|(r, _)| r.broker == *b && r.transport == t)
                .map(|(r, o)| (r.test, o.clone()))
                .collect();
            if runs.is_empty() {
                continue;
            }
            let name = runs
                .iter()
                .find_map(|(_, o)| {
                    o.as_ref()?
                        .as_ref()
                        .ok()
                        .map(|s| unplug::probe::broker_name(s))
                })
                .unwrap_or_else(|| b.label().to_string());
            let name = match given {
                Some(l) => format!("{l} ({name})"),
                None => name,
            };
            rows.push(unplug::probe::row(&name, t, &runs));
        }
    }
    let md = table::render_markdown(&unplug::probe::HEADER, &rows);
    print!("{md}");
    let path = out.join("PROBE.md");
    unplug::fsx::write_atomic(
        &path,
        format!("# The will table\n\n{}Seconds: the abrupt close's will from the cut; the silent client's drop and will from its last packet; a delayed will from the broker's close. `!`: the spec is broken there (a failed check or a deviation the broker's profile documents).\n\n{md}", interrupted_note(&runs)).as_bytes(),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    if runs.interrupted.is_some() {
        return Ok(children_exit_code(&runs));
    }
    Ok(ExitCode::from(unplug::probe::exit_code(&rows)))
}
