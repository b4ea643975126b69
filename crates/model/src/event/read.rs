//! A saved journal read back in bounded memory, whatever the file holds.
//!
//! ```text
//!  NAME.events.jsonl --fsx::open_regular--> (a FIFO, a device, a directory: refused at once)
//!     --Lines (each <= 1 MiB, no more held)--> serde_json --> Record
//!     --for_each_record: f(line, record), one at a time, in file order
//!     --read_jsonl: kept, at most ReadLimits::IN_MEMORY, sorted by `ms`
//! ```
//!
//! Every refusal names the file and, past the open, the line: `x.events.jsonl:7: ...`.
//! [`Lines`] is the pure splitter under it, which a driver's stdout reader uses too: a line over
//! the cap is cut, and what follows it up to the newline is counted, never held.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context};

use super::{Event, Record};

/// How much of a journal a reader takes before it refuses the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest line (bytes, without its newline). The longest record the harness writes
    /// is a will's PUBLISH with a 65,535-byte topic and payload, escaped: well under 1 MiB.
    pub line_bytes: usize,
    /// The most bytes of file read.
    pub total_bytes: u64,
    /// The most records.
    pub records: u64,
    /// The most memory the PUBLISHes the records stand for take in the checks, which place
    /// each one in time with its topic (a `publish_run` is its count of them): each costs its
    /// topic's bytes and [`PUBLISH_COST`].
    pub publish_bytes: u64,
}

impl ReadLimits {
    /// For a journal folded one record at a time ([`for_each_record`]): memory is one line,
    /// so only the line is capped tightly; the totals only stop a file that never ends.
    pub const STREAMING: ReadLimits = ReadLimits {
        line_bytes: 1024 * 1024,
        total_bytes: 64 * 1024 * 1024 * 1024,
        records: 1_000_000_000,
        publish_bytes: u64::MAX,
    };
    /// For a journal kept whole in memory ([`read_jsonl`]): a record takes about twice its
    /// line in memory, so 512 MiB of file is about 1 GB of records; 4,000,000 records is more
    /// than any run's (a 100 MB journal holds about 700,000). 1 GiB of PUBLISHes in the
    /// checks is 10,000,000 of them with a 60-byte topic.
    pub const IN_MEMORY: ReadLimits = ReadLimits {
        line_bytes: 1024 * 1024,
        total_bytes: 512 * 1024 * 1024,
        records: 4_000_000,
        publish_bytes: 1024 * 1024 * 1024,
    };
}

/// Read every record of the journal at `path` into memory, sorted by `ms`, within
/// [`ReadLimits::IN_MEMORY`].
pub fn read_all(path: &Path, limits: ReadLimits) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    for_each_record_within(path, limits, |_, r| {
        records.push(r);
        Ok(())
    })?;
    // The proxy's records reach the file a little after they happened (its recorder thread):
    // read back in time order, as the journal held them in memory (a stable sort keeps the
    // order of records of one instant).
    records.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    Ok(records)
}

/// Hand each record of the journal at `path` to `f` with its line number (1-based), in file
/// order (the proxy's records may come a few places after records stamped later), holding
/// one line at a time: a journal of any size within [`ReadLimits::STREAMING`] is read in about
/// 1 MiB. Blank lines are skipped. An error from `f` stops the read and is returned with the
/// file and line in front.
pub fn for_each_record(
    path: &Path,
    f: impl FnMut(usize, Record) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for_each_record_within(path, ReadLimits::STREAMING, f)
}

