//! What TLS costs through the proxy: plain and TLS paths raced side by side in one process, so
//! the neighbours' noise falls on every path alike (as benches/proxy.rs races plain ones).
//!
//!   cargo bench --bench tls
//!   UNPLUG_BENCH_MB=16 cargo bench --bench tls     (smaller streams: a quicker look)
//!
//! ```text
//!  paths:  plain direct      client --TCP--> echo
//!          plain proxy       client --TCP--> unplug::proxy::Proxy (tap decoding MQTT) --> echo
//!          TLS direct        client --TLS--> TLS echo (the run's certificate, RunCerts)
//!          TLS terminate     client --TLS--> proxy ends it, the tap decodes MQTT,
//!                                            its own TLS --> TLS echo (two handshakes)
//!          TLS pass-through  client --TLS--> proxy forwards the records as they are --> TLS echo
//!  setup:      TCP connect until the CONNACK (TLS: with the handshake), 200 connections a
//!              path, one on each path in turn, the order rotating: p50/p99, and of it until
//!              the client's handshake was done; terminating once more, its TLS to the broker
//!              never resuming
//!  latency:    CONNECT, then 64-byte PUBLISH round trips, one trip on each path in turn (the
//!              order rotating): p50/p99, and what the proxy adds over the matching direct path
//!  throughput: CONNECT, then 64-byte PUBLISHes one way in 64 KiB writes, timed until the server
//!              has every byte and the proxy has recorded every packet: MB/s, CPU s/GiB of the
//!              whole process (getrusage: client, proxy and server alike)
//! ```
//!
//! The clients' handshakes are all full ones (resumption off, as `unplug::tls::connect` builds
//! a fresh config each call); the proxy's own TLS to the broker shares one config, as a run's
//! does, so it may resume: the TLS server counts which.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use unplug::event::{Echo, Event, Journal};
use unplug::mqtt::PacketKind;
use unplug::proxy::tlsend::ProxyTls;
use unplug::proxy::{Options, Proxy};

const DEBUG: bool = cfg!(debug_assertions);
const TRIPS: usize = if DEBUG { 200 } else { 20_000 };
const SETUPS: usize = if DEBUG { 20 } else { 200 };
const ROUNDS: usize = if DEBUG { 1 } else { 3 };
const PACKET: usize = 64;
const WRITE: usize = 64 * 1024;
const CONNACK: [u8; 4] = [0x20, 2, 0, 0];

/// Handshakes the TLS server has finished: full and resumed.
static FULL: AtomicUsize = AtomicUsize::new(0);
static RESUMED: AtomicUsize = AtomicUsize::new(0);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    PlainDirect,
    PlainProxy,
    TlsDirect,
    Terminate,
    /// The same, the proxy's TLS to the broker never resuming (setup only).
    TerminateFull,
    PassThrough,
}

const PATHS: [Path; 5] = [
    Path::PlainDirect,
    Path::PlainProxy,
    Path::TlsDirect,
    Path::Terminate,
    Path::PassThrough,
];

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::PlainDirect => "plain direct",
            Path::PlainProxy => "plain, proxy",
            Path::TlsDirect => "TLS direct",
            Path::Terminate => "TLS, proxy terminates",
            Path::TerminateFull => "  upstream never resumed",
            Path::PassThrough => "TLS, proxy passes",
        }
    }

    fn tls(self) -> bool {
        !matches!(self, Path::PlainDirect | Path::PlainProxy)
    }

    /// The direct path this one puts the proxy into.
    fn direct(self) -> Option<Path> {
        match self {
            Path::PlainProxy => Some(Path::PlainDirect),
            Path::Terminate | Path::TerminateFull | Path::PassThrough => Some(Path::TlsDirect),
            _ => None,
        }
    }
}

/// The run's certificates and the configs made of them.
struct Tls {
    serve: Arc<rustls::ServerConfig>,
    /// The terminating proxy's, to the broker: one for all its connections, as a run's.
    upstream: Arc<rustls::ClientConfig>,
    /// The clients' (no resumption), for the proxy of `Path::TerminateFull`.
    client: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    trust: unplug::tls::Trust,
    _dir: tempfile::TempDir,
}

