//! The spec's timing, in one place: the keepalive bound, the moment it is measured from, the
//! will's delay and deadline, willy's ping window, and every allowance the checks, the runner,
//! the status line and the pictures use.
//!
//! ```text
//!  last packet (or last bytes) --reference_ms--> r
//!  r + keepalive_bound_ms(ka) -------------------> the broker's close is due [MQTT-3.1.2-24]
//!  close + will_delay_ms(...) --------------------> the will is due [MQTT-3.1.3-9]
//!  r + late allowance + will delay + SETTLE_MS ---> the run's outcome is decided
//! ```
//!
//! Depends on nothing in the crate: plain durations and milliseconds in, milliseconds out.

use std::time::Duration;

/// How early before 1.5 x keepalive a close still counts: the proxy stamps the last forwarded
/// bytes a little after the broker's read completes, and timers may fire a hair early.
pub const EARLY_MS: f64 = 50.0;

/// "At once": a close the broker sees becomes a will within this, and an error willy sees
/// becomes its error within this. The seed measured "close to 100 ms" from socket close to will
/// over a real network; on loopback it is a few ms, so 100 ms only rules out a timer.
pub const PROMPT_MS: f64 = 100.0;

/// How late willy's client may report a missing PINGRESP or a connect timeout: rumqttc's
/// timers are tokio sleeps, late by the scheduler only.
pub const CLIENT_LATE_MS: f64 = 100.0;

/// How long before monit's copy willy's own PUBLISH may have reached the broker: the broker
/// forwards a QoS 0 message to a subscriber on loopback within a few ms; a second is ample.
pub const OWN_COPY_MS: f64 = 1000.0;

/// How long after a flaky monit's return its queued will may take: the spec sets no time
/// ("re-send" on reconnect, [MQTT-4.4.0-1]); on loopback a queued message follows the CONNACK
/// within milliseconds, so a second is the harness's wait, not a tolerance of the spec.
pub const QUEUED_WAIT_MS: f64 = 1000.0;

/// Time for a will that follows the broker's close to arrive and be recorded before the runner
/// calls the outcome decided.
pub const SETTLE_MS: f64 = 500.0;

/// How late the harness itself may be (a timer of its event loop, its record of the cut)
/// before a run is a harness error rather than a verdict on the broker: under half the 250 ms
/// any broker is allowed for scheduling, so the harness's own delay cannot make an on-time
/// broker look late by more than it.
pub const HARNESS_LAG_MS: f64 = 100.0;

/// The bound in words, as the checks and the pictures say it.
pub const BOUND_WORDS: &str = "1.5 × keepalive";

/// The factor alone, as the checks' texts say it (`1.5 x keepalive`).
pub const FACTOR_WORDS: &str = "1.5 x";

/// [MQTT-3.1.2-24]: a client silent for 1.5 x keepalive is disconnected.
pub fn keepalive_bound(keepalive: Duration) -> Duration {
    keepalive * 3 / 2
}

/// The same bound in milliseconds.
pub fn keepalive_bound_ms(keepalive: Duration) -> f64 {
    bound_of_ms(keepalive.as_secs_f64() * 1000.0)
}

/// The bound for a keepalive given in milliseconds.
pub fn bound_of_ms(keepalive_ms: f64) -> f64 {
    1.5 * keepalive_ms
}

/// The bound for a keepalive given in whole seconds (as a summary records it).
pub fn bound_of_secs_ms(keepalive_s: u64) -> f64 {
    bound_of_ms(keepalive_s as f64 * 1000.0)
}

/// `d_ms` counted in keepalives (the status line's "2.3 x keepalive").
pub fn in_keepalives(d_ms: f64, keepalive: Duration) -> f64 {
    d_ms / (keepalive.as_secs_f64() * 1000.0)
}

/// How long after the cut a run watches for a drop or a will later than the profile allows,
/// unless `--observe` says: 4 x keepalive + 10 s (a drop at twice the spec's 1.5 x keepalive,
/// with room), plus a will delay that is due on top.
pub fn observe_window(keepalive: Duration, will_delay: Duration) -> Duration {
    keepalive * 4 + Duration::from_secs(10) + will_delay
}

/// What the keepalive is measured from: the last packet that reached the broker, or, when the
/// tap saw none (a stream it could not decode), the last bytes forwarded.
pub fn reference_ms(last_packet_ms: Option<f64>, last_upstream_ms: Option<f64>) -> Option<f64> {
    last_packet_ms.or(last_upstream_ms)
}

/// The 1.5 x keepalive window after the last packet, widened late by the broker's allowance.
pub fn keepalive_window(keepalive: Duration, late_ms: u64) -> (f64, f64) {
    let bound = keepalive_bound_ms(keepalive);
    (bound - EARLY_MS, bound + late_ms as f64)
}

/// How long after the broker closes willy the will is due. [MQTT-3.1.3-9]: the server
/// publishes it when the Will Delay Interval has passed or the session has ended, whichever
/// is first; a v5 session without a Session Expiry Interval ends when the connection closes.
/// MQTT 3.1.1 has no will delay.
pub fn will_delay_ms(v5: bool, will_delay_s: Option<u32>, session_expiry_s: Option<u32>) -> f64 {
    match (v5, will_delay_s) {
        (true, Some(d)) => f64::from(d.min(session_expiry_s.unwrap_or(0))) * 1000.0,
        _ => 0.0,
    }
}

/// The window for a delayed will, measured from the broker's close.
pub fn will_delay_window(due_ms: f64, late_ms: u64) -> (f64, f64) {
    (due_ms - EARLY_MS, due_ms + late_ms as f64)
}

