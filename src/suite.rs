//! Many runs at once: each scenario in a child process of this same binary (one broker per
//! process, and a crash stays in its child), a bounded number at a time, then one table.
//!
//! ```text
//!  suite --spawn--> unplug scenario A --out DIR --quiet --run-id ID-0 --> DIR/A.summary.json
//!        --spawn--> unplug scenario B ...           --run-id ID-1 --> DIR/B.summary.json
//!        <--read back each summary the child wrote (exit 0/1, its run id)--
//!        table on stdout + DIR/SUITE.md (+ --junit, --json)
//!  SIGINT/SIGTERM --> the same signal to every running child, no new ones; wait for them
//!  the suite dies (even SIGKILL) --> PR_SET_PDEATHSIG: SIGTERM to every child
//! ```
//!
//! A summary is read only from a child that exited 0 or 1 and only if it carries the run id
//! this suite gave that child: a failed child leaves the previous run's summary in place (its
//! own files are NAME.incomplete.*), and that stale verdict must never show.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nix::sys::signal::Signal;

use crate::lifeline::Interrupts;
pub use crate::report::batch::{last_line, Batch, ChildRun, RunStatus};
use crate::report::{table, Summary};

/// How long an interrupted child gets to end its run in order before it is killed: a run
/// stops mosquitto (up to 4 s) and writes its files.
const CHILD_GRACE: Duration = Duration::from_secs(20);

/// One child to run: `unplug scenario SCENARIO --out DIR --quiet [--name NAME] ARGS...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    /// A built-in scenario name or a path.
    pub scenario: String,
    /// The name its files get (`--name`), so runs of one scenario on different brokers or
    /// transports do not overwrite each other; None keeps the scenario's own name.
    pub output_name: Option<String>,
    /// Arguments for this child alone (`--broker ...`, `--transport ...`, timing).
    pub args: Vec<String>,
}

/// Run `unplug scenario NAME --out DIR --quiet EXTRA...` for each name, `jobs` at a time.
pub async fn run_children(
    names: &[String],
    out: &Path,
    jobs: usize,
    extra: &[String],
    progress: bool,
) -> anyhow::Result<Batch> {
    let specs: Vec<ChildSpec> = names
        .iter()
        .map(|n| ChildSpec {
            scenario: n.clone(),
            output_name: None,
            args: extra.to_vec(),
        })
        .collect();
    run_specs(&specs, out, jobs, progress).await
}

/// Run each spec as a child, `jobs` at a time; the results in the specs' order. With
/// `progress`, a bar on stderr counts the finished runs and names the last one. SIGINT or
/// SIGTERM is passed on to the running children; those not started yet are not run.
pub async fn run_specs(
    specs: &[ChildSpec],
    out: &Path,
    jobs: usize,
    progress: bool,
) -> anyhow::Result<Batch> {
    let exe = std::env::current_exe().context("finding this program's own path")?;
    let interrupts = Interrupts::listen().context("listening for SIGINT and SIGTERM")?;
    // Unique per batch, also for two batches of one process started in the same microsecond.
    static BATCHES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let batch_id = format!(
        "{}-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id(),
        BATCHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let bar = if progress {
        runs_bar(specs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    let mut handles = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        // Runs start in the order given, `jobs` at a time; none after a signal.
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => Some(p.expect("the semaphore is never closed")),
            _ = interrupts.wait() => None,
        };
        let (exe, out, spec) = (exe.clone(), out.to_path_buf(), spec.clone());
        let (bar, interrupts) = (bar.clone(), interrupts.clone());
        let run_id = format!("{batch_id}-{i}");
        handles.push(tokio::spawn(async move {
            let run = match permit {
                Some(_permit) if interrupts.received().is_none() => {
                    run_child(&exe, &spec, &out, &run_id, &interrupts).await
                }
                _ => Ok(not_run(&spec)),
            };
            if let Ok(r) = &run {
                bar.set_message(format!("last done: {} ({})", r.name, r.status_word()));
            }
            bar.inc(1);
            run
        }));
    }
    let mut runs = Vec::new();
    for h in handles {
        runs.push(h.await.context("a suite task panicked")??);
    }
    bar.finish_and_clear();
    Ok(Batch {
        runs,
        interrupted: interrupts.received(),
    })
}

/// The name a spec's files get.
fn stem_of(spec: &ChildSpec) -> String {
    match &spec.output_name {
        Some(n) => n.clone(),
        None => Path::new(&spec.scenario)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&spec.scenario)
            .to_string(),
    }
}

fn not_run(spec: &ChildSpec) -> ChildRun {
    ChildRun {
        name: stem_of(spec),
        exit: None,
        summary: None,
        error: String::new(),
        status: RunStatus::NotRun,
    }
}

fn runs_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "[{bar:24}] {pos}/{len} runs | {elapsed} elapsed, about {eta} to go | {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    // The bar moves only when a run ends: tick so the clock keeps moving in between.
    bar.enable_steady_tick(std::time::Duration::from_millis(500));
    bar
}

