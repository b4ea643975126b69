//! One run of one scenario, end to end.
//!
//! ```text
//!  broker::start -> Proxy::start(broker listener) -> monit (subscribed) -> pubby (if any)
//!      -> willy (cycles)
//!      faults fire from willy's and monit's moments (FaultPlan), heal on their timers
//!  every 50 ms: is the outcome decided and have the cycles run?  -> stop, judge, write files
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;

use crate::actor::monit::Monit;
use crate::actor::willy::{Target, Willy};
use crate::actor::MomentHook;
use crate::broker::{self, BrokerChoice};
use crate::event::{Actor, Echo, Event, Journal};
use crate::judge::{self, Facts};
use crate::lifeline::Interrupts;
use crate::proxy::Proxy;
use crate::report::files::RunFiles;
use crate::report::Summary;
use crate::scenario::{FaultKind, PublishFrom, Scenario, Transport};
use nix::sys::signal::Signal;

mod fault_plan;
mod outcome;

use fault_plan::FaultPlan;
use outcome::willy_refused;
pub use outcome::{outcome_decided, stuck_for_good};
use std::sync::atomic::Ordering;

/// How the run is set up, besides the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    pub echo: Echo,
    pub broker: BrokerChoice,
    /// Show a status line on the terminal (stdout is one and the run is not quiet).
    pub progress: bool,
    /// The run's id in its summary (a suite gives each child one); None: start time and pid.
    pub run_id: Option<String>,
}

/// What a finished (or interrupted) run produced.
pub struct RunResult {
    pub summary: Summary,
    /// The signal that ended the run early (its files are `NAME.incomplete.*`).
    pub interrupted: Option<Signal>,
}

/// The longest a run may take before the runner gives up on it: every cycle with two failed
/// connection attempts, the keepalive bound, every heal, a flaky monit's absence, and a margin.
pub fn time_limit(s: &Scenario) -> Duration {
    let per_cycle = s.connected_for + s.idle + 2 * (s.connect_timeout + s.reconnect);
    let heals: Duration = s
        .faults
        .iter()
        .filter_map(|f| f.heal_after.map(|h| h + f.after))
        .sum();
    // A flaky monit returns this long after willy's drop, then waits for its queued will.
    let flaky = s.monit.flaky.map_or(Duration::ZERO, |f| {
        f.away_after + f.back_after_drop + Duration::from_secs(2)
    });
    per_cycle * s.cycles + s.observe_window() + heals + flaky + Duration::from_secs(20)
}

