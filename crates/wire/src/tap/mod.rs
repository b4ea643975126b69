//! A passive decoder for the bytes the proxy forwards, so that each event in the record can say
//! *what* crossed the wire (a PINGREQ, a PUBLISH to `a/b`, a WebSocket close with code 1006) and
//! not only how many bytes did.
//!
//! There is one [`Decoder`] per direction of each proxied connection. It is fed the bytes exactly
//! as they pass, in chunks split anywhere (mid-header, mid-length, mid-mask-key), and appends
//! whatever became complete to a caller-owned `Vec<Decoded>`. It does no I/O and knows no time:
//! the caller stamps each event when `feed` returns.
//!
//! ```text
//!  raw bytes (upstream; payloads shown unmasked, m = mask key byte):
//!
//!  GET /mqtt HTTP/1.1\r\n...\r\n | 02 86 m m m m c0 00 30 09 00 03 | 89 80 m m m m | 80 87 m m m m 61 2f 62 68 69 21 21
//!  '------ HttpUpgrade ------''- binary frame, FIN=0 ---------''--- ping ----''- continuation, FIN=1 ----------'
//!                                                |                                          |
//!  MQTT stream (data payloads, concatenated):    c0 00 30 09 00 03 61 2f 62 68 69 21 21
//!                                                '-----''-----------------------------'
//!                                                PINGREQ  PUBLISH "a/b" (spans two frames)
//!
//!  events: HttpUpgrade, Packet(PINGREQ), WsControl(ping), Packet(PUBLISH)
//! ```
//!
//! Framing is detected from the first bytes: an upstream stream starting with `GET ` or a
//! downstream one starting with `HTTP/` is a WebSocket connection (HTTP upgrade, then RFC 6455
//! frames whose data payloads, concatenated, are the MQTT byte stream: one frame may carry
//! several packets and one packet may span frames); anything else is MQTT straight over TCP.
//!
//! The decoder never panics and never buffers more than one incomplete MQTT packet (capped at
//! 1 MiB of remaining length), one WebSocket frame header and one control payload. The first
//! thing it cannot make sense of becomes a single [`Decoded::Undecodable`]; after that it only
//! counts bytes, because once a length field has been misread every later boundary is a guess.
//!
//! Inside, it is split like mini-redis's `frame.rs`: a `check` that tells whether a complete
//! unit is there (not enough bytes yet being an ordinary answer), then a `parse` of a unit known
//! to be complete. The remaining length, the fixed header and the WebSocket frame header are
//! read by [`codec`], the one place that decodes them (the proxy's fault gates use it too).
//!
//! Hand-written, not a crate's MQTT or WebSocket codec: the tap must see the exact bytes as
//! they pass (a malformed packet, a header split across chunks) and never hold any back.

pub mod codec;
mod mqtt;
#[cfg(test)]
mod tests;
mod ws;

use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use mqtt::MAX_REMAINING;

/// An HTTP upgrade head longer than this is not a WebSocket handshake we want to hold on to.
const MAX_HTTP_HEAD: usize = 16 * 1024;

/// How much of the offending bytes an [`Decoded::Undecodable`] shows.
const EXCERPT: usize = 32;

/// Which way the bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to broker.
    Upstream,
    /// Broker to client.
    Downstream,
}

/// What a [`Decoder`] produces, in stream order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Decoded {
    /// The HTTP upgrade request (upstream) or response (downstream) of a WebSocket connection:
    /// its first line, e.g. `GET /mqtt HTTP/1.1` or `HTTP/1.1 101 Switching Protocols`.
    HttpUpgrade { line: String },
    /// One complete MQTT control packet.
    Packet(PacketInfo),
    /// A WebSocket control frame (close, ping, pong).
    WsControl {
        opcode: WsOpcode,
        masked: bool,
        /// The status code of a close frame that has one.
        close_code: Option<u16>,
        payload_len: usize,
    },
    /// A TLS record passed through (its contents encrypted): its content type as the record
    /// header says (TLS 1.3 sends everything after the handshake as `application_data`, an
    /// alert such as close_notify too) and its length.
    TlsRecord {
        content_type: &'static str,
        length: usize,
    },
    /// Bytes that cannot be decoded. Emitted at most once per decoder; the rest of the stream
    /// is then only counted.
    Undecodable {
        /// Offset in the raw stream of the unit (packet, frame, HTTP head) that went wrong.
        offset: u64,
        /// Lowercase hex of at most 32 bytes from there. For a packet inside WebSocket frames
        /// these are the unmasked MQTT bytes.
        hex: String,
        /// A short lowercase phrase.
        reason: String,
    },
}

