//! Many child runs: running them (a broker given by URL shared one run at a time), their
//! comparison picture, the note over an interrupted batch's table, and their exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;

use unplug::compare;
use unplug::scenario;
use unplug::suite;

use super::args::write_file;

/// Each scenario's own transport; loading them all first refuses a bad name before any run.
pub fn own_transports(
    scenarios: &[String],
) -> anyhow::Result<std::collections::HashMap<String, scenario::Transport>> {
    let mut own = std::collections::HashMap::new();
    for n in scenarios {
        own.insert(n.clone(), scenario::load(n)?.transport);
    }
    Ok(own)
}

/// Run each cell as a child run into `out`, `jobs` at a time.
pub fn run_cells(
    cells: &[compare::Cell],
    out: &std::path::Path,
    jobs: u16,
) -> anyhow::Result<suite::Batch> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    if std::io::stderr().is_terminal() {
        eprintln!("running {} runs, {jobs} at a time ...", cells.len());
    }
    let specs: Vec<_> = cells.iter().map(|c| c.spec.clone()).collect();
    rt.block_on(run_specs_sharing(&specs, out, jobs))
}

/// Run child specs `jobs` at a time, except that runs on a broker given by URL go one at a
/// time: they share that broker, and two runs at once would take over each other's client ids
/// ("willy", "monit") and hear each other's messages. A broker we start is each run's own.
pub async fn run_specs_sharing(
    specs: &[suite::ChildSpec],
    out: &std::path::Path,
    jobs: u16,
) -> anyhow::Result<suite::Batch> {
    let shared = |s: &suite::ChildSpec| {
        s.args
            .windows(2)
            .any(|w| w[0] == "--broker" && w[1].contains("://"))
    };
    let (own, url): (Vec<_>, Vec<_>) = specs.iter().cloned().partition(|s| !shared(s));
    if !url.is_empty() && std::io::stderr().is_terminal() {
        eprintln!(
            "{} runs on a broker given by URL go one at a time (they share it)",
            url.len()
        );
    }
    let progress = show_progress();
    let (own_runs, url_runs) = tokio::join!(
        suite::run_specs(&own, out, jobs as usize, progress),
        suite::run_specs(&url, out, 1, progress && own.is_empty()),
    );
    let (own_runs, url_runs) = (own_runs?, url_runs?);
    let interrupted = own_runs.interrupted.or(url_runs.interrupted);
    let (mut own_runs, mut url_runs) = (own_runs.runs.into_iter(), url_runs.runs.into_iter());
    let runs = specs
        .iter()
        .filter_map(|s| {
            if shared(s) {
                url_runs.next()
            } else {
                own_runs.next()
            }
        })
        .collect();
    Ok(suite::Batch { runs, interrupted })
}

/// Progress bars only for a person watching: stdout and stderr both a terminal.
pub fn show_progress() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// The comparison picture of many child runs: a finished run's bars, or why a run has none.
/// `labels` gives each run's broker and transport for a row without a summary.
pub fn write_picture(
    path: &std::path::Path,
    title: &str,
    runs: &[suite::ChildRun],
    labels: &[(String, String)],
) -> anyhow::Result<()> {
    use unplug::report::svg::CompareRow;
    let rows: Vec<CompareRow> = runs
        .iter()
        .zip(labels)
        .map(|(r, (broker, transport))| match (&r.summary, r.problem()) {
            (Some(s), None) => CompareRow::Run(s),
            (_, problem) => CompareRow::Missing {
                name: &r.name,
                broker,
                transport,
                status: r.status_word(),
                reason: problem.unwrap_or_default(),
            },
        })
        .collect();
    write_file(
        path,
        &unplug::report::svg::render_compare_rows(title, &rows),
    )
}

/// Say on stderr what did not finish, and hand back the exit code of many child runs.
pub fn children_exit_code(batch: &suite::Batch) -> ExitCode {
    for r in &batch.runs {
        if let Some(p) = r.problem() {
            eprintln!("unplug: {}: {p}", r.name);
        }
    }
    if let Some(sig) = batch.interrupted {
        let done = batch.runs.iter().filter(|r| r.summary.is_some()).count();
        eprintln!(
            "unplug: interrupted ({}): {done} of {} runs finished; the tables show only those",
            sig.as_str(),
            batch.runs.len()
        );
    }
    ExitCode::from(batch.exit_code())
}

/// A line above a table whose batch was interrupted.
pub fn interrupted_note(batch: &suite::Batch) -> String {
    match batch.interrupted {
        Some(sig) => format!(
            "**Interrupted ({})**: only the runs that finished have a verdict.\n\n",
            sig.as_str()
        ),
        None => String::new(),
    }
}
