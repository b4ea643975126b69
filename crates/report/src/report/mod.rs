//! What a run leaves behind besides its journal: `NAME.summary.json`, and the tables that
//! `suite` prints.

pub mod batch;
pub mod files;
pub mod index;
pub mod rejudge;
pub mod svg;
pub mod table;

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::judge::{Check, Facts};
use crate::scenario::Scenario;

/// The version of `NAME.summary.json`'s layout. 1: `schema_version`, `run_id`, `interrupted`
/// and `error` added to the fields before it (files without it are version 0: the same fields
/// minus these four).
pub const SCHEMA_VERSION: u32 = 1;

/// `NAME.summary.json`: what CI and other tools read. Times are ms since the run's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`] when written; 0 in files from before it existed.
    #[serde(default)]
    pub schema_version: u32,
    /// Names this run among all others (`--run-id`, or start time and process id): a suite
    /// reads back only the summary its own child wrote.
    #[serde(default)]
    pub run_id: String,
    /// The run was ended by SIGINT or SIGTERM before its outcome was decided: its checks judge
    /// a partial journal and `pass` is false whatever they say.
    #[serde(default)]
    pub interrupted: bool,
    /// The run could not start or went wrong as a harness (exit 2): why. `pass` is false.
    #[serde(default)]
    pub error: Option<String>,
    pub scenario: String,
    pub description: String,
    pub broker: String,
    pub transport: String,
    pub protocol: String,
    pub keepalive_s: u64,
    pub will_configured: bool,
    pub will_expected: bool,
    pub started_at: DateTime<Utc>,
    pub cut_at_ms: Option<f64>,
    pub last_upstream_ms: Option<f64>,
    /// The last complete MQTT packet from willy that reached the broker, and its type.
    pub last_packet_ms: Option<f64>,
    pub last_packet_kind: Option<String>,
    /// PINGREQ/PINGRESP and WebSocket control frames per connection.
    pub wire_counts: Vec<crate::judge::WireCounts>,
    pub broker_drop_ms: Option<f64>,
    pub client_detect_ms: Option<f64>,
    pub will_received_ms: Option<f64>,
    pub heal_ms: Option<f64>,
    /// broker_drop - last_upstream: how long the broker took to notice.
    pub drop_after_last_packet_ms: Option<f64>,
    /// will_received - last_upstream: how long the rest of the system took to learn.
    pub will_after_last_packet_ms: Option<f64>,
    /// client_detect - cut: how long willy took to notice.
    pub client_detect_after_cut_ms: Option<f64>,
    pub failed_attempts_after_cut: u32,
    pub checks: Vec<Check>,
    pub pass: bool,
    /// The broker profile's timing model the checks allowed for (its late allowance and why).
    #[serde(default)]
    pub timing_model: String,
    pub end_reason: String,
    pub duration_ms: f64,
    pub unplug_version: String,
    /// The window each timing figure was judged against (`will_after_last_packet_ms` ->
    /// [lo, hi] ms), for the figures this run's checks judge.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub allowed: std::collections::BTreeMap<String, [f64; 2]>,
    /// The steps of the run's design that did not happen (a clean disconnect with no
    /// DISCONNECT on the wire, a fault in another cycle): the run was not quite the experiment
    /// its scenario describes, and these say where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_steps: Vec<crate::judge::MissingStep>,
    /// The messages monit got that were not willy's or pubby's own: each will (with its
    /// cycle), retained replay, and any message nothing in the run accounts for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monit_messages: Vec<crate::judge::MessageAccount>,
    /// A fleet run's figures (`[fleet]`); absent for one willy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::judge::fleet::FleetSummary>,
}

/// `a - b`, rounded to the nanosecond the journal's times carry: the difference of two such
/// times prints as `3002.831178`, not `3002.8311779999995`.
fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(((a? - b?) * 1e6).round() / 1e6)
}