impl Tls {
    fn new() -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let certs = unplug::tls::RunCerts::generate(dir.path(), &[]).unwrap();
        let trust = certs.trust();
        let upstream = trust.client_config().unwrap();
        let mut client = (*upstream).clone();
        client.resumption = rustls::client::Resumption::disabled();
        Tls {
            serve: certs.server_config().unwrap(),
            client: Arc::new(client),
            upstream,
            name: trust.server_name().unwrap(),
            trust,
            _dir: dir,
        }
    }
}

/// CONNECT, MQTT 3.1.1, client id "bench", keepalive 60 s, clean session.
fn connect_packet() -> Vec<u8> {
    let mut p = vec![0x10, 17, 0, 4];
    p.extend_from_slice(b"MQTT");
    p.extend_from_slice(&[4, 0x02, 0, 60, 0, 5]);
    p.extend_from_slice(b"bench");
    p
}

/// A QoS 0 PUBLISH of exactly `PACKET` bytes.
fn publish() -> Vec<u8> {
    let topic = b"test/connected";
    let mut p = vec![0x30, (PACKET - 2) as u8, 0, topic.len() as u8];
    p.extend_from_slice(topic);
    p.resize(PACKET, b'!');
    p
}

/// A journal like a run's, writing its JSONL and log files (unlinked temporary ones).
fn journal() -> Journal {
    let file = || tempfile::tempfile().unwrap();
    Journal::to_writers(file(), file(), Echo::default(), |_| {})
}

/// A broker stand-in, TLS when `tls` is given: CONNACK for the CONNECT, then it echoes
/// everything (`echo`) or reads to the end; `got` hears how many bytes came after the CONNECT.
async fn server(
    tls: Option<Arc<rustls::ServerConfig>>,
    echo: bool,
    got: mpsc::UnboundedSender<usize>,
) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            s.set_nodelay(true).unwrap();
            let (tls, got) = (tls.clone(), got.clone());
            tokio::spawn(async move {
                let n = match tls {
                    None => serve(s, echo).await,
                    Some(config) => {
                        let Ok(s) = tokio_rustls::TlsAcceptor::from(config).accept(s).await else {
                            return;
                        };
                        let resumed =
                            s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                        let count = if resumed { &RESUMED } else { &FULL };
                        count.fetch_add(1, Ordering::Relaxed);
                        serve(s, echo).await
                    }
                };
                let _ = got.send(n);
            });
        }
    });
    addr
}

async fn serve(mut s: impl Io, echo: bool) -> usize {
    let mut connect = vec![0u8; connect_packet().len()];
    if s.read_exact(&mut connect).await.is_err()
        || s.write_all(&CONNACK).await.is_err()
        || s.flush().await.is_err()
    {
        return 0;
    }
    let mut buf = vec![0u8; WRITE];
    let mut n = 0;
    while let Ok(k @ 1..) = s.read(&mut buf).await {
        n += k;
        if echo && (s.write_all(&buf[..k]).await.is_err() || s.flush().await.is_err()) {
            break;
        }
    }
    n
}

/// The servers and proxies of every path.
struct Rig {
    plain: SocketAddr,
    secure: SocketAddr,
    proxies: Vec<(Path, Proxy, Journal)>,
}

impl Rig {
    /// Echo servers, or (`echo` false) sinks that send `got` their byte counts.
    async fn new(tls: &Tls, echo: bool, got: mpsc::UnboundedSender<usize>) -> Rig {
        let plain = server(None, echo, got.clone()).await;
        let secure = server(Some(tls.serve.clone()), echo, got).await;
        let terminate = |upstream: &Arc<rustls::ClientConfig>| ProxyTls::Terminate {
            serve: tls.serve.clone(),
            upstream: upstream.clone(),
            name: tls.name.clone(),
            says: "bench".into(),
        };
        let mut proxies = Vec::new();
        for (p, to, tls) in [
            (Path::PlainProxy, plain, None),
            (Path::Terminate, secure, Some(terminate(&tls.upstream))),
            (Path::TerminateFull, secure, Some(terminate(&tls.client))),
            (Path::PassThrough, secure, Some(ProxyTls::PassThrough)),
        ] {
            let options = Options {
                tls,
                ..Default::default()
            };
            let journal = journal();
            let proxy = Proxy::start_with(to, journal.clone(), options)
                .await
                .unwrap();
            proxies.push((p, proxy, journal));
        }
        Rig {
            plain,
            secure,
            proxies,
        }
    }

