//! The wire's three primitives, the one place they are decoded: MQTT's variable byte integer
//! (the remaining length), MQTT's fixed header (is a whole packet at the start of this buffer,
//! and how long is it), and a WebSocket frame header (RFC 6455 5.2). Beside them, the
//! WebSocket bytes our own clients write (the upgrade request, a masked binary frame) and the
//! journal's words for a WebSocket control frame, written and read back in one place.
//!
//! ```text
//!  bytes --varint-------> Incomplete | Invalid (a 5th byte) | Done { value, len }
//!        --fixed_header-> Ok(None) (more bytes) | Err(too long) | FixedHeader { header_len, remaining }
//!        --ws_header----> None (more bytes)     | WsHeader { fin, rsv, opcode, mask, payload_len, header_len }
//!
//!  users: the tap (incremental: tap/mqtt.rs, tap/ws.rs), the proxy's fault gates (proxy/fault.rs,
//!         proxy/wsgate.rs: byte-exact, across chunks), our clients (actor/v5wire.rs re-exports
//!         the encoders)
//! ```
//!
//! Hand-written, not a crate's: the tap and the fault gates must see the exact bytes (a header
//! split across chunks, a length a broker should never send, a frame to swallow whole) and never
//! hold one back, and our clients must write byte forms of their choosing.
//!
//! Nothing here does I/O, allocates while decoding, or panics on any input. It depends on std
//! only, so the wire crate it is part of stays free of the rest of the project.

use super::WsOpcode;

/// What a variable byte integer at the start of some bytes turned out to be [MQTT-1.5.5]
/// (MQTT 3.1.1 2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Varint {
    /// Not enough bytes yet: an ordinary answer, not an error.
    Incomplete,
    /// The fourth byte says another follows: at most four are allowed, so this is not MQTT
    /// (or the stream lost sync).
    Invalid,
    /// The value and how many bytes (1..=4) it took.
    Done { value: usize, len: usize },
}

/// A variable byte integer read a byte at a time, for a reader whose bytes arrive in chunks
/// split anywhere (the fault gate's framer keeps one between chunks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VarintDecoder {
    value: usize,
    /// Bytes taken so far.
    len: u8,
}

impl VarintDecoder {
    /// Takes the next byte. After `Done` or `Invalid` the decoder is spent: start a new one.
    #[inline(always)]
    pub fn push(&mut self, byte: u8) -> Varint {
        self.value |= usize::from(byte & 0x7f) << (7 * self.len);
        self.len += 1;
        if byte & 0x80 == 0 {
            Varint::Done {
                value: self.value,
                len: usize::from(self.len),
            }
        } else if self.len == 4 {
            Varint::Invalid
        } else {
            Varint::Incomplete
        }
    }
}

/// The variable byte integer at the start of `b` (whole-buffer form of [`VarintDecoder`]).
#[inline(always)]
pub fn varint(b: &[u8]) -> Varint {
    let mut d = VarintDecoder::default();
    for &byte in b.iter().take(4) {
        match d.push(byte) {
            Varint::Incomplete => {}
            done_or_invalid => return done_or_invalid,
        }
    }
    Varint::Incomplete
}

/// An MQTT fixed header: the first byte (packet type and flags) and the remaining length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Packet type (high nibble) and flags (low nibble).
    pub first: u8,
    /// Bytes of the fixed header: 2..=5.
    pub header_len: usize,
    /// The remaining length: bytes of the packet after its fixed header.
    pub remaining: usize,
}

impl FixedHeader {
    /// Bytes of the whole packet.
    pub fn total(&self) -> usize {
        self.header_len + self.remaining
    }

    /// The control packet type, the first byte's high nibble.
    pub fn packet_type(&self) -> u8 {
        self.first >> 4
    }
}

/// The remaining length of a fixed header runs past its fourth byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthTooLong;

