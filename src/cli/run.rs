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
    /// that speaks the driver line protocol (README, "willy drivers").
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
    #[command(flatten)]
    start: StartAt,
}

/// `unplug scenario NAME`: run it, print its verdict, and say where its files are.
pub fn scenario(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    let ScenarioArgs {
        scenario: name,
        timing,
        out,
        quiet,
        wire,
        broker,
        transport,
        willy,
        cut,
        name: run_name,
        publishes,
        tls_tap,
        run_id,
        start,
    } = args;
    start.check()?;
    let mut s = scenario::load(&name)?;
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
    if let Some(n) = run_name {
        s.name = n;
    }
    let broker = broker.choice()?;
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
    };
    start.wait()?;
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
