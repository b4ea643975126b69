//! Where the WebSocket frames are in a stream, byte-exact, so a fault can swallow frames of
//! some kinds (control frames: pings, pongs; or the data frames that carry MQTT) while the
//! rest passes. Nothing is held back or rewritten: a frame is taken whole or not at all, so
//! the stream stays valid WebSocket either way.
//!
//! ```text
//!  "GET ..." / "HTTP/1.1 101 ..." head --up to \r\n\r\n--> frames:
//!     byte 0: FIN | opcode  (decided here: does this frame vanish?)
//!     byte 1: MASK | len7 (126: +2 length bytes, 127: +8), +4 mask key when masked
//!     payload: `len` bytes
//!  anything that does not start like HTTP: passed through, never split
//! ```
//!
//! Frame headers are read by the wire codec (`tap::codec::ws_header`); the framing is by hand
//! because a fault must take the exact bytes of whole frames and hold none back.

use std::ops::Range;

use super::piece::Piece;

use crate::tap::codec::{ws_header, ws_header_len, ws_opcode, WS_MAX_HEADER};
pub use crate::tap::ws_kinds::{kind_of, CLOSE, DATA, KINDS, PING, PONG};

/// The frame framer's state, carried from chunk to chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WsFramer {
    /// Nothing seen yet.
    #[default]
    Start,
    /// In the HTTP head: how many bytes of "\r\n\r\n" were just seen.
    Http { matched: u8 },
    /// In a frame's header: its bytes so far, and how many it has in all (2 until byte 1).
    Head {
        hdr: [u8; WS_MAX_HEADER],
        have: u8,
        need: u8,
        drop: bool,
    },
    /// In a frame's payload.
    Body { left: u64, drop: bool },
    /// Not WebSocket: passed through.
    Opaque,
}

impl WsFramer {
    /// Split `chunk[from..]` into pieces; the frames whose kind is in `mask` vanish (decided
    /// at each frame's first byte, kept to its last).
    pub fn pieces(&mut self, mask: u8, chunk: &[u8], from: usize, out: &mut Vec<Piece>) {
        let mut i = from;
        while i < chunk.len() {
            let start = i;
            let dropped = match *self {
                WsFramer::Start => {
                    *self = if chunk[i] == b'G' || chunk[i] == b'H' {
                        WsFramer::Http { matched: 0 }
                    } else {
                        WsFramer::Opaque
                    };
                    continue;
                }
                WsFramer::Opaque => {
                    i = chunk.len();
                    false
                }
                WsFramer::Http { mut matched } => {
                    while i < chunk.len() && matched < 4 {
                        let want = b"\r\n\r\n"[usize::from(matched)];
                        matched = if chunk[i] == want {
                            matched + 1
                        } else if chunk[i] == b'\r' {
                            1
                        } else {
                            0
                        };
                        i += 1;
                    }
                    *self = if matched == 4 {
                        WsFramer::NEXT_HEADER
                    } else {
                        WsFramer::Http { matched }
                    };
                    false
                }
                WsFramer::Head {
                    mut hdr,
                    mut have,
                    mut need,
                    mut drop,
                } => {
                    while i < chunk.len() && have < need {
                        let b = chunk[i];
                        if have == 0 {
                            drop = mask & kind_of(ws_opcode(b)) != 0;
                        }
                        hdr[usize::from(have)] = b;
                        have += 1;
                        i += 1;
                        if have == 2 {
                            need = ws_header_len(hdr[1]) as u8;
                        }
                    }
                    *self = if let Some(h) = ws_header(&hdr[..usize::from(have)]) {
                        Self::body_or_next(h.payload_len, drop)
                    } else {
                        WsFramer::Head {
                            hdr,
                            have,
                            need,
                            drop,
                        }
                    };
                    drop
                }
                WsFramer::Body { left, drop } => {
                    let n = left.min((chunk.len() - i) as u64);
                    i += n as usize;
                    *self = Self::body_or_next(left - n, drop);
                    drop
                }
            };
            push(out, start..i, dropped);
        }
    }

    /// Before a frame's first header byte: its kind is not known yet.
    const NEXT_HEADER: WsFramer = WsFramer::Head {
        hdr: [0; WS_MAX_HEADER],
        have: 0,
        need: 2,
        drop: false,
    };

    fn body_or_next(left: u64, drop: bool) -> WsFramer {
        if left == 0 {
            WsFramer::NEXT_HEADER
        } else {
            WsFramer::Body { left, drop }
        }
    }
}

/// Onto the piece before when both pass or both vanish, else a piece of its own.
fn push(out: &mut Vec<Piece>, range: Range<usize>, dropped: bool) {
    if range.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.dropped == dropped && last.range.end == range.start {
            last.range.end = range.end;
            return;
        }
    }
    out.push(Piece {
        range,
        packet: 0,
        starts: false,
        dropped,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mask: u8, chunks: &[&[u8]]) -> Vec<u8> {
        // What gets through, chunk by chunk.
        let mut f = WsFramer::default();
        let mut passed = Vec::new();
        let mut out = Vec::new();
        for c in chunks {
            out.clear();
            f.pieces(mask, c, 0, &mut out);
            assert_eq!(
                out.iter().map(|p| p.range.len()).sum::<usize>(),
                c.len(),
                "every byte is in a piece"
            );
            for p in &out {
                if !p.dropped {
                    passed.extend_from_slice(&c[p.range.clone()]);
                }
            }
        }
        passed
    }

    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    // A pong (unmasked, empty), a binary frame with a PINGRESP, a masked ping with 2 bytes.
    const PONG_F: &[u8] = &[0x8a, 0x00];
    const BIN: &[u8] = &[0x82, 0x02, 0xd0, 0x00];
    const PING_M: &[u8] = &[0x89, 0x82, 1, 2, 3, 4, 0x61 ^ 1, 0x62 ^ 2];

    #[test]
    fn pongs_vanish_whole_and_everything_else_passes_however_the_chunks_fall() {
        let stream: Vec<u8> = [HEAD, PONG_F, BIN, PING_M, PONG_F].concat();
        let want: Vec<u8> = [HEAD, BIN, PING_M].concat();
        assert_eq!(run(PONG, &[&stream]), want);
        // Byte by byte: the header state carries across chunks.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(PONG, &bytes), want);
    }

    #[test]
    fn data_frames_vanish_while_control_frames_pass() {
        let stream: Vec<u8> = [HEAD, BIN, PING_M, BIN].concat();
        assert_eq!(run(DATA, &[&stream]), [HEAD, PING_M].concat());
    }

    #[test]
    fn a_long_frame_length_and_a_stream_that_is_not_http_are_followed() {
        let mut long = vec![0x82, 126, 0x01, 0x00];
        long.extend(std::iter::repeat(0u8).take(256));
        let stream: Vec<u8> = [HEAD, &long, PONG_F].concat();
        assert_eq!(
            run(PONG, &[&stream[..100], &stream[100..]]),
            [HEAD, &long].concat()
        );
        assert_eq!(run(DATA, &[&[0x10, 0x02, 0, 0]]), vec![0x10, 0x02, 0, 0]);
    }
}
