//! One direction of one proxied connection: read a chunk, ask the faults what happens to each
//! piece of it, write it on now, later, or never, repeat until end of stream.
//!
//! ```text
//!   src --read (stamp arrival)--> chunk --PacketGate--> pieces (packet-exact; drop faults)
//!       --Pacer::verdict--> Pass: write_all(dst) now         (+ last_up stamp when Up)
//!                       \-> Deliver(at): queue, write at `at` (latency, bandwidth; order kept)
//!                       \-> Drop: count it, discard         (blackhole)
//!   net changed --> a shaping fault healed: everything queued is due now
//!   EOF/error --> drain the queue, wait until this direction is not blackholed (a FIN into a
//!                 dead link arrives when the link comes back) --> shutdown(dst)
//!   write to dst fails (that side is gone) --> keep reading src and discard it: src's own close
//!                 is still seen (a broker's keepalive close of a client that already left)
//! ```
//!
//! Reading goes on while pieces wait, so a delay is measured from each chunk's arrival (as
//! toxiproxy does), not from when the one before it was written. The link never waits on
//! decoding or on the journal for a chunk it forwards.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::fault::{Flow, NetState, Pacer, PacketGate, Piece, Verdict};
use super::wiretap::WireTap;
use crate::event::{Actor, Event, Journal, Side};
use crate::scenario::PACKET_NAMES;

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
    pub journal: Journal,
    /// Decodes what passes, beside the forwarding (see wiretap.rs).
    pub tap: WireTap,
}

/// Bytes waiting for their delivery time.
struct Queued {
    at: Instant,
    bytes: Vec<u8>,
}

impl Link {
    fn side(&self) -> Side {
        match self.flow {
            Flow::Up => Side::Client,
            Flow::Down => Side::Broker,
        }
    }

    /// Pump until end of stream. Returns how the source side ended.
    pub async fn run<R, W>(mut self, mut src: R, mut dst: W) -> String
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; 16 * 1024];
        let mut pieces: Vec<Piece> = Vec::new();
        let mut gate = PacketGate::default();
        let mut pacer = Pacer::new(self.stats.id * 2 + u64::from(self.flow == Flow::Down));
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
            tokio::select! {
                r = src.read(&mut buf), if ended.is_none() && queued < MAX_QUEUED => {
                    let arrival = Instant::now();
                    let n = match r {
                        Ok(0) => { self.source_ended(&mut ended, "closed (EOF)".to_string()); continue }
                        Ok(n) => n,
                        Err(e) => { self.source_ended(&mut ended, format!("failed: {e}")); continue }
                    };
                    state = *self.net.borrow();
                    let f = *state.flow(self.flow);
                    gate.pieces(&f, &buf[..n], &mut pieces);
                    if f.drop_packets != 0 && gate.is_opaque() && !told_opaque {
                        told_opaque = true;
                        self.journal.record(Actor::Proxy, Event::Note {
                            message: format!("conn {}: a drop fault cannot see MQTT packets in this stream (not MQTT over plain TCP); passing it untouched", self.stats.id),
                        });
                    }
                    for p in &pieces {
                        let bytes = &buf[p.range.clone()];
                        self.tap.feed(bytes, p.dropped || f.blackhole);
                        if p.dropped {
                            self.count_dropped(bytes.len());
                            if p.starts {
                                self.journal.record(Actor::Proxy, Event::PacketDropped {
                                    conn: self.stats.id,
                                    from: self.side(),
                                    packet: PACKET_NAMES[usize::from(p.packet)].to_string(),
                                });
                            }
                            continue;
                        }
                        for part in bytes.chunks(Pacer::piece_len(&f)) {
                            match pacer.verdict(&f, arrival, part.len()) {
                                Verdict::Drop => self.count_dropped(part.len()),
                                Verdict::Pass if queue.is_empty() => {
                                    self.forward(&mut dst, part, &mut dst_gone).await;
                                }
                                Verdict::Pass => {
                                    queued += part.len();
                                    queue.push_back(Queued { at: arrival, bytes: part.to_vec() });
                                }
                                Verdict::Deliver(at) => {
                                    queued += part.len();
                                    queue.push_back(Queued { at, bytes: part.to_vec() });
                                }
                            }
                        }
                    }
                    // Recorded after the writes: forwarding never waits for the journal.
                    self.tap.flush(&self.journal);
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
                        // Healed: what waited for the delay goes now, in order.
                        let t = Instant::now();
                        queue.iter_mut().for_each(|q| q.at = q.at.min(t));
                        pacer.healed();
                    }
                    state = now;
                }
            }
        }
        let how = ended.expect("the loop ends only when the source ended");
        // The end of the stream crosses the network like any byte: not while it is cut.
        let flow = self.flow;
        if self
            .net
            .wait_for(|s| s.verdict(flow) == Verdict::Pass)
            .await
            .is_ok()
        {
            let _ = dst.shutdown().await;
        }
        how
    }

    /// The source ended: say so now (that moment is what the checks measure), once.
    fn source_ended(&self, ended: &mut Option<String>, how: String) {
        self.journal.record(
            Actor::Proxy,
            Event::SideClosed {
                conn: self.stats.id,
                side: self.side(),
                how: how.clone(),
            },
        );
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
        Ok(())
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
            self.journal.record(
                Actor::Proxy,
                Event::Note {
                    message: format!(
                        "conn {}: writing to {to} failed ({e}); what {from} sends is read and discarded until it closes",
                        self.stats.id
                    ),
                },
            );
            return;
        }
        let c = match self.flow {
            Flow::Up => &self.stats.up_bytes,
            Flow::Down => &self.stats.down_bytes,
        };
        c.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if self.flow == Flow::Up {
            let us = Instant::now()
                .saturating_duration_since(self.journal.start())
                .as_micros() as u64;
            self.stats.last_up_us.store(us, Ordering::Relaxed);
        }
    }
}
