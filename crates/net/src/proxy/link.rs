//! One direction of one proxied connection: read a chunk, ask the faults what happens to each
//! piece of it, write it on now, later, or never, hand it to the recorder, repeat until end of
//! stream.
//!
//! ```text
//!   src --read 32 KiB (stamp arrival)--> chunk --PacketGate--> pieces (one, unless a drop fault
//!                                                              takes packets out of it)
//!       --Pacer::verdict--> Pass: write(dst) now, one write per piece  (+ last_up stamp when Up)
//!                       \-> Deliver(at): queue (a slice of the chunk, not a copy), write at `at`
//!                       \-> Drop: count it, discard                   (blackhole)
//!       --stamp once--> Recorder (its thread decodes and records; a full queue makes us wait)
//!   net changed --> a shaping fault healed: everything queued is due now
//!   EOF/error --> drain the queue, wait until this direction is not blackholed (a FIN into a
//!                 dead link arrives when the link comes back), and a slow close's delay
//!                 --> shutdown(dst)
//!   a limit reached (shape.rs) --> stop reading, drain the queue, ask the connection to close
//!   write to dst fails (that side is gone) --> keep reading src and discard it: src's own close
//!                 is still seen (a broker's keepalive close of a client that already left)
//! ```
//!
//! Reading goes on while pieces wait, so a delay is measured from each chunk's arrival (as
//! toxiproxy does), not from when the one before it was written. The link never decodes and
//! never takes the journal's lock: it stamps each chunk just after writing what passes and
//! hands it over (see wiretap.rs).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::fault::{Flow, NetState, Pacer, PacketGate, Piece, Verdict};
use super::shape::Shape;
use super::wiretap::{FatePiece, Fates, Message, Recorder, Stamp};
use crate::event::{Event, Side};

/// How much one read takes: what noxious reads, and where the bench stops gaining.
pub const READ_BUF: usize = 32 * 1024;

// The recorder keeps buffers a link can read a whole chunk into.
const _: () = assert!(READ_BUF == super::wiretap::POOL_BUF_MIN);

/// Stop reading while this much waits in the queue: a slow link pushes back, like TCP.
const MAX_QUEUED: usize = 1 << 20;

/// Counters for one connection, shared by its two links and the proxy.
#[derive(Debug)]
pub struct ConnStats {
    pub id: u64,
    /// Microseconds since the run's start when client bytes were last forwarded to the broker;
    /// `u64::MAX` until the first.
    pub last_up_us: AtomicU64,
    pub up_bytes: AtomicU64,
    pub down_bytes: AtomicU64,
    pub dropped_up: AtomicU64,
    pub dropped_down: AtomicU64,
    /// How many writes carried bytes to the broker / to willy: with no fault active, one per
    /// chunk read, however many packets it holds (what the coalescing tests and benches count).
    pub up_writes: AtomicU64,
    pub down_writes: AtomicU64,
    /// How often a link found the recorder's queue full and waited for it (backpressure).
    pub recorder_waits: AtomicU64,
    /// A link reached a `limit_data` limit: the connection is to be closed.
    pub limit_reached: tokio::sync::Notify,
}

impl ConnStats {
    pub fn new(id: u64) -> ConnStats {
        ConnStats {
            id,
            last_up_us: AtomicU64::new(u64::MAX),
            up_bytes: AtomicU64::new(0),
            down_bytes: AtomicU64::new(0),
            dropped_up: AtomicU64::new(0),
            dropped_down: AtomicU64::new(0),
            up_writes: AtomicU64::new(0),
            down_writes: AtomicU64::new(0),
            recorder_waits: AtomicU64::new(0),
            limit_reached: tokio::sync::Notify::new(),
        }
    }

    /// When client bytes were last forwarded, in ms since the run's start.
    pub fn last_up_ms(&self) -> Option<f64> {
        match self.last_up_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(us as f64 / 1000.0),
        }
    }
}

/// Everything a link needs besides its two stream halves.
pub struct Link {
    pub flow: Flow,
    pub stats: Arc<ConnStats>,
    pub net: watch::Receiver<NetState>,
    /// The run's start: `last_up_us` is measured from it.
    pub start: Instant,
    /// Decodes and records what passes, off this task (see wiretap.rs).
    pub recorder: Recorder,
}

/// Bytes waiting for their delivery time: a slice of the chunk they came in.
struct Queued {
    at: Instant,
    bytes: Bytes,
}

/// A shaping fault healed (the net changed, off the per-chunk path): what waited for the
/// delay goes now, in order.
fn healed(queue: &mut VecDeque<Queued>, pacer: &mut Pacer) {
    let t = Instant::now();
    queue.iter_mut().for_each(|q| q.at = q.at.min(t));
    pacer.healed();
}

impl Link {
    fn side(&self) -> Side {
        match self.flow {
            Flow::Up => Side::Client,
            Flow::Down => Side::Broker,
        }
    }

