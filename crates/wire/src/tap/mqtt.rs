//! The MQTT layer: a byte stream in, complete control packets out.
//!
//! Split like mini-redis's `frame.rs`: [`check`] looks at the fixed header only and says whether a
//! whole packet is there yet (not being there yet is `Ok(None)`, not an error); [`Stream::parse`]
//! then reads the fields of a packet that is known to be complete. Bytes are copied into the
//! stream's own buffer only when a packet straddles two feeds, so the common case parses straight
//! out of the caller's chunk. The fixed header and every variable byte integer are read by
//! [`super::codec`].
//!
//! Hand-written because the tap must decode the exact bytes a client or broker sent, malformed
//! ones included, and say where they stop making sense.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::codec::{fixed_header, varint, LengthTooLong, Varint};
use super::{Bad, Decoded, Fields, Fold, Framing, PacketInfo, PacketKind, WillInfo};

/// Largest remaining length we are willing to buffer. Anything larger is reported as undecodable
/// rather than held in memory: the tap observes, it must not become the proxy's memory hog.
pub const MAX_REMAINING: usize = 1 << 20;

/// After a large packet the buffer is dropped instead of kept, so that one big PUBLISH does not
/// pin a megabyte per idle connection for its lifetime.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Packets up to this size carry their hex in [`PacketInfo::hex`].
const HEX_MAX: usize = 16;

/// Why a fixed header is undecodable. Kept `Copy` and small so that [`check`], which runs once
/// per packet, returns in registers; the message is only formatted when it is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    ReservedType,
    Flags(u8),
    TooLarge(usize),
    LengthTooLong,
}

impl From<HeaderError> for String {
    fn from(e: HeaderError) -> String {
        match e {
            HeaderError::ReservedType => "reserved packet type 0".into(),
            HeaderError::Flags(b0) => format!("invalid fixed header flags 0x{b0:02x}"),
            HeaderError::TooLarge(n) => format!("packet too large ({n} bytes remaining)"),
            HeaderError::LengthTooLong => "remaining length longer than 4 bytes".into(),
        }
    }
}

/// Looks at the start of a packet. `Ok(None)`: the fixed header is not complete yet.
/// `Ok(Some((header_len, remaining_len)))`: the packet is `header_len + remaining_len` bytes.
#[inline]
pub fn check(b: &[u8]) -> Result<Option<(usize, usize)>, HeaderError> {
    let Some(&b0) = b.first() else {
        return Ok(None);
    };
    let flags = b0 & 0x0f;
    // Wrong flags almost always mean we are reading something that is not MQTT (or we lost sync),
    // so they are treated as undecodable instead of being decoded into nonsense.
    let flags_ok = match b0 >> 4 {
        0 => return Err(HeaderError::ReservedType),
        3 => flags & 0b0110 != 0b0110,
        6 | 8 | 10 => flags == 0b0010,
        _ => flags == 0,
    };
    if !flags_ok {
        return Err(HeaderError::Flags(b0));
    }
    match fixed_header(b) {
        Ok(None) => Ok(None),
        Ok(Some(h)) if h.remaining > MAX_REMAINING => Err(HeaderError::TooLarge(h.remaining)),
        Ok(Some(h)) => Ok(Some((h.header_len, h.remaining))),
        Err(LengthTooLong) => Err(HeaderError::LengthTooLong),
    }
}

/// One direction's MQTT byte stream.
pub struct Stream {
    upstream: bool,
    level: Arc<AtomicU8>,
    /// The incomplete packet at the end of what was fed so far (fixed header included).
    buf: Vec<u8>,
    /// Total size of the buffered packet, or 0 while its fixed header is still incomplete.
    need: usize,
    header_len: usize,
    /// Raw stream offset and framing of `buf[0]`.
    start_offset: u64,
    start_framing: Framing,
    /// Fold QoS 0 PUBLISHes into the one before them (see [`Decoder::fold_publishes`]) ...
    ///
    /// [`Decoder::fold_publishes`]: super::Decoder::fold_publishes
    fold: bool,
    /// ... onto units at or after this index of `out` (those of the current feed) ...
    pub floor: usize,
    /// ... and which were folded so far.
    pub folds: Vec<Fold>,
    /// The fixed header and topic of the last QoS 0 PUBLISH of MQTT 3.1.1 that is `out`'s
    /// last unit (`prefix_at` is `out`'s length then, 0: none) and its whole size: a packet
    /// that starts with the same bytes is the same topic, retain flag and payload size, so it
    /// folds with one compare (a flood's every packet but each chunk's first).
    prefix: Vec<u8>,
    prefix_total: usize,
    prefix_at: usize,
}

