//! The `unplug` command line: parse, run, and map the outcome to an exit code
//! (0 every check held, 1 a check failed, 2 usage or harness error, 128 + the signal that
//! interrupted it: 130 SIGINT, 143 SIGTERM).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use unplug::broker::BrokerChoice;
use unplug::compare;
use unplug::conformance;
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
    after_help = "Examples:\n  unplug list\n  unplug scenario ws-last-will\n  unplug scenario native-no-will --keepalive 5 --out /tmp/runs\n  unplug scenario ./my-scenario.toml\n  unplug suite --jobs 4\n\nExit codes: 0 every check held, 1 a check failed, 2 usage or harness error, 130 SIGINT, 143 SIGTERM."
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
    List {
        /// Print JSON: one object per scenario (name, description, transport, protocol,
        /// keepalive_s, cycles, will, faults, expect_will).
        #[arg(long)]
        json: bool,
    },
    /// List the broker profiles (`--profile NAME`): each one's timing model and known deviations.
    Profiles,
    /// Judge a saved run again from its journal: the checks and the verdict, as the run had them.
    #[command(
        after_help = "Examples:\n  unplug judge results/ws-last-will.events.jsonl\n  unplug judge /tmp/runs/x.events.jsonl --profile mosquitto --json\n\nThe journal records the scenario it ran and the broker profile it was judged by; --profile judges it by another. Exit 0 when every check holds, 1 when one fails."
    )]
    Judge {
        /// The run's NAME.events.jsonl.
        #[arg(value_name = "RUN.events.jsonl")]
        journal: PathBuf,
        /// Judge by this broker profile instead of the recorded one (see `unplug profiles`).
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Print the summary JSON on stdout instead of the check lines.
        #[arg(long)]
        json: bool,
    },
    /// Run one scenario and check its timings against the MQTT spec.
    #[command(
        after_help = "Examples:\n  unplug scenario ws-last-will\n  unplug scenario ws-last-will --seed-timing\n  unplug scenario scenarios/native-no-will.toml --keepalive 3 --out /tmp/runs\n\nWrites NAME.log, NAME.events.jsonl, NAME.summary.json and NAME.svg (its timeline) into --out."
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
        #[command(flatten)]
        broker: BrokerArgs,
        /// Run over this transport instead of the scenario's own.
        #[arg(long, value_parser = parse_transport, value_name = "tcp|ws")]
        transport: Option<unplug::scenario::Transport>,
        /// Name the run (and its files) NAME instead of the scenario's name.
        #[arg(long, value_parser = parse_name, value_name = "NAME")]
        name: Option<String>,
        /// The run's id in its summary.json (suite, compare and conformance give each child
        /// one, to read back only what that child wrote).
        #[arg(long, hide = true, value_name = "ID")]
        run_id: Option<String>,
    },
    /// Run many scenarios (default: all built-in) in parallel child processes, then print a table.
    #[command(
        after_help = "Examples:\n  unplug suite\n  unplug suite --jobs 2 --out /tmp/suite ws-last-will ws-no-will"
    )]
    Suite {
        /// Scenario names or paths; all built-in scenarios but fleets (will-storm) when none are given.
        scenarios: Vec<String>,
        #[command(flatten)]
        timing: Timing,
        /// How many scenarios run at once.
        #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Directory for every run's files and SUITE.md.
        #[arg(long, default_value = "results", value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        broker: BrokerArgs,
        #[command(flatten)]
        machine: MachineOut,
    },
    /// Run scenarios on several brokers and transports and print them side by side.
    #[command(
        after_help = "Examples:\n  unplug compare\n  unplug compare native-last-will --brokers builtin,mosquitto --transports tcp,ws\n  unplug compare --brokers mosquitto,tcp://127.0.0.1:1883 --out /tmp/cmp\n\nWithout --transports each scenario runs on its own transport. Writes every run's files and COMPARE.md into --out."
    )]
    Compare {
        /// Scenario names or paths; the seed's four (native-no-will, native-last-will, ws-no-will,
        /// ws-last-will) when none are given.
        scenarios: Vec<String>,
        /// Brokers to compare: builtin, mosquitto, or a broker's URLs (a ws:// URL joins the
        /// tcp:// URL before it), separated by commas.
        #[arg(long, default_value = "builtin,mosquitto", value_name = "LIST")]
        brokers: String,
        /// Transports to run every scenario over; each scenario's own when not given.
        #[arg(long, value_delimiter = ',', value_parser = parse_transport, value_name = "tcp,ws")]
        transports: Option<Vec<unplug::scenario::Transport>>,
        /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
        #[arg(long, value_name = "PATH")]
        mosquitto_bin: Option<PathBuf>,
        #[command(flatten)]
        timing: Timing,
        /// How many runs at once.
        #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Directory for every run's files and COMPARE.md.
        #[arg(long, default_value = "results", value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        machine: MachineOut,
    },
    /// Run the will's conformance scenarios (MQTT 3.1.1 and 5) on each broker and print the table
    /// of spec checks x brokers: pass, FAIL, or a deviation the broker's profile documents.
    #[command(
        after_help = "Examples:\n  unplug conformance\n  unplug conformance --brokers builtin --out /tmp/conf\n\nWrites CONFORMANCE.md into --out."
    )]
    Conformance {
        /// Brokers to judge: builtin, mosquitto, or a broker's URLs, separated by commas.
        #[arg(long, default_value = "builtin,mosquitto", value_name = "LIST")]
        brokers: String,
        /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
        #[arg(long, value_name = "PATH")]
        mosquitto_bin: Option<PathBuf>,
        /// How many runs at once.
        #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Directory for every run's files and CONFORMANCE.md.
        #[arg(long, default_value = "results", value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        machine: MachineOut,
    },
    /// Give each broker its row of the will table: abrupt close, a silent client (3 runs) and its
    /// clean 3.1.1 DISCONNECTs, v5 DISCONNECT 0x00 and 0x04, will delay 2 s with session expiry
    /// 0 and 60; over TCP and WebSocket where the broker offers them.
    #[command(
        after_help = "Examples:\n  unplug probe --brokers tcp://127.0.0.1:1883,ws://127.0.0.1:8080/mqtt\n  unplug probe --brokers builtin,mosquitto,lab=tcp://10.0.0.5:1883,ws://10.0.0.5:8080/mqtt\n  unplug probe --brokers tcp://user:pass@broker.lan:1883 --transports tcp\n  unplug probe --brokers builtin,mosquitto --out /tmp/probe\n\nPrints one Markdown row per broker and transport (seconds; `!` where the spec is broken) and writes PROBE.md and every run's files into --out."
    )]
    Probe {
        /// Brokers to probe: builtin, mosquitto, or a broker's URLs, separated by commas; NAME=
        /// before a URL names that broker in the table and the file names.
        #[arg(long, default_value = "builtin", value_name = "LIST")]
        brokers: String,
        /// Transports to probe on (a broker given by URL only where it has a URL for it).
        #[arg(long, value_delimiter = ',', value_parser = parse_transport, value_name = "tcp,ws", default_value = "tcp,ws")]
        transports: Vec<unplug::scenario::Transport>,
        /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
        #[arg(long, value_name = "PATH")]
        mosquitto_bin: Option<PathBuf>,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        timing: Timing,
        /// How many runs at once.
        #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Directory for every run's files and PROBE.md.
        #[arg(long, default_value = "results", value_name = "DIR")]
        out: PathBuf,
    },
    /// Write DIR/index.html: every run under DIR with its verdict, checks and picture, and links
    /// to its log, events and summary. Static; opens with no network.
    #[command(
        after_help = "Examples:\n  unplug index results\n  unplug index /tmp/runs --title \"my runs\""
    )]
    Index {
        /// The directory holding the runs (searched three levels down).
        #[arg(default_value = "results", value_name = "DIR")]
        dir: PathBuf,
        /// The page's title.
        #[arg(long, default_value = "unplug results")]
        title: String,
    },
}

