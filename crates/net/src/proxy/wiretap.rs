//! The wire tap beside each link, and the recorder that runs it off the data path: the bytes
//! as they passed -> decoded units -> `wire` records.
//!
//! ```text
//!   link: read chunk -> fault decides -> write what passes -> stamp (Instant + UTC, once)
//!           '-> Recorder::send(Bytes { chunk (shared, not copied), fates, stamp })
//!                  | bounded channel: full -> the link waits (never a silent loss)
//!                  v
//!   recorder thread (one per proxy): per connection two WireTaps (one protocol level)
//!           WireTap::feed(piece, dropped) -> decoded units -> Journal::record_at(stamp, ...)
//!           (typed records; their lines wait in the journal's buffers; with PUBLISH runs the
//!           decoder folds the repeats of a PUBLISH into a count, see WireTap::flush_at)
//!           the chunk done -> its buffer back to the links (Recorder::buffer)
//!           caught up (queue empty) -> Journal::write_out: one write per file for the batch
//! ```
//!
//! Each link hands over every byte it read, in stream order, with its fate (forwarded or
//! swallowed by a fault), so the decoder never sees a gap and a dropped PINGREQ is still a
//! PINGREQ in the log. The link stamps a chunk once, just after it wrote what passes, and goes
//! on reading: decoding, formatting and the journal's lock cost the recorder's thread, not the
//! forwarding. The proxy's own records about a connection (a side closed, a packet dropped, the
//! connection closed) travel the same channel, so a connection's records keep their order.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::fault::Flow;
use crate::event::{Actor, Event, Journal, Side};
use crate::tap::{Decoded, Decoder, Direction, Fields, PacketInfo, PacketKind};

/// Chunks (of at most one read buffer each) waiting for the recorder before a link waits.
pub const RECORD_QUEUE: usize = 256;

pub use crate::scenario::PublishRecords;

/// When something happened, read once on the data path: the journal's two clocks.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub at: Instant,
    pub t: DateTime<Utc>,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            at: Instant::now(),
            t: Utc::now(),
        }
    }
}

/// What became of the bytes of one chunk, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fates {
    /// Every byte alike: forwarded (or queued for later), or swallowed by a blackhole.
    All { dropped: bool },
    /// A drop fault cut the chunk: each run of bytes and its fate.
    Pieces(Vec<FatePiece>),
}

/// A run of bytes of a chunk and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatePiece {
    pub range: Range<usize>,
    pub dropped: bool,
    /// A drop fault matched the packet starting here (its type): one `PacketDropped` record.
    pub dropped_packet: Option<u8>,
}

/// What a link (or the connection's task) hands the recorder.
#[derive(Debug)]
pub enum Message {
    /// A connection opened: its two taps are made, sharing one protocol level.
    Opened { conn: u64 },
    /// Bytes one direction read, in stream order, with their fates.
    Bytes {
        conn: u64,
        flow: Flow,
        at: Stamp,
        bytes: Bytes,
        fates: Fates,
    },
    /// A proxy record about the connection, kept in order with its wire records.
    Event { conn: u64, at: Stamp, event: Event },
    /// Both directions ended: the taps go.
    Closed { conn: u64 },
    /// Answered once everything sent before it is recorded.
    Settle(tokio::sync::oneshot::Sender<()>),
}

/// Read buffers the recorder is done with, for the links to read into again: a chunk's memory
/// is freed on the recorder's thread, and a fresh one for each read costs page faults on the
/// link's side and the allocator's trimming (madvise) on the recorder's, more than the tap's
/// decoding of a flood. At most [`POOL_MAX`] wait here.
type Pool = Arc<std::sync::Mutex<Vec<BytesMut>>>;

/// How many read buffers the pool keeps (of at most [`POOL_BUF_MAX`] each): 2 MiB at most.
pub const POOL_MAX: usize = 32;
/// The buffers it keeps: at least what a link reads at once (link.rs's `READ_BUF`, which
/// asserts it is this), at most twice that.
pub const POOL_BUF_MIN: usize = 32 * 1024;
const POOL_BUF_MAX: usize = 2 * POOL_BUF_MIN;

