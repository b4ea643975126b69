//! A fleet on the runner's stage (the runner starts the broker and the proxy, records the
//! run's start and end, tears down and writes the summary; this is what only a fleet does).
//!
//! ```text
//!  prepare:       RLIMIT_NOFILE raised to the hard limit (before the broker starts)
//!  gather:        announced -> lag probe -> monit subscribed (PREFIX/+) -> the waves connect
//!  Crowd::play:   the cut at its moment -> wait for every will (or the observe window)
//!  Crowd::stop:   the willies and monit stopped (the runner then settles the proxy)
//!  judge:         FleetFacts -> checks and figures, with the harness's own lag, CPU, RSS
//!  trusted:       a harness later than HARNESS_LAG_MS after the cut is a harness error
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::client::{self, Hello};
use super::figures::{self, FleetFacts, FleetSummary};
use super::harness::{self, LagProbe};
use super::shard::{self, FleetShard};
use crate::broker::BrokerChoice;
use crate::event::{Actor, Event, Journal, Record};
use crate::judge::{self, timing, Check, Profile};
use crate::lifeline::Interrupts;
use crate::proxy::Proxy;
use crate::scenario::{Fleet, Scenario, Will};

/// A fleet ready to meet its broker: its open files raised, its willies (this shard's).
pub struct Prepared {
    fleet: Fleet,
    will: Will,
    /// The willies this process runs (global indices): all of them, or its shard's.
    own: Vec<u32>,
    shard: Option<FleetShard>,
    nofile: u64,
    cpu_at_start: f64,
    /// Print the fleet's lines on the terminal.
    echo: bool,
}

impl Prepared {
    fn say(&self, line: &str) {
        if self.echo {
            crate::progress::print_line(line);
        }
    }
}

fn note(journal: &Journal, message: String) {
    journal.record(Actor::Runner, Event::Note { message });
}

/// Raise the open-file limit to the hard one, or refuse a fleet that does not fit in it.
pub fn prepare(
    s: &Scenario,
    broker: &BrokerChoice,
    journal: &Journal,
    echo: bool,
    shard: Option<&FleetShard>,
) -> anyhow::Result<Prepared> {
    let fleet = s.fleet.context("a fleet run needs a [fleet] table")?;
    let cpu_at_start = harness::cpu_s();
    let (soft, nofile) = harness::raise_nofile()?;
    let in_process = matches!(broker, BrokerChoice::Builtin);
    let own: Vec<u32> = match shard {
        Some(sh) => sh.own(),
        None => (0..fleet.willies).collect(),
    };
    let need = harness::fds_needed(fleet.willies, in_process);
    if need > nofile {
        anyhow::bail!(
            "{} willies need about {need} open files in this process ({} each{}), and the hard limit is {nofile}: use fewer willies or raise the hard limit (ulimit -Hn)",
            fleet.willies,
            if in_process { 4 } else { 3 },
            if in_process { " with the in-process broker" } else { "" },
        );
    }
    let will = s.will.clone().context("a fleet has a will")?;
    let prepared = Prepared {
        fleet,
        will,
        own,
        shard: shard.cloned(),
        nofile,
        cpu_at_start,
        echo,
    };
    note(journal, format!(
        "open-file limit raised from {soft} to {nofile} (the hard limit); {} willies need about {need}",
        fleet.willies
    ));
    prepared.say(&format!(
        "fleet: open-file limit {soft} -> {nofile}; {} willies need ~{need}",
        fleet.willies
    ));
    Ok(prepared)
}

/// The fleet connected through the proxy, its monit subscribed: ready for the cut.
pub struct Crowd {
    prepared: Prepared,
    willies: JoinSet<()>,
    monit: JoinHandle<()>,
    probe: LagProbe,
    connected: u32,
    /// A shard's cut with --start-at: the fleet's one moment, the same in every shard.
    planned_cut: Option<chrono::DateTime<chrono::Utc>>,
    connect_loop_lag_max_ms: f64,
}

