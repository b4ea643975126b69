//! Many runs at once: each scenario in a child process of this same binary (one broker per
//! process, and a crash stays in its child), a bounded number at a time, then one table.
//!
//! ```text
//!  suite --spawn--> unplug scenario A --out DIR --quiet   --> DIR/A.summary.json
//!        --spawn--> unplug scenario B ...                  --> DIR/B.summary.json
//!        <--read back every summary--  table on stdout + DIR/SUITE.md
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{table, Summary};

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

/// How one child ended.
pub struct ChildRun {
    /// The name of its files (`NAME.summary.json`).
    pub name: String,
    pub exit: Option<i32>,
    pub summary: Option<Summary>,
    /// The child's stderr, when it failed as a harness (exit 2, or no summary).
    pub error: String,
}

/// Run `unplug scenario NAME --out DIR --quiet EXTRA...` for each name, `jobs` at a time.
pub async fn run_children(
    names: &[String],
    out: &Path,
    jobs: usize,
    extra: &[String],
    progress: bool,
) -> anyhow::Result<Vec<ChildRun>> {
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
/// `progress`, a bar on stderr counts the finished runs and names the last one.
pub async fn run_specs(
    specs: &[ChildSpec],
    out: &Path,
    jobs: usize,
    progress: bool,
) -> anyhow::Result<Vec<ChildRun>> {
    let exe = std::env::current_exe().context("finding this program's own path")?;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let bar = if progress {
        runs_bar(specs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    let mut handles = Vec::new();
    for spec in specs {
        let (exe, out, spec, sem) = (exe.clone(), out.to_path_buf(), spec.clone(), sem.clone());
        let bar = bar.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let run = run_child(&exe, &spec, &out).await;
            if let Ok(r) = &run {
                let verdict = match &r.summary {
                    Some(s) if s.pass => "pass",
                    Some(_) => "FAIL",
                    None => "no summary",
                };
                bar.set_message(format!("last done: {} ({verdict})", r.name));
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
    Ok(runs)
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

async fn run_child(exe: &PathBuf, spec: &ChildSpec, out: &Path) -> anyhow::Result<ChildRun> {
    let name = spec.scenario.as_str();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("scenario")
        .arg(name)
        .arg("--out")
        .arg(out)
        .arg("--quiet");
    if let Some(n) = &spec.output_name {
        cmd.arg("--name").arg(n);
    }
    let output = cmd
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A suite that is interrupted must not leave children running.
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("starting {} for scenario {name}", exe.display()))?;
    let stem = match &spec.output_name {
        Some(n) => n.clone(),
        None => Path::new(name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(name)
            .to_string(),
    };
    let summary = Summary::read(&out.join(format!("{stem}.summary.json"))).ok();
    Ok(ChildRun {
        name: stem,
        exit: output.status.code(),
        summary,
        error: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// The table of a suite's runs (a row per run; a run without a summary says why).
pub fn table_rows(runs: &[ChildRun]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|r| match &r.summary {
            Some(s) => table::suite_row(s),
            None => {
                let mut row = vec![r.name.clone()];
                row.resize(table::SUITE_HEADER.len() - 1, "-".to_string());
                row.push(format!(
                    "ERROR (exit {})",
                    r.exit.map_or("signal".to_string(), |c| c.to_string())
                ));
                row
            }
        })
        .collect()
}
