//! The `[fleet]` table: N willies instead of one, cut at once.
//!
//! ```text
//!  [fleet] willies, wave_size, wave_interval_ms --validate--> Fleet
//!          + the scenario's [will] (topic = prefix), one blackhole [[faults]] entry, tcp
//! ```
//!
//! A fleet keeps the rest of the scenario's keys (keepalive, protocol, the will's QoS and
//! payload) and refuses the ones that belong to one willy's cycles (a publisher, a
//! subscription, a takeover, a flaky monit, a late subscriber, a v5 DISCONNECT): they would be
//! silently ignored otherwise.

use std::time::Duration;

use serde::Deserialize;

use super::raw::{RawFleet, RawScenario, Validator};
use super::{Direction, FaultKind, ScenarioError, Transport};

/// The most willies one run may hold: each takes 3 to 4 of this process's file descriptors.
pub const MAX_WILLIES: i64 = 100_000;

/// A fleet of willies: each its own client id and will topic (`WILL_TOPIC/NNNNN`), all through
/// the one proxy, connected in waves, cut together by the scenario's one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Fleet {
    pub willies: u32,
    /// How many connect at once.
    pub wave_size: u32,
    /// Between the starts of two waves.
    pub wave_interval: Duration,
}

impl Fleet {
    /// willy number `i`'s client id.
    pub fn client_id(i: u32) -> String {
        format!("willy-{i:05}")
    }

    /// willy number `i`'s will topic under the scenario's will topic.
    pub fn will_topic(prefix: &str, i: u32) -> String {
        format!("{prefix}/{i:05}")
    }

    /// Which willy a will topic belongs to.
    pub fn willy_of(prefix: &str, topic: &str) -> Option<u32> {
        topic.strip_prefix(prefix)?.strip_prefix('/')?.parse().ok()
    }
}

/// The keys of one willy's cycles the scenario sets: a fleet refuses them.
pub(super) fn single_willy_keys(raw: &RawScenario) -> Vec<&'static str> {
    [
        (raw.publisher.is_some(), "[publisher]"),
        (raw.subscribe.is_some(), "[subscribe]"),
        (raw.takeover.is_some(), "[takeover]"),
        (raw.monit.is_some(), "[monit]"),
        (raw.late_subscriber.is_some(), "late_subscriber"),
        (
            raw.disconnect_reason.is_some() || raw.disconnect_form.is_some(),
            "disconnect_reason/disconnect_form",
        ),
        (
            raw.willy.as_ref().is_some_and(|w| w.leave_open.is_some()),
            "willy.leave_open",
        ),
    ]
    .into_iter()
    .filter_map(|(set, key)| set.then_some(key))
    .collect()
}

/// The `[fleet]` table, checked against the rest of the scenario.
pub(super) fn fleet(
    v: &Validator,
    table: &Option<RawFleet>,
    has_will: bool,
    single_willy_keys: &[&str],
    transport: Transport,
    faults: &[super::Fault],
) -> Result<Option<Fleet>, ScenarioError> {
    let Some(f) = table else {
        return Ok(None);
    };
    let willies = v.int_in(&f.willies, "fleet.willies", 1, MAX_WILLIES)? as u32;
    let wave_size = match &f.wave_size {
        Some(x) => v.int_in(x, "fleet.wave_size", 1, MAX_WILLIES)? as u32,
        None => 100,
    };
    let wave_interval = match &f.wave_interval_ms {
        Some(x) => v.ms(x, "fleet.wave_interval_ms", 0)?,
        None => Duration::from_millis(50),
    };
    let at = f.willies.span();
    let refuse = |key: &str, why: &str| -> Result<Option<Fleet>, ScenarioError> {
        v.err(
            at.clone(),
            "fleet.willies",
            format!("a fleet {why}: remove `{key}`"),
        )
    };
    if transport != Transport::Tcp {
        return refuse(
            &format!("transport = \"{}\"", transport.as_str()),
            "runs over plain TCP only for now",
        );
    }
    if !has_will {
        return v.err(
            at,
            "fleet.willies",
            "a fleet needs a [will]: its topic is the prefix of every willy's will topic"
                .to_string(),
        );
    }
    if let Some(key) = single_willy_keys.first() {
        return refuse(key, "has no cycles of one willy for it to act in");
    }
    let cut_ok = matches!(
        faults,
        [super::Fault {
            kind: FaultKind::Blackhole {
                direction: Direction::Both | Direction::Upstream
            },
            heal_after: None,
            ..
        }]
    );
    if !cut_ok {
        return v.err(
            at,
            "fleet.willies",
            "a fleet needs exactly one [[faults]] entry, a blackhole (both or upstream) that never heals: the cut every will is timed from".to_string(),
        );
    }
    Ok(Some(Fleet {
        willies,
        wave_size,
        wave_interval,
    }))
}
