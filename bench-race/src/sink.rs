//! The server every path leads to: a minimal MQTT broker stand-in that frames what it reads.
//!
//! ```text
//!  CONNECT    --> CONNACK (accepted); the client id picks the connection's part:
//!                 "flood-*": count PUBLISHes, report when the round's target is reached
//!                 "echo-*":  send every PUBLISH back (the round trips)
//!  SUBSCRIBE  --> SUBACK (QoS 0 granted; unplug's start-up probe asks this)
//!  PINGREQ    --> PINGRESP
//!  DISCONNECT --> close
//!  anything else: framed and skipped
//! ```
//!
//! It runs in the race's own process and runtime, so its CPU is in every path's figure alike.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const CONNACK: [u8; 4] = [0x20, 2, 0, 0];
const PINGRESP: [u8; 2] = [0xd0, 0];
const READ: usize = 256 * 1024;

pub struct Sink {
    pub addr: SocketAddr,
    /// How many PUBLISHes a flood connection reports at.
    target: Arc<AtomicU64>,
    /// (PUBLISHes, bytes) of a flood connection that reached the target.
    done: mpsc::UnboundedReceiver<(u64, u64)>,
}

impl Sink {
    pub async fn start() -> std::io::Result<Sink> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let (tx, done) = mpsc::unbounded_channel();
        let t = target.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(serve(s, t.clone(), tx.clone()));
            }
        });
        Ok(Sink { addr, target, done })
    }

    /// The next flood connection reports when it has had `publishes` PUBLISHes.
    pub fn expect(&self, publishes: u64) {
        self.target.store(publishes, Ordering::SeqCst);
    }

    /// Wait for a flood connection to report: (PUBLISHes, bytes after its CONNECT).
    pub async fn flooded(&mut self) -> Option<(u64, u64)> {
        self.done.recv().await
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Unknown,
    Flood,
    Echo,
}

/// Length of the fixed header and the remaining length, or None when `b` holds less.
fn frame(b: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *b.get(1 + i)?;
        len |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((2 + i, len));
        }
    }
    // A malformed length: treat what is left as one packet's body.
    Some((5, 0))
}

/// The client id of a CONNECT body (after the fixed header).
fn client_id(body: &[u8]) -> &[u8] {
    // Protocol name (2 + n), level, flags, keepalive (4), then the id (v3.1.1; a v5 CONNECT
    // has properties first, which this stand-in does not need).
    if body.len() < 2 {
        return b"";
    }
    let at = 2 + u16::from_be_bytes([body[0], body[1]]) as usize + 4;
    let Some(idl) = body.get(at..at + 2) else {
        return b"";
    };
    let n = u16::from_be_bytes([idl[0], idl[1]]) as usize;
    body.get(at + 2..at + 2 + n).unwrap_or(b"")
}

async fn serve(mut s: TcpStream, target: Arc<AtomicU64>, done: mpsc::UnboundedSender<(u64, u64)>) {
    let mut buf = vec![0u8; READ];
    let mut have = 0usize;
    let mut out = Vec::with_capacity(READ);
    let mut part = Part::Unknown;
    let (mut publishes, mut bytes) = (0u64, 0u64);
    let mut reported = false;
    loop {
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if part == Part::Flood {
            bytes += n as u64;
        }
        have += n;
        let mut at = 0;
        while let Some((head, len)) = frame(&buf[at..have]) {
            let end = at + head + len;
            if end > have {
                if head + len > buf.len() {
                    // Bigger than the buffer: grow it for this packet.
                    buf.resize(head + len, 0);
                }
                break;
            }
            let kind = buf[at] >> 4;
            let body = &buf[at + head..end];
            match kind {
                1 => {
                    let id = client_id(body);
                    part = if id.starts_with(b"flood") {
                        Part::Flood
                    } else if id.starts_with(b"echo") {
                        Part::Echo
                    } else {
                        Part::Unknown
                    };
                    // Bytes after the CONNECT only.
                    bytes = (have - end) as u64;
                    out.extend_from_slice(&CONNACK);
                }
                3 => {
                    publishes += 1;
                    if part == Part::Echo {
                        out.extend_from_slice(&buf[at..end]);
                    }
                }
                8 if body.len() >= 2 => {
                    // SUBACK: the packet id, then QoS 0 for each filter.
                    let mut filters = 0;
                    let mut i = 2;
                    while i + 2 <= body.len() {
                        let l = u16::from_be_bytes([body[i], body[i + 1]]) as usize;
                        i += 2 + l + 1;
                        filters += 1;
                    }
                    out.extend_from_slice(&[0x90, 2 + filters as u8, body[0], body[1]]);
                    out.resize(out.len() + filters, 0);
                }
                12 => out.extend_from_slice(&PINGRESP),
                14 => return,
                _ => {}
            }
            at = end;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if part == Part::Flood && !reported && publishes >= target.load(Ordering::Relaxed) {
            reported = true;
            let _ = done.send((publishes, bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_ids() {
        assert_eq!(frame(&[0x30, 62]), Some((2, 62)));
        assert_eq!(frame(&[0x30, 0x80, 0x01]), Some((3, 128)));
        assert_eq!(frame(&[0x30, 0x80]), None);
        assert_eq!(frame(&[0x30]), None);
        let c = crate::wire::connect("flood-1");
        assert_eq!(client_id(&c[2..]), b"flood-1");
    }
}
