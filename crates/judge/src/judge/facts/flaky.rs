//! What a flaky monit saw: it leaves after the cut and comes back, and the will queued for it
//! must reach it then ([`FlakyMonitSeen`], part of [`super::Facts`]).

use serde::Serialize;

use crate::event::{Actor, Event, Record};
use crate::scenario::Scenario;

/// A flaky monit: when it left, when it was back, and each copy of the will it got.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlakyMonitSeen {
    /// monit closed its connection without DISCONNECT.
    pub away_ms: Option<f64>,
    /// monit's CONNACK on its return.
    pub back_ms: Option<f64>,
    pub session_present: Option<bool>,
    /// Each copy of the will monit received after the cut: (ms, QoS).
    pub wills: Vec<(f64, u8)>,
}

impl FlakyMonitSeen {
    pub(super) fn collect(
        s: &Scenario,
        records: &[Record],
        cut: Option<f64>,
    ) -> Option<FlakyMonitSeen> {
        s.monit.flaky?;
        let mut seen = FlakyMonitSeen::default();
        let cut = cut?;
        for r in records.iter().filter(|r| r.actor == Actor::Monit) {
            match &r.event {
                Event::ConnectionAbandoned => {
                    seen.away_ms.get_or_insert(r.ms);
                }
                Event::Connected { session_present } if seen.back_ms.is_none() => {
                    seen.back_ms = Some(r.ms);
                    seen.session_present = Some(*session_present);
                }
                Event::MessageReceived {
                    topic,
                    payload,
                    qos,
                    ..
                } if r.ms > cut
                    && s.will
                        .as_ref()
                        .is_some_and(|w| w.topic == *topic && w.payload == *payload) =>
                {
                    seen.wills.push((r.ms, *qos))
                }
                _ => {}
            }
        }
        Some(seen)
    }
}