/// [`for_each_record`] within other limits.
pub fn for_each_record_within(
    path: &Path,
    limits: ReadLimits,
    mut f: impl FnMut(usize, Record) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let shown = path.display();
    let (file, len) = crate::fsx::open_regular(path).with_context(|| format!("reading {shown}"))?;
    if len > limits.total_bytes {
        bail!(
            "{shown}: {len} bytes, more than the {} a journal may hold to be read",
            limits.total_bytes
        );
    }
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut lines = Lines::new(limits.line_bytes);
    let (mut line_no, mut read, mut records, mut publishes) = (0usize, 0u64, 0u64, 0u64);
    loop {
        let chunk = reader
            .fill_buf()
            .with_context(|| format!("reading {shown}"))?;
        let (used, piece) = if chunk.is_empty() {
            (0, lines.finish())
        } else {
            lines.feed(chunk)
        };
        let at_end = chunk.is_empty();
        reader.consume(used);
        read += used as u64;
        if read > limits.total_bytes {
            bail!(
                "{shown}: more than {} bytes (it grew while being read)",
                limits.total_bytes
            );
        }
        match piece {
            Some(Piece::Line(bytes)) => {
                line_no += 1;
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                records += 1;
                if records > limits.records {
                    bail!(
                        "{shown}:{line_no}: more than {} records: too many to read",
                        limits.records
                    );
                }
                let rec: Record = serde_json::from_slice(bytes)
                    .with_context(|| format!("{shown}:{line_no}: not an event record"))?;
                check(&rec).map_err(|why| anyhow::anyhow!("{shown}:{line_no}: {why}"))?;
                publishes = publishes.saturating_add(publish_bytes(&rec));
                if publishes > limits.publish_bytes {
                    bail!(
                        "{shown}:{line_no}: the records stand for more PUBLISHes than the checks \
                         can hold in {} bytes (each its topic and {PUBLISH_COST} bytes)",
                        limits.publish_bytes
                    );
                }
                f(line_no, rec).with_context(|| format!("{shown}:{line_no}"))?;
            }
            Some(Piece::Cut(_)) => bail!(
                "{shown}:{}: a line longer than {} bytes: not an event record",
                line_no + 1,
                limits.line_bytes
            ),
            Some(Piece::Skipped(_)) => unreachable!("the read stops at the cut"),
            None if at_end => return Ok(()),
            None => {}
        }
    }
}

/// The latest time a record may carry, in ms since its run's start: about 31 years, far
/// past any run, and small enough that every sum and Duration made of it is exact.
pub const MAX_MS: f64 = 1e12;

/// The most PUBLISHes one `publish_run` record may stand for: a run at 10 Gbit/s of the
/// smallest PUBLISH (4 bytes) for a day is about 2.7e13.
const MAX_RUN_COUNT: u64 = 1 << 45;

/// Every number of a record within what the harness can have written: a time in
/// `0..=MAX_MS`, a size within MQTT's, a count whose bytes add up. A refusal names the key
/// (the JSONL's own), the value and the range.
fn check(r: &Record) -> Result<(), String> {
    use crate::mqtt::{MAX_FIELD_BYTES, SPEC_MAX_REMAINING};
    use crate::tap::Fields;
    let time = |key: &str, ms: f64| {
        if (0.0..=MAX_MS).contains(&ms) {
            Ok(())
        } else {
            Err(format!(
                "key `{key}`: {ms} ms is out of range: expected 0 to {MAX_MS:e} ms (about 31 years)"
            ))
        }
    };
    let size = |key: &str, n: usize, max: usize, what: &str| {
        if n <= max {
            Ok(())
        } else {
            Err(format!(
                "key `{key}`: {n} is out of range: {what} is at most {max} bytes"
            ))
        }
    };
    time("ms", r.ms)?;
    match &r.event {
        Event::Packet {
            size: n, fields, ..
        } => {
            // The fixed header (5 bytes at most) and the remaining length.
            size("size", *n, SPEC_MAX_REMAINING + 5, "an MQTT packet")?;
            match fields {
                Fields::Publish { payload_len, .. } => size(
                    "fields.payload_len",
                    *payload_len,
                    SPEC_MAX_REMAINING,
                    "a PUBLISH's payload",
                ),
                Fields::Connect { will: Some(w), .. } => size(
                    "fields.will.payload_len",
                    w.payload_len,
                    MAX_FIELD_BYTES,
                    "a will's payload (MQTT-1.5.6)",
                ),
                _ => Ok(()),
            }
        }
        Event::PublishRun {
            payload_len,
            count,
            bytes,
            first_ms,
            last_ms,
            ..
        } => {
            size(
                "payload_len",
                *payload_len,
                SPEC_MAX_REMAINING,
                "a PUBLISH's payload",
            )?;
            time("first_ms", *first_ms)?;
            time("last_ms", *last_ms)?;
            if first_ms > last_ms {
                return Err(format!(
                    "key `last_ms`: {last_ms} is before first_ms {first_ms}"
                ));
            }
            // Each PUBLISH is at least its fixed header, the topic's length and the payload
            // (the topic itself is left out: the tap may have decoded it lossily).
            let least = (4 + payload_len) as u64;
            if *count > MAX_RUN_COUNT || count.saturating_mul(least) > *bytes {
                return Err(format!(
                    "key `count`: {count} PUBLISHes of at least {least} bytes each do not fit \
                     in {bytes} bytes (expected at most {MAX_RUN_COUNT} of them)"
                ));
            }
            Ok(())
        }
        Event::ScenarioRecorded { scenario, .. } => crate::scenario::check_recorded(scenario)
            .map_err(|e| {
                format!(
                    "the recorded scenario, key `{}`: {}",
                    e.key.as_deref().unwrap_or("?"),
                    e.message
                )
            }),
        Event::FaultApplied { last_upstream, .. } => last_upstream
            .iter()
            .filter_map(|o| o.ms)
            .try_for_each(|ms| time("last_upstream.ms", ms)),
        _ => Ok(()),
    }
}