/// Run a scenario on a fresh tokio runtime. A run that gets to its end replaces `NAME.*` in the
/// output directory; one that is interrupted or fails leaves `NAME.*` alone and writes
/// `NAME.incomplete.*` (see [`crate::report::files`]).
pub fn run(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<RunResult> {
    // A packet the broker or our clients would refuse: say so now, not at the time limit.
    crate::limits::check(scenario, &opts.broker)?;
    crate::limits::expect_incoming(scenario);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = rt.block_on(run_async(scenario, opts));
    // Tasks still blocked on a dead link end with the runtime.
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

/// What [`drive`] hands back: the judged run, and the signal that ended it early, if any.
struct Driven {
    summary: Summary,
    interrupted: Option<Signal>,
}

/// The run's files around [`drive`]: the journal goes to `.inprogress` files from the start;
/// at the end the set is committed, or kept as `NAME.incomplete.*` when a signal or an error
/// ended the run first. A signal before the cycles start (the broker or monit still starting)
/// stops the run at once; during them, the control loop ends the run and judges what it saw.
async fn run_async(s: &Scenario, opts: &RunOptions) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("creating the output directory {}", opts.out_dir.display()))?;
    let interrupts = Interrupts::listen().context("listening for SIGINT and SIGTERM")?;
    let files = RunFiles::begin(&opts.out_dir, &s.name)?;
    let (jsonl, log) = files
        .writers()
        .with_context(|| format!("opening the log files in {}", opts.out_dir.display()))?;
    // A fleet's thousands of connection records go to the files only; it prints its own lines.
    let echo = match s.fleet {
        Some(_) => crate::event::Echo {
            stdout: false,
            ..opts.echo
        },
        None => opts.echo,
    };
    let journal = Journal::to_writers(jsonl, log, echo, crate::progress::print_line);
    let started_at = chrono::Utc::now();
    let run_id = opts.run_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            started_at.format("%Y%m%dT%H%M%S%.6fZ"),
            std::process::id()
        )
    });
    crate::logcapture::install(&journal);
    crate::broker::access::set_login(match &opts.broker {
        BrokerChoice::Url(u) => u.login.clone(),
        _ => None,
    });

    let driving = AtomicBool::new(false);
    let outcome = {
        let body = drive(s, opts, &journal, &interrupts, started_at, &driving);
        let before_cycles = async {
            let sig = interrupts.wait().await;
            if driving.load(Ordering::SeqCst) {
                // The control loop has it.
                std::future::pending::<()>().await;
            }
            sig
        };
        tokio::select! {
            r = body => r.map_err(Stop::Error),
            sig = before_cycles => Err(Stop::Signal(sig)),
        }
    };
    let incomplete = |reason: String, sig: Option<Signal>, error: Option<String>| {
        journal.record(Actor::Runner, Event::RunEnded { reason });
        let records = journal.records();
        let facts = Facts::from_records(s, &records);
        let mut summary = Summary::new(
            s,
            opts.broker.label(),
            started_at,
            &facts,
            Vec::new(),
            "",
            journal.ms_since_start(std::time::Instant::now()),
        );
        summary.run_id = run_id.clone();
        summary.mark_incomplete(sig.map(|g| g.as_str()), error);
        summary
    };
    match outcome {
        Ok(mut d) => {
            d.summary.run_id = run_id.clone();
            let all = journal
                .close()
                .with_context(|| format!("writing the log files in {}", opts.out_dir.display()))?;
            // Drawn from every record the files hold (the broker's stop adds a few after the
            // summary's).
            let svg = match s.fleet {
                Some(_) => crate::report::svg::render_fleet(
                    s,
                    &crate::fleet::FleetFacts::from_records(s, &all),
                    &d.summary,
                ),
                None => crate::report::svg::render_run(&all, &d.summary),
            };
            match d.interrupted {
                None => files.commit(&d.summary, &svg)?,
                Some(sig) => {
                    d.summary.mark_incomplete(Some(sig.as_str()), None);
                    files.keep_incomplete(&d.summary, Some(&svg))?;
                }
            }
            Ok(RunResult {
                summary: d.summary,
                interrupted: d.interrupted,
            })
        }
        Err(Stop::Signal(sig)) => {
            let summary = incomplete(
                format!("interrupted ({}) before the cycles started", sig.as_str()),
                Some(sig),
                None,
            );
            let _ = journal.close();
            files.keep_incomplete(&summary, None)?;
            Ok(RunResult {
                summary,
                interrupted: Some(sig),
            })
        }
        Err(Stop::Error(e)) => {
            let summary = incomplete(format!("error: {e:#}"), None, Some(format!("{e:#}")));
            let _ = journal.close();
            if let Err(w) = files.keep_incomplete(&summary, None) {
                return Err(e.context(format!("and its files could not be kept: {w:#}")));
            }
            Err(e)
        }
    }
}

/// Why a run stopped before [`drive`] returned.
enum Stop {
    Signal(Signal),
    Error(anyhow::Error),
}

