//! What the network does to bytes right now: pure decisions every link consults per chunk.
//!
//! ```text
//!  active faults --NetState::of--> NetState { up: FlowState, down: FlowState, new connections }
//!  chunk --PacketGate::pieces--> [Piece { bytes, packet type, dropped? }]    (drop: packet-exact;
//!                                  passing bytes stay one piece: one write)
//!  piece --Pacer::verdict(FlowState, arrival)--> Pass | Deliver(at) | Drop   (latency, bandwidth,
//!                                                                             blackhole)
//! ```
//!
//! A fault is a decision, not a process (turmoil's `Verdict`): applying one changes
//! [`NetState`], and each link decides what happens to the next chunk from it. Healing one fault
//! recomputes the state from those still active, at any moment. Nothing here does I/O or reads a
//! clock, so every rule is tested with made-up instants.
//!
//! The packet gate frames MQTT by hand, with the wire codec's fixed header and remaining length
//! (`tap::codec`), because a drop fault must cut the exact bytes of a packet out of a chunk
//! without holding any byte back.

use std::ops::Range;
use std::time::{Duration, Instant};

pub use super::piece::Piece;
use crate::scenario::{FaultKind, NewConnections};
use crate::tap::codec::{complete_packet, Varint, VarintDecoder};

/// Which way bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// willy -> broker.
    Up,
    /// broker -> willy.
    Down,
}

/// What one direction does to bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowState {
    /// Bytes are swallowed.
    pub blackhole: bool,
    /// Each chunk is delivered this long after it arrived ...
    pub delay: Duration,
    /// ... plus up to this much more, chosen per chunk (order is kept all the same).
    pub jitter: Duration,
    /// At most this many bytes a second get through.
    pub bytes_per_s: Option<u64>,
    /// MQTT packet types (bit = type nibble) that vanish.
    pub drop_packets: u16,
    /// WebSocket frame kinds (`wsgate::DATA`, `PING`, ...) that vanish, whole frames.
    pub drop_ws: u8,
    /// Chunks are cut into slices written one at a time, a delay apart (shape.rs).
    pub slice: Option<Slicing>,
    /// A connection is closed once this many bytes passed this way (shape.rs).
    pub limit: Option<u64>,
    /// The end of the stream is passed on this late.
    pub close_delay: Duration,
}

impl FlowState {
    /// True when chunks wait before they are delivered.
    pub fn shapes(&self) -> bool {
        !self.delay.is_zero()
            || !self.jitter.is_zero()
            || self.bytes_per_s.is_some()
            || self.slice.is_some()
    }

    pub fn drops(&self, packet_type: u8) -> bool {
        self.drop_packets & (1 << packet_type) != 0
    }
}

/// A slicer in effect: slices of about `average` bytes, +- `variation`, `delay` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slicing {
    pub average: u32,
    pub variation: u32,
    pub delay: Duration,
}

/// The network as the links see it: the sum of the faults in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetState {
    pub up: FlowState,
    pub down: FlowState,
    /// New connections are refused (the listener is closed).
    pub refuse_new: bool,
    /// New connections are accepted and held without an answer.
    pub hold_new: bool,
    /// An intermediary's idle timeout: open connections silent this long are closed.
    pub idle: Option<IdleCut>,
}

/// An idle timeout in effect: after how long a silent connection is closed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleCut {
    pub after: Duration,
    /// RST both sides (SO_LINGER 0) instead of a FIN.
    pub reset: bool,
}

impl IdleCut {
    /// Is a connection silent since `last_byte` due to be closed at `now`?
    pub fn due(&self, last_byte: Instant, now: Instant) -> bool {
        now.saturating_duration_since(last_byte) >= self.after
    }
}

/// What a link does with a piece it has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it now.
    Pass,
    /// Write it at this instant (after everything queued before it).
    Deliver(Instant),
    /// Discard it (counted).
    Drop,
}