/// QoS 0 PUBLISHes a folding decoder counted instead of decoding (see
/// [`Decoder::fold_publishes`]): `count` more like the unit at `index` of `out`, `bytes` of
/// MQTT packets in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold {
    pub index: usize,
    pub count: u64,
    pub bytes: u64,
}

/// A WebSocket frame opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WsOpcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
    /// A reserved control opcode (0xB..=0xF). Reserved data opcodes are undecodable.
    Other(u8),
}

/// Every named opcode with its number and its name in the journal and the log, once.
const WS_OPCODES: [(WsOpcode, u8, &str); 6] = [
    (WsOpcode::Continuation, 0x0, "continuation"),
    (WsOpcode::Text, 0x1, "text"),
    (WsOpcode::Binary, 0x2, "binary"),
    (WsOpcode::Close, 0x8, "close"),
    (WsOpcode::Ping, 0x9, "ping"),
    (WsOpcode::Pong, 0xA, "pong"),
];

impl WsOpcode {
    #[inline]
    pub fn from_u8(op: u8) -> Self {
        // Indexed by opcode, built from the table at compile time: this runs for every data
        // frame the tap decodes.
        const BY_NUMBER: [Option<WsOpcode>; 16] = {
            let mut t = [None; 16];
            let mut i = 0;
            while i < WS_OPCODES.len() {
                t[WS_OPCODES[i].1 as usize] = Some(WS_OPCODES[i].0);
                i += 1;
            }
            t
        };
        match BY_NUMBER.get(usize::from(op)) {
            Some(Some(named)) => *named,
            _ => WsOpcode::Other(op),
        }
    }

    /// The inverse of `Display`: `ping`, `opcode 0xb`.
    pub fn from_name(s: &str) -> Option<Self> {
        if let Some((o, _, _)) = WS_OPCODES.iter().find(|(_, _, name)| *name == s) {
            return Some(*o);
        }
        s.strip_prefix("opcode 0x")
            .and_then(|n| u8::from_str_radix(n, 16).ok())
            .map(WsOpcode::Other)
    }
}

/// The kinds of WebSocket frame a fault can take, as bits of a mask: the transport's
/// vocabulary, which scenarios name and the proxy's frame gate applies. A frame's kind comes
/// from its opcode through [`WsOpcode`], so the opcode numbers are written once, in
/// `WS_OPCODES`.
pub mod ws_kinds {
    use super::WsOpcode;

    pub const DATA: u8 = 1;
    pub const PING: u8 = 2;
    pub const PONG: u8 = 4;
    pub const CLOSE: u8 = 8;

    /// The kind bit of a frame's opcode (0 for a reserved one).
    #[inline]
    pub fn kind_of(opcode: u8) -> u8 {
        match WsOpcode::from_u8(opcode) {
            WsOpcode::Continuation | WsOpcode::Text | WsOpcode::Binary => DATA,
            WsOpcode::Close => CLOSE,
            WsOpcode::Ping => PING,
            WsOpcode::Pong => PONG,
            WsOpcode::Other(_) => 0,
        }
    }

    /// The names a scenario uses for the kinds, with their bits.
    pub const KINDS: &[(&str, u8)] = &[
        ("data", DATA),
        ("ping", PING),
        ("pong", PONG),
        ("close", CLOSE),
    ];
}

/// How an MQTT packet travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Framing {
    Tcp,
    Ws {
        /// Opcode of the frame that carried the packet's first byte, as it was on the wire:
        /// `continuation` when that frame continued a fragmented message.
        opcode: WsOpcode,
        masked: bool,
    },
}