    fn addr(&self, path: Path) -> SocketAddr {
        match path {
            Path::PlainDirect => self.plain,
            Path::TlsDirect => self.secure,
            _ => self.proxies.iter().find(|r| r.0 == path).unwrap().1.addr,
        }
    }
}

/// Connect (TLS too on a TLS path), send CONNECT and wait for the CONNACK; and when the
/// client had its TLS (or TCP) connection.
async fn open(path: Path, addr: SocketAddr, tls: &Tls) -> (Box<dyn Io>, Instant) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut s: Box<dyn Io> = if path.tls() {
        let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
        Box::new(connector.connect(tls.name.clone(), tcp).await.unwrap())
    } else {
        Box::new(tcp)
    };
    let connected = Instant::now();
    s.write_all(&connect_packet()).await.unwrap();
    s.flush().await.unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await.unwrap();
    assert_eq!(ack, CONNACK);
    (s, connected)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Sorted, and p50/p99 (us) of each.
fn percentiles(mut times: Vec<Vec<Duration>>) -> Vec<(f64, f64)> {
    for t in &mut times {
        t.sort();
    }
    times.iter().map(|t| (pct(t, 0.5), pct(t, 0.99))).collect()
}

/// Each path's p50 and p99, what its proxy adds over the matching direct path, and `more`.
fn print_times(paths: &[Path], times: Vec<Vec<Duration>>, more: impl Fn(usize) -> String) {
    let ps = percentiles(times);
    for (j, p) in paths.iter().enumerate() {
        let (p50, p99) = ps[j];
        let adds = match p.direct().and_then(|d| paths.iter().position(|q| *q == d)) {
            Some(d) => format!("proxy adds {:6.1} {:6.1}", p50 - ps[d].0, p99 - ps[d].1),
            None => String::new(),
        };
        let line = format!(
            "  {:<24} p50 {p50:7.1} us  p99 {p99:7.1} us  {adds:24}{}",
            p.name(),
            more(j)
        );
        println!("{}", line.trim_end());
    }
}

/// `paths`' connections one after the other, the order rotating: how long each took, and
/// of it until the client had its TLS.
async fn setups(rig: &Rig, tls: &Tls, paths: &[Path]) -> [Vec<Vec<Duration>>; 2] {
    let mut times = [vec![Vec::new(); paths.len()], vec![Vec::new(); paths.len()]];
    let warm = SETUPS / 20;
    for i in 0..warm + SETUPS {
        for k in 0..paths.len() {
            let j = (i + k) % paths.len();
            let t = Instant::now();
            let (s, connected) = open(paths[j], rig.addr(paths[j]), tls).await;
            if i >= warm {
                times[0][j].push(t.elapsed());
                times[1][j].push(connected - t);
            }
            drop(s);
        }
    }
    times
}

async fn setup(tls: &Tls) {
    let (got, _keep) = mpsc::unbounded_channel();
    let rig = Rig::new(tls, true, got).await;
    let handshakes = || [&FULL, &RESUMED].map(|n| n.load(Ordering::Relaxed));
    let before = handshakes();
    let paths = [&PATHS[..], &[Path::TerminateFull]].concat();
    let [total, connected] = setups(&rig, tls, &paths).await;
    let connected = percentiles(connected);
    println!("Setup: TCP connect until the CONNACK, {SETUPS} connections per path, in turn:");
    print_times(&paths, total, |j| {
        let what = if paths[j].tls() { "TLS" } else { "TCP" };
        format!("  client's {what} up p50 {:6.1}", connected[j].0)
    });
    let after = handshakes();
    println!(
        "  the TLS server's handshakes: {} full, {} resumed (only the terminating proxy's resume)",
        after[0] - before[0],
        after[1] - before[1]
    );
    // What `unplug::tls::connect` does before it connects: builds a client config each call.
    let built: Vec<Duration> = (0..SETUPS)
        .map(|_| {
            let t = Instant::now();
            tls.trust.client_config().unwrap();
            t.elapsed()
        })
        .collect();
    let built = percentiles(vec![built])[0];
    println!(
        "  (unplug::tls::connect builds its client config first: p50 {:.1} us, p99 {:.1} us)",
        built.0, built.1
    );
}

