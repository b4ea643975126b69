//! toxiproxy's stream toxics that change how a link writes, beside the fault gate: `slicer`
//! (a chunk written as many small slices, a delay apart) and `limit_data` (the connection
//! closed once so many bytes passed). `slow_close` is a wait before the link passes its
//! stream's end on (link.rs). Pure: no I/O, no clock; the link asks per chunk.
//!
//! ```text
//!  pieces --Shape::limit(FlowState)--> the same, the bytes past the limit dropped; true once
//!                                      the limit is reached (the link then ends the connection)
//!  piece  --Shape::cuts(FlowState, len)--> slice lengths: toxiproxy's halving with +-variation
//!                                          (slicer), a tenth of a second's bytes (bandwidth),
//!                                          or the whole piece (neither: no allocation)
//!  slice  --Pacer::verdict--> not before the last slice + the slicer's delay (fault.rs)
//! ```

pub use super::fault::Slicing;
use super::fault::{FlowState, Pacer};
use super::piece::Piece;

/// One link's slicer and limit state.
#[derive(Debug, Clone)]
pub struct Shape {
    /// xorshift state for the slicer's variation; fixed per link (reproducible).
    rng: u64,
    /// The limit the count below is for; a new one (a toxic added) counts from 0, as
    /// toxiproxy's per-connection state does.
    limit: Option<u64>,
    /// Bytes passed under that limit.
    passed: u64,
}

/// The lengths a piece is written in.
pub enum Cuts {
    /// Steps of `step` bytes over `left` bytes.
    Step { left: usize, step: usize },
    /// The slicer's lengths.
    List(std::vec::IntoIter<usize>),
}

impl Iterator for Cuts {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        match self {
            Cuts::Step { left, step } => {
                if *left == 0 {
                    return None;
                }
                let n = (*step).min(*left);
                *left -= n;
                Some(n)
            }
            Cuts::List(l) => l.next(),
        }
    }
}

impl Shape {
    pub fn new(seed: u64) -> Shape {
        Shape {
            rng: seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1,
            limit: None,
            passed: 0,
        }
    }

