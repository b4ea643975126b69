//! Routes the embedded broker's tracing output into the journal as `mqtt` lines.
//!
//! rumqttd only logs (it has no other way to say a listener failed to bind), so its log is
//! evidence: every line it writes at info level or above joins the run's timeline.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::event::{Actor, Event, Journal};

static TARGET: OnceLock<Mutex<Option<Journal>>> = OnceLock::new();

/// How many of rumqttd's complaints about our own readiness probes are still to come: each
/// probe connects to a listener and closes at once, which rumqttd reports as an ERROR (its
/// TLS, WebSocket or CONNECT handshake cut short). Those are ours, not the broker's problem:
/// they are kept as DEBUG records.
static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What rumqttd 0.20 logs for a connection closed before its handshake ended
/// (src/server/broker.rs: "Tls accept error", "Websocket failed handshake", "Error while
/// handling MQTT connect packet").
const PROBE_COMPLAINTS: [&str; 3] = [
    "Tls accept error",
    "Websocket failed handshake",
    "Error while handling MQTT connect packet",
];

/// The broker is about to be probed `n` times (one connection per listener).
pub fn expect_probes(n: usize) {
    PROBES.store(n, std::sync::atomic::Ordering::SeqCst);
}

/// An ERROR line one of our probes caused becomes a DEBUG record that says so.
fn probe_level<'a>(level: &'a str, line: &str) -> (&'a str, Option<String>) {
    use std::sync::atomic::Ordering;
    let ours = level == "ERROR"
        && PROBE_COMPLAINTS.iter().any(|c| line.contains(c))
        && PROBES
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    match ours {
        true => (
            "DEBUG",
            Some(format!(
                "our readiness probe (it connects and closes at once): {line}"
            )),
        ),
        false => (level, None),
    }
}

fn slot() -> &'static Mutex<Option<Journal>> {
    TARGET.get_or_init(|| Mutex::new(None))
}

/// Install the process-wide subscriber once; later calls only change where lines go.
pub fn install(journal: &Journal) {
    *slot().lock().unwrap_or_else(|p| p.into_inner()) = Some(journal.clone());
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::filter::filter_fn(|meta| {
            meta.target().starts_with("rumqttd") && *meta.level() <= tracing::Level::INFO
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_level(true)
            .with_writer(JournalWriter)
            .with_filter(filter);
        // Another subscriber already set (a test harness) is not our business: skip quietly.
        let _ = tracing_subscriber::registry().with(layer).try_init();
    });
}

#[derive(Clone, Copy)]
struct JournalWriter;

struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        let journal = slot().lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(j) = journal {
            let (level, line) = split_level(text);
            let (level, probe) = probe_level(level, line);
            j.record(
                Actor::Mqtt,
                Event::BrokerLog {
                    level: level.to_string(),
                    line: probe.unwrap_or_else(|| line.to_string()),
                },
            );
        }
    }
}

fn split_level(text: &str) -> (&str, &str) {
    let t = text.trim_start();
    for lvl in ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"] {
        if let Some(rest) = t.strip_prefix(lvl) {
            return (lvl, rest.trim_start());
        }
    }
    ("INFO", t)
}

impl<'a> MakeWriter<'a> for JournalWriter {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        LineBuffer(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::split_level;

    #[test]
    fn level_is_split_off() {
        assert_eq!(
            split_level(" INFO accept name=\"v4-1\""),
            ("INFO", "accept name=\"v4-1\"")
        );
        assert_eq!(split_level("no level"), ("INFO", "no level"));
    }
}