impl Stream {
    pub fn new(upstream: bool, level: Arc<AtomicU8>) -> Self {
        Stream {
            upstream,
            level,
            buf: Vec::new(),
            need: 0,
            header_len: 0,
            start_offset: 0,
            start_framing: Framing::Tcp,
            fold: false,
            floor: 0,
            folds: Vec::new(),
            prefix: Vec::new(),
            prefix_total: 0,
            prefix_at: 0,
        }
    }

    /// A new feed begins: folding is onto the units from `out_len` on.
    pub fn start_feed(&mut self, out_len: usize) {
        self.floor = out_len;
        self.prefix_at = 0;
    }

    pub fn fold_publishes(&mut self, on: bool) {
        self.fold = on;
    }

    /// Gives the buffer back once the stream is dead.
    pub fn release(&mut self) {
        self.buf = Vec::new();
    }

    #[cfg(test)]
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// `raw` is the offset of `data[0]` in the raw (pre-WebSocket) stream: the bytes of one
    /// feed are always contiguous there, even when they come out of a WebSocket frame.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut raw: u64,
        framing: Framing,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Bad> {
        if !self.buf.is_empty() {
            let used = self.continue_buffered(data, out)?;
            data = &data[used..];
            raw += used as u64;
        }
        while !data.is_empty() {
            if self.prefix_at == out.len()
                && self.prefix_at > self.floor
                && data.len() >= self.prefix_total
                && data.starts_with(&self.prefix)
                && !self.v5()
            {
                let total = self.prefix_total;
                self.add_fold(out.len() - 1, total as u64);
                data = &data[total..];
                raw += total as u64;
                continue;
            }
            match check(data) {
                Ok(Some((header_len, remaining))) => {
                    let total = header_len + remaining;
                    if total <= data.len() {
                        let pkt = &data[..total];
                        // (A packet that straddled two feeds, above, is never folded: rare,
                        // and folding is only ever a shortcut.)
                        if !(self.fold && self.folded(pkt, header_len, out)) {
                            self.parse(pkt, header_len, framing, out)
                                .map_err(|reason| Bad::new(raw, pkt, &[], reason))?;
                        }
                        if self.fold {
                            self.remember_prefix(pkt, header_len, out);
                        }
                        data = &data[total..];
                        raw += total as u64;
                    } else {
                        self.buf.reserve_exact(total);
                        self.begin(data, raw, framing, total, header_len);
                        return Ok(());
                    }
                }
                Ok(None) => {
                    self.begin(data, raw, framing, 0, 0);
                    return Ok(());
                }
                Err(reason) => return Err(Bad::new(raw, data, &[], reason)),
            }
        }
        Ok(())
    }

    fn begin(&mut self, data: &[u8], raw: u64, framing: Framing, need: usize, header_len: usize) {
        self.buf.extend_from_slice(data);
        self.need = need;
        self.header_len = header_len;
        self.start_offset = raw;
        self.start_framing = framing;
    }

