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
//!  an idle-timeout fault in effect --idle::watch per connection--> close it (FIN or RST) once
//!                                    it carried no bytes either way for the timeout
//!  a fault with a toxicity below 1 (toxiproxy's) --Share::applies(conn)--> in that connection's
//!                                    NetState or not, decided per connection (recorded)
//!  a link's limit_data reached --ConnStats::limit_reached--> FIN both ways
//! ```
//!
//! It forwards bytes and knows of MQTT only where a fault needs it (a drop fault finds packet
//! boundaries in plain TCP, a ws-drop fault WebSocket frame boundaries: wsgate.rs); WebSocket
//! passes through untouched otherwise. While a fault holds new
//! connections, one is accepted and held (its bytes wait in a buffer, like a SYN retransmitted
//! into a dead link); while one refuses them, the listener is closed so connecting fails at once.
//! Held connections go through when the fault heals, unless their client gave up meanwhile.
//! Each fault heals on its own: the state is recomputed from the faults still in effect.

pub mod fault;
pub mod idle;
pub mod link;
pub mod piece;
pub mod shape;
pub mod tlsend;
pub mod wiretap;
pub mod wsgate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::tls::Stream;
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
#[derive(Debug, Clone)]
pub struct Options {
    /// A record per PUBLISH (default), or runs of them for floods.
    pub publishes: PublishRecords,
    /// How many chunks may wait for the recorder before a link waits for it.
    pub record_queue: usize,
    /// TLS from willy: ended here (the tap sees MQTT), or passed through; None: plain.
    pub tls: Option<tlsend::ProxyTls>,
    /// Open connections at most: one more is accepted and closed at once, said in the journal
    /// (each open one takes two file descriptors).
    pub max_connections: usize,
    /// What the proxy's own records call the client: "willy" in a run, "the device" in
    /// front of a person's device (`unplug proxy`).
    pub client: &'static str,
    /// Connect to a loopback broker from a source address of its own per connection, spread
    /// over 127.0.0.0/8 ([`loopback_source`]), so that no (source, broker) pair runs out of
    /// ephemeral ports (28,232 here) however many connections the proxies of one machine hold.
    pub spread_sources: bool,
}

/// The `i`th source address of a spread over 127.0.0.0/8: 127.X.Y.Z with X in 1..=254, Y in
/// 0..=255, Z in 1..=254 (never 127.0.0.1, no .0 or .255 last octet): 16.5 million of them,
/// each with its own 28,232 ephemeral ports.
pub fn loopback_source(i: u64) -> std::net::Ipv4Addr {
    let z = 1 + (i % 254) as u8;
    let y = ((i / 254) % 256) as u8;
    let x = 1 + ((i / (254 * 256)) % 254) as u8;
    std::net::Ipv4Addr::new(127, x, y, z)
}

/// Connect to `to` (a loopback address) from `from`, any port.
pub async fn connect_from(from: std::net::Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

impl Default for Options {
    fn default() -> Options {
        Options {
            publishes: PublishRecords::Each,
            record_queue: wiretap::RECORD_QUEUE,
            tls: None,
            max_connections: usize::MAX,
            client: "willy",
            spread_sources: false,
        }
    }
}

/// What a connection held while the network is down keeps of what its client sends: past
/// it, the proxy stops reading it (TCP's flow control pushes back) until the network heals.
pub const HELD_MAX: usize = 1 << 20;

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
    /// TLS from willy, if any (see tlsend.rs).
    tls: Option<tlsend::ProxyTls>,
    journal: Journal,
    /// Decodes and records what the links forward, on its own thread (see wiretap.rs).
    recorder: Recorder,
    /// The one source of truth for what the network does now.
    net: watch::Sender<NetState>,
    /// The faults in effect, by their number in the scenario: `net` is computed from these, so
    /// healing one leaves the others. A fault with a share acts on some connections only.
    active: Mutex<Vec<Active>>,
    /// Open connections, for the fault record and the summary.
    conns: Mutex<BTreeMap<u64, Conn>>,
    next_id: AtomicU64,
    max_connections: usize,
    client: &'static str,
    spread_sources: bool,
    /// Set when the proxy stops: a close still waiting for a peer's end stops waiting.
    stopping: watch::Sender<bool>,
    /// Connections accepted and not yet ended (counted from accept, before `conns` has them).
    live: AtomicU64,
}

