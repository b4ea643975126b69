//! `unplug merge OUT SHARD_DIR...`: the shards of one `suite`, `compare` or `conformance`
//! (`--partition K/N`, each with its SHARD.json) put back together as one batch: the same
//! table, picture, `--json`/`--junit` and index one unpartitioned run would give.
//!
//! ```text
//! SHARD_DIR/SHARD.json (plan, own runs) --shard::assemble--> one plan, each run's shard
//!   (other plans, a run twice: exit 2; runs in no shard: exit 2 unless --allow-missing)
//! SHARD_DIR/NAME.* --copied--> OUT/NAME.*;  summaries (their run ids checked) --> Batch
//! Batch --the commands' own table and picture code--> OUT/{SUITE,COMPARE,CONFORMANCE}.md,
//!   OUT/{SUITE,COMPARE}.svg, --json/--junit, OUT/index.html; exit as the runs did
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use unplug::report::table;
use unplug::shard::{self, Manifest};
use unplug::suite;

use super::args::{print_table, write_file, MachineOut};
use super::children::{children_exit_code, interrupted_note, write_picture};

/// The flags of `unplug merge` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct MergeArgs {
    /// Where the merged table, picture, index and every run's files go (not a shard's own
    /// directory).
    out: PathBuf,
    /// The shards' output directories (`--out` of each `--partition K/N` run).
    #[arg(required = true, value_name = "SHARD_DIR")]
    shards: Vec<PathBuf>,
    /// Merge even when runs of the plan are in no shard given: they show as `missing` and do
    /// not count in the exit code.
    #[arg(long)]
    allow_missing: bool,
    #[command(flatten)]
    machine: MachineOut,
}

/// A run's files, as `NAME.KIND` or `NAME.incomplete.KIND` (see report::files).
const KINDS: [&str; 4] = ["log", "events.jsonl", "summary.json", "svg"];

/// `unplug merge`.
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let MergeArgs {
        out,
        shards,
        allow_missing,
        machine,
    } = args;
    machine.claim_stdout();
    let names: Vec<String> = shards.iter().map(|d| d.display().to_string()).collect();
    let manifests: Vec<Manifest> = shards
        .iter()
        .map(|d| Manifest::read(d))
        .collect::<anyhow::Result<_>>()?;
    if manifests.iter().any(unplug::fleet::merge::is_fleet) {
        return merge_fleet(&out, &shards, &manifests, &machine);
    }
    let assembly = shard::assemble(&manifests, &names)?;
    if manifests
        .iter()
        .any(|m| m.start_at != manifests[0].start_at)
    {
        eprintln!(
            "unplug: note: the shards were given different --start-at times (or none): their cuts were not together"
        );
    }
    let missing = assembly.missing();
    if !missing.is_empty() && !allow_missing {
        anyhow::bail!(missing_words(&assembly, &manifests));
    }
    out_apart(&out, &shards)?;
    let runs = gather_runs(&assembly, &shards, &out)?;
    let interrupted = manifests
        .iter()
        .filter_map(|m| m.interrupted.as_deref())
        .find_map(|s| s.parse::<nix::sys::signal::Signal>().ok());
    let batch = suite::Batch { runs, interrupted };
    let command = manifests[0].command.as_str();
    write_tables(&out, command, &assembly, &manifests[0], &names[0], &batch)?;
    machine.write(&batch, command)?;
    let index = unplug::report::index::write(
        &out,
        &format!("unplug {command}, merged from {} shards", manifests.len()),
    )?;
    eprintln!(
        "merged {} shards of `unplug {command}` ({} runs{}) into {}",
        manifests.len(),
        assembly.plan.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(", {} missing", missing.len())
        },
        index.display()
    );
    Ok(children_exit_code(&batch))
}

