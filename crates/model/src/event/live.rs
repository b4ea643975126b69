//! The live lines of `unplug proxy` in front of a device: a line per connection event and
//! control packet, and PUBLISH floods summarised per connection about once a second, so a
//! device streaming for days prints what a person can read (`-v` prints every packet).
//!
//! ```text
//!  record --data_of (PUBLISH, its acks, a run)--> the connection's flood: count, bytes
//!           '-- a second since its last line --> "conn 3 (sensor-1): PUBLISH and acks: 15625 ..."
//!  record about conn C (a ping, a close) --> C's flood so far, then the record's own line
//!  record about no connection (a fault)  --> every flood so far, then its line
//! ```

use std::collections::BTreeMap;

use super::thin::{conn_of, data_of};
use super::{Event, Record, Side};
use crate::tap::Fields;

/// How often a flood's line is printed at most.
const EVERY_MS: f64 = 1000.0;

/// The floods under way, per connection.
#[derive(Default)]
pub struct Floods {
    conns: BTreeMap<u64, Flood>,
}

#[derive(Default)]
struct Flood {
    /// The client id of its CONNECT, once seen.
    client_id: Option<String>,
    /// (packets, bytes) from the device and from the upstream since the last line.
    up: (u64, u64),
    down: (u64, u64),
    /// When the counting began (ms since start): the last line, or the first packet after it.
    since_ms: Option<f64>,
}

impl Flood {
    fn is_empty(&self) -> bool {
        self.up.0 == 0 && self.down.0 == 0
    }

    fn line(&mut self, conn: u64, rec: &Record) -> String {
        let secs = self
            .since_ms
            .map_or(0.0, |s| (rec.ms - s).max(0.0) / 1000.0);
        let who = self
            .client_id
            .as_deref()
            .map(|id| format!(" ({id})"))
            .unwrap_or_default();
        let side = |(n, bytes): (u64, u64), way: &str| {
            let rate = if secs >= 0.1 {
                format!(", {:.0} kB/s", bytes as f64 / secs / 1000.0)
            } else {
                String::new()
            };
            format!("{n} {way} ({bytes} B{rate})")
        };
        let mut ways = Vec::new();
        if self.up.0 > 0 {
            ways.push(side(self.up, "device -> upstream"));
        }
        if self.down.0 > 0 {
            ways.push(side(self.down, "upstream -> device"));
        }
        let line = format!(
            "{:<6} | {} conn {conn}{who}: PUBLISH and acks: {} in {secs:.1} s",
            "wire",
            rec.t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            ways.join(", "),
        );
        self.up = (0, 0);
        self.down = (0, 0);
        self.since_ms = Some(rec.ms);
        line
    }
}

impl Floods {
    /// Take `rec`: print (through `print`) the flood lines due, and say whether `rec`'s own
    /// line is to be printed (false: it joined a flood).
    pub fn take(&mut self, rec: &Record, print: &mut impl FnMut(&str)) -> bool {
        if let Event::Packet {
            conn,
            fields: Fields::Connect { client_id, .. },
            ..
        } = &rec.event
        {
            self.conns.entry(*conn).or_default().client_id = Some(client_id.clone());
        }
        if let Some((conn, side)) = data_of(&rec.event) {
            let (n, bytes) = match &rec.event {
                Event::PublishRun { count, bytes, .. } => (*count, *bytes),
                Event::Packet { size, .. } => (1, *size as u64),
                _ => (0, 0),
            };
            let f = self.conns.entry(conn).or_default();
            f.since_ms.get_or_insert(rec.ms);
            let c = if side == Side::Client {
                &mut f.up
            } else {
                &mut f.down
            };
            c.0 += n;
            c.1 += bytes;
            if f.since_ms.is_some_and(|s| rec.ms - s >= EVERY_MS) {
                print(&f.line(conn, rec));
            }
            return false;
        }
        match conn_of(&rec.event) {
            Some(conn) => {
                if let Some(f) = self.conns.get_mut(&conn).filter(|f| !f.is_empty()) {
                    print(&f.line(conn, rec));
                }
                if matches!(rec.event, Event::ConnectionClosed { .. }) {
                    self.conns.remove(&conn);
                }
            }
            None => {
                for (conn, f) in self.conns.iter_mut().filter(|(_, f)| !f.is_empty()) {
                    print(&f.line(*conn, rec));
                }
            }
        }
        true
    }
}