    /// Adds bytes to the buffered packet; returns how many of `data` it took.
    fn continue_buffered(&mut self, data: &[u8], out: &mut Vec<Decoded>) -> Result<usize, Bad> {
        let mut used = 0;
        if self.need == 0 {
            // The fixed header is at most 5 bytes, so growing it a byte at a time is cheap and
            // never takes bytes that belong to the next packet.
            loop {
                match check(&self.buf) {
                    Ok(Some((header_len, remaining))) => {
                        self.header_len = header_len;
                        self.need = header_len + remaining;
                        self.buf.reserve_exact(self.need - self.buf.len());
                        break;
                    }
                    Ok(None) if used == data.len() => return Ok(used),
                    Ok(None) => {
                        self.buf.push(data[used]);
                        used += 1;
                    }
                    Err(reason) => {
                        return Err(Bad::new(
                            self.start_offset,
                            &self.buf,
                            &data[used..],
                            reason,
                        ))
                    }
                }
            }
        }
        let take = (self.need - self.buf.len()).min(data.len() - used);
        self.buf.extend_from_slice(&data[used..used + take]);
        used += take;
        if self.buf.len() == self.need {
            self.parse(&self.buf, self.header_len, self.start_framing, out)
                .map_err(|reason| Bad::new(self.start_offset, &self.buf, &[], reason))?;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.need = 0;
        }
        Ok(used)
    }

    /// Appends the packet to `out`. The packet is added first and its fields are written in
    /// place: building the 128-byte `Decoded` on the stack and moving it into `out` cost more
    /// than the parsing itself.
    #[inline(always)]
    fn parse(
        &self,
        pkt: &[u8],
        header_len: usize,
        framing: Framing,
        out: &mut Vec<Decoded>,
    ) -> Result<(), String> {
        let kind = PacketKind::from_type(pkt[0] >> 4).ok_or("reserved packet type")?;
        // `resize_with` makes room before building the value, so it is built in its slot;
        // `push` builds it on the stack first and the copy stalls on store forwarding.
        out.resize_with(out.len() + 1, || {
            Decoded::Packet(PacketInfo {
                kind,
                framing,
                size: pkt.len(),
                hex: (pkt.len() <= HEX_MAX).then(|| super::hex(pkt)),
                fields: Fields::None,
            })
        });
        let Some(Decoded::Packet(info)) = out.last_mut() else {
            unreachable!("just pushed a packet");
        };
        if let Err(detail) = self.fields(kind, pkt[0], &pkt[header_len..], &mut info.fields) {
            out.pop();
            return Err(format!(
                "malformed {} ({detail})",
                kind.as_str().to_ascii_lowercase()
            ));
        }
        Ok(())
    }

    /// Is `pkt` a QoS 0 PUBLISH like the unit before it in this feed (a QoS 0 PUBLISH with the
    /// same topic bytes, retain flag and payload size)? Then it is counted in `folds` instead of
    /// becoming a unit: no topic string, no `Decoded`. Anything else, malformed packets
    /// included, is left to [`Stream::parse`], which says what it is.
    #[inline(always)]
    fn folded(&mut self, pkt: &[u8], header_len: usize, out: &[Decoded]) -> bool {
        let b0 = pkt[0];
        if b0 >> 4 != 3 || (b0 >> 1) & 3 != 0 || out.len() <= self.floor {
            return false;
        }
        let Some(Decoded::Packet(PacketInfo {
            kind: PacketKind::Publish,
            fields:
                Fields::Publish {
                    topic: last_topic,
                    qos: 0,
                    retain: last_retain,
                    payload_len: last_payload,
                    ..
                },
            ..
        })) = out.last()
        else {
            return false;
        };
        let mut r = Reader(&pkt[header_len..]);
        let Ok(topic) = r.string() else {
            return false;
        };
        // Equal bytes are the same topic string: a topic that is not UTF-8 never equals a
        // String's bytes, and goes the long way (its lossy string may still match the run's).
        if topic != last_topic.as_bytes() || (b0 & 1 != 0) != *last_retain {
            return false;
        }
        if self.v5() && r.properties().is_err() {
            return false;
        }
        if r.0.len() != *last_payload {
            return false;
        }
        self.add_fold(out.len() - 1, pkt.len() as u64);
        true
    }

    /// One more PUBLISH folded into `out[index]`.
    fn add_fold(&mut self, index: usize, bytes: u64) {
        match self.folds.last_mut() {
            Some(f) if f.index == index => {
                f.count += 1;
                f.bytes += bytes;
            }
            _ => self.folds.push(Fold {
                index,
                count: 1,
                bytes,
            }),
        }
    }

