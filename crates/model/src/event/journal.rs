//! The journal writer: records written, each whole, to the run's files as they happen, and
//! kept in memory for a run's checks; or, for `unplug proxy` left running for days, not kept
//! at all (the files within a budget, see thin.rs; whoever needs facts follows the journal);
//! a saved journal read back.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Actor, Event, Record};

/// How many bytes of lines a file's buffer holds before it is written out anyway.
const WRITE_BUFFER: usize = 64 * 1024;

/// Where the writer puts records besides the in-memory list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Echo {
    /// Print log lines on stdout.
    pub stdout: bool,
    /// Print `wire` lines too (they always go to the files).
    pub wire: bool,
    /// Print PUBLISH floods as a line per connection about once a second instead of a line
    /// per packet (live.rs): what `unplug proxy` prints in front of a device.
    pub floods: bool,
}

/// A journal's files kept within a size: when the two files together pass `max_bytes`, the
/// PUBLISH records are thinned out of them (thin.rs), and the journal says so.
#[derive(Debug, Clone)]
pub struct Budget {
    pub max_bytes: u64,
    pub jsonl: PathBuf,
    pub log: PathBuf,
}

/// Which records a follower gets (a plain function: cheap to test on every record).
pub type Filter = fn(&Record) -> bool;

/// The shared handle every part records through. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    start: Instant,
    inner: Arc<Mutex<Sink>>,
}

struct Sink {
    records: Vec<Record>,
    /// Each record is written whole as it is recorded: at once by [`Journal::record`]; the
    /// proxy's records ([`Journal::record_at`]) wait in the buffers until its recorder has
    /// caught up ([`Journal::write_out`]), so a run killed outright loses at most the lines of
    /// the recorder's last batch, and a flood costs one write per batch, not two per record.
    jsonl: Option<BufWriter<File>>,
    log: Option<BufWriter<File>>,
    /// The line being formatted, kept between records so a record allocates nothing to be
    /// written.
    json_buf: Vec<u8>,
    log_buf: String,
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
    /// For each [`Cursor`]: how many leading records its reader has, unchanged since it read
    /// them (a late record put in before that point shortens it).
    readers: Vec<usize>,
    /// False for a journal that streams (`unplug proxy`): records go to the files and the
    /// followers only, so memory stays flat however long it runs.
    keep: bool,
    /// Who wants which records as they come (`unplug proxy`'s monit: each CONNECT; its page:
    /// what it shows, through a bounded channel).
    followers: Vec<(Filter, Follower)>,
    /// The files' size budget, and the bytes written to them since they were last thinned.
    budget: Option<Budget>,
    written: u64,
    /// When the files are thinned next: the budget, or more when what judging needs alone
    /// fills half of it (said in the journal once).
    thin_at: u64,
    /// The PUBLISH floods being summarised on the terminal ([`Echo::floods`]).
    floods: super::live::Floods,
    /// How the log lines name the two sides of a proxied connection.
    naming: super::Naming,
    /// The latest time written (the thinning's note goes there).
    last_ms: f64,
}

/// Where a follower's records go.
enum Follower {
    /// Every record, however far behind the follower is (monit: it acts on each CONNECT).
    All(tokio::sync::mpsc::UnboundedSender<Record>),
    /// Up to the channel's capacity; past it a record is counted as missed, not kept.
    Bounded(tokio::sync::mpsc::Sender<Record>, Arc<AtomicU64>),
}

impl Follower {
    /// Hand `rec` over; false when the follower is gone.
    fn send(&self, rec: &Record) -> bool {
        use tokio::sync::mpsc::error::TrySendError;
        match self {
            Follower::All(tx) => tx.send(rec.clone()).is_ok(),
            Follower::Bounded(tx, missed) => match tx.try_reserve() {
                Ok(slot) => {
                    slot.send(rec.clone());
                    true
                }
                Err(TrySendError::Full(())) => {
                    missed.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Closed(())) => false,
            },
        }
    }
}

/// A reader's place in the journal, for [`Journal::read_fresh`]: the runner's control loop
/// takes only what it has not seen each tick instead of a copy of every record.
#[derive(Debug)]
pub struct Cursor(usize);