/// The will deadline: after this, a will that has not come is not coming. Measured from the
/// reference instant (or the cut, when there is none).
pub fn will_deadline_ms(
    reference_or_cut_ms: Option<f64>,
    keepalive: Duration,
    keepalive_late_ms: u64,
    will_delay_ms: f64,
) -> Option<f64> {
    let (_, late) = keepalive_window(keepalive, keepalive_late_ms);
    reference_or_cut_ms.map(|l| l + late + will_delay_ms)
}

/// When willy should notice a cut that leaves its connection open, as rumqttc 0.25.1
/// implements it (eventloop.rs `select`, state.rs `outgoing_ping`): it sends a PINGREQ every
/// keepalive from the CONNACK, whatever else it sent, and fails with `AwaitPingResp` when the
/// next one is due while the previous PINGRESP has not come. The first ping after the cut goes
/// out within (0, ka] of it and is lost; the next, ka later, fails: (ka, 2 ka] after the cut.
/// A FIN that reaches it first (the broker's keepalive close, half-open upstream) is noticed
/// at once, which falls inside the same window.
pub fn client_ping_window(keepalive: Duration) -> (f64, f64) {
    let ka = keepalive.as_secs_f64() * 1000.0;
    (ka - EARLY_MS, 2.0 * ka + CLIENT_LATE_MS)
}

/// When a connection attempt held open by the fault fails: rumqttc's connection timeout.
pub fn connect_timeout_window(connect_timeout: Duration) -> (f64, f64) {
    let ct = connect_timeout.as_secs_f64() * 1000.0;
    (ct - EARLY_MS, ct + CLIENT_LATE_MS)
}

/// The keepalive that binds both sides: a Server Keep Alive in the CONNACK replaces the one
/// the client sent [MQTT-3.1.2-21, MQTT-3.2.2-21]; without one, the client's [MQTT-3.2.2-22].
/// (0 from the server switches keepalive off; it is kept as the client's here, since a run
/// with no keepalive has no bound to judge.)
pub fn effective_keepalive(client: Duration, server_s: Option<u16>) -> Duration {
    match server_s {
        Some(k) if k > 0 => Duration::from_secs(u64::from(k)),
        _ => client,
    }
}

/// When willy's first PINGREQ after the CONNACK is due: one keepalive, early by the proxy's
/// stamps only, late by the client's timer ([`CLIENT_LATE_MS`]).
pub fn first_ping_window(keepalive: Duration) -> (f64, f64) {
    let ka = keepalive.as_secs_f64() * 1000.0;
    (ka - EARLY_MS, ka + CLIENT_LATE_MS)
}

/// How late the proxy's idle timeout may close a silent connection: it reads the byte counters
/// every 20 ms (`proxy::idle::TICK`), so the close comes up to one tick after the timeout, plus
/// the scheduler (the same 100 ms a client timer gets).
pub const IDLE_LATE_MS: f64 = 20.0 + CLIENT_LATE_MS;

/// When an intermediary's idle timeout closes a connection, after its last byte.
pub fn idle_cut_window(idle: Duration) -> (f64, f64) {
    let ms = idle.as_secs_f64() * 1000.0;
    (ms - EARLY_MS, ms + IDLE_LATE_MS)
}

/// Does an idle timeout close a connection whose client pings every `keepalive` (rumqttc: a
/// PINGREQ every keepalive, whatever else it sent; the PINGRESP follows within ms)? Only when
/// the timeout is shorter than that gap.
pub fn idle_timeout_cuts(idle: Duration, keepalive: Duration) -> bool {
    idle < keepalive
}

/// Does a fault healed after `heal_after` end before the broker may drop willy (so the broker
/// still hears it in time)?
pub fn healed_before_bound(heal_after: Duration, keepalive: Duration) -> bool {
    heal_after.as_secs_f64() * 1000.0 < keepalive_bound_ms(keepalive) - EARLY_MS
}

/// `3.00 x keepalive; spec 1.5 x` or, past the bound, `3.00 x keepalive, 7.5 s late; spec
/// 1.5 x`; `delay_ms` is a will delay due on top of the bound.
pub fn ratio(d_ms: f64, keepalive: Duration, delay_ms: f64) -> String {
    let ka = keepalive.as_secs_f64() * 1000.0;
    let bound = bound_of_ms(ka) + delay_ms;
    let x = (d_ms - delay_ms) / ka;
    let late = d_ms - bound;
    let spec = if delay_ms > 0.0 {
        format!(
            "spec {FACTOR_WORDS} + will delay {:.1} s",
            delay_ms / 1000.0
        )
    } else {
        format!("spec {FACTOR_WORDS}")
    };
    if late >= 1000.0 {
        format!("{x:.2} x keepalive, {:.1} s late; {spec}", late / 1000.0)
    } else if late <= -1000.0 {
        format!("{x:.2} x keepalive, {:.1} s early; {spec}", -late / 1000.0)
    } else {
        format!("{x:.2} x keepalive; {spec}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_one_and_a_half_keepalives_in_every_unit() {
        let ka = Duration::from_secs(2);
        assert_eq!(keepalive_bound(ka), Duration::from_secs(3));
        assert_eq!(keepalive_bound_ms(ka), 3000.0);
        assert_eq!(bound_of_secs_ms(2), 3000.0);
        assert_eq!(keepalive_window(ka, 250), (2950.0, 3250.0));
    }

    #[test]
    fn a_will_delay_counts_in_mqtt_5_only_and_at_most_the_session_expiry() {
        assert_eq!(will_delay_ms(true, Some(5), Some(2)), 2000.0);
        assert_eq!(will_delay_ms(true, Some(5), None), 0.0);
        assert_eq!(will_delay_ms(false, Some(5), Some(10)), 0.0);
    }
}
