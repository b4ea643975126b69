//! The proxy against a direct connection and a plain Rust proxy, raced side by side in one
//! process so that the neighbours' noise falls on every path alike.
//!
//!   cargo bench --bench proxy
//!   UNPLUG_BENCH_MB=16 cargo bench --bench proxy     (smaller streams: a quicker look)
//!   UNPLUG_BENCH_PROFILE=runs|each|direct|plain-mqtt|raw|plain cargo bench --bench proxy
//!       (one path alone, e.g. under `strace -f -c` or `perf`)
//!
//! ```text
//!  paths:  direct  client ---------------------------------> server
//!          plain   client --> copy_bidirectional (32 KiB) --> server   (what noxious does, no toxics)
//!          unplug  client --> unplug::proxy::Proxy (tap decoding every packet, a record each,
//!                             journal writing its JSONL and log files as a run's does) --> server
//!          runs    the same, PUBLISH floods recorded as runs (PublishRecords::Runs)
//!          api     `unplug proxy`'s: made through its toxiproxy API, journal to files, its
//!                  monit following the journal, while a client polls GET /proxies and adds
//!                  and removes a toxic every 10 ms (latency only)
//!  latency:    CONNECT/CONNACK, then 64-byte PUBLISH round trips, one trip on each path in turn
//!              (the order rotates each trip): p50/p99 of each, and what each proxy adds
//!  throughput: CONNECT, then 64-byte PUBLISHes one way, in 64 KiB writes; and raw bytes (not
//!              MQTT, the tap idle); the paths take turns, round after round; timed until the
//!              server has every byte and the proxy has recorded every packet
//!              -> MB/s, CPU seconds per GiB of the whole process (getrusage), that CPU minus
//!                 the direct path's (what the proxy itself costs), writes per packet
//! ```
//!
//! Every stream starts with CONNECT, as every real MQTT stream does, so the tap decodes and
//! records each packet (a stream that starts otherwise is passed as opaque and hides the cost).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use unplug::event::{Echo, Event, Journal};
use unplug::proxy::{Options, Proxy, PublishRecords};

const DEBUG: bool = cfg!(debug_assertions);
const TRIPS: usize = if DEBUG { 200 } else { 20_000 };
const ROUNDS: usize = if DEBUG { 1 } else { 3 };
const PACKET: usize = 64;
const WRITE: usize = 64 * 1024;

fn stream_bytes() -> usize {
    let mb: usize = std::env::var("UNPLUG_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    if DEBUG {
        1 << 20
    } else {
        mb << 20
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

/// A journal like a run's: every record kept and written to its JSONL and log files (in the
/// temporary directory, removed at the end).
fn run_journal() -> Journal {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = journal_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let n = N.fetch_add(1, Ordering::Relaxed);
    // Unlinked at once: written like any file, its space freed when the journal goes.
    let file = |ext: &str| {
        let path = dir.join(format!("{n}.{ext}"));
        let f = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    };
    Journal::to_writers(file("events.jsonl"), file("log"), Echo::default(), |_| {})
}

fn journal_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("unplug-bench-proxy-{}", std::process::id()))
}

const RUNS: Options = Options {
    publishes: PublishRecords::Runs,
    record_queue: 256,
    tls: None,
    max_connections: usize::MAX,
    client: "willy",
    spread_sources: false,
};

const CONNACK: [u8; 4] = [0x20, 2, 0, 0];

/// A QoS 0 PUBLISH of exactly `PACKET` bytes to `test/connected`.
fn publish() -> Vec<u8> {
    let topic = b"test/connected";
    let mut p = vec![0x30, (PACKET - 2) as u8, 0, topic.len() as u8];
    p.extend_from_slice(topic);
    p.resize(PACKET, b'!');
    p
}