/// Why the merge stops when runs of the plan are in no shard given: which, and which shards
/// are not given.
fn missing_words(assembly: &shard::Assembly, manifests: &[Manifest]) -> String {
    let missing = assembly.missing();
    let n = manifests[0].partition.n;
    let given: Vec<u32> = manifests.iter().map(|m| m.partition.k).collect();
    let absent: Vec<String> = (1..=n)
        .filter(|k| !given.contains(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    format!(
        "{} of {} planned runs are in no shard given: {}{} (--allow-missing merges without them)",
        missing.len(),
        assembly.plan.len(),
        missing.join(", "),
        if absent.is_empty() {
            String::new()
        } else {
            format!("; shards not given: {}", absent.join(", "))
        }
    )
}

/// Every run back in the plan's order, its files copied from its shard into `out`, beside
/// the merged table; a run in no shard as missing.
fn gather_runs(
    assembly: &shard::Assembly,
    shards: &[PathBuf],
    out: &Path,
) -> anyhow::Result<Vec<suite::ChildRun>> {
    let mut runs = Vec::with_capacity(assembly.plan.len());
    for (p, owner) in assembly.plan.iter().zip(&assembly.owner) {
        match owner {
            Some((si, owned)) => {
                let dir = &shards[*si];
                let run = owned.child_run(dir)?;
                // A finished run's own files; of one that did not finish, only its incomplete
                // ones (a NAME.summary.json beside it is an older run's).
                let stem = match run.summary {
                    Some(_) => p.name.clone(),
                    None => unplug::report::files::incomplete_stem(&p.name),
                };
                copy_files(dir, out, &stem)?;
                runs.push(run);
            }
            None => runs.push(suite::ChildRun {
                name: p.name.clone(),
                exit: None,
                summary: None,
                error: String::new(),
                status: suite::RunStatus::Missing,
            }),
        }
    }
    Ok(runs)
}

/// The merged batch's table and picture into `out`, as `command` (the first shard's
/// manifest, `first`, in directory `first_dir`) writes them.
fn write_tables(
    out: &Path,
    command: &str,
    assembly: &shard::Assembly,
    first: &Manifest,
    first_dir: &str,
    batch: &suite::Batch,
) -> anyhow::Result<()> {
    let labels: Vec<(String, String)> = assembly.plan.iter().map(|p| p.picture.clone()).collect();
    match command {
        "suite" => super::batch::write_suite(out, batch, &labels)?,
        "compare" => {
            write_picture(
                &out.join("COMPARE.svg"),
                "unplug compare",
                &batch.runs,
                &labels,
            )?;
            let rows: Vec<Vec<String>> = assembly
                .plan
                .iter()
                .zip(&batch.runs)
                .map(|(p, r)| unplug::compare::row(&p.shown, &p.broker, &p.transport, r))
                .collect();
            print_table(&table::render_text(&table::COMPARE_HEADER, &rows));
            write_file(
                &out.join("COMPARE.md"),
                &(interrupted_note(batch) + &unplug::compare::markdown(&rows, &batch.runs)),
            )?;
        }
        "conformance" => {
            let columns = &first.columns;
            let placed: Vec<(String, Option<usize>)> = assembly
                .plan
                .iter()
                .map(|p| {
                    (
                        p.scenario.clone(),
                        columns.iter().position(|c| *c == p.broker),
                    )
                })
                .collect();
            super::batch::write_conformance(out, columns, &placed, batch)?;
        }
        other => anyhow::bail!("{first_dir}: unknown command {other:?} in its manifest"),
    }
    Ok(())
}

/// Create `out`, refusing it when it is one of the shards' own directories.
fn out_apart(out: &Path, shards: &[PathBuf]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out_real = out
        .canonicalize()
        .with_context(|| format!("resolving {}", out.display()))?;
    for d in shards {
        if d.canonicalize().ok().as_ref() == Some(&out_real) {
            anyhow::bail!(
                "{} is both a shard and the merge's output: merge into another directory",
                d.display()
            );
        }
    }
    Ok(())
}

/// The shards of one fleet (`scenario FLEET --partition K/N`): one fleet's summary, checks,
/// picture and FLEET.md from every willy's raw figures; exit 0 when every check holds, 1 when
/// one fails.
pub fn merge_fleet(
    out: &Path,
    shards: &[PathBuf],
    manifests: &[Manifest],
    machine: &MachineOut,
) -> anyhow::Result<ExitCode> {
    let merged = unplug::fleet::merge::merge(manifests, shards)?;
    out_apart(out, shards)?;
    unplug::fleet::merge::write(&merged, out)?;
    let s = &merged.summary;
    print!("{}", unplug::fleet::merge::markdown(&merged));
    let run = suite::ChildRun {
        name: s.scenario.clone(),
        exit: Some(i32::from(!s.pass)),
        summary: Some(s.clone()),
        error: String::new(),
        status: suite::RunStatus::Finished,
    };
    let batch = suite::Batch {
        runs: vec![run],
        interrupted: None,
    };
    machine.write(&batch, "merge")?;
    let index = unplug::report::index::write(
        out,
        &format!(
            "{}: a fleet merged from {} shards ({})",
            s.scenario,
            manifests.len(),
            unplug::fleet::merge::shard_dir_note(shards)
        ),
    )?;
    eprintln!(
        "merged {} shards of the fleet {} into {}: {}",
        manifests.len(),
        s.scenario,
        index.display(),
        s.verdict_word()
    );
    Ok(if s.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Copy a run's files (`STEM.KIND`) from a shard into `out`.
fn copy_files(from: &Path, out: &Path, stem: &str) -> anyhow::Result<()> {
    {
        for kind in KINDS {
            let file = format!("{stem}.{kind}");
            let src = from.join(&file);
            // Only regular files (never through a symlink a shard's artifact may carry).
            match std::fs::symlink_metadata(&src) {
                Ok(m) if m.file_type().is_file() => {
                    let bytes = std::fs::read(&src)
                        .with_context(|| format!("reading {}", src.display()))?;
                    let dst = out.join(&file);
                    unplug::fsx::write_atomic(&dst, &bytes)
                        .with_context(|| format!("writing {}", dst.display()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}
