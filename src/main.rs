//! The `unplug` command line: parse, run, and map the outcome to an exit code
//! (0 every check held, 1 a check failed, 2 usage or harness error).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use unplug::broker::BrokerChoice;
use unplug::event::Echo;
use unplug::report::table;
use unplug::runner::{self, RunOptions};
use unplug::scenario::{self, Overrides};
use unplug::suite;

#[derive(Parser)]
#[command(
    name = "unplug",
    version,
    about = "Cut an MQTT client off the network and measure when (if ever) the rest of the system finds out",
    after_help = "Examples:\n  unplug list\n  unplug scenario ws-last-will\n  unplug scenario native-no-will --keepalive 5 --out /tmp/runs\n  unplug scenario ./my-scenario.toml\n  unplug suite --jobs 4\n\nExit codes: 0 every check held, 1 a check failed, 2 usage or harness error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// willy as a child process of a run (crash and freeze faults); started by the runner.
    #[command(hide = true)]
    WillyChild,
    /// List the built-in scenarios with their descriptions.
    List,
    /// Run one scenario and check its timings against the MQTT spec.
    #[command(
        after_help = "Examples:\n  unplug scenario ws-last-will\n  unplug scenario ws-last-will --seed-timing\n  unplug scenario scenarios/native-no-will.toml --keepalive 3 --out /tmp/runs\n\nWrites NAME.log, NAME.events.jsonl and NAME.summary.json into --out."
    )]
    Scenario {
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
        /// Also print every MQTT packet and WebSocket frame the proxy saw (`wire` lines; they
        /// always go to the JSONL and the log file).
        #[arg(long)]
        wire: bool,
    },
    /// Run many scenarios (default: all built-in) in parallel child processes, then print a table.
    #[command(
        after_help = "Examples:\n  unplug suite\n  unplug suite --jobs 2 --out /tmp/suite ws-last-will ws-no-will"
    )]
    Suite {
        /// Scenario names or paths; all built-in scenarios when none are given.
        scenarios: Vec<String>,
        #[command(flatten)]
        timing: Timing,
        /// How many scenarios run at once.
        #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Directory for every run's files and SUITE.md.
        #[arg(long, default_value = "results", value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Args, Clone, Copy)]
struct Timing {
    /// Override the scenario's keepalive, in seconds.
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=65535))]
    keepalive: Option<u64>,
    /// The seed's own timing: keepalive 60 s, 20 s connected, 10 s idle (a run takes minutes).
    #[arg(long)]
    seed_timing: bool,
}

impl Timing {
    fn overrides(self) -> Overrides {
        Overrides {
            keepalive_s: self.keepalive,
            seed_timing: self.seed_timing,
        }
    }

    fn args(self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(k) = self.keepalive {
            v.extend(["--keepalive".to_string(), k.to_string()]);
        }
        if self.seed_timing {
            v.push("--seed-timing".to_string());
        }
        v
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("unplug: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::WillyChild => {
            unplug::actor::child::child_main()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            let rows: Vec<Vec<String>> = scenario::BUILTIN
                .iter()
                .map(|(name, _)| {
                    let s = scenario::load(name).map_err(anyhow::Error::from)?;
                    Ok(vec![s.name, s.description])
                })
                .collect::<anyhow::Result<_>>()?;
            print!(
                "{}",
                table::render_text(&["scenario", "description"], &rows)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Scenario {
            scenario: name,
            timing,
            out,
            quiet,
            wire,
        } => {
            let mut s = scenario::load(&name)?;
            s.apply(timing.overrides());
            let opts = RunOptions {
                out_dir: out.clone(),
                echo: Echo {
                    stdout: !quiet,
                    wire,
                },
                broker: BrokerChoice::Builtin,
            };
            let result = runner::run(&s, &opts)?;
            if !quiet {
                println!();
            }
            print!("{}", result.summary.verdict_lines());
            if !quiet {
                println!(
                    "files: {}/{}.{{log,events.jsonl,summary.json}}",
                    out.display(),
                    s.name
                );
            }
            Ok(if result.interrupted {
                ExitCode::from(2)
            } else if result.summary.pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Suite {
            scenarios,
            timing,
            jobs,
            out,
        } => {
            let names: Vec<String> = if scenarios.is_empty() {
                scenario::BUILTIN
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect()
            } else {
                // Refuse a bad name before starting anything.
                for n in &scenarios {
                    scenario::load(n)?;
                }
                scenarios
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            let interactive = std::io::stderr().is_terminal();
            if interactive {
                eprintln!("running {} scenarios, {jobs} at a time ...", names.len());
            }
            let runs = rt.block_on(suite::run_children(
                &names,
                &out,
                jobs as usize,
                &timing.args(),
            ))?;
            let rows = suite::table_rows(&runs);
            print!("{}", table::render_text(&table::SUITE_HEADER, &rows));
            std::fs::write(
                out.join("SUITE.md"),
                table::render_markdown(&table::SUITE_HEADER, &rows),
            )
            .with_context(|| format!("writing {}", out.join("SUITE.md").display()))?;
            let mut code = ExitCode::SUCCESS;
            for r in &runs {
                match (&r.summary, r.exit) {
                    (Some(s), Some(0 | 1)) if !s.pass => code = ExitCode::from(1),
                    (Some(_), Some(0)) => {}
                    _ => {
                        eprintln!(
                            "unplug: scenario {} failed to run (exit {:?}): {}",
                            r.name, r.exit, r.error
                        );
                        return Ok(ExitCode::from(2));
                    }
                }
            }
            Ok(code)
        }
    }
}
