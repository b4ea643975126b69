//! The commands that run nothing: `list`, `show`, `profiles`, `judge` (a saved run judged again),
//! `index` (the results page) and `sweep` (what killed kernel-cut runs left).
//!
//! ```text
//! built-in scenarios ---> list      (a table, or JSON)
//!                    ---> show      (one as a file to edit)
//! broker profiles    ---> profiles  (a table)
//! RUN.events.jsonl   ---> judge     (the checks and verdict; exit 0 or 1)
//! DIR of runs        ---> index     (DIR/index.html)
//! unplug-* netns     ---> sweep     (those of gone runs removed, each said)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use unplug::report::table;
use unplug::scenario;

/// The flags of `unplug list` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct ListArgs {
    /// JSON instead: one object per scenario (name, description, transport, protocol,
    /// keepalive_s, cycles, will, faults, expect_will), on stdout (`--json` or `--json -`) or
    /// to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
}

/// `unplug list`: the built-in scenarios, as a table or (`--json`) one object each.
pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    if let Some(to) = &args.json {
        let list: Vec<serde_json::Value> = scenario::BUILTIN
            .iter()
            .map(|(name, _)| {
                let s = scenario::load(name).map_err(anyhow::Error::from)?;
                Ok(serde_json::json!({
                    "name": s.name,
                    "description": s.description,
                    "transport": s.transport.as_str(),
                    "protocol": s.protocol.as_str(),
                    "keepalive_s": s.keepalive.as_secs(),
                    "cycles": s.cycles,
                    "will": s.will.is_some(),
                    "faults": s.faults.iter().map(|f| f.kind.label()).collect::<Vec<_>>(),
                    "expect_will": s.expect.will,
                }))
            })
            .collect::<anyhow::Result<_>>()?;
        super::args::emit_json(to, &(serde_json::to_string_pretty(&list)? + "\n"))?;
        Ok(ExitCode::SUCCESS)
    } else {
        let rows: Vec<Vec<String>> = scenario::BUILTIN
            .iter()
            .map(|(name, _)| {
                let s = scenario::load(name).map_err(anyhow::Error::from)?;
                Ok(vec![s.name, s.description])
            })
            .collect::<anyhow::Result<_>>()?;
        print!(
            "{}",
            table::render_text(&["scenario", "description"], &rows)
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The flags of `unplug show`.
#[derive(Args)]
pub struct ShowArgs {
    /// A built-in scenario's name (`unplug list`).
    #[arg(value_name = "NAME")]
    name: String,
}

/// `unplug show NAME`: the built-in scenario's file, as it is built in.
pub fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    // Loaded first, so a typo gets the same "did you mean" as `unplug scenario`.
    let s = scenario::load(&args.name).map_err(anyhow::Error::from)?;
    let text = scenario::BUILTIN
        .iter()
        .find(|(n, _)| *n == s.name)
        .map(|(_, t)| *t)
        .ok_or_else(|| anyhow::anyhow!("{}: not a built-in scenario", args.name))?;
    print!(
        "# unplug show {name}: the built-in scenario as a file. Saved as {name}.toml,\n\
         # `unplug scenario {name}.toml` runs as `unplug scenario {name}` does.\n{text}",
        name = s.name
    );
    Ok(ExitCode::SUCCESS)
}

/// The flags of `unplug profiles`.
#[derive(Args)]
pub struct ProfilesArgs {
    /// One profile to print in full (its timing model and every deviation with its evidence).
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// JSON instead: every profile (or NAME's) with its allowances, timing model, deviations,
    /// on stdout (`--json` or `--json -`) or to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
}

/// `unplug profiles`: each broker profile's allowance, deviations and timing model; with a
/// NAME, that one's deviations in full.
pub fn profiles(args: ProfilesArgs) -> anyhow::Result<ExitCode> {
    use unplug::broker::profile::Profile;
    let one = match &args.name {
        Some(name) => Some(Profile::by_name(name).ok_or_else(|| {
            let known: Vec<&str> = Profile::known().iter().map(|(n, _)| *n).collect();
            anyhow::anyhow!(
                "no broker profile {name:?}: expected one of {}",
                known.join(", ")
            )
        })?),
        None => None,
    };
    if let Some(to) = &args.json {
        let v = match &one {
            Some(p) => serde_json::to_value(p)?,
            None => serde_json::Value::Object(
                Profile::known()
                    .into_iter()
                    .map(|(n, p)| Ok((n.to_string(), serde_json::to_value(p)?)))
                    .collect::<anyhow::Result<_>>()?,
            ),
        };
        super::args::emit_json(to, &(serde_json::to_string_pretty(&v)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(p) = one {
        println!("{} (+{} ms late allowance)", p.broker, p.keepalive_late_ms);
        println!("timing model: {}", p.timing_model);
        if p.deviations.is_empty() {
            println!("deviations: none");
        }
        for d in &p.deviations {
            println!("\ndeviation {} ({})", d.check, d.applies.words());
            println!("  why: {}", d.reason);
            println!("  evidence: {}", d.evidence);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = Profile::known()
        .into_iter()
        .map(|(name, p)| {
            let mut checks: Vec<String> = Vec::new();
            for d in &p.deviations {
                let name = d.check.to_string();
                if !checks.contains(&name) {
                    checks.push(name);
                }
            }
            vec![
                name.to_string(),
                format!("+{} ms", p.keepalive_late_ms),
                if checks.is_empty() {
                    "none".to_string()
                } else {
                    checks.join(", ")
                },
                p.timing_model,
            ]
        })
        .collect();
    print!(
        "{}",
        table::render_text(
            &["profile", "late allowance", "deviations", "timing model"],
            &rows
        )
    );
    println!("\nA broker given by URL is recognised from what it says of itself ($SYS/broker/version); one that says nothing is judged by `spec`. Force one with --profile NAME; `unplug profiles NAME` prints one with its evidence.");
    Ok(ExitCode::SUCCESS)
}

/// The flags of `unplug judge` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct JudgeArgs {
    /// The run's NAME.events.jsonl.
    #[arg(value_name = "RUN.events.jsonl")]
    journal: PathBuf,
    /// Judge by this broker profile instead of the recorded one (see `unplug profiles`).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The summary JSON instead of the check lines, on stdout (`--json` or `--json -`) or to
    /// FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
}

/// `unplug judge RUN.events.jsonl`: the saved run's checks and verdict, judged again.
pub fn judge(args: JudgeArgs) -> anyhow::Result<ExitCode> {
    let JudgeArgs {
        journal,
        profile,
        json,
    } = args;
    let summary = unplug::toxi::judge::judge_journal(&journal, profile.as_deref())?;
    match &json {
        Some(to) => super::args::emit_json(to, &summary.to_json())?,
        None => print!("{}", summary.verdict_lines()),
    }
    Ok(if summary.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The flags of `unplug index` (its help line and examples are on `Command` in main.rs).
#[derive(Args)]
pub struct IndexArgs {
    /// The directory holding the runs (searched three levels down).
    #[arg(default_value = "results", value_name = "DIR")]
    dir: PathBuf,
    /// The page's title.
    #[arg(long, default_value = "unplug results")]
    title: String,
}

/// `unplug index DIR`: write DIR/index.html and print its path.
pub fn index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    let IndexArgs { dir, title } = args;
    if !dir.is_dir() {
        anyhow::bail!("{}: no such directory", dir.display());
    }
    let path = unplug::report::index::write(&dir, &title)?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `unplug sweep`: remove the network namespaces and host links of kernel-cut runs that are
/// gone (a SIGKILLed run cannot remove its own), saying each; those of live runs stay.
pub fn sweep() -> anyhow::Result<ExitCode> {
    unplug::kernelcut::check_privilege()?;
    let removed = unplug::kernelcut::sweep()?;
    if removed.is_empty() {
        println!("nothing to remove: no namespace or link of a gone kernel-cut run");
    }
    for r in removed {
        println!("removed {r}");
    }
    Ok(ExitCode::SUCCESS)
}
