//! Many runs beyond one machine: `--partition K/N` splits a batch's planned runs into N
//! shards, `--start-at` lets the shards start (and so cut) together, and `unplug merge` puts
//! their output directories back together as one batch.
//!
//! ```text
//!  plan (the order one unpartitioned run gives) --round-robin--> shard K owns runs i, i % N == K-1
//!  shard K --runs its own--> DIR_K/NAME.* + its table + DIR_K/SHARD.json (whole plan, its runs)
//!  merge OUT DIR_1..DIR_N --check: one plan, no run twice, none missing--> OUT: the table in the
//!        plan's order, the picture, --json/--junit, index.html, every run's files
//! ```
//!
//! **The split rule: round-robin over the planned list**, run `i` (0-based, in the order an
//! unpartitioned run starts them) goes to shard `i % N + 1`. It is deterministic (the plan is a
//! function of the arguments, which every shard of a CI matrix shares), every run is in exactly
//! one shard, and the shards differ in size by at most one run, where a hash of the names can
//! leave a shard of a small suite empty and another with all of it. Neighbours in the plan (a
//! scenario on each broker, in `compare`) land on different shards, which spreads a slow
//! scenario's cells. The price: adding a scenario moves others to other shards, which does not
//! matter because the shards of one CI run share one plan (merge refuses shards of different
//! plans).

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::report::batch::{Batch, ChildRun, RunStatus};
use crate::report::Summary;

/// The manifest a shard writes into its output directory.
pub const MANIFEST: &str = "SHARD.json";

/// The manifest's own schema, for readers other than `unplug merge`.
pub const MANIFEST_SCHEMA: u32 = 1;

/// `--partition K/N`: this is shard K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub k: u32,
    pub n: u32,
}

/// The split rule, as the manifest names it.
pub const SPLIT: &str = "round-robin over the plan: run i (0-based) in shard i % N + 1";

/// The most shards a batch may be split into.
pub const MAX_SHARDS: u32 = 1000;

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?} is not K/N (e.g. 1/2: shard 1 of 2; 1 <= K <= N <= {MAX_SHARDS})");
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let num = |t: &str| -> Result<u32, String> {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        let (k, n) = (num(k)?, num(n)?);
        if n == 0 || n > MAX_SHARDS {
            return Err(format!("{s:?}: N must be 1 to {MAX_SHARDS}"));
        }
        if k == 0 || k > n {
            return Err(format!(
                "{s:?}: K must be 1 to N ({n}); shards count from 1"
            ));
        }
        Ok(Partition { k, n })
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Partition {
    /// Does this shard own the plan's run `index` (0-based)? Round-robin (see the module).
    pub fn owns(&self, index: usize) -> bool {
        index % self.n as usize == (self.k - 1) as usize
    }

    /// The indices of the plan's `len` runs this shard owns, in the plan's order.
    pub fn owned(&self, len: usize) -> Vec<usize> {
        (0..len).filter(|i| self.owns(*i)).collect()
    }
}

/// How far ahead `--start-at` may be.
pub const START_AHEAD_MAX: std::time::Duration = std::time::Duration::from_secs(600);
/// How long past `--start-at` a shard may still start (a slow CI runner): then it starts at once.
pub const START_LATE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// `--start-at`: RFC 3339 (`2026-11-29T15:40:00Z`) or unix seconds (`1795966800`).
pub fn parse_start_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = t
            .parse()
            .map_err(|_| format!("{s:?}: too large for unix seconds"))?;
        return chrono::DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| format!("{s:?}: not a time in unix seconds"));
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&chrono::Utc))
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 time (2026-11-29T15:40:00Z) or unix seconds: {e}")
        })
}

/// How long to wait from `now` until `at`: refused when `at` is more than [`START_AHEAD_MAX`]
/// ahead or more than [`START_LATE_GRACE`] past; zero when it is just past.
pub fn wait_until(
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<std::time::Duration> {
    let ahead = at - now;
    if ahead > chrono::Duration::from_std(START_AHEAD_MAX).expect("10 min fits") {
        anyhow::bail!(
            "--start-at {}: {} s from now, more than the {} s allowed ahead",
            at.to_rfc3339(),
            ahead.num_seconds(),
            START_AHEAD_MAX.as_secs()
        );
    }
    if -ahead > chrono::Duration::from_std(START_LATE_GRACE).expect("60 s fits") {
        anyhow::bail!(
            "--start-at {}: {} s ago, past the {} s grace (the shards would not cut together)",
            at.to_rfc3339(),
            (-ahead).num_seconds(),
            START_LATE_GRACE.as_secs()
        );
    }
    Ok(ahead.to_std().unwrap_or_default())
}

/// One planned run, as the tables name it: everything merge needs to put its row back where
/// an unpartitioned run has it, without the arguments that planned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// The stem of its files (`NAME.summary.json`): unique in a plan.
    pub name: String,
    /// The scenario as asked for.
    pub scenario: String,
    /// Its name in the table's first column (compare: with its client and cut).
    pub shown: String,
    /// The broker's label (compare's row of a run with no verdict; conformance's column).
    pub broker: String,
    /// The forced transport, or `-`.
    pub transport: String,
    /// Broker and transport for the picture's row of a run with no verdict.
    pub picture: (String, String),
}