async fn latency(tls: &Tls) {
    let (got, _keep) = mpsc::unbounded_channel();
    let rig = Rig::new(tls, true, got).await;
    let mut conns = Vec::new();
    for p in PATHS {
        conns.push(open(p, rig.addr(p), tls).await.0);
    }
    let req = publish();
    let mut resp = vec![0u8; req.len()];
    let mut times = vec![Vec::with_capacity(TRIPS); PATHS.len()];
    let warm = TRIPS / 20;
    for i in 0..warm + TRIPS {
        for k in 0..PATHS.len() {
            let j = (i + k) % PATHS.len();
            let s = &mut conns[j];
            let t = Instant::now();
            s.write_all(&req).await.unwrap();
            s.flush().await.unwrap();
            s.read_exact(&mut resp).await.unwrap();
            if i >= warm {
                times[j].push(t.elapsed());
            }
        }
    }
    println!("64-byte PUBLISH round trips after CONNECT, {TRIPS} per path, in turn:");
    print_times(&PATHS, times, |_| String::new());
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_s() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    tv(u.user_time()) + tv(u.system_time())
}

fn is_publish(e: &Event) -> bool {
    matches!(
        e,
        Event::Packet {
            kind: PacketKind::Publish,
            ..
        }
    )
}

/// Send `total` bytes of PUBLISHes one way on path `j` (a rig of its own, so each stream's
/// records go with it): (MB/s, CPU s/GiB).
async fn stream(tls: &Tls, j: usize, total: usize) -> (f64, f64) {
    let (got, mut count) = mpsc::unbounded_channel();
    let rig = Rig::new(tls, false, got).await;
    let block = publish().repeat(WRITE / PACKET);
    let (mut s, _) = open(PATHS[j], rig.addr(PATHS[j]), tls).await;
    let (cpu0, t0) = (cpu_s(), Instant::now());
    let mut sent = 0;
    while sent < total {
        s.write_all(&block).await.unwrap();
        sent += block.len();
    }
    s.shutdown().await.unwrap();
    assert_eq!(count.recv().await, Some(sent), "every byte arrived");
    for (_, proxy, _) in &rig.proxies {
        proxy.settle().await;
    }
    let (took, cpu) = (t0.elapsed().as_secs_f64(), cpu_s() - cpu0);
    if let Some((_, _, journal)) = rig.proxies.iter().find(|r| r.0 == PATHS[j]) {
        if PATHS[j] != Path::PassThrough {
            let records = journal.records();
            let publishes = records.iter().filter(|r| is_publish(&r.event)).count();
            assert_eq!(publishes, sent / PACKET, "the tap decoded every PUBLISH");
        }
    }
    let gib = sent as f64 / (1u64 << 30) as f64;
    (sent as f64 / took / 1e6, cpu / gib)
}

async fn throughput(tls: &Tls) {
    let mb: usize = std::env::var("UNPLUG_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let total = if DEBUG { 1 << 20 } else { mb << 20 };
    let mut results = vec![Vec::new(); PATHS.len()];
    for round in 0..ROUNDS {
        for k in 0..PATHS.len() {
            let j = (round + k) % PATHS.len();
            results[j].push(stream(tls, j, total).await);
        }
    }
    println!(
        "64-byte PUBLISH stream one way, 64 KiB writes, {} MiB per path, {ROUNDS} rounds, \
         paths in turn (medians):",
        total >> 20
    );
    let med = |j: usize, f: fn(&(f64, f64)) -> f64| {
        let mut v: Vec<f64> = results[j].iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (j, p) in PATHS.iter().enumerate() {
        let (mb_s, cpu) = (med(j, |r| r.0), med(j, |r| r.1));
        print!("  {:<22} {mb_s:7.1} MB/s  CPU {cpu:5.2} s/GiB", p.name());
        if let Some(d) = p.direct() {
            let d = PATHS.iter().position(|q| *q == d).unwrap();
            print!("   proxy adds {:5.2} s/GiB", cpu - med(d, |r| r.1));
        }
        println!();
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tls = Tls::new();
        setup(&tls).await;
        latency(&tls).await;
        throughput(&tls).await;
    });
}
