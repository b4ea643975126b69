//! The broker's keepalive close [MQTT-3.1.2-24].

use super::{observed, Finding};
use crate::judge::facts::*;
use crate::judge::id::CheckId;
use crate::judge::timing;
use crate::profile::Profile;
use crate::scenario::Scenario;

/// [MQTT-3.1.2-24]: a client silent for 1.5 x keepalive is disconnected, measured from the
/// last bytes the broker received (`last`). Only when the cut silences willy for that long.
pub(crate) fn keepalive_drop(s: &Scenario, p: &Profile, f: &Facts, last: f64) -> Finding {
    let (lo, hi) = drop_window(s, p);
    let delta = f.broker_drop_ms.map(|d| d - last);
    Finding {
        id: CheckId::KeepaliveDrop,
        spec: Some("MQTT-3.1.2-24".into()),
        holds: delta.is_some_and(|d| d >= lo && d <= hi),
        expected: format!("the broker closes willy {lo:.0}..{hi:.0} ms after its last packet ({} {} s, {} late allowance {} ms)", timing::FACTOR_WORDS, s.keepalive.as_secs(), p.broker, p.keepalive_late_ms),
        actual: match delta {
            Some(d) => format!(
                "closed {d:.0} ms after the last packet = {}",
                timing::ratio(d, s.keepalive, 0.0)
            ),
            None => format!("the broker never closed the connection ({})", observed(f, last)),
        } + &match f.publishes_to_silent_willy {
            0 => String::new(),
            n => format!(" (meanwhile it sent willy {n} PUBLISHes)"),
        },
    }
}

/// When the broker must close the silent willy, in ms after its last packet.
pub(crate) fn drop_window(s: &Scenario, p: &Profile) -> (f64, f64) {
    timing::keepalive_window(s.keepalive, p.keepalive_late_ms)
}