/// A broker stand-in: reads the CONNECT, answers CONNACK, then echoes (round trips) or reads
/// to the end and reports how many bytes came (streams).
async fn server(echo: bool) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 1];
                if s.read_exact(&mut head).await.is_err() {
                    return;
                }
                if head[0] == 0x10 {
                    let mut rest = vec![0u8; connect_packet().len() - 1];
                    s.read_exact(&mut rest).await.unwrap();
                    s.write_all(&CONNACK).await.unwrap();
                }
                let mut n = if head[0] == 0x10 { 0 } else { 1 };
                let (mut r, mut w) = s.split();
                if echo {
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    return;
                }
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(k) = r.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                let _ = tx.send(n);
            });
        }
    });
    (addr, rx)
}

/// A plain Rust proxy: copy both ways with 32 KiB buffers, nodelay, nothing else.
async fn plain_proxy(upstream: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut b = TcpStream::connect(upstream).await.unwrap();
                let _ = c.set_nodelay(true);
                let _ = b.set_nodelay(true);
                let _ =
                    tokio::io::copy_bidirectional_with_sizes(&mut c, &mut b, 32 << 10, 32 << 10)
                        .await;
            });
        }
    });
    addr
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PathKind {
    Direct,
    Plain,
    Unplug,
    /// The same with PUBLISH floods recorded as runs (exact counts, one record per run).
    UnplugRuns,
    /// A proxy of `unplug proxy`, its API busy beside the data path (latency only).
    UnplugApi,
}

/// The latency race adds `unplug proxy`'s path, API busy.
const LATENCY_PATHS: [PathKind; 5] = [
    PathKind::Direct,
    PathKind::Plain,
    PathKind::Unplug,
    PathKind::UnplugRuns,
    PathKind::UnplugApi,
];

const PATHS: [PathKind; 4] = [
    PathKind::Direct,
    PathKind::Plain,
    PathKind::Unplug,
    PathKind::UnplugRuns,
];

impl PathKind {
    fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Plain => "plain Rust proxy",
            PathKind::Unplug => "unplug, tap decoding",
            PathKind::UnplugRuns => "unplug, PUBLISH runs",
            PathKind::UnplugApi => "unplug proxy, API busy",
        }
    }

    fn unplug(self) -> bool {
        matches!(
            self,
            PathKind::Unplug | PathKind::UnplugRuns | PathKind::UnplugApi
        )
    }
}

async fn open(addr: SocketAddr, mqtt: bool) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    if mqtt {
        s.write_all(&connect_packet()).await.unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).await.unwrap();
        assert_eq!(ack, CONNACK);
    }
    s
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_s() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    tv(u.user_time()) + tv(u.system_time())
}

/// Wait until the proxy has the connection open both ways and return its counters.
async fn conn_of(proxy: &Proxy) -> std::sync::Arc<unplug::proxy::link::ConnStats> {
    for _ in 0..400 {
        if let Some(c) = proxy.open_connections().into_iter().last() {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the proxy never connected upstream");
}

/// `unplug proxy`'s server with one proxy in front of `upstream`, its API on a free port, and
/// a client keeping the API busy until `stop` is set: (the proxy's address, the client thread).
async fn busy_api(
    upstream: SocketAddr,
    dir: &std::path::Path,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (SocketAddr, std::thread::JoinHandle<usize>) {
    use unplug::toxi::api::{router, Config, ProxySpec, Server};
    let server = Server::new(Config::new(dir.to_path_buf()));
    let made = server
        .create(ProxySpec {
            name: "bench".into(),
            listen: "127.0.0.1:0".into(),
            upstream: upstream.to_string(),
            enabled: true,
        })
        .await
        .unwrap();
    let addr: SocketAddr = made["listen"].as_str().unwrap().parse().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, router(server)).await });
    let client = std::thread::spawn(move || {
        use unplug::toxi::control::request;
        let toxic =
            serde_json::json!({"name": "nothing", "type": "latency", "attributes": {"latency": 0}});
        let mut calls = 0;
        while !stop.load(Ordering::Relaxed) {
            request(&api, "GET", "/proxies", None).unwrap();
            request(&api, "POST", "/proxies/bench/toxics", Some(&toxic)).unwrap();
            request(&api, "DELETE", "/proxies/bench/toxics/nothing", None).unwrap();
            calls += 3;
            std::thread::sleep(Duration::from_millis(10));
        }
        calls
    });
    (addr, client)
}

