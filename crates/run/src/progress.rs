//! A status line on the terminal while a run waits for timers: which cycle, how long so far
//! against how long the run should take, and what it is waiting for.
//!
//! ```text
//!  runner loop (every 50 ms) --RunProgress::update(facts)--> one line on stderr, redrawn in place
//!  Journal echo (stdout) --------suspend(print)-------------> the line is lifted, the log line
//!                                                             printed, the line put back
//! ```
//!
//! Only when stdout is a terminal and the run is not `--quiet`: a file or a pipe gets the log
//! lines and nothing else. The line appears after [`SHOW_AFTER`], so short runs never flicker.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::broker::profile::Profile;
use crate::judge::{self, timing, Facts};
use crate::scenario::Scenario;

/// Runs shorter than this get no status line.
pub const SHOW_AFTER: Duration = Duration::from_secs(2);

/// The line on screen, if any: log lines printed while it is there go through [`suspend`].
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Print something to the terminal without tearing the status line.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

/// One log line on stdout, without tearing the status line: the journal's echo. A closed
/// stdout (a pipe into `head`) must not end the run: the files still get it.
pub fn print_line(line: &str) {
    suspend(|| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    });
}

/// The status line of one run.
pub struct RunProgress {
    bar: Option<ProgressBar>,
}

impl RunProgress {
    /// A status line on stderr, or nothing when `enabled` is false.
    pub fn new(enabled: bool) -> RunProgress {
        RunProgress {
            bar: enabled.then(|| {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .expect("the template is valid")
                        .tick_chars("|/-\\ "),
                );
                bar
            }),
        }
    }

    /// Redraw the line for the run's state at `now_ms`.
    pub fn update(&self, s: &Scenario, p: &Profile, f: &Facts, cycle: u32, now_ms: f64) {
        let Some(bar) = &self.bar else { return };
        if now_ms < SHOW_AFTER.as_secs_f64() * 1000.0 {
            return;
        }
        {
            let mut active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
            if active.is_none() {
                *active = Some(bar.clone());
            }
        }
        bar.set_message(status_line(s, p, f, cycle, now_ms));
        bar.tick();
    }

    /// Take the line off the screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).take();
            bar.finish_and_clear();
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn s1(ms: f64) -> String {
    format!("{:.1} s", ms.max(0.0) / 1000.0)
}

/// How long the run should take: its cycles, plus, when the network stays down, one reconnect
/// of willy's that waits out its connection timeout; and past the cut no less than the will's
/// deadline and the moment the runner waits after it.
pub fn expected_ms(s: &Scenario, p: &Profile, f: &Facts) -> f64 {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut cycles = ms(s.connected_for + s.idle) * f64::from(s.cycles);
    if s.cut().is_some_and(|c| c.heal_after.is_none()) {
        cycles += ms(s.connect_timeout);
    }
    let outcome = judge::will_deadline_ms(s, p, f).map_or(0.0, |d| d + timing::SETTLE_MS);
    cycles.max(outcome)
}

/// The words on the line: `cycle 3/4 | 9.1 s of ~12.6 s | waiting for keepalive expiry: ...`.
pub fn status_line(s: &Scenario, p: &Profile, f: &Facts, cycle: u32, now_ms: f64) -> String {
    format!(
        "cycle {}/{} | {} of ~{} | {}",
        cycle.max(1).min(s.cycles),
        s.cycles,
        s1(now_ms),
        s1(expected_ms(s, p, f).max(now_ms)),
        waiting_for(s, f, cycle, now_ms)
    )
}

/// What the run is waiting for, in the order a cut run goes through it.
pub fn waiting_for(s: &Scenario, f: &Facts, cycle: u32, now_ms: f64) -> String {
    let Some(fault) = s.cut() else {
        return "running the cycles".to_string();
    };
    let Some(cut) = f.cut_at_ms else {
        return format!(
            "waiting for the {} fault in cycle {}",
            fault.kind.label(),
            fault.cycle
        );
    };
    let bound = timing::keepalive_bound_ms(s.keepalive);
    let reference = f.reference_ms().unwrap_or(cut);
    let window = s.observe_window().as_secs_f64() * 1000.0;
    match (f.broker_drop_ms, f.will_received_ms) {
        (None, None) if now_ms - reference <= bound + 1000.0 => format!(
            "waiting for keepalive expiry: {} of {}",
            s1(now_ms - reference),
            s1(bound)
        ),
        // Past the bound and its allowance: the run watches on for a late drop.
        (None, None) if fault.kind.silences_client() && f.heal_ms.is_none() => format!(
            "no drop yet, {} after the last packet ({:.1} x keepalive); watching until {} after the cut",
            s1(now_ms - reference),
            timing::in_keepalives(now_ms - reference, s.keepalive),
            s1(window)
        ),
        (Some(_), None) if s.expect.will => "waiting for the will at monit".to_string(),
        _ if cycle < s.cycles => format!("waiting for cycle {} of {}", cycle + 1, s.cycles),
        _ => "waiting for willy's last cycle to end".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Scenario {
        crate::scenario::load("ws-last-will").expect("a built-in scenario")
    }

    #[test]
    fn before_the_cut_it_names_the_fault_to_come() {
        let line = waiting_for(&seed(), &Facts::default(), 1, 100.0);
        assert_eq!(line, "waiting for the blackhole fault in cycle 3");
    }

    #[test]
    fn after_the_cut_it_counts_towards_the_keepalive_bound() {
        let f = Facts {
            cut_at_ms: Some(6000.0),
            last_packet_ms: Some(5990.0),
            ..Facts::default()
        };
        let line = waiting_for(&seed(), &f, 3, 7490.0);
        assert_eq!(line, "waiting for keepalive expiry: 1.5 s of 3.0 s");
    }

    #[test]
    fn after_the_drop_it_waits_for_the_will() {
        let f = Facts {
            cut_at_ms: Some(6000.0),
            last_packet_ms: Some(5990.0),
            broker_drop_ms: Some(8991.0),
            ..Facts::default()
        };
        assert_eq!(
            waiting_for(&seed(), &f, 3, 8992.0),
            "waiting for the will at monit"
        );
    }
}
