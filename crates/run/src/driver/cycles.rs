//! willy's cycles, run by the harness through a driver program.
//!
//! ```text
//!  start the driver -> "ready" (library and version noted)
//!  for each cycle:  banner -> connect (again every reconnect_ms after a failed attempt)
//!                   -> publish "true" -> connected_for -> publish "false"
//!                   -> disconnect: waits for the library's "disconnect_returned"
//!                      (mqtt.js over WebSocket: ws's 30 s close timeout into a dead link)
//!                   -> idle
//!  report -> journal: connected -> Connected, published -> Published,
//!            disconnect_returned -> Disconnected, connection_failed / disconnected ->
//!            ConnectionFailed { error: the library's words }; every report's words as a note
//! ```
//!
//! The same cycle and the same moments as the built-in rumqttc willy (`actor/willy.rs`), so
//! the fault plan and every check read a driver's run as they read rumqttc's.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout_at, Instant};

use super::process::Launch;
use super::protocol::{Command, Report, ReportKind, WillCmd};
use crate::actor::MomentHook;
use crate::event::{Actor, Event, Journal};
use crate::scenario::{Scenario, Trigger, STATUS_TOPIC};

/// How long the runner waits for the library's disconnect to come back before it calls the
/// cycle stuck: longer than ws's 30 s close timeout (ws 8.23.0 `lib/constants.js`
/// `CLOSE_TIMEOUT: 30000`), so mqtt.js's WebSocket close into a dead link is seen whole.
pub const DISCONNECT_WAIT: Duration = Duration::from_secs(45);

/// How long a driver may take to say it is ready (node loading mqtt.js: ~0.1 s here).
const READY_WAIT: Duration = Duration::from_secs(15);

/// What the driver protocol cannot ask of a driver yet: an error naming it (exit 2), never a
/// run that quietly does something else.
pub fn unsupported(s: &Scenario) -> Option<String> {
    let w = &s.client;
    if !s.willy_runs_as_driver() {
        return None;
    }
    // What to do instead: rumqttc in the runner's process, which for rumqttc itself means the
    // proxy cut (through a kernel cut it is the driver `unplug driver-rumqttc`).
    let fix = if w.is_driver() {
        "--willy rumqttc"
    } else {
        "the proxy cut (--cut proxy), where rumqttc runs in the runner's process"
    };
    let w = if w.is_driver() {
        w.to_string()
    } else {
        format!("{w} through a kernel cut (its driver, `unplug driver-rumqttc`)")
    };
    if s.protocol == crate::scenario::Protocol::V5 {
        return Some(format!(
            "willy {w} speaks MQTT 3.1.1 in this version of the driver protocol: run an MQTT 3.1.1 scenario, or {fix}"
        ));
    }
    if s.subscribe.is_some() {
        return Some(format!(
            "willy {w}: the driver protocol has no subscribe command yet: {fix} for a scenario with [subscribe]"
        ));
    }
    if s.willy.ws_ping.is_some() || !s.willy.mqtt_pings {
        return Some(format!(
            "willy {w}: WebSocket pings and a silent MQTT keepalive are willy's own client's, which a driver cannot send: {fix}"
        ));
    }
    if !s.willy.leave_open.is_empty() {
        return Some(format!(
            "willy {w}: the driver protocol has no command to leave a connection open ([willy] leave_open): {fix}"
        ));
    }
    if s.faults
        .iter()
        .any(|f| matches!(f.kind, crate::scenario::FaultKind::Crash { restart: true }))
    {
        return Some(format!(
            "willy {w}: a crash with restart = true restarts only the built-in willy: {fix}"
        ));
    }
    None
}

/// willy through a driver.
pub struct DriverWilly {
    pub scenario: Scenario,
    pub launch: Launch,
    /// The URL the driver connects to (the proxy: on loopback, or the veth's host end).
    pub url: String,
    /// The network namespace the driver runs in (a kernel cut), if any.
    pub netns: Option<String>,
    /// Over TLS: what willy trusts.
    pub tls: Option<crate::tls::Trust>,
    pub journal: Journal,
    pub hook: MomentHook,
    pub cycle: Arc<AtomicU32>,
    /// The driver's pid while it runs (0 when none).
    pub pid: Arc<AtomicU32>,
}

