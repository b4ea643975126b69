//! The WebSocket layer (RFC 6455): raw bytes in, control frames out, and the payload bytes of
//! data frames passed on to the MQTT layer as one continuous stream.
//!
//! Payloads are streamed, never buffered: a frame's bytes go to the MQTT layer as soon as they
//! arrive, so the MQTT layer's cap is the only memory bound, however long a frame claims to be.
//! Only frame headers (at most 14 bytes) and control payloads (at most 125) are kept across feeds.
//! Frame headers are read by [`super::codec::ws_header`].
//!
//! Hand-written because the tap must follow the exact frames on the wire (their masking, their
//! fragmentation, a header split across chunks) without buffering a payload.

use super::codec::{ws_header, ws_header_len, WsHeader, WS_MAX_HEADER};
use super::{mqtt, Bad, Decoded, Framing, WsOpcode};

/// Unmasked data goes to the MQTT layer in pieces of at most this size, which bounds the scratch
/// buffer whatever size of chunk the caller feeds.
const UNMASK_PIECE: usize = 32 * 1024;

pub struct Frames {
    /// A frame header split across feeds.
    hdr: [u8; WS_MAX_HEADER],
    hdr_len: usize,
    /// Whether the current frame's header has been read and its payload is being consumed.
    in_payload: bool,
    opcode: u8,
    masked: bool,
    mask: [u8; 4],
    /// Position in the mask of the next payload byte.
    mask_pos: usize,
    remaining: u64,
    frame_offset: u64,
    /// A data message whose last frame (FIN) has not been seen yet.
    in_message: bool,
    ctrl: [u8; 125],
    ctrl_len: usize,
    scratch: Vec<u8>,
}

impl Frames {
    pub fn new() -> Self {
        Frames {
            hdr: [0; WS_MAX_HEADER],
            hdr_len: 0,
            in_payload: false,
            opcode: 0,
            masked: false,
            mask: [0; 4],
            mask_pos: 0,
            remaining: 0,
            frame_offset: 0,
            in_message: false,
            ctrl: [0; 125],
            ctrl_len: 0,
            scratch: Vec::new(),
        }
    }

    pub fn release(&mut self) {
        self.scratch = Vec::new();
    }

    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut raw: u64,
        mqtt: &mut mqtt::Stream,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Bad> {
        while !data.is_empty() {
            if !self.in_payload {
                let used = self.read_header(data, raw)?;
                data = &data[used..];
                raw += used as u64;
                if !self.in_payload {
                    return Ok(());
                }
                if self.remaining == 0 {
                    self.finish_frame(out);
                }
                continue;
            }
            let take = usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
            let (payload, rest) = data.split_at(take);
            if self.opcode >= 8 {
                // Control payloads are at most 125 bytes (checked with the header).
                let dst = &mut self.ctrl[self.ctrl_len..self.ctrl_len + take];
                dst.copy_from_slice(payload);
                unmask(dst, self.mask, self.mask_pos);
                self.ctrl_len += take;
            } else {
                let framing = Framing::Ws {
                    opcode: WsOpcode::from_u8(self.opcode),
                    masked: self.masked,
                };
                if self.masked {
                    let mut pos = self.mask_pos;
                    let mut at = raw;
                    for piece in payload.chunks(UNMASK_PIECE) {
                        // The scratch only grows (to UNMASK_PIECE at most), so a small frame
                        // does not pay for clearing it.
                        if self.scratch.len() < piece.len() {
                            self.scratch.resize(piece.len(), 0);
                        }
                        let dst = &mut self.scratch[..piece.len()];
                        unmask_into(dst, piece, self.mask, pos);
                        mqtt.feed(dst, at, framing, out)?;
                        pos = (pos + piece.len()) & 3;
                        at += piece.len() as u64;
                    }
                } else {
                    mqtt.feed(payload, raw, framing, out)?;
                }
            }
            self.mask_pos = (self.mask_pos + take) & 3;
            self.remaining -= take as u64;
            data = rest;
            raw += take as u64;
            if self.remaining == 0 {
                self.finish_frame(out);
            }
        }
        Ok(())
    }

