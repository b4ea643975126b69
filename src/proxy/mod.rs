//! The fault-injecting proxy between willy and the broker.
//!
//! ```text
//!  willy --TCP--> listener (127.0.0.1:free) --accept--> connection N
//!                                                        |-- link Up:   willy  -> broker
//!                                                        '-- link Down: broker -> willy
//!  every link --chunks, stamped after their writes--> Recorder thread (wiretap.rs)
//!                                                      --decode, Journal::record_at--> journal
//!  Proxy::apply(n, fault) / heal(n) --watch<NetState>--> every link and the listener
//!                                  --Cut (reset, close)--> every open connection, once
//! ```
//!
//! It forwards bytes and knows of MQTT only where a fault needs it (a drop fault finds packet
//! boundaries in plain TCP); WebSocket passes through untouched. While a fault holds new
//! connections, one is accepted and held (its bytes wait in a buffer, like a SYN retransmitted
//! into a dead link); while one refuses them, the listener is closed so connecting fails at once.
//! Held connections go through when the fault heals, unless their client gave up meanwhile.
//! Each fault heals on its own: the state is recomputed from the faults still in effect.

pub mod fault;
pub mod link;
pub mod wiretap;

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
use tokio::sync::mpsc;
use wiretap::{Message, Recorder, Stamp};

pub use wiretap::PublishRecords;

/// How a proxy records what it forwards. The default is what a run's checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A record per PUBLISH (default), or runs of them for floods.
    pub publishes: PublishRecords,
    /// How many chunks may wait for the recorder before a link waits for it.
    pub record_queue: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            publishes: PublishRecords::Each,
            record_queue: wiretap::RECORD_QUEUE,
        }
    }
}

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
    /// Decodes and records what the links forward, on its own thread (see wiretap.rs).
    recorder: Recorder,
    /// The one source of truth for what the network does now.
    net: watch::Sender<NetState>,
    /// The faults in effect, by their number in the scenario: `net` is computed from these, so
    /// healing one leaves the others.
    active: Mutex<Vec<(u32, FaultKind, NewConnections)>>,
    /// Open connections, for the fault record and the summary.
    conns: Mutex<BTreeMap<u64, Conn>>,
    next_id: AtomicU64,
}

/// An open connection as the proxy holds it.
struct Conn {
    stats: Arc<ConnStats>,
    /// Ends the connection the way a fault says (its task owns the sockets).
    cut: mpsc::UnboundedSender<Cut>,
}