/// What one PUBLISH takes in the checks besides its topic: its time, sizes and the String.
pub const PUBLISH_COST: u64 = 48;

/// What the PUBLISHes `r` stands for take in the checks (see [`ReadLimits::publish_bytes`]).
fn publish_bytes(r: &Record) -> u64 {
    let (count, topic) = match &r.event {
        Event::PublishRun { count, topic, .. } => (*count, topic),
        Event::Packet {
            fields: crate::tap::Fields::Publish { topic, .. },
            ..
        } => (1, topic),
        _ => return 0,
    };
    count.saturating_mul(topic.len() as u64 + PUBLISH_COST)
}

/// What [`Lines`] has completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole line, without its newline, no longer than the cap.
    Line(&'a [u8]),
    /// A line passed the cap: its first `cap` bytes. What follows up to its newline is
    /// skipped, not held, and counted in the [`Piece::Skipped`] that follows.
    Cut(&'a [u8]),
    /// The end of a cut line (its newline, or the end of the stream): how many bytes of it
    /// after the cut were skipped, the newline not counted.
    Skipped(u64),
}

/// A byte stream split into lines of at most `cap` bytes, holding at most `cap` bytes: the
/// pure core of the journal reader and of a driver's stdout reader. Feed it what the reader
/// has buffered; consume what it says it used.
#[derive(Debug)]
pub struct Lines {
    cap: usize,
    /// The line so far (or the line last handed out, until the next call).
    line: Vec<u8>,
    /// `line` was handed out: the next call starts a new one.
    handed: bool,
    /// Skipping the rest of a cut line: the bytes skipped so far.
    skipping: Option<u64>,
}

impl Lines {
    pub fn new(cap: usize) -> Lines {
        Lines {
            cap,
            line: Vec::new(),
            handed: false,
            skipping: None,
        }
    }

    /// Take bytes from the front of `chunk`: how many it used and what it completed, if
    /// anything. Call again with the rest (it stops after each piece).
    pub fn feed(&mut self, chunk: &[u8]) -> (usize, Option<Piece<'_>>) {
        self.start_line();
        let newline = chunk.iter().position(|&b| b == b'\n');
        if let Some(skipped) = self.skipping.as_mut() {
            return match newline {
                Some(i) => {
                    let total = *skipped + i as u64;
                    self.skipping = None;
                    (i + 1, Some(Piece::Skipped(total)))
                }
                None => {
                    *skipped += chunk.len() as u64;
                    (chunk.len(), None)
                }
            };
        }
        let room = self.cap - self.line.len();
        match newline {
            Some(i) if i <= room => {
                self.line.extend_from_slice(&chunk[..i]);
                self.handed = true;
                (i + 1, Some(Piece::Line(&self.line)))
            }
            _ if newline.unwrap_or(chunk.len()) > room => {
                self.line.extend_from_slice(&chunk[..room]);
                self.handed = true;
                self.skipping = Some(0);
                (room, Some(Piece::Cut(&self.line)))
            }
            _ => {
                self.line.extend_from_slice(chunk);
                (chunk.len(), None)
            }
        }
    }

    /// The line (or cut line's head) last handed out, until the next call.
    pub fn held(&self) -> &[u8] {
        &self.line
    }

    /// The stream has ended: the last line if it had no newline, or the end of a cut line.
    pub fn finish(&mut self) -> Option<Piece<'_>> {
        self.start_line();
        if let Some(skipped) = self.skipping.take() {
            return Some(Piece::Skipped(skipped));
        }
        if self.line.is_empty() {
            return None;
        }
        self.handed = true;
        Some(Piece::Line(&self.line))
    }

    fn start_line(&mut self) {
        if std::mem::take(&mut self.handed) {
            self.line.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `Lines` makes of `chunks`, fed as a reader would, with owned bytes.
    fn split(cap: usize, chunks: &[&[u8]]) -> Vec<(String, Vec<u8>)> {
        let mut lines = Lines::new(cap);
        let mut out = Vec::new();
        let mut take = |p: Piece<'_>| match p {
            Piece::Line(b) => out.push(("line".to_string(), b.to_vec())),
            Piece::Cut(b) => out.push(("cut".to_string(), b.to_vec())),
            Piece::Skipped(n) => out.push((format!("skipped {n}"), Vec::new())),
        };
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let (used, piece) = lines.feed(rest);
                if let Some(p) = piece {
                    take(p);
                }
                rest = &rest[used..];
            }
        }
        if let Some(p) = lines.finish() {
            take(p);
        }
        out
    }

    fn line(b: &str) -> (String, Vec<u8>) {
        ("line".to_string(), b.as_bytes().to_vec())
    }

    #[test]
    fn lines_split_across_chunks_come_whole() {
        assert_eq!(
            split(8, &[b"ab", b"c\nde\n", b"\nf"]),
            [line("abc"), line("de"), line(""), line("f")]
        );
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_whole_and_one_byte_more_is_cut() {
        assert_eq!(split(3, &[b"abc\n"]), [line("abc")]);
        assert_eq!(split(3, &[b"abc", b"\nx"]), [line("abc"), line("x")]);
        assert_eq!(
            split(3, &[b"ab", b"cd", b"efg\nxy\n"]),
            [
                ("cut".to_string(), b"abc".to_vec()),
                ("skipped 4".to_string(), Vec::new()),
                line("xy")
            ]
        );
    }

    #[test]
    fn a_cut_line_without_a_newline_is_skipped_to_the_end_holding_nothing() {
        let mut lines = Lines::new(4);
        let big = vec![b'z'; 1 << 20];
        let (used, piece) = lines.feed(&big);
        assert_eq!((used, piece), (4, Some(Piece::Cut(b"zzzz"))));
        assert_eq!(lines.feed(&big[4..]), (big.len() - 4, None));
        for _ in 0..100 {
            assert_eq!(lines.feed(&big), (big.len(), None));
        }
        assert!(lines.line.capacity() < 64);
        assert_eq!(
            lines.finish(),
            Some(Piece::Skipped(100 * (1 << 20) + (1 << 20) - 4))
        );
        assert_eq!(lines.finish(), None);
    }

    fn scratch(test: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("unplug-read-{test}-"))
            .tempdir()
            .unwrap()
    }

    /// One journal line: a record at `ms`.
    fn record_line(ms: f64) -> String {
        let r = Record {
            ms,
            t: chrono::Utc::now(),
            actor: super::super::Actor::Runner,
            event: super::super::Event::CycleStarted { cycle: 1 },
        };
        serde_json::to_string(&r).unwrap()
    }

    #[test]
    fn a_fifo_a_device_or_a_directory_is_refused_at_once_naming_it() {
        let d = scratch("kinds");
        let fifo = d.path().join("x.events.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (d.path(), "a directory"),
        ] {
            let e = format!("{:#}", crate::event::read_jsonl(path).unwrap_err());
            assert!(
                e.contains(&path.display().to_string()) && e.contains(kind),
                "{e}"
            );
        }
    }

    #[test]
    fn a_line_over_the_cap_is_refused_naming_its_line() {
        let d = scratch("long");
        let path = d.path().join("x.events.jsonl");
        let text = format!(
            "{}\n\n{}\n",
            record_line(1.0),
            "x".repeat(ReadLimits::IN_MEMORY.line_bytes + 1)
        );
        std::fs::write(&path, text).unwrap();
        let e = format!("{:#}", crate::event::read_jsonl(&path).unwrap_err());
        assert!(
            e.contains(&format!(
                "{}:3: a line longer than 1048576 bytes",
                path.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn too_many_records_or_bytes_are_refused() {
        let d = scratch("many");
        let path = d.path().join("x.events.jsonl");
        std::fs::write(&path, format!("{}\n", record_line(1.0)).repeat(5)).unwrap();
        let few = ReadLimits {
            records: 4,
            ..ReadLimits::IN_MEMORY
        };
        let e = format!("{:#}", read_all(&path, few).unwrap_err());
        assert!(e.contains(":5: more than 4 records"), "{e}");
        let small = ReadLimits {
            total_bytes: 100,
            ..ReadLimits::IN_MEMORY
        };
        let e = format!("{:#}", read_all(&path, small).unwrap_err());
        assert!(e.contains("more than the 100 a journal may hold"), "{e}");
    }

    #[test]
    fn publish_runs_that_would_take_more_than_the_budget_in_the_checks_are_refused() {
        let d = scratch("runs");
        let path = d.path().join("x.events.jsonl");
        // 3,000 PUBLISHes of a 500,000-byte topic: 1.5 GB if the checks placed each.
        let run = |topic_len: usize| Record {
            ms: 1.0,
            t: chrono::Utc::now(),
            actor: super::super::Actor::Wire,
            event: Event::PublishRun {
                conn: 1,
                from: super::super::Side::Client,
                dropped: false,
                topic: "t".repeat(topic_len),
                qos: 0,
                retain: false,
                payload_len: 0,
                count: 3000,
                bytes: 3000 * (4 + topic_len as u64),
                first_ms: 1.0,
                last_ms: 2.0,
            },
        };
        let line = serde_json::to_string(&run(500_000)).unwrap();
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let e = format!("{:#}", crate::event::read_jsonl(&path).unwrap_err());
        assert!(
            e.contains(":1: the records stand for more PUBLISHes"),
            "{e}"
        );
        // The same run with a 20-byte topic is judged.
        let line = serde_json::to_string(&run(20)).unwrap();
        std::fs::write(&path, format!("{line}\n")).unwrap();
        assert_eq!(crate::event::read_jsonl(&path).unwrap().len(), 1);
    }

    #[test]
    fn garbage_and_a_truncated_last_line_are_refused_naming_their_line() {
        let d = scratch("garbage");
        let path = d.path().join("x.events.jsonl");
        let whole = record_line(2.0);
        std::fs::write(&path, format!("{whole}\n{}", &whole[..20])).unwrap();
        let e = format!("{:#}", crate::event::read_jsonl(&path).unwrap_err());
        assert!(e.contains(":2: not an event record"), "{e}");
        std::fs::write(&path, b"\xff\xfe\n").unwrap();
        let e = format!("{:#}", crate::event::read_jsonl(&path).unwrap_err());
        assert!(e.contains(":1: not an event record"), "{e}");
    }

    #[test]
    fn records_come_one_by_one_in_file_order_and_sorted_in_the_vec() {
        let d = scratch("order");
        let path = d.path().join("x.events.jsonl");
        let text = format!(
            "{}\n  \n{}\n{}",
            record_line(3.0),
            record_line(1.0),
            record_line(2.0)
        );
        std::fs::write(&path, text).unwrap();
        let mut seen = Vec::new();
        for_each_record(&path, |line, r| {
            seen.push((line, r.ms));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(1, 3.0), (3, 1.0), (4, 2.0)]);
        let ms: Vec<f64> = crate::event::read_jsonl(&path)
            .unwrap()
            .iter()
            .map(|r| r.ms)
            .collect();
        assert_eq!(ms, [1.0, 2.0, 3.0]);
        let e = for_each_record(&path, |line, _| {
            anyhow::ensure!(line < 3, "stop here");
            Ok(())
        })
        .unwrap_err();
        assert_eq!(format!("{e:#}"), format!("{}:3: stop here", path.display()));
    }
}
