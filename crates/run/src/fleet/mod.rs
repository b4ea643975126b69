//! A fleet run: N willies through one proxy, cut at once, every will timed (`[fleet]`).
//!
//! ```text
//!  raise RLIMIT_NOFILE -> broker -> proxy (one listener) -> monit (PREFIX/+) -> lag probe
//!    -> waves: wave_size willies connect at once; the next when all have their CONNACK and
//!       wave_interval has passed (client.rs; one attempt each)
//!    -> every CONNACK in: the scenario's blackhole, applied once to every connection
//!    -> wait: every will came (then SETTLE_MS for duplicates), or the observe window ends
//!    -> figures and checks from the records (figures.rs); the harness's own lag, CPU, RSS
//!
//!  a shard (--partition K/N, shard.rs): its willies only (global ids), its own proxy and monit
//!    on PREFIX/KofN/+, the shared cut at --start-at + connect window + after_ms;
//!    NAME.willies.json for `unplug merge` (merge.rs)
//! ```
//!
//! Each willy connects from its own loopback address (127.X.Y.Z) and the proxy reaches a
//! loopback broker from another: the kernel gives each (source, destination) pair its own
//! ephemeral ports (28,232 here), so no pair runs out however many willies a machine holds.
//!
//! The journal records what the one-willy runs record (every packet the proxy sees, the
//! broker's log): 4,000 willies write 63,000 records on rumqttd, 83,000 on mosquitto.
//! A harness lag over [`timing::HARNESS_LAG_MS`] after the cut makes the run a harness error.

pub mod client;
pub use crate::judge::fleet as figures;
pub mod harness;
pub mod merge;
pub mod shard;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};

use crate::broker::{self, BrokerChoice};
use crate::event::{Actor, Event, Journal};
use crate::judge::{self, timing, Facts};
use crate::lifeline::Interrupts;
use crate::proxy::Proxy;
use crate::report::Summary;
use crate::scenario::{Fleet, Scenario};
use client::Hello;
pub use figures::{FleetFacts, FleetSummary, Quantiles};
pub use shard::FleetShard;

