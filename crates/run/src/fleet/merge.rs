//! `unplug merge OUT SHARD_DIR...` of a fleet's shards: one fleet's summary, checks and
//! picture from every shard's raw per-willy moments.
//!
//! ```text
//!  SHARD_DIR/SHARD.json (command "fleet", its K/N and fleet) --every K once, one fleet-->
//!  SHARD_DIR/NAME.summary.json (run id checked; its harness figures)
//!  SHARD_DIR/NAME.willies.json (run id checked; each willy's moments, t0 = wall clock of ms 0)
//!    --willies owned by their shard, one scenario and profile--> shift each to the earliest t0
//!    --FleetFacts::merge--> the one-fleet figures, checks and picture over every willy
//! ```
//!
//! The distributions are of every willy's own raw figures (never percentiles of the shards'
//! percentiles), each measured inside one process on one clock (a willy's last packet, its
//! drop and its will are all its shard's). Only what compares shards (the cut to the last
//! will, the connect rate, the picture's arrivals) is put on one wall clock, so across
//! machines it carries their clock offset; each shard's cut, by its own clock, is reported
//! as the evidence of that offset.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::figures::{FleetFacts, FleetSummary, Harness, ShardFigures};
use super::shard::{FleetShard, ShardFile, COMMAND};
use crate::broker::profile::Profile;
use crate::judge::{self, Facts};
use crate::report::Summary;
use crate::scenario::Scenario;
use crate::shard::Manifest;

/// The merged fleet.
pub struct Merged {
    pub scenario: Scenario,
    pub facts: FleetFacts,
    pub summary: Summary,
}

/// Is this a fleet shard's manifest?
pub fn is_fleet(m: &Manifest) -> bool {
    m.command == COMMAND
}

/// Merge the shards in `dirs` (their manifests `manifests`, in the same order).
pub fn merge(manifests: &[Manifest], dirs: &[PathBuf]) -> anyhow::Result<Merged> {
    let name = |i: usize| dirs[i].display().to_string();
    let shards = one_fleets_shards(manifests, &name)?;
    let files = shard_files(manifests, dirs, &shards, &name)?;
    let (scenario, profile) = one_scenario(&files, &name)?;
    // Onto one wall clock: the earliest shard's ms 0.
    let t0 = files
        .iter()
        .map(|(f, _)| f.t0)
        .min()
        .expect("at least one shard");
    let shift = |f: &ShardFile| (f.t0 - t0).num_microseconds().unwrap_or(0) as f64 / 1000.0;
    let facts = FleetFacts::merge(
        files
            .iter()
            .map(|(f, _)| (f.facts.clone(), shift(f)))
            .collect(),
    );
    let checks = judge::judge_findings(&scenario, &profile, facts.findings(&scenario, &profile));
    let mut figures = facts.figures(&scenario, &profile);
    shard_figures(&mut figures, &files, &name)?;

    let started_at = files
        .iter()
        .map(|(_, s)| s.started_at)
        .min()
        .expect("at least one shard");
    let duration_ms = files
        .iter()
        .map(|(f, s)| shift(f) + s.duration_ms)
        .fold(0.0, f64::max);
    let reasons: Vec<String> = files
        .iter()
        .map(|(f, s)| format!("{}: {}", f.shard.partition, s.end_reason))
        .collect();
    let mut summary = Summary::new(
        &scenario,
        &files[0].1.broker,
        started_at,
        &Facts::default(),
        checks,
        &format!(
            "{} shards merged ({})",
            shards[0].partition.n,
            reasons.join("; ")
        ),
        duration_ms,
    );
    summary.run_id = format!("merged-{}", files[0].1.run_id);
    summary.cut_at_ms = facts.cut_at_ms();
    summary.timing_model = profile.timing_model.clone();
    summary.fleet = Some(figures);
    Ok(Merged {
        scenario,
        facts,
        summary,
    })
}