/// The running driver: its stdin, its reports, and the process (killed when dropped).
struct Running {
    stdin: ChildStdin,
    reports: mpsc::Receiver<Report>,
    _child: Child,
}

/// Why a step of a cycle could not finish: the library's words, or what did not come.
struct Lost(String);

impl DriverWilly {
    fn record(&self, event: Event) {
        self.journal.record(Actor::Willy, event);
    }

    fn note(&self, r: &Report) {
        let kind = serde_json::to_value(&r.report)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.record(Event::Note {
            message: format!(
                "{} says ({kind}, driver clock {:.1} ms): {}",
                self.scenario.client, r.ms, r.says
            ),
        });
    }

    async fn start(&self) -> anyhow::Result<Running> {
        let mut child = self
            .launch
            .command(self.netns.as_deref())
            .spawn()
            .with_context(|| {
                format!("starting willy's driver {}", self.launch.program.display())
            })?;
        self.pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
        let stdin = child.stdin.take().context("the driver's stdin")?;
        let stdout = child.stdout.take().context("the driver's stdout")?;
        let stderr = child.stderr.take().context("the driver's stderr")?;
        let (tx, reports) = super::output::report_channel();
        tokio::spawn(super::output::read_stdout(stdout, tx, self.journal.clone()));
        tokio::spawn(super::output::read_stderr(stderr, self.journal.clone()));
        let mut running = Running {
            stdin,
            reports,
            _child: child,
        };
        let until = Instant::now() + READY_WAIT;
        loop {
            match timeout_at(until, running.reports.recv()).await {
                Ok(Some(r)) if r.report == ReportKind::Ready => {
                    self.note(&r);
                    return Ok(running);
                }
                Ok(Some(r)) => self.note(&r),
                Ok(None) => anyhow::bail!(
                    "willy's driver {} ended before it was ready (its stderr is in the log)",
                    self.scenario.client
                ),
                Err(_) => anyhow::bail!(
                    "willy's driver {} was not ready within {} s",
                    self.scenario.client,
                    READY_WAIT.as_secs()
                ),
            }
        }
    }