/// Announce the fleet, subscribe its monit to every will topic, and connect its willies in
/// waves through the proxy at `proxy`; `upstream` is the broker's listener.
pub async fn gather(
    s: &Scenario,
    prepared: Prepared,
    upstream: SocketAddr,
    proxy: SocketAddr,
    journal: &Journal,
    interrupts: &Interrupts,
) -> anyhow::Result<Crowd> {
    let filter = format!("{}/+", prepared.will.topic);
    note(
        journal,
        format!(
            "fleet of {} willies -> proxy {proxy} -> {upstream}; monit -> {upstream} on {filter}",
            prepared.fleet.willies
        ),
    );
    let probe = LagProbe::start(journal.start());
    let planned_cut = prepared.shard.as_ref().and_then(|sh| {
        let cut = s.cut()?;
        sh.cut_at(&prepared.fleet, s.connect_timeout, cut.after)
    });
    if let Some(sh) = &prepared.shard {
        note(journal, shard_note(sh, prepared.own.len(), planned_cut));
    }
    let monit = start_monit(s, &prepared, upstream, filter, journal).await?;
    let connect_started = probe.now_ms();
    let waves = connect(s, &prepared, proxy, interrupts).await;
    let connect_lag = probe.between(connect_started, probe.now_ms());
    if let Some(sig) = waves.interrupted {
        anyhow::bail!("interrupted ({}) while the fleet connected", sig.as_str());
    }
    let willies = prepared.fleet.willies;
    if waves.connected < willies {
        let first = waves
            .failed
            .first()
            .map(|(i, e)| format!("; {} : {e}", Fleet::client_id(*i)))
            .unwrap_or_default();
        note(
            journal,
            format!("{} of {willies} willies connected{first}", waves.connected),
        );
        anyhow::bail!(
            "the fleet did not connect: {} of {willies} willies got a CONNACK within their connect_timeout_s = {} ({} failed{first}); no will can be timed",
            waves.connected,
            s.connect_timeout.as_secs(),
            waves.failed.len()
        );
    }
    let connect_s = (probe.now_ms() - connect_started) / 1000.0;
    prepared.say(&format!(
        "fleet: {} willies connected in {connect_s:.1} s",
        waves.connected
    ));
    Ok(Crowd {
        prepared,
        willies: waves.willies,
        monit,
        probe,
        connected: waves.connected,
        planned_cut,
        connect_loop_lag_max_ms: connect_lag.last().copied().unwrap_or(0.0),
    })
}

/// What the journal says of a shard: its willies, topics, monit and cut.
fn shard_note(
    sh: &FleetShard,
    own: usize,
    planned_cut: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    format!(
        "shard {} of a fleet of {} willies ({}): {own} willies, will topics {}/NNNNN, monit {}; {}",
        sh.partition,
        sh.total,
        shard::SPLIT,
        sh.prefix_of_shard(),
        sh.monit_id(),
        match (sh.start_at, planned_cut) {
            (Some(at), Some(cut)) => format!(
                "start at {}, the shared cut at {}",
                at.to_rfc3339(),
                cut.to_rfc3339()
            ),
            _ => "no --start-at: the cut is this shard's own (after its last CONNACK)".to_string(),
        }
    )
}

/// The fleet's monit, subscribed to `filter` at the broker (waited for, up to 10 s).
async fn start_monit(
    s: &Scenario,
    prepared: &Prepared,
    upstream: SocketAddr,
    filter: String,
    journal: &Journal,
) -> anyhow::Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let monit = tokio::spawn(client::monit(
        upstream,
        s.protocol,
        filter,
        prepared.will.qos,
        journal.clone(),
        prepared
            .shard
            .as_ref()
            .map_or_else(|| "monit-fleet".to_string(), FleetShard::monit_id),
        ready_tx,
    ));
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .map_err(|_| anyhow::anyhow!("monit could not subscribe at {upstream} within 10 s"))?
        .map_err(|_| anyhow::anyhow!("monit stopped before subscribing"))??;
    Ok(monit)
}

/// How the waves went.
struct Waves {
    willies: JoinSet<()>,
    connected: u32,
    failed: Vec<(u32, String)>,
    interrupted: Option<Signal>,
}

/// Willy number `i`, connecting once through the proxy at `addr` and keeping its connection
/// alive; it says on `done` whether its CONNACK came.
fn spawn_willy(
    s: &Scenario,
    will: &Will,
    addr: SocketAddr,
    i: u32,
    done: mpsc::UnboundedSender<Result<u32, (u32, String)>>,
    willies: &mut JoinSet<()>,
) {
    let keepalive_s = s.keepalive.as_secs().min(u64::from(u16::MAX)) as u16;
    let hello = client::connect(
        s.protocol,
        &Hello {
            client_id: &Fleet::client_id(i),
            keepalive_s,
            will: Some((
                &Fleet::will_topic(&will.topic, i),
                will.payload.as_bytes(),
                will.qos,
            )),
        },
    );
    let (protocol, timeout, keepalive) = (s.protocol, s.connect_timeout, s.keepalive);
    willies.spawn(async move {
        // One attempt: a second with the same client id would take over the first, still
        // pending at the broker, which then publishes a will for it.
        // Each willy from its own loopback address: no (source, proxy) pair runs out of
        // ephemeral ports, however many willies the machine's shards hold.
        let from = addr
            .ip()
            .is_loopback()
            .then(|| crate::proxy::loopback_source(u64::from(i)));
        match client::open(addr, from, protocol, &hello, timeout, client::WILLY_BUF).await {
            Ok(open) => {
                let _ = done.send(Ok(i));
                client::keep_alive(open, keepalive).await;
            }
            Err(e) => {
                let _ = done.send(Err((i, format!("{e:#}"))));
            }
        }
    });
}