/// One run from the broker's start to its judgement; the caller owns the files.
async fn drive(
    s: &Scenario,
    opts: &RunOptions,
    journal: &Journal,
    interrupts: &Interrupts,
    started_at: chrono::DateTime<chrono::Utc>,
    driving: &AtomicBool,
) -> anyhow::Result<Driven> {
    if let Some(fleet) = s.fleet {
        driving.store(true, Ordering::SeqCst);
        let (summary, interrupted) = crate::fleet::drive(
            s,
            fleet,
            &opts.broker,
            journal,
            interrupts,
            started_at,
            opts.echo.stdout,
        )
        .await?;
        return Ok(Driven {
            summary,
            interrupted,
        });
    }
    let journal = journal.clone();
    let mut broker = broker::start(&opts.broker, &journal).await?;
    let upstream = match s.transport {
        Transport::Tcp => broker.endpoints.tcp_for(s.protocol),
        // A broker with an MQTT 5 listener of its own (rumqttd) speaks 3.1.1 on the others.
        Transport::Ws
            if s.protocol == crate::scenario::Protocol::V5 && broker.endpoints.v5.is_some() =>
        {
            anyhow::bail!(
                "{}: its WebSocket listener speaks MQTT 3.1.1 only; run MQTT 5 over WebSocket on mosquitto or a broker given by URL",
                broker.name
            )
        }
        Transport::Ws => broker
            .endpoints
            .ws
            .with_context(|| format!("{} has no WebSocket listener", broker.name))?,
    };
    let proxy = Arc::new(
        Proxy::start(upstream, journal.clone())
            .await
            .context("starting the proxy")?,
    );
    journal.record(
        Actor::Runner,
        Event::ScenarioRecorded {
            scenario: Box::new(s.clone()),
            profile: broker.profile.broker.clone(),
        },
    );
    journal.record(
        Actor::Runner,
        Event::RunStarted {
            scenario: s.name.clone(),
            broker: broker.name.clone(),
            transport: s.transport.as_str().to_string(),
            protocol: s.protocol.as_str().to_string(),
            keepalive_s: s.keepalive.as_secs(),
        },
    );
    journal.record(
        Actor::Runner,
        Event::Note {
            message: format!(
                "broker tcp {} ws {}; willy -> proxy {} -> {upstream}; monit -> {}",
                broker.endpoints.tcp,
                broker.endpoints.ws.map_or("-".to_string(), |a| format!(
                    "{a}{}",
                    broker.endpoints.ws_path
                )),
                proxy.addr,
                broker.endpoints.tcp_for(s.monit_protocol())
            ),
        },
    );

    let plan = Arc::new(FaultPlan {
        scenario: s.clone(),
        proxy: proxy.clone(),
        fired: Mutex::new(vec![false; s.faults.len()]),
        willy_pid: Arc::new(AtomicU32::new(0)),
    });
    let hook: MomentHook = {
        let plan = plan.clone();
        Arc::new(move |cycle, trigger| plan.on_moment(cycle, trigger))
    };
    let cycle = Arc::new(AtomicU32::new(0));

    let (ready_tx, ready_rx) = oneshot::channel();
    // A flaky monit leaves and returns when the runner says (see the loop below).
    let (mut monit_away, mut monit_back, flaky_signals) = match s.monit.flaky {
        Some(_) => {
            let (away_tx, away) = oneshot::channel();
            let (back_tx, back) = oneshot::channel();
            (
                Some(away_tx),
                Some(back_tx),
                Some(crate::actor::monit::FlakySignals { away, back }),
            )
        }
        None => (None, None, None),
    };
    // rumqttd 0.20 panics writing a v5 will with properties to a 3.1.1 subscriber (see its
    // profile): a v5 run keeps monit on the v5 listener, speaking v5, unless the scenario asks
    // for a 3.1.1 monit to show exactly that (v5-will-to-v4-subscriber).
    let monit_protocol = s.monit_protocol();
    let monit = tokio::spawn(
        Monit {
            broker: broker.endpoints.tcp_for(monit_protocol),
            protocol: monit_protocol,
            keepalive: s.keepalive,
            journal: journal.clone(),
            hook: hook.clone(),
            cycle: cycle.clone(),
            setup: s.monit,
            flaky: flaky_signals,
        }
        .run(ready_tx),
    );
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "monit could not subscribe at {} within 10 s",
                broker.endpoints.tcp
            )
        })?
        .map_err(|_| anyhow::anyhow!("monit stopped before subscribing"))?
        .map_err(|why| anyhow::anyhow!("{why}"))?;

    // pubby connects now; it publishes from the start or from the cut.
    let (pubby_go, pubby) = match &s.publisher {
        Some(p) => {
            let (go_tx, go_rx) = oneshot::channel();
            let task = tokio::spawn(
                crate::actor::pubby::Pubby {
                    broker: broker.endpoints.tcp,
                    publisher: p.clone(),
                    journal: journal.clone(),
                }
                .run(go_rx),
            );
            (Some((p.from, go_tx)), Some(task))
        }
        None => (None, None),
    };
    let mut pubby_go = pubby_go;
    let mut start_pubby = |cut: bool| {
        if pubby_go
            .as_ref()
            .is_some_and(|(from, _)| *from == PublishFrom::Start || cut)
        {
            if let Some((_, go)) = pubby_go.take() {
                let _ = go.send(());
            }
        }
    };
    start_pubby(false);

    let target = Target {
        transport: s.transport,
        port: proxy.addr.port(),
        ws_path: broker.endpoints.ws_path.clone(),
    };
    // A fault on willy's process needs willy in a process of its own.
    let willy = if s.faults.iter().any(|f| f.kind.on_process()) {
        let restart = s
            .faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::Crash { restart: true }));
        tokio::spawn(crate::actor::child::drive(
            s.clone(),
            target,
            journal.clone(),
            hook,
            cycle.clone(),
            plan.willy_pid.clone(),
            restart,
        ))
    } else {
        tokio::spawn(
            Willy {
                scenario: s.clone(),
                target,
                journal: journal.clone(),
                hook,
                cycle: cycle.clone(),
                first_cycle: 1,
            }
            .run(),
        )
    };

    let limit = time_limit(s);
    let mut interrupted = None;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    // From here a signal ends the run through the loop below, which judges what it saw.
    driving.store(true, Ordering::SeqCst);
    let mut late = None;
    let mut twin: Option<tokio::task::JoinHandle<()>> = None;
    let mut refused: Option<String> = None;
    let progress = crate::progress::RunProgress::new(opts.progress);
    let reason = loop {
        tokio::select! {
            _ = tick.tick() => {}
            sig = interrupts.wait() => {
                interrupted = Some(sig);
                break format!("interrupted ({})", sig.as_str());
            }
        }
        let now = journal.ms_since_start(std::time::Instant::now());
        let records = journal.records();
        let facts = Facts::from_records(s, &records);
        start_pubby(facts.cut_at_ms.is_some());
        if let (Some(t), Some(cut), None) = (s.takeover, facts.cut_at_ms, &twin) {
            if now >= cut + t.after.as_secs_f64() * 1000.0 {
                twin = Some(tokio::spawn(
                    crate::actor::twin::Twin {
                        broker: broker.endpoints.tcp,
                        keepalive: s.keepalive,
                        journal: journal.clone(),
                    }
                    .run(),
                ));
            }
        }
        if let (Some(fl), Some(cut)) = (s.monit.flaky, facts.cut_at_ms) {
            if now >= cut + fl.away_after.as_secs_f64() * 1000.0 {
                if let Some(tx) = monit_away.take() {
                    let _ = tx.send(());
                }
            }
            // Back once the broker dropped willy (its will then published while monit was
            // away), or at the will's deadline if it never does.
            let back_at = facts
                .broker_drop_ms
                .map(|d| d + fl.back_after_drop.as_secs_f64() * 1000.0)
                .or(judge::will_deadline_ms(s, &broker.profile, &facts));
            if monit_away.is_none() && back_at.is_some_and(|b| now >= b) {
                if let Some(tx) = monit_back.take() {
                    let _ = tx.send(());
                }
            }
        }
        if s.late_subscriber && late.is_none() && facts.will_received_ms.is_some() {
            late = Some(tokio::spawn(crate::actor::monit::late_subscriber(
                broker.endpoints.tcp_for(s.monit_protocol()),
                s.monit_protocol(),
                journal.clone(),
            )));
        }
        if facts.cut_at_ms.is_none() {
            if let Some(why) = willy_refused(&records) {
                refused = Some(why);
                break "the broker refused willy's connection".to_string();
            }
        }
        let in_cycle = cycle.load(std::sync::atomic::Ordering::SeqCst);
        progress.update(s, &broker.profile, &facts, in_cycle, now);
        let in_final_cycle = in_cycle >= s.cycles;
        let cycles_done = willy.is_finished() || stuck_for_good(s, &facts, in_final_cycle);
        if cycles_done && outcome_decided(s, &broker.profile, &facts, now) {
            break if willy.is_finished() {
                "every cycle ran and the outcome is decided".to_string()
            } else {
                "the outcome is decided and willy keeps failing to reconnect".to_string()
            };
        }
        if now >= limit.as_secs_f64() * 1000.0 {
            break format!("time limit of {} s reached", limit.as_secs());
        }
    };
    progress.finish();
    willy.abort();
    // A child willy (running or stopped) ends with the run; kill_on_drop then reaps it.
    if plan.willy_pid.load(Ordering::SeqCst) != 0 {
        plan.signal(Signal::SIGKILL);
    }
    monit.abort();
    if let Some(p) = pubby {
        p.abort();
    }
    if let Some(t) = twin {
        t.abort();
    }
    if let Some(l) = late {
        l.abort();
    }
    // The proxy records on its own thread, a little after forwarding: what it forwarded so far
    // is in the journal before the run is judged.
    proxy.settle().await;
    journal.record(
        Actor::Runner,
        Event::RunEnded {
            reason: reason.clone(),
        },
    );

    if let Some(why) = refused {
        broker.stop().await;
        anyhow::bail!("{why}");
    }
    let records = journal.records();
    let facts = Facts::from_records(s, &records);
    let checks = judge::evaluate(s, &broker.profile, &facts);
    let summary = Summary::new(
        s,
        &broker.name,
        started_at,
        &facts,
        checks,
        &reason,
        journal.ms_since_start(std::time::Instant::now()),
    );
    let mut summary = summary;
    summary.timing_model = broker.profile.timing_model.clone();
    // Only now: a broker that stops closes willy's connections, which must not count as a drop.
    broker.stop().await;
    Ok(Driven {
        summary,
        interrupted,
    })
}
