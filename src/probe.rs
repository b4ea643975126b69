//! `unplug probe`: the battery that gives any broker its row of the will table.
//!
//! ```text
//!  broker x transport --plan--> 8 runs each (child processes, as compare's cells):
//!      abrupt close | silent at keepalive x 3 (their clean cycles: the 3.1.1 DISCONNECT)
//!      | v5 DISCONNECT 0x00 | v5 DISCONNECT 0x04 | will delay 2 s, session expiry 0 and 60
//!  summaries --row--> | broker | transport | close | drop | will | clean | 0x00 | 0x04 | ... |
//! ```
//!
//! Figures are seconds; `!` marks a figure where the spec is broken (a check failed, or the
//! broker's profile lists it as a known deviation: documented, still not the spec).

use crate::broker::BrokerChoice;
use crate::judge::Status;
use crate::report::Summary;
use crate::scenario::Transport;
use crate::suite::ChildSpec;

/// How many times the silent-client run repeats: a broker's timer may have a phase.
pub const SILENT_RUNS: usize = 3;

/// What a run of the battery measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// The connection closed without DISCONNECT: the will at once [MQTT-3.1.2-8].
    AbruptClose,
    /// The cable pulled: drop at 1.5 x keepalive, the will with it; its clean cycles test
    /// that no will follows a 3.1.1 DISCONNECT.
    Silent(usize),
    /// v5 DISCONNECT 0x00 (`e0 00`): no will; 0x04: the will.
    V5Normal,
    V5WithWill,
    /// v5 Will Delay 2 s with Session Expiry 0 (due at the close) and 60 (due after 2 s).
    DelayNoSession,
    DelayWithSession,
}

impl Test {
    fn scenario(self, t: Transport) -> &'static str {
        // Over TLS: the same scenarios, with `--transport` saying TLS.
        match (self, t.is_ws()) {
            (Test::AbruptClose, false) => "close",
            (Test::AbruptClose, true) => "ws-close",
            (Test::Silent(_), false) => "native-last-will",
            (Test::Silent(_), true) => "ws-last-will",
            (Test::V5Normal, _) => "v5-disconnect-normal-short",
            (Test::V5WithWill, _) => "v5-disconnect-with-will",
            (Test::DelayNoSession, _) => "v5-will-delay-no-session",
            (Test::DelayWithSession, _) => "v5-will-delay",
        }
    }

    fn v5(self) -> bool {
        !matches!(self, Test::AbruptClose | Test::Silent(_))
    }

    fn all() -> Vec<Test> {
        let mut v = vec![Test::AbruptClose];
        v.extend((1..=SILENT_RUNS).map(Test::Silent));
        v.extend([
            Test::V5Normal,
            Test::V5WithWill,
            Test::DelayNoSession,
            Test::DelayWithSession,
        ]);
        v
    }
}

/// One run of the battery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRun {
    pub broker: BrokerChoice,
    pub transport: Transport,
    pub test: Test,
    /// None: the broker cannot run it (rumqttd's WebSocket listener speaks 3.1.1 only).
    pub spec: Option<ChildSpec>,
}

/// Every run, broker-major, then transport, then test. `label` names the broker in file names.
pub fn plan(
    brokers: &[(BrokerChoice, String)],
    transports: &[Transport],
    extra: &[String],
) -> Vec<ProbeRun> {
    let mut out = Vec::new();
    for (b, label) in brokers {
        for &t in transports {
            if !offers(b, t) {
                continue;
            }
            for test in Test::all() {
                let runnable = !(test.v5() && t.is_ws() && *b == BrokerChoice::Builtin);
                let scenario = test.scenario(t);
                let n = match test {
                    Test::Silent(i) => format!(".{i}"),
                    _ => String::new(),
                };
                let mut args = b.args();
                args.extend(["--transport".to_string(), t.as_str().to_string()]);
                args.extend(extra.iter().cloned());
                out.push(ProbeRun {
                    broker: b.clone(),
                    transport: t,
                    test,
                    spec: runnable.then(|| ChildSpec {
                        scenario: scenario.to_string(),
                        output_name: Some(format!("probe.{label}.{}.{scenario}{n}", t.as_str())),
                        args,
                    }),
                });
            }
        }
    }
    out
}

/// A URL broker offers WebSocket only when a ws:// URL was given.
/// Does the broker have a listener for `t`? (A URL broker: only those the user listed.)
fn offers(b: &BrokerChoice, t: Transport) -> bool {
    match b {
        BrokerChoice::Url(u) => match t {
            Transport::Tcp => u.tcp.is_some(),
            Transport::Ws => u.ws.is_some(),
            Transport::Tls => u.tls.is_some(),
            Transport::Wss => u.wss.is_some(),
        },
        _ => true,
    }
}

pub const HEADER: [&str; 10] = [
    "broker",
    "transport",
    "abrupt close: will",
    "silent: drop (3 runs)",
    "silent: will",
    "clean 3.1.1 DISCONNECT",
    "v5 0x00",
    "v5 0x04",
    "delay 2 s, expiry 0",
    "delay 2 s, expiry 60",
];

/// The outcome of one run: its summary, or why there is none.
pub type Outcome<'a> = Result<&'a Summary, String>;

/// Does the spec hold for `check` in this run? (A listed deviation is still a break.)
fn held(s: &Summary, check: &str) -> bool {
    s.checks
        .iter()
        .filter(|c| c.name == check)
        .all(|c| matches!(c.status, Status::Pass | Status::UnexpectedPass))
}

fn secs(ms: f64) -> String {
    format!("{:.2}", ms / 1000.0)
}

fn mark(ok: bool) -> &'static str {
    if ok {
        ""
    } else {
        " !"
    }
}

