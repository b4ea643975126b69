//! The `unplug` command line: parse, run, and map the outcome to an exit code
//! (0 every check held, 1 a check failed, 2 usage or harness error, 128 + the signal that
//! interrupted it: 130 SIGINT, 143 SIGTERM).
//!
//! This file holds the commands as a user meets them (`Cli`, `Command`: their help and
//! examples) and hands each to its home in [`cli`], which owns its flags and its work.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::{batch, info, merge, probe, run, storm};

#[derive(Parser)]
#[command(
    name = "unplug",
    version,
    about = "Cut an MQTT client off the network and measure when (if ever) the rest of the system finds out",
    after_help = "Examples:\n  unplug list\n  unplug scenario ws-last-will\n  unplug scenario native-no-will --keepalive 5 --out /tmp/runs\n  unplug scenario ./my-scenario.toml\n  unplug suite\n\nExit codes: 0 every check held, 1 a check failed, 2 usage or harness error, 130 SIGINT, 143 SIGTERM."
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
    /// rumqttc 0.25.1 speaking the willy driver line protocol (a kernel cut's willy); started
    /// by the runner inside willy's network namespace.
    #[command(hide = true)]
    DriverRumqttc,
    /// List the built-in scenarios with their descriptions.
    List(info::ListArgs),
    /// Print a built-in scenario as a scenario file, to save and edit: given back as a path it
    /// runs as the built-in one does.
    #[command(
        after_help = "Examples:\n  unplug show ws-last-will\n  unplug show ws-last-will > my-test.toml && unplug scenario my-test.toml\n\nKeys left out of a file take their defaults (unplug reference, \"Scenario timing keys\")."
    )]
    Show(info::ShowArgs),
    /// List the broker profiles (`--profile NAME`): each one's timing model and known deviations.
    #[command(after_help = "Examples:\n  unplug profiles\n  unplug profiles mosquitto")]
    Profiles(info::ProfilesArgs),
    /// Print a shell's completion script for unplug (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  unplug completions bash > ~/.local/share/bash-completion/completions/unplug\n  unplug completions zsh > ~/.zfunc/_unplug\n  unplug completions fish > ~/.config/fish/completions/unplug.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print unplug's man page (roff), for `man -l -` or a man directory.
    #[command(
        after_help = "Examples:\n  unplug man | man -l -\n  unplug man > /usr/local/share/man/man1/unplug.1"
    )]
    Man,
    /// Print the reference (docs/reference.md) from the code: exit codes, every check with its
    /// rule and spec clause, every broker profile, the scenario timing keys, the built-in
    /// scenarios.
    #[command(after_help = "Examples:\n  unplug reference > docs/reference.md")]
    Reference,
    /// A fault proxy with a wire tap in front of your own device, driven by toxiproxy's HTTP API.
    Proxy(unplug::toxi::control::ProxyArgs),
    /// Judge a saved run again from its journal: the checks and the verdict, as the run had them.
    #[command(
        after_help = "Examples:\n  unplug judge results/ws-last-will.events.jsonl\n  unplug judge /tmp/runs/x.events.jsonl --profile mosquitto --json\n\nThe journal records the scenario it ran and the broker profile it was judged by; --profile judges it by another. Exit 0 when every check holds, 1 when one fails."
    )]
    Judge(info::JudgeArgs),
    /// Run one scenario and check its timings against the MQTT spec.
    #[command(
        after_help = "Examples:\n  unplug scenario ws-last-will\n  unplug scenario ws-last-will --seed-timing\n  unplug scenario scenarios/native-no-will.toml --keepalive 3 --out /tmp/runs\n  unplug scenario tls-last-will --broker mosquitto\n  unplug scenario native-last-will --transport wss --tls-tap pass-through\n  unplug scenario native-last-will --broker mosquitto --repeat 5 --out /tmp/runs\n  unplug scenario tls-last-will --broker mqtts://broker.lan:8883 --ca lab-ca.pem\n  unplug scenario tls-last-will --broker mqtts://broker.lan:8883 --ca ca.pem --client-cert me.pem --client-key me.key\n\nOver TLS (--transport tls|wss) the proxy ends willy's TLS with the run's own certificate and opens its own to the broker, so the wire tap still reads MQTT; --tls-tap pass-through forwards the encrypted bytes instead.\nWrites NAME.log, NAME.events.jsonl, NAME.summary.json and NAME.svg (its timeline) into --out.\nWith --repeat N: N independent runs at once (NAME.r1.* .. NAME.rN.*), then NAME.repeat.json (runs, passed, the verdict over all, every figure's min/p50/p90/max), NAME.repeat.svg and a table of each figure against the window its check allowed."
    )]
    Scenario(run::ScenarioArgs),
    /// Run many scenarios (default: all built-in) in parallel child processes, then print a table.
    #[command(
        after_help = "Examples:\n  unplug suite\n  unplug suite --jobs 2 --out /tmp/suite ws-last-will ws-no-will"
    )]
    Suite(batch::SuiteArgs),
    /// Run scenarios on several brokers and transports and print them side by side.
    #[command(
        after_help = "Examples:\n  unplug compare\n  unplug compare native-last-will --brokers builtin,mosquitto --transports tcp,ws\n  unplug compare --brokers mosquitto,tcp://127.0.0.1:1883 --out /tmp/cmp\n  unplug compare native-last-will ws-last-will --transports tcp,tls,ws,wss\n  unplug compare native-last-will --repeat 5 --out /tmp/cmp\n\nWithout --transports each scenario runs on its own transport. Writes every run's files and COMPARE.md into --out; with --repeat N every cell runs N times and COMPARE.md shows each figure's distribution per cell (CELL.repeat.json beside it)."
    )]
    Compare(batch::CompareArgs),
    /// Run the will's conformance scenarios (MQTT 3.1.1 and 5) on each broker and print the table
    /// of spec checks x brokers: pass, FAIL, or a deviation the broker's profile documents.
    #[command(
        after_help = "Examples:\n  unplug conformance\n  unplug conformance --brokers builtin --out /tmp/conf\n\nWrites CONFORMANCE.md into --out."
    )]
    Conformance(batch::ConformanceArgs),
    /// Give each broker its row of the will table: abrupt close, a silent client (3 runs) and its
    /// clean 3.1.1 DISCONNECTs, v5 DISCONNECT 0x00 and 0x04, will delay 2 s with session expiry
    /// 0 and 60; over TCP and WebSocket where the broker offers them.
    #[command(
        after_help = "Examples:\n  unplug probe --brokers tcp://127.0.0.1:1883,ws://127.0.0.1:8080/mqtt\n  unplug probe --brokers builtin,mosquitto,lab=tcp://10.0.0.5:1883,ws://10.0.0.5:8080/mqtt\n  unplug probe --brokers tcp://user:pass@broker.lan:1883 --transports tcp\n  unplug probe --brokers builtin,mosquitto --out /tmp/probe\n\nPrints one Markdown row per broker and transport (seconds; `!` where the spec is broken) and writes PROBE.md and every run's files into --out."
    )]
    Probe(probe::ProbeArgs),
    /// Write DIR/index.html: every run under DIR with its verdict, checks and picture, and links
    /// to its log, events and summary. Static; opens with no network.
    #[command(
        after_help = "Examples:\n  unplug index results\n  unplug index /tmp/runs --title \"my runs\""
    )]
    Index(info::IndexArgs),
    /// Remove the network namespaces and veth links that kernel-cut runs killed outright
    /// (SIGKILL) left behind; those of live runs stay. Needs root, as kernel cuts do.
    #[command(
        after_help = "Examples:\n  sudo unplug sweep\n\nA namespace `unplug-PID-START` is a gone run's when no process PID started at START (a reused pid does not keep it); a link `uplPIDh` when no live run's namespace has that PID. Every kernel-cut run sweeps first too. Prints each thing removed."
    )]
    Sweep,
    /// Put the shards of a `suite`, `compare` or `conformance` run with `--partition K/N` back
    /// together: the table, picture, index and every run's files, as one unpartitioned run;
    /// or the shards of one fleet (`scenario FLEET --partition K/N`): one fleet's verdict.
    #[command(
        after_help = "Examples:\n  unplug suite --partition 1/2 --out shard-1   # on one machine\n  unplug suite --partition 2/2 --out shard-2   # on another\n  unplug merge merged shard-1 shard-2 --json merged/suite.json\n  unplug scenario will-storm --partition 1/2 --start-at T --broker URL --out fleet-1   # a fleet's shard\n  unplug merge merged fleet-1 fleet-2     # one fleet's verdict over every willy\n\nRefuses (exit 2) shards of different plans (or fleets), a run (or a shard) in two, and runs in none (unless --allow-missing; a fleet needs every shard). Exits as the runs did: 0 all passed, 1 a check failed, 2 a run had no verdict."
    )]
    Merge(merge::MergeArgs),
    /// One fleet in N shard processes on this machine against one broker, started together and
    /// merged: what a CI matrix or a Kubernetes Indexed Job does across machines.
    #[command(
        after_help = "Examples:\n  unplug storm --shards 4 --broker tcp://127.0.0.1:1883 will-storm\n  unplug storm --shards 2 --broker tcp://127.0.0.1:1883 --out /tmp/storm ./my-fleet.toml\n\nRuns `unplug scenario FLEET --partition K/N --start-at T --broker URL --out OUT/shard-K` for K = 1..N (their output in OUT/shard-K.txt; each dies with this process), then `unplug merge OUT/merged OUT/shard-1 .. OUT/shard-N`. Exits as the merge does: 0 every check held, 1 one failed, 2 a shard had no verdict."
    )]
    Storm(storm::StormArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::WillyChild => {
            unplug::actor::child::child_main()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DriverRumqttc => {
            unplug::driver::rumqttc_driver::main()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List(args) => info::list(args),
        Command::Show(args) => info::show(args),
        Command::Profiles(args) => info::profiles(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "unplug", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reference => {
            print!("{}", unplug::reference::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Proxy(args) => unplug::toxi::control::run(args),
        Command::Judge(args) => info::judge(args),
        Command::Scenario(args) => run::scenario(args),
        Command::Suite(args) => batch::suite(args),
        Command::Compare(args) => batch::compare(args),
        Command::Conformance(args) => batch::conformance(args),
        Command::Probe(args) => probe::probe(args),
        Command::Index(args) => info::index(args),
        Command::Sweep => info::sweep(),
        Command::Merge(args) => merge::merge(args),
        Command::Storm(args) => storm::storm(args),
    }
}
