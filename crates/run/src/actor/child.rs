//! willy in a child process, for the faults that act on a process rather than on the network:
//! `crash` (SIGKILL: the kernel closes its sockets) and `freeze` (SIGSTOP until SIGCONT).
//!
//! ```text
//!  runner --spawn `unplug willy-child` (same binary, hidden)--> child
//!     stdin:  one JSON line (Setup), then one "go" line per moment, once the runner acted on it
//!     stdout: one JSON line per message: a journal Record, or a Moment that waits for its "go"
//!  runner: Record -> its own journal as a willy line (stamped on arrival);
//!          Moment -> FaultPlan (a "before-*" fault is in place before willy goes on) -> "go"
//! ```
//!
//! The child dies with the runner (PR_SET_PDEATHSIG, kill_on_drop) and is always waited for.
//! Only scenarios with a crash or freeze fault use it; others keep willy in the runner.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::willy::{Target, Willy};
use super::MomentHook;
use crate::event::{Actor, Event, Journal, Record};
use crate::scenario::{Scenario, Trigger};

/// What the child needs to run willy: the first line on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    pub scenario: Scenario,
    pub target: Target,
    /// The cycle to start at (a restart after a crash goes on with the next one).
    pub first_cycle: u32,
    /// The run's login (only ever on this pipe, never on the command line or in a file).
    #[serde(default)]
    pub login: Option<crate::broker::url::Login>,
}

/// A moment of willy's cycle, sent to the runner; the child waits for "go".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moment {
    pub moment_cycle: u32,
    pub moment: Trigger,
}

/// Collects one line and writes it whole under the lock at `flush`, so records and moments
/// never interleave on the pipe.
struct LineOut {
    buf: Vec<u8>,
    out: Arc<Mutex<std::io::Stdout>>,
}

impl Write for LineOut {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let mut o = self.out.lock().unwrap_or_else(|p| p.into_inner());
        o.write_all(&self.buf)?;
        self.buf.clear();
        o.flush()
    }
}

/// The hidden `willy-child` subcommand: read the setup, run willy, report everything on stdout.
pub fn child_main() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the setup line")?;
    let setup: Setup = serde_json::from_str(&line).context("the setup line is not JSON")?;
    crate::broker::access::set_login(setup.login.clone());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let journal = Journal::streaming(Box::new(LineOut {
        buf: Vec::new(),
        out: out.clone(),
    }));
    let hook: MomentHook = Arc::new(move |cycle, trigger| {
        let msg = serde_json::to_string(&Moment {
            moment_cycle: cycle,
            moment: trigger,
        })
        .expect("a moment serializes");
        {
            let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(o, "{msg}");
            let _ = o.flush();
        }
        // Wait until the runner has acted on it (a fault due "before false" is in place).
        tokio::task::block_in_place(|| {
            let mut ack = String::new();
            let _ = std::io::stdin().lock().read_line(&mut ack);
        });
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(
        Willy {
            scenario: setup.scenario,
            target: setup.target,
            journal,
            hook,
            cycle: Arc::new(AtomicU32::new(setup.first_cycle)),
            first_cycle: setup.first_cycle,
        }
        .run(),
    );
    Ok(())
}

/// Run willy as child processes until its cycles are done: from cycle 1, and again from the
/// next cycle after a crash when `restart` says so. `pid` holds the live child's pid (0 when
/// none) for the faults to signal.
pub async fn drive(
    scenario: Scenario,
    target: Target,
    journal: Journal,
    hook: MomentHook,
    cycle: Arc<AtomicU32>,
    pid: Arc<AtomicU32>,
    restart: bool,
) {
    let mut first = 1;
    loop {
        let last = match one_child(&scenario, &target, first, &journal, &hook, &cycle, &pid).await {
            Ok(last) => last,
            Err(e) => {
                journal.record(
                    Actor::Runner,
                    Event::Note {
                        message: format!("willy's process: {e:#}"),
                    },
                );
                return;
            }
        };
        match last {
            Some(c) if restart && c < scenario.cycles => {
                first = c + 1;
                journal.record(
                    Actor::Runner,
                    Event::Note {
                        message: format!("restarting willy's process for cycle {first}"),
                    },
                );
                tokio::time::sleep(scenario.idle).await;
            }
            _ => return,
        }
    }
}

/// One child from `first`: Some(cycle it was in) when it was killed, None when it ended.
async fn one_child(
    scenario: &Scenario,
    target: &Target,
    first: u32,
    journal: &Journal,
    hook: &MomentHook,
    cycle: &AtomicU32,
    pid: &AtomicU32,
) -> anyhow::Result<Option<u32>> {
    let exe = std::env::current_exe().context("finding this program's own path")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("willy-child")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    // Dies with the runner even if the runner is SIGKILLed (and even while SIGSTOPped).
    crate::lifeline::die_with_parent(&mut cmd, nix::sys::signal::Signal::SIGKILL);
    let mut child = cmd.spawn().context("starting willy's process")?;
    let child_pid = child.id().unwrap_or(0);
    pid.store(child_pid, Ordering::SeqCst);
    journal.record(
        Actor::Runner,
        Event::Note {
            message: format!("willy runs as process {child_pid} from cycle {first}"),
        },
    );
    let mut stdin = child.stdin.take().context("the child's stdin")?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let setup = serde_json::to_string(&Setup {
        scenario: scenario.clone(),
        target: target.clone(),
        first_cycle: first,
        login: crate::broker::access::login(),
    })?;
    stdin.write_all(format!("{setup}\n").as_bytes()).await?;
    let mut lines = BufReader::new(stdout).lines();
    let mut in_cycle = first;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(m) = serde_json::from_str::<Moment>(&line) {
            hook(m.moment_cycle, m.moment);
            // A child killed meanwhile does not read it; that is fine.
            let _ = stdin.write_all(b"go\n").await;
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(r) => {
                if let Event::CycleStarted { cycle: c } = r.event {
                    in_cycle = c;
                    cycle.store(c, Ordering::SeqCst);
                }
                journal.record(Actor::Willy, r.event);
            }
            Err(_) => journal.record(
                Actor::Runner,
                Event::Note {
                    message: format!("willy's process said: {line}"),
                },
            ),
        }
    }
    let status = child.wait().await.context("waiting for willy's process")?;
    pid.store(0, Ordering::SeqCst);
    use std::os::unix::process::ExitStatusExt;
    if status.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32) {
        journal.record(
            Actor::Runner,
            Event::Note {
                message: format!("willy's process {child_pid} was killed in cycle {in_cycle}"),
            },
        );
        return Ok(Some(in_cycle));
    }
    if !status.success() {
        journal.record(
            Actor::Runner,
            Event::Note {
                message: format!("willy's process {child_pid} ended: {status}"),
            },
        );
    }
    Ok(None)
}