impl NetState {
    /// The state with every fault in `active` in effect. Effects add up: delays add, the
    /// lowest bandwidth wins, refusing beats holding.
    pub fn of<'a>(active: impl IntoIterator<Item = (&'a FaultKind, NewConnections)>) -> NetState {
        active
            .into_iter()
            .fold(NetState::default(), |s, (k, n)| s.with(k, n))
    }

    /// The state with `kind` applied on top.
    pub fn with(mut self, kind: &FaultKind, new_connections: NewConnections) -> NetState {
        let mut each = |up: bool, down: bool, f: &dyn Fn(&mut FlowState)| {
            if up {
                f(&mut self.up);
            }
            if down {
                f(&mut self.down);
            }
        };
        match kind {
            FaultKind::Blackhole { direction } => {
                each(direction.up(), direction.down(), &|f| f.blackhole = true)
            }
            FaultKind::Latency {
                direction,
                delay,
                jitter,
            } => each(direction.up(), direction.down(), &|f| {
                // Saturating: many large latency toxics add up without overflow.
                f.delay = f.delay.saturating_add(*delay);
                f.jitter = f.jitter.saturating_add(*jitter);
            }),
            FaultKind::Bandwidth {
                direction,
                bytes_per_s,
            } => each(direction.up(), direction.down(), &|f| {
                f.bytes_per_s = Some(f.bytes_per_s.map_or(*bytes_per_s, |r| r.min(*bytes_per_s)))
            }),
            FaultKind::Drop { direction, packets } => {
                let mask = packets.iter().fold(0u16, |m, &t| m | 1 << t);
                each(direction.up(), direction.down(), &|f| {
                    f.drop_packets |= mask
                })
            }
            FaultKind::WsDrop { direction, frames } => {
                each(direction.up(), direction.down(), &|f| f.drop_ws |= *frames)
            }
            FaultKind::Slicer {
                direction,
                average,
                variation,
                delay,
            } => {
                let slicing = Slicing {
                    average: *average,
                    variation: *variation,
                    delay: *delay,
                };
                each(direction.up(), direction.down(), &|f| {
                    f.slice = Some(slicing)
                })
            }
            // Two limits: the lower one closes first.
            FaultKind::LimitData { direction, bytes } => {
                each(direction.up(), direction.down(), &|f| {
                    f.limit = Some(f.limit.map_or(*bytes, |b| b.min(*bytes)))
                })
            }
            FaultKind::SlowClose { direction, delay } => {
                each(direction.up(), direction.down(), &|f| {
                    f.close_delay += *delay
                })
            }
            // Two idle timeouts: the shorter one closes first.
            FaultKind::IdleTimeout { idle, reset } => {
                let cut = IdleCut {
                    after: *idle,
                    reset: *reset,
                };
                self.idle = Some(
                    self.idle
                        .map_or(cut, |c| if c.after <= cut.after { c } else { cut }),
                );
            }
            // Acts once on open connections (the proxy does that), or not on the network at all.
            FaultKind::Reset
            | FaultKind::Close
            | FaultKind::TlsClose { .. }
            | FaultKind::Refuse
            | FaultKind::Hang
            | FaultKind::Crash { .. }
            | FaultKind::Freeze => {}
        }
        match new_connections {
            NewConnections::Accept => {}
            NewConnections::Hang => self.hold_new = true,
            NewConnections::Refuse => self.refuse_new = true,
        }
        self
    }

    pub fn flow(&self, flow: Flow) -> &FlowState {
        match flow {
            Flow::Up => &self.up,
            Flow::Down => &self.down,
        }
    }

    /// A new connection cannot be completed: it is held until the fault heals, like a SYN
    /// retransmitted into a dead link.
    pub fn holds_new(&self) -> bool {
        self.hold_new && !self.refuse_new
    }

    /// The verdict for a chunk when nothing is queued and nothing shapes it (tests, and the
    /// end of a stream, which crosses the network like any byte).
    pub fn verdict(&self, flow: Flow) -> Verdict {
        if self.flow(flow).blackhole {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

/// When each piece of one direction may go: latency from each piece's arrival (toxiproxy's
/// rule), bandwidth as a queue that empties at the given rate, order always kept.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// When the last piece queued is delivered; nothing may overtake it.
    last: Option<Instant>,
    /// xorshift state for the jitter; fixed per link so a run's choices are reproducible.
    rng: u64,
    /// A slicer in effect: the next slice may not go before this (its delay after the last).
    next_slice: Option<Instant>,
}

impl Pacer {
    pub fn new(seed: u64) -> Pacer {
        Pacer {
            last: None,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            next_slice: None,
        }
    }

    fn next_jitter(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let us = max.as_micros() as u64;
        Duration::from_micros(self.rng % (us + 1))
    }

    /// What happens to `len` bytes that arrived at `arrival`.
    pub fn verdict(&mut self, f: &FlowState, arrival: Instant, len: usize) -> Verdict {
        if f.blackhole {
            return Verdict::Drop;
        }
        let queued = self.last.is_some_and(|l| l > arrival);
        if !f.shapes() && !queued {
            self.last = None;
            return Verdict::Pass;
        }
        let mut at = later(arrival, f.delay.saturating_add(self.next_jitter(f.jitter)));
        if let Some(last) = self.last {
            at = at.max(last);
        }
        if let Some(slicing) = f.slice {
            // toxiproxy's slicer waits its delay after every slice, the last of a chunk too.
            at = self.next_slice.map_or(at, |n| at.max(n));
            self.next_slice = Some(later(at, slicing.delay));
        }
        if let Some(rate) = f.bytes_per_s.filter(|r| *r > 0) {
            let secs = (len as f64 / rate as f64).min(MAX_WAIT.as_secs_f64());
            at = later(at, Duration::from_secs_f64(secs));
        }
        self.last = Some(at);
        Verdict::Deliver(at)
    }

    /// The fault that shaped this direction healed: what is queued goes now.
    pub fn healed(&mut self) {
        self.last = None;
        self.next_slice = None;
    }

    /// How big a piece bandwidth shaping should deliver at once: about a tenth of a second's
    /// worth, so a slow link trickles instead of releasing a big chunk in one go.
    pub fn piece_len(f: &FlowState) -> usize {
        f.bytes_per_s
            .map_or(usize::MAX, |r| (r as usize / 10).max(1))
    }
}

/// Where the MQTT packets are in a stream, byte-exact, without holding any byte back: the type
/// is in a packet's first byte, and its length in the next one to four.
#[derive(Debug, Clone, Default)]
pub struct PacketGate {
    state: Framer,
    /// Once the stream is not MQTT over TCP: where its WebSocket frames are (wsgate.rs).
    ws: super::wsgate::WsFramer,
    /// Offset in the stream (to recognise its first byte).
    offset: u64,
    /// The packet under way is being dropped (decided at its first byte, kept to its last).
    dropping: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Framer {
    /// At a packet's first byte.
    #[default]
    Type,
    /// In the remaining length.
    Length { ty: u8, len: VarintDecoder },
    /// In the packet's body: `left` bytes to go.
    Body { ty: u8, left: usize },
    /// Not MQTT over TCP (WebSocket, or bytes that make no sense): passed through, unsplit.
    Opaque,
}

impl PacketGate {
    /// True once the stream turned out not to be MQTT over plain TCP.
    pub fn is_opaque(&self) -> bool {
        self.state == Framer::Opaque
    }

    /// Split `chunk` into pieces and decide which vanish under `f`: each packet a drop fault
    /// takes is a piece of its own; the bytes between them are one piece each (with no drop
    /// fault, the whole chunk is one piece).
    pub fn pieces(&mut self, f: &FlowState, chunk: &[u8], out: &mut Vec<Piece>) {
        out.clear();
        let mut i = 0;
        while i < chunk.len() {
            let start = i;
            match self.state {
                Framer::Opaque => {
                    // WebSocket, or bytes that make no sense: the frame gate splits out the
                    // frames a fault takes (none: one piece).
                    self.ws.pieces(f.drop_ws, chunk, start, out);
                    i = chunk.len();
                    continue;
                }
                Framer::Type => {
                    let ty = chunk[i] >> 4;
                    // The first packet either way is CONNECT or CONNACK; a WebSocket upgrade
                    // starts with "GET " or "HTTP/".
                    if self.offset == 0 && ty != 1 && ty != 2 {
                        self.state = Framer::Opaque;
                        continue;
                    }
                    if f.drop_packets == 0 {
                        // No packet can vanish: step over the whole packets from here in one
                        // go (one piece, not one per packet), keeping the framing in step for
                        // a drop fault applied later. Anything else (a packet cut by the
                        // chunk's end, a length too long) takes the byte-by-byte way below.
                        let end = whole_packets(chunk, i);
                        if end > i {
                            push_or_extend(out, start..end, ty, true, false);
                            self.offset += (end - start) as u64;
                            i = end;
                            continue;
                        }
                    }
                    self.dropping = f.drops(ty);
                    self.state = Framer::Length {
                        ty,
                        len: VarintDecoder::default(),
                    };
                    i += 1;
                    self.advance_length(chunk, &mut i);
                    push_or_extend(out, start..i, ty, true, self.dropping);
                }
                Framer::Length { ty, .. } | Framer::Body { ty, .. } => {
                    self.advance_length(chunk, &mut i);
                    push_or_extend(out, start..i, ty, false, self.dropping);
                }
            }
            self.offset += (i - start) as u64;
        }
    }

    /// Consume length bytes, then body bytes, of the packet under way.
    fn advance_length(&mut self, chunk: &[u8], i: &mut usize) {
        while *i < chunk.len() {
            match self.state {
                Framer::Length { ty, mut len } => {
                    let b = chunk[*i];
                    *i += 1;
                    match len.push(b) {
                        Varint::Done { value, .. } => self.state = Framer::Body { ty, left: value },
                        Varint::Invalid => {
                            // A fifth length byte: not MQTT. Stop splitting rather than guess.
                            self.state = Framer::Opaque;
                            return;
                        }
                        Varint::Incomplete => self.state = Framer::Length { ty, len },
                    }
                }
                Framer::Body { left: 0, .. } => {
                    self.state = Framer::Type;
                    return;
                }
                Framer::Body { ty, left } => {
                    let n = left.min(chunk.len() - *i);
                    *i += n;
                    self.state = Framer::Body { ty, left: left - n };
                }
                Framer::Type | Framer::Opaque => return,
            }
        }
        if let Framer::Body { left: 0, .. } = self.state {
            self.state = Framer::Type;
        }
    }
}

/// Where the whole MQTT packets that start at `chunk[i]` end: the index after the last one
/// that is complete in `chunk` (`i` when none is). A length field of more than four bytes ends
/// the walk too: the gate decides what that is.
#[inline]
fn whole_packets(chunk: &[u8], mut i: usize) -> usize {
    while let Some(len) = complete_packet(&chunk[i..]) {
        i += len;
    }
    i
}

/// Add the next run of bytes: onto the piece before when both pass (forwarded bytes go out in
/// as few writes as possible), as a piece of its own when a drop fault takes its packet.
fn push_or_extend(
    out: &mut Vec<Piece>,
    range: Range<usize>,
    packet: u8,
    starts: bool,
    dropped: bool,
) {
    if range.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut() {
        if !dropped && !last.dropped && last.range.end == range.start {
            last.range.end = range.end;
            return;
        }
    }
    out.push(Piece {
        range,
        packet,
        starts,
        dropped,
    });
}

/// The longest a shaping fault holds a piece (more waits are cut to it): a year.
const MAX_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// `at + d`, at most [`MAX_WAIT`] later: no sum of delays overflows an Instant.
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d.min(MAX_WAIT)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Direction;

    fn state(kind: FaultKind) -> NetState {
        let n = kind.default_new_connections();
        NetState::default().with(&kind, n)
    }

    #[test]
    fn the_shorter_of_two_idle_timeouts_closes_and_only_after_its_whole_silence() {
        let idle = |ms, reset| FaultKind::IdleTimeout {
            idle: Duration::from_millis(ms),
            reset,
        };
        let a = idle(3000, false);
        let b = idle(2000, true);
        let s = NetState::of([(&a, NewConnections::Accept), (&b, NewConnections::Accept)]);
        let cut = s.idle.unwrap();
        assert_eq!(cut.after, Duration::from_millis(2000));
        assert!(cut.reset);
        assert_eq!(s.verdict(Flow::Up), Verdict::Pass, "bytes still flow");
        let t0 = Instant::now();
        assert!(!cut.due(t0, t0 + Duration::from_millis(1999)));
        assert!(cut.due(t0, t0 + Duration::from_millis(2000)));
    }

    #[test]
    fn blackhole_both_drops_both_ways_and_holds_new_connections() {
        let s = state(FaultKind::Blackhole {
            direction: Direction::Both,
        });
        assert_eq!(s.verdict(Flow::Up), Verdict::Drop);
        assert_eq!(s.verdict(Flow::Down), Verdict::Drop);
        assert!(s.holds_new());
        assert!(!s.refuse_new);
    }

    #[test]
    fn upstream_blackhole_lets_the_broker_still_talk() {
        let s = state(FaultKind::Blackhole {
            direction: Direction::Upstream,
        });
        assert_eq!(s.verdict(Flow::Up), Verdict::Drop);
        assert_eq!(s.verdict(Flow::Down), Verdict::Pass);
        assert!(!s.holds_new());
    }

    #[test]
    fn refuse_beats_hang() {
        let s = NetState::of([
            (&FaultKind::Hang, NewConnections::Hang),
            (&FaultKind::Refuse, NewConnections::Refuse),
        ]);
        assert!(s.refuse_new);
        assert!(!s.holds_new());
    }

    #[test]
    fn healing_one_fault_keeps_the_others() {
        let bh = FaultKind::Blackhole {
            direction: Direction::Upstream,
        };
        let lat = FaultKind::Latency {
            direction: Direction::Downstream,
            delay: Duration::from_millis(100),
            jitter: Duration::ZERO,
        };
        let both = NetState::of([
            (&bh, NewConnections::Accept),
            (&lat, NewConnections::Accept),
        ]);
        assert!(both.up.blackhole && both.down.shapes());
        let after = NetState::of([(&lat, NewConnections::Accept)]);
        assert!(!after.up.blackhole && after.down.shapes());
    }

    #[test]
    fn healthy_network_passes_everything() {
        let s = NetState::default();
        assert_eq!(s.verdict(Flow::Up), Verdict::Pass);
        let mut p = Pacer::new(1);
        assert_eq!(p.verdict(&s.up, Instant::now(), 10), Verdict::Pass);
    }

    #[test]
    fn latency_is_measured_from_each_arrival_and_keeps_order() {
        let f = state(FaultKind::Latency {
            direction: Direction::Both,
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
        })
        .up;
        let t0 = Instant::now();
        let mut p = Pacer::new(7);
        let mut last = t0;
        for i in 0..200u64 {
            let arrival = t0 + Duration::from_millis(i * 3);
            let Verdict::Deliver(at) = p.verdict(&f, arrival, 10) else {
                panic!("latency delivers later")
            };
            assert!(at >= arrival + Duration::from_millis(100), "{i}");
            assert!(at >= last, "order kept at {i}");
            last = at;
        }
        // The last piece is not delayed by 200 x 100 ms: delays overlap, as on a real link.
        assert!(last <= t0 + Duration::from_millis(199 * 3 + 150 + 1));
    }

    #[test]
    fn bandwidth_spaces_pieces_by_their_size() {
        let f = state(FaultKind::Bandwidth {
            direction: Direction::Upstream,
            bytes_per_s: 1000,
        })
        .up;
        let t0 = Instant::now();
        let mut p = Pacer::new(1);
        let a = p.verdict(&f, t0, 100);
        let b = p.verdict(&f, t0, 100);
        assert_eq!(a, Verdict::Deliver(t0 + Duration::from_millis(100)));
        assert_eq!(b, Verdict::Deliver(t0 + Duration::from_millis(200)));
        assert_eq!(Pacer::piece_len(&f), 100);
    }

    #[test]
    fn slices_go_a_delay_apart_across_chunks() {
        let f = state(FaultKind::Slicer {
            direction: Direction::Downstream,
            average: 10,
            variation: 0,
            delay: Duration::from_millis(5),
        })
        .down;
        assert!(f.shapes());
        let t0 = Instant::now();
        let mut p = Pacer::new(1);
        let at: Vec<Verdict> = (0..3).map(|_| p.verdict(&f, t0, 10)).collect();
        let ms = |m| Verdict::Deliver(t0 + Duration::from_millis(m));
        assert_eq!(at, [ms(0), ms(5), ms(10)]);
        // The next chunk waits for the last slice's delay, as toxiproxy's slicer sleeps after it.
        assert_eq!(p.verdict(&f, t0 + Duration::from_millis(1), 10), ms(15));
        assert_eq!(p.verdict(&f, t0 + Duration::from_millis(100), 10), ms(100));
    }

    #[test]
    fn after_a_heal_nothing_overtakes_what_is_still_queued() {
        let lat = state(FaultKind::Latency {
            direction: Direction::Both,
            delay: Duration::from_millis(100),
            jitter: Duration::ZERO,
        });
        let t0 = Instant::now();
        let mut p = Pacer::new(1);
        assert!(matches!(p.verdict(&lat.up, t0, 1), Verdict::Deliver(_)));
        // Healed, but the queue is not flushed yet: the next piece waits its turn.
        let healthy = NetState::default();
        assert!(matches!(
            p.verdict(&healthy.up, t0 + Duration::from_millis(1), 1),
            Verdict::Deliver(_)
        ));
        p.healed();
        assert_eq!(
            p.verdict(&healthy.up, t0 + Duration::from_millis(2), 1),
            Verdict::Pass
        );
    }

    const CONNECT: &[u8] = &[0x10, 0x02, 0x00, 0x04];
    const PINGREQ: &[u8] = &[0xc0, 0x00];
    const PUBLISH: &[u8] = &[0x30, 0x05, 0x00, 0x01, b't', b'h', b'i'];

    fn drop_pingreq() -> FlowState {
        state(FaultKind::Drop {
            direction: Direction::Both,
            packets: vec![12],
        })
        .up
    }

    /// The bytes that survive the gate when `stream` is fed in chunks of `n`.
    fn survivors(stream: &[u8], n: usize, f: &FlowState) -> Vec<u8> {
        let mut g = PacketGate::default();
        let mut out = Vec::new();
        let mut kept = Vec::new();
        for chunk in stream.chunks(n) {
            g.pieces(f, chunk, &mut out);
            assert_eq!(
                out.iter().map(|p| p.range.len()).sum::<usize>(),
                chunk.len(),
                "every byte is in exactly one piece"
            );
            for p in &out {
                if !p.dropped {
                    kept.extend_from_slice(&chunk[p.range.clone()]);
                }
            }
        }
        kept
    }

    #[test]
    fn drop_removes_exactly_the_named_packets_however_the_stream_is_cut() {
        let stream = [CONNECT, PINGREQ, PUBLISH, PINGREQ, PUBLISH].concat();
        let want = [CONNECT, PUBLISH, PUBLISH].concat();
        for n in 1..=stream.len() {
            assert_eq!(
                survivors(&stream, n, &drop_pingreq()),
                want,
                "chunks of {n}"
            );
        }
    }

    #[test]
    fn without_a_drop_fault_a_chunk_of_many_packets_is_one_piece() {
        let stream = [CONNECT, PINGREQ, PUBLISH, PUBLISH, PINGREQ, PUBLISH].concat();
        let mut g = PacketGate::default();
        let mut out = Vec::new();
        g.pieces(&FlowState::default(), &stream, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].range, 0..stream.len());
        // The gate still follows the packets: a drop fault applied now finds the next one.
        g.pieces(&drop_pingreq(), &[PINGREQ, PUBLISH].concat(), &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].dropped && out[0].starts && out[0].packet == 12);
        assert!(!out[1].dropped);
    }

    #[test]
    fn a_drop_fault_applied_between_chunks_takes_exactly_the_packets_that_start_under_it() {
        // Whole packets are stepped over in one go while nothing drops: wherever the chunks
        // end and whenever the fault comes and goes, the gate still knows where each packet
        // starts.
        let mut big = vec![0x30, 0x80, 0x01]; // PUBLISH, remaining length 128
        big.extend(std::iter::repeat(7u8).take(128));
        let packets = [
            CONNECT, PINGREQ, PUBLISH, &big, PINGREQ, PUBLISH, PINGREQ, PINGREQ, &big, PUBLISH,
            PINGREQ,
        ];
        let stream = packets.concat();
        for n in 1..=stream.len() {
            for period in 1..=3 {
                // Chunk k is fed under the drop fault when k % (period + 1) == period.
                let under = |k: usize| k % (period + 1) == period;
                let mut want = Vec::new();
                let mut at = 0;
                for p in packets {
                    if !(p == PINGREQ && under(at / n)) {
                        want.extend_from_slice(p);
                    }
                    at += p.len();
                }
                let mut g = PacketGate::default();
                let mut out = Vec::new();
                let mut kept = Vec::new();
                for (k, chunk) in stream.chunks(n).enumerate() {
                    let f = if under(k) {
                        drop_pingreq()
                    } else {
                        FlowState::default()
                    };
                    g.pieces(&f, chunk, &mut out);
                    if !under(k) {
                        // (The rest of a packet dropped in the chunk before is dropped too.)
                        let passing = out.iter().filter(|p| !p.dropped).count();
                        assert!(
                            passing <= 1,
                            "chunks of {n}: one piece passes without a fault"
                        );
                    }
                    for p in &out {
                        if !p.dropped {
                            kept.extend_from_slice(&chunk[p.range.clone()]);
                        }
                    }
                }
                assert_eq!(kept, want, "chunks of {n}, a fault every {period}");
            }
        }
    }

    #[test]
    fn a_drop_fault_cuts_a_chunk_only_around_the_packets_it_takes() {
        let stream = [
            CONNECT, PUBLISH, PUBLISH, PINGREQ, PUBLISH, PINGREQ, PINGREQ,
        ]
        .concat();
        let mut g = PacketGate::default();
        let mut out = Vec::new();
        g.pieces(&drop_pingreq(), &stream, &mut out);
        let shape: Vec<(usize, bool)> = out.iter().map(|p| (p.range.len(), p.dropped)).collect();
        let passing = CONNECT.len() + 2 * PUBLISH.len();
        assert_eq!(
            shape,
            [
                (passing, false),
                (2, true),
                (PUBLISH.len(), false),
                (2, true),
                (2, true)
            ],
            "each dropped packet its own piece (one record each); what passes between, one"
        );
    }

    #[test]
    fn without_a_drop_fault_everything_passes() {
        let stream = [CONNECT, PINGREQ, PUBLISH].concat();
        assert_eq!(survivors(&stream, 3, &FlowState::default()), stream);
    }

    #[test]
    fn a_long_remaining_length_is_followed() {
        let mut big = vec![0x30, 0x80, 0x01]; // PUBLISH, remaining length 128
        big.extend(std::iter::repeat(7u8).take(128));
        let stream = [CONNECT, big.as_slice(), PINGREQ, PUBLISH].concat();
        let want = [CONNECT, big.as_slice(), PUBLISH].concat();
        for n in [1, 2, 5, 64, 1000] {
            assert_eq!(
                survivors(&stream, n, &drop_pingreq()),
                want,
                "chunks of {n}"
            );
        }
    }

    #[test]
    fn a_websocket_stream_is_opaque_and_passes_untouched() {
        let stream = b"GET /mqtt HTTP/1.1\r\n\r\n\xc0\x00".to_vec();
        let mut g = PacketGate::default();
        let mut out = Vec::new();
        g.pieces(&drop_pingreq(), &stream, &mut out);
        assert!(g.is_opaque());
        assert_eq!(out.len(), 1);
        assert!(!out[0].dropped);
    }

    #[test]
    fn a_packet_started_before_the_fault_is_finished_intact() {
        let mut g = PacketGate::default();
        let mut out = Vec::new();
        g.pieces(&FlowState::default(), CONNECT, &mut out);
        g.pieces(&FlowState::default(), &PINGREQ[..1], &mut out);
        g.pieces(&drop_pingreq(), &PINGREQ[1..], &mut out);
        assert!(!out[0].dropped, "decided at the packet's first byte");
    }
}
