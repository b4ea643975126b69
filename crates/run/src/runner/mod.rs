//! One run of one scenario, end to end, as named steps.
//!
//! ```text
//!  run_async: Begun::begin (output dir, signals, .inprogress files, journal, run id)
//!    -> drive: Population::of (one willy; a fleet: its open files)      population.rs
//!              -> Stage::set_up (broker, proxy; the scenario recorded)    stage.rs
//!              -> play: Population::enter -> Cast:
//!                   one willy: Actors::wire (fault plan, monit subscribed, pubby, willy)
//!                   a fleet: fleet::gather (its monit, its waves)         src/fleet/play.rs
//!                 -> Cast::play:
//!                   one willy: watch: every 50 ms the facts so far (LiveFacts) -> extras,
//!                   status line; until the outcome is decided and the cycles have run
//!                                                                         extras.rs, outcome.rs
//!                   a fleet: Crowd::play (the cut, every will or the observe window)
//!                 -> Cast::tear_down (actors stopped, the proxy's records in)
//!              -> RunEnded -> judge_run (facts of every record -> checks -> Summary; a fleet's
//!                 checks and figures from fleet::play::judge); broker stopped
//!    -> Begun::keep_files (committed, or NAME.incomplete.*)
//!  faults fire from willy's and monit's moments (fault_plan.rs), heal on their timers
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;

use crate::broker::{Broker, BrokerChoice};
use crate::event::{Actor, Echo, Event, Journal};
use crate::judge::{self, Facts, LiveFacts};
use crate::lifeline::Interrupts;
use crate::report::files::RunFiles;
use crate::report::Summary;
use crate::scenario::Scenario;

mod extras;
mod fault_plan;
mod kernel;
mod outcome;
mod population;
pub(crate) mod stage;

use outcome::willy_refused;
pub use outcome::{outcome_decided, stuck_for_good};
use population::Population;
use stage::{Actors, Stage};

/// Who watches a run as it goes (`unplug scenario --ui`'s page): handed the journal once it
/// exists, and the status line as the control loop makes it. It only reads; the run never
/// waits for it.
pub trait Watcher: Send + Sync {
    /// The run's journal, before anything is recorded in it.
    fn journal(&self, name: &str, journal: &Journal);
    /// `cycle 2/3 | 4.1 s of ~9.0 s | waiting for ...`, a few times a second.
    fn status(&self, name: &str, line: &str);
}

/// A run's watcher, if any (a newtype: `RunOptions` stays `Debug` and `Clone`).
#[derive(Clone, Default)]
pub struct Watching(pub Option<std::sync::Arc<dyn Watcher>>);

impl std::fmt::Debug for Watching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Watching(..)"
        } else {
            "Watching(none)"
        })
    }
}

/// How often the control loop tells the watcher its status line (ticks of 50 ms).
const WATCHER_EVERY_TICKS: u32 = 5;

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
    /// Who watches the run live (`--ui`).
    pub watcher: Watching,
    /// A fleet's shard (`--partition K/N` on a fleet scenario): its willies, its cut, and
    /// `NAME.willies.json` for `unplug merge`.
    pub fleet_shard: Option<crate::fleet::FleetShard>,
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
    // willy's client and a kernel cut: what they need is there, or exit 2 saying what to do.
    // (A kernel cut puts willy in a namespace, so in a process of its own: rumqttc there is
    // `unplug driver-rumqttc`.)
    crate::driver::process::resolve_for(scenario)?;
    if let Some(why) = crate::driver::cycles::unsupported(scenario) {
        anyhow::bail!("{why}");
    }
    if scenario.kernel_cut() {
        crate::kernelcut::check_privilege()?;
    }
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

/// Why a run stopped before [`drive`] returned.
enum Stop {
    Signal(Signal),
    Error(anyhow::Error),
}

/// The run's files around [`drive`]: the journal goes to `.inprogress` files from the start;
/// at the end the set is committed, or kept as `NAME.incomplete.*` when a signal or an error
/// ended the run first. A signal before the cycles start (the broker or monit still starting)
/// stops the run at once; during them, the control loop ends the run and judges what it saw.
async fn run_async(s: &Scenario, opts: &RunOptions) -> anyhow::Result<RunResult> {
    let begun = Begun::begin(s, opts)?;
    let outcome = begun.drive_until_signal(s, opts).await;
    begun.keep_files(s, opts, outcome)
}

