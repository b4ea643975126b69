//! A journal kept within a budget: which records are data (a PUBLISH flood's packets and runs)
//! and which are what judging needs (everything else), and the thinning that drops the first
//! kind when a journal outgrows its budget, or when a long journal is read back for judging.
//!
//! ```text
//!  NAME.events.jsonl --read.rs, a record at a time--> Thinner: a control record (CONNECT, ping, close,
//!      fault, will, note ...) is kept, and before it the last data record of its connection
//!      (per direction), so "the last packet before X" survives for every X; other data records
//!      are dropped, counted --> kept lines (+ the last DATA_TAIL data records at the end)
//! ```
//!
//! Control records are never dropped: they are what the checks read (every CONNECT, CONNACK,
//! DISCONNECT, PINGREQ/PINGRESP, close, fault and will). A device that only pings writes two of
//! them a keepalive, about 0.6 MB a day at keepalive 60 s.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use super::{Event, Record, Side};
use crate::mqtt::PacketKind;

/// How many of the newest data records a read-back keeps whole (the picture's last flood).
pub const DATA_TAIL: usize = 2_000;

/// Is this record one of a PUBLISH flood (a PUBLISH, its acknowledgements, a run of them)?
/// These are the records a budget may thin; `conn` and side say whose.
pub fn data_of(e: &Event) -> Option<(u64, Side)> {
    match e {
        Event::PublishRun { conn, from, .. } => Some((*conn, *from)),
        Event::Packet {
            conn, from, kind, ..
        } if is_flow(*kind) => Some((*conn, *from)),
        _ => None,
    }
}

/// PUBLISH and the packets that acknowledge one: what a flood is made of.
pub fn is_flow(kind: PacketKind) -> bool {
    matches!(
        kind,
        PacketKind::Publish
            | PacketKind::Puback
            | PacketKind::Pubrec
            | PacketKind::Pubrel
            | PacketKind::Pubcomp
    )
}

/// The connection a record is about, if it is about one.
pub fn conn_of(e: &Event) -> Option<u64> {
    match e {
        Event::ConnectionAccepted { conn, .. }
        | Event::UpstreamOpened { conn }
        | Event::SideClosed { conn, .. }
        | Event::ConnectionClosed { conn, .. }
        | Event::PacketDropped { conn, .. }
        | Event::ConnectionCut { conn, .. }
        | Event::Packet { conn, .. }
        | Event::PublishRun { conn, .. }
        | Event::WireFrame { conn, .. } => Some(*conn),
        _ => None,
    }
}

/// Thins a stream of records: see the module doc.
pub struct Thinner<T> {
    /// The last data record of each connection and direction since its last kept record.
    last: BTreeMap<(u64, bool), T>,
    /// Records dropped so far.
    pub dropped: u64,
}

impl<T> Default for Thinner<T> {
    fn default() -> Self {
        Thinner {
            last: BTreeMap::new(),
            dropped: 0,
        }
    }
}

impl<T> Thinner<T> {
    /// Take `item` (whose record is `e`) and hand what is kept, in order, to `keep`.
    pub fn push(&mut self, e: &Event, item: T, keep: &mut impl FnMut(T)) {
        if let Some((conn, side)) = data_of(e) {
            if self
                .last
                .insert((conn, side == Side::Client), item)
                .is_some()
            {
                self.dropped += 1;
            }
            return;
        }
        // The last data record before this one, of its connection (or of every connection,
        // for a record about none: a fault, a note).
        match conn_of(e) {
            Some(c) => {
                for key in [(c, true), (c, false)] {
                    if let Some(d) = self.last.remove(&key) {
                        keep(d);
                    }
                }
            }
            None => std::mem::take(&mut self.last)
                .into_values()
                .for_each(&mut *keep),
        }
        keep(item);
    }

    /// The data records still held: the last of each connection and direction.
    pub fn finish(self, keep: &mut impl FnMut(T)) {
        self.last.into_values().for_each(keep);
    }
}

/// A long journal read back for judging and drawing, in bounded memory: every control record,
/// the data record before each, and the newest [`DATA_TAIL`] data records; in time order. The
/// second value counts the data records left out.
pub fn read_thinned(path: &Path) -> anyhow::Result<(Vec<Record>, u64)> {
    let mut kept = Vec::new();
    let mut thinner = Thinner::default();
    let mut tail: VecDeque<Record> = VecDeque::new();
    super::for_each_record(path, |_, rec| {
        if data_of(&rec.event).is_some() {
            tail.push_back(rec.clone());
            if tail.len() > DATA_TAIL {
                tail.pop_front();
            }
        }
        let e = rec.event.clone();
        thinner.push(&e, rec, &mut |r| kept.push(r));
        Ok(())
    })?;
    let dropped = thinner.dropped;
    thinner.finish(&mut |r| kept.push(r));
    // The tail's records that the thinning left out go back in (some are kept already).
    let cutoff = tail.front().map_or(f64::INFINITY, |r| r.ms);
    kept.retain(|r| data_of(&r.event).is_none() || r.ms < cutoff);
    let back = tail.len() as u64;
    kept.extend(tail);
    kept.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    Ok((kept, dropped.saturating_sub(back)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::{Fields, Framing};

    fn packet(conn: u64, from: Side, kind: PacketKind) -> Event {
        Event::Packet {
            conn,
            from,
            dropped: false,
            kind,
            framing: Framing::Tcp,
            size: 2,
            hex: None,
            fields: Fields::None,
        }
    }

    #[test]
    fn thinning_keeps_control_records_and_the_data_record_before_each() {
        let events = [
            packet(1, Side::Client, PacketKind::Connect),
            packet(1, Side::Client, PacketKind::Publish),
            packet(1, Side::Client, PacketKind::Publish),
            packet(2, Side::Client, PacketKind::Publish),
            packet(1, Side::Client, PacketKind::Pingreq),
            packet(1, Side::Client, PacketKind::Publish),
            Event::Note {
                message: "x".into(),
            },
            packet(2, Side::Client, PacketKind::Publish),
        ];
        let mut t = Thinner::default();
        let mut kept = Vec::new();
        for (i, e) in events.iter().enumerate() {
            t.push(e, i, &mut |i| kept.push(i));
        }
        let dropped = t.dropped;
        t.finish(&mut |i| kept.push(i));
        // 1 (the publish of conn 1 before the last one before its ping) is dropped; a record
        // about no connection (the note) lets each connection's last data record go first.
        assert_eq!(kept, [0, 2, 4, 5, 3, 6, 7]);
        assert_eq!(dropped, 1);
    }
}