async fn latency() {
    let (echo, _) = server(true).await;
    let plain = plain_proxy(echo).await;
    let proxy = Proxy::start(echo, run_journal()).await.unwrap();
    let runs = Proxy::start_with(echo, run_journal(), RUNS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (api_proxy, api_client) = busy_api(echo, dir.path(), stop.clone()).await;
    let mut conns = Vec::new();
    for p in LATENCY_PATHS {
        let addr = match p {
            PathKind::Direct => echo,
            PathKind::Plain => plain,
            PathKind::Unplug => proxy.addr,
            PathKind::UnplugRuns => runs.addr,
            PathKind::UnplugApi => api_proxy,
        };
        conns.push(open(addr, true).await);
    }
    let stats = conn_of(&proxy).await;
    let req = publish();
    let mut resp = vec![0u8; req.len()];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(TRIPS); LATENCY_PATHS.len()];
    let warm = TRIPS / 20;
    for i in 0..warm + TRIPS {
        for k in 0..LATENCY_PATHS.len() {
            let j = (i + k) % LATENCY_PATHS.len();
            let s = &mut conns[j];
            let t = Instant::now();
            s.write_all(&req).await.unwrap();
            s.read_exact(&mut resp).await.unwrap();
            if i >= warm {
                times[j].push(t.elapsed());
            }
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (d50, d99) = (pct(&times[0], 0.5), pct(&times[0], 0.99));
    println!("64-byte PUBLISH round trips after CONNECT, {TRIPS} per path, interleaved per trip:");
    stop.store(true, Ordering::Relaxed);
    let calls = api_client.join().unwrap();
    for (j, p) in LATENCY_PATHS.iter().enumerate() {
        let (p50, p99) = (pct(&times[j], 0.5), pct(&times[j], 0.99));
        print!("  {:<22} p50 {p50:6.1} us  p99 {p99:6.1} us", p.name());
        if *p != PathKind::Direct {
            print!(
                "   added p50 {:5.1} us  p99 {:5.1} us",
                p50 - d50,
                p99 - d99
            );
        }
        println!();
    }
    println!("  (the API answered {calls} requests meanwhile)");
    let packets = (warm + TRIPS) as f64;
    let up = stats.up_writes.load(Ordering::Relaxed) as f64;
    let down = stats.down_writes.load(Ordering::Relaxed) as f64;
    println!(
        "  unplug writes per packet: up {:.3}, down {:.3}",
        up / (packets + 1.0),
        down / (packets + 1.0)
    );
}

struct Stream {
    mb_s: f64,
    cpu_s: f64,
    writes: Option<u64>,
    records: Option<usize>,
}

/// Send `total` bytes of `pattern` one way through `path` and time it until the server has
/// them all.
async fn one_stream(path: PathKind, mqtt: bool, total: usize) -> Stream {
    let (sink, mut got) = server(false).await;
    let journal = run_journal();
    let options = match path {
        PathKind::UnplugRuns => RUNS,
        _ => Options::default(),
    };
    let proxy = Proxy::start_with(sink, journal.clone(), options)
        .await
        .unwrap();
    let plain = plain_proxy(sink).await;
    let addr = match path {
        PathKind::Direct => sink,
        PathKind::Plain => plain,
        PathKind::Unplug | PathKind::UnplugRuns | PathKind::UnplugApi => proxy.addr,
    };
    let unit: Vec<u8> = if mqtt { publish() } else { vec![0xab; PACKET] };
    let block: Vec<u8> = unit.iter().copied().cycle().take(WRITE).collect();
    let mut s = open(addr, mqtt).await;
    let stats = if path.unplug() {
        Some(conn_of(&proxy).await)
    } else {
        None
    };
    let (done_tx, done_rx) = oneshot::channel();
    let cpu0 = cpu_s();
    let t0 = Instant::now();
    tokio::spawn(async move {
        let _ = done_tx.send(got.recv().await);
    });
    let mut sent = 0;
    while sent < total {
        s.write_all(&block).await.unwrap();
        sent += block.len();
    }
    s.shutdown().await.unwrap();
    let n = done_rx.await.unwrap().unwrap();
    assert_eq!(n, sent, "every byte arrived");
    // Until it is all recorded too: the recorder's queue can hold 8 MiB it has not decoded yet
    // when the last byte arrives, and its work is part of the proxy's.
    if path.unplug() {
        proxy.settle().await;
    }
    let took = t0.elapsed().as_secs_f64();
    let cpu = cpu_s() - cpu0;
    let records = if path.unplug() && mqtt {
        Some(
            journal
                .records()
                .iter()
                .map(|r| match &r.event {
                    Event::Packet { kind, .. } if *kind == unplug::mqtt::PacketKind::Publish => 1,
                    Event::PublishRun { count, .. } => *count as usize,
                    _ => 0,
                })
                .sum(),
        )
    } else {
        None
    };
    Stream {
        mb_s: sent as f64 / took / 1e6,
        cpu_s: cpu / (sent as f64 / (1u64 << 30) as f64),
        writes: stats.map(|s| s.up_writes.load(Ordering::Relaxed)),
        records,
    }
}

async fn throughput(mqtt: bool) {
    let total = stream_bytes();
    let what = if mqtt {
        "small-PUBLISH stream (CONNECT, then 64 B PUBLISHes)"
    } else {
        "raw bytes (not MQTT: the tap idle)"
    };
    println!(
        "{what}, {} MiB per path, {ROUNDS} rounds, paths in turn:",
        total >> 20
    );
    let mut results: Vec<Vec<Stream>> = PATHS.iter().map(|_| Vec::new()).collect();
    for round in 0..ROUNDS {
        for k in 0..PATHS.len() {
            let j = (round + k) % PATHS.len();
            results[j].push(one_stream(PATHS[j], mqtt, total).await);
        }
    }
    let packets = (total / PACKET) as f64;
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let direct_cpu = med(results[0].iter().map(|r| r.cpu_s).collect());
    for (j, p) in PATHS.iter().enumerate() {
        let r = &results[j];
        let mb = med(r.iter().map(|x| x.mb_s).collect());
        let cpu = med(r.iter().map(|x| x.cpu_s).collect());
        print!("  {:<22} {mb:8.1} MB/s  CPU {cpu:6.2} s/GiB", p.name());
        if *p != PathKind::Direct {
            print!(" (proxy alone {:6.2})", cpu - direct_cpu);
        }
        if let Some(w) = r.last().and_then(|x| x.writes) {
            if mqtt {
                print!("  writes per packet {:.4}", w as f64 / (packets + 1.0));
            } else {
                print!("  writes {w}");
            }
        }
        if let Some(n) = r.last().and_then(|x| x.records) {
            print!("  PUBLISHes recorded {n} of {}", total / PACKET);
        }
        println!();
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // For a profile of one path alone: UNPLUG_BENCH_PROFILE=runs|each (small-PUBLISH stream),
    // raw (raw bytes through unplug), plain (raw bytes through the plain proxy).
    if let Ok(which) = std::env::var("UNPLUG_BENCH_PROFILE") {
        let (path, mqtt) = match which.as_str() {
            "runs" => (PathKind::UnplugRuns, true),
            "direct" => (PathKind::Direct, true),
            "plain-mqtt" => (PathKind::Plain, true),
            "raw" => (PathKind::Unplug, false),
            "plain" => (PathKind::Plain, false),
            _ => (PathKind::Unplug, true),
        };
        rt.block_on(async {
            for _ in 0..ROUNDS {
                let r = one_stream(path, mqtt, stream_bytes()).await;
                println!(
                    "{}: {:.1} MB/s, CPU {:.2} s/GiB",
                    path.name(),
                    r.mb_s,
                    r.cpu_s
                );
            }
        });
        let _ = std::fs::remove_dir_all(journal_dir());
        return;
    }
    rt.block_on(async {
        latency().await;
        throughput(true).await;
        throughput(false).await;
    });
    let _ = std::fs::remove_dir_all(journal_dir());
}