impl std::fmt::Display for WsOpcode {
    /// `binary`, `continuation`, `opcode 0xb`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsOpcode::Other(n) => write!(f, "opcode 0x{n:x}"),
            named => f.write_str(
                WS_OPCODES
                    .iter()
                    .find(|(o, _, _)| o == named)
                    .map_or("", |(_, _, name)| name),
            ),
        }
    }
}

impl std::fmt::Display for Framing {
    /// How the journal says it: `tcp`, `ws binary masked`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Framing::Tcp => f.write_str("tcp"),
            Framing::Ws { opcode, masked } => {
                write!(f, "ws {opcode}{}", if *masked { " masked" } else { "" })
            }
        }
    }
}

impl std::str::FromStr for Framing {
    type Err = String;

    /// The inverse of `Display`: a saved journal's `framing` read back.
    fn from_str(s: &str) -> Result<Framing, String> {
        if s == "tcp" {
            return Ok(Framing::Tcp);
        }
        let bad = || format!("not a framing: {s:?} (expected tcp or ws OPCODE [masked])");
        let ws = s.strip_prefix("ws ").ok_or_else(bad)?;
        let (op, masked) = match ws.strip_suffix(" masked") {
            Some(op) => (op, true),
            None => (ws, false),
        };
        let opcode = WsOpcode::from_name(op).ok_or_else(bad)?;
        Ok(Framing::Ws { opcode, masked })
    }
}

/// One MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketInfo {
    pub kind: PacketKind,
    pub framing: Framing,
    /// Bytes of the MQTT packet: fixed header plus remaining length.
    pub size: usize,
    /// Lowercase hex of the whole packet when it is at most 16 bytes, e.g. `c000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    #[serde(skip_serializing_if = "Fields::is_none")]
    pub fields: Fields,
}

pub use crate::mqtt::PacketKind;

/// The fields of a packet that are worth a line in the record.
///
/// Read back untagged: each variant is tried in the order declared, and each has a field the
/// later ones lack (`client_id`, `session_present`, `topic`, `filters` as pairs, `codes`,
/// `filters` as names, `packet_id`), so a saved packet's fields come back as the variant they
/// were written from. `Disconnect` (every field optional) comes last but `None` (null).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fields {
    /// PINGREQ, PINGRESP, AUTH.
    #[default]
    None,
    Connect {
        client_id: String,
        protocol_level: u8,
        keepalive_s: u16,
        clean: bool,
        will: Option<WillInfo>,
        /// v5 Session Expiry Interval property.
        session_expiry_s: Option<u32>,
    },
    Connack {
        session_present: bool,
        /// 3.1.1 return code or v5 reason code.
        code: u8,
        /// v5 Server Keep Alive property: the keepalive the server imposes [MQTT-3.2.2-21].
        #[serde(skip_serializing_if = "Option::is_none")]
        server_keepalive_s: Option<u16>,
    },
    Publish {
        topic: String,
        qos: u8,
        retain: bool,
        dup: bool,
        packet_id: Option<u16>,
        payload_len: usize,
    },
    Subscribe {
        packet_id: u16,
        /// Topic filter and requested QoS.
        filters: Vec<(String, u8)>,
    },
    Suback {
        packet_id: u16,
        codes: Vec<u8>,
    },
    Unsubscribe {
        packet_id: u16,
        filters: Vec<String>,
    },
    /// PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK.
    Ack {
        packet_id: u16,
    },
    Disconnect {
        /// `None` for the two-byte form `e000` (3.1.1, or v5 with remaining length 0).
        reason: Option<u8>,
    },
}

impl Fields {
    pub fn is_none(&self) -> bool {
        matches!(self, Fields::None)
    }
}

/// The will of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillInfo {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload_len: usize,
    /// v5 Will Delay Interval property.
    pub delay_s: Option<u32>,
}

/// Something the layers below could not decode, before it becomes [`Decoded::Undecodable`].
/// Boxed so that the `Result<(), Bad>` returned for every frame and packet fits in a register.
struct Bad(Box<BadInfo>);

struct BadInfo {
    offset: u64,
    hex: String,
    reason: String,
}