    fn next(&mut self, below: u32) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % u64::from(below.max(1))) as u32
    }

    /// How a piece of `len` bytes is written under `f`.
    pub fn cuts(&mut self, f: &FlowState, len: usize) -> Cuts {
        match f.slice {
            Some(s) => {
                let mut out = Vec::new();
                self.slice(&s, 0, len, &mut out);
                Cuts::List(out.into_iter())
            }
            None => Cuts::Step {
                left: len,
                step: Pacer::piece_len(f),
            },
        }
    }

    /// toxiproxy's `SlicerToxic.chunk`: a run within `variation` of `average` (or shorter) is
    /// one slice; a longer one is halved, the cut moved by up to +-`variation`, and each half
    /// sliced again. The cut is kept inside the run, so every slice has a byte.
    fn slice(&mut self, s: &Slicing, start: usize, end: usize, out: &mut Vec<usize>) {
        let len = end - start;
        if len <= s.average as usize + s.variation as usize || len < 2 {
            if len > 0 {
                out.push(len);
            }
            return;
        }
        let mut mid = (start + len / 2) as i64;
        if s.variation > 0 {
            mid += i64::from(self.next(s.variation * 2)) - i64::from(s.variation);
        }
        let mid = (mid.max(start as i64 + 1) as usize).min(end - 1);
        self.slice(s, start, mid, out);
        self.slice(s, mid, end, out);
    }

    /// Under a limit: drop what of `pieces` goes past it (toxiproxy's `limit_data` passes the
    /// chunk up to the limit, then closes). True once the limit is reached.
    pub fn limit(&mut self, f: &FlowState, pieces: &mut Vec<Piece>) -> bool {
        let Some(n) = f.limit else {
            self.limit = None;
            return false;
        };
        if self.limit != Some(n) {
            self.limit = Some(n);
            self.passed = 0;
        }
        let mut i = 0;
        while i < pieces.len() {
            let left = n.saturating_sub(self.passed);
            let p = &mut pieces[i];
            i += 1;
            if p.dropped {
                continue;
            }
            let len = p.range.len() as u64;
            if left == 0 {
                // Past the limit: not forwarded, and no packet of it is reported dropped.
                p.dropped = true;
                p.starts = false;
                continue;
            }
            if len <= left {
                self.passed += len;
                continue;
            }
            let cut = p.range.start + left as usize;
            let rest = Piece {
                range: cut..p.range.end,
                packet: p.packet,
                starts: false,
                dropped: true,
            };
            p.range.end = cut;
            self.passed += left;
            pieces.insert(i, rest);
            i += 1;
        }
        self.passed >= n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn slicing(average: u32, variation: u32) -> FlowState {
        FlowState {
            slice: Some(Slicing {
                average,
                variation,
                delay: Duration::ZERO,
            }),
            ..FlowState::default()
        }
    }

    #[test]
    fn slices_cover_the_piece_and_stay_within_average_plus_variation() {
        let mut s = Shape::new(3);
        for (avg, var) in [(1, 0), (10, 0), (100, 20), (100, 99), (7, 3)] {
            for len in [0, 1, 2, 9, 10, 11, 100, 121, 1000, 32 * 1024] {
                let cuts: Vec<usize> = s.cuts(&slicing(avg, var), len).collect();
                assert_eq!(cuts.iter().sum::<usize>(), len, "{avg} {var} {len}");
                assert!(cuts.iter().all(|&c| c >= 1), "{cuts:?}");
                let max = (avg + var) as usize;
                assert!(
                    cuts.iter().all(|&c| c <= max.max(1)),
                    "{avg}+{var}: {cuts:?}"
                );
            }
        }
        // Without variation, halving: 1000 -> 500 -> 250 -> 125 (still above 100) -> 62 and 63.
        let cuts: Vec<usize> = s.cuts(&slicing(100, 0), 1000).collect();
        assert!(cuts.iter().all(|&c| (62..=63).contains(&c)), "{cuts:?}");
    }

    #[test]
    fn without_a_slicer_a_piece_is_one_write_or_bandwidth_steps() {
        let mut s = Shape::new(1);
        let none: Vec<usize> = s.cuts(&FlowState::default(), 5000).collect();
        assert_eq!(none, [5000]);
        let f = FlowState {
            bytes_per_s: Some(10_000),
            ..FlowState::default()
        };
        let steps: Vec<usize> = s.cuts(&f, 2500).collect();
        assert_eq!(steps, [1000, 1000, 500]);
    }

    fn piece(range: std::ops::Range<usize>, dropped: bool) -> Piece {
        Piece {
            range,
            packet: 3,
            starts: true,
            dropped,
        }
    }

    #[test]
    fn a_limit_passes_exactly_its_bytes_and_counts_from_when_it_came() {
        let f = FlowState {
            limit: Some(10),
            ..FlowState::default()
        };
        let mut s = Shape::new(1);
        let mut p = vec![piece(0..4, false)];
        assert!(!s.limit(&f, &mut p));
        let mut p = vec![piece(0..3, false), piece(3..5, true), piece(5..12, false)];
        assert!(s.limit(&f, &mut p));
        let passed: usize = p.iter().filter(|p| !p.dropped).map(|p| p.range.len()).sum();
        assert_eq!(passed, 6, "4 before, 6 now: {p:?}");
        assert_eq!(p.iter().map(|p| p.range.len()).sum::<usize>(), 12);
        assert!(p.iter().filter(|p| p.range.start >= 9).all(|p| p.dropped));
        // Removed, then added again: counted afresh.
        s.limit(&FlowState::default(), &mut vec![]);
        let mut p = vec![piece(0..9, false)];
        assert!(!s.limit(&f, &mut p));
        // A limit of 0 closes at the first chunk, passing nothing.
        let zero = FlowState {
            limit: Some(0),
            ..FlowState::default()
        };
        let mut p = vec![piece(0..5, false)];
        assert!(Shape::new(1).limit(&zero, &mut p));
        assert!(p[0].dropped && !p[0].starts);
    }
}
