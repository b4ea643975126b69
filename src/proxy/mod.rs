//! The fault-injecting proxy between willy and the broker.
//!
//! ```text
//!  willy --TCP--> listener (127.0.0.1:free) --accept--> connection N
//!                                                        |-- link Up:   willy  -> broker
//!                                                        '-- link Down: broker -> willy
//!  Proxy::apply(fault) / heal() --watch<NetState>--> every link and the listener
//! ```
//!
//! It forwards bytes and knows nothing of MQTT or WebSocket, so both pass through untouched.
//! While the network is down, a new connection is accepted and held (its bytes wait in a buffer,
//! like a SYN retransmitted into a dead link) or, with `new_connections = "refuse"`, the listener
//! is closed so connecting fails at once. Held connections go through when the network heals,
//! unless their client gave up meanwhile.

pub mod fault;
pub mod link;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::event::{Actor, ConnLastUpstream, Event, Journal};
use crate::scenario::{FaultKind, NewConnections};
use fault::{Flow, NetState};
use link::{ConnStats, Link};

/// A running proxy. Dropping it stops accepting; open connections end with the runtime.
pub struct Proxy {
    /// Where willy connects.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

struct Shared {
    /// The broker listener every connection is forwarded to.
    upstream: SocketAddr,
    journal: Journal,
    /// The one source of truth for what the network does now.
    net: watch::Sender<NetState>,
    /// Open connections, for the fault record and the summary.
    conns: Mutex<BTreeMap<u64, Arc<ConnStats>>>,
    next_id: AtomicU64,
}

impl Proxy {
    /// Listen on a free loopback port and forward every connection to `upstream`.
    pub async fn start(upstream: SocketAddr, journal: Journal) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (net, _) = watch::channel(NetState::default());
        let shared = Arc::new(Shared {
            upstream,
            journal,
            net,
            conns: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
        });
        let accept_task = tokio::spawn(accept_loop(listener, addr, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// Put `kind` into effect now and record it, with when each open connection last got client
    /// bytes through (the reference the keepalive checks measure from).
    pub fn apply(&self, kind: &FaultKind, new_connections: NewConnections) {
        let last_upstream = self
            .open_connections()
            .iter()
            .map(|c| ConnLastUpstream {
                conn: c.id,
                ms: c.last_up_ms(),
            })
            .collect();
        self.shared
            .net
            .send_modify(|s| *s = s.with(kind, new_connections));
        self.shared.journal.record(
            Actor::Proxy,
            Event::FaultApplied {
                fault: kind.label(),
                last_upstream,
            },
        );
    }

    /// Lift every fault: bytes flow again, held connections go through, the listener reopens.
    pub fn heal(&self, label: &str) {
        self.shared.net.send_replace(NetState::default());
        self.shared.journal.record(
            Actor::Proxy,
            Event::FaultHealed {
                fault: label.to_string(),
            },
        );
    }

    pub fn open_connections(&self) -> Vec<Arc<ConnStats>> {
        self.shared
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(mut listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    let mut net = shared.net.subscribe();
    loop {
        if net.borrow_and_update().refuse_new {
            drop(listener);
            shared
                .journal
                .record(Actor::Proxy, Event::ListenerChanged { open: false });
            if net.wait_for(|s| !s.refuse_new).await.is_err() {
                return;
            }
            listener = match rebind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    shared.journal.record(
                        Actor::Proxy,
                        Event::Note {
                            message: format!("cannot listen on {addr} again after the fault: {e}"),
                        },
                    );
                    return;
                }
            };
            shared
                .journal
                .record(Actor::Proxy, Event::ListenerChanged { open: true });
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(serve(id, client, shared.clone()));
                }
                Err(e) => {
                    shared.journal.record(Actor::Proxy, Event::Note { message: format!("accept failed: {e}") });
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            changed = net.changed() => if changed.is_err() { return },
        }
    }
}

/// Bind the same address again; the old socket may linger for a moment.
async fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(128),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("rebind failed")))
}