/// One run a shard owned, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedRun {
    /// Its place in the plan (0-based).
    pub index: usize,
    pub name: String,
    /// pass, fail, error, interrupted, not-run.
    pub status: String,
    /// Why it has no verdict (error, interrupted, not-run), as its table row says it.
    pub reason: Option<String>,
    /// The error or the signal alone, for merge to rebuild the status.
    #[serde(default)]
    pub detail: Option<String>,
    pub exit: Option<i32>,
    /// The run id its summary carries (a finished run).
    pub run_id: Option<String>,
    /// Its summary, relative to the shard's directory (a finished run).
    pub summary: Option<String>,
    /// The child's stderr, for a run without a verdict.
    #[serde(default)]
    pub error: String,
}

impl OwnedRun {
    /// The record of the plan's run `index` as it ended in this shard.
    pub fn of(index: usize, run: &ChildRun) -> OwnedRun {
        let detail = match &run.status {
            RunStatus::Error(why) | RunStatus::Interrupted(why) => Some(why.clone()),
            _ => None,
        };
        OwnedRun {
            index,
            name: run.name.clone(),
            status: run.status_word().to_string(),
            reason: run.problem(),
            detail,
            exit: run.exit,
            run_id: run.summary.as_ref().map(|s| s.run_id.clone()),
            summary: run
                .summary
                .as_ref()
                .map(|_| format!("{}.summary.json", run.name)),
            error: if run.summary.is_some() {
                String::new()
            } else {
                run.error.clone()
            },
        }
    }

    /// The run again, its summary read from the shard's directory `dir`: only the summary
    /// carrying the run id the shard recorded (never an older run's left in that directory).
    pub fn child_run(&self, dir: &Path) -> anyhow::Result<ChildRun> {
        let detail = || self.detail.clone().unwrap_or_default();
        let (status, summary) = match self.status.as_str() {
            "pass" | "fail" => {
                let rel = self.summary.as_deref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: run {} finished but names no summary",
                        dir.display(),
                        self.name
                    )
                })?;
                if rel.contains('/') || rel.starts_with('.') {
                    anyhow::bail!(
                        "{}: run {}: summary path {rel:?} is not a file of that directory",
                        dir.display(),
                        self.name
                    );
                }
                let s = Summary::read(&dir.join(rel))?;
                if Some(&s.run_id) != self.run_id.as_ref() {
                    anyhow::bail!(
                        "{}: {rel} carries run id {:?}, not the shard's {:?} (overwritten since?)",
                        dir.display(),
                        s.run_id,
                        self.run_id.as_deref().unwrap_or("")
                    );
                }
                (RunStatus::Finished, Some(s))
            }
            "error" => (RunStatus::Error(detail()), None),
            "interrupted" => (RunStatus::Interrupted(detail()), None),
            "not-run" => (RunStatus::NotRun, None),
            other => anyhow::bail!(
                "{}: run {}: unknown status {other:?}",
                dir.display(),
                self.name
            ),
        };
        Ok(ChildRun {
            name: self.name.clone(),
            exit: self.exit,
            summary,
            error: self.error.clone(),
            status,
        })
    }
}

/// This process runs shard `partition` of a fleet of `total` willies (`scenario FLEET
/// --partition K/N`; its willies, topics and cut: `crate::fleet::shard`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetShard {
    pub partition: Partition,
    /// The whole fleet's willies (the scenario's `[fleet] willies`).
    pub total: u32,
    /// The whole fleet's will topic prefix (the scenario's `[will] topic`).
    pub prefix: String,
    /// `--start-at`: the waves start then, and every shard cuts at one moment after it.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `SHARD.json`: which runs of which plan a shard owned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    /// suite, compare or conformance.
    pub command: String,
    pub partition: Partition,
    pub split: String,
    /// `--start-at`, if given.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The broker columns of a conformance table (empty for the others).
    #[serde(default)]
    pub columns: Vec<String>,
    /// The whole plan, every shard's runs, in the order one unpartitioned run has them.
    pub plan: Vec<PlannedRun>,
    /// This shard's runs.
    pub runs: Vec<OwnedRun>,
    /// The signal that interrupted this shard, if any.
    pub interrupted: Option<String>,
    pub unplug_version: String,
    /// A fleet's shard (`command` "fleet"): which willies of which fleet it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetShard>,
}