async fn run_child(
    exe: &PathBuf,
    spec: &ChildSpec,
    out: &Path,
    run_id: &str,
    interrupts: &Interrupts,
) -> anyhow::Result<ChildRun> {
    let name = spec.scenario.as_str();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("scenario")
        .arg(name)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .arg("--run-id")
        .arg(run_id);
    if let Some(n) = &spec.output_name {
        cmd.arg("--name").arg(n);
    }
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A suite task that is dropped must not leave its child running.
        .kill_on_drop(true);
    // A suite that dies, even by SIGKILL, ends its children: SIGTERM, so each ends its run in
    // order (its broker stopped, its files kept as NAME.incomplete.*).
    crate::lifeline::die_with_parent(&mut cmd, Signal::SIGTERM);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {} for scenario {name}", exe.display()))?;
    let pid = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    let output = child.wait_with_output();
    tokio::pin!(output);
    let output = tokio::select! {
        o = &mut output => o,
        sig = interrupts.wait() => {
            // Pass the signal on, give the run its time to end in order, then kill it.
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(pid, sig);
            }
            match tokio::time::timeout(CHILD_GRACE, &mut output).await {
                Ok(o) => o,
                Err(_) => {
                    if let Some(pid) = pid {
                        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    }
                    output.await
                }
            }
        }
    }
    .with_context(|| format!("waiting for the run of {name}"))?;
    let stem = stem_of(spec);
    let error = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let status = judge_exit(
        output.status,
        &out.join(format!("{stem}.summary.json")),
        run_id,
        &error,
    );
    let (status, summary) = match status {
        Ok(s) => (RunStatus::Finished, Some(s)),
        Err(st) => (st, None),
    };
    Ok(ChildRun {
        name: stem,
        exit: output.status.code(),
        summary,
        error,
        status,
    })
}

/// What a child's exit says, and the summary it wrote if it finished: a summary is taken only
/// from a child that exited 0 or 1, and only if it carries the run id the child was given.
fn judge_exit(
    status: std::process::ExitStatus,
    summary_path: &Path,
    run_id: &str,
    stderr: &str,
) -> Result<Summary, RunStatus> {
    use std::os::unix::process::ExitStatusExt;
    let signal_name =
        |n: i32| Signal::try_from(n).map_or(format!("signal {n}"), |s| s.as_str().to_string());
    match (status.code(), status.signal()) {
        (Some(0 | 1), _) => {}
        (Some(c), _) if c > 128 => return Err(RunStatus::Interrupted(signal_name(c - 128))),
        (Some(c), _) => {
            let why = last_line(stderr);
            // Ours and clap's errors both start `error: ` (older binaries: `unplug: error: `).
            let why = why
                .strip_prefix("unplug: error: ")
                .or_else(|| why.strip_prefix("error: "))
                .unwrap_or(why);
            return Err(RunStatus::Error(format!("exit {c}: {why}")));
        }
        (None, Some(sig)) => return Err(RunStatus::Interrupted(signal_name(sig))),
        (None, None) => return Err(RunStatus::Error("ended without an exit code".into())),
    }
    let summary = Summary::read(summary_path).map_err(|e| {
        RunStatus::Error(format!("exit {}, but {e:#}", status.code().unwrap_or(-1)))
    })?;
    if summary.run_id != run_id || !summary.complete() {
        return Err(RunStatus::Error(format!(
            "{} is not this run's (run id {:?}, expected {run_id:?})",
            summary_path.display(),
            summary.run_id
        )));
    }
    Ok(summary)
}

/// A suite's plan as a shard records it (`--partition`): one run per scenario on `broker`.
pub fn planned(names: &[String], broker: &str) -> Vec<crate::shard::PlannedRun> {
    names
        .iter()
        .map(|n| {
            let name = stem_of(&ChildSpec {
                scenario: n.clone(),
                output_name: None,
                args: Vec::new(),
            });
            crate::shard::PlannedRun {
                shown: name.clone(),
                name,
                scenario: n.clone(),
                broker: broker.to_string(),
                transport: "-".to_string(),
                picture: (broker.to_string(), "-".to_string()),
            }
        })
        .collect()
}

/// The table of a suite's runs (a row per run; a run without a verdict says why).
pub fn table_rows(runs: &[ChildRun]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|r| match (&r.summary, r.problem()) {
            (Some(s), None) => table::suite_row(s),
            (_, problem) => {
                let mut row = vec![r.name.clone()];
                row.resize(table::SUITE_HEADER.len() - 1, "-".to_string());
                row.push(problem.unwrap_or_default());
                row
            }
        })
        .collect()
}

/// `spec` N times, each with its own file name (`NAME.r1` .. `NAME.rN`: `--repeat`).
pub fn repeated_specs(spec: &ChildSpec, name: &str, n: u32) -> Vec<ChildSpec> {
    (1..=n)
        .map(|k| ChildSpec {
            output_name: Some(crate::repeat::run_name(name, k)),
            ..spec.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn summary_file(dir: &Path, run_id: &str) -> PathBuf {
        let mut s = Summary::blank("b", 1.0);
        s.run_id = run_id.to_string();
        s.write(dir).unwrap();
        dir.join("ws-last-will.summary.json")
    }

    #[test]
    fn a_summary_is_read_only_from_a_child_that_finished_and_wrote_it() {
        let d = tempfile::tempdir().unwrap();
        let path = summary_file(d.path(), "old-run");
        let exited = |c: i32| std::process::ExitStatus::from_raw(c << 8);
        // The previous run's pass, beside a child that failed: an error, never that pass.
        let e = judge_exit(exited(2), &path, "new-run", "unplug: error: no broker").unwrap_err();
        assert_eq!(e, RunStatus::Error("exit 2: no broker".into()));
        // Exit 0, but the summary is not the one this child was asked to write.
        let e = judge_exit(exited(0), &path, "new-run", "").unwrap_err();
        assert!(
            matches!(e, RunStatus::Error(ref m) if m.contains("not this run's")),
            "{e:?}"
        );
        assert_eq!(
            judge_exit(exited(143), &path, "new-run", "").unwrap_err(),
            RunStatus::Interrupted("SIGTERM".into())
        );
        assert_eq!(
            judge_exit(std::process::ExitStatus::from_raw(9), &path, "new-run", "").unwrap_err(),
            RunStatus::Interrupted("SIGKILL".into())
        );
        assert!(judge_exit(exited(0), &path, "old-run", "").is_ok());
    }
}