/// The fixed header at the start of `b`: `Ok(None)` while it is incomplete. The flags are not
/// checked here (the tap refuses wrong ones, the fault gate passes them on untouched).
#[inline(always)]
pub fn fixed_header(b: &[u8]) -> Result<Option<FixedHeader>, LengthTooLong> {
    let Some((&first, rest)) = b.split_first() else {
        return Ok(None);
    };
    match varint(rest) {
        Varint::Incomplete => Ok(None),
        Varint::Invalid => Err(LengthTooLong),
        Varint::Done { value, len } => Ok(Some(FixedHeader {
            first,
            header_len: 1 + len,
            remaining: value,
        })),
    }
}

/// The length of the whole packet at the start of `b` when all of it is there: "is there a
/// complete packet, how long is it".
#[inline(always)]
pub fn complete_packet(b: &[u8]) -> Option<usize> {
    match fixed_header(b) {
        Ok(Some(h)) if h.total() <= b.len() => Some(h.total()),
        _ => None,
    }
}

/// A WebSocket frame header [RFC 6455 5.2]:
///
/// ```text
///  byte 0: FIN | RSV1-3 | opcode(4)
///  byte 1: MASK | len7   (126: a 16-bit length follows, 127: a 64-bit one)
///  then the extended length, then the 4-byte mask key when MASK is set
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsHeader {
    pub fin: bool,
    /// The three RSV bits, in place (0x70 of byte 0): set only by an extension.
    pub rsv: u8,
    /// The opcode as the wire says it (0..=15).
    pub opcode: u8,
    /// The mask key of a masked frame (every frame a client sends).
    pub mask: Option<[u8; 4]>,
    /// As the header says it; a 64-bit length with its top bit set is left for the reader to
    /// refuse (the spec forbids it, a gate that only counts bytes does not care).
    pub payload_len: u64,
    /// Bytes of the header: 2..=14.
    pub header_len: usize,
}

impl WsHeader {
    /// The opcode, typed.
    pub fn kind(&self) -> WsOpcode {
        WsOpcode::from_u8(self.opcode)
    }
}

/// The largest WebSocket frame header: 2 bytes, an 8-byte length, a 4-byte mask key.
pub const WS_MAX_HEADER: usize = 14;

/// The opcode of a frame from its first byte: what a gate decides on before the rest arrives.
#[inline(always)]
pub fn ws_opcode(b0: u8) -> u8 {
    b0 & 0x0f
}

/// How many bytes a WebSocket frame header has in all, from its second byte.
#[inline(always)]
pub fn ws_header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// The frame header at the start of `b`, or `None` while it is incomplete.
#[inline(always)]
pub fn ws_header(b: &[u8]) -> Option<WsHeader> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let header_len = ws_header_len(b1);
    let h = b.get(..header_len)?;
    let (payload_len, rest) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), &h[4..]),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&h[2..10]);
            (u64::from_be_bytes(n), &h[10..])
        }
        n => (u64::from(n), &h[2..]),
    };
    Some(WsHeader {
        fin: b0 & 0x80 != 0,
        rsv: b0 & 0x70,
        opcode: ws_opcode(b0),
        mask: (b1 & 0x80 != 0).then(|| [rest[0], rest[1], rest[2], rest[3]]),
        payload_len,
        header_len,
    })
}

/// One masked binary WebSocket frame around `payload`, as a client sends it [RFC 6455 5.2]:
/// the shortest length form. The mask only has to be unpredictable to a cache in between; any
/// key serves a test client.
pub fn ws_frame(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(WS_MAX_HEADER + payload.len());
    out.push(0x82);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The HTTP request that opens a WebSocket connection for MQTT [RFC 6455 4.1, MQTT-6.0.0-3].
pub fn ws_upgrade(host: &str, path: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
    )
    .into_bytes()
}

/// How the journal words a WebSocket control frame (a `WireFrame` record's `what`):
/// `ws ping masked, 0 B`, `ws close, 2 B code 1000`. [`ws_control_opcode`] reads it back.
pub fn ws_control_text(
    opcode: WsOpcode,
    masked: bool,
    close_code: Option<u16>,
    payload_len: usize,
) -> String {
    format!(
        "ws {}{}{}, {payload_len} B",
        opcode,
        if masked { " masked" } else { "" },
        close_code.map(|c| format!(" code {c}")).unwrap_or_default()
    )
}