    /// Run every cycle; a driver that cannot start ends willy with a note (the runner's
    /// checks then find no willy).
    pub async fn run(self) {
        let mut running = match self.start().await {
            Ok(r) => r,
            Err(e) => {
                self.journal.record(
                    Actor::Runner,
                    Event::Note {
                        message: format!("{e:#}"),
                    },
                );
                return;
            }
        };
        let s = &self.scenario;
        for cycle in 1..=s.cycles {
            self.cycle.store(cycle, Ordering::SeqCst);
            self.record(Event::CycleStarted { cycle });
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.one_connection(&mut running, cycle, attempt).await {
                    Ok(()) => break,
                    Err(Lost(error)) => {
                        self.record(Event::ConnectionFailed { error });
                        sleep(s.reconnect).await;
                    }
                }
            }
            if cycle < s.cycles {
                sleep(s.idle).await;
            }
        }
        let _ = running
            .stdin
            .write_all(Command::Quit.line().as_bytes())
            .await;
        self.record(Event::Note {
            message: format!("all {} cycles done", s.cycles),
        });
    }

    async fn send(&self, r: &mut Running, c: &Command) -> Result<(), Lost> {
        r.stdin
            .write_all(c.line().as_bytes())
            .await
            .map_err(|e| Lost(format!("willy's driver stopped reading its commands: {e}")))
    }

    /// Wait until a report `done` accepts; a lost connection, the driver's end or the
    /// deadline is a [`Lost`].
    async fn until(
        &self,
        r: &mut Running,
        what: &str,
        limit: Duration,
        done: impl Fn(&Report) -> bool,
    ) -> Result<Report, Lost> {
        let until = Instant::now() + limit;
        loop {
            match timeout_at(until, r.reports.recv()).await {
                Err(_) => {
                    return Err(Lost(format!(
                        "no {what} from the driver within {:.1} s",
                        limit.as_secs_f64()
                    )))
                }
                Ok(None) => return Err(Lost("willy's driver ended".to_string())),
                Ok(Some(rep)) => {
                    self.note(&rep);
                    if done(&rep) {
                        return Ok(rep);
                    }
                    if matches!(
                        rep.report,
                        ReportKind::ConnectionFailed
                            | ReportKind::Disconnected
                            | ReportKind::PublishFailed
                    ) {
                        return Err(Lost(rep.says));
                    }
                }
            }
        }
    }

    /// Let the connection be for `d`, noting what the driver says; a loss ends it.
    async fn stay(&self, r: &mut Running, d: Duration) -> Result<(), Lost> {
        let until = Instant::now() + d;
        loop {
            match timeout_at(until, r.reports.recv()).await {
                Err(_) => return Ok(()),
                Ok(None) => return Err(Lost("willy's driver ended".to_string())),
                Ok(Some(rep)) => {
                    self.note(&rep);
                    if matches!(
                        rep.report,
                        ReportKind::ConnectionFailed | ReportKind::Disconnected
                    ) {
                        return Err(Lost(rep.says));
                    }
                }
            }
        }
    }

    async fn publish(&self, r: &mut Running, payload: &str) -> Result<(), Lost> {
        self.send(
            r,
            &Command::Publish {
                topic: STATUS_TOPIC.to_string(),
                payload: payload.to_string(),
                qos: 0,
                retain: false,
            },
        )
        .await?;
        self.until(r, "published report", self.scenario.connect_timeout, |x| {
            x.report == ReportKind::Published
        })
        .await?;
        self.record(Event::Published {
            topic: STATUS_TOPIC.to_string(),
            payload: payload.to_string(),
        });
        Ok(())
    }

    async fn one_connection(&self, r: &mut Running, cycle: u32, attempt: u32) -> Result<(), Lost> {
        let s = &self.scenario;
        let will = s.will.as_ref().map(|w| WillCmd {
            topic: w.topic.clone(),
            payload: w.payload.clone(),
            qos: w.qos,
            retain: w.retain,
        });
        self.record(Event::Connecting {
            url: self.url.clone(),
            will: s
                .will
                .as_ref()
                .map(|w| format!("{{ topic: '{}', payload: '{}' }}", w.topic, w.payload)),
            attempt,
        });
        let login = crate::broker::access::login();
        self.send(
            r,
            &Command::Connect {
                url: self.url.clone(),
                client_id: "willy".to_string(),
                keepalive_s: s.keepalive.as_secs(),
                clean: s.clean_session,
                connect_timeout_ms: s.connect_timeout.as_millis() as u64,
                will,
                username: login.as_ref().map(|l| l.username.clone()),
                password: login.as_ref().and_then(|l| l.password.clone()),
                tls: self.tls.as_ref().map(super::protocol::TlsCmd::of),
            },
        )
        .await?;
        // The library's own connect timeout ends an attempt; ours only catches a driver that
        // says nothing at all.
        let connack = self
            .until(
                r,
                "connected or connection_failed report",
                s.connect_timeout + Duration::from_secs(5),
                |x| x.report == ReportKind::Connected,
            )
            .await?;
        self.record(Event::Connected {
            session_present: connack.session_present.unwrap_or(false),
        });
        (self.hook)(cycle, Trigger::Connected);

        self.publish(r, "true").await?;
        self.stay(r, s.connected_for).await?;
        (self.hook)(cycle, Trigger::BeforeFalse);
        self.publish(r, "false").await?;

        (self.hook)(cycle, Trigger::BeforeDisconnect);
        self.record(Event::DisconnectRequested);
        self.send(r, &Command::Disconnect).await?;
        self.until(r, "disconnect_returned report", DISCONNECT_WAIT, |x| {
            x.report == ReportKind::DisconnectReturned
        })
        .await?;
        self.record(Event::Disconnected);
        (self.hook)(cycle, Trigger::Disconnected);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--willy` puts a driver on a scenario the file gave rumqttc: a left-open cycle, which
    /// no driver command asks for, is refused before anything runs, naming the key and the fix.
    #[test]
    fn a_driver_is_refused_a_left_open_cycle_naming_the_key() {
        let mut s = crate::scenario::load("left-open-takeover").unwrap();
        assert_eq!(unsupported(&s), None);
        s.client = "mqttjs".parse().unwrap();
        let why = unsupported(&s).unwrap();
        assert!(why.contains("[willy] leave_open"), "{why}");
        assert!(why.contains("--willy rumqttc"), "{why}");
    }
}
