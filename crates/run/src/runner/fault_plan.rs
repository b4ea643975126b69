//! The fault plan: which fault fires at which of willy's and monit's moments, and its heal.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;

use crate::event::{Actor, Event};
use crate::proxy::Proxy;
use crate::scenario::{Fault, FaultKind, Scenario, Trigger};

/// Which faults have fired, so each fires once, at the first moment that matches it.
pub(super) struct FaultPlan {
    pub(super) scenario: Scenario,
    pub(super) proxy: Arc<Proxy>,
    pub(super) fired: Mutex<Vec<bool>>,
    /// willy's process while it runs as a child (crash, freeze); 0 when in-process or gone.
    pub(super) willy_pid: Arc<AtomicU32>,
    /// willy's network namespace, when a fault cuts in the kernel.
    pub(super) netns: Option<Arc<crate::kernelcut::Netns>>,
}

impl FaultPlan {
    /// Put fault `n` into effect: on the network (the proxy) or on willy's process. The proxy
    /// records every fault, with when willy's bytes last went through.
    pub(super) fn apply(&self, n: u32, f: &Fault) {
        if let (true, Some(ns)) = (f.layer.in_kernel(), &self.netns) {
            super::kernel::apply(&self.proxy, ns, n, f);
            return;
        }
        self.proxy.apply(n, &f.kind, f.new_connections);
        match f.kind {
            FaultKind::Crash { .. } => self.signal(Signal::SIGKILL),
            FaultKind::Freeze => self.signal(Signal::SIGSTOP),
            _ => {}
        }
    }

    /// Lift fault `n` alone.
    pub(super) fn heal(&self, n: u32, f: &Fault) {
        if f.kind == FaultKind::Freeze {
            self.signal(Signal::SIGCONT);
        }
        if let (true, Some(ns)) = (f.layer.in_kernel(), &self.netns) {
            super::kernel::heal(&self.proxy, ns, n, f);
            return;
        }
        self.proxy.heal(n);
    }

    pub(super) fn signal(&self, sig: Signal) {
        let pid = self.willy_pid.load(Ordering::SeqCst);
        let journal = self.proxy.journal();
        if pid == 0 {
            journal.record(
                Actor::Runner,
                Event::Note {
                    message: format!("no willy process to send {sig} to"),
                },
            );
            return;
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig) {
            Ok(()) => journal.record(
                Actor::Runner,
                Event::ProcessSignalled {
                    pid,
                    signal: sig.as_str().to_string(),
                },
            ),
            Err(e) => journal.record(
                Actor::Runner,
                Event::Note {
                    message: format!("cannot send {sig} to willy's process {pid}: {e}"),
                },
            ),
        }
    }

    pub(super) fn on_moment(self: &Arc<Self>, cycle: u32, trigger: Trigger) {
        let mut fired = self.fired.lock().unwrap_or_else(|p| p.into_inner());
        for (i, f) in self.scenario.faults.iter().enumerate() {
            if fired[i] || f.cycle != cycle || f.trigger != trigger {
                continue;
            }
            fired[i] = true;
            let plan = self.clone();
            let fault = f.clone();
            let n = i as u32 + 1;
            let apply = move || {
                plan.apply(n, &fault);
                if let Some(h) = fault.heal_after {
                    let plan = plan.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(h).await;
                        plan.heal(n, &fault);
                    });
                }
            };
            if f.after.is_zero() {
                apply();
            } else {
                let after = f.after;
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    apply();
                });
            }
        }
    }
}