impl Manifest {
    /// The manifest of shard `partition` of `plan`, whose runs `owned` (plan indices) ended
    /// as `batch` says, in the same order.
    pub fn new(
        command: &str,
        partition: Partition,
        start_at: Option<chrono::DateTime<chrono::Utc>>,
        columns: Vec<String>,
        plan: Vec<PlannedRun>,
        owned: &[usize],
        batch: &Batch,
    ) -> Manifest {
        Manifest {
            schema_version: MANIFEST_SCHEMA,
            command: command.to_string(),
            partition,
            split: SPLIT.to_string(),
            start_at,
            columns,
            plan,
            runs: owned
                .iter()
                .zip(&batch.runs)
                .map(|(i, r)| OwnedRun::of(*i, r))
                .collect(),
            interrupted: batch.interrupted.map(|s| s.as_str().to_string()),
            unplug_version: env!("CARGO_PKG_VERSION").to_string(),
            fleet: None,
        }
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes") + "\n";
        crate::fsx::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (is {} a shard's --out? run with --partition K/N)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a shard manifest", path.display()))
    }
}

/// What merge found: for each planned run, the shard (its index among the directories given)
/// that owned it, if any.
#[derive(Debug)]
pub struct Assembly {
    pub plan: Vec<PlannedRun>,
    /// Per planned run: (shard directory index, that shard's record of it).
    pub owner: Vec<Option<(usize, OwnedRun)>>,
}

impl Assembly {
    /// The planned runs no shard ran.
    pub fn missing(&self) -> Vec<&str> {
        self.plan
            .iter()
            .zip(&self.owner)
            .filter(|(_, o)| o.is_none())
            .map(|(p, _)| p.name.as_str())
            .collect()
    }
}

/// Put shards back together: they must share one command and one plan, and no run may be in
/// two of them (`dirs` names the shards in errors). Missing runs are left for the caller.
pub fn assemble(manifests: &[Manifest], dirs: &[String]) -> anyhow::Result<Assembly> {
    let first = manifests
        .first()
        .ok_or_else(|| anyhow::anyhow!("no shard directory given"))?;
    for (m, d) in manifests.iter().zip(dirs).skip(1) {
        if m.command != first.command {
            anyhow::bail!(
                "{d} is a shard of `unplug {}`, {} of `unplug {}`: one command's shards only",
                m.command,
                dirs[0],
                first.command
            );
        }
        if m.plan != first.plan || m.columns != first.columns {
            anyhow::bail!(
                "{d} and {} were planned differently (other scenarios, brokers or flags): \
                 every shard must run the same command line but for --partition",
                dirs[0]
            );
        }
        if m.partition.n != first.partition.n {
            anyhow::bail!(
                "{d} is a shard of {} ({}), {} of {} ({}): one split only",
                m.partition.n,
                m.partition,
                dirs[0],
                first.partition.n,
                first.partition
            );
        }
    }
    let mut owner: Vec<Option<(usize, OwnedRun)>> = vec![None; first.plan.len()];
    let mut overlaps = Vec::new();
    for (si, m) in manifests.iter().enumerate() {
        for r in &m.runs {
            let fits = first.plan.get(r.index).is_some_and(|p| p.name == r.name);
            if !fits {
                anyhow::bail!(
                    "{}: run {} at place {} is not in its own plan",
                    dirs[si],
                    r.name,
                    r.index
                );
            }
            match &owner[r.index] {
                Some((other, _)) => {
                    overlaps.push(format!("{} (in {} and {})", r.name, dirs[*other], dirs[si]))
                }
                None => owner[r.index] = Some((si, r.clone())),
            }
        }
    }
    if !overlaps.is_empty() {
        anyhow::bail!(
            "runs in more than one shard: {} (give each shard once; two shards with one K?)",
            overlaps.join(", ")
        );
    }
    Ok(Assembly {
        plan: first.plan.clone(),
        owner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_of_n_is_checked() {
        assert_eq!("1/2".parse::<Partition>(), Ok(Partition { k: 1, n: 2 }));
        assert_eq!("3/3".parse::<Partition>(), Ok(Partition { k: 3, n: 3 }));
        for bad in [
            "0/2", "3/2", "1/0", "0/0", "1", "a/2", "1/2/3", "-1/2", "1/", "/2", "", "1/1001",
        ] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_run_is_in_exactly_one_shard_and_shards_differ_by_at_most_one() {
        for n in 1..=7u32 {
            for len in 0..=20usize {
                let shards: Vec<Vec<usize>> =
                    (1..=n).map(|k| Partition { k, n }.owned(len)).collect();
                let mut all: Vec<usize> = shards.iter().flatten().copied().collect();
                all.sort();
                assert_eq!(all, (0..len).collect::<Vec<_>>(), "n {n} len {len}");
                let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            }
        }
        assert_eq!(Partition { k: 2, n: 3 }.owned(7), [1, 4]);
    }

    #[test]
    fn a_start_too_far_ahead_or_past_is_refused() {
        let now = parse_start_at("2026-11-29T15:00:00Z").unwrap();
        let at = |s: &str| parse_start_at(s).unwrap();
        assert_eq!(
            wait_until(at("2026-11-29T15:01:00Z"), now).unwrap(),
            std::time::Duration::from_secs(60)
        );
        assert_eq!(
            wait_until(at("2026-11-29T14:59:30Z"), now).unwrap(),
            std::time::Duration::ZERO
        );
        assert!(wait_until(at("2026-11-29T15:10:01Z"), now).is_err());
        assert!(wait_until(at("2026-11-29T14:58:59Z"), now).is_err());
        // unix seconds and an offset are the same instant
        assert_eq!(at("1795964400"), now);
        assert_eq!(at("2026-11-29T16:00:00+01:00"), now);
        assert!(parse_start_at("tomorrow").is_err());
        assert!(parse_start_at("99999999999999999999").is_err());
    }

    fn planned(name: &str) -> PlannedRun {
        PlannedRun {
            name: name.into(),
            scenario: name.into(),
            shown: name.into(),
            broker: "builtin".into(),
            transport: "-".into(),
            picture: ("builtin".into(), "-".into()),
        }
    }

    fn manifest(k: u32, n: u32, plan: &[&str]) -> Manifest {
        let p = Partition { k, n };
        Manifest {
            schema_version: MANIFEST_SCHEMA,
            command: "suite".into(),
            partition: p,
            split: "round-robin".into(),
            start_at: None,
            columns: Vec::new(),
            plan: plan.iter().map(|n| planned(n)).collect(),
            runs: p
                .owned(plan.len())
                .into_iter()
                .map(|i| OwnedRun {
                    index: i,
                    name: plan[i].into(),
                    status: "pass".into(),
                    reason: None,
                    detail: None,
                    exit: Some(0),
                    run_id: Some(format!("id-{i}")),
                    summary: Some(format!("{}.summary.json", plan[i])),
                    error: String::new(),
                })
                .collect(),
            interrupted: None,
            unplug_version: "0".into(),
            fleet: None,
        }
    }

    #[test]
    fn shards_assemble_into_the_plan_and_overlaps_and_other_plans_are_refused() {
        let plan = ["a", "b", "c"];
        let dirs = ["s1".to_string(), "s2".to_string(), "s1b".to_string()];
        let a = assemble(&[manifest(1, 2, &plan), manifest(2, 2, &plan)], &dirs[..2]).unwrap();
        assert!(a.missing().is_empty());
        assert_eq!(a.owner[1].as_ref().unwrap().0, 1);
        let a = assemble(&[manifest(1, 2, &plan)], &dirs[..1]).unwrap();
        assert_eq!(a.missing(), ["b"]);
        let e = assemble(&[manifest(1, 2, &plan), manifest(1, 2, &plan)], &dirs[..2]).unwrap_err();
        assert!(
            e.to_string().contains("a (in s1 and s2), c (in s1 and s2)"),
            "{e}"
        );
        let e = assemble(
            &[manifest(1, 2, &plan), manifest(2, 2, &["a", "b"])],
            &dirs[..2],
        )
        .unwrap_err();
        assert!(e.to_string().contains("planned differently"), "{e}");
        let e = assemble(&[manifest(1, 2, &plan), manifest(2, 3, &plan)], &dirs[..2]).unwrap_err();
        assert!(e.to_string().contains("one split only"), "{e}");
    }
}
