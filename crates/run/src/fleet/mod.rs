//! A fleet run: N willies through one proxy, cut at once, every will timed (`[fleet]`).
//!
//! The runner (`crate::runner`) runs a fleet as it runs one willy: it starts the broker and
//! the proxy, records the run's start and end, tears down, judges and writes the summary. What
//! only a fleet does is here (play.rs), in the runner's order:
//!
//! ```text
//!  prepare: raise RLIMIT_NOFILE              (runner: broker -> proxy, spreading sources)
//!  gather:  monit (PREFIX/+) -> lag probe
//!    -> waves: wave_size willies connect at once; the next when all have their CONNACK and
//!       wave_interval has passed (client.rs; one attempt each)
//!  Crowd::play: every CONNACK in: the scenario's blackhole, applied once to every connection
//!    -> wait: every will came (then SETTLE_MS for duplicates), or the observe window ends
//!  Crowd::stop                               (runner: proxy settled, RunEnded)
//!  judge: figures and checks from the records (figures.rs); the harness's own lag, CPU, RSS
//!    -> the summary's `fleet`                (runner: the summary; broker stopped)
//!  trusted: a harness too late after the cut is a harness error
//!
//!  a shard (--partition K/N, shard.rs): its willies only (global ids), its own proxy and monit
//!    on PREFIX/KofN/+, the shared cut at --start-at + connect window + after_ms;
//!    NAME.willies.json for `unplug merge` (merge.rs)
//! ```
//!
//! figures.rs (FleetFacts, FleetSummary) reads records only: it knows nothing of the runner.
//!
//! Each willy connects from its own loopback address (127.X.Y.Z) and the proxy reaches a
//! loopback broker from another: the kernel gives each (source, destination) pair its own
//! ephemeral ports (28,232 here), so no pair runs out however many willies a machine holds.
//!
//! The journal records what the one-willy runs record (every packet the proxy sees, the
//! broker's log): 4,000 willies write 63,000 records on rumqttd, 83,000 on mosquitto.
//! A harness lag over [`crate::judge::timing::HARNESS_LAG_MS`] after the cut makes the run a harness error.

pub mod client;
pub use crate::judge::fleet as figures;
pub mod harness;
pub mod merge;
pub mod play;
pub mod shard;

use crate::event::{Actor, Event, Journal};
use crate::scenario::Fleet;
pub use figures::{FleetFacts, FleetSummary, Quantiles};
pub use play::{gather, prepare, Crowd, Played, Prepared};
pub use shard::FleetShard;

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
