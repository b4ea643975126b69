//! A run's files are one set: they are replaced together, or not at all.
//!
//! ```text
//!  begin:   NAME.log.inprogress, NAME.events.jsonl.inprogress   (fresh files; `tail -f` them)
//!           the journal writes each record at once (a SIGKILL loses at most the line in flight)
//!  end:     the journal files written again from the records in time order
//!  commit:  NAME.svg, then NAME.events.jsonl, NAME.log, and NAME.summary.json last
//!           (temp files renamed over the previous set; NAME.incomplete.* of an older run removed)
//!  incomplete (interrupted, or a harness error): the previous NAME.* stays as it was;
//!           NAME.incomplete.{log,events.jsonl,summary.json[,svg]} beside it, the summary
//!           with `interrupted` or `error`, and `pass: false`
//! ```
//!
//! The summary goes last because it is what readers (suite, compare, index) look for: when a
//! new one is in place, the rest of its set is too. A SIGKILLed run leaves only its
//! `.inprogress` files; the next run of the same name replaces them.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Summary;
use crate::fsx::{self, Placed};

/// The suffix of a journal file while its run is going on.
pub const IN_PROGRESS: &str = ".inprogress";

/// The file stem of a run that did not get to its end: `NAME.incomplete`.
pub fn incomplete_stem(name: &str) -> String {
    format!("{name}.incomplete")
}

/// The kinds of file a run writes, as `NAME.KIND`.
const KINDS: [&str; 4] = ["log", "events.jsonl", "summary.json", "svg"];

/// The journal files of a run in progress, and where its set goes at the end.
pub struct RunFiles {
    dir: PathBuf,
    name: String,
    log: Placed,
    jsonl: Placed,
}

impl RunFiles {
    /// Create `NAME.log.inprogress` and `NAME.events.jsonl.inprogress` in `dir` (fresh files,
    /// replacing stale ones of a killed run). Nothing else in `dir` is touched.
    pub fn begin(dir: &Path, name: &str) -> anyhow::Result<RunFiles> {
        let live = |kind: &str| {
            let p = dir.join(format!("{name}.{kind}{IN_PROGRESS}"));
            Placed::create(&p).with_context(|| format!("creating {}", p.display()))
        };
        Ok(RunFiles {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            log: live("log")?,
            jsonl: live("events.jsonl")?,
        })
    }

    /// Handles on the two journal files: (events.jsonl, log).
    pub fn writers(&self) -> std::io::Result<(File, File)> {
        Ok((self.jsonl.file.try_clone()?, self.log.file.try_clone()?))
    }

    fn path(&self, stem: &str, kind: &str) -> PathBuf {
        self.dir.join(format!("{stem}.{kind}"))
    }

    /// Write the journal files again from `records`, the journal's own in time order: the files
    /// got each record as it came, a wire record a little after records stamped later.
    pub fn rewrite_in_time_order(&self, records: &[crate::event::Record]) -> anyhow::Result<()> {
        use std::io::{BufWriter, Seek, Write};
        for placed in [&self.jsonl, &self.log] {
            placed.file.set_len(0)?;
            (&placed.file).rewind()?;
        }
        let mut jsonl = BufWriter::new(&self.jsonl.file);
        let mut log = BufWriter::new(&self.log.file);
        crate::event::write_files(records, &mut jsonl, &mut log)
            .and_then(|_| jsonl.flush())
            .and_then(|_| log.flush())
            .with_context(|| format!("writing {}'s journal in time order", self.name))
    }

    /// Put the set in place under `stem`: the picture, the journal, then the summary.
    fn place(&mut self, stem: &str, summary: &Summary, svg: Option<&str>) -> anyhow::Result<()> {
        if let Some(svg) = svg {
            let p = self.path(stem, "svg");
            fsx::write_atomic(&p, svg.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        for (placed, kind) in [(&mut self.jsonl, "events.jsonl"), (&mut self.log, "log")] {
            let to = self.dir.join(format!("{stem}.{kind}"));
            placed
                .move_to(&to)
                .with_context(|| format!("moving the journal into {}", to.display()))?;
        }
        let p = self.path(stem, "summary.json");
        fsx::write_atomic(&p, summary.to_json().as_bytes())
            .with_context(|| format!("writing {}", p.display()))
    }

    /// The run got to its end: its set replaces the previous one, and an older run's
    /// `NAME.incomplete.*` (no longer beside the set it was interrupted next to) goes.
    pub fn commit(mut self, summary: &Summary, svg: &str) -> anyhow::Result<()> {
        let name = self.name.clone();
        self.place(&name, summary, Some(svg))?;
        for kind in KINDS {
            let _ = std::fs::remove_file(self.path(&incomplete_stem(&name), kind));
        }
        Ok(())
    }

    /// The run did not get to its end: keep what it recorded as `NAME.incomplete.*` and leave
    /// the previous set alone.
    pub fn keep_incomplete(mut self, summary: &Summary, svg: Option<&str>) -> anyhow::Result<()> {
        let stem = incomplete_stem(&self.name);
        if svg.is_none() {
            let _ = std::fs::remove_file(self.path(&stem, "svg"));
        }
        self.place(&stem, summary, svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn summary(name: &str) -> Summary {
        let mut s = Summary::blank("b", 1.0);
        s.scenario = name.to_string();
        s
    }

    fn read(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
    }

    #[test]
    fn an_incomplete_run_leaves_the_previous_set_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let mut first = RunFiles::begin(d.path(), "r").unwrap();
        first.log.file.write_all(b"first log\n").unwrap();
        first.commit(&summary("r"), "<svg/>").unwrap();
        let before: Vec<String> = KINDS
            .iter()
            .map(|k| read(d.path(), &format!("r.{k}")))
            .collect();

        let mut second = RunFiles::begin(d.path(), "r").unwrap();
        assert_eq!(read(d.path(), "r.log.inprogress"), "");
        second.log.file.write_all(b"second log\n").unwrap();
        let mut s = summary("r");
        s.mark_incomplete(Some("SIGTERM"), None);
        second.keep_incomplete(&s, None).unwrap();

        let after: Vec<String> = KINDS
            .iter()
            .map(|k| read(d.path(), &format!("r.{k}")))
            .collect();
        assert_eq!(before, after);
        assert_eq!(read(d.path(), "r.incomplete.log"), "second log\n");
        let kept = Summary::read(&d.path().join("r.incomplete.summary.json")).unwrap();
        assert!(kept.interrupted && !kept.pass);
        assert!(!d.path().join("r.log.inprogress").exists());

        // The next complete run replaces the set and clears the older run's leftovers.
        RunFiles::begin(d.path(), "r")
            .unwrap()
            .commit(&summary("r"), "<svg/>")
            .unwrap();
        assert!(!d.path().join("r.incomplete.summary.json").exists());
        assert!(!d.path().join("r.incomplete.log").exists());
    }
}