/// The opcode of a control frame as [`ws_control_text`] worded it, or `None` for any other
/// text (an HTTP line, a TLS record, an undecodable stretch).
pub fn ws_control_opcode(what: &str) -> Option<WsOpcode> {
    let rest = what.strip_prefix("ws ")?;
    // The opcode's words end at " masked", " code N" or the comma before the size.
    let words = &rest[..rest.find(',').unwrap_or(rest.len())];
    let words = &words[..words.find(" code ").unwrap_or(words.len())];
    WsOpcode::from_name(words.strip_suffix(" masked").unwrap_or(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        crate::mqtt::varint(n, &mut out);
        out
    }

    #[test]
    fn a_remaining_length_takes_one_more_byte_at_each_power_of_128() {
        for (n, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (crate::mqtt::SPEC_MAX_REMAINING, 4),
        ] {
            let b = encoded(n);
            assert_eq!(b.len(), len, "{n}");
            assert_eq!(crate::mqtt::varint_len(n), len, "{n}");
            assert_eq!(varint(&b), Varint::Done { value: n, len }, "{n}");
            // Every proper prefix asks for more; bytes after it are not read.
            for cut in 0..len {
                assert_eq!(varint(&b[..cut]), Varint::Incomplete, "{n} cut at {cut}");
            }
            let mut more = b.clone();
            more.extend_from_slice(&[0xff, 0xff]);
            assert_eq!(varint(&more), Varint::Done { value: n, len }, "{n}");
        }
        assert_eq!(encoded(127), [0x7f]);
        assert_eq!(encoded(128), [0x80, 0x01]);
        assert_eq!(encoded(16_383), [0xff, 0x7f]);
        assert_eq!(encoded(16_384), [0x80, 0x80, 0x01]);
    }

    #[test]
    fn a_remaining_length_that_needs_a_fifth_byte_is_invalid() {
        assert_eq!(varint(&[0xff, 0xff, 0xff, 0xff]), Varint::Invalid);
        assert_eq!(varint(&[0x80, 0x80, 0x80, 0x80, 0x01]), Varint::Invalid);
        assert_eq!(varint(&[0xff, 0xff, 0xff]), Varint::Incomplete);
        assert_eq!(
            fixed_header(&[0x30, 0xff, 0xff, 0xff, 0xff]),
            Err(LengthTooLong)
        );
    }

    #[test]
    fn the_incremental_decoder_agrees_with_the_whole_buffer_one() {
        for n in [0, 127, 128, 16_383, 16_384, 268_435_455] {
            let b = encoded(n);
            let mut d = VarintDecoder::default();
            let (last, init) = b.split_last().unwrap();
            for &x in init {
                assert_eq!(d.push(x), Varint::Incomplete);
            }
            assert_eq!(d.push(*last), varint(&b));
        }
        let mut d = VarintDecoder::default();
        let got: Vec<Varint> = [0x80u8; 4].iter().map(|&b| d.push(b)).collect();
        assert_eq!(got[3], Varint::Invalid);
    }

    #[test]
    fn a_fixed_header_says_whether_a_whole_packet_is_there() {
        // PINGREQ: 2 bytes, nothing after the header.
        assert_eq!(
            fixed_header(&[0xc0, 0x00]),
            Ok(Some(FixedHeader {
                first: 0xc0,
                header_len: 2,
                remaining: 0
            }))
        );
        assert_eq!(complete_packet(&[0xc0, 0x00, 0xd0]), Some(2));
        assert_eq!(fixed_header(&[]), Ok(None));
        assert_eq!(fixed_header(&[0x30]), Ok(None));
        // PUBLISH with remaining length 128: header 3 bytes, whole at 131.
        let mut p = vec![0x30, 0x80, 0x01];
        let h = fixed_header(&p).unwrap().unwrap();
        assert_eq!((h.header_len, h.remaining, h.total()), (3, 128, 131));
        assert_eq!(h.packet_type(), 3);
        p.resize(130, 0);
        assert_eq!(complete_packet(&p), None);
        p.push(0);
        assert_eq!(complete_packet(&p), Some(131));
        let h = fixed_header(&[0x30, 0x80, 0x80, 0x01]).unwrap().unwrap();
        assert_eq!((h.header_len, h.remaining), (4, 16_384));
    }

    fn header(b: &[u8]) -> WsHeader {
        ws_header(b).unwrap_or_else(|| panic!("incomplete: {b:02x?}"))
    }

    #[test]
    fn a_websocket_length_takes_7_16_or_64_bits() {
        for (n, header_len) in [(0usize, 6), (125, 6), (126, 8), (65_535, 8), (65_536, 14)] {
            let f = ws_frame(&vec![0x5a; n], [1, 2, 3, 4]);
            let h = header(&f);
            assert_eq!((h.payload_len, h.header_len), (n as u64, header_len), "{n}");
            assert_eq!(ws_header_len(f[1]), header_len, "{n}");
            assert_eq!(f.len(), header_len + n, "{n}");
            assert!(h.fin && h.rsv == 0 && h.kind() == WsOpcode::Binary, "{n}");
            assert_eq!(h.mask, Some([1, 2, 3, 4]), "{n}");
            for cut in 0..header_len {
                assert_eq!(ws_header(&f[..cut]), None, "{n} cut at {cut}");
            }
        }
    }

    #[test]
    fn an_unmasked_header_has_no_key_and_a_masked_one_unmasks_its_payload() {
        let pong = header(&[0x8a, 0x00]);
        assert_eq!(
            pong,
            WsHeader {
                fin: true,
                rsv: 0,
                opcode: 10,
                mask: None,
                payload_len: 0,
                header_len: 2
            }
        );
        assert_eq!(pong.kind(), WsOpcode::Pong);
        // A masked ping carrying "ab", not FIN, RSV1 set.
        let f = [0x49, 0x82, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2];
        let h = header(&f);
        assert_eq!((h.fin, h.rsv, h.kind()), (false, 0x40, WsOpcode::Ping));
        let key = h.mask.unwrap();
        let body: Vec<u8> = f[h.header_len..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(body, b"ab");
        // 16- and 64-bit lengths unmasked; a 64-bit length is as the wire says it.
        assert_eq!(header(&[0x82, 126, 0xff, 0xff]).payload_len, 65_535);
        let long = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(header(&long).payload_len, (1 << 63) | 1);
        assert_eq!(header(&long).header_len, 10);
    }

    #[test]
    fn the_upgrade_request_asks_for_mqtt_over_websocket_version_13() {
        let r = String::from_utf8(ws_upgrade("h:1", "/mqtt", "k==")).unwrap();
        assert!(r.starts_with("GET /mqtt HTTP/1.1\r\nHost: h:1\r\n"), "{r}");
        assert!(r.contains("Sec-WebSocket-Version: 13\r\n"), "{r}");
        assert!(r.contains("Sec-WebSocket-Protocol: mqtt\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\n"), "{r}");
    }

    #[test]
    fn a_control_frame_is_worded_and_read_back_by_its_opcode() {
        for op in [
            WsOpcode::Close,
            WsOpcode::Ping,
            WsOpcode::Pong,
            WsOpcode::Other(0xb),
        ] {
            for masked in [false, true] {
                let what = ws_control_text(op, masked, Some(1000), 2);
                assert_eq!(ws_control_opcode(&what), Some(op), "{what}");
            }
        }
        assert_eq!(
            ws_control_text(WsOpcode::Ping, true, None, 0),
            "ws ping masked, 0 B"
        );
        assert_eq!(
            ws_control_text(WsOpcode::Close, false, Some(1006), 2),
            "ws close code 1006, 2 B"
        );
        for other in [
            "HTTP GET /mqtt HTTP/1.1",
            "tls alert, 2 B",
            "undecodable at byte 0: x (00)",
            "ws",
            "ws nonsense, 0 B",
        ] {
            assert_eq!(ws_control_opcode(other), None, "{other}");
        }
    }
}
