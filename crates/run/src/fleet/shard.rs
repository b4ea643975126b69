//! One fleet beyond one process: `unplug scenario FLEET --partition K/N --start-at T --broker
//! URL`, and the pieces `unplug merge` needs to put the shards back into one fleet.
//!
//! ```text
//!  willy i (0-based, of the whole fleet) --round-robin--> shard i % N + 1
//!  shard K: client ids willy-i (global i), will topics PREFIX/KofN/i, monit-fleet-KofN on
//!           PREFIX/KofN/+ (its own willies' wills only), its own proxy, the shared broker URL
//!  --start-at T: waves from T; the cut at T + connect window + after_ms, the same moment in
//!           every shard (the window depends only on the scenario and N)
//!  end: NAME.willies.json = each own willy's raw moments (FleetFacts) + the wall clock of the
//!       journal's ms 0 + the shard's scenario and profile; SHARD.json (command "fleet")
//!  merge: every shard once, one scenario, disjoint willies --times shifted to one wall clock-->
//!         one FleetFacts --the one-fleet code--> figures, checks, picture
//! ```
//!
//! **One monit per shard, each on its own willies' wills.** Every will topic carries its
//! shard (`PREFIX/KofN/NNNNN`), so each shard's monit subscribes to its own willies only: the
//! broker delivers each will once (16,000 deliveries for 16,000 willies, where monits on
//! `PREFIX/+` would take N times as many, load on the very broker being timed), and a shard's
//! wills are counted by the process that timed its willies' last packets, on one clock. One
//! monit for the whole fleet would put every will on one machine's clock and every drop on
//! another's, so each will's delay would carry the clock offset between machines.

use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::scenario::{Fleet, Scenario};
use crate::shard::Partition;

use super::figures::FleetFacts;

/// The raw figures' file a fleet shard writes beside its summary: `NAME.willies.json`.
pub const WILLIES_FILE: &str = "willies.json";

/// The file's own schema.
pub const SCHEMA: u32 = 1;

/// The split rule of a fleet's willies, as the manifest names it.
pub const SPLIT: &str = "round-robin over the willies: willy i (0-based) in shard i % N + 1";

/// The manifest's command for a fleet shard.
pub const COMMAND: &str = "fleet";

pub use crate::shard::FleetShard;

/// The methods of a fleet's shard (its data is [`crate::shard::FleetShard`], in the manifest).
impl FleetShard {
    /// Make `s` (a fleet scenario) this shard's: its own willies' count, its will topics under
    /// `PREFIX/KofN`. Refused when the shard would have no willy.
    pub fn apply(
        s: &mut Scenario,
        partition: Partition,
        start_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> anyhow::Result<FleetShard> {
        let fleet = s
            .fleet
            .as_mut()
            .context("--partition on one scenario splits a fleet's willies: this scenario has no [fleet] table")?;
        let will = s
            .will
            .as_mut()
            .context("a fleet has a [will] (its topic prefix)")?;
        let shard = FleetShard {
            partition,
            total: fleet.willies,
            prefix: will.topic.clone(),
            start_at,
        };
        let own = shard.own_count();
        if own == 0 {
            anyhow::bail!(
                "--partition {partition}: {} willies in {} shards leaves shard {} none (at most {} shards)",
                fleet.willies,
                partition.n,
                partition.k,
                fleet.willies
            );
        }
        fleet.willies = own;
        will.topic = shard.prefix_of_shard();
        Ok(shard)
    }

    /// This shard's will topic prefix: `PREFIX/KofN`.
    pub fn prefix_of_shard(&self) -> String {
        format!("{}/{}of{}", self.prefix, self.partition.k, self.partition.n)
    }

    /// monit's client id in this shard (every shard's monit is on the same broker).
    pub fn monit_id(&self) -> String {
        format!("monit-fleet-{}of{}", self.partition.k, self.partition.n)
    }

    /// Does this shard own willy `i` (of the whole fleet)?
    pub fn owns(&self, i: u32) -> bool {
        self.partition.owns(i as usize)
    }

    /// This shard's willies (global indices), in order.
    pub fn own(&self) -> Vec<u32> {
        (0..self.total).filter(|i| self.owns(*i)).collect()
    }

    pub fn own_count(&self) -> u32 {
        let (k, n) = (self.partition.k, self.partition.n);
        (self.total + n - k) / n
    }

    /// How long after `--start-at` every shard has connected: the waves of the largest shard
    /// at the asked rate, plus one connect timeout. It depends only on the scenario and N, so
    /// every shard computes the same.
    pub fn connect_window(&self, f: &Fleet, connect_timeout: Duration) -> Duration {
        let largest = self.total.div_ceil(self.partition.n);
        let waves = largest.div_ceil(f.wave_size.max(1));
        f.wave_interval * waves.saturating_sub(1) + connect_timeout
    }

    /// The fleet's one cut moment: `--start-at` + the connect window + the cut's `after_ms`.
    pub fn cut_at(
        &self,
        f: &Fleet,
        connect_timeout: Duration,
        after: Duration,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let start = self.start_at?;
        let d = chrono::Duration::from_std(self.connect_window(f, connect_timeout) + after).ok()?;
        Some(start + d)
    }
}

/// `NAME.willies.json`: one shard's raw per-willy moments, for `unplug merge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile {
    pub schema_version: u32,
    /// The run id of the summary beside it.
    pub run_id: String,
    pub shard: FleetShard,
    /// The shared cut moment (with `--start-at`).
    pub planned_cut: Option<chrono::DateTime<chrono::Utc>>,
    /// The wall clock of the journal's ms 0: every ms below is from it.
    pub t0: chrono::DateTime<chrono::Utc>,
    /// The profile the shard was judged by.
    pub profile: String,
    /// The broker, as the shard named it.
    pub broker: String,
    /// The scenario as the shard ran it (its own willies, its will prefix).
    pub scenario: Scenario,
    pub facts: FleetFacts,
}