/// The waves: one starts when every willy of the one before has its answer and
/// wave_interval has passed since that one started, so the fleet connects as fast as the
/// broker answers and never faster than asked. Stops at the first failure or a signal.
async fn connect(
    s: &Scenario,
    prepared: &Prepared,
    proxy: SocketAddr,
    interrupts: &Interrupts,
) -> Waves {
    let fleet = prepared.fleet;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut waves = Waves {
        willies: JoinSet::new(),
        connected: 0,
        failed: Vec::new(),
        interrupted: None,
    };
    let mut started = 0u32;
    let mut wave_at = tokio::time::Instant::now();
    let connect_limit = s.connect_timeout + Duration::from_secs(10);
    loop {
        let answered = waves.connected + waves.failed.len() as u32;
        if answered == fleet.willies {
            break;
        }
        let next_wave = (answered == started && started < fleet.willies).then(|| {
            if started == 0 {
                wave_at
            } else {
                wave_at + fleet.wave_interval
            }
        });
        if let Some(at) = next_wave.filter(|at| *at <= tokio::time::Instant::now()) {
            wave_at = at.max(tokio::time::Instant::now());
            let k = fleet.wave_size.min(fleet.willies - started);
            for &i in &prepared.own[started as usize..(started + k) as usize] {
                let done = done_tx.clone();
                spawn_willy(s, &prepared.will, proxy, i, done, &mut waves.willies);
            }
            started += k;
            continue;
        }
        // Every willy answers within its connect timeout; this only guards against a hang.
        let stuck = wave_at + connect_limit;
        tokio::select! {
            r = done_rx.recv() => match r {
                Some(Ok(_)) => waves.connected += 1,
                Some(Err(f)) => waves.failed.push(f),
                None => break,
            },
            _ = tokio::time::sleep_until(next_wave.unwrap_or(stuck)) => {
                if next_wave.is_none() {
                    break;
                }
            }
            sig = interrupts.wait() => { waves.interrupted = Some(sig); break }
        }
        if !waves.failed.is_empty() {
            break;
        }
    }
    waves
}

/// How a fleet's run went from the cut on: what the runner records and judges.
pub struct Played {
    /// Said in the journal's `RunEnded` and the summary.
    pub reason: String,
    pub interrupted: Option<Signal>,
    /// The cut's moment, ms into the journal.
    pub cut_ms: f64,
    /// The harness's figures but its CPU (measured once judged).
    harness: figures::Harness,
    cpu_at_start: f64,
    /// Print the figures on the terminal.
    echo: bool,
}

impl Crowd {
    /// The cut at its moment, applied once to every connection through `proxy`; then wait
    /// for the wills: all of them (and SETTLE_MS for duplicates), or the observe window.
    pub async fn play(
        &mut self,
        s: &Scenario,
        proxy: &Proxy,
        journal: &Journal,
        interrupts: &Interrupts,
    ) -> anyhow::Result<Played> {
        let cut = s.cut().context("a fleet has its cut")?.clone();
        let scheduled = self.cut_moment(cut.after)?;
        tokio::time::sleep_until(scheduled.into()).await;
        proxy.apply(0, &cut.kind, cut.new_connections);
        let cut_lag_ms = Instant::now().duration_since(scheduled).as_secs_f64() * 1000.0;
        let cut_ms = journal.ms_since_start(scheduled);
        self.prepared.say(&format!(
            "fleet: {} applied to {} connections; waiting for their wills",
            cut.kind.label(),
            self.connected
        ));
        let (reason, interrupted) = self
            .await_wills(s, journal, interrupts, scheduled + s.observe_window())
            .await;
        let end_ms = self.probe.now_ms();
        let lag = self.probe.between(cut_ms, end_ms);
        let worst_at = self
            .probe
            .worst(cut_ms, end_ms)
            .map_or(0.0, |(at, _)| at - cut_ms);
        let harness = figures::Harness {
            nofile_limit: self.prepared.nofile,
            cpu_s: 0.0,
            loop_lag_p99_ms: pick(&lag, 0.99),
            loop_lag_max_ms: lag.last().copied().unwrap_or(0.0),
            loop_lag_max_after_cut_ms: (worst_at * 10.0).round() / 10.0,
            connect_loop_lag_max_ms: self.connect_loop_lag_max_ms,
            cut_lag_ms: (cut_lag_ms * 10.0).round() / 10.0,
            lag_bound_ms: timing::HARNESS_LAG_MS,
        };
        Ok(Played {
            reason,
            interrupted,
            cut_ms,
            harness,
            cpu_at_start: self.prepared.cpu_at_start,
            echo: self.prepared.echo,
        })
    }