    /// After `pkt` was decoded or folded: if `out`'s last unit is a QoS 0 PUBLISH of MQTT
    /// 3.1.1 whose topic is `pkt`'s very bytes, the packets that start as `pkt` does (fixed
    /// header, topic) fold into it without decoding (see `prefix`).
    fn remember_prefix(&mut self, pkt: &[u8], header_len: usize, out: &[Decoded]) {
        self.prefix_at = 0;
        let b0 = pkt[0];
        if b0 >> 4 != 3 || (b0 >> 1) & 3 != 0 || self.v5() || out.len() <= self.floor {
            return;
        }
        let Some(Decoded::Packet(PacketInfo {
            kind: PacketKind::Publish,
            fields: Fields::Publish { topic, qos: 0, .. },
            ..
        })) = out.last()
        else {
            return;
        };
        let Some(len) = pkt.get(header_len..header_len + 2) else {
            return;
        };
        let end = header_len + 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        if pkt.get(header_len + 2..end) != Some(topic.as_bytes()) {
            return;
        }
        self.prefix.clear();
        self.prefix.extend_from_slice(&pkt[..end]);
        self.prefix_total = pkt.len();
        self.prefix_at = out.len();
    }

    /// Protocol level used for packets that do not carry it themselves. Unknown (0) is read as
    /// 3.1.1: CONNACK, the first packet downstream, sets it when it is still unknown, so 0 here
    /// means a stream we joined in the middle.
    fn v5(&self) -> bool {
        self.level.load(Ordering::Relaxed) >= 5
    }

    #[inline(always)]
    fn fields(
        &self,
        kind: PacketKind,
        b0: u8,
        body: &[u8],
        dst: &mut Fields,
    ) -> Result<(), &'static str> {
        let mut r = Reader(body);
        *dst = match kind {
            PacketKind::Connect => self.connect(&mut r)?,
            PacketKind::Connack => {
                let flags = r.u8()?;
                let code = r.u8()?;
                // A 3.1.1 CONNACK is exactly two bytes; a v5 one always has a property length.
                let level = self.level.load(Ordering::Relaxed);
                let v5 = if level == 0 {
                    let inferred = if body.len() == 2 { 4 } else { 5 };
                    // Only if nobody knows better: the upstream decoder may have seen CONNECT.
                    let _ = self.level.compare_exchange(
                        0,
                        inferred,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    inferred == 5
                } else {
                    level >= 5
                };
                let server_keepalive_s = if v5 && !r.is_empty() {
                    r.properties()?.server_keepalive
                } else {
                    None
                };
                Fields::Connack {
                    session_present: flags & 1 != 0,
                    code,
                    server_keepalive_s,
                }
            }
            PacketKind::Publish => {
                let topic = r.string()?;
                let qos = (b0 >> 1) & 3;
                let packet_id = if qos > 0 { Some(r.u16()?) } else { None };
                if self.v5() {
                    r.properties()?;
                }
                Fields::Publish {
                    topic: utf8(topic),
                    qos,
                    retain: b0 & 1 != 0,
                    dup: b0 & 8 != 0,
                    packet_id,
                    payload_len: r.0.len(),
                }
            }
            // Their v5 reason codes and properties are not reported; the packet id is what ties
            // an ack to its request.
            PacketKind::Puback
            | PacketKind::Pubrec
            | PacketKind::Pubrel
            | PacketKind::Pubcomp
            | PacketKind::Unsuback => Fields::Ack {
                packet_id: r.u16()?,
            },
            PacketKind::Subscribe => {
                let packet_id = r.u16()?;
                if self.v5() {
                    r.properties()?;
                }
                let mut filters = Vec::new();
                while !r.is_empty() {
                    let filter = r.string()?;
                    // v5 packs No Local / Retain As Published / Retain Handling above the QoS.
                    let options = r.u8()?;
                    filters.push((utf8(filter), options & 3));
                }
                Fields::Subscribe { packet_id, filters }
            }
            PacketKind::Suback => {
                let packet_id = r.u16()?;
                if self.v5() {
                    r.properties()?;
                }
                Fields::Suback {
                    packet_id,
                    codes: r.0.to_vec(),
                }
            }
            PacketKind::Unsubscribe => {
                let packet_id = r.u16()?;
                if self.v5() {
                    r.properties()?;
                }
                let mut filters = Vec::new();
                while !r.is_empty() {
                    filters.push(utf8(r.string()?));
                }
                Fields::Unsubscribe { packet_id, filters }
            }
            PacketKind::Disconnect => Fields::Disconnect {
                // Present only in v5, and there only when it is not 0 with no properties.
                reason: if r.is_empty() { None } else { Some(r.u8()?) },
            },
            PacketKind::Pingreq | PacketKind::Pingresp | PacketKind::Auth => Fields::None,
        };
        Ok(())
    }