/// A run whose files and journal exist: what the steps around [`drive`] share.
struct Begun {
    interrupts: Interrupts,
    files: RunFiles,
    journal: Journal,
    started_at: chrono::DateTime<chrono::Utc>,
    /// The run's id in its summary: the one given, or its start time and our pid.
    run_id: String,
}

impl Begun {
    /// The output directory, the signal handlers, the `.inprogress` files and the journal
    /// writing to them; the broker's log and a URL broker's login routed.
    fn begin(s: &Scenario, opts: &RunOptions) -> anyhow::Result<Begun> {
        std::fs::create_dir_all(&opts.out_dir)
            .with_context(|| format!("creating the output directory {}", opts.out_dir.display()))?;
        let interrupts = Interrupts::listen().context("listening for SIGINT and SIGTERM")?;
        let files = RunFiles::begin(&opts.out_dir, &s.name)?;
        let (jsonl, log) = files
            .writers()
            .with_context(|| format!("opening the log files in {}", opts.out_dir.display()))?;
        // A fleet's thousands of connection records go to the files only; it prints its own
        // lines.
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
        journal.record(
            Actor::Runner,
            Event::RunIdentified {
                run_id: run_id.clone(),
            },
        );
        crate::logcapture::install(&journal);
        if let Some(w) = &opts.watcher.0 {
            w.journal(&s.name, &journal);
        }
        crate::broker::access::set_login(match &opts.broker {
            BrokerChoice::Url(u) => u.login.clone(),
            _ => None,
        });
        Ok(Begun {
            interrupts,
            files,
            journal,
            started_at,
            run_id,
        })
    }