impl Bad {
    /// `head` then `tail` are the bytes from where it went wrong (a unit may sit partly in a
    /// buffer and partly in the current chunk).
    #[cold]
    fn new(offset: u64, head: &[u8], tail: &[u8], reason: impl Into<String>) -> Self {
        Bad(Box::new(BadInfo {
            offset,
            hex: hex_excerpt(head, tail),
            reason: reason.into(),
        }))
    }
}

fn hex_excerpt(head: &[u8], tail: &[u8]) -> String {
    let head = &head[..head.len().min(EXCERPT)];
    let tail = &tail[..tail.len().min(EXCERPT - head.len())];
    let mut s = hex(head);
    s.push_str(&hex(tail));
    s
}

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
}

enum State {
    /// Not enough bytes yet to tell WebSocket from plain MQTT: holds what matched the HTTP
    /// prefix so far.
    Detect {
        held: [u8; 5],
        len: usize,
    },
    /// Inside the HTTP upgrade head.
    Http {
        head: Vec<u8>,
    },
    /// The server answered the upgrade with something other than 101; what follows is an HTTP
    /// body, not frames.
    HttpRefused,
    Tcp,
    Ws,
    /// TLS passed through: records, their headers read, their contents skipped.
    Tls(TlsRecords),
    Dead,
}

/// The TLS record layer as the tap sees it when TLS passes through (RFC 8446 5.1): a 5-byte
/// header (content type, legacy version, length), then that many encrypted bytes.
#[derive(Default)]
struct TlsRecords {
    header: [u8; 5],
    have: usize,
    /// Bytes of the current record's body still to skip.
    skip: usize,
}

/// The first byte of a TLS stream either way: a handshake record (ClientHello, ServerHello).
/// No MQTT stream starts with it (0x16 would be a CONNECT with reserved flags set, or none).
const TLS_HANDSHAKE: u8 = 0x16;

/// The largest TLS record body: 2^14 plus expansion [RFC 8446 5.2].
const TLS_MAX_RECORD: usize = (1 << 14) + 256;

fn tls_content_type(t: u8) -> &'static str {
    match t {
        20 => "change_cipher_spec",
        21 => "alert",
        22 => "handshake",
        23 => "application_data",
        24 => "heartbeat",
        _ => "unknown",
    }
}

impl TlsRecords {
    fn feed(&mut self, mut data: &[u8], mut raw: u64, out: &mut Vec<Decoded>) -> Result<(), Bad> {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                raw += n as u64;
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            raw += n as u64;
            if self.have < 5 {
                return Ok(());
            }
            self.have = 0;
            let h = self.header;
            let length = usize::from(u16::from_be_bytes([h[3], h[4]]));
            if h[1] != 3 || length > TLS_MAX_RECORD {
                return Err(Bad::new(raw - 5, &h, &[], "not a TLS record header"));
            }
            out.push(Decoded::TlsRecord {
                content_type: tls_content_type(h[0]),
                length,
            });
            self.skip = length;
        }
        Ok(())
    }
}

/// Decodes one direction of one proxied connection.
pub struct Decoder {
    direction: Direction,
    offset: u64,
    state: State,
    mqtt: mqtt::Stream,
    ws: ws::Frames,
}

