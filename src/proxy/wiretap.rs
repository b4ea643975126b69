//! The wire tap beside each link: the bytes as they pass -> decoded units -> `wire` records.
//!
//! ```text
//!   link: read chunk -> fault decides each piece -> write what passes
//!                         '-> WireTap::feed(piece, dropped)   (decode only, no I/O)
//!   link, after the writes -> WireTap::flush(journal)          (one record per unit)
//! ```
//!
//! Each link feeds every byte it read, in stream order, with its fate (forwarded or swallowed by
//! a fault), so the decoder never sees a gap and a dropped PINGREQ is still a PINGREQ in the log.
//! Records are made after the link has written, so forwarding never waits for the journal.

use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use super::fault::Flow;
use crate::event::{Actor, Event, Journal, Side};
use crate::tap::{Decoded, Decoder, Direction, Framing, PacketInfo, WsOpcode};

/// One direction's decoder and the units it decoded that are not recorded yet.
pub struct WireTap {
    conn: u64,
    from: Side,
    decoder: Decoder,
    scratch: Vec<Decoded>,
    pending: Vec<Event>,
}

/// The protocol level both directions of one connection share (the CONNECT sets it).
pub fn shared_level() -> Arc<AtomicU8> {
    Arc::new(AtomicU8::new(0))
}

impl WireTap {
    pub fn new(conn: u64, flow: Flow, level: Arc<AtomicU8>) -> WireTap {
        let (direction, from) = match flow {
            Flow::Up => (Direction::Upstream, Side::Client),
            Flow::Down => (Direction::Downstream, Side::Broker),
        };
        WireTap {
            conn,
            from,
            decoder: Decoder::new(direction, level),
            scratch: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Decode the next bytes of the stream; `dropped` says a fault swallowed them.
    pub fn feed(&mut self, bytes: &[u8], dropped: bool) {
        self.decoder.feed(bytes, &mut self.scratch);
        for d in self.scratch.drain(..) {
            self.pending
                .push(to_event(self.conn, self.from, dropped, d));
        }
    }

    /// Record what was decoded since the last flush.
    pub fn flush(&mut self, journal: &Journal) {
        for e in self.pending.drain(..) {
            journal.record(Actor::Wire, e);
        }
    }
}

/// `ws binary masked`, `tcp`.
pub fn framing_text(f: &Framing) -> String {
    match f {
        Framing::Tcp => "tcp".to_string(),
        Framing::Ws { opcode, masked } => {
            format!(
                "ws {}{}",
                opcode_text(opcode),
                if *masked { " masked" } else { "" }
            )
        }
    }
}

fn opcode_text(op: &WsOpcode) -> String {
    match op {
        WsOpcode::Other(n) => format!("opcode 0x{n:x}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn to_event(conn: u64, from: Side, dropped: bool, d: Decoded) -> Event {
    match d {
        Decoded::Packet(PacketInfo {
            kind,
            framing,
            size,
            hex,
            fields,
        }) => Event::Packet {
            conn,
            from,
            dropped,
            kind: kind.as_str().to_string(),
            framing: framing_text(&framing),
            size,
            hex,
            fields: serde_json::to_value(&fields).unwrap_or(serde_json::Value::Null),
        },
        Decoded::WsControl {
            opcode,
            masked,
            close_code,
            payload_len,
        } => Event::WireFrame {
            conn,
            from,
            dropped,
            what: format!(
                "ws {}{}{}, {payload_len} B",
                opcode_text(&opcode),
                if masked { " masked" } else { "" },
                close_code.map(|c| format!(" code {c}")).unwrap_or_default()
            ),
        },
        Decoded::HttpUpgrade { line } => Event::WireFrame {
            conn,
            from,
            dropped,
            what: format!("HTTP {line}"),
        },
        Decoded::Undecodable {
            offset,
            hex,
            reason,
        } => Event::WireFrame {
            conn,
            from,
            dropped,
            what: format!("undecodable at byte {offset}: {reason} ({hex})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_ws_pingreq_reads_like_the_seed_capture() {
        let mut tap = WireTap::new(7, Flow::Up, shared_level());
        // A masked binary frame carrying c000 (seed 001), mask key 75e2bbfd.
        let key = [0x75, 0xe2, 0xbb, 0xfd];
        let frame = [
            0x82,
            0x82,
            key[0],
            key[1],
            key[2],
            key[3],
            0xc0 ^ key[0],
            key[1],
        ];
        tap.feed(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", false);
        tap.feed(&frame, true);
        let journal = Journal::in_memory();
        tap.flush(&journal);
        let lines: Vec<String> = journal
            .records()
            .iter()
            .map(|r| r.event.to_string())
            .collect();
        assert_eq!(lines[0], "conn 7: willy -> mqtt HTTP GET /mqtt HTTP/1.1");
        assert_eq!(
            lines[1],
            "conn 7: willy -> mqtt PINGREQ (ws binary masked, 2 B: c000) dropped by the fault"
        );
    }

    #[test]
    fn a_tcp_publish_shows_its_topic() {
        let mut tap = WireTap::new(1, Flow::Down, shared_level());
        let mut p = vec![0x30, 18, 0, 14];
        p.extend_from_slice(b"test/connected");
        p.extend_from_slice(b"true");
        tap.feed(&p, false);
        let journal = Journal::in_memory();
        tap.flush(&journal);
        let line = journal.records()[0].event.to_string();
        assert!(
            line.starts_with("conn 1: mqtt -> willy PUBLISH (tcp, 20 B)"),
            "{line}"
        );
        assert!(line.contains("topic=test/connected"), "{line}");
    }
}