    /// [`drive`], unless a signal comes before the cycles start (after that, the control loop
    /// has it).
    async fn drive_until_signal(&self, s: &Scenario, opts: &RunOptions) -> Result<Driven, Stop> {
        let driving = AtomicBool::new(false);
        let body = drive(
            s,
            opts,
            &self.journal,
            &self.interrupts,
            self.started_at,
            &driving,
        );
        let before_cycles = async {
            let sig = self.interrupts.wait().await;
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
    }

    /// Close the journal and commit the run's files, or keep them as `NAME.incomplete.*`.
    fn keep_files(
        self,
        s: &Scenario,
        opts: &RunOptions,
        outcome: Result<Driven, Stop>,
    ) -> anyhow::Result<RunResult> {
        match outcome {
            Ok(mut d) => {
                d.summary.run_id = self.run_id.clone();
                let all = self.journal.close().with_context(|| {
                    format!("writing the log files in {}", opts.out_dir.display())
                })?;
                // Drawn from every record the files hold (the broker's stop adds a few after
                // the summary's).
                let svg = match s.fleet {
                    Some(_) => {
                        let facts = crate::fleet::FleetFacts::from_records(s, &all);
                        let svg = crate::report::svg::render_fleet(s, &facts, &d.summary);
                        if let (Some(sh), None) = (&opts.fleet_shard, d.interrupted) {
                            shard_file(s, sh, &d.summary, &all, facts).write(&opts.out_dir)?;
                        }
                        svg
                    }
                    None => crate::report::svg::render_run(&all, &d.summary),
                };
                self.files.rewrite_in_time_order(&all)?;
                match d.interrupted {
                    None => self.files.commit(&d.summary, &svg)?,
                    Some(sig) => {
                        d.summary.mark_incomplete(Some(sig.as_str()), None);
                        self.files.keep_incomplete(&d.summary, Some(&svg))?;
                    }
                }
                Ok(RunResult {
                    summary: d.summary,
                    interrupted: d.interrupted,
                })
            }
            Err(Stop::Signal(sig)) => {
                let summary = self.incomplete(
                    s,
                    opts,
                    format!("interrupted ({}) before the cycles started", sig.as_str()),
                    Some(sig),
                    None,
                );
                let _ = self.journal.close();
                self.files.keep_incomplete(&summary, None)?;
                Ok(RunResult {
                    summary,
                    interrupted: Some(sig),
                })
            }
            Err(Stop::Error(e)) => {
                let summary = self.incomplete(
                    s,
                    opts,
                    format!("error: {e:#}"),
                    None,
                    Some(format!("{e:#}")),
                );
                let _ = self.journal.close();
                if let Err(w) = self.files.keep_incomplete(&summary, None) {
                    return Err(e.context(format!("and its files could not be kept: {w:#}")));
                }
                Err(e)
            }
        }
    }

    /// The summary of a run that did not get to its judgement: its end recorded, no checks.
    fn incomplete(
        &self,
        s: &Scenario,
        opts: &RunOptions,
        reason: String,
        sig: Option<Signal>,
        error: Option<String>,
    ) -> Summary {
        self.journal
            .record(Actor::Runner, Event::RunEnded { reason });
        let records = self.journal.records();
        let facts = Facts::from_records(s, &records);
        let mut summary = Summary::new(
            s,
            opts.broker.label(),
            self.started_at,
            &facts,
            Vec::new(),
            "",
            self.journal.ms_since_start(std::time::Instant::now()),
        );
        summary.run_id = self.run_id.clone();
        summary.mark_incomplete(sig.map(|g| g.as_str()), error);
        summary
    }
}

/// A fleet shard's raw per-willy moments, with what merge needs to put them on one clock.
fn shard_file(
    s: &Scenario,
    shard: &crate::fleet::FleetShard,
    summary: &Summary,
    records: &[crate::event::Record],
    facts: crate::fleet::FleetFacts,
) -> crate::fleet::shard::ShardFile {
    let t0 = records.first().map_or(summary.started_at, |r| {
        r.t - chrono::Duration::microseconds((r.ms * 1000.0).round() as i64)
    });
    let profile = records
        .iter()
        .find_map(|r| match &r.event {
            Event::ScenarioRecorded { profile, .. } => Some(profile.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let planned_cut = s.fleet.and_then(|f| {
        let cut = s.cut()?;
        shard.cut_at(&f, s.connect_timeout, cut.after)
    });
    crate::fleet::shard::ShardFile {
        schema_version: crate::fleet::shard::SCHEMA,
        run_id: summary.run_id.clone(),
        shard: shard.clone(),
        planned_cut,
        t0,
        profile,
        broker: summary.broker.clone(),
        scenario: s.clone(),
        facts,
    }
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
    let population = Population::of(s, opts, journal, driving)?;
    let mut stage = Stage::set_up(s, &opts.broker, journal).await?;
    let end = match play(s, opts, population, &stage, journal, interrupts, driving).await {
        Ok(end) => end,
        Err(e) => {
            stage.broker.stop().await;
            return Err(e);
        }
    };
    journal.record(
        Actor::Runner,
        Event::RunEnded {
            reason: end.reason.clone(),
        },
    );
    if let Some(why) = end.refused {
        stage.broker.stop().await;
        anyhow::bail!("{why}");
    }
    let summary = judge_run(s, &stage.broker, journal, started_at, &end);
    // Only now: a broker that stops closes willy's connections, which must not count as a drop.
    stage.broker.stop().await;
    // A fleet's harness too late after the cut: a harness error, not a verdict.
    if let Some(figures) = &summary.fleet {
        crate::fleet::play::trusted(figures, end.interrupted)?;
    }
    Ok(Driven {
        summary,
        interrupted: end.interrupted,
    })
}

/// The population on the stage, playing until the run ends, then torn down (the proxy's
/// records all in). An error leaves the broker to the caller.
async fn play(
    s: &Scenario,
    opts: &RunOptions,
    population: Population,
    stage: &Stage,
    journal: &Journal,
    interrupts: &Interrupts,
    driving: &AtomicBool,
) -> anyhow::Result<End> {
    let mut cast = population.enter(s, stage, journal, interrupts).await?;
    // From here a signal ends the run through the control loop, which judges what it saw.
    driving.store(true, Ordering::SeqCst);
    let end = cast.play(s, opts, stage, journal, interrupts).await;
    cast.tear_down(stage).await;
    end
}

/// How the control loop ended.
struct End {
    /// Said in the journal's `RunEnded` and the summary.
    reason: String,
    interrupted: Option<Signal>,
    /// The broker refused willy's connection: the run is an error, not a verdict.
    refused: Option<String>,
    /// A fleet's run: its cut and the harness's own figures.
    fleet: Option<crate::fleet::Played>,
}

/// The control loop: every 50 ms, read the facts so far, start or tell the extra actors,
/// redraw the status line, and stop once the outcome is decided and willy's cycles have run
/// (or it cannot run them), at a signal, at the broker's refusal, or at the time limit.
async fn watch(
    s: &Scenario,
    opts: &RunOptions,
    broker: &Broker,
    actors: &mut Actors,
    journal: &Journal,
    interrupts: &Interrupts,
) -> End {
    let limit = time_limit(s);
    let mut interrupted = None;
    let mut refused = None;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut cursor = journal.cursor();
    let mut live = LiveFacts::new(s);
    let progress = crate::progress::RunProgress::new(opts.progress);
    let mut ticks: u32 = 0;
    let reason = loop {
        tokio::select! {
            _ = tick.tick() => {}
            sig = interrupts.wait() => {
                interrupted = Some(sig);
                break format!("interrupted ({})", sig.as_str());
            }
        }
        let now = journal.ms_since_start(std::time::Instant::now());
        live.update(journal.read_fresh(&mut cursor));
        let facts = live.facts();
        actors.extras.on_tick(s, &broker.profile, facts, now);
        // Before the cut; a refusal is seen in the tick its record comes.
        if facts.cut_at_ms.is_none() {
            if let Some(why) = willy_refused(live.fresh()) {
                refused = Some(why);
                break "the broker refused willy's connection".to_string();
            }
        }
        let in_cycle = actors.cycle.load(Ordering::SeqCst);
        progress.update(s, &broker.profile, facts, in_cycle, now);
        if let Some(w) = &opts.watcher.0 {
            ticks = ticks.wrapping_add(1);
            if ticks % WATCHER_EVERY_TICKS == 1 {
                let line = crate::progress::status_line(s, &broker.profile, facts, in_cycle, now);
                w.status(&s.name, &line);
            }
        }
        let in_final_cycle = in_cycle >= s.cycles;
        let cycles_done = actors.willy.is_finished() || stuck_for_good(s, facts, in_final_cycle);
        if cycles_done && outcome_decided(s, &broker.profile, facts, now) {
            break if actors.willy.is_finished() {
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
    End {
        reason,
        interrupted,
        refused,
        fleet: None,
    }
}

/// The run judged from every record, as a saved run would be: facts, checks, the summary
/// (a fleet's: its checks and figures, `fleet::play::judge`).
fn judge_run(
    s: &Scenario,
    broker: &Broker,
    journal: &Journal,
    started_at: chrono::DateTime<chrono::Utc>,
    end: &End,
) -> Summary {
    let records = journal.records();
    let (facts, checks, fleet) = match &end.fleet {
        None => {
            let facts = Facts::from_records(s, &records);
            let checks = judge::evaluate(s, &broker.profile, &facts);
            (facts, checks, None)
        }
        Some(played) => {
            let (checks, figures) = crate::fleet::play::judge(s, &broker.profile, &records, played);
            (Facts::default(), checks, Some((played, figures)))
        }
    };
    drop(records);
    let allowed = match fleet {
        None => judge::allowed_windows(s, &broker.profile, &facts, &checks),
        Some(_) => Default::default(),
    };
    let mut summary = Summary::new(
        s,
        &broker.name,
        started_at,
        &facts,
        checks,
        &end.reason,
        journal.ms_since_start(std::time::Instant::now()),
    );
    summary.timing_model = broker.profile.timing_model.clone();
    summary.allowed = allowed;
    match fleet {
        None => record_findings(journal, &summary),
        Some((played, figures)) => {
            summary.cut_at_ms = Some(played.cut_ms);
            crate::fleet::play::tell(journal, played, &figures);
            summary.fleet = Some(figures);
        }
    }
    summary
}

/// What the judge found of the design, in the journal too (the log a person reads).
fn record_findings(journal: &Journal, summary: &Summary) {
    for m in &summary.missing_steps {
        journal.record(
            Actor::Runner,
            Event::StepMissing {
                cycle: m.cycle,
                at_ms: m.ms,
                words: m.words.clone(),
            },
        );
    }
    for m in &summary.monit_messages {
        journal.record(
            Actor::Runner,
            Event::MessageAccounted {
                received_ms: m.ms,
                topic: m.topic.clone(),
                payload: m.payload.clone(),
                source: m.source.words(),
            },
        );
    }
}
