//! What the fault gates cut a chunk into: the packet gate (MQTT over TCP, `fault.rs`) and the
//! WebSocket frame gate (`wsgate.rs`) both hand the link pieces of it, each passed or dropped.

use std::ops::Range;

/// A run of bytes: one packet a drop fault takes (or its rest), or the bytes passing between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub range: Range<usize>,
    /// The MQTT packet type of the first bytes; 0 when the stream is opaque.
    pub packet: u8,
    /// True when these bytes start their packet (what a dropped piece's record needs).
    pub starts: bool,
    /// The bytes vanish (a drop fault matched the packet at its first byte).
    pub dropped: bool,
}