/// Machine-readable results of many runs, for CI.
#[derive(Args, Clone)]
struct MachineOut {
    /// Also write JUnit XML to FILE: a testsuite per run, a testcase for its verdict and one per
    /// check (a failure with expected and actual; a run that did not finish is an error).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write every run's status and whole summary as one JSON document to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

impl MachineOut {
    fn write(&self, batch: &suite::Batch, command: &str) -> anyhow::Result<()> {
        if let Some(p) = &self.junit {
            write_file(p, &batch.to_junit(&format!("unplug {command}")))?;
        }
        if let Some(p) = &self.json {
            write_file(p, &batch.to_json(command))?;
        }
        Ok(())
    }
}

/// Write a file of ours whole (temp file + rename: never through a symlink).
fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    unplug::fsx::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Which broker a run uses.
#[derive(Args, Clone)]
struct BrokerArgs {
    /// builtin (rumqttd in-process), mosquitto (a child process), or the URLs of a running
    /// broker: tcp://HOST:PORT[,ws://HOST:PORT/PATH].
    #[arg(long, default_value = "builtin", value_parser = parse_broker, value_name = "BROKER")]
    broker: BrokerChoice,
    /// The mosquitto binary, when it is not on PATH or in /usr/sbin.
    #[arg(long, value_name = "PATH")]
    mosquitto_bin: Option<PathBuf>,
    #[command(flatten)]
    access: AccessArgs,
}

/// How a broker given by URL is reached and judged.
#[derive(Args, Clone)]
struct AccessArgs {
    /// The user name every client logs in with (a URL broker; or put user:pass@ in the URL).
    #[arg(long, value_name = "USER")]
    username: Option<String>,
    /// The environment variable holding the password (never given on the command line).
    #[arg(long, value_name = "VAR", requires = "username")]
    password_env: Option<String>,
    /// Judge a URL broker by this profile instead of recognising it (see `unplug profiles`).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

impl AccessArgs {
    /// Attach the login and profile to a URL broker; refuse them for the others.
    fn apply(&self, choice: BrokerChoice) -> anyhow::Result<BrokerChoice> {
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
        match choice {
            BrokerChoice::Url(u) => {
                let mut u = u.with_login(login)?;
                if self.profile.is_some() {
                    u.profile = self.profile.clone();
                }
                Ok(BrokerChoice::Url(u))
            }
            c if login.is_some() || self.profile.is_some() => anyhow::bail!(
                "--username, --password-env and --profile apply to a broker given by URL (not {})",
                c.label()
            ),
            c => Ok(c),
        }
    }
}

impl BrokerArgs {
    fn choice(&self) -> anyhow::Result<BrokerChoice> {
        let c = self
            .access
            .apply(with_bin(self.broker.clone(), self.mosquitto_bin.as_ref())?)?;
        c.export_password();
        Ok(c)
    }
}

/// Attach `--mosquitto-bin` to a mosquitto choice; refuse it for any other broker.
fn with_bin(choice: BrokerChoice, bin: Option<&PathBuf>) -> anyhow::Result<BrokerChoice> {
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

fn parse_broker(s: &str) -> Result<BrokerChoice, String> {
    BrokerChoice::parse(s).map_err(|e| {
        format!("{e} (expected builtin, mosquitto, or tcp://HOST:PORT[,ws://HOST:PORT/PATH])")
    })
}

/// `--brokers builtin,mosquitto,tcp://h:1,ws://h:2/mqtt`: a ws:// URL joins the tcp:// URL
/// before it, making one broker.
fn parse_brokers(list: &str, bin: Option<&PathBuf>) -> anyhow::Result<Vec<BrokerChoice>> {
    Ok(parse_labelled_brokers(list, bin)?
        .into_iter()
        .map(|(_, b)| b)
        .collect())
}

/// The same, where a URL broker may carry a name for tables and files: `amqtt=tcp://h:1`.
fn parse_labelled_brokers(
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
    if bin.is_some() && !groups.iter().any(|g| g == "mosquitto") {
        anyhow::bail!("--mosquitto-bin only applies when mosquitto is one of --brokers");
    }
    // Child runs get a URL's password through one environment variable: one password per call.
    let mut passwords = std::collections::HashSet::new();
    groups
        .iter()
        .map(|g| {
            let (label, g) = match g.split_once('=') {
                Some((l, rest)) if rest.contains("://") && !l.contains("://") => {
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

fn parse_transport(s: &str) -> Result<unplug::scenario::Transport, String> {
    match s.trim() {
        "tcp" => Ok(unplug::scenario::Transport::Tcp),
        "ws" => Ok(unplug::scenario::Transport::Ws),
        other => Err(format!("unknown transport {other:?} (expected tcp or ws)")),
    }
}

fn parse_name(s: &str) -> Result<String, String> {
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

/// Each scenario's own transport; loading them all first refuses a bad name before any run.
fn own_transports(
    scenarios: &[String],
) -> anyhow::Result<std::collections::HashMap<String, scenario::Transport>> {
    let mut own = std::collections::HashMap::new();
    for n in scenarios {
        own.insert(n.clone(), scenario::load(n)?.transport);
    }
    Ok(own)
}

/// Run each cell as a child run into `out`, `jobs` at a time.
fn run_cells(
    cells: &[compare::Cell],
    out: &std::path::Path,
    jobs: u16,
) -> anyhow::Result<suite::Batch> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    if std::io::stderr().is_terminal() {
        eprintln!("running {} runs, {jobs} at a time ...", cells.len());
    }
    let specs: Vec<_> = cells.iter().map(|c| c.spec.clone()).collect();
    rt.block_on(run_specs_sharing(&specs, out, jobs))
}

/// Run child specs `jobs` at a time, except that runs on a broker given by URL go one at a
/// time: they share that broker, and two runs at once would take over each other's client ids
/// ("willy", "monit") and hear each other's messages. A broker we start is each run's own.
async fn run_specs_sharing(
    specs: &[suite::ChildSpec],
    out: &std::path::Path,
    jobs: u16,
) -> anyhow::Result<suite::Batch> {
    let shared = |s: &suite::ChildSpec| {
        s.args
            .windows(2)
            .any(|w| w[0] == "--broker" && w[1].contains("://"))
    };
    let (own, url): (Vec<_>, Vec<_>) = specs.iter().cloned().partition(|s| !shared(s));
    if !url.is_empty() && std::io::stderr().is_terminal() {
        eprintln!(
            "{} runs on a broker given by URL go one at a time (they share it)",
            url.len()
        );
    }
    let progress = show_progress();
    let (own_runs, url_runs) = tokio::join!(
        suite::run_specs(&own, out, jobs as usize, progress),
        suite::run_specs(&url, out, 1, progress && own.is_empty()),
    );
    let (own_runs, url_runs) = (own_runs?, url_runs?);
    let interrupted = own_runs.interrupted.or(url_runs.interrupted);
    let (mut own_runs, mut url_runs) = (own_runs.runs.into_iter(), url_runs.runs.into_iter());
    let runs = specs
        .iter()
        .filter_map(|s| {
            if shared(s) {
                url_runs.next()
            } else {
                own_runs.next()
            }
        })
        .collect();
    Ok(suite::Batch { runs, interrupted })
}

/// Progress bars only for a person watching: stdout and stderr both a terminal.
fn show_progress() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// The comparison picture of many child runs: a finished run's bars, or why a run has none.
/// `labels` gives each run's broker and transport for a row without a summary.
fn write_picture(
    path: &std::path::Path,
    title: &str,
    runs: &[suite::ChildRun],
    labels: &[(String, String)],
) -> anyhow::Result<()> {
    use unplug::report::svg::CompareRow;
    let rows: Vec<CompareRow> = runs
        .iter()
        .zip(labels)
        .map(|(r, (broker, transport))| match (&r.summary, r.problem()) {
            (Some(s), None) => CompareRow::Run(s),
            (_, problem) => CompareRow::Missing {
                name: &r.name,
                broker,
                transport,
                status: r.status_word(),
                reason: problem.unwrap_or_default(),
            },
        })
        .collect();
    write_file(
        path,
        &unplug::report::svg::render_compare_rows(title, &rows),
    )
}

/// Say on stderr what did not finish, and hand back the exit code of many child runs.
fn children_exit_code(batch: &suite::Batch) -> ExitCode {
    for r in &batch.runs {
        if let Some(p) = r.problem() {
            eprintln!("unplug: {}: {p}", r.name);
        }
    }
    if let Some(sig) = batch.interrupted {
        let done = batch.runs.iter().filter(|r| r.summary.is_some()).count();
        eprintln!(
            "unplug: interrupted ({}): {done} of {} runs finished; the tables show only those",
            sig.as_str(),
            batch.runs.len()
        );
    }
    ExitCode::from(batch.exit_code())
}

/// A line above a table whose batch was interrupted.
fn interrupted_note(batch: &suite::Batch) -> String {
    match batch.interrupted {
        Some(sig) => format!(
            "**Interrupted ({})**: only the runs that finished have a verdict.\n\n",
            sig.as_str()
        ),
        None => String::new(),
    }
}

#[derive(Args, Clone, Copy)]
struct Timing {
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
    fn overrides(self) -> Overrides {
        Overrides {
            keepalive_s: self.keepalive,
            seed_timing: self.seed_timing,
            observe_s: self.observe,
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
        if let Some(o) = self.observe {
            v.extend(["--observe".to_string(), o.to_string()]);
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
        Command::List { json: true } => {
            let list: Vec<serde_json::Value> = scenario::BUILTIN
                .iter()
                .map(|(name, _)| {
                    let s = scenario::load(name).map_err(anyhow::Error::from)?;
                    Ok(serde_json::json!({
                        "name": s.name,
                        "description": s.description,
                        "transport": s.transport.as_str(),
                        "protocol": s.protocol.as_str(),
                        "keepalive_s": s.keepalive.as_secs(),
                        "cycles": s.cycles,
                        "will": s.will.is_some(),
                        "faults": s.faults.iter().map(|f| f.kind.label()).collect::<Vec<_>>(),
                        "expect_will": s.expect.will,
                    }))
                })
                .collect::<anyhow::Result<_>>()?;
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::List { json: false } => {
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
        Command::Profiles => {
            let rows: Vec<Vec<String>> = unplug::broker::profile::Profile::known()
                .into_iter()
                .map(|(name, p)| {
                    vec![
                        name.to_string(),
                        format!("+{} ms", p.keepalive_late_ms),
                        p.deviations.len().to_string(),
                        p.timing_model,
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render_text(
                    &["profile", "late allowance", "deviations", "timing model"],
                    &rows
                )
            );
            println!("\nA broker given by URL is recognised from what it says of itself ($SYS/broker/version); one that says nothing is judged by `spec`. Force one with --profile NAME.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Judge {
            journal,
            profile,
            json,
        } => {
            let summary = unplug::report::rejudge::rejudge_file(&journal, profile.as_deref())?;
            if json {
                print!("{}", summary.to_json());
            } else {
                print!("{}", summary.verdict_lines());
            }
            Ok(if summary.pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Scenario {
            scenario: name,
            timing,
            out,
            quiet,
            wire,
            broker,
            transport,
            name: run_name,
            run_id,
        } => {
            let mut s = scenario::load(&name)?;
            s.apply(timing.overrides());
            if let Some(t) = transport {
                s.transport = t;
            }
            if let Some(n) = run_name {
                s.name = n;
            }
            let broker = broker.choice()?;
            let opts = RunOptions {
                out_dir: out.clone(),
                echo: Echo {
                    stdout: !quiet,
                    wire,
                },
                broker,
                progress: !quiet && std::io::stdout().is_terminal(),
                run_id,
            };
            let result = runner::run(&s, &opts)?;
            if !quiet {
                println!();
            }
            print!("{}", result.summary.verdict_lines());
            if !quiet {
                let stem = match result.interrupted {
                    Some(_) => unplug::report::files::incomplete_stem(&s.name),
                    None => s.name.clone(),
                };
                println!(
                    "files: {}/{stem}.{{log,events.jsonl,summary.json,svg}}",
                    out.display(),
                );
            }
            Ok(if let Some(sig) = result.interrupted {
                ExitCode::from(unplug::lifeline::exit_code(sig))
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
            broker,
            machine,
        } => {
            let broker = broker.choice()?;
            let names: Vec<String> = if scenarios.is_empty() {
                scenario::suite_default()
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
            // Runs on a broker given by URL share it: one at a time (see run_specs_sharing).
            let jobs = if matches!(broker, BrokerChoice::Url(_)) {
                if interactive && jobs > 1 {
                    eprintln!(
                        "a broker given by URL is shared by every run: running them one at a time"
                    );
                }
                1
            } else {
                jobs
            };
            let mut extra = timing.args();
            extra.extend(broker.args());
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
            write_picture(&out.join("SUITE.svg"), "unplug suite", &batch.runs, &labels)?;
            let rows = suite::table_rows(&batch.runs);
            print!("{}", table::render_text(&table::SUITE_HEADER, &rows));
            write_file(
                &out.join("SUITE.md"),
                &(interrupted_note(&batch) + &table::render_markdown(&table::SUITE_HEADER, &rows)),
            )?;
            machine.write(&batch, "suite")?;
            Ok(children_exit_code(&batch))
        }
        Command::Compare {
            scenarios,
            brokers,
            transports,
            mosquitto_bin,
            timing,
            jobs,
            out,
            machine,
        } => {
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
            let batch = run_cells(&cells, &out, jobs)?;
            let labels = compare::labels(&cells, |n| own[n]);
            write_picture(
                &out.join("COMPARE.svg"),
                "unplug compare",
                &batch.runs,
                &labels,
            )?;
            let rows = compare::rows(&cells, &batch.runs);
            print!("{}", table::render_text(&table::COMPARE_HEADER, &rows));
            write_file(
                &out.join("COMPARE.md"),
                &(interrupted_note(&batch) + &compare::markdown(&rows, &batch.runs)),
            )?;
            machine.write(&batch, "compare")?;
            Ok(children_exit_code(&batch))
        }
        Command::Conformance {
            brokers,
            mosquitto_bin,
            jobs,
            out,
            machine,
        } => {
            let brokers = parse_brokers(&brokers, mosquitto_bin.as_ref())?;
            let scenarios: Vec<String> = conformance::CONFORMANCE_SCENARIOS
                .iter()
                .map(|s| s.to_string())
                .collect();
            let own = own_transports(&scenarios)?;
            let cells = compare::plan(&scenarios, &brokers, None, |n| own[n], &[]);
            let batch = run_cells(&cells, &out, jobs)?;
            let runs = &batch.runs;
            let labels: Vec<String> = brokers.iter().map(|b| b.label().to_string()).collect();
            let column = |c: &compare::Cell| brokers.iter().position(|b| *b == c.broker);
            let judged: Vec<(String, usize, &unplug::report::Summary)> = cells
                .iter()
                .zip(runs)
                .filter_map(|(c, r)| Some((c.scenario.clone(), column(c)?, r.summary.as_ref()?)))
                .collect();
            let errors: Vec<&suite::ChildRun> =
                runs.iter().filter(|r| r.summary.is_none()).collect();
            let mut rows = conformance::rows(&labels, &judged);
            let missing: Vec<(String, usize, &str)> = cells
                .iter()
                .zip(runs)
                .filter(|(_, r)| r.summary.is_none())
                .filter_map(|(c, r)| Some((c.scenario.clone(), column(c)?, r.status_word())))
                .collect();
            conformance::mark_missing(&mut rows, labels.len(), &missing);
            let header = conformance::header(&labels);
            let header: Vec<&str> = header.iter().map(|h| h.as_str()).collect();
            print!(
                "{}",
                table::render_text(&header, &conformance::cells(&rows))
            );
            write_file(
                &out.join("CONFORMANCE.md"),
                &(interrupted_note(&batch)
                    + &conformance::markdown(&labels, &rows, &judged, &errors)),
            )?;
            machine.write(&batch, "conformance")?;
            Ok(children_exit_code(&batch))
        }
        Command::Probe {
            brokers,
            transports,
            mosquitto_bin,
            access,
            timing,
            jobs,
            out,
        } => {
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
        Command::Index { dir, title } => {
            if !dir.is_dir() {
                anyhow::bail!("{}: no such directory", dir.display());
            }
            let path = unplug::report::index::write(&dir, &title)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
