//! Broker profiles: what a broker's keepalive timing model is, so the checks can tell "late
//! because that is how this broker works, as documented" from "wrong".
//!
//! A tolerance lives here, with its reason, never in a check.

use serde::Serialize;

/// A broker's timing model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Which broker this describes.
    pub broker: String,
    /// How much later than 1.5 x keepalive after the last packet the broker may close a silent
    /// client, given how its timer works.
    pub keepalive_late_ms: u64,
    /// One line on why that tolerance is what it is.
    pub timing_model: String,
}

impl Profile {
    /// rumqttd 0.20: the keepalive is a timeout of 1.5 x keepalive around each read of the next
    /// packet (rumqttd src/link/network.rs, `set_keepalive` and `read`), so the close is exact to
    /// the scheduler: measured 3002-3004 ms at keepalive 2 s. 250 ms leaves room for a loaded
    /// 2-core CI machine without hiding a real change (a missed timer would be seconds late).
    pub fn rumqttd() -> Profile {
        Profile {
            broker: "rumqttd".to_string(),
            keepalive_late_ms: 250,
            timing_model: "per-read timeout of 1.5 x keepalive (src/link/network.rs)".to_string(),
        }
    }
}
