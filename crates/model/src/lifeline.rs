//! Child processes die with their parent; SIGINT and SIGTERM end a run (or a suite) in order.
//!
//! ```text
//!  parent --fork--> child: prctl(PR_SET_PDEATHSIG, sig); getppid() == parent? else fail --> exec
//!  parent dies (even SIGKILL) --kernel--> sig to the child
//!
//!  Interrupts::listen(): SIGINT, SIGTERM --> one watch channel (the first signal wins)
//!      runner: ends the run, judges, writes NAME.incomplete.*, exits 128 + signal
//!      suite:  forwards the signal to its children, waits for them, exits 128 + signal
//! ```
//!
//! The parent-death signal belongs to the *thread* that forked, not the process: spawn from a
//! thread that lives as long as the child should (the runner's main thread or a tokio worker,
//! never a blocking-pool thread, which exits when idle). It also survives exec, but not a change
//! of credentials (a setuid binary, or mosquitto dropping to its own user).

use nix::sys::signal::Signal;

/// Make `cmd`'s child receive `sig` when this thread ends, and fail to start if this process
/// is already gone by the time the child could ask (the check closes the race between fork and
/// prctl).
pub fn die_with_parent(cmd: &mut tokio::process::Command, sig: Signal) {
    let hook = hook(sig);
    // SAFETY: the hook makes only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// [`die_with_parent`] for a `std::process::Command`.
pub fn die_with_parent_std(cmd: &mut std::process::Command, sig: Signal) {
    use std::os::unix::process::CommandExt;
    let hook = hook(sig);
    // SAFETY: as above.
    unsafe {
        cmd.pre_exec(hook);
    }
}

fn hook(sig: Signal) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    let parent = nix::unistd::getpid();
    move || {
        nix::sys::prctl::set_pdeathsig(sig).map_err(std::io::Error::from)?;
        // The parent may have died before the line above took effect: then no signal comes.
        if nix::unistd::getppid() != parent {
            return Err(std::io::Error::other(
                "the parent exited while starting its child",
            ));
        }
        Ok(())
    }
}

/// The exit code of a process ended by `sig`, as a shell reports it: 130 for SIGINT, 143 for
/// SIGTERM.
pub fn exit_code(sig: Signal) -> u8 {
    128 + sig as i32 as u8
}

/// The first SIGINT or SIGTERM this process got, once listening. Cheap to clone.
#[derive(Clone)]
pub struct Interrupts {
    rx: tokio::sync::watch::Receiver<Option<Signal>>,
}

impl Interrupts {
    /// Start listening (inside a tokio runtime). From now on neither signal ends the process
    /// by itself: whoever holds this decides.
    pub fn listen() -> std::io::Result<Interrupts> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let first = tokio::select! {
                _ = int.recv() => Signal::SIGINT,
                _ = term.recv() => Signal::SIGTERM,
            };
            let _ = tx.send(Some(first));
            // Keep the handlers: a second signal while the run ends in order is ignored.
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
        });
        Ok(Interrupts { rx })
    }

    /// The signal, if one came.
    pub fn received(&self) -> Option<Signal> {
        *self.rx.borrow()
    }

    /// Wait for a signal (at once if one already came).
    pub async fn wait(&self) -> Signal {
        let mut rx = self.rx.clone();
        let got = rx.wait_for(|s| s.is_some()).await.map(|s| *s);
        match got {
            Ok(s) => s.expect("waited for Some"),
            // The listener is gone (the runtime is shutting down): no signal will come.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        assert_eq!(exit_code(Signal::SIGINT), 130);
        assert_eq!(exit_code(Signal::SIGTERM), 143);
    }

    #[test]
    fn a_child_started_with_a_lifeline_runs_normally() {
        let mut cmd = std::process::Command::new("true");
        die_with_parent_std(&mut cmd, Signal::SIGKILL);
        assert!(cmd.status().unwrap().success());
    }
}