/// A fleet run, judged: its summary (with `fleet`) and the signal that ended it early.
pub async fn drive(
    s: &Scenario,
    broker_choice: &BrokerChoice,
    journal: &Journal,
    interrupts: &Interrupts,
    started_at: chrono::DateTime<chrono::Utc>,
    echo: bool,
    shard: Option<&FleetShard>,
) -> anyhow::Result<(Summary, Option<Signal>)> {
    let say = |line: String| {
        if echo {
            crate::progress::print_line(&line);
        }
    };
    let fleet = s.fleet.context("a fleet run needs a [fleet] table")?;
    let cpu_at_start = harness::cpu_s();
    let (soft, nofile) = harness::raise_nofile()?;
    let in_process = matches!(broker_choice, BrokerChoice::Builtin);
    // The willies this process runs (global indices): all of them, or its shard's.
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
    let note = |message: String| journal.record(Actor::Runner, Event::Note { message });
    note(format!(
        "open-file limit raised from {soft} to {nofile} (the hard limit); {} willies need about {need}",
        fleet.willies
    ));
    say(format!(
        "fleet: open-file limit {soft} -> {nofile}; {} willies need ~{need}",
        fleet.willies
    ));

    let mut broker = broker::start(broker_choice, journal).await?;
    let upstream = broker.endpoints.tcp_for(s.protocol);
    let proxy = Arc::new(
        Proxy::start_with(
            upstream,
            journal.clone(),
            crate::proxy::Options {
                spread_sources: true,
                ..Default::default()
            },
        )
        .await
        .context("starting the proxy")?,
    );
    crate::runner::stage::record_run_start(journal, s, &broker);
    let will = s.will.clone().context("a fleet has a will")?;
    let filter = format!("{}/+", will.topic);
    note(format!(
        "fleet of {} willies -> proxy {} -> {upstream}; monit -> {upstream} on {filter}",
        fleet.willies, proxy.addr
    ));
    let probe = harness::LagProbe::start(journal.start());
    // A shard's cut is the fleet's one moment (with --start-at), the same in every shard.
    let planned_cut = shard.and_then(|sh| {
        let cut = s.cut()?;
        sh.cut_at(&fleet, s.connect_timeout, cut.after)
    });
    if let Some(sh) = shard {
        note(format!(
            "shard {} of a fleet of {} willies ({}): {} willies, will topics {}/NNNNN, monit {}; {}",
            sh.partition,
            sh.total,
            shard::SPLIT,
            own.len(),
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
        ));
    }

    let (ready_tx, ready_rx) = oneshot::channel();
    let monit = tokio::spawn(client::monit(
        upstream,
        s.protocol,
        filter.clone(),
        will.qos,
        journal.clone(),
        shard.map_or_else(|| "monit-fleet".to_string(), FleetShard::monit_id),
        ready_tx,
    ));
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .map_err(|_| anyhow::anyhow!("monit could not subscribe at {upstream} within 10 s"))?
        .map_err(|_| anyhow::anyhow!("monit stopped before subscribing"))??;

    // The waves: one starts when every willy of the one before has its answer and
    // wave_interval has passed since that one started, so the fleet connects as fast as the
    // broker answers and never faster than asked.
    let connect_started = probe.now_ms();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut willies = tokio::task::JoinSet::new();
    let keepalive_s = s.keepalive.as_secs().min(u64::from(u16::MAX)) as u16;
    let spawn = |i: u32, willies: &mut tokio::task::JoinSet<()>| {
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
        let (addr, protocol, timeout, keepalive) =
            (proxy.addr, s.protocol, s.connect_timeout, s.keepalive);
        let done = done_tx.clone();
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
    };
    let mut connected = 0u32;
    let mut failed: Vec<(u32, String)> = Vec::new();
    let mut started = 0u32;
    let mut wave_at = tokio::time::Instant::now();
    let connect_limit = s.connect_timeout + Duration::from_secs(10);
    let mut interrupted = None;
    loop {
        let answered = connected + failed.len() as u32;
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
            for &i in &own[started as usize..(started + k) as usize] {
                spawn(i, &mut willies);
            }
            started += k;
            continue;
        }
        // Every willy answers within its connect timeout; this only guards against a hang.
        let stuck = wave_at + connect_limit;
        tokio::select! {
            r = done_rx.recv() => match r {
                Some(Ok(_)) => connected += 1,
                Some(Err(f)) => failed.push(f),
                None => break,
            },
            _ = tokio::time::sleep_until(next_wave.unwrap_or(stuck)) => {
                if next_wave.is_none() {
                    break;
                }
            }
            sig = interrupts.wait() => { interrupted = Some(sig); break }
        }
        if !failed.is_empty() {
            break;
        }
    }
    drop(done_tx);
    let connect_lag = probe.between(connect_started, probe.now_ms());
    if let Some(sig) = interrupted {
        willies.abort_all();
        broker.stop().await;
        anyhow::bail!("interrupted ({}) while the fleet connected", sig.as_str());
    }
    if connected < fleet.willies {
        let first = failed
            .first()
            .map(|(i, e)| format!("; {} : {e}", Fleet::client_id(*i)))
            .unwrap_or_default();
        note(format!(
            "{connected} of {} willies connected{first}",
            fleet.willies
        ));
        willies.abort_all();
        broker.stop().await;
        anyhow::bail!(
            "the fleet did not connect: {connected} of {} willies got a CONNACK within their connect_timeout_s = {} ({} failed{first}); no will can be timed",
            fleet.willies,
            s.connect_timeout.as_secs(),
            failed.len()
        );
    }
    let connect_s = (probe.now_ms() - connect_started) / 1000.0;
    say(format!(
        "fleet: {connected} willies connected in {connect_s:.1} s"
    ));

    // The cut.
    let cut = s.cut().context("a fleet has its cut")?.clone();
    let scheduled = match planned_cut {
        Some(at) => {
            let now = chrono::Utc::now();
            let ahead = (at - now).to_std().map_err(|_| {
                anyhow::anyhow!(
                    "harness error: this shard's {connected} willies connected at {}, after the fleet's shared cut at {} (--start-at + connect window + after_ms): connect in larger waves, or give every shard a longer connect_timeout_s",
                    now.to_rfc3339(),
                    at.to_rfc3339()
                )
            });
            match ahead {
                Ok(d) => Instant::now() + d,
                Err(e) => {
                    willies.abort_all();
                    broker.stop().await;
                    return Err(e);
                }
            }
        }
        None => Instant::now() + cut.after,
    };
    tokio::time::sleep_until(scheduled.into()).await;
    proxy.apply(0, &cut.kind, cut.new_connections);
    let cut_lag_ms = Instant::now().duration_since(scheduled).as_secs_f64() * 1000.0;
    let cut_ms = journal.ms_since_start(scheduled);
    say(format!(
        "fleet: {} applied to {connected} connections; waiting for their wills",
        cut.kind.label()
    ));

    // Wait for the wills: all of them, or the observe window.
    let observe_until = scheduled + s.observe_window();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut all_in_at: Option<Instant> = None;
    let reason = loop {
        tokio::select! {
            _ = tick.tick() => {}
            sig = interrupts.wait() => {
                interrupted = Some(sig);
                break format!("interrupted ({})", sig.as_str());
            }
        }
        let now = Instant::now();
        if all_in_at.is_none() && wills_in(journal, &will.topic) >= connected {
            all_in_at = Some(now);
        }
        if all_in_at.is_some_and(|t| now >= t + Duration::from_millis(timing::SETTLE_MS as u64)) {
            break "every will came".to_string();
        }
        if now >= observe_until {
            break format!(
                "the observe window of {} s after the cut ended",
                s.observe_window().as_secs()
            );
        }
    };
    let end_ms = probe.now_ms();
    let lag = probe.between(cut_ms, end_ms);
    let worst_at = probe
        .worst(cut_ms, end_ms)
        .map_or(0.0, |(at, _)| at - cut_ms);
    drop(probe);
    willies.abort_all();
    monit.abort();
    proxy.settle().await;
    journal.record(
        Actor::Runner,
        Event::RunEnded {
            reason: reason.clone(),
        },
    );

    let records = journal.records();
    let facts = FleetFacts::from_records(s, &records);
    drop(records);
    let checks = judge::judge_findings(s, &broker.profile, facts.findings(s, &broker.profile));
    let mut figures = facts.figures(s, &broker.profile);
    let pick = |v: &[f64], q: f64| -> f64 {
        v.get(((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1)) - 1)
            .copied()
            .unwrap_or(0.0)
    };
    figures.harness = figures::Harness {
        nofile_limit: nofile,
        cpu_s: ((harness::cpu_s() - cpu_at_start) * 100.0).round() / 100.0,
        loop_lag_p99_ms: pick(&lag, 0.99),
        loop_lag_max_ms: lag.last().copied().unwrap_or(0.0),
        loop_lag_max_after_cut_ms: (worst_at * 10.0).round() / 10.0,
        connect_loop_lag_max_ms: connect_lag.last().copied().unwrap_or(0.0),
        cut_lag_ms: (cut_lag_ms * 10.0).round() / 10.0,
        lag_bound_ms: timing::HARNESS_LAG_MS,
    };
    figures.harness_peak_rss_mb = harness::peak_rss_mb();
    let mut summary = Summary::new(
        s,
        &broker.name,
        started_at,
        &Facts::default(),
        checks,
        &reason,
        journal.ms_since_start(Instant::now()),
    );
    summary.cut_at_ms = Some(cut_ms);
    summary.timing_model = broker.profile.timing_model.clone();
    say(describe(&figures));
    note(describe(&figures));
    summary.fleet = Some(figures.clone());
    broker.stop().await;
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
    Ok((summary, interrupted))
}

