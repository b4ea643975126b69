//! Every message monit got, accounted for: willy's own PUBLISH of a cycle, the will of a cycle,
//! a retained replay, pubby's message, or nothing (a finding: `unaccounted-message`).
//!
//! ```text
//!  monit's message_received, in time order
//!    -> willy's own: a PUBLISH of willy's that the tap saw reach the broker (topic, payload
//!       size), recorded OWN_COPY_MS before .. PROMPT_MS after the copy (a tap that saw none,
//!       TLS passed through: what willy's library said it published)
//!    -> the will: the will's topic and payload, and no own PUBLISH to pair it with; the
//!       cycle whose close it answers (a left-open connection's comes at the next CONNECT)
//!    -> retained: the retain flag (the broker's replay on subscribe)
//!    -> pubby's: pubby published that topic and payload, no later than PROMPT_MS after
//!    -> willy's own, late: an earlier own PUBLISH left unpaired (a queued or delayed copy)
//!    -> else unaccounted
//! ```

use serde::{Deserialize, Serialize};

use super::{monit_got, own_publishes, wire_runs_own, CycleSeen};
use crate::event::{Actor, Event, Record};
use crate::judge::timing::{OWN_COPY_MS, PROMPT_MS};
use crate::scenario::Scenario;

/// Who a message monit got came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Source {
    /// willy's own PUBLISH, in this cycle.
    Willy { cycle: u32 },
    /// The broker's will for willy's connection of this cycle.
    Will { cycle: u32 },
    /// A retained message the broker replayed.
    Retained,
    /// pubby's message.
    Pubby,
    /// Nothing in the run published it.
    Unaccounted,
}

impl Source {
    /// In a sentence: `willy's publish of cycle 2`, `the will of cycle 3`.
    pub fn words(&self) -> String {
        match self {
            Source::Willy { cycle } => format!("willy's publish of cycle {cycle}"),
            Source::Will { cycle } => format!("the will of cycle {cycle}"),
            Source::Retained => "a retained message the broker replayed".into(),
            Source::Pubby => "pubby's publish".into(),
            Source::Unaccounted => "unaccounted: nothing in the run published it".into(),
        }
    }
}

/// One message monit got, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageAccount {
    pub ms: f64,
    pub topic: String,
    pub payload: String,
    #[serde(flatten)]
    pub source: Source,
}

/// A message someone sent, waiting for monit's copy.
struct Sent<'a> {
    ms: f64,
    topic: &'a str,
    /// willy's PUBLISHes are known by payload size (the tap keeps no payloads); pubby's by text.
    len: usize,
    payload: Option<&'a str>,
    cycle: u32,
    paired: bool,
}

/// Messages sent, in time order, each paired at most once. A flood pairs in order, so the
/// first unpaired one moves along and a copy's search starts there (the live facts reduce
/// every record again at every tick).
struct Pending<'a> {
    sent: Vec<Sent<'a>>,
    first: usize,
}