    /// When the cut comes: a shard's shared moment, or `after` from now.
    fn cut_moment(&self, after: Duration) -> anyhow::Result<Instant> {
        let Some(at) = self.planned_cut else {
            return Ok(Instant::now() + after);
        };
        let now = chrono::Utc::now();
        let ahead = (at - now).to_std().map_err(|_| {
            anyhow::anyhow!(
                "harness error: this shard's {} willies connected at {}, after the fleet's shared cut at {} (--start-at + connect window + after_ms): connect in larger waves, or give every shard a longer connect_timeout_s",
                self.connected,
                now.to_rfc3339(),
                at.to_rfc3339()
            )
        })?;
        Ok(Instant::now() + ahead)
    }

    /// Every 50 ms, count monit's wills; the reason the wait ended, and the signal if one did.
    async fn await_wills(
        &self,
        s: &Scenario,
        journal: &Journal,
        interrupts: &Interrupts,
        observe_until: Instant,
    ) -> (String, Option<Signal>) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut all_in_at: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                sig = interrupts.wait() => {
                    return (format!("interrupted ({})", sig.as_str()), Some(sig));
                }
            }
            let now = Instant::now();
            if all_in_at.is_none()
                && super::wills_in(journal, &self.prepared.will.topic) >= self.connected
            {
                all_in_at = Some(now);
            }
            if all_in_at.is_some_and(|t| now >= t + Duration::from_millis(timing::SETTLE_MS as u64))
            {
                return ("every will came".to_string(), None);
            }
            if now >= observe_until {
                let reason = format!(
                    "the observe window of {} s after the cut ended",
                    s.observe_window().as_secs()
                );
                return (reason, None);
            }
        }
    }

    /// Stop the willies (their connections end with the proxy's) and monit.
    pub fn stop(mut self) {
        drop(self.probe);
        self.willies.abort_all();
        self.monit.abort();
    }
}

/// The `q` quantile of sorted `v` (0 when empty).
fn pick(v: &[f64], q: f64) -> f64 {
    v.get(((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1)) - 1)
        .copied()
        .unwrap_or(0.0)
}

/// The fleet judged from every record: its checks, and its figures with the harness's own.
pub fn judge(
    s: &Scenario,
    profile: &Profile,
    records: &[Record],
    played: &Played,
) -> (Vec<Check>, FleetSummary) {
    let facts = FleetFacts::from_records(s, records);
    let checks = judge::judge_findings(s, profile, facts.findings(s, profile));
    let mut figures = facts.figures(s, profile);
    figures.harness = figures::Harness {
        cpu_s: ((harness::cpu_s() - played.cpu_at_start) * 100.0).round() / 100.0,
        ..played.harness.clone()
    };
    figures.harness_peak_rss_mb = harness::peak_rss_mb();
    (checks, figures)
}

/// The figures in one line, on the terminal and in the journal.
pub fn tell(journal: &Journal, played: &Played, figures: &FleetSummary) {
    let line = super::describe(figures);
    if played.echo {
        crate::progress::print_line(&line);
    }
    note(journal, line);
}

/// A harness late past its bound after the cut (event loop or the cut itself) cannot time
/// drops and wills: the run is a harness error, not a verdict on the broker.
pub fn trusted(figures: &FleetSummary, interrupted: Option<Signal>) -> anyhow::Result<()> {
    let h = &figures.harness;
    if interrupted.is_none()
        && (h.loop_lag_max_ms > timing::HARNESS_LAG_MS || h.cut_lag_ms > timing::HARNESS_LAG_MS)
    {
        anyhow::bail!(
            "harness error, not a verdict on the broker: the harness itself was late (event loop up to {:.0} ms, {:.1} s after the cut; cut recorded {:.0} ms after its moment; bound {:.0} ms), so its times of drops and wills cannot be trusted; run fewer willies or on a less loaded machine",
            h.loop_lag_max_ms,
            h.loop_lag_max_after_cut_ms / 1000.0,
            h.cut_lag_ms,
            timing::HARNESS_LAG_MS
        );
    }
    Ok(())
}