/// How many distinct wills monit has recorded so far.
fn wills_in(journal: &Journal, prefix: &str) -> u32 {
    // Cheap enough at 50 ms: the journal's records are scanned, never copied.
    journal.count(|r| {
        r.actor == Actor::Monit
            && matches!(&r.event, Event::MessageReceived { topic, .. }
                if Fleet::willy_of(prefix, topic).is_some())
    }) as u32
}

/// The figures in one line, for the terminal and the log.
pub fn describe(f: &FleetSummary) -> String {
    let q = |q: &Option<Quantiles>| {
        q.map_or("-".to_string(), |q| {
            format!(
                "p50 {:.0} / p90 {:.0} / p99 {:.0} / max {:.0} ms",
                q.p50, q.p90, q.p99, q.max
            )
        })
    };
    format!(
        "fleet: {} willies, {} connected ({} /s); wills received {} lost {} duplicated {}; drop after last packet {}; will after last packet {}; cut to last will {} ms; harness CPU {:.1} s, peak RSS {:.0} MB, loop lag max {:.1} ms, cut lag {:.1} ms",
        f.willies,
        f.connected,
        f.connect_rate_per_s.map_or("-".to_string(), |r| format!("{r:.0}")),
        f.wills_received,
        f.wills_lost,
        f.wills_duplicated,
        q(&f.drop_after_last_packet_ms),
        q(&f.will_after_last_packet_ms),
        f.cut_to_last_will_ms.map_or("-".to_string(), |m| format!("{m:.0}")),
        f.harness.cpu_s,
        f.harness_peak_rss_mb,
        f.harness.loop_lag_max_ms,
        f.harness.cut_lag_ms,
    )
}