fn span(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if (hi - lo).abs() < 5.0 {
        secs(lo)
    } else {
        format!("{}-{}", secs(lo), secs(hi))
    }
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

/// A run that could not be judged, in a few words: the broker's own refusal where it gave one.
fn error_cell(e: &str) -> String {
    let e = e
        .trim_start_matches("unplug: error: ")
        .trim_start_matches("error: ");
    if e.contains("does not speak MQTT 5") {
        "no MQTT 5".to_string()
    } else {
        let short: String = e.chars().take(60).collect();
        format!("error: {short}")
    }
}

/// A cell from one run: `f` reads the figure from its summary.
fn cell(o: Option<&Outcome>, f: impl Fn(&Summary) -> String) -> String {
    match o {
        None => "n/a".to_string(),
        Some(Err(e)) => error_cell(e),
        Some(Ok(s)) => f(s),
    }
}

/// The probe's exit code: 1 where the spec is broken somewhere, else 2 where a run could not
/// be judged (and not because the broker does not speak MQTT 5), else 0.
pub fn exit_code(rows: &[Vec<String>]) -> u8 {
    let cells = || rows.iter().flat_map(|r| r.iter().skip(2));
    if cells().any(|c| c.ends_with(" !") || c == "will !") {
        1
    } else if cells().any(|c| c.starts_with("error: ")) {
        2
    } else {
        0
    }
}

/// The row of one broker on one transport, from the outcomes of its runs (in `plan` order;
/// None where the broker cannot run the test).
pub fn row(broker: &str, t: Transport, runs: &[(Test, Option<Outcome>)]) -> Vec<String> {
    let get = |test: Test| {
        runs.iter()
            .find(|(x, _)| *x == test)
            .and_then(|(_, o)| o.as_ref())
    };
    let silent: Vec<&Summary> = runs
        .iter()
        .filter(|(t, _)| matches!(t, Test::Silent(_)))
        .filter_map(|(_, o)| o.as_ref()?.as_ref().ok().copied())
        .collect();
    let silent_errors: Vec<String> = runs
        .iter()
        .filter(|(t, _)| matches!(t, Test::Silent(_)))
        .filter_map(|(_, o)| o.as_ref()?.as_ref().err().cloned())
        .collect();
    let silent_cell = |f: &dyn Fn(&Summary) -> Option<f64>, check: &str| {
        if let Some(e) = silent_errors.first() {
            return error_cell(e);
        }
        let v: Vec<f64> = silent.iter().filter_map(|s| f(s)).collect();
        let ok = silent.iter().all(|s| held(s, check));
        match v.len() {
            0 => format!("never{}", mark(ok)),
            n if n < silent.len() => format!("{} ({n} of {}){}", span(&v), silent.len(), mark(ok)),
            _ => format!("{}{}", span(&v), mark(ok)),
        }
    };
    let will_or_none = |s: &Summary, check: &str| {
        let ok = held(s, check);
        let said = if s.will_received_ms.is_some() {
            "will"
        } else {
            "no will"
        };
        format!("{said}{}", mark(ok))
    };
    let delayed = |s: &Summary| match diff(s.will_received_ms, s.broker_drop_ms) {
        Some(d) => format!(
            "{} after close{}",
            secs(d),
            mark(held(s, "will-delay") && held(s, "will"))
        ),
        None => format!("no will{}", mark(false)),
    };
    vec![
        broker.to_string(),
        t.as_str().to_string(),
        cell(get(Test::AbruptClose), |s| {
            match diff(s.will_received_ms, s.cut_at_ms) {
                Some(d) => format!(
                    "{}{}",
                    secs(d),
                    mark(held(s, "will") && held(s, "will-prompt"))
                ),
                None => format!("never{}", mark(false)),
            }
        }),
        silent_cell(&|s| s.drop_after_last_packet_ms, "keepalive-drop"),
        silent_cell(&|s| s.will_after_last_packet_ms, "will-timing"),
        if let Some(e) = silent_errors.first() {
            error_cell(e)
        } else if silent.iter().all(|s| held(s, "no-will-after-disconnect")) {
            format!("no will ({} DISCONNECTs)", silent.len() * 2)
        } else {
            "will !".to_string()
        },
        cell(get(Test::V5Normal), |s| {
            will_or_none(s, "will-on-disconnect e000")
        }),
        cell(get(Test::V5WithWill), |s| {
            will_or_none(s, "will-on-disconnect e00104")
        }),
        cell(get(Test::DelayNoSession), delayed),
        cell(get(Test::DelayWithSession), delayed),
    ]
}

/// The broker's name for the table: the summary's `broker` up to where it says where and how.
pub fn broker_name(s: &Summary) -> String {
    s.broker
        .split(" at ")
        .next()
        .unwrap_or(&s.broker)
        .split(" (")
        .next()
        .unwrap_or(&s.broker)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_runs_no_mqtt_5_over_websocket_and_a_url_without_ws_gets_no_ws_row() {
        let tcp_only = BrokerChoice::parse("tcp://127.0.0.1:1").unwrap();
        let p = plan(
            &[
                (BrokerChoice::Builtin, "builtin".into()),
                (tcp_only, "url".into()),
            ],
            &[Transport::Tcp, Transport::Ws],
            &[],
        );
        let per = Test::all().len();
        assert_eq!(p.len(), per * 3, "builtin tcp + ws, url tcp only");
        let skipped: Vec<_> = p.iter().filter(|r| r.spec.is_none()).collect();
        assert_eq!(skipped.len(), 4);
        assert!(skipped
            .iter()
            .all(|r| r.transport == Transport::Ws && r.test.v5()));
        let names: Vec<_> = p
            .iter()
            .filter_map(|r| r.spec.as_ref()?.output_name.clone())
            .collect();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "every run has files of its own");
    }
}