/// The handle links send through. Cheap to clone; the recorder's thread ends when the last
/// handle is dropped, after recording everything sent.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Message>,
    /// A link that found the queue full resumes once this many places are free.
    resume: usize,
    pool: Pool,
}

impl Recorder {
    /// Start a recorder thread that records into `journal`, with room for `queue` messages.
    pub fn start(journal: Journal, queue: usize, publishes: PublishRecords) -> Recorder {
        let (tx, rx) = mpsc::channel(queue);
        let pool = Pool::default();
        let done = pool.clone();
        std::thread::Builder::new()
            .name("unplug-recorder".into())
            .spawn(move || record_all(rx, journal, publishes, done))
            .expect("a thread for the proxy's recorder");
        Recorder {
            tx,
            resume: (queue / 4).max(1),
            pool,
        }
    }

    /// A read buffer the recorder is done with, if one waits (empty, with its capacity).
    pub fn buffer(&self) -> Option<BytesMut> {
        self.pool.lock().ok()?.pop()
    }

    /// A proxy record about connection `conn`, stamped now, in order with its wire records.
    pub async fn tell(&self, conn: u64, event: Event, waits: &AtomicU64) {
        let at = Stamp::now();
        self.send(Message::Event { conn, at, event }, waits).await;
    }

    /// Hand `m` over; when the queue is full, wait (counted in `waits`) rather than lose it.
    pub async fn send(&self, m: Message, waits: &AtomicU64) {
        match self.tx.try_send(m) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(m)) => {
                waits.fetch_add(1, Ordering::Relaxed);
                // Wait for room for many, not one: the link is woken once per many chunks the
                // recorder takes, not once per chunk. Err only when the recorder's thread is
                // gone (it panicked): nothing to do.
                if let Ok(mut room) = self.tx.reserve_many(self.resume).await {
                    room.next()
                        .expect("reserve_many gives at least one")
                        .send(m);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Recorder {
    /// Wait until everything sent so far is in the journal.
    pub async fn settle(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Settle(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// How long the recorder sleeps when it found nothing, doubling while nothing comes.
const IDLE_MIN: Duration = Duration::from_micros(200);
const IDLE_MAX: Duration = Duration::from_millis(2);
/// After this long with nothing to record it stops looking and waits to be woken: an idle
/// proxy costs no CPU (200 of them polling every 2 ms took a whole core).
const PARK_AFTER: Duration = Duration::from_millis(50);

/// The recorder's thread: one message after the other, in the order they were sent. While
/// traffic flows it looks for work on its own instead of being woken: a link that sends does
/// not make a system call to wake it, which on a round trip costs more than the recording
/// saves (measured: p50 +10 us with a wake per chunk). Records come at most `IDLE_MAX` later;
/// their times do not move. After [`PARK_AFTER`] of nothing it sleeps until a message wakes
/// it: the first chunk after a silence pays one wake-up.
fn record_all(
    mut rx: mpsc::Receiver<Message>,
    journal: Journal,
    publishes: PublishRecords,
    pool: Pool,
) {
    let runs = publishes == PublishRecords::Runs;
    let mut conns: HashMap<u64, [WireTap; 2]> = HashMap::new();
    let mut idle = IDLE_MIN;
    let mut idle_for = Duration::ZERO;
    // Lines left in the journal's buffers since the last write_out.
    let mut unwritten = false;
    let end_runs = |taps: &mut [WireTap; 2]| taps.iter_mut().for_each(|t| t.end_run(&journal));
    loop {
        let m = match rx.try_recv() {
            Ok(m) => {
                idle = IDLE_MIN;
                idle_for = Duration::ZERO;
                unwritten = true;
                m
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                // Caught up: what the runs hold goes in now, not at the flood's end, and the
                // lines of this batch go to the files in one write each.
                conns.values_mut().for_each(end_runs);
                if std::mem::take(&mut unwritten) {
                    journal.write_out();
                }
                if idle_for < PARK_AFTER {
                    std::thread::sleep(idle);
                    idle_for += idle;
                    idle = (idle * 2).min(IDLE_MAX);
                    continue;
                }
                match rx.blocking_recv() {
                    Some(m) => {
                        idle = IDLE_MIN;
                        idle_for = Duration::ZERO;
                        unwritten = true;
                        m
                    }
                    None => return,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => {
                journal.write_out();
                return;
            }
        };
        match m {
            Message::Opened { conn } => {
                let level = shared_level();
                conns.insert(
                    conn,
                    [
                        WireTap::new(conn, Flow::Up, level.clone()).with_runs(runs),
                        WireTap::new(conn, Flow::Down, level).with_runs(runs),
                    ],
                );
            }
            Message::Bytes {
                conn,
                flow,
                at,
                bytes,
                fates,
            } => {
                let Some(taps) = conns.get_mut(&conn) else {
                    continue;
                };
                let tap = &mut taps[usize::from(flow == Flow::Down)];
                match fates {
                    Fates::All { dropped } => tap.feed(&bytes, dropped),
                    Fates::Pieces(pieces) => {
                        for p in pieces {
                            tap.feed(&bytes[p.range], p.dropped);
                            if let Some(packet) = p.dropped_packet {
                                journal.record_at(
                                    at.at,
                                    at.t,
                                    Actor::Proxy,
                                    Event::PacketDropped {
                                        conn,
                                        from: tap.from,
                                        packet: crate::mqtt::v311_name(packet).to_string(),
                                    },
                                );
                            }
                        }
                    }
                }
                tap.flush_at(&journal, at);
                recycle(&pool, bytes);
            }
            Message::Event { conn, at, event } => {
                if let Some(taps) = conns.get_mut(&conn) {
                    end_runs(taps);
                }
                journal.record_at(at.at, at.t, Actor::Proxy, event)
            }
            Message::Closed { conn } => {
                if let Some(mut taps) = conns.remove(&conn) {
                    end_runs(&mut taps);
                }
            }
            Message::Settle(done) => {
                conns.values_mut().for_each(end_runs);
                journal.write_out();
                let _ = done.send(());
            }
        }
    }
}

/// Give a chunk's memory back to the links when nothing else holds it (the link reads into a
/// new buffer before it hands a chunk over, so usually nothing does).
fn recycle(pool: &Pool, bytes: Bytes) {
    let Ok(mut b) = bytes.try_into_mut() else {
        return;
    };
    if b.capacity() < POOL_BUF_MIN || b.capacity() > POOL_BUF_MAX {
        return;
    }
    b.clear();
    if let Ok(mut pool) = pool.lock() {
        if pool.len() < POOL_MAX {
            pool.push(b);
        }
    }
}

/// PUBLISHes one side sent back to back, not recorded yet (see [`PublishRecords::Runs`]).
struct Run {
    key: RunKey,
    dropped: bool,
    count: u64,
    bytes: u64,
    first: Stamp,
    last: Stamp,
}

/// One direction's decoder and the units it decoded that are not recorded yet.
pub struct WireTap {
    conn: u64,
    from: Side,
    decoder: Decoder,
    /// Decoded since the last flush (the decoder appends to it) ...
    pending: Vec<Decoded>,
    /// ... and for each feed since: how many units `pending` held after it, and their fate
    /// (dropped by a fault).
    fates: Vec<(usize, bool)>,
    /// PUBLISHes are recorded as runs ([`PublishRecords::Runs`]) ...
    runs: bool,
    /// ... and this one is under way.
    run: Option<Run>,
}

/// The protocol level both directions of one connection share (the CONNECT sets it).
pub fn shared_level() -> Arc<AtomicU8> {
    Arc::new(AtomicU8::new(0))
}

impl WireTap {
    pub fn new(conn: u64, flow: Flow, level: Arc<AtomicU8>) -> WireTap {
        let (direction, from) = match flow {
            Flow::Up => (Direction::Upstream, Side::Client),
            Flow::Down => (Direction::Downstream, Side::Broker),
        };
        WireTap {
            conn,
            from,
            decoder: Decoder::new(direction, level),
            pending: Vec::new(),
            fates: Vec::new(),
            runs: false,
            run: None,
        }
    }

    /// Record PUBLISHes as runs (`true`) or one by one.
    pub fn with_runs(mut self, runs: bool) -> WireTap {
        self.runs = runs;
        // The decoder counts the PUBLISHes that repeat the one before them instead of
        // decoding each: they would join its run here anyway.
        self.decoder.fold_publishes(runs);
        self
    }

    /// Decode the next bytes of the stream; `dropped` says a fault swallowed them.
    pub fn feed(&mut self, bytes: &[u8], dropped: bool) {
        self.decoder.feed(bytes, &mut self.pending);
        self.fates.push((self.pending.len(), dropped));
    }

    /// Record what was decoded since the last flush, at the moment the link stamped.
    pub fn flush_at(&mut self, journal: &Journal, at: Stamp) {
        let mut pending = std::mem::take(&mut self.pending);
        let fates = std::mem::take(&mut self.fates);
        let mut folds = std::mem::take(self.decoder.folds());
        let mut fold = folds.iter().peekable();
        let mut fate = fates.iter();
        let (mut upto, mut dropped) = (0, false);
        for (i, d) in pending.drain(..).enumerate() {
            while i >= upto {
                (upto, dropped) = *fate.next().expect("every unit came from a feed");
            }
            if self.runs {
                if let Some((topic, retain, payload_len, size)) = run_member(&d) {
                    let key = (topic, retain, payload_len);
                    self.add_to_run(journal, key, dropped, size, at);
                    // The PUBLISHes the decoder folded into this one: the same feed (fate),
                    // topic, retain flag and payload size, so the same run.
                    if let Some(f) = fold.next_if(|f| f.index == i) {
                        let r = self.run.as_mut().expect("a run was just added to");
                        r.count += f.count;
                        r.bytes += f.bytes;
                    }
                    continue;
                }
            }
            self.end_run(journal);
            journal.record_at(
                at.at,
                at.t,
                Actor::Wire,
                to_event(self.conn, self.from, dropped, d),
            );
        }
        debug_assert!(fold.next().is_none(), "every fold is on a run's PUBLISH");
        // The allocations are kept for the next chunk.
        self.pending = pending;
        self.fates = fates;
        self.fates.clear();
        folds.clear();
        *self.decoder.folds() = folds;
    }

    fn add_to_run(
        &mut self,
        journal: &Journal,
        (topic, retain, payload_len): (&str, bool, usize),
        dropped: bool,
        bytes: u64,
        at: Stamp,
    ) {
        if let Some(r) = self.run.as_mut().filter(|r| {
            r.dropped == dropped
                && r.key.topic == topic
                && r.key.retain == retain
                && r.key.payload_len == payload_len
        }) {
            r.count += 1;
            r.bytes += bytes;
            r.last = at;
            return;
        }
        self.end_run(journal);
        self.run = Some(Run {
            key: RunKey {
                topic: topic.to_string(),
                retain,
                payload_len,
            },
            dropped,
            count: 1,
            bytes,
            first: at,
            last: at,
        });
    }

    /// Record the run under way, if any, at the time of its first PUBLISH.
    pub fn end_run(&mut self, journal: &Journal) {
        let Some(r) = self.run.take() else {
            return;
        };
        let event = Event::PublishRun {
            conn: self.conn,
            from: self.from,
            dropped: r.dropped,
            topic: r.key.topic,
            qos: 0,
            retain: r.key.retain,
            payload_len: r.key.payload_len,
            count: r.count,
            bytes: r.bytes,
            first_ms: journal.ms_since_start(r.first.at),
            last_ms: journal.ms_since_start(r.last.at),
        };
        journal.record_at(r.first.at, r.first.t, Actor::Wire, event);
    }
}

/// What the PUBLISHes of one run share.
#[derive(Debug, PartialEq, Eq)]
struct RunKey {
    topic: String,
    retain: bool,
    payload_len: usize,
}

/// A PUBLISH that may join a run, as (topic, retain, payload size, packet size): QoS 0 only
/// (a QoS 1 or 2 PUBLISH carries a packet id the delivery checks pair with its
/// acknowledgement, so it is recorded alone).
fn run_member(d: &Decoded) -> Option<(&str, bool, usize, u64)> {
    match d {
        Decoded::Packet(PacketInfo {
            kind: PacketKind::Publish,
            fields:
                Fields::Publish {
                    topic,
                    qos: 0,
                    retain,
                    payload_len,
                    ..
                },
            size,
            ..
        }) => Some((topic, *retain, *payload_len, *size as u64)),
        _ => None,
    }
}

fn to_event(conn: u64, from: Side, dropped: bool, d: Decoded) -> Event {
    match d {
        Decoded::Packet(PacketInfo {
            kind,
            framing,
            size,
            hex,
            fields,
        }) => Event::Packet {
            conn,
            from,
            dropped,
            kind,
            framing,
            size,
            hex,
            fields,
        },
        Decoded::WsControl {
            opcode,
            masked,
            close_code,
            payload_len,
        } => Event::WireFrame {
            conn,
            from,
            dropped,
            what: crate::tap::codec::ws_control_text(opcode, masked, close_code, payload_len),
        },
        Decoded::TlsRecord {
            content_type,
            length,
        } => Event::WireFrame {
            conn,
            from,
            dropped,
            what: format!("tls {content_type}, {length} B"),
        },
        Decoded::HttpUpgrade { line } => Event::WireFrame {
            conn,
            from,
            dropped,
            what: format!("HTTP {line}"),
        },
        Decoded::Undecodable {
            offset,
            hex,
            reason,
        } => Event::WireFrame {
            conn,
            from,
            dropped,
            what: format!(
                "undecodable at byte {offset}: {reason} ({hex}); not MQTT from here on (or the stream lost sync): the rest of this direction is forwarded and only counted"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_ws_pingreq_reads_like_the_seed_capture() {
        let mut tap = WireTap::new(7, Flow::Up, shared_level());
        // A masked binary frame carrying c000 (seed 001), mask key 75e2bbfd.
        let key = [0x75, 0xe2, 0xbb, 0xfd];
        let frame = [
            0x82,
            0x82,
            key[0],
            key[1],
            key[2],
            key[3],
            0xc0 ^ key[0],
            key[1],
        ];
        tap.feed(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", false);
        tap.feed(&frame, true);
        let journal = Journal::in_memory();
        tap.flush_at(&journal, Stamp::now());
        let lines: Vec<String> = journal
            .records()
            .iter()
            .map(|r| r.event.to_string())
            .collect();
        assert_eq!(lines[0], "conn 7: willy -> mqtt HTTP GET /mqtt HTTP/1.1");
        assert_eq!(
            lines[1],
            "conn 7: willy -> mqtt PINGREQ (ws binary masked, 2 B: c000) dropped by the fault"
        );
    }

    #[test]
    fn a_tcp_publish_shows_its_topic() {
        let mut tap = WireTap::new(1, Flow::Down, shared_level());
        let mut p = vec![0x30, 18, 0, 14];
        p.extend_from_slice(b"test/connected");
        p.extend_from_slice(b"true");
        tap.feed(&p, false);
        let journal = Journal::in_memory();
        tap.flush_at(&journal, Stamp::now());
        let line = journal.records()[0].event.to_string();
        assert!(
            line.starts_with("conn 1: mqtt -> willy PUBLISH (tcp, 20 B)"),
            "{line}"
        );
        assert!(line.contains("topic=test/connected"), "{line}");
    }

    /// A QoS `qos` PUBLISH to `topic` with `payload` bytes of payload (packet id 1 above QoS 0).
    fn publish(topic: &str, qos: u8, payload: usize) -> Vec<u8> {
        let id = if qos > 0 { 2 } else { 0 };
        let mut p = vec![0x30 | (qos << 1), (2 + topic.len() + id + payload) as u8, 0];
        p.push(topic.len() as u8);
        p.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            p.extend_from_slice(&[0, 1]);
        }
        p.resize(p.len() + payload, b'x');
        p
    }

    #[tokio::test]
    async fn a_chunk_the_recorder_is_done_with_comes_back_as_an_empty_read_buffer() {
        let journal = Journal::in_memory();
        let recorder = Recorder::start(journal.clone(), 4, PublishRecords::Each);
        let waits = AtomicU64::new(0);
        recorder.send(Message::Opened { conn: 1 }, &waits).await;
        let mut buf = BytesMut::with_capacity(POOL_BUF_MIN);
        buf.extend_from_slice(&[0xc0, 0]);
        let shared = buf.split().freeze();
        let bytes = shared.clone();
        let m = |bytes| Message::Bytes {
            conn: 1,
            flow: Flow::Up,
            at: Stamp::now(),
            bytes,
            fates: Fates::All { dropped: false },
        };
        drop(buf);
        // Still held here: not given back.
        recorder.send(m(bytes), &waits).await;
        recorder.settle().await;
        assert!(recorder.buffer().is_none());
        recorder.send(m(shared), &waits).await;
        recorder.settle().await;
        let b = recorder.buffer().expect("the buffer came back");
        assert!(b.is_empty() && b.capacity() >= POOL_BUF_MIN);
        assert_eq!(journal.records().len(), 2, "both PINGREQs recorded");
    }

    /// Records as the journal keeps them (every field, and the times).
    fn recorded(journal: &Journal) -> Vec<String> {
        journal
            .records()
            .iter()
            .map(|r| format!("{:?} {:?} {:?}", r.t, r.actor, r.event))
            .collect()
    }

    #[test]
    fn folding_publishes_in_the_decoder_records_the_same_runs() {
        // One tap whose decoder folds repeated PUBLISHes, one that decodes each (what the runs
        // were built from before): fed the same bytes in the same chunks with the same fates,
        // they record the same thing, whatever the mix of packets and the cuts.
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for (v5, ws) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut stream = Vec::new();
            for i in 0..3000 {
                let topic: &[u8] = match next(8) {
                    0 => b"b",
                    // Two different invalid UTF-8 topics: the same lossy string.
                    1 => b"\xff",
                    2 => b"\xfe",
                    _ => b"a",
                };
                let b0 = match next(12) {
                    0 => 0x31,              // retain
                    1 => 0x38,              // dup
                    2 => 0x32,              // QoS 1
                    3 => 0xc0,              // PINGREQ
                    _ if i == 2900 => 0x36, // QoS 3: undecodable, the rest only counted
                    _ => 0x30,
                };
                if b0 == 0xc0 {
                    stream.extend_from_slice(&[0xc0, 0]);
                    continue;
                }
                let mut body = vec![0, topic.len() as u8];
                body.extend_from_slice(topic);
                if b0 & 6 != 0 {
                    body.extend_from_slice(&[0, 9]);
                }
                if v5 {
                    if next(3) == 0 {
                        body.extend_from_slice(&[2, 0x01, 1]); // payload format indicator
                    } else {
                        body.push(0);
                    }
                }
                body.resize(body.len() + 3 + next(2) as usize, b'x');
                stream.push(b0);
                stream.push(body.len() as u8);
                stream.extend_from_slice(&body);
            }
            if ws {
                // The same MQTT bytes in masked WebSocket frames of any size, a ping among
                // them now and then.
                let mqtt = std::mem::take(&mut stream);
                stream = crate::tap::codec::ws_upgrade("x", "/mqtt", "k");
                let mut rest = &mqtt[..];
                while !rest.is_empty() {
                    let n = (1 + next(200) as usize).min(rest.len());
                    let mask = (next(u64::MAX) as u32).to_ne_bytes();
                    stream.extend(crate::tap::codec::ws_frame(&rest[..n], mask));
                    rest = &rest[n..];
                    if next(20) == 0 {
                        stream.extend_from_slice(&[0x89, 0x80, 1, 2, 3, 4]);
                    }
                }
            }
            // The cuts: per flush, one to three feeds (pieces of a chunk, each its own fate),
            // its stamp, and whether the recorder caught up after it.
            let mut plan = Vec::new();
            let mut left = stream.len();
            while left > 0 {
                let mut feeds = Vec::new();
                for _ in 0..=next(3) {
                    let n = (1 + next(300) as usize).min(left);
                    feeds.push((n, next(4) == 0));
                    left -= n;
                }
                plan.push((feeds, Stamp::now(), next(5) == 0));
            }
            // Both into one journal (the same start), one after the other.
            let journal = Journal::in_memory();
            let mut folded = 0;
            for fold in [true, false] {
                let level = Arc::new(AtomicU8::new(if v5 { 5 } else { 4 }));
                let mut tap = WireTap::new(1, Flow::Up, level).with_runs(true);
                tap.decoder.fold_publishes(fold);
                let mut rest = &stream[..];
                for (feeds, at, caught_up) in &plan {
                    for &(n, dropped) in feeds {
                        tap.feed(&rest[..n], dropped);
                        rest = &rest[n..];
                    }
                    folded += tap.decoder.folds().len();
                    tap.flush_at(&journal, *at);
                    if *caught_up {
                        tap.end_run(&journal);
                    }
                }
                tap.end_run(&journal);
            }
            assert!(folded > 100, "PUBLISHes were folded");
            let all = recorded(&journal);
            let (f, e) = all.split_at(all.len() / 2);
            assert!(e.len() > 100);
            if let Some(i) = (0..f.len().max(e.len())).find(|&i| f.get(i) != e.get(i)) {
                panic!(
                    "v5 {v5}, ws {ws}: record {i} of {}/{}:\n folding {:?}\n each    {:?}",
                    f.len(),
                    e.len(),
                    f.get(i),
                    e.get(i)
                );
            }
        }
    }

    #[test]
    fn a_run_holds_qos0_publishes_of_one_topic_retain_and_payload_size() {
        let mut tap = WireTap::new(1, Flow::Up, shared_level()).with_runs(true);
        let stream = [
            publish("a", 0, 4),
            publish("a", 0, 4),
            publish("a", 0, 4),
            publish("a", 0, 5), // another size: a new run
            publish("b", 0, 5), // another topic: a new run
            publish("b", 1, 5), // QoS 1: alone, with its packet id
            publish("b", 0, 5),
        ]
        .concat();
        tap.feed(&stream, false);
        let journal = Journal::in_memory();
        tap.flush_at(&journal, Stamp::now());
        tap.end_run(&journal);
        let got: Vec<String> = journal
            .records()
            .iter()
            .map(|r| match &r.event {
                Event::PublishRun {
                    topic,
                    payload_len,
                    count,
                    bytes,
                    ..
                } => format!("run {topic} {payload_len} x{count} {bytes} B"),
                Event::Packet { kind, fields, .. } => format!("{kind} {fields:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "run a 4 x3 27 B".to_string(),
                "run a 5 x1 10 B".to_string(),
                "run b 5 x1 10 B".to_string(),
                format!(
                    "PUBLISH {:?}",
                    Fields::Publish {
                        topic: "b".into(),
                        qos: 1,
                        retain: false,
                        dup: false,
                        packet_id: Some(1),
                        payload_len: 5
                    }
                ),
                "run b 5 x1 10 B".to_string(),
            ]
        );
    }
}
