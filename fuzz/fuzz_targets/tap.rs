//! Feeds arbitrary bytes to `tap::Decoder`, both directions, whole and in chunks.
//!
//! The tap module is compiled in directly (it depends on serde only), so fuzzing does not have
//! to build the whole harness (tokio, rumqttd, ...) with sanitizer instrumentation.

#![no_main]

use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

#[path = "../../src/tap/mod.rs"]
#[allow(dead_code, unused_imports)]
mod tap;

// The tap names packet kinds with `crate::mqtt`'s (std and serde only, like the tap).
#[path = "../../src/mqtt.rs"]
#[allow(dead_code, unused_imports)]
mod mqtt;

use tap::{Decoded, Decoder, Direction};

fn run(dir: Direction, level: u8, chunks: &[&[u8]]) -> Vec<Decoded> {
    let mut d = Decoder::new(dir, Arc::new(AtomicU8::new(level)));
    let mut out = Vec::new();
    let mut total = 0u64;
    for c in chunks {
        d.feed(c, &mut out);
        total += c.len() as u64;
        assert_eq!(d.offset(), total);
    }
    out
}

/// Same events whatever the chunking, except that an undecodable's hex excerpt can only show
/// the bytes seen when it was found.
fn same(a: &[Decoded], b: &[Decoded]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (
                Decoded::Undecodable {
                    offset: xo,
                    hex: xh,
                    reason: xr,
                },
                Decoded::Undecodable {
                    offset: yo,
                    hex: yh,
                    reason: yr,
                },
            ) => {
                assert_eq!((xo, xr), (yo, yr));
                assert!(yh.starts_with(xh.as_str()) || xh.starts_with(yh.as_str()));
            }
            _ => assert_eq!(x, y),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the level and the chunk size; the rest is the stream.
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let level = [0, 4, 5][usize::from(ctl & 3) % 3];
    let step = usize::from(ctl >> 2) + 1;
    for dir in [Direction::Upstream, Direction::Downstream] {
        let whole = run(dir, level, &[bytes]);
        let bad = whole
            .iter()
            .filter(|d| matches!(d, Decoded::Undecodable { .. }))
            .count();
        assert!(bad <= 1);
        if bad == 1 {
            assert!(matches!(whole.last(), Some(Decoded::Undecodable { .. })));
        }
        let chunks: Vec<&[u8]> = bytes.chunks(step).collect();
        same(&run(dir, level, &chunks), &whole);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        same(&run(dir, level, &bytewise), &whole);
    }
});
