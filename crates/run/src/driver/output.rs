//! What a driver prints, read in bounded memory whatever it prints.
//!
//! ```text
//!  stdout --Lines (<= 1 MiB)--> a report --> the cycles (a bounded channel: a driver that
//!         |                                   floods waits on its pipe)
//!         +-> not a report, or a line over 1 MiB (cut, its rest skipped to the newline,
//!             never held) --> a note, quoted at most NOTE_BYTES --RateLimit--> the journal
//!  stderr --Lines (<= NOTE_BYTES, the rest skipped)--> a note --RateLimit--> the journal
//! ```
//!
//! A driver is a program the user names (`cmd:PATH`); nothing it prints may grow the runner's
//! memory or the journal without bound. [`RateLimit`] keeps at most [`NOTES_PER_S`] notes a
//! second from each stream and says how many it left out.

use std::borrow::Cow;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::protocol::Report;
use crate::event::{Actor, Event, Journal, Lines, Piece};

/// The longest stdout line taken as a report: a report is a few hundred bytes; the library's
/// words (`says`) are a line of its own.
pub const MAX_LINE: usize = 1024 * 1024;

/// The most of one line a note quotes (a stderr line, a stdout line that is not a report, a
/// report's `says`).
pub const NOTE_BYTES: usize = 4096;

/// The most notes a second from one stream; the rest are counted in one note.
pub const NOTES_PER_S: u32 = 50;

/// How many reports wait for the cycles before the driver's stdout is left unread.
const REPORTS_QUEUED: usize = 256;

/// A channel for the reports of [`read_stdout`].
pub fn report_channel() -> (mpsc::Sender<Report>, mpsc::Receiver<Report>) {
    mpsc::channel(REPORTS_QUEUED)
}

/// `text` cut to at most `max` bytes at a character boundary, saying how long it was.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}... ({} bytes in all)", &text[..end], text.len()))
}

/// Admits at most `per_s` notes in each second and counts the rest; the count is said once
/// the next second's first note comes, or at the end ([`RateLimit::left_out`]).
#[derive(Debug)]
pub struct RateLimit {
    per_s: u32,
    window: Option<Instant>,
    in_window: u32,
    dropped: u64,
}

/// What to do with one note.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Record it, after a note that `n` before it were left out (when n > 0).
    Record { left_out_before: u64 },
    /// Leave it out (counted).
    Drop,
}