impl Summary {
    pub fn new(
        s: &Scenario,
        broker: &str,
        started_at: DateTime<Utc>,
        f: &Facts,
        checks: Vec<Check>,
        end_reason: &str,
        duration_ms: f64,
    ) -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            run_id: String::new(),
            interrupted: false,
            error: None,
            scenario: s.name.clone(),
            description: s.description.clone(),
            broker: broker.to_string(),
            transport: s.transport.as_str().to_string(),
            protocol: s.protocol.as_str().to_string(),
            keepalive_s: s.keepalive.as_secs(),
            will_configured: s.will.is_some(),
            will_expected: s.expect.will,
            started_at,
            cut_at_ms: f.cut_at_ms,
            last_upstream_ms: f.last_upstream_ms,
            last_packet_ms: f.last_packet_ms,
            last_packet_kind: f.last_packet_kind.map(|k| k.as_str().to_string()),
            wire_counts: f.wire_counts.clone(),
            broker_drop_ms: f.broker_drop_ms,
            client_detect_ms: f.client_detect_ms,
            will_received_ms: f.will_received_ms,
            heal_ms: f.heal_ms,
            drop_after_last_packet_ms: diff(f.broker_drop_ms, f.reference_ms()),
            will_after_last_packet_ms: diff(f.will_received_ms, f.reference_ms()),
            client_detect_after_cut_ms: diff(f.client_detect_ms, f.cut_at_ms),
            failed_attempts_after_cut: f.attempts_failed_after_cut,
            pass: checks.iter().all(|c| c.pass),
            checks,
            timing_model: String::new(),
            end_reason: end_reason.to_string(),
            duration_ms,
            unplug_version: env!("CARGO_PKG_VERSION").to_string(),
            allowed: Default::default(),
            missing_steps: crate::judge::missing_steps(s, &f.cycles),
            monit_messages: f
                .messages
                .iter()
                .filter(|m| {
                    !matches!(
                        m.source,
                        crate::judge::Source::Willy { .. } | crate::judge::Source::Pubby
                    )
                })
                .cloned()
                .collect(),
            fleet: None,
        }
    }

    /// The summary of a run that did not get to its end: ended by `signal`, or by `error`.
    /// Nothing in it may read as a pass.
    pub fn mark_incomplete(&mut self, signal: Option<&str>, error: Option<String>) {
        self.interrupted = signal.is_some();
        self.error = error;
        self.pass = false;
        if let Some(sig) = signal {
            self.end_reason = format!("interrupted ({sig})");
        }
        if let Some(e) = &self.error {
            self.end_reason = format!("did not run to its end: {e}");
        }
    }

    /// Was the run interrupted? Also true of a summary from before `interrupted` existed
    /// (schema 0), whose runner judged an interrupted run like any other and said so only in
    /// `end_reason`.
    pub fn was_interrupted(&self) -> bool {
        self.interrupted || self.end_reason.starts_with("interrupted")
    }

    /// Did the run get to its end (not interrupted, no harness error)?
    pub fn complete(&self) -> bool {
        !self.was_interrupted() && self.error.is_none()
    }

    /// `PASS`, `FAIL`, `INTERRUPTED` or `ERROR`: the run's verdict in one word. Only a complete
    /// run can pass.
    pub fn verdict_word(&self) -> &'static str {
        match (self.was_interrupted(), &self.error, self.pass) {
            (true, _, _) => "INTERRUPTED",
            (_, Some(_), _) => "ERROR",
            // Nothing was put to the test (a proxy whose device never met a cut or a fault):
            // not a failure, and not a pass either.
            (_, _, true) if self.checks.is_empty() => "NO CHECKS",
            (_, _, true) => "PASS",
            _ => "FAIL",
        }
    }

    /// The JSON text of `NAME.summary.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serializes") + "\n"
    }

    /// Write `NAME.summary.json` atomically (temp file + rename): a reader never sees half of it.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(format!("{}.summary.json", self.scenario));
        crate::fsx::write_atomic(&path, self.to_json().as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(path: &Path) -> anyhow::Result<Summary> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run summary", path.display()))
    }

    /// The checks, one line each, for the end of a run on the terminal.
    pub fn verdict_lines(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mark = match c.status {
                crate::judge::Status::Fail => "FAIL",
                st => st.as_str(),
            };
            out.push_str(&format!(
                "  {mark:<4}  {:<22} expected {}; {}\n",
                c.name, c.expected, c.actual
            ));
        }
        for m in &self.missing_steps {
            out.push_str(&format!("  design: {}\n", m.words));
        }
        out.push_str(&self.verdict_line());
        out
    }

    /// The one line `--quiet` prints: `PASS: ws-last-will (9 checks, ...)`.
    pub fn verdict_line(&self) -> String {
        if self.verdict_word() == "NO CHECKS" {
            return format!(
                "NO CHECKS: {} (no check applied: no cut or fault met a connected device with \
                 something to judge; {})\n",
                self.scenario, self.end_reason
            );
        }
        format!(
            "{}: {} ({} checks, {})\n",
            self.verdict_word(),
            self.scenario,
            self.checks.len(),
            self.end_reason
        )
    }
}

impl Summary {
    /// For tests, here and in the crates above (so not `cfg(test)`): a finished `ws-last-will` run on `broker` with no facts and no checks, for tests that
    /// need a summary to read, list or tabulate.
    #[doc(hidden)]
    pub fn blank(broker: &str, duration_ms: f64) -> Summary {
        let sc = crate::scenario::load("ws-last-will").unwrap();
        Summary::new(
            &sc,
            broker,
            chrono::Utc::now(),
            &crate::judge::Facts::default(),
            Vec::new(),
            "done",
            duration_ms,
        )
    }
}
