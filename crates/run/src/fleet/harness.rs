//! The harness measuring itself: its open-file limit, CPU, peak memory and lag.
//!
//! ```text
//!  raise_nofile: soft RLIMIT_NOFILE -> the hard limit (each willy holds 3-4 of our fds)
//!  LagProbe: a task sleeping 10 ms at a time; how late each wake-up is = event-loop delay
//!  usage: getrusage(SELF) user + system; /proc/self/status VmHWM (peak RSS)
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};

/// Raise the soft open-file limit to the hard one; (before, after).
pub fn raise_nofile() -> anyhow::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| anyhow::anyhow!("reading the open-file limit: {e}"))?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|e| anyhow::anyhow!("raising the open-file limit to {hard}: {e}"))?;
    }
    Ok((soft, hard))
}

/// The file descriptors a fleet of `willies` needs in this process: willy's socket, the
/// proxy's two, and the broker's one when it runs in-process; plus room for the rest.
pub fn fds_needed(willies: u32, broker_in_process: bool) -> u64 {
    let each = if broker_in_process { 4 } else { 3 };
    u64::from(willies) * each + 256
}

/// User + system CPU seconds of this process so far.
pub fn cpu_s() -> f64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Peak resident memory of this process, MB (`VmHWM`).
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

/// How late a tokio timer fires: the event loop's delay, sampled every 10 ms.
pub struct LagProbe {
    /// (when, ms since `start`; how late, ms).
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    start: Instant,
    task: tokio::task::JoinHandle<()>,
}

const PERIOD: Duration = Duration::from_millis(10);

impl LagProbe {
    pub fn start(start: Instant) -> LagProbe {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let samples = samples.clone();
            async move {
                loop {
                    let asked = Instant::now();
                    tokio::time::sleep(PERIOD).await;
                    let woke = Instant::now();
                    let late = woke.duration_since(asked).saturating_sub(PERIOD);
                    let at = woke.duration_since(start).as_secs_f64() * 1000.0;
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((at, late.as_secs_f64() * 1000.0));
                }
            }
        });
        LagProbe {
            samples,
            start,
            task,
        }
    }

    /// The largest lag sampled in `[from_ms, to_ms)` and when, ms since the start.
    pub fn worst(&self, from_ms: f64, to_ms: f64) -> Option<(f64, f64)> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(at, _)| *at >= from_ms && *at < to_ms)
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The lags sampled in `[from_ms, to_ms)`, sorted.
    pub fn between(&self, from_ms: f64, to_ms: f64) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(at, _)| *at >= from_ms && *at < to_ms)
            .map(|(_, l)| *l)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
}

impl Drop for LagProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}
