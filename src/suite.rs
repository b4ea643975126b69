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

use crate::report::{table, Summary};

/// How one child ended.
pub struct ChildRun {
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
) -> anyhow::Result<Vec<ChildRun>> {
    let exe = std::env::current_exe().context("finding this program's own path")?;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut handles = Vec::new();
    for name in names {
        let (exe, out, name, extra, sem) = (
            exe.clone(),
            out.to_path_buf(),
            name.clone(),
            extra.to_vec(),
            sem.clone(),
        );
        handles.push(tokio::spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            run_child(&exe, &name, &out, &extra).await
        }));
    }
    let mut runs = Vec::new();
    for h in handles {
        runs.push(h.await.context("a suite task panicked")??);
    }
    Ok(runs)
}

async fn run_child(
    exe: &PathBuf,
    name: &str,
    out: &Path,
    extra: &[String],
) -> anyhow::Result<ChildRun> {
    let output = tokio::process::Command::new(exe)
        .arg("scenario")
        .arg(name)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A suite that is interrupted must not leave children running.
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("starting {} for scenario {name}", exe.display()))?;
    let stem = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name)
        .to_string();
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