impl ShardFile {
    pub fn path(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        dir.join(format!("{name}.{WILLIES_FILE}"))
    }

    pub fn write(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        let path = Self::path(dir, &self.scenario.name);
        let text = serde_json::to_string(self).context("a shard file serializes")? + "\n";
        crate::fsx::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Read one, capped (a fleet of 100,000 willies writes about 20 MB).
    pub fn read(path: &std::path::Path) -> anyhow::Result<ShardFile> {
        const CAP: u64 = 256 * 1024 * 1024;
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("reading {}", path.display()))?;
        if !meta.file_type().is_file() || meta.len() > CAP {
            anyhow::bail!(
                "{}: not a regular file of at most {} MB",
                path.display(),
                CAP >> 20
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let f: ShardFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a fleet shard's willies file", path.display()))?;
        if f.schema_version != SCHEMA {
            anyhow::bail!(
                "{}: schema {} (this unplug reads {SCHEMA})",
                path.display(),
                f.schema_version
            );
        }
        Ok(f)
    }

    /// The wall clock of `ms` in this shard.
    pub fn wall(&self, ms: f64) -> chrono::DateTime<chrono::Utc> {
        self.t0 + chrono::Duration::microseconds((ms * 1000.0).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(k: u32, n: u32, total: u32) -> FleetShard {
        FleetShard {
            partition: Partition { k, n },
            total,
            prefix: "fleet/will".into(),
            start_at: None,
        }
    }

    #[test]
    fn every_willy_is_in_exactly_one_shard_and_counts_agree() {
        for n in 1..=5 {
            for total in [1, 2, 7, 40, 101] {
                let mut all: Vec<u32> = (1..=n).flat_map(|k| shard(k, n, total).own()).collect();
                for k in 1..=n {
                    let s = shard(k, n, total);
                    assert_eq!(s.own().len() as u32, s.own_count(), "{k}/{n} of {total}");
                }
                all.sort();
                assert_eq!(all, (0..total).collect::<Vec<_>>());
            }
        }
        assert_eq!(shard(2, 4, 10).own(), [1, 5, 9]);
    }

    #[test]
    fn a_shard_gets_its_own_topics_and_the_same_cut_as_every_other() {
        let mut s = crate::scenario::load("will-storm").unwrap();
        let at = crate::shard::parse_start_at("2026-12-07T12:00:00Z").unwrap();
        let sh = FleetShard::apply(&mut s, Partition { k: 3, n: 4 }, Some(at)).unwrap();
        assert_eq!(s.fleet.unwrap().willies, 1000);
        assert_eq!(s.will.as_ref().unwrap().topic, "fleet/will/3of4");
        assert_eq!(sh.monit_id(), "monit-fleet-3of4");
        // 1,000 a shard in waves of 100 every 50 ms: 450 ms, + 10 s connect timeout + 4.5 s.
        let f = crate::scenario::load("will-storm").unwrap();
        let cut = sh.cut_at(&f.fleet.unwrap(), f.connect_timeout, f.cut().unwrap().after);
        assert_eq!(cut.unwrap().to_rfc3339(), "2026-12-07T12:00:14.950+00:00");
        let mut one = crate::scenario::load("will-storm").unwrap();
        one.fleet.as_mut().unwrap().willies = 2;
        let e = FleetShard::apply(&mut one, Partition { k: 3, n: 3 }, None).unwrap_err();
        assert!(e.to_string().contains("leaves shard 3 none"), "{e}");
    }
}