/// The shards of one fleet, every one of them once (in the order given).
fn one_fleets_shards<'m>(
    manifests: &'m [Manifest],
    name: &dyn Fn(usize) -> String,
) -> anyhow::Result<Vec<&'m FleetShard>> {
    let a_fleet = manifests.iter().position(is_fleet).unwrap_or(0);
    let mut shards: Vec<&FleetShard> = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        match (&m.fleet, is_fleet(m)) {
            (Some(f), true) => shards.push(f),
            _ => anyhow::bail!(
                "{} is a shard of `unplug {}`, {} of a fleet: one fleet's shards only",
                name(i),
                m.command,
                name(a_fleet)
            ),
        }
    }
    let first = shards[0];
    let n = first.partition.n;
    for (i, s) in shards.iter().enumerate().skip(1) {
        if s.partition.n != n || s.total != first.total || s.prefix != first.prefix {
            anyhow::bail!(
                "{} is shard {} of a fleet of {} willies on {}, {} shard {} of {} on {}: one fleet's shards only (every shard the same command line but for --partition)",
                name(i),
                s.partition,
                s.total,
                s.prefix,
                name(0),
                first.partition,
                first.total,
                first.prefix
            );
        }
    }
    let mut given: Vec<Option<usize>> = vec![None; n as usize];
    for (i, s) in shards.iter().enumerate() {
        let slot = &mut given[(s.partition.k - 1) as usize];
        if let Some(j) = slot {
            anyhow::bail!(
                "shard {} given twice: {} and {} (give each shard once)",
                s.partition,
                name(*j),
                name(i)
            );
        }
        *slot = Some(i);
    }
    let absent: Vec<String> = (1..=n)
        .filter(|k| given[(*k - 1) as usize].is_none())
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !absent.is_empty() {
        anyhow::bail!(
            "shards not given: {} (a fleet's verdict needs every shard: their willies' wills are counted nowhere else)",
            absent.join(", ")
        );
    }
    Ok(shards)
}