async fn serve(id: u64, mut client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let journal = shared.journal.clone();
    let mut net = shared.net.subscribe();
    let held = net.borrow_and_update().holds_new();
    journal.record(Actor::Proxy, Event::ConnectionAccepted { conn: id, held });

    // Bytes a held connection sent before the network came back: delivered, not lost.
    let mut early = Vec::new();
    if held {
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                r = client.read(&mut buf) => match r {
                    Ok(0) | Err(_) => {
                        // The client gave up; its SYNs stop, nothing ever reaches the broker.
                        journal.record(Actor::Proxy, Event::Note {
                            message: format!("conn {id}: willy gave up while held; never reached the broker"),
                        });
                        return;
                    }
                    Ok(n) => early.extend_from_slice(&buf[..n]),
                },
                healed = net.wait_for(|s| !s.holds_new()) => {
                    if healed.is_err() { return; }
                    break;
                }
            }
        }
    }

    let mut broker = match TcpStream::connect(shared.upstream).await {
        Ok(s) => s,
        Err(e) => {
            journal.record(
                Actor::Proxy,
                Event::Note {
                    message: format!(
                        "conn {id}: cannot reach the broker at {}: {e}",
                        shared.upstream
                    ),
                },
            );
            return;
        }
    };
    let _ = broker.set_nodelay(true);
    journal.record(Actor::Proxy, Event::UpstreamOpened { conn: id });
    let stats = Arc::new(ConnStats::new(id));
    if !early.is_empty() && broker.write_all(&early).await.is_ok() {
        stats
            .up_bytes
            .fetch_add(early.len() as u64, Ordering::Relaxed);
    }
    shared
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, stats.clone());

    let (client_r, client_w) = client.into_split();
    let (broker_r, broker_w) = broker.into_split();
    let link = |flow| Link {
        flow,
        stats: stats.clone(),
        net: shared.net.subscribe(),
        journal: journal.clone(),
    };
    let up = tokio::spawn(link(Flow::Up).run(client_r, broker_w));
    let down = tokio::spawn(link(Flow::Down).run(broker_r, client_w));
    let _ = tokio::join!(up, down);

    shared
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    journal.record(
        Actor::Proxy,
        Event::ConnectionClosed {
            conn: id,
            up_bytes: get(&stats.up_bytes),
            down_bytes: get(&stats.down_bytes),
            dropped_up_bytes: get(&stats.dropped_up),
            dropped_down_bytes: get(&stats.dropped_down),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Direction;
    use std::time::Duration;
    use tokio::time::timeout;

    /// An echo server on a free loopback port; returns its address.
    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    const BLACKHOLE: FaultKind = FaultKind::Blackhole {
        direction: Direction::Both,
    };
    const SHORT: Duration = Duration::from_millis(300);

    async fn roundtrip(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
        s.write_all(data).await.unwrap();
        let mut got = vec![0u8; data.len()];
        timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .expect("echo in time")
            .unwrap();
        got
    }

    #[tokio::test]
    async fn bytes_pass_intact_in_both_directions() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(roundtrip(&mut s, &data).await, data);
    }

    #[tokio::test]
    async fn blackhole_swallows_bytes_and_keeps_both_sockets_open() {
        let journal = Journal::in_memory();
        let proxy = Proxy::start(echo_server().await, journal.clone())
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(roundtrip(&mut s, b"before").await, b"before");
        proxy.apply(&BLACKHOLE, NewConnections::Hang);
        s.write_all(b"lost").await.unwrap();
        let mut buf = [0u8; 16];
        // Silence, not EOF and not an error: the cable is unplugged.
        assert!(
            timeout(SHORT, s.read(&mut buf)).await.is_err(),
            "nothing may arrive during a blackhole"
        );
        let conns = proxy.open_connections();
        assert_eq!(conns.len(), 1, "the broker side stays open");
        assert_eq!(conns[0].dropped_up.load(Ordering::Relaxed), 4);
        let applied = journal
            .records()
            .into_iter()
            .find(|r| matches!(r.event, Event::FaultApplied { .. }))
            .unwrap();
        match applied.event {
            Event::FaultApplied { last_upstream, .. } => {
                assert_eq!(last_upstream.len(), 1);
                assert!(last_upstream[0].ms.unwrap() <= applied.ms);
            }
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn heal_lets_the_same_connection_go_on() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        // Established first: a connection accepted during the outage would be held instead.
        assert_eq!(roundtrip(&mut s, b"before").await, b"before");
        proxy.apply(&BLACKHOLE, NewConnections::Hang);
        s.write_all(b"lost").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.heal("blackhole");
        assert_eq!(roundtrip(&mut s, b"after").await, b"after");
    }

    #[tokio::test]
    async fn new_connection_during_outage_is_held_then_delivered_on_heal() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        proxy.apply(&BLACKHOLE, NewConnections::Hang);
        let mut s = TcpStream::connect(proxy.addr)
            .await
            .expect("accepted while down");
        s.write_all(b"early").await.unwrap();
        let mut buf = [0u8; 5];
        assert!(
            timeout(SHORT, s.read(&mut buf)).await.is_err(),
            "a held connection gets no answer"
        );
        proxy.heal("blackhole");
        timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            &buf, b"early",
            "bytes sent while held are delivered, not lost"
        );
    }

    #[tokio::test]
    async fn refuse_closes_the_listener_until_heal() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        proxy.apply(&BLACKHOLE, NewConnections::Refuse);
        let mut refused = false;
        for _ in 0..50 {
            if TcpStream::connect(proxy.addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "connecting must fail while the listener is closed");
        proxy.heal("blackhole");
        let mut ok = None;
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect(proxy.addr).await {
                ok = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut s = ok.expect("the listener is back after heal");
        assert_eq!(roundtrip(&mut s, b"back").await, b"back");
    }

    #[tokio::test]
    async fn client_close_during_blackhole_reaches_the_server_only_after_heal() {
        // A server that reports when it sees EOF.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = l.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 64];
            while s.read(&mut buf).await.unwrap_or(0) > 0 {}
            let _ = tx.send(());
        });
        let proxy = Proxy::start(upstream, Journal::in_memory()).await.unwrap();
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        for _ in 0..200 {
            if !proxy.open_connections().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            proxy.open_connections().len(),
            1,
            "connected through before the cut"
        );
        proxy.apply(&BLACKHOLE, NewConnections::Hang);
        drop(s);
        assert!(
            timeout(SHORT, rx.recv()).await.is_err(),
            "the FIN must not cross a dead link"
        );
        proxy.heal("blackhole");
        timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("EOF after heal");
    }
}