impl Decoder {
    /// `level` is shared by the two decoders of one connection: the upstream decoder stores the
    /// protocol level (4 = 3.1.1, 5 = MQTT 5) when it decodes CONNECT, and both read it to know
    /// whether packets carry v5 properties. While it is 0 (unknown) the downstream decoder infers
    /// it from CONNACK (a 3.1.1 CONNACK has remaining length exactly 2) and stores that, since
    /// the downstream decoder may be fed the CONNACK before the upstream one is fed the CONNECT.
    pub fn new(direction: Direction, level: Arc<AtomicU8>) -> Self {
        Decoder {
            direction,
            offset: 0,
            state: State::Detect {
                held: [0; 5],
                len: 0,
            },
            mqtt: mqtt::Stream::new(direction == Direction::Upstream, level),
            ws: ws::Frames::new(),
        }
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Fold PUBLISH runs (what the proxy's tap does for `publishes = "runs"`): a QoS 0 PUBLISH
    /// that follows one with the same topic, retain flag and payload size in the same `feed`
    /// is not appended to `out` but counted in [`Decoder::folds`] against it, so a flood of
    /// them costs no topic string and no unit each. Whoever folds reads the folds with the
    /// units and clears both together.
    pub fn fold_publishes(&mut self, on: bool) {
        self.mqtt.fold_publishes(on);
    }

    /// What was folded since the caller last cleared this, in the order of `out`.
    pub fn folds(&mut self) -> &mut Vec<Fold> {
        &mut self.mqtt.folds
    }

    /// Feeds the next chunk; appends whatever became complete to `out`, in stream order.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Decoded>) {
        self.mqtt.start_feed(out.len());
        let at = self.offset;
        self.offset += chunk.len() as u64;
        if matches!(self.state, State::Dead) {
            return;
        }
        if let Err(bad) = self.feed_inner(chunk, at, out) {
            self.state = State::Dead;
            self.mqtt.release();
            self.ws.release();
            out.push(Decoded::Undecodable {
                offset: bad.0.offset,
                hex: bad.0.hex,
                reason: bad.0.reason,
            });
        }
    }

    /// Bytes fed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether an [`Decoded::Undecodable`] has been emitted (the rest is only counted).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, State::Dead)
    }

    #[cfg(test)]
    fn mqtt_buffer_capacity(&self) -> usize {
        self.mqtt.buffer_capacity()
    }

    fn feed_inner(
        &mut self,
        mut data: &[u8],
        mut raw: u64,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Bad> {
        loop {
            match &mut self.state {
                State::Tcp => return self.mqtt.feed(data, raw, Framing::Tcp, out),
                State::Ws => return self.ws.feed(data, raw, &mut self.mqtt, out),
                State::Tls(records) => return records.feed(data, raw, out),
                State::Dead => return Ok(()),
                State::HttpRefused => {
                    if data.is_empty() {
                        return Ok(());
                    }
                    return Err(Bad::new(
                        raw,
                        data,
                        &[],
                        "data after a refused websocket upgrade",
                    ));
                }
                State::Detect { len: 0, .. } if data.first() == Some(&TLS_HANDSHAKE) => {
                    self.state = State::Tls(TlsRecords::default());
                }
                State::Detect { held, len } => {
                    let prefix: &[u8] = match self.direction {
                        Direction::Upstream => b"GET ",
                        Direction::Downstream => b"HTTP/",
                    };
                    while *len < prefix.len() {
                        let Some((&b, rest)) = data.split_first() else {
                            return Ok(());
                        };
                        if b != prefix[*len] {
                            // Not HTTP: the bytes held back are the start of the MQTT stream.
                            let held = *held;
                            let n = *len;
                            self.state = State::Tcp;
                            let start = raw - n as u64;
                            self.mqtt.feed(&held[..n], start, Framing::Tcp, out)?;
                            return self.mqtt.feed(data, raw, Framing::Tcp, out);
                        }
                        held[*len] = b;
                        *len += 1;
                        data = rest;
                        raw += 1;
                    }
                    self.state = State::Http {
                        head: prefix.to_vec(),
                    };
                }
                State::Http { head } => {
                    let old = head.len();
                    let take = data.len().min(MAX_HTTP_HEAD - old);
                    head.extend_from_slice(&data[..take]);
                    // The terminator may straddle the previous chunk.
                    let from = old.saturating_sub(3);
                    let Some(end) = find(&head[from..], b"\r\n\r\n").map(|i| from + i + 4) else {
                        if head.len() >= MAX_HTTP_HEAD {
                            return Err(Bad::new(
                                raw - old as u64,
                                head,
                                &[],
                                "http upgrade head too long",
                            ));
                        }
                        return Ok(());
                    };
                    let line_end = find(head, b"\r\n").unwrap_or(end);
                    let line = String::from_utf8_lossy(&head[..line_end]).into_owned();
                    let accepted = match self.direction {
                        Direction::Upstream => true,
                        Direction::Downstream => line.split(' ').nth(1) == Some("101"),
                    };
                    let used = end - old;
                    data = &data[used..];
                    raw += used as u64;
                    out.push(Decoded::HttpUpgrade { line });
                    self.state = if accepted {
                        State::Ws
                    } else {
                        State::HttpRefused
                    };
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
