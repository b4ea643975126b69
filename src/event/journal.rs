//! The journal writer: records kept in memory and written, each whole, to the run's files as
//! they happen; a saved journal read back.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Actor, Event, Record};

/// Where the writer puts records besides the in-memory list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Echo {
    /// Print log lines on stdout.
    pub stdout: bool,
    /// Print `wire` lines too (they always go to the files).
    pub wire: bool,
}

/// The shared handle every part records through. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    start: Instant,
    inner: Arc<Mutex<Sink>>,
}

struct Sink {
    records: Vec<Record>,
    /// Each record is written whole, in one write, as it is recorded: a run killed outright
    /// loses at most the line in flight.
    jsonl: Option<File>,
    log: Option<File>,
    echo: Echo,
    /// Where an echoed line goes: given by the runner (the terminal, around its status line),
    /// so the journal knows nothing of the screen.
    print: Option<fn(&str)>,
    /// One JSON line per record, flushed at once: how a child process (willy under a crash or
    /// freeze fault) hands its records to the runner as they happen.
    stream: Option<Box<dyn Write + Send>>,
    /// The first write error, reported once at the end instead of lost.
    error: Option<std::io::Error>,
    /// Set by [`Journal::close`]: what comes later (rumqttd's threads outlive a run) is not
    /// recorded, so the files and the records a run's picture is drawn from are the same.
    closed: bool,
}

impl Default for Sink {
    /// Records in memory only, echoed nowhere.
    fn default() -> Sink {
        Sink {
            records: Vec::new(),
            jsonl: None,
            log: None,
            echo: Echo::default(),
            print: None,
            stream: None,
            error: None,
            closed: false,
        }
    }
}

impl Journal {
    /// A journal that writes each record to `jsonl` (one JSON object a line) and `log` (the
    /// log line) as it goes, so a run that is killed still leaves every line it recorded. The
    /// files are the run's `.inprogress` ones ([`crate::report::files::RunFiles`]).
    /// Lines `echo` selects go to `print`.
    pub fn to_writers(jsonl: File, log: File, echo: Echo, print: fn(&str)) -> Journal {
        Self::with_sink(Sink {
            jsonl: Some(jsonl),
            log: Some(log),
            echo,
            print: Some(print),
            ..Sink::default()
        })
    }

    /// A journal that only keeps records in memory (tests).
    pub fn in_memory() -> Journal {
        Self::with_sink(Sink::default())
    }

    /// A journal that writes each record as one JSON line to `out`, flushed at once.
    pub fn streaming(out: Box<dyn Write + Send>) -> Journal {
        Self::with_sink(Sink {
            stream: Some(out),
            ..Sink::default()
        })
    }

    fn with_sink(sink: Sink) -> Journal {
        Journal {
            start: Instant::now(),
            inner: Arc::new(Mutex::new(sink)),
        }
    }

    /// Milliseconds since the run's start on the monotonic clock.
    pub fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64() * 1000.0
    }

    /// The run's start on the monotonic clock.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Record an event now. The clocks are read under the lock, so records are in time order.
    pub fn record(&self, actor: Actor, event: Event) {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if sink.closed {
            return;
        }
        let rec = Record {
            ms: self.ms_since_start(Instant::now()),
            t: Utc::now(),
            actor,
            event,
        };
        sink.write(&rec);
        sink.records.push(rec);
    }

    /// Record an event that happened at `at` (the monotonic clock) and `t` (UTC), both read
    /// earlier by the caller: the proxy stamps its wire records on the data path, where the
    /// bytes were forwarded, and records them later from its recorder. In memory it takes its
    /// place in time order (after the records of the same moment), so the checks, which read
    /// the records in order, see it where it happened; the files get it when it comes.
    pub fn record_at(&self, at: Instant, t: DateTime<Utc>, actor: Actor, event: Event) {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if sink.closed {
            return;
        }
        let rec = Record {
            ms: self.ms_since_start(at),
            t,
            actor,
            event,
        };
        sink.write(&rec);
        // Usually last already; else a few places back (the records made meanwhile).
        let i = sink
            .records
            .iter()
            .rposition(|r| r.ms <= rec.ms)
            .map_or(0, |i| i + 1);
        sink.records.insert(i, rec);
    }

    /// End the journal: flush the files, record nothing more, and return every record, which
    /// is then exactly what the files hold.
    pub fn close(&self) -> std::io::Result<Vec<Record>> {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sink.closed = true;
        Self::flush_sink(&mut sink)?;
        Ok(sink.records.clone())
    }

    /// Flush the files; returns the first write error seen, if any.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Self::flush_sink(&mut sink)
    }

    fn flush_sink(sink: &mut Sink) -> std::io::Result<()> {
        if let Some(w) = sink.jsonl.as_mut() {
            w.flush()?;
        }
        if let Some(w) = sink.log.as_mut() {
            w.flush()?;
        }
        match sink.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// How many records so far satisfy `pred`, without copying them.
    pub fn count(&self, pred: impl Fn(&Record) -> bool) -> usize {
        let sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sink.records.iter().filter(|r| pred(r)).count()
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<Record> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .clone()
    }
}

impl Sink {
    fn write(&mut self, rec: &Record) {
        let line = rec.log_line();
        if let Some(print) = self.print {
            if self.echo.stdout && (self.echo.wire || rec.actor != Actor::Wire) {
                print(&line);
            }
        }
        let json = serde_json::to_string(rec).expect("records always serialize");
        let mut result = Ok(());
        if let Some(w) = self.jsonl.as_mut() {
            result = result.and_then(|_| w.write_all(format!("{json}\n").as_bytes()));
        }
        if let Some(w) = self.log.as_mut() {
            result = result.and_then(|_| w.write_all(format!("{line}\n").as_bytes()));
        }
        if let Some(w) = self.stream.as_mut() {
            result = result.and_then(|_| writeln!(w, "{json}").and_then(|_| w.flush()));
        }
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }
}

/// Read a saved `NAME.events.jsonl` back (for re-judging or re-drawing a run).
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Record>> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut records: Vec<Record> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not an event record", path.display(), i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    // The proxy's records reach the file a little after they happened (its recorder thread):
    // read back in time order, as the journal held them in memory (a stable sort keeps the
    // order of records of one instant).
    records.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    Ok(records)
}