impl<'a> Pending<'a> {
    fn new(sent: Vec<Sent<'a>>) -> Pending<'a> {
        Pending { sent, first: 0 }
    }

    /// Pair the first unpaired message with this topic and payload sent between `lo` and `hi`;
    /// its cycle.
    fn take(&mut self, topic: &str, payload: &str, lo: f64, hi: f64) -> Option<u32> {
        let from = self.first.max(self.sent.partition_point(|x| x.ms < lo));
        let i = from
            + self.sent[from..]
                .iter()
                .take_while(|x| x.ms <= hi)
                .position(|x| {
                    !x.paired
                        && x.topic == topic
                        && x.len == payload.len()
                        && x.payload.map_or(true, |p| p == payload)
                })?;
        self.sent[i].paired = true;
        while self.sent.get(self.first).is_some_and(|x| x.paired) {
            self.first += 1;
        }
        Some(self.sent[i].cycle)
    }
}

impl MessageAccount {
    /// Account for every message monit got. `cut`: when the first fault took effect; a will
    /// after it is the cut cycle's.
    pub(crate) fn collect(
        s: &Scenario,
        records: &[Record],
        cycles: &[CycleSeen],
        cut: Option<f64>,
    ) -> Vec<MessageAccount> {
        let cycle_at = |ms: f64| {
            cycles
                .iter()
                .rev()
                .find(|c| c.started_ms <= ms)
                .map_or(0, |c| c.cycle)
        };
        let mut own: Vec<Sent> = Vec::new();
        // What willy's library said it published: the pairing when the tap saw no PUBLISH of
        // willy's at all (TLS passed through: encrypted records only).
        let mut said: Vec<Sent> = Vec::new();
        let mut pubby: Vec<Sent> = Vec::new();
        let mut got: Vec<(f64, &str, &str, bool)> = Vec::new();
        // Only PUBLISHes monit got a copy of can pair: a flood nobody subscribed to (a device
        // streaming through `unplug proxy`, a `publish_run` of 2,000,000) is not held one by one.
        let wanted = monit_got(records);
        let mut tap_saw_own = false;
        for r in records {
            tap_saw_own |= wire_runs_own(r);
            own.extend(
                own_publishes(r, |t, n| wanted.contains(&(t, n))).map(|p| Sent {
                    ms: p.ms,
                    topic: p.topic,
                    len: p.payload_len,
                    payload: None,
                    cycle: cycle_at(p.ms),
                    paired: false,
                }),
            );
            match (&r.actor, &r.event) {
                (Actor::Willy, Event::Published { topic, payload }) => said.push(Sent {
                    ms: r.ms,
                    topic,
                    len: payload.len(),
                    payload: Some(payload),
                    cycle: cycle_at(r.ms),
                    paired: false,
                }),
                (Actor::Pubby, Event::Published { topic, payload }) => pubby.push(Sent {
                    ms: r.ms,
                    topic,
                    len: payload.len(),
                    payload: Some(payload),
                    cycle: 0,
                    paired: false,
                }),
                (
                    Actor::Monit,
                    Event::MessageReceived {
                        topic,
                        payload,
                        retain,
                        ..
                    },
                ) => got.push((r.ms, topic, payload, *retain)),
                _ => {}
            }
        }
        if !tap_saw_own {
            own = said;
        }
        own.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        got.sort_by(|a, b| a.0.total_cmp(&b.0));
        // A will the design places (the one answering a close without DISCONNECT, or a
        // left-open connection's at its takeover, which comes in the next cycle) is that
        // cycle's; any other after the cut is the cut cycle's; else the cycle it came in.
        let placed = |ms: f64| {
            cycles.iter().find_map(|c| {
                let takeover = c.taken_over.as_ref().and_then(|t| t.will_ms);
                (c.will_after_close_ms == Some(ms) || takeover == Some(ms)).then_some(c.cycle)
            })
        };
        let will_cycle = |ms: f64| match (placed(ms), cut) {
            (Some(cycle), _) => cycle,
            (None, Some(c)) if ms >= c => cycle_at(c),
            (None, _) => cycle_at(ms),
        };
        pubby.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        let (mut own, mut pubby) = (Pending::new(own), Pending::new(pubby));
        let mut out = Vec::new();
        for (ms, topic, payload, retain) in got {
            let is_will = s
                .will
                .as_ref()
                .is_some_and(|w| w.topic == topic && w.payload == payload);
            let source = if let Some(cycle) =
                own.take(topic, payload, ms - OWN_COPY_MS, ms + PROMPT_MS)
            {
                Source::Willy { cycle }
            } else if is_will {
                Source::Will {
                    cycle: will_cycle(ms),
                }
            } else if retain {
                Source::Retained
            } else if pubby
                .take(topic, payload, f64::NEG_INFINITY, ms + PROMPT_MS)
                .is_some()
            {
                Source::Pubby
            } else if let Some(cycle) = own.take(topic, payload, f64::NEG_INFINITY, ms + PROMPT_MS)
            {
                Source::Willy { cycle }
            } else {
                Source::Unaccounted
            };
            out.push(MessageAccount {
                ms,
                topic: topic.to_string(),
                payload: payload.to_string(),
                source,
            });
        }
        out
    }
}
