//! Throughput of `unplug::tap::Decoder` on ~64 MiB of small PUBLISH packets (topic
//! "test/connected", 4-16 byte payloads) fed in 4 KiB chunks, as plain TCP and as masked
//! WebSocket frames (one frame per packet, as a client sends them, and many packets per frame);
//! and a flood of 64-byte PUBLISHes to one topic, decoded each and folded as for PUBLISH runs.
//!
//! Run with `cargo bench --bench decoder`. Plain `std::time`: each case runs a few times and the
//! best run is printed, since on a shared 2-core machine the slow runs measure the neighbours.

use std::hint::black_box;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::{Duration, Instant};

use unplug::tap::{Decoded, Decoder, Direction};

/// Without optimizations (`cargo test --all-targets` runs this too) it is only a smoke test.
const TOTAL: usize = if cfg!(debug_assertions) {
    1 << 20
} else {
    64 << 20
};
const CHUNK: usize = 4096;
const RUNS: usize = if cfg!(debug_assertions) { 1 } else { 5 };

/// xorshift64: deterministic payloads and masks without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn publish(rng: &mut Rng, out: &mut Vec<u8>) {
    let topic = b"test/connected";
    let payload_len = 4 + (rng.next() % 13) as usize;
    out.push(0x30);
    out.push((2 + topic.len() + payload_len) as u8);
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic);
    out.extend((0..payload_len).map(|_| rng.next() as u8));
}

fn ws_frame(rng: &mut Rng, payload: &[u8], out: &mut Vec<u8>) {
    let mask = (rng.next() as u32).to_ne_bytes();
    out.extend_from_slice(&unplug::actor::v5wire::ws_frame(payload, mask));
}

const UPGRADE: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

fn tcp_stream() -> (Vec<u8>, usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut s = Vec::with_capacity(TOTAL + 64);
    let mut packets = 0;
    while s.len() < TOTAL {
        publish(&mut rng, &mut s);
        packets += 1;
    }
    (s, packets)
}

/// `per_frame` packets in each WebSocket frame.
fn ws_stream(per_frame: usize) -> (Vec<u8>, usize) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut s = Vec::with_capacity(TOTAL + 64 * 1024);
    s.extend_from_slice(UPGRADE);
    let mut packets = 0;
    let mut payload = Vec::new();
    while s.len() < TOTAL {
        payload.clear();
        for _ in 0..per_frame {
            publish(&mut rng, &mut payload);
        }
        packets += per_frame;
        ws_frame(&mut rng, &payload, &mut s);
    }
    (s, packets)
}

/// 64-byte QoS 0 PUBLISHes to one topic: a flood, what `publishes = "runs"` folds.
fn flood() -> (Vec<u8>, usize) {
    let topic = b"test/connected";
    let mut p = vec![0x30, 62, 0, topic.len() as u8];
    p.extend_from_slice(topic);
    p.resize(64, b'!');
    let packets = TOTAL / 64;
    (p.repeat(packets), packets)
}

fn run(name: &str, bytes: &[u8], packets: usize) {
    run_with(name, bytes, packets, false)
}

/// `fold`: as the proxy's tap decodes for PUBLISH runs (`Decoder::fold_publishes`).
fn run_with(name: &str, bytes: &[u8], packets: usize, fold: bool) {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let mut d = Decoder::new(Direction::Upstream, Arc::new(AtomicU8::new(4)));
        d.fold_publishes(fold);
        let mut out: Vec<Decoded> = Vec::with_capacity(512);
        let mut seen = 0;
        let t = Instant::now();
        for chunk in bytes.chunks(CHUNK) {
            d.feed(black_box(chunk), &mut out);
            seen += out
                .iter()
                .filter(|d| matches!(d, Decoded::Packet(_)))
                .count();
            seen += d.folds().iter().map(|f| f.count as usize).sum::<usize>();
            d.folds().clear();
            out.clear();
        }
        let dt = t.elapsed();
        assert_eq!(seen, packets, "{name}: every packet decoded");
        assert!(!d.is_dead(), "{name}: no undecodable");
        best = best.min(dt);
    }
    let secs = best.as_secs_f64();
    println!(
        "decoder {name}: {:.0} MB/s ({} B in {:.1} ms, {:.1} M packets/s)",
        bytes.len() as f64 / secs / 1e6,
        bytes.len(),
        secs * 1e3,
        packets as f64 / secs / 1e6,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench --bench decoder -- tcp` runs only the cases whose name contains "tcp".
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    if wanted("tcp") {
        let (tcp, n) = tcp_stream();
        run("tcp", &tcp, n);
    }
    if wanted("flood") {
        let (f, n) = flood();
        run("tcp flood, 64 B, one topic", &f, n);
        run_with("tcp flood, 64 B, one topic, folded (runs)", &f, n, true);
    }
    for (name, per_frame) in [
        ("ws masked, 1 packet/frame", 1),
        ("ws masked, 100 packets/frame", 100),
    ] {
        if wanted(name) {
            let (ws, n) = ws_stream(per_frame);
            run(name, &ws, n);
        }
    }
}