    fn connect(&self, r: &mut Reader) -> Result<Fields, &'static str> {
        let name = r.string()?;
        if name != b"MQTT" && name != b"MQIsdp" {
            return Err("unknown protocol name");
        }
        let protocol_level = r.u8()?;
        let flags = r.u8()?;
        let keepalive_s = r.u16()?;
        let v5 = protocol_level >= 5;
        let session_expiry_s = if v5 {
            r.properties()?.session_expiry
        } else {
            None
        };
        let client_id = utf8(r.string()?);
        let will = if flags & 0x04 != 0 {
            let delay_s = if v5 { r.properties()?.will_delay } else { None };
            let topic = utf8(r.string()?);
            let payload_len = r.string()?.len();
            Some(WillInfo {
                topic,
                qos: (flags >> 3) & 3,
                retain: flags & 0x20 != 0,
                payload_len,
                delay_s,
            })
        } else {
            None
        };
        if flags & 0x80 != 0 {
            r.string()?;
        }
        if flags & 0x40 != 0 {
            r.string()?;
        }
        if self.upstream {
            self.level.store(protocol_level, Ordering::Relaxed);
        }
        Ok(Fields::Connect {
            client_id,
            protocol_level,
            keepalive_s,
            clean: flags & 0x02 != 0,
            will,
            session_expiry_s,
        })
    }
}

fn utf8(b: &[u8]) -> String {
    // MQTT forbids invalid UTF-8, but a tap that stops decoding over one bad topic byte would
    // hide everything after it; the replacement character shows the problem well enough.
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8. Topics are short and nearly always ASCII, and for them
        // the general validator's setup costs as much as the rest of the packet's parsing.
        return unsafe { std::str::from_utf8_unchecked(b) }.to_owned();
    }
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// The v5 properties this tap reports; the rest are skipped by their lengths.
#[derive(Default)]
struct Props {
    session_expiry: Option<u32>,
    will_delay: Option<u32>,
    /// Server Keep Alive (CONNACK).
    server_keepalive: Option<u16>,
}

/// A bounds-checked cursor over a packet body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> Result<usize, &'static str> {
        match varint(self.0) {
            Varint::Done { value, len } => {
                self.0 = &self.0[len..];
                Ok(value)
            }
            Varint::Incomplete => Err("truncated"),
            Varint::Invalid => Err("variable byte integer longer than 4 bytes"),
        }
    }

    /// A length-prefixed string or binary field.
    fn string(&mut self) -> Result<&'a [u8], &'static str> {
        let len = self.u16()?;
        self.take(usize::from(len)).map_err(|_| "length past end")
    }

    fn properties(&mut self) -> Result<Props, &'static str> {
        let len = self.varint()?;
        let mut p = Reader(self.take(len).map_err(|_| "property length past end")?);
        let mut props = Props::default();
        while !p.is_empty() {
            match p.varint()? {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => {
                    p.u8()?;
                }
                0x13 => props.server_keepalive = Some(p.u16()?),
                0x21..=0x23 => {
                    p.u16()?;
                }
                0x11 => props.session_expiry = Some(p.u32()?),
                0x18 => props.will_delay = Some(p.u32()?),
                0x02 | 0x27 => {
                    p.u32()?;
                }
                0x0b => {
                    p.varint()?;
                }
                0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1a | 0x1c | 0x1f => {
                    p.string()?;
                }
                0x26 => {
                    p.string()?;
                    p.string()?;
                }
                _ => return Err("unknown property"),
            }
        }
        Ok(props)
    }
}