/// What a reader has not seen: the records from index `from` on. Usually `from` is the
/// count it had; a late record (the proxy's, [`Journal::record_at`]) that went in before
/// that moves `from` back to it, and the reader replaces its copy from there.
#[derive(Debug)]
pub struct Fresh {
    pub from: usize,
    pub records: Vec<Record>,
}

impl Default for Sink {
    /// Records in memory only, echoed nowhere.
    fn default() -> Sink {
        Sink {
            records: Vec::new(),
            jsonl: None,
            log: None,
            json_buf: Vec::new(),
            log_buf: String::new(),
            echo: Echo::default(),
            print: None,
            stream: None,
            error: None,
            closed: false,
            readers: Vec::new(),
            keep: true,
            followers: Vec::new(),
            budget: None,
            written: 0,
            thin_at: u64::MAX,
            floods: Default::default(),
            naming: super::Naming::Run,
            last_ms: 0.0,
        }
    }
}

impl Journal {
    /// A journal that writes each record to `jsonl` (one JSON object a line) and `log` (the
    /// log line) as it goes, so a run that is killed still leaves every line it recorded. The
    /// files are the run's `.inprogress` ones (`report::files::RunFiles`).
    /// Lines `echo` selects go to `print`.
    pub fn to_writers(jsonl: File, log: File, echo: Echo, print: fn(&str)) -> Journal {
        Self::with_sink(Sink {
            jsonl: Some(BufWriter::with_capacity(WRITE_BUFFER, jsonl)),
            log: Some(BufWriter::with_capacity(WRITE_BUFFER, log)),
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

    /// A journal that keeps no record in memory: they go to the files (within `budget`, if
    /// any) and to the followers, and [`Journal::records`] is empty. Log lines name the sides
    /// as `naming` says.
    pub fn streaming_files(self, budget: Option<Budget>, naming: super::Naming) -> Journal {
        {
            let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            sink.keep = false;
            sink.thin_at = budget.as_ref().map_or(u64::MAX, |b| b.max_bytes);
            sink.budget = budget;
            sink.naming = naming;
        }
        self
    }

    /// Every record `filter` takes from now on, as it is recorded.
    pub fn follow(&self, filter: Filter) -> tokio::sync::mpsc::UnboundedReceiver<Record> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sink.followers.push((filter, Follower::All(tx)));
        rx
    }

    /// Every record `filter` takes from now on, up to `cap` waiting: a follower that falls
    /// further behind misses records rather than grow the journal's memory or slow whoever
    /// records (the data path); the counter says how many it missed.
    pub fn follow_bounded(
        &self,
        filter: Filter,
        cap: usize,
    ) -> (tokio::sync::mpsc::Receiver<Record>, Arc<AtomicU64>) {
        let (tx, rx) = tokio::sync::mpsc::channel(cap.max(1));
        let missed = Arc::new(AtomicU64::new(0));
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sink.followers
            .push((filter, Follower::Bounded(tx, missed.clone())));
        (rx, missed)
    }

    fn with_sink(sink: Sink) -> Journal {
        Journal {
            start: Instant::now(),
            inner: Arc::new(Mutex::new(sink)),
        }
    }

    /// Milliseconds since the run's start on the monotonic clock.
    pub fn ms_since_start(&self, at: Instant) -> f64 {
        ms_of(at.saturating_duration_since(self.start))
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
        sink.write_out();
        sink.keep_record(rec);
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
        if !sink.keep {
            sink.keep_record(rec);
            return;
        }
        // Usually last already; else a few places back (the records made meanwhile).
        let i = sink
            .records
            .iter()
            .rposition(|r| r.ms <= rec.ms)
            .map_or(0, |i| i + 1);
        sink.tell_followers(&rec);
        sink.records.insert(i, rec);
        for seen in &mut sink.readers {
            *seen = (*seen).min(i);
        }
    }

    /// Write out the lines [`Journal::record_at`] left in the buffers (the recorder calls it
    /// whenever it has caught up). A write error is kept for [`Journal::flush`].
    pub fn write_out(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_out();
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

    /// A copy of the records from the `i`th on (a reader that follows the journal as it
    /// grows; a record stamped earlier may land a few places before the end).
    pub fn records_from(&self, i: usize) -> Vec<Record> {
        let sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sink.records
            .get(i..)
            .map(<[Record]>::to_vec)
            .unwrap_or_default()
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

    /// A new reader's place: it has seen nothing yet.
    pub fn cursor(&self) -> Cursor {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        sink.readers.push(0);
        Cursor(sink.readers.len() - 1)
    }

    /// The records `cursor`'s reader has not seen (see [`Fresh`]); it has seen them all after.
    pub fn read_fresh(&self, cursor: &mut Cursor) -> Fresh {
        let mut sink = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let from = sink.readers[cursor.0];
        sink.readers[cursor.0] = sink.records.len();
        Fresh {
            from,
            records: sink.records[from..].to_vec(),
        }
    }
}

impl Sink {
    /// Keep `rec` in memory (a run's journal), and hand it to whoever follows.
    fn keep_record(&mut self, rec: Record) {
        self.tell_followers(&rec);
        if self.keep {
            self.records.push(rec);
        }
    }

    fn tell_followers(&mut self, rec: &Record) {
        if self.followers.is_empty() {
            return;
        }
        self.followers
            .retain(|(wants, to)| !wants(rec) || to.send(rec));
    }

    /// Format `rec` into the buffers of whoever wants it; nothing is formatted for a journal
    /// kept only in memory.
    fn write(&mut self, rec: &Record) {
        self.last_ms = self.last_ms.max(rec.ms);
        let mut echo = self.print.is_some()
            && self.echo.stdout
            && (self.echo.wire || rec.actor != Actor::Wire);
        if let (true, true, Some(print)) = (echo, self.echo.floods, self.print) {
            let naming = self.naming;
            echo = self.floods.take(rec, &mut |line| {
                super::format::named(naming, || print(line))
            });
        }
        let mut result = Ok(());
        if echo || self.log.is_some() {
            self.log_buf.clear();
            let line = &mut self.log_buf;
            super::format::named(self.naming, || {
                let _ = write!(line, "{}", rec.log_line_display());
            });
            if let (true, Some(print)) = (echo, self.print) {
                print(&self.log_buf);
            }
            if let Some(w) = self.log.as_mut() {
                self.log_buf.push('\n');
                self.written += self.log_buf.len() as u64;
                result = result.and_then(|_| w.write_all(self.log_buf.as_bytes()));
            }
        }
        if self.jsonl.is_some() || self.stream.is_some() {
            self.json_buf.clear();
            serde_json::to_writer(&mut self.json_buf, rec).expect("records always serialize");
            self.json_buf.push(b'\n');
            if let Some(w) = self.jsonl.as_mut() {
                self.written += self.json_buf.len() as u64;
                result = result.and_then(|_| w.write_all(&self.json_buf));
            }
            if let Some(w) = self.stream.as_mut() {
                result = result.and_then(|_| w.write_all(&self.json_buf).and_then(|_| w.flush()));
            }
        }
        if self.written > self.thin_at {
            result = result.and_then(|_| self.thin());
        }
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    /// The files passed their budget: write them again without the PUBLISH records judging
    /// does not need (thin.rs), say so at their end, and go on writing after it.
    fn thin(&mut self) -> std::io::Result<()> {
        let Some(b) = self.budget.clone() else {
            return Ok(());
        };
        let (Some(jsonl), Some(log)) = (self.jsonl.as_mut(), self.log.as_mut()) else {
            return Ok(());
        };
        jsonl.flush()?;
        log.flush()?;
        let before = self.written;
        let dir = crate::fsx::dir_of(&b.jsonl);
        let mut new_jsonl = BufWriter::with_capacity(
            WRITE_BUFFER,
            crate::fsx::fresh_temp(dir, &crate::fsx::file_name(&b.jsonl))?,
        );
        let mut new_log = BufWriter::with_capacity(
            WRITE_BUFFER,
            crate::fsx::fresh_temp(dir, &crate::fsx::file_name(&b.log))?,
        );
        let mut thinner = super::thin::Thinner::default();
        let mut out: std::io::Result<()> = Ok(());
        let mut kept = 0u64;
        let naming = self.naming;
        let mut put = |rec: Record| {
            kept += 1;
            out = std::mem::replace(&mut out, Ok(())).and_then(|_| {
                serde_json::to_writer(&mut new_jsonl, &rec)?;
                new_jsonl.write_all(b"\n")?;
                let mut text = String::new();
                super::format::named(naming, || {
                    let _ = writeln!(text, "{}", rec.log_line_display());
                });
                new_log.write_all(text.as_bytes())
            });
        };
        super::for_each_record(&b.jsonl, |_, rec| {
            let event = rec.event.clone();
            thinner.push(&event, rec, &mut put);
            Ok(())
        })
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let dropped = thinner.dropped;
        thinner.finish(&mut put);
        out?;
        let (jsonl_tmp, log_tmp) = (
            new_jsonl.into_inner().map_err(|e| e.into_error())?,
            new_log.into_inner().map_err(|e| e.into_error())?,
        );
        let jsonl_file = jsonl_tmp.persist(&b.jsonl).map_err(|e| e.error)?;
        let log_file = log_tmp.persist(&b.log).map_err(|e| e.error)?;
        let sizes = jsonl_file.metadata()?.len() + log_file.metadata()?.len();
        self.jsonl = Some(BufWriter::with_capacity(WRITE_BUFFER, jsonl_file));
        self.log = Some(BufWriter::with_capacity(WRITE_BUFFER, log_file));
        // Appended after what is there (the files were written whole, their offsets at the end).
        for f in [self.jsonl.as_mut(), self.log.as_mut()]
            .into_iter()
            .flatten()
        {
            use std::io::Seek;
            f.get_mut().seek(std::io::SeekFrom::End(0))?;
        }
        self.written = sizes;
        let full = sizes > b.max_bytes / 2;
        self.thin_at = if full {
            sizes.saturating_mul(2).max(b.max_bytes)
        } else {
            b.max_bytes
        };
        let mut message = format!(
            "journal thinned to stay within --journal-max {} MB: {dropped} PUBLISH records of a flood left out ({} kB -> {} kB; kept {kept}: every CONNECT, CONNACK, DISCONNECT, ping, close, fault and will, and the last PUBLISH before each)",
            b.max_bytes / 1_000_000,
            before / 1_000,
            sizes / 1_000
        );
        if full {
            message += &format!(
                "; what judging needs alone is {} MB, over half the budget: thinned next at {} MB",
                sizes / 1_000_000,
                self.thin_at / 1_000_000
            );
        }
        let rec = Record {
            ms: self.last_ms,
            t: Utc::now(),
            actor: Actor::Proxy,
            event: super::Event::Note { message },
        };
        // Not through write(): no second thinning from inside this one.
        let budget = self.thin_at;
        self.thin_at = u64::MAX;
        self.write(&rec);
        self.thin_at = budget;
        Ok(())
    }

    /// Hand the buffered lines to the files.
    fn write_out(&mut self) {
        let mut result = Ok(());
        if let Some(w) = self.jsonl.as_mut() {
            result = result.and_then(|_| w.flush());
        }
        if let Some(w) = self.log.as_mut() {
            result = result.and_then(|_| w.flush());
        }
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }
}

/// Read a saved `NAME.events.jsonl` back (for re-judging or re-drawing a run), sorted by `ms`:
/// a regular file only, within [`super::ReadLimits::IN_MEMORY`] (see `read.rs`).
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Record>> {
    super::read::read_all(path, super::ReadLimits::IN_MEMORY)
}

/// A duration in milliseconds as the journal writes it: nanoseconds divided once, so the number is
/// the closest f64 to the nanosecond count and prints as it (`37.109145`, not the
/// `37.109145000000005` that `as_secs_f64() * 1000.0` rounds twice to).
pub fn ms_of(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// Write `records` as a run's two journal files (NAME.events.jsonl, NAME.log), in the order
/// given, as the journal writes them one by one. A run's files get their records as they come,
/// and the proxy's wire records come from its recorder a little after records stamped later;
/// at the run's end its files are written again from the records in time order.
pub fn write_files(
    records: &[Record],
    jsonl: &mut impl Write,
    log: &mut impl Write,
) -> std::io::Result<()> {
    let mut line = String::new();
    for rec in records {
        serde_json::to_writer(&mut *jsonl, rec).map_err(std::io::Error::other)?;
        jsonl.write_all(b"\n")?;
        line.clear();
        super::format::named(super::Naming::Run, || {
            let _ = write!(line, "{}", rec.log_line_display());
        });
        line.push('\n');
        log.write_all(line.as_bytes())?;
    }
    Ok(())
}
