//! One direction of one proxied connection: read a chunk, ask the network state what happens to
//! it, write it on (or count it as dropped), repeat until end of stream.
//!
//! ```text
//!   src --read--> chunk --NetState::verdict--> Pass: write_all(dst)   (+ last_up stamp when Up)
//!                                          \-> Drop: count it, discard
//!   EOF/error --> wait until this direction is not blackholed (a FIN into a dead link arrives
//!                 when the link comes back) --> shutdown(dst)
//! ```
//!
//! The link never waits on decoding or on the journal for a chunk it forwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::fault::{Flow, NetState, Verdict};
use crate::event::{Actor, Event, Journal, Side};

/// Counters for one connection, shared by its two links and the proxy.
#[derive(Debug)]
pub struct ConnStats {
    pub id: u64,
    /// Microseconds since the run's start when client bytes were last forwarded to the broker;
    /// `u64::MAX` until the first.
    pub last_up_us: AtomicU64,
    pub up_bytes: AtomicU64,
    pub down_bytes: AtomicU64,
    pub dropped_up: AtomicU64,
    pub dropped_down: AtomicU64,
}

impl ConnStats {
    pub fn new(id: u64) -> ConnStats {
        ConnStats {
            id,
            last_up_us: AtomicU64::new(u64::MAX),
            up_bytes: AtomicU64::new(0),
            down_bytes: AtomicU64::new(0),
            dropped_up: AtomicU64::new(0),
            dropped_down: AtomicU64::new(0),
        }
    }

    /// When client bytes were last forwarded, in ms since the run's start.
    pub fn last_up_ms(&self) -> Option<f64> {
        match self.last_up_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(us as f64 / 1000.0),
        }
    }
}

/// Everything a link needs besides its two stream halves.
pub struct Link {
    pub flow: Flow,
    pub stats: Arc<ConnStats>,
    pub net: watch::Receiver<NetState>,
    pub journal: Journal,
}

impl Link {
    /// Pump until end of stream. Returns how the source side ended.
    pub async fn run<R, W>(mut self, mut src: R, mut dst: W) -> String
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; 16 * 1024];
        let (forwarded, dropped) = match self.flow {
            Flow::Up => (&self.stats.up_bytes, &self.stats.dropped_up),
            Flow::Down => (&self.stats.down_bytes, &self.stats.dropped_down),
        };
        let how = loop {
            let n = match src.read(&mut buf).await {
                Ok(0) => break "closed (EOF)".to_string(),
                Ok(n) => n,
                Err(e) => break format!("failed: {e}"),
            };
            let verdict = self.net.borrow().verdict(self.flow);
            match verdict {
                Verdict::Pass => {
                    if let Err(e) = dst.write_all(&buf[..n]).await {
                        // The other side is gone; its own link reports how.
                        break format!("stopped: write to the other side failed: {e}");
                    }
                    forwarded.fetch_add(n as u64, Ordering::Relaxed);
                    if self.flow == Flow::Up {
                        let us = Instant::now()
                            .saturating_duration_since(self.journal.start())
                            .as_micros() as u64;
                        self.stats.last_up_us.store(us, Ordering::Relaxed);
                    }
                }
                Verdict::Drop => {
                    dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        };
        let side = match self.flow {
            Flow::Up => Side::Client,
            Flow::Down => Side::Broker,
        };
        self.journal.record(
            Actor::Proxy,
            Event::SideClosed {
                conn: self.stats.id,
                side,
                how: how.clone(),
            },
        );
        // The end of the stream crosses the network like any byte: not while it is cut.
        let flow = self.flow;
        if self
            .net
            .wait_for(|s| s.verdict(flow) == Verdict::Pass)
            .await
            .is_ok()
        {
            let _ = dst.shutdown().await;
        }
        how
    }
}