    /// Consumes header bytes; sets `in_payload` once the whole header is read. `raw` is the
    /// offset of `data[0]`.
    fn read_header(&mut self, data: &[u8], raw: u64) -> Result<usize, Bad> {
        // Fast path: the whole header is in this chunk, parse it in place.
        if self.hdr_len == 0 {
            if let Some(h) = ws_header(data) {
                self.frame_offset = raw;
                self.apply_header(h)
                    .map_err(|reason| Bad::new(raw, data, &[], reason))?;
                return Ok(h.header_len);
            }
        }
        if self.hdr_len == 0 {
            self.frame_offset = raw;
        }
        let mut used = 0;
        if self.hdr_len < 2 {
            let n = (2 - self.hdr_len).min(data.len());
            self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[..n]);
            self.hdr_len += n;
            used = n;
            if self.hdr_len < 2 {
                return Ok(used);
            }
        }
        let len = ws_header_len(self.hdr[1]);
        let n = (len - self.hdr_len).min(data.len() - used);
        self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[used..used + n]);
        self.hdr_len += n;
        used += n;
        if let Some(h) = ws_header(&self.hdr[..self.hdr_len]) {
            let hdr = self.hdr;
            self.hdr_len = 0;
            self.apply_header(h).map_err(|reason| {
                Bad::new(self.frame_offset, &hdr[..len], &data[used..], reason)
            })?;
        }
        Ok(used)
    }

    /// Takes a complete frame header.
    fn apply_header(&mut self, h: WsHeader) -> Result<(), String> {
        let WsHeader {
            fin,
            opcode,
            payload_len,
            ..
        } = h;
        if h.rsv != 0 {
            // RSV bits mean an extension (permessage-deflate, most likely): the payload is not
            // plain MQTT any more.
            return Err("websocket rsv bits set (extension in use)".into());
        }
        if payload_len >> 63 != 0 {
            return Err("websocket payload length has its top bit set".into());
        }
        match opcode {
            0 => {
                if !self.in_message {
                    return Err("websocket continuation frame outside a message".into());
                }
                self.in_message = !fin;
            }
            1 | 2 => {
                if self.in_message {
                    return Err("websocket data frame inside a fragmented message".into());
                }
                self.in_message = !fin;
            }
            3..=7 => return Err(format!("reserved websocket opcode 0x{opcode:x}")),
            _ => {
                if !fin {
                    return Err("fragmented websocket control frame".into());
                }
                if payload_len > 125 {
                    return Err("websocket control frame longer than 125 bytes".into());
                }
            }
        }
        self.opcode = opcode;
        self.masked = h.mask.is_some();
        self.mask = h.mask.unwrap_or([0; 4]);
        self.mask_pos = 0;
        self.remaining = payload_len;
        self.ctrl_len = 0;
        self.in_payload = true;
        Ok(())
    }

    fn finish_frame(&mut self, out: &mut Vec<Decoded>) {
        self.in_payload = false;
        if self.opcode >= 8 {
            let payload = &self.ctrl[..self.ctrl_len];
            let opcode = WsOpcode::from_u8(self.opcode);
            let close_code = match (opcode, payload) {
                (WsOpcode::Close, [a, b, ..]) => Some(u16::from_be_bytes([*a, *b])),
                _ => None,
            };
            out.push(Decoded::WsControl {
                opcode,
                masked: self.masked,
                close_code,
                payload_len: self.ctrl_len,
            });
        }
    }
}

/// The key as one 8-byte word starting at mask position `pos`, and as bytes for a tail. 8 being
/// a multiple of 4, every 8-byte word of a payload sees the key in the same phase.
fn key(mask: [u8; 4], pos: usize) -> (u64, [u8; 4]) {
    let key = u32::from_le_bytes(mask).rotate_right(8 * (pos as u32 & 3));
    (u64::from(key) | (u64::from(key) << 32), key.to_le_bytes())
}

/// XORs `buf` with the mask, `pos` being the mask position of `buf[0]`.
pub fn unmask(buf: &mut [u8], mask: [u8; 4], pos: usize) {
    let (word, k) = key(mask, pos);
    let mut words = buf.chunks_exact_mut(8);
    for w in &mut words {
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ word;
        w.copy_from_slice(&v.to_le_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

/// Unmasks `src` into `dst`, which has the same length. Reading the source and writing the
/// result in one pass avoids copying first and then reading back bytes just written, whose
/// loads stall on store forwarding.
pub fn unmask_into(dst: &mut [u8], src: &[u8], mask: [u8; 4], pos: usize) {
    let (word, k) = key(mask, pos);
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let v = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]) ^ word;
        d.copy_from_slice(&v.to_le_bytes());
    }
    for (i, (d, s)) in d.into_remainder().iter_mut().zip(s.remainder()).enumerate() {
        *d = s ^ k[i & 3];
    }
}