/// How a fault ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// SO_LINGER 0 and close: both sides get a RST.
    Reset,
    /// shutdown(write) both ways: both sides get a FIN, and no MQTT DISCONNECT.
    Close,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    /// Listen on a free loopback port and forward every connection to `upstream`.
    pub async fn start(upstream: SocketAddr, journal: Journal) -> std::io::Result<Proxy> {
        Self::start_with(upstream, journal, Options::default()).await
    }

    /// [`Proxy::start`], recording as `options` say.
    pub async fn start_with(
        upstream: SocketAddr,
        journal: Journal,
        options: Options,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (net, _) = watch::channel(NetState::default());
        let shared = Arc::new(Shared {
            upstream,
            recorder: Recorder::start(journal.clone(), options.record_queue, options.publishes),
            journal,
            net,
            active: Mutex::new(Vec::new()),
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

    /// Put fault number `n` into effect now and record it, with when each open connection last
    /// got client bytes through (the reference the keepalive checks measure from). A reset or
    /// close also acts on every open connection, once.
    pub fn apply(&self, n: u32, kind: &FaultKind, new_connections: NewConnections) {
        let last_upstream = self
            .open_connections()
            .iter()
            .map(|c| ConnLastUpstream {
                conn: c.id,
                ms: c.last_up_ms(),
            })
            .collect();
        {
            let mut active = lock(&self.shared.active);
            active.push((n, kind.clone(), new_connections));
            self.shared
                .net
                .send_replace(NetState::of(active.iter().map(|(_, k, c)| (k, *c))));
        }
        self.shared.journal.record(
            Actor::Proxy,
            Event::FaultApplied {
                fault: kind.label(),
                n,
                last_upstream,
            },
        );
        let cut = match kind {
            FaultKind::Reset => Cut::Reset,
            FaultKind::Close => Cut::Close,
            _ => return,
        };
        for c in lock(&self.shared.conns).values() {
            let _ = c.cut.send(cut);
        }
    }

    /// Lift fault number `n` (if it is in effect): the network is what the other faults make
    /// it. Bytes flow again, held connections go through, the listener reopens.
    pub fn heal(&self, n: u32) {
        let mut active = lock(&self.shared.active);
        let Some(i) = active.iter().position(|(m, _, _)| *m == n) else {
            return;
        };
        let (_, kind, _) = active.remove(i);
        // Recorded first, so the heal precedes in the journal all it causes (a held connection's
        // CONNACK may otherwise be recorded before it).
        self.shared.journal.record(
            Actor::Proxy,
            Event::FaultHealed {
                fault: kind.label(),
                n,
            },
        );
        self.shared
            .net
            .send_replace(NetState::of(active.iter().map(|(_, k, c)| (k, *c))));
    }

    /// Wait until every record of what the links have handled so far is in the journal (they
    /// record through their own thread, a moment after forwarding).
    pub async fn settle(&self) {
        self.shared.recorder.settle().await;
    }

    /// The journal the proxy records into.
    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    pub fn open_connections(&self) -> Vec<Arc<ConnStats>> {
        lock(&self.shared.conns)
            .values()
            .map(|c| c.stats.clone())
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

/// FIN to both sides, then wait (a little) for each to close its end, discarding what it still
/// sends: closing a socket with unread bytes would turn the FIN into a RST.
async fn close_both(mut client: TcpStream, mut broker: TcpStream, stats: &ConnStats) -> String {
    let _ = client.shutdown().await;
    let _ = broker.shutdown().await;
    let (c, b) = tokio::join!(
        drain(client, &stats.dropped_up),
        drain(broker, &stats.dropped_down)
    );
    format!("FIN to willy (then it {c}) and to the broker (then it {b})")
}

/// Read and discard until the peer closes its end (or 2 s pass): how it ended.
async fn drain(mut s: TcpStream, dropped: &AtomicU64) -> &'static str {
    let mut buf = [0u8; 4096];
    let r = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return "closed its end",
                Ok(n) => {
                    dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(_) => return "failed",
            }
        }
    })
    .await;
    r.unwrap_or("kept its end open")
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
    let (cut_tx, mut cut_rx) = mpsc::unbounded_channel();
    lock(&shared.conns).insert(
        id,
        Conn {
            stats: stats.clone(),
            cut: cut_tx,
        },
    );

    let recorder = shared.recorder.clone();
    let waits = &stats.recorder_waits;
    recorder.send(Message::Opened { conn: id }, waits).await;
    // What a held connection sent while the network was down went first: decoded first.
    if !early.is_empty() {
        let m = Message::Bytes {
            conn: id,
            flow: Flow::Up,
            at: Stamp::now(),
            bytes: early.into(),
            fates: wiretap::Fates::All { dropped: false },
        };
        recorder.send(m, waits).await;
    }
    let link = |flow| Link {
        flow,
        stats: stats.clone(),
        net: shared.net.subscribe(),
        start: journal.start(),
        recorder: recorder.clone(),
    };
    // Both links run in this task on borrowed halves, so a fault can still reach the sockets.
    let cut = {
        let (client_r, client_w) = client.split();
        let (broker_r, broker_w) = broker.split();
        let both = async {
            tokio::join!(
                link(Flow::Up).run(client_r, broker_w),
                link(Flow::Down).run(broker_r, client_w)
            )
        };
        tokio::select! {
            _ = both => None,
            Some(cut) = cut_rx.recv() => Some(cut),
        }
    };
    if let Some(cut) = cut {
        let how = match cut {
            Cut::Reset => {
                for s in [&client, &broker] {
                    let _ = socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO));
                }
                drop(client);
                drop(broker);
                "RST to willy and to the broker".to_string()
            }
            Cut::Close => close_both(client, broker, &stats).await,
        };
        let fault = match cut {
            Cut::Reset => "reset",
            Cut::Close => "close",
        };
        let event = Event::ConnectionCut {
            conn: id,
            fault: fault.to_string(),
            how,
        };
        let at = Stamp::now();
        recorder
            .send(
                Message::Event {
                    conn: id,
                    at,
                    event,
                },
                waits,
            )
            .await;
    }

    lock(&shared.conns).remove(&id);
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    // Through the recorder, after this connection's wire records.
    let event = Event::ConnectionClosed {
        conn: id,
        up_bytes: get(&stats.up_bytes),
        down_bytes: get(&stats.down_bytes),
        dropped_up_bytes: get(&stats.dropped_up),
        dropped_down_bytes: get(&stats.dropped_down),
    };
    let at = Stamp::now();
    recorder
        .send(
            Message::Event {
                conn: id,
                at,
                event,
            },
            waits,
        )
        .await;
    recorder.send(Message::Closed { conn: id }, waits).await;
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
        proxy.apply(1, &BLACKHOLE, NewConnections::Hang);
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
        proxy.apply(1, &BLACKHOLE, NewConnections::Hang);
        s.write_all(b"lost").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.heal(1);
        assert_eq!(roundtrip(&mut s, b"after").await, b"after");
    }

    #[tokio::test]
    async fn new_connection_during_outage_is_held_then_delivered_on_heal() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        proxy.apply(1, &BLACKHOLE, NewConnections::Hang);
        let mut s = TcpStream::connect(proxy.addr)
            .await
            .expect("accepted while down");
        s.write_all(b"early").await.unwrap();
        let mut buf = [0u8; 5];
        assert!(
            timeout(SHORT, s.read(&mut buf)).await.is_err(),
            "a held connection gets no answer"
        );
        proxy.heal(1);
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
        proxy.apply(1, &BLACKHOLE, NewConnections::Refuse);
        let mut refused = false;
        for _ in 0..50 {
            if TcpStream::connect(proxy.addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "connecting must fail while the listener is closed");
        proxy.heal(1);
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
        proxy.apply(1, &BLACKHOLE, NewConnections::Hang);
        drop(s);
        assert!(
            timeout(SHORT, rx.recv()).await.is_err(),
            "the FIN must not cross a dead link"
        );
        proxy.heal(1);
        timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("EOF after heal");
    }

    /// A server that reports what it receives and how its read side ended, and sends what it
    /// is told to.
    struct Peer {
        addr: SocketAddr,
        got: mpsc::UnboundedReceiver<Vec<u8>>,
        ended: mpsc::UnboundedReceiver<String>,
        send: mpsc::UnboundedSender<Vec<u8>>,
    }

    async fn peer() -> Peer {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (got_tx, got) = mpsc::unbounded_channel();
        let (ended_tx, ended) = mpsc::unbounded_channel();
        let (send, mut send_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (mut r, mut w) = s.into_split();
            tokio::spawn(async move {
                while let Some(b) = send_rx.recv().await {
                    if w.write_all(&b).await.is_err() {
                        return;
                    }
                }
            });
            let mut buf = [0u8; 4096];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) => {
                        let _ = ended_tx.send("eof".to_string());
                        return;
                    }
                    Ok(n) => {
                        let _ = got_tx.send(buf[..n].to_vec());
                    }
                    Err(e) => {
                        let _ = ended_tx.send(format!("{:?}", e.kind()));
                        return;
                    }
                }
            }
        });
        Peer {
            addr,
            got,
            ended,
            send,
        }
    }

    /// Connect through the proxy and wait until the connection is open on both sides.
    async fn connect(proxy: &Proxy) -> TcpStream {
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        for _ in 0..200 {
            if !proxy.open_connections().is_empty() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the proxy never connected upstream");
    }

    /// Collect what the peer receives until `want` bytes or 5 s.
    async fn received(got: &mut mpsc::UnboundedReceiver<Vec<u8>>, want: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while all.len() < want {
            match timeout(Duration::from_secs(5), got.recv()).await {
                Ok(Some(b)) => all.extend(b),
                _ => break,
            }
        }
        all
    }

    /// How a client read ends: "eof", an io error kind, or "silence".
    async fn client_read_end(s: &mut TcpStream) -> String {
        let mut buf = [0u8; 64];
        match timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Err(_) => "silence".into(),
            Ok(Ok(0)) => "eof".into(),
            Ok(Ok(n)) => format!("{n} bytes"),
            Ok(Err(e)) => format!("{:?}", e.kind()),
        }
    }

    #[tokio::test]
    async fn reset_sends_rst_to_both_sides_at_once() {
        let journal = Journal::in_memory();
        let mut p = peer().await;
        let proxy = Proxy::start(p.addr, journal.clone()).await.unwrap();
        let mut s = connect(&proxy).await;
        let t0 = std::time::Instant::now();
        proxy.apply(1, &FaultKind::Reset, NewConnections::Accept);
        assert_eq!(client_read_end(&mut s).await, "ConnectionReset");
        let server = timeout(Duration::from_secs(3), p.ended.recv())
            .await
            .unwrap();
        assert_eq!(server.as_deref(), Some("ConnectionReset"));
        assert!(
            t0.elapsed() < Duration::from_millis(100),
            "{:?}",
            t0.elapsed()
        );
        proxy.settle().await;
        assert!(journal
            .records()
            .iter()
            .any(|r| matches!(&r.event, Event::ConnectionCut { fault, .. } if fault == "reset")));
        // Reset acts once: the next connection goes through.
        let mut s2 = TcpStream::connect(proxy.addr).await.unwrap();
        s2.write_all(b"x").await.unwrap();
    }

    #[tokio::test]
    async fn close_sends_fin_to_both_sides_at_once() {
        let mut p = peer().await;
        let proxy = Proxy::start(p.addr, Journal::in_memory()).await.unwrap();
        let mut s = connect(&proxy).await;
        let t0 = std::time::Instant::now();
        proxy.apply(1, &FaultKind::Close, NewConnections::Accept);
        assert_eq!(client_read_end(&mut s).await, "eof");
        let server = timeout(Duration::from_secs(3), p.ended.recv())
            .await
            .unwrap();
        assert_eq!(server.as_deref(), Some("eof"));
        assert!(
            t0.elapsed() < Duration::from_millis(100),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test]
    async fn upstream_blackhole_silences_willy_but_not_the_broker() {
        let mut p = peer().await;
        let proxy = Proxy::start(p.addr, Journal::in_memory()).await.unwrap();
        let mut s = connect(&proxy).await;
        let up = FaultKind::Blackhole {
            direction: Direction::Upstream,
        };
        proxy.apply(1, &up, NewConnections::Accept);
        s.write_all(b"lost").await.unwrap();
        assert!(
            timeout(SHORT, p.got.recv()).await.is_err(),
            "silence upstream"
        );
        p.send.send(b"hello".to_vec()).unwrap();
        assert_eq!(client_read_end(&mut s).await, "5 bytes");
        proxy.heal(1);
        s.write_all(b"back").await.unwrap();
        assert_eq!(
            received(&mut p.got, 4).await,
            b"back",
            "nothing lost but the cut bytes"
        );
    }

    #[tokio::test]
    async fn downstream_blackhole_silences_the_broker_but_not_willy() {
        let mut p = peer().await;
        let proxy = Proxy::start(p.addr, Journal::in_memory()).await.unwrap();
        let mut s = connect(&proxy).await;
        let down = FaultKind::Blackhole {
            direction: Direction::Downstream,
        };
        proxy.apply(1, &down, NewConnections::Accept);
        p.send.send(b"lost".to_vec()).unwrap();
        assert_eq!(client_read_end(&mut s).await, "silence");
        s.write_all(b"ping").await.unwrap();
        assert_eq!(received(&mut p.got, 4).await, b"ping");
    }

    const LATENCY: FaultKind = FaultKind::Latency {
        direction: Direction::Both,
        delay: Duration::from_millis(150),
        jitter: Duration::ZERO,
    };

    #[tokio::test]
    async fn latency_delays_each_chunk_from_its_own_arrival_in_order() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        let mut s = connect(&proxy).await;
        proxy.apply(1, &LATENCY, NewConnections::Accept);
        let t0 = std::time::Instant::now();
        let mut want = Vec::new();
        for i in 0..5u8 {
            s.write_all(&[i; 10]).await.unwrap();
            want.extend([i; 10]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut got = vec![0u8; 50];
        timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        let took = t0.elapsed();
        assert_eq!(got, want, "order kept, nothing lost");
        // Two crossings of 150 ms; the last chunk left 80 ms after the first. Measured from
        // each arrival, not queued behind each other (that would be 5 x 300 ms).
        assert!(took >= Duration::from_millis(380), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
    }

    #[tokio::test]
    async fn healing_latency_delivers_what_waits_at_once() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        let mut s = connect(&proxy).await;
        let slow = FaultKind::Latency {
            direction: Direction::Both,
            delay: Duration::from_secs(10),
            jitter: Duration::ZERO,
        };
        proxy.apply(1, &slow, NewConnections::Accept);
        s.write_all(b"waiting").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = std::time::Instant::now();
        proxy.heal(1);
        let mut got = [0u8; 7];
        timeout(Duration::from_secs(2), s.read_exact(&mut got))
            .await
            .expect("delivered on heal, not after 10 s")
            .unwrap();
        assert_eq!(&got, b"waiting");
        assert!(t0.elapsed() < Duration::from_millis(200));
    }

    #[tokio::test]
    async fn bandwidth_paces_the_bytes() {
        let mut p = peer().await;
        let proxy = Proxy::start(p.addr, Journal::in_memory()).await.unwrap();
        let mut s = connect(&proxy).await;
        let slow = FaultKind::Bandwidth {
            direction: Direction::Upstream,
            bytes_per_s: 10_000,
        };
        proxy.apply(1, &slow, NewConnections::Accept);
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let t0 = std::time::Instant::now();
        s.write_all(&data).await.unwrap();
        let first = timeout(Duration::from_secs(2), p.got.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            first.len() <= 1000,
            "it trickles: first piece {} B",
            first.len()
        );
        let mut all = first;
        all.extend(received(&mut p.got, data.len() - all.len()).await);
        let took = t0.elapsed();
        assert_eq!(all, data);
        assert!(
            took >= Duration::from_millis(450),
            "5000 B at 10 kB/s: {took:?}"
        );
        assert!(took < Duration::from_millis(900), "{took:?}");
    }

    #[tokio::test]
    async fn drop_removes_exactly_the_named_packets() {
        let journal = Journal::in_memory();
        let mut p = peer().await;
        let proxy = Proxy::start(p.addr, journal.clone()).await.unwrap();
        let mut s = connect(&proxy).await;
        let connect_pkt = [0x10, 0x02, 0x00, 0x04];
        let publish = [0x30, 0x03, 0x00, 0x01, b'x'];
        let pingreq = [0xc0, 0x00];
        s.write_all(&connect_pkt).await.unwrap();
        assert_eq!(received(&mut p.got, 4).await, connect_pkt);
        let drop = FaultKind::Drop {
            direction: Direction::Both,
            packets: vec![12],
        };
        proxy.apply(1, &drop, NewConnections::Accept);
        s.write_all(&[&pingreq[..], &publish, &pingreq, &publish].concat())
            .await
            .unwrap();
        assert_eq!(received(&mut p.got, 10).await, [publish, publish].concat());
        proxy.settle().await;
        let dropped = journal
            .records()
            .iter()
            .filter(
                |r| matches!(&r.event, Event::PacketDropped { packet, .. } if packet == "PINGREQ"),
            )
            .count();
        assert_eq!(dropped, 2);
        proxy.heal(1);
        s.write_all(&pingreq).await.unwrap();
        assert_eq!(received(&mut p.got, 2).await, pingreq);
    }

    #[tokio::test]
    async fn hang_holds_new_connections_but_leaves_open_ones_alone() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        let mut open = connect(&proxy).await;
        proxy.apply(1, &FaultKind::Hang, NewConnections::Hang);
        assert_eq!(roundtrip(&mut open, b"still").await, b"still");
        let mut held = TcpStream::connect(proxy.addr).await.unwrap();
        held.write_all(b"early").await.unwrap();
        assert_eq!(client_read_end(&mut held).await, "silence");
        proxy.heal(1);
        let mut buf = [0u8; 5];
        timeout(Duration::from_secs(5), held.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"early");
    }

    #[tokio::test]
    async fn refuse_leaves_open_connections_alone() {
        let proxy = Proxy::start(echo_server().await, Journal::in_memory())
            .await
            .unwrap();
        let mut open = connect(&proxy).await;
        proxy.apply(1, &FaultKind::Refuse, NewConnections::Refuse);
        let mut refused = false;
        for _ in 0..50 {
            if TcpStream::connect(proxy.addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused);
        assert_eq!(roundtrip(&mut open, b"still").await, b"still");
    }

    #[tokio::test]
    async fn healing_one_fault_leaves_the_other_in_effect() {
        let mut p = peer().await;
        let proxy = Proxy::start(p.addr, Journal::in_memory()).await.unwrap();
        let mut s = connect(&proxy).await;
        let up = FaultKind::Blackhole {
            direction: Direction::Upstream,
        };
        let down = FaultKind::Blackhole {
            direction: Direction::Downstream,
        };
        proxy.apply(1, &up, NewConnections::Accept);
        proxy.apply(2, &down, NewConnections::Accept);
        proxy.heal(1);
        s.write_all(b"up").await.unwrap();
        assert_eq!(received(&mut p.got, 2).await, b"up");
        p.send.send(b"down".to_vec()).unwrap();
        assert_eq!(
            client_read_end(&mut s).await,
            "silence",
            "fault 2 still cuts"
        );
    }
}

#[cfg(test)]
mod forwarding_tests {
    //! Forward first, record after: how many writes a chunk takes, and that the recorder,
    //! however far behind, loses nothing and keeps each connection's order.

    use super::*;
    use crate::scenario::Direction;
    use std::time::Duration;
    use tokio::time::timeout;

    /// MQTT 3.1.1, client id "t", keepalive 60 s, clean session.
    const CONNECT: [u8; 15] = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b't',
    ];
    const PINGREQ: [u8; 2] = [0xc0, 0x00];

    /// A QoS 0 PUBLISH to `t/NNNNN` (11 bytes): the topic says which one it was.
    fn numbered_publish(n: u32) -> Vec<u8> {
        let mut p = vec![0x30, 9, 0, 7];
        p.extend_from_slice(format!("t/{n:05}").as_bytes());
        p
    }

    /// A server that reads everything and reports how many bytes it got; it closes its end
    /// when the client's ends.
    async fn sink() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let _ = tx.send(buf[..n].to_vec());
            }
        });
        (addr, rx)
    }

    async fn connect(proxy: &Proxy) -> (TcpStream, Arc<ConnStats>) {
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        for _ in 0..400 {
            if let Some(c) = proxy.open_connections().pop() {
                return (s, c);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the proxy never connected upstream");
    }

    async fn received(got: &mut mpsc::UnboundedReceiver<Vec<u8>>, want: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while all.len() < want {
            match timeout(Duration::from_secs(5), got.recv()).await {
                Ok(Some(b)) => all.extend(b),
                _ => break,
            }
        }
        all
    }

    /// Wait until the connection's close is recorded; then every record of it is in.
    async fn records_until_closed(proxy: &Proxy, conn: u64) -> Vec<crate::event::Record> {
        for _ in 0..500 {
            proxy.settle().await;
            let records = proxy.journal().records();
            if records
                .iter()
                .any(|r| matches!(r.event, Event::ConnectionClosed { conn: c, .. } if c == conn))
            {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("conn {conn} never closed");
    }

    #[tokio::test]
    async fn a_chunk_of_many_packets_with_no_fault_goes_out_in_one_write() {
        let (addr, mut got) = sink().await;
        let proxy = Proxy::start(addr, Journal::in_memory()).await.unwrap();
        let (mut s, stats) = connect(&proxy).await;
        s.write_all(&CONNECT).await.unwrap();
        assert_eq!(received(&mut got, CONNECT.len()).await, CONNECT);
        let many: Vec<u8> = (0..100).flat_map(numbered_publish).collect();
        s.write_all(&many).await.unwrap();
        assert_eq!(received(&mut got, many.len()).await, many);
        assert_eq!(
            stats.up_writes.load(Ordering::Relaxed),
            2,
            "one write for the CONNECT, one for the 100 PUBLISHes"
        );
        proxy.settle().await;
        let publishes = proxy
            .journal()
            .records()
            .iter()
            .filter(|r| matches!(&r.event, Event::Packet { kind, .. } if kind == "PUBLISH"))
            .count();
        assert_eq!(publishes, 100, "the tap still sees every packet");
    }

    #[tokio::test]
    async fn a_drop_fault_takes_exactly_the_named_packets_out_of_a_shared_chunk() {
        let (addr, mut got) = sink().await;
        let proxy = Proxy::start(addr, Journal::in_memory()).await.unwrap();
        let (mut s, stats) = connect(&proxy).await;
        s.write_all(&CONNECT).await.unwrap();
        assert_eq!(received(&mut got, CONNECT.len()).await, CONNECT);
        let drop = FaultKind::Drop {
            direction: Direction::Upstream,
            packets: vec![12],
        };
        proxy.apply(1, &drop, NewConnections::Accept);
        let five = |from: u32| {
            (from..from + 5)
                .flat_map(numbered_publish)
                .collect::<Vec<u8>>()
        };
        let chunk = [five(0), PINGREQ.to_vec(), five(5), PINGREQ.to_vec()].concat();
        s.write_all(&chunk).await.unwrap();
        let want = [five(0), five(5)].concat();
        assert_eq!(received(&mut got, want.len()).await, want);
        assert_eq!(
            stats.up_writes.load(Ordering::Relaxed),
            3,
            "CONNECT, then one write each side of the dropped PINGREQ"
        );
        assert_eq!(stats.dropped_up.load(Ordering::Relaxed), 4);
        proxy.settle().await;
        let records = proxy.journal().records();
        let dropped = records
            .iter()
            .filter(
                |r| matches!(&r.event, Event::PacketDropped { packet, .. } if packet == "PINGREQ"),
            )
            .count();
        let wire: Vec<(String, bool)> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Packet { kind, dropped, .. } => Some((kind.clone(), *dropped)),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, 2);
        let publish = ("PUBLISH".to_string(), false);
        let ping = ("PINGREQ".to_string(), true);
        let want: Vec<(String, bool)> = std::iter::once(("CONNECT".to_string(), false))
            .chain(std::iter::repeat(publish.clone()).take(5))
            .chain(std::iter::once(ping.clone()))
            .chain(std::iter::repeat(publish).take(5))
            .chain(std::iter::once(ping))
            .collect();
        assert_eq!(wire, want);
    }

    /// 10,000 PUBLISHes through a proxy whose recorder has room for one chunk (or 8: the link
    /// then resumes when 2 are free): the link waits for it, and every packet is recorded, in
    /// order, before the connection's close.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_recorder_makes_the_link_wait_and_loses_nothing_and_keeps_the_order() {
        for queue in [1, 8] {
            full_recorder_loses_nothing(queue).await;
        }
    }

    async fn full_recorder_loses_nothing(record_queue: usize) {
        const N: u32 = 10_000;
        let (addr, mut got) = sink().await;
        let options = Options {
            record_queue,
            ..Options::default()
        };
        let proxy = Proxy::start_with(addr, Journal::in_memory(), options)
            .await
            .unwrap();
        let (mut s, stats) = connect(&proxy).await;
        let stream: Vec<u8> = CONNECT
            .iter()
            .copied()
            .chain((0..N).flat_map(numbered_publish))
            .collect();
        // Each piece through before the next: one chunk each for the link to hand over, far
        // faster than the recorder records 372 PUBLISHes.
        let mut through = 0;
        for part in stream.chunks(4096) {
            s.write_all(part).await.unwrap();
            through += received(&mut got, part.len()).await.len();
        }
        assert_eq!(through, stream.len());
        drop(s);
        let records = records_until_closed(&proxy, stats.id).await;
        assert!(
            stats.recorder_waits.load(Ordering::Relaxed) > 0,
            "the link waited for the recorder"
        );
        let mine: Vec<&crate::event::Record> = records
            .iter()
            .filter(|r| match &r.event {
                Event::Packet { conn, .. }
                | Event::SideClosed { conn, .. }
                | Event::ConnectionClosed { conn, .. } => *conn == stats.id,
                _ => false,
            })
            .collect();
        let topics: Vec<String> = mine
            .iter()
            .filter_map(|r| match &r.event {
                Event::Packet { kind, fields, .. } if kind == "PUBLISH" => {
                    fields["topic"].as_str().map(str::to_string)
                }
                _ => None,
            })
            .collect();
        let want: Vec<String> = (0..N).map(|n| format!("t/{n:05}")).collect();
        assert_eq!(topics.len(), want.len(), "one record per packet");
        assert!(topics == want, "in the order they were sent");
        assert!(
            mine.windows(2).all(|w| w[0].ms <= w[1].ms),
            "a connection's records are in time order"
        );
        assert!(
            matches!(mine.last().unwrap().event, Event::ConnectionClosed { .. }),
            "the close comes after every packet"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publish_runs_count_every_publish_exactly_and_keep_the_other_packets() {
        const N: u32 = 10_000;
        let (addr, mut got) = sink().await;
        let options = Options {
            publishes: PublishRecords::Runs,
            ..Options::default()
        };
        let proxy = Proxy::start_with(addr, Journal::in_memory(), options)
            .await
            .unwrap();
        let (mut s, stats) = connect(&proxy).await;
        let half: Vec<u8> = (0..N / 2).flat_map(numbered_publish).collect();
        let stream = [&CONNECT[..], &half, &PINGREQ, &half].concat();
        for part in stream.chunks(4096) {
            s.write_all(part).await.unwrap();
        }
        assert_eq!(received(&mut got, stream.len()).await.len(), stream.len());
        drop(s);
        let records = records_until_closed(&proxy, stats.id).await;
        let mut counted = 0;
        let mut bytes = 0;
        let mut kinds = Vec::new();
        for r in &records {
            match &r.event {
                Event::PublishRun {
                    count,
                    bytes: b,
                    first_ms,
                    last_ms,
                    ..
                } => {
                    assert!(first_ms <= last_ms && r.ms == *first_ms);
                    counted += count;
                    bytes += b;
                    if kinds.last() != Some(&"run") {
                        kinds.push("run");
                    }
                }
                Event::Packet { kind, .. } => kinds.push(kind.as_str()),
                _ => {}
            }
        }
        assert_eq!(counted, u64::from(N), "every PUBLISH in exactly one run");
        assert_eq!(bytes, u64::from(N) * 11);
        assert_eq!(kinds, ["CONNECT", "run", "PINGREQ", "run"]);
    }
}