/// Each shard's run, its summary and its raw figures, all of the one run it recorded.
fn shard_files(
    manifests: &[Manifest],
    dirs: &[PathBuf],
    shards: &[&FleetShard],
    name: &dyn Fn(usize) -> String,
) -> anyhow::Result<Vec<(ShardFile, Summary)>> {
    let mut files: Vec<(ShardFile, Summary)> = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        let run = m
            .runs
            .first()
            .with_context(|| format!("{}: SHARD.json names no run", name(i)))?;
        if !matches!(run.status.as_str(), "pass" | "fail") {
            anyhow::bail!(
                "shard {} ({}) has no verdict: {}{}",
                m.partition,
                name(i),
                run.status,
                run.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
        let summary = run
            .child_run(&dirs[i])?
            .summary
            .with_context(|| format!("{}: run {} has no summary", name(i), run.name))?;
        let path = ShardFile::path(&dirs[i], &run.name);
        let file = ShardFile::read(&path)?;
        if file.run_id != summary.run_id || &file.shard != shards[i] {
            anyhow::bail!(
                "{}: of run {:?} (shard {}), not the shard's run {:?} (shard {}): overwritten since?",
                path.display(),
                file.run_id,
                file.shard.partition,
                summary.run_id,
                shards[i].partition
            );
        }
        files.push((file, summary));
    }
    Ok(files)
}

/// The one scenario every shard ran (each made whole again) and the one profile that judged
/// them; every willy in the shard that owns it.
fn one_scenario(
    files: &[(ShardFile, Summary)],
    name: &dyn Fn(usize) -> String,
) -> anyhow::Result<(Scenario, Profile)> {
    let whole = |f: &ShardFile| -> Scenario {
        let mut s = f.scenario.clone();
        if let Some(fl) = s.fleet.as_mut() {
            fl.willies = f.shard.total;
        }
        if let Some(w) = s.will.as_mut() {
            w.topic.clone_from(&f.shard.prefix);
        }
        s
    };
    let scenario = whole(&files[0].0);
    let as_json = |s: &Scenario| serde_json::to_value(s).unwrap_or_default();
    for (i, (f, _)) in files.iter().enumerate().skip(1) {
        if as_json(&whole(f)) != as_json(&scenario) {
            anyhow::bail!(
                "{} and {} ran different scenarios (other keys or flags): every shard must run the same command line but for --partition",
                name(i),
                name(0)
            );
        }
        if f.profile != files[0].0.profile {
            anyhow::bail!(
                "{} was judged by the profile {:?}, {} by {:?}: one broker's shards only",
                name(i),
                f.profile,
                name(0),
                files[0].0.profile
            );
        }
    }
    let profile = Profile::by_name(&files[0].0.profile).with_context(|| {
        format!(
            "{}: the profile {:?} is not one this unplug knows",
            name(0),
            files[0].0.profile
        )
    })?;
    for (i, (f, _)) in files.iter().enumerate() {
        if let Some(w) = f.facts.willy_numbers().find(|w| !f.shard.owns(*w)) {
            anyhow::bail!(
                "{}: {} is not shard {}'s ({})",
                name(i),
                crate::scenario::Fleet::client_id(w),
                f.shard.partition,
                super::shard::SPLIT
            );
        }
    }
    Ok((scenario, profile))
}

/// Each shard's own figures and cut (on the one wall clock) as a row of the fleet's, and the
/// harness of them all: the worst lag of any, the CPU of all, the largest peak memory.
fn shard_figures(
    figures: &mut FleetSummary,
    files: &[(ShardFile, Summary)],
    name: &dyn Fn(usize) -> String,
) -> anyhow::Result<()> {
    let cuts: Vec<Option<chrono::DateTime<chrono::Utc>>> = files
        .iter()
        .map(|(f, _)| f.facts.cut_at_ms().map(|c| f.wall(c)))
        .collect();
    let first_cut = cuts.iter().flatten().min().copied();
    let ms =
        |d: chrono::Duration| (d.num_microseconds().unwrap_or(0) as f64 / 100.0).round() / 10.0;
    let mut harness = Harness::default();
    let mut rss: f64 = 0.0;
    for (i, ((f, s), cut)) in files.iter().zip(&cuts).enumerate() {
        let own = s
            .fleet
            .clone()
            .with_context(|| format!("{}: its summary has no fleet figures", name(i)))?;
        add_harness(&mut harness, i == 0, &own.harness);
        rss = rss.max(own.harness_peak_rss_mb);
        figures.shards.push(ShardFigures {
            partition: f.shard.partition.to_string(),
            dir: name(i),
            willies: own.willies,
            connected: own.connected,
            wills_received: own.wills_received,
            wills_lost: own.wills_lost,
            wills_duplicated: own.wills_duplicated,
            connect_rate_per_s: own.connect_rate_per_s,
            cut_to_last_will_ms: own.cut_to_last_will_ms,
            cut_at: *cut,
            cut_after_planned_ms: cut.zip(f.planned_cut).map(|(c, p)| ms(c - p)),
            cut_after_first_ms: cut.zip(first_cut).map(|(c, p)| ms(c - p)),
            harness_peak_rss_mb: own.harness_peak_rss_mb,
            harness: own.harness.clone(),
        });
    }
    figures.shards.sort_by_key(|s| {
        s.partition
            .split_once('/')
            .and_then(|(k, _)| k.parse::<u32>().ok())
    });
    figures.harness = harness;
    figures.harness_peak_rss_mb = rss;
    Ok(())
}

/// One shard's harness `h` into the fleet's: the lowest open-file limit, the CPU summed, the
/// worst of each lag (and when the worst loop lag was).
fn add_harness(harness: &mut Harness, first: bool, h: &Harness) {
    harness.nofile_limit = if first {
        h.nofile_limit
    } else {
        harness.nofile_limit.min(h.nofile_limit)
    };
    harness.cpu_s = ((harness.cpu_s + h.cpu_s) * 100.0).round() / 100.0;
    for (a, b) in [
        (&mut harness.loop_lag_p99_ms, h.loop_lag_p99_ms),
        (&mut harness.loop_lag_max_ms, h.loop_lag_max_ms),
        (
            &mut harness.connect_loop_lag_max_ms,
            h.connect_loop_lag_max_ms,
        ),
        (&mut harness.cut_lag_ms, h.cut_lag_ms),
    ] {
        *a = a.max(b);
    }
    if harness.loop_lag_max_ms == h.loop_lag_max_ms {
        harness.loop_lag_max_after_cut_ms = h.loop_lag_max_after_cut_ms;
    }
    harness.lag_bound_ms = h.lag_bound_ms;
}

/// FLEET.md: the fleet's line, then a row per shard (its counts, harness and clock).
pub fn markdown(m: &Merged) -> String {
    let Some(f) = &m.summary.fleet else {
        return String::new();
    };
    let q = |q: &Option<super::Quantiles>| {
        q.map_or("-".to_string(), |q| {
            format!("{:.0} / {:.0} / {:.0}", q.p50, q.p99, q.max)
        })
    };
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let mut out = format!(
        "# {}: {} willies in {} shards, {}\n\n**{}**: {}\n\n",
        m.summary.scenario,
        f.willies,
        f.shards.len(),
        m.summary.broker,
        m.summary.verdict_word(),
        super::describe(f)
    );
    out += "| check | status | expected | actual |\n|---|---|---|---|\n";
    for c in &m.summary.checks {
        out += &format!(
            "| {} | {} | {} | {} |\n",
            c.name,
            c.status.as_str(),
            c.expected,
            c.actual
        );
    }
    out += &format!(
        "\n| fleet | willies | wills received / lost / duplicated | drop after last packet p50 / p99 / max ms | will after last packet p50 / p99 / max ms | cut to last will ms | connect /s |\n|---|---|---|---|---|---|---|\n| all | {} | {} / {} / {} | {} | {} | {} | {} |\n",
        f.willies,
        f.wills_received,
        f.wills_lost,
        f.wills_duplicated,
        q(&f.drop_after_last_packet_ms),
        q(&f.will_after_last_packet_ms),
        opt(f.cut_to_last_will_ms),
        opt(f.connect_rate_per_s),
    );
    out += "\n| shard | dir | willies | wills | connect /s | cut to last will ms | cut (its clock) | after planned ms | after first shard ms | loop lag max ms | cut lag ms | CPU s | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for s in &f.shards {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |\n",
            s.partition,
            s.dir,
            s.willies,
            s.wills_received,
            opt(s.connect_rate_per_s),
            opt(s.cut_to_last_will_ms),
            s.cut_at.map_or("-".to_string(), |c| c
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            s.cut_after_planned_ms
                .map_or("-".to_string(), |v| format!("{v:.1}")),
            s.cut_after_first_ms
                .map_or("-".to_string(), |v| format!("{v:.1}")),
            s.harness.loop_lag_max_ms,
            s.harness.cut_lag_ms,
            s.harness.cpu_s,
            s.harness_peak_rss_mb,
        );
    }
    out
}

/// Where a shard's own files are, for the merged index to link.
pub fn shard_dir_note(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The merged fleet's files into `out`: NAME.summary.json, NAME.svg, FLEET.md.
pub fn write(m: &Merged, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    m.summary.write(out)?;
    let svg = crate::report::svg::render_fleet(&m.scenario, &m.facts, &m.summary);
    let put = |file: String, text: &str| {
        let p = out.join(file);
        crate::fsx::write_atomic(&p, text.as_bytes())
            .with_context(|| format!("writing {}", p.display()))
    };
    put(format!("{}.svg", m.summary.scenario), &svg)?;
    put("FLEET.md".to_string(), &markdown(m))
}