impl RateLimit {
    pub fn new(per_s: u32) -> RateLimit {
        RateLimit {
            per_s,
            window: None,
            in_window: 0,
            dropped: 0,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        let fresh = self
            .window
            .map_or(true, |w| now.saturating_duration_since(w).as_secs() >= 1);
        if fresh {
            self.window = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= self.per_s {
            self.dropped += 1;
            return Admit::Drop;
        }
        self.in_window += 1;
        Admit::Record {
            left_out_before: std::mem::take(&mut self.dropped),
        }
    }

    /// How many were left out since the last one recorded (then zero).
    pub fn left_out(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// A stream's bytes as [`Lines`] splits them at a cap.
struct Pump<R> {
    r: BufReader<R>,
    lines: Lines,
}

/// Which piece [`Pump::next`] has, before it is lent out.
enum Kind {
    Line,
    Cut,
    Skipped(u64),
}

impl<R: AsyncRead + Unpin> Pump<R> {
    fn new(r: R, cap: usize) -> Pump<R> {
        Pump {
            r: BufReader::with_capacity(64 * 1024, r),
            lines: Lines::new(cap),
        }
    }

    /// The next piece; None at the end of the stream or on a read error.
    async fn next(&mut self) -> Option<Piece<'_>> {
        let kind = loop {
            let chunk = self.r.fill_buf().await.ok()?;
            let at_end = chunk.is_empty();
            let (used, piece) = if at_end {
                (0, self.lines.finish())
            } else {
                self.lines.feed(chunk)
            };
            let kind = piece.map(|p| match p {
                Piece::Line(_) => Kind::Line,
                Piece::Cut(_) => Kind::Cut,
                Piece::Skipped(n) => Kind::Skipped(n),
            });
            self.r.consume(used);
            match kind {
                Some(k) => break k,
                None if at_end => return None,
                None => {}
            }
        };
        Some(match kind {
            Kind::Line => Piece::Line(self.lines.held()),
            Kind::Cut => Piece::Cut(self.lines.held()),
            Kind::Skipped(n) => Piece::Skipped(n),
        })
    }
}

/// One stream's notes into the journal, at most [`NOTES_PER_S`] a second.
struct Notes {
    journal: Journal,
    /// `stdout` or `stderr`.
    stream: &'static str,
    limit: RateLimit,
}

impl Notes {
    fn new(journal: Journal, stream: &'static str) -> Notes {
        Notes {
            journal,
            stream,
            limit: RateLimit::new(NOTES_PER_S),
        }
    }

    fn note(&mut self, message: String) {
        if let Admit::Record { left_out_before } = self.limit.admit(Instant::now()) {
            self.left_out(left_out_before);
            self.journal.record(Actor::Runner, Event::Note { message });
        }
    }

    /// A note that must not be left out (what was cut or skipped).
    fn always(&mut self, message: String) {
        let n = self.limit.left_out();
        self.left_out(n);
        self.journal.record(Actor::Runner, Event::Note { message });
    }

    fn left_out(&self, n: u64) {
        if n > 0 {
            self.journal.record(
                Actor::Runner,
                Event::Note {
                    message: format!(
                        "willy's driver ({}): {n} more lines left out (at most {NOTES_PER_S} a second are recorded)",
                        self.stream
                    ),
                },
            );
        }
    }
}

impl Drop for Notes {
    fn drop(&mut self) {
        let n = self.limit.left_out();
        self.left_out(n);
    }
}

/// Read the driver's stdout: each report to `tx` (waiting while the cycles have
/// [`REPORTS_QUEUED`] unread), anything else noted.
pub async fn read_stdout(
    stdout: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Report>,
    journal: Journal,
) {
    let mut notes = Notes::new(journal, "stdout");
    let mut pump = Pump::new(stdout, MAX_LINE);
    while let Some(piece) = pump.next().await {
        let report = match piece {
            Piece::Line(bytes) => match serde_json::from_slice::<Report>(bytes) {
                Ok(r) => Some(r),
                Err(_) => {
                    notes.note(format!(
                        "willy's driver said (not a report): {}",
                        clip(&String::from_utf8_lossy(bytes), NOTE_BYTES)
                    ));
                    None
                }
            },
            Piece::Cut(_) => {
                notes.always(format!(
                    "willy's driver printed a stdout line over {MAX_LINE} bytes: not a report; \
                     skipping it to its newline"
                ));
                None
            }
            Piece::Skipped(n) => {
                notes.always(format!(
                    "willy's driver: skipped the stdout line over {MAX_LINE} bytes ({} bytes \
                     in all, none kept)",
                    MAX_LINE as u64 + n
                ));
                None
            }
        };
        if let Some(mut r) = report {
            if let Cow::Owned(s) = clip(&r.says, NOTE_BYTES) {
                r.says = s;
            }
            if tx.send(r).await.is_err() {
                return;
            }
        }
    }
}

/// Read the driver's stderr into notes: each line quoted at most [`NOTE_BYTES`], at most
/// [`NOTES_PER_S`] a second.
pub async fn read_stderr(stderr: impl AsyncRead + Unpin, journal: Journal) {
    let mut notes = Notes::new(journal, "stderr");
    let mut pump = Pump::new(stderr, NOTE_BYTES);
    while let Some(piece) = pump.next().await {
        match piece {
            Piece::Line(bytes) => notes.note(format!(
                "willy's driver (stderr): {}",
                String::from_utf8_lossy(bytes)
            )),
            Piece::Cut(head) => notes.note(format!(
                "willy's driver (stderr): {}... (cut at {NOTE_BYTES} bytes)",
                String::from_utf8_lossy(head)
            )),
            // Said only when it is much: a long line's cut is noted already.
            Piece::Skipped(n) if n > 64 * 1024 => notes.always(format!(
                "willy's driver (stderr): skipped {} bytes of one line",
                NOTE_BYTES as u64 + n
            )),
            Piece::Skipped(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn at_most_n_a_second_then_the_count_left_out() {
        let t0 = Instant::now();
        let mut l = RateLimit::new(3);
        let got: Vec<Admit> = (0..5).map(|_| l.admit(t0)).collect();
        assert_eq!(
            got,
            [
                Admit::Record { left_out_before: 0 },
                Admit::Record { left_out_before: 0 },
                Admit::Record { left_out_before: 0 },
                Admit::Drop,
                Admit::Drop
            ]
        );
        assert_eq!(
            l.admit(t0 + Duration::from_millis(999)),
            Admit::Drop,
            "still the same second"
        );
        assert_eq!(
            l.admit(t0 + Duration::from_secs(1)),
            Admit::Record { left_out_before: 3 }
        );
        l.admit(t0 + Duration::from_secs(1));
        l.admit(t0 + Duration::from_secs(1));
        l.admit(t0 + Duration::from_secs(1));
        assert_eq!(l.left_out(), 1);
        assert_eq!(l.left_out(), 0);
    }

    #[test]
    fn clip_cuts_at_a_character_boundary_and_says_the_length() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("\u{e9}\u{e9}", 3), "\u{e9}... (4 bytes in all)");
    }

    /// What the readers made of `bytes`: (reports, notes).
    async fn read(stdout: &'static [u8], stderr: &'static [u8]) -> (Vec<Report>, Vec<String>) {
        let j = Journal::in_memory();
        let (tx, mut rx) = report_channel();
        tokio::join!(
            read_stdout(stdout, tx, j.clone()),
            read_stderr(stderr, j.clone())
        );
        let mut reports = Vec::new();
        while let Ok(r) = rx.try_recv() {
            reports.push(r);
        }
        let notes = j
            .records()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::Note { message } => Some(message),
                _ => None,
            })
            .collect();
        (reports, notes)
    }

    #[tokio::test]
    async fn a_line_over_the_cap_is_skipped_and_said_and_the_next_report_still_comes() {
        let mut out = vec![b'x'; MAX_LINE + 10];
        out.extend_from_slice(b"\n{\"report\":\"ready\",\"says\":\"lib 1\"}\n");
        let out: &'static [u8] = out.leak();
        let (reports, notes) = read(out, b"").await;
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].says, "lib 1");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("over 1048576 bytes"), "{notes:?}");
        assert!(notes[1].contains("1048586 bytes in all"), "{notes:?}");
    }

    #[tokio::test]
    async fn a_stderr_flood_is_recorded_at_most_n_a_second_with_the_count_left_out() {
        let err: &'static [u8] = "oops\n".repeat(1000).leak().as_bytes();
        let started = std::time::Instant::now();
        let (_, notes) = read(b"", err).await;
        let seconds = started.elapsed().as_secs() as usize + 1;
        let left_out: Vec<usize> = notes
            .iter()
            .filter_map(|n| n.strip_prefix("willy's driver (stderr): "))
            .filter_map(|n| n.split_once(" more lines left out"))
            .map(|(n, _)| n.parse().unwrap())
            .collect();
        let recorded = notes.len() - left_out.len();
        assert!(recorded <= NOTES_PER_S as usize * seconds, "{notes:?}");
        assert_eq!(recorded + left_out.iter().sum::<usize>(), 1000, "{notes:?}");
        assert!(!left_out.is_empty());
    }
}