type Active = (u32, FaultKind, NewConnections, Option<Share>);

/// A fault that acts on some connections only: toxiproxy's toxicity, the chance that a toxic
/// acts on a connection, decided per connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// What the decision is keyed on (one toxic's faults decide alike for a connection).
    pub key: u32,
    /// The chance, strictly between 0 and 1.
    pub toxicity: f32,
}

impl Share {
    /// Does it act on connection `conn`? Decided by a hash of the key and the connection, so
    /// a run is reproducible and every fault of one toxic decides alike.
    pub fn applies(&self, conn: u64) -> bool {
        // splitmix64
        let mut z = (u64::from(self.key) << 32 ^ conn).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) < self.toxicity
    }
}

/// The network for connection `conn`, or for the listener and every connection (None: the
/// faults that act on all).
fn state_for(active: &[Active], conn: Option<u64>) -> NetState {
    NetState::of(
        active
            .iter()
            .filter(|(_, _, _, share)| match (share, conn) {
                (None, _) => true,
                (Some(s), Some(c)) => s.applies(c),
                (Some(_), None) => false,
            })
            .map(|(_, k, c, _)| (k, *c)),
    )
}

/// The record of a share's decision for a connection.
fn decision(conn: u64, n: u32, kind: &FaultKind, share: &Share) -> Event {
    Event::Note {
        message: format!(
            "conn {conn}: fault {n} ({}) {} (toxicity {})",
            kind.label(),
            if share.applies(conn) {
                "applies"
            } else {
                "does not apply"
            },
            share.toxicity
        ),
    }
}

/// An open connection as the proxy holds it.
struct Conn {
    stats: Arc<ConnStats>,
    /// What the network does to this connection (the faults that act on it).
    net: watch::Sender<NetState>,
    /// Ends the connection the way a fault says (its task owns the sockets).
    cut: mpsc::UnboundedSender<Cut>,
}