    fn way(&self) -> &'static str {
        match self.flow {
            Flow::Up => "upstream (willy -> broker)",
            Flow::Down => "downstream (broker -> willy)",
        }
    }

    /// Pump until end of stream. Returns how the source side ended.
    pub async fn run<R, W>(mut self, mut src: R, mut dst: W) -> String
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::with_capacity(READ_BUF);
        let mut pieces: Vec<Piece> = Vec::new();
        let mut gate = PacketGate::default();
        let seed = self.stats.id * 2 + u64::from(self.flow == Flow::Down);
        let mut pacer = Pacer::new(seed);
        let mut shape = Shape::new(seed);
        let mut limited = false;
        let mut queue: VecDeque<Queued> = VecDeque::new();
        let mut queued = 0usize;
        let mut state: NetState = *self.net.borrow_and_update();
        let mut net_open = true;
        let mut told_opaque = false;
        // Set once a write to dst failed: from then on what src sends is read and discarded.
        let mut dst_gone = false;
        // Some(how) once the source has ended; the queue still drains.
        let mut ended: Option<String> = None;
        loop {
            if ended.is_some() && queue.is_empty() {
                break;
            }
            let due = queue.front().map(|q| q.at);
            self.ready_buf(&mut buf);
            tokio::select! {
                r = src.read_buf(&mut buf), if ended.is_none() && queued < MAX_QUEUED => {
                    let arrival = Instant::now();
                    match r {
                        Ok(0) => { self.source_ended(&mut ended, "closed (EOF)".to_string()).await; continue }
                        Ok(_) => {}
                        Err(e) => { self.source_ended(&mut ended, format!("failed: {e}")).await; continue }
                    };
                    let chunk = buf.split().freeze();
                    state = *self.net.borrow();
                    let f = *state.flow(self.flow);
                    gate.pieces(&f, &chunk, &mut pieces);
                    limited = shape.limit(&f, &mut pieces);
                    if f.drop_packets != 0 && gate.is_opaque() && !told_opaque {
                        told_opaque = true;
                        self.tell_opaque().await;
                    }
                    for p in &pieces {
                        if p.dropped {
                            self.count_dropped(p.range.len());
                            continue;
                        }
                        let piece = chunk.slice(p.range.clone());
                        let mut off = 0;
                        for len in shape.cuts(&f, piece.len()) {
                            let part = piece.slice(off..off + len);
                            off += len;
                            match pacer.verdict(&f, arrival, part.len()) {
                                Verdict::Drop => self.count_dropped(part.len()),
                                Verdict::Pass if queue.is_empty() => {
                                    self.forward(&mut dst, &part, &mut dst_gone).await;
                                }
                                Verdict::Pass => {
                                    queued += part.len();
                                    queue.push_back(Queued { at: arrival, bytes: part });
                                }
                                Verdict::Deliver(at) => {
                                    queued += part.len();
                                    queue.push_back(Queued { at, bytes: part });
                                }
                            }
                        }
                    }
                    // Stamped after the writes (a packet is recorded as forwarded when it was
                    // written), handed over without waiting for the journal.
                    let fates = fates(&pieces, f.blackhole);
                    let m = Message::Bytes { conn: self.stats.id, flow: self.flow, at: Stamp::now(), bytes: chunk, fates };
                    self.recorder.send(m, &self.stats.recorder_waits).await;
                    if limited {
                        self.tell_limited(f.limit.unwrap_or(0)).await;
                        ended = Some("limit_data reached".to_string());
                    }
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                    let q = queue.pop_front().expect("due only when queued");
                    queued -= q.bytes.len();
                    self.forward(&mut dst, &q.bytes, &mut dst_gone).await;
                }
                changed = self.net.changed(), if net_open => {
                    if changed.is_err() {
                        net_open = false;
                        continue;
                    }
                    let now = *self.net.borrow_and_update();
                    if state.flow(self.flow).shapes() && !now.flow(self.flow).shapes() {
                        healed(&mut queue, &mut pacer);
                    }
                    state = now;
                }
            }
        }
        let how = ended.expect("the loop ends only when the source ended");
        self.end_stream(&mut dst, limited).await;
        how
    }

    /// The source ended and the queue is drained (once per link, off the per-chunk path): a
    /// limit reached asks the connection to close; else the end of the stream goes on to dst.
    async fn end_stream<W: AsyncWrite + Unpin>(&mut self, dst: &mut W, limited: bool) {
        if limited {
            // What passed is written; the connection's task closes it both ways.
            self.stats.limit_reached.notify_one();
            return;
        }
        // The end of the stream crosses the network like any byte: not while it is cut.
        let flow = self.flow;
        if self
            .net
            .wait_for(|s| s.verdict(flow) == Verdict::Pass)
            .await
            .is_ok()
        {
            let slow = self.net.borrow().flow(flow).close_delay;
            if !slow.is_zero() {
                let message = format!(
                    "conn {}: slow_close: the end of the stream {} passed on {} ms late",
                    self.stats.id,
                    self.way(),
                    slow.as_millis()
                );
                self.tell(Event::Note { message }).await;
                tokio::time::sleep(slow).await;
            }
            let _ = dst.shutdown().await;
        }
    }

    /// `buf` ready for a read of up to [`READ_BUF`]. The last chunk may still be shared with
    /// the recorder or the queue: then this takes a buffer the recorder is done with, or fresh
    /// memory; else it reuses what is there.
    #[inline]
    fn ready_buf(&self, buf: &mut BytesMut) {
        if buf.capacity() < READ_BUF {
            if let Some(b) = self.recorder.buffer() {
                *buf = b;
            }
        }
        buf.reserve(READ_BUF);
    }

    /// A drop fault is on but the stream is not MQTT over plain TCP (said once per link).
    async fn tell_opaque(&self) {
        let message = format!("conn {}: a drop fault cannot see MQTT packets in this stream (not MQTT over plain TCP); passing it untouched", self.stats.id);
        self.tell(Event::Note { message }).await;
    }

    /// A `limit_data` limit of `limit` bytes was reached (once per link).
    async fn tell_limited(&self, limit: u64) {
        let message = format!(
            "conn {}: limit_data: {} B passed {}; the connection is closed",
            self.stats.id,
            limit,
            self.way()
        );
        self.tell(Event::Note { message }).await;
    }

    /// A proxy record about this connection, stamped now, in order with its wire records.
    async fn tell(&self, event: Event) {
        self.recorder
            .tell(self.stats.id, event, &self.stats.recorder_waits)
            .await;
    }

    /// The source ended: say so now (that moment is what the checks measure), once.
    async fn source_ended(&self, ended: &mut Option<String>, how: String) {
        self.tell(Event::SideClosed {
            conn: self.stats.id,
            side: self.side(),
            how: how.clone(),
        })
        .await;
        *ended = Some(how);
    }

    fn count_dropped(&self, n: usize) {
        let c = match self.flow {
            Flow::Up => &self.stats.dropped_up,
            Flow::Down => &self.stats.dropped_down,
        };
        c.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `write_all`, counting each write that carried bytes.
    async fn write_counted<W: AsyncWrite + Unpin>(
        &self,
        dst: &mut W,
        mut bytes: &[u8],
    ) -> std::io::Result<()> {
        let writes = match self.flow {
            Flow::Up => &self.stats.up_writes,
            Flow::Down => &self.stats.down_writes,
        };
        while !bytes.is_empty() {
            let n = dst.write(bytes).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            writes.fetch_add(1, Ordering::Relaxed);
            bytes = &bytes[n..];
        }
        // TLS may keep the tail of a record it could not send yet until a flush (a no-op for
        // plain TCP).
        dst.flush().await
    }

    /// Write `bytes` on to dst. Once dst is gone (a write failed: that side closed, its own
    /// link reports how), count them as dropped instead, so src is still read to its end.
    async fn forward<W: AsyncWrite + Unpin>(&self, dst: &mut W, bytes: &[u8], dst_gone: &mut bool) {
        if *dst_gone {
            self.count_dropped(bytes.len());
            return;
        }
        if let Err(e) = self.write_counted(dst, bytes).await {
            *dst_gone = true;
            self.count_dropped(bytes.len());
            let (to, from) = match self.flow {
                Flow::Up => ("the broker", "willy"),
                Flow::Down => ("willy", "the broker"),
            };
            self.tell(Event::Note {
                message: format!(
                    "conn {}: writing to {to} failed ({e}); what {from} sends is read and discarded until it closes",
                    self.stats.id
                ),
            })
            .await;
            return;
        }
        let c = match self.flow {
            Flow::Up => &self.stats.up_bytes,
            Flow::Down => &self.stats.down_bytes,
        };
        c.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if self.flow == Flow::Up {
            let us = Instant::now()
                .saturating_duration_since(self.start)
                .as_micros() as u64;
            self.stats.last_up_us.store(us, Ordering::Relaxed);
        }
    }
}

/// What the recorder needs to know of a chunk's pieces: usually that every byte went alike.
fn fates(pieces: &[Piece], blackhole: bool) -> Fates {
    match pieces {
        [] => Fates::All { dropped: blackhole },
        [p] if !p.dropped => Fates::All { dropped: blackhole },
        _ => Fates::Pieces(
            pieces
                .iter()
                .map(|p| FatePiece {
                    range: p.range.clone(),
                    dropped: p.dropped || blackhole,
                    dropped_packet: (p.dropped && p.starts).then_some(p.packet),
                })
                .collect(),
        ),
    }
}
