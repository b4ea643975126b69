//! What a run leaves behind besides its journal: `NAME.summary.json`, and the tables that
//! `suite` prints.

pub mod index;
pub mod svg;
pub mod table;

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::check::{Check, Facts};
use crate::scenario::Scenario;

/// `NAME.summary.json`: what CI and other tools read. Times are ms since the run's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
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
    pub wire_counts: Vec<crate::check::WireCounts>,
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
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
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
            last_packet_kind: f.last_packet_kind.clone(),
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
        }
    }

    /// Write `NAME.summary.json` atomically (temp file + rename): a reader never sees half of it.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(format!("{}.summary.json", self.scenario));
        let tmp = dir.join(format!(".{}.summary.json.tmp", self.scenario));
        let json = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
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
                crate::check::Status::Fail => "FAIL",
                st => st.as_str(),
            };
            out.push_str(&format!(
                "  {mark:<4}  {:<22} expected {}; {}\n",
                c.name, c.expected, c.actual
            ));
        }
        let verdict = if self.pass { "PASS" } else { "FAIL" };
        out.push_str(&format!(
            "{verdict}: {} ({} checks, {})\n",
            self.scenario,
            self.checks.len(),
            self.end_reason
        ));
        out
    }
}
