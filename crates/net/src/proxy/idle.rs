//! An intermediary's idle timeout, as a load balancer or reverse proxy has one: a connection
//! that carried no bytes either way for the timeout is closed on both sides.
//!
//! ```text
//!  NetState.idle = Some(IdleCut { after, reset })   (an idle-timeout fault in effect)
//!  every TICK: bytes seen either way (forwarded or swallowed) changed? --> last byte = now
//!              now - last byte >= after? --> the connection's task closes it (FIN or RST)
//! ```
//!
//! It watches the connection's byte counters beside the links and never touches the forwarding
//! path. Silence is counted from the last byte, or from when the timeout came into effect if
//! that is later (a box put in the path knows nothing of the bytes before it).

use std::future::pending;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::fault::NetState;
use super::link::ConnStats;

/// How often the counters are read: a byte is noticed at most this late, so a close comes
/// `after` to `after + TICK` (plus scheduling) after the last byte.
pub const TICK: Duration = Duration::from_millis(20);

/// The `fault` a close by the idle timeout is recorded with (`ConnectionCut`).
pub const FAULT_NAME: &str = crate::event::IDLE_TIMEOUT_FAULT;

/// Every byte that reached the proxy on this connection, either way.
fn bytes_seen(stats: &ConnStats) -> u64 {
    [
        &stats.up_bytes,
        &stats.down_bytes,
        &stats.dropped_up,
        &stats.dropped_down,
    ]
    .iter()
    .map(|c| c.load(Ordering::Relaxed))
    .sum()
}

/// Resolves when an idle timeout in effect runs out on this connection: whether to reset, and
/// how long the connection was silent. Pending for ever while no idle timeout is in effect.
pub async fn watch(stats: &ConnStats, mut net: watch::Receiver<NetState>) -> (bool, Duration) {
    let mut seen = bytes_seen(stats);
    let mut last = Instant::now();
    loop {
        let Some(cut) = net.borrow_and_update().idle else {
            if net.changed().await.is_err() {
                pending::<()>().await;
            }
            // Counted from when the timeout came into effect.
            seen = bytes_seen(stats);
            last = Instant::now();
            continue;
        };
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            changed = net.changed() => {
                if changed.is_err() {
                    pending::<()>().await;
                }
                continue;
            }
        }
        let now = Instant::now();
        let b = bytes_seen(stats);
        if b != seen {
            seen = b;
            last = now;
        } else if cut.due(last, now) {
            return (cut.reset, now - last);
        }
    }
}