/// How a fault ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// SO_LINGER 0 and close: both sides get a RST.
    Reset,
    /// shutdown(write) both ways: both sides get a FIN, and no MQTT DISCONNECT (over TLS
    /// ended here: a close_notify first).
    Close,
    /// Over TLS ended here: a FIN without a close_notify (`notify` false), or a close_notify
    /// with the TCP left open until the other side closes it (`fin` false).
    Tls { notify: bool, fin: bool },
    /// An idle timeout ran out (idle.rs): a FIN or RST as it says, after this much silence.
    Idle {
        reset: bool,
        silent: std::time::Duration,
    },
    /// A link reached its `limit_data` limit: FIN both ways.
    Limit,
    /// The proxy stops (`unplug proxy` ends): FIN both ways, no fault, a short wait for the
    /// ends.
    Stop,
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
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_at(any_port, upstream, journal, options).await
    }

    /// [`Proxy::start_with`], listening on a free port of `ip` (a kernel cut: the host end of
    /// willy's veth, `crate::kernelcut`).
    pub async fn start_on(
        ip: std::net::IpAddr,
        upstream: SocketAddr,
        journal: Journal,
        options: Options,
    ) -> std::io::Result<Proxy> {
        Self::start_at(SocketAddr::new(ip, 0), upstream, journal, options).await
    }

    /// [`Proxy::start_with`] on the address `listen` (port 0: a free one; [`Proxy::addr`] says
    /// which): the standalone proxy's listener, where a person's device connects.
    pub async fn start_at(
        listen: SocketAddr,
        upstream: SocketAddr,
        journal: Journal,
        options: Options,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (net, _) = watch::channel(NetState::default());
        let shared = Arc::new(Shared {
            upstream,
            tls: options.tls.clone(),
            recorder: Recorder::start(journal.clone(), options.record_queue, options.publishes),
            journal,
            net,
            active: Mutex::new(Vec::new()),
            conns: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            max_connections: options.max_connections,
            spread_sources: options.spread_sources
                && matches!(upstream, SocketAddr::V4(a) if a.ip().is_loopback()),
            client: options.client,
            stopping: watch::channel(false).0,
            live: AtomicU64::new(0),
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
        self.apply_to_some(n, kind, new_connections, None);
    }

    /// [`Proxy::apply`], acting only on the connections `share` picks (all when None): those
    /// open now are decided now, each later one when it opens; each decision is recorded.
    /// Returns the connections a reset or close ended (the ones open under its lock).
    pub fn apply_to_some(
        &self,
        n: u32,
        kind: &FaultKind,
        new_connections: NewConnections,
        share: Option<Share>,
    ) -> Vec<u64> {
        let last_upstream = self.last_upstream();
        let cut = match kind {
            FaultKind::Reset => Some(Cut::Reset),
            FaultKind::Close => Some(Cut::Close),
            FaultKind::TlsClose { notify, fin } => Some(Cut::Tls {
                notify: *notify,
                fin: *fin,
            }),
            _ => None,
        };
        // Recorded first, as a heal is: the fault's moment precedes in the journal all it
        // causes. A reset's RST reaches willy on another thread at once; recorded after it,
        // the cut could be stamped after willy's report of it, which then reads as "never".
        self.record_applied(n, kind, last_upstream);
        let mut decided = Vec::new();
        let mut ended = Vec::new();
        {
            let mut active = lock(&self.shared.active);
            active.push((n, kind.clone(), new_connections, share));
            self.shared.net.send_replace(state_for(&active, None));
            for (id, c) in lock(&self.shared.conns).iter() {
                c.net.send_replace(state_for(&active, Some(*id)));
                if let Some(s) = &share {
                    decided.push(decision(*id, n, kind, s));
                }
                if let Some(cut) = cut.filter(|_| share.map_or(true, |s| s.applies(*id))) {
                    let _ = c.cut.send(cut);
                    ended.push(*id);
                }
            }
        }
        for d in decided {
            self.shared.journal.record(Actor::Proxy, d);
        }
        ended
    }

    /// End one open connection as a reset or close fault would, without a fault record: a
    /// per-connection timer's cut (toxiproxy's `reset_peer` and `timeout` act on each
    /// connection a set time after it opened). The cut is recorded as the connection's. False
    /// when the connection is gone or `kind` ends none.
    pub fn cut_connection(&self, id: u64, kind: &FaultKind) -> bool {
        let cut = match kind {
            FaultKind::Reset => Cut::Reset,
            FaultKind::Close => Cut::Close,
            _ => return false,
        };
        lock(&self.shared.conns)
            .get(&id)
            .is_some_and(|c| c.cut.send(cut).is_ok())
    }

    /// For each open connection, when the proxy last forwarded client bytes to the broker.
    fn last_upstream(&self) -> Vec<ConnLastUpstream> {
        self.open_connections()
            .iter()
            .map(|c| ConnLastUpstream {
                conn: c.id,
                ms: c.last_up_ms(),
            })
            .collect()
    }

    fn record_applied(&self, n: u32, kind: &FaultKind, last_upstream: Vec<ConnLastUpstream>) {
        self.shared.journal.record(
            Actor::Proxy,
            Event::FaultApplied {
                fault: kind.label(),
                n,
                last_upstream,
            },
        );
    }

    /// Record fault `n` as in effect without the proxy acting on it: the kernel cuts
    /// (`crate::kernelcut`), whose moment the checks measure from all the same.
    pub fn record_elsewhere_applied(&self, n: u32, kind: &FaultKind) {
        self.record_applied(n, kind, self.last_upstream());
    }

    /// Record fault `n`, which the proxy did not act on, as lifted.
    pub fn record_elsewhere_healed(&self, n: u32, kind: &FaultKind) {
        self.shared.journal.record(
            Actor::Proxy,
            Event::FaultHealed {
                fault: kind.label(),
                n,
            },
        );
    }

    /// Lift fault number `n` (if it is in effect): the network is what the other faults make
    /// it. Bytes flow again, held connections go through, the listener reopens.
    pub fn heal(&self, n: u32) {
        let mut active = lock(&self.shared.active);
        let Some(i) = active.iter().position(|(m, _, _, _)| *m == n) else {
            return;
        };
        let (_, kind, _, _) = active.remove(i);
        // Recorded first, so the heal precedes in the journal all it causes (a held connection's
        // CONNACK may otherwise be recorded before it).
        self.shared.journal.record(
            Actor::Proxy,
            Event::FaultHealed {
                fault: kind.label(),
                n,
            },
        );
        self.shared.net.send_replace(state_for(&active, None));
        for (id, c) in lock(&self.shared.conns).iter() {
            c.net.send_replace(state_for(&active, Some(*id)));
        }
    }

    /// Stop: accept nothing more, close every open connection (FIN both ways: no fault, so
    /// its record says "stopped"), and wait for them to end, at most `wait` (and the short
    /// drain each close takes).
    pub async fn stop(&self, wait: std::time::Duration) {
        self.accept_task.abort();
        self.shared.stopping.send_replace(true);
        for c in lock(&self.shared.conns).values() {
            let _ = c.cut.send(Cut::Stop);
        }
        let until = tokio::time::Instant::now() + wait + STOP_DRAIN;
        while self.shared.live.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
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
                    let open = shared.live.load(Ordering::Relaxed);
                    if open >= shared.max_connections as u64 {
                        drop(client);
                        shared.journal.record(Actor::Proxy, Event::Note {
                            message: format!(
                                "conn {id}: closed at once: {open} connections are open, the most this proxy takes"
                            ),
                        });
                        continue;
                    }
                    shared.live.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(guarded(id, client, shared.clone()));
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
async fn close_both(
    mut client: Stream,
    mut broker: Stream,
    stats: &ConnStats,
    limit: std::time::Duration,
    who: &str,
    stopping: &watch::Sender<bool>,
) -> String {
    let tls = client.is_tls() || broker.is_tls();
    // Over TLS, shutdown sends a close_notify before the FIN.
    let _ = client.shutdown().await;
    let _ = broker.shutdown().await;
    let (c, b) = tokio::join!(
        drain(client, &stats.dropped_up, limit, stopping),
        drain(broker, &stats.dropped_down, limit, stopping)
    );
    let what = if tls {
        "TLS close_notify and FIN"
    } else {
        "FIN"
    };
    format!("{what} to {who} (then it {c}) and to the broker (then it {b})")
}

/// How long a closed connection's ends are read after the close for the peer's own close.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The same when the proxy stops: a person pressed Ctrl-C and waits.
const STOP_DRAIN: std::time::Duration = std::time::Duration::from_millis(300);

/// How long a close_notify without a FIN keeps the TCP open for the peer to close it.
const NOTIFY_HOLD: std::time::Duration = std::time::Duration::from_secs(120);

/// The closes only a TLS end makes: a FIN without a close_notify, or a close_notify without a
/// FIN (the TCP stays open until each side closes it, or [`NOTIFY_HOLD`] passes).
async fn tls_close(
    mut client: Stream,
    mut broker: Stream,
    notify: bool,
    stats: &ConnStats,
    who: &str,
    stopping: &watch::Sender<bool>,
) -> String {
    let limit = if notify {
        for s in [&mut client, &mut broker] {
            s.send_close_notify();
            let _ = s.flush().await;
        }
        NOTIFY_HOLD
    } else {
        for s in [&client, &broker] {
            let _ = socket2::SockRef::from(s.tcp()).shutdown(std::net::Shutdown::Write);
        }
        DRAIN
    };
    let (c, b) = tokio::join!(
        drain(client, &stats.dropped_up, limit, stopping),
        drain(broker, &stats.dropped_down, limit, stopping)
    );
    let what = if notify {
        "TLS close_notify, TCP left open,"
    } else {
        "FIN without a TLS close_notify"
    };
    format!("{what} to {who} (then it {c}) and to the broker (then it {b})")
}

/// Read and discard until the peer closes its end (or `limit` passes, or the proxy stops):
/// how it ended.
async fn drain(
    mut s: Stream,
    dropped: &AtomicU64,
    limit: std::time::Duration,
    stopping: &watch::Sender<bool>,
) -> &'static str {
    let mut stop = stopping.subscribe();
    let mut buf = [0u8; 4096];
    let until_stop = async {
        let _ = stop.wait_for(|s| *s).await;
    };
    let r = tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return "closed its end",
                Ok(n) => {
                    dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return "closed its end without a close_notify"
                }
                Err(_) => return "failed",
            }
        }
    });
    tokio::select! {
        r = r => r.unwrap_or("kept its end open"),
        () = until_stop => "was still open when the proxy stopped",
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

/// [`serve`] one connection; should it panic, the connection is closed (its sockets go with
/// the task), taken out of the table and its end recorded: never left open half-served.
async fn guarded(id: u64, client: TcpStream, shared: Arc<Shared>) {
    let task = tokio::spawn(serve(id, client, shared.clone()));
    if let Err(e) = task.await {
        if e.is_panic() {
            let why = e
                .into_panic()
                .downcast::<String>()
                .map(|s| *s)
                .or_else(|p| p.downcast::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|_| "no message".to_string());
            let stats = lock(&shared.conns).remove(&id).map(|c| c.stats);
            shared.journal.record(
                Actor::Proxy,
                Event::Note {
                    message: format!(
                        "conn {id}: the proxy's task for it failed ({why}); its sockets are closed"
                    ),
                },
            );
            if let Some(stats) = stats {
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                shared.journal.record(
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
        }
    }
    shared.live.fetch_sub(1, Ordering::Relaxed);
}

/// One connection, start to end: held while new connections are held, its two ends opened
/// (TLS ended here if so), registered where faults find it, both links run until they end or
/// a cut, the cut carried out, the end recorded.
async fn serve(id: u64, mut client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let journal = shared.journal.clone();
    let Some(mut early) = hold_while_down(id, &mut client, &shared).await else {
        return;
    };
    let Some((mut client, mut broker)) = open_ends(id, client, &mut early, &shared).await else {
        return;
    };
    journal.record(Actor::Proxy, Event::UpstreamOpened { conn: id });
    let stats = Arc::new(ConnStats::new(id));
    if !early.is_empty() && broker.write_all(&early).await.is_ok() {
        stats
            .up_bytes
            .fetch_add(early.len() as u64, Ordering::Relaxed);
    }
    let (conn_net, _cut_tx, mut cut_rx) = register(id, &shared, &stats);

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
        net: conn_net.clone(),
        start: journal.start(),
        recorder: recorder.clone(),
    };
    // Both links run in this task on borrowed halves, so a fault can still reach the sockets.
    // Plain TCP splits without a lock; TLS needs tokio's split of the whole stream.
    let ends = Ends {
        cut_rx: &mut cut_rx,
        stats: &stats,
        shared: &shared,
    };
    let cut = match (&mut client, &mut broker) {
        (Stream::Plain(c), Stream::Plain(b)) => {
            let (client_r, client_w) = c.split();
            let (broker_r, broker_w) = b.split();
            ends.run(
                link(Flow::Up),
                link(Flow::Down),
                (client_r, client_w),
                (broker_r, broker_w),
            )
            .await
        }
        (c, b) => {
            let halves = (tokio::io::split(c), tokio::io::split(b));
            ends.run(link(Flow::Up), link(Flow::Down), halves.0, halves.1)
                .await
        }
    };
    if let Some(cut) = cut {
        carry_out(id, cut, client, broker, &stats, &shared).await;
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
    recorder.tell(id, event, waits).await;
    recorder.send(Message::Closed { conn: id }, waits).await;
}

/// Record the connection accepted; while new connections are held, keep it until the network
/// comes back, gathering what it sends meanwhile. The bytes a held connection sent before the
/// network came back (delivered, not lost); None when it ended while held.
async fn hold_while_down(id: u64, client: &mut TcpStream, shared: &Shared) -> Option<Vec<u8>> {
    let journal = &shared.journal;
    let mut net = shared.net.subscribe();
    let held = net.borrow_and_update().holds_new();
    let mut stopping = shared.stopping.subscribe();
    journal.record(Actor::Proxy, Event::ConnectionAccepted { conn: id, held });

    let mut early = Vec::new();
    if held {
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                r = client.read(&mut buf), if early.len() < HELD_MAX => match r {
                    Ok(0) | Err(_) => {
                        // The client gave up; its SYNs stop, nothing ever reaches the broker.
                        journal.record(Actor::Proxy, Event::Note {
                            message: format!("conn {id}: {} gave up while held; never reached the broker", shared.client),
                        });
                        return None;
                    }
                    Ok(n) => early.extend_from_slice(&buf[..n]),
                },
                healed = net.wait_for(|s| !s.holds_new()) => {
                    if healed.is_err() { return None; }
                    break;
                }
                _ = stopping.wait_for(|s| *s) => {
                    journal.record(Actor::Proxy, Event::Note {
                        message: format!("conn {id}: held when the proxy stopped; never reached the broker"),
                    });
                    return None;
                }
            }
        }
    }
    Some(early)
}

/// The client's end and the broker's: plain, or with TLS ended here. Ending TLS: willy's
/// handshake first (its ClientHello may be among the `early` bytes, taken then), then our own
/// TLS to the broker. The tap then sees what is inside. None (said in the journal) when either
/// end could not be opened.
async fn open_ends(
    id: u64,
    client: TcpStream,
    early: &mut Vec<u8>,
    shared: &Shared,
) -> Option<(Stream, Stream)> {
    let note = |message: String| shared.journal.record(Actor::Proxy, Event::Note { message });
    let terminate = match &shared.tls {
        Some(tlsend::ProxyTls::Terminate {
            serve,
            upstream,
            name,
            says,
        }) => Some((serve, upstream, name, says)),
        _ => None,
    };
    let mut client = match terminate {
        None => Stream::Plain(client),
        Some((serve, ..)) => match tlsend::accept(serve, std::mem::take(early), client).await {
            Ok(s) => s,
            Err(e) => {
                note(format!("conn {id}: {e}"));
                return None;
            }
        },
    };
    let to_broker = if shared.spread_sources {
        // Another salt than the willies' own sources (they count from 0).
        connect_from(loopback_source(id + (1 << 23)), shared.upstream).await
    } else {
        TcpStream::connect(shared.upstream).await
    };
    let broker = match to_broker {
        Ok(s) => s,
        Err(e) => {
            note(format!(
                "conn {id}: cannot reach the broker at {}: {e}",
                shared.upstream
            ));
            return None;
        }
    };
    let _ = broker.set_nodelay(true);
    let broker = match terminate {
        None => Stream::Plain(broker),
        Some((_, upstream, name, says)) => match tlsend::connect(upstream, name, broker).await {
            Ok(s) => {
                note(format!(
                    "conn {id}: TLS from willy ended here ({}), TLS to the broker ({}; {says}): the wire tap sees the MQTT inside",
                    client.tls_summary().unwrap_or_default(),
                    s.tls_summary().unwrap_or_default()
                ));
                s
            }
            Err(e) => {
                let _ = client.shutdown().await;
                note(format!("conn {id}: {e}"));
                return None;
            }
        },
    };
    if matches!(shared.tls, Some(tlsend::ProxyTls::PassThrough)) {
        note(format!(
            "conn {id}: TLS passed through: the wire tap sees TLS records, not MQTT"
        ));
    }
    Some((client, broker))
}

/// Put the connection in the table the faults reach it through, with the network state its
/// links see and the decisions of the faults already active (recorded). Decided under the
/// faults' lock, so a fault applied meanwhile finds the connection. The sender is kept by the
/// caller for as long as it serves the connection.
fn register(
    id: u64,
    shared: &Shared,
    stats: &Arc<ConnStats>,
) -> (
    watch::Receiver<NetState>,
    mpsc::UnboundedSender<Cut>,
    mpsc::UnboundedReceiver<Cut>,
) {
    let (cut_tx, cut_rx) = mpsc::unbounded_channel();
    let (conn_net, decided) = {
        let active = lock(&shared.active);
        let (net, conn_net) = watch::channel(state_for(&active, Some(id)));
        let decided: Vec<Event> = active
            .iter()
            .filter_map(|(n, k, _, s)| s.as_ref().map(|s| decision(id, *n, k, s)))
            .collect();
        lock(&shared.conns).insert(
            id,
            Conn {
                stats: stats.clone(),
                net,
                cut: cut_tx.clone(),
            },
        );
        (conn_net, decided)
    };
    // A stop that began while this connection was being set up did not find it: it ends now.
    if *shared.stopping.borrow() {
        let _ = cut_tx.send(Cut::Stop);
    }
    for d in decided {
        shared.journal.record(Actor::Proxy, d);
    }
    (conn_net, cut_tx, cut_rx)
}

/// Close both ends as `cut` says, and record how (through the recorder, after the
/// connection's wire records).
async fn carry_out(
    id: u64,
    cut: Cut,
    client: Stream,
    broker: Stream,
    stats: &ConnStats,
    shared: &Shared,
) {
    let recorder = &shared.recorder;
    let waits = &stats.recorder_waits;
    let who = shared.client;
    let how = match cut {
        Cut::Idle { reset, silent } => {
            // Recorded at the moment it closes (a FIN's drain may take a while): the
            // checks measure the silence up to here.
            let how = format!(
                "no bytes either way for {} ms: {} to {who} and to the broker",
                silent.as_millis(),
                if reset { "RST" } else { "FIN" }
            );
            let event = Event::ConnectionCut {
                conn: id,
                fault: idle::FAULT_NAME.to_string(),
                how,
            };
            recorder.tell(id, event, waits).await;
            if reset {
                for s in [&client, &broker] {
                    let _ =
                        socket2::SockRef::from(s.tcp()).set_linger(Some(std::time::Duration::ZERO));
                }
                drop(client);
                drop(broker);
            } else {
                let message = format!(
                    "conn {id}: {}",
                    close_both(client, broker, stats, DRAIN, who, &shared.stopping).await
                );
                recorder.tell(id, Event::Note { message }, waits).await;
            }
            String::new()
        }
        Cut::Reset => {
            for s in [&client, &broker] {
                let _ = socket2::SockRef::from(s.tcp()).set_linger(Some(std::time::Duration::ZERO));
            }
            drop(client);
            drop(broker);
            format!("RST to {who} and to the broker")
        }
        Cut::Close | Cut::Limit => {
            close_both(client, broker, stats, DRAIN, who, &shared.stopping).await
        }
        Cut::Stop => {
            // Its own short wait for the ends, not cut short by the stop it is part of.
            let never = watch::channel(false).0;
            let how = close_both(client, broker, stats, STOP_DRAIN, who, &never).await;
            let message = format!("conn {id}: the proxy stopped: {how}");
            recorder.tell(id, Event::Note { message }, waits).await;
            String::new()
        }
        Cut::Tls { notify, .. } if client.is_tls() => {
            tls_close(client, broker, notify, stats, who, &shared.stopping).await
        }
        // Passed-through TLS has no session here to close: a FIN, as a close.
        Cut::Tls { .. } => close_both(client, broker, stats, DRAIN, who, &shared.stopping).await,
    };
    let fault = match cut {
        Cut::Reset => "reset",
        Cut::Close => "close",
        Cut::Tls { notify: false, .. } => "close-without-notify",
        Cut::Tls { notify: true, .. } => "notify-without-fin",
        Cut::Limit => "limit-data",
        // Recorded above, at the moment it closed; a stop is no fault.
        Cut::Idle { .. } | Cut::Stop => "",
    };
    if !fault.is_empty() {
        let event = Event::ConnectionCut {
            conn: id,
            fault: fault.to_string(),
            how,
        };
        recorder.tell(id, event, waits).await;
    }
}

/// What a connection's links run beside: the cuts a fault sends, and the idle and
/// limit_data watches.
struct Ends<'a> {
    cut_rx: &'a mut mpsc::UnboundedReceiver<Cut>,
    stats: &'a Arc<ConnStats>,
    shared: &'a Arc<Shared>,
}

impl Ends<'_> {
    /// Run both links until they end, or until a cut: which one.
    async fn run<CR, CW, BR, BW>(
        self,
        up: Link,
        down: Link,
        (client_r, client_w): (CR, CW),
        (broker_r, broker_w): (BR, BW),
    ) -> Option<Cut>
    where
        CR: AsyncRead + Unpin,
        CW: AsyncWrite + Unpin,
        BR: AsyncRead + Unpin,
        BW: AsyncWrite + Unpin,
    {
        let both = async { tokio::join!(up.run(client_r, broker_w), down.run(broker_r, client_w)) };
        tokio::select! {
            _ = both => None,
            Some(cut) = self.cut_rx.recv() => Some(cut),
            (reset, silent) = idle::watch(self.stats, self.shared.net.subscribe()) => Some(Cut::Idle { reset, silent }),
            _ = self.stats.limit_reached.notified() => Some(Cut::Limit),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod forwarding_tests;
