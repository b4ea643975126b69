//! The race of issue 23: `unplug proxy` as a user starts it, beside noxious 1.0.4 (the Rust
//! toxiproxy, as a library), a plain tokio proxy and a direct path, in one process.
//!
//! ```text
//!  start: sink (an MQTT stand-in) + the four paths to it (paths.rs)
//!  warm-up: a short flood and 200 round trips on each path (not counted)
//!  round r of R (paths in an order rotated by r):
//!    latency:    one echo connection per path (CONNECT/CONNACK), then T round trips of one
//!                64-byte PUBLISH, trip by trip across the paths; p50/p99 per path
//!    throughput: per path in turn, CONNECT, then N 64-byte PUBLISHes in 64 KiB writes as
//!                fast as the socket takes them; MB/s until the sink has counted all N;
//!                the process's CPU (getrusage) from the first write to a quiet pause after
//!  end: a table (min / median / max over the rounds) and the goals of issue 23, on stdout;
//!       every figure as JSON with --json FILE
//! ```
//!
//! `unplug proxy` prints its live lines (connections, a PUBLISH flood's summary about once a
//! second) on stdout as it does for a user; the race's progress goes to stderr.

mod paths;
mod sink;
mod wire;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use paths::{Path, Paths, ALL};
use sink::Sink;
use wire::PACKET;

#[derive(Parser)]
#[command(
    about = "Race `unplug proxy` (its defaults) against noxious 1.0.4, a plain proxy and a direct path"
)]
struct Args {
    /// Rounds; each runs every path once (latency, then throughput), in a rotated order.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// 64-byte PUBLISHes per flood (1,000,000 = 64 MB).
    #[arg(long, default_value_t = 1_000_000)]
    publishes: u64,
    /// Round trips per path per round.
    #[arg(long, default_value_t = 10_000)]
    trips: usize,
    /// After a flood reaches the sink, the process is given this long (ms) to finish its work
    /// (unplug's recorder) before the CPU is read; the same pause for every path.
    #[arg(long, default_value_t = 300)]
    settle_ms: u64,
    /// Only these paths (comma-separated: direct,plain,noxious,unplug), e.g. to profile one.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// unplug's journal directory (`--out`), kept after the race; by default a temporary
    /// directory, removed.
    #[arg(long)]
    journal_dir: Option<std::path::PathBuf>,
    /// Write every figure here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// The process's CPU time so far (user + system, every thread), seconds.
fn cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A connection through `addr`: CONNECT with client id `id`, the CONNACK read.
async fn open(addr: std::net::SocketAddr, id: &str) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&wire::connect(id)).await?;
    let mut ack = [0u8; wire::CONNACK_LEN];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut ack))
        .await
        .context("no CONNACK within 10 s")??;
    anyhow::ensure!(ack[0] == 0x20, "expected CONNACK, got {ack:?}");
    Ok(s)
}

struct Flood {
    mb_s: f64,
    cpu_s_per_gib: f64,
    /// Until the journal also has the flood's DISCONNECT (unplug only): every packet before
    /// it recorded.
    recorded_mb_s: Option<f64>,
}

/// Wait until `jsonl`, past `from`, has the CONNECT of client `id` and then a DISCONNECT
/// (one flood at a time goes through the proxy, so it is that connection's).
async fn recorded(jsonl: &std::path::Path, from: u64, id: &str) -> anyhow::Result<()> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(jsonl)?;
    f.seek(std::io::SeekFrom::Start(from))?;
    let connect = format!("\"client_id\":\"{id}\"");
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        f.read_to_string(&mut text)?;
        if let Some(at) = text.find(&connect) {
            if text[at..].contains("\"from\":\"client\",\"dropped\":false,\"kind\":\"DISCONNECT\"")
            {
                return Ok(());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{id}: no DISCONNECT in the journal within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// CONNECT, then `n` 64-byte PUBLISHes as fast as the socket takes them; timed until the sink
/// has counted them all.
async fn flood(
    sink: &mut Sink,
    addr: std::net::SocketAddr,
    id: &str,
    n: u64,
    settle: Duration,
    journal: Option<&std::path::Path>,
) -> anyhow::Result<Flood> {
    const PER_WRITE: usize = 1024; // 64 KiB writes
    let unit = wire::publish();
    let block: Vec<u8> = unit
        .iter()
        .copied()
        .cycle()
        .take(PER_WRITE * PACKET)
        .collect();
    let from = match journal {
        Some(j) => std::fs::metadata(j)?.len(),
        None => 0,
    };
    let mut s = open(addr, id).await?;
    sink.expect(n);
    let cpu0 = cpu_s();
    let t0 = Instant::now();
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(PER_WRITE);
        s.write_all(&block[..k * PACKET]).await?;
        left -= k;
    }
    let (got, bytes) = tokio::time::timeout(Duration::from_secs(120), sink.flooded())
        .await
        .context("the sink did not get the flood within 120 s")?
        .context("the sink stopped")?;
    let took = t0.elapsed().as_secs_f64();
    anyhow::ensure!(
        got == n && bytes == n * PACKET as u64,
        "sink counted {got} PUBLISHes, {bytes} bytes; sent {n}"
    );
    s.write_all(&wire::DISCONNECT).await?;
    drop(s);
    let recorded_mb_s = match journal {
        Some(j) => {
            recorded(j, from, id).await?;
            Some((n * PACKET as u64) as f64 / t0.elapsed().as_secs_f64() / 1e6)
        }
        None => None,
    };
    tokio::time::sleep(settle).await;
    let cpu = cpu_s() - cpu0;
    let sent = (n * PACKET as u64) as f64;
    Ok(Flood {
        mb_s: sent / took / 1e6,
        cpu_s_per_gib: cpu / (sent / (1u64 << 30) as f64),
        recorded_mb_s,
    })
}

/// `trips` round trips of one PUBLISH on each connection in turn; each connection's times (us).
async fn round_trips(conns: &mut [TcpStream], trips: usize) -> anyhow::Result<Vec<Vec<f64>>> {
    let p = wire::publish();
    let mut back = vec![0u8; PACKET];
    let mut times = vec![Vec::with_capacity(trips); conns.len()];
    for _ in 0..trips {
        for (c, t) in conns.iter_mut().zip(times.iter_mut()) {
            let t0 = Instant::now();
            c.write_all(&p).await?;
            c.read_exact(&mut back).await?;
            t.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(times)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

/// (min, median, max).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[0], quantile(&s, 0.5), s[s.len() - 1])
}

#[derive(Default, Clone)]
struct Figures {
    mb_s: Vec<f64>,
    recorded_mb_s: Vec<f64>,
    cpu: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    added_p50: Vec<f64>,
    added_p99: Vec<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let paths: Vec<Path> = if args.only.is_empty() {
        ALL.to_vec()
    } else {
        ALL.iter()
            .copied()
            .filter(|p| args.only.iter().any(|o| o == p.name()))
            .collect()
    };
    anyhow::ensure!(
        !paths.is_empty(),
        "--only names none of direct, plain, noxious, unplug"
    );
    let load_before = loadavg();
    let started = chrono_now();
    let temp = tempfile::Builder::new().prefix("bench-race-").tempdir()?;
    let journal_dir = match &args.journal_dir {
        Some(d) => d.clone(),
        None => temp.path().to_path_buf(),
    };
    let mut sink = Sink::start().await?;
    let race = Paths::start(sink.addr, &journal_dir).await?;
    eprintln!(
        "race: sink {}, plain {}, noxious {}, unplug {} (api {}): `{}`",
        sink.addr,
        race.plain,
        race.noxious,
        race.unplug,
        race.unplug_api,
        race.unplug_argv.join(" ")
    );
    // unplug's start-up probe of the broker (a connection of its own) ends within ~1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settle = Duration::from_millis(args.settle_ms);

    // Warm-up, not counted.
    let mut conns = Vec::new();
    for p in &paths {
        conns.push(open(race.addr(*p), &format!("echo-warm-{}", p.name())).await?);
    }
    round_trips(&mut conns, 200).await?;
    drop(conns);
    for p in &paths {
        flood(
            &mut sink,
            race.addr(*p),
            &format!("flood-warm-{}", p.name()),
            args.publishes / 10,
            settle,
            (*p == Path::Unplug).then_some(race.unplug_journal.as_path()),
        )
        .await?;
    }

    let mut figs = vec![Figures::default(); paths.len()];
    let mut rounds_json = Vec::new();
    for r in 0..args.rounds {
        let order: Vec<usize> = (0..paths.len()).map(|i| (i + r) % paths.len()).collect();
        let mut conns = Vec::new();
        for &i in &order {
            conns.push(
                open(
                    race.addr(paths[i]),
                    &format!("echo-r{r}-{}", paths[i].name()),
                )
                .await?,
            );
        }
        let times = round_trips(&mut conns, args.trips).await?;
        for c in conns.iter_mut() {
            let _ = c.write_all(&wire::DISCONNECT).await;
        }
        drop(conns);
        let mut lat = vec![(0.0, 0.0); paths.len()];
        for (k, &i) in order.iter().enumerate() {
            let mut t = times[k].clone();
            t.sort_by(f64::total_cmp);
            lat[i] = (quantile(&t, 0.5), quantile(&t, 0.99));
        }
        let direct = paths
            .iter()
            .position(|p| *p == Path::Direct)
            .map(|i| lat[i]);
        let mut round = serde_json::Map::new();
        let mut line = format!("round {}/{}:", r + 1, args.rounds);
        for &i in &order {
            let p = paths[i];
            let f = flood(
                &mut sink,
                race.addr(p),
                &format!("flood-r{r}-{}", p.name()),
                args.publishes,
                settle,
                (p == Path::Unplug).then_some(race.unplug_journal.as_path()),
            )
            .await?;
            let (p50, p99) = lat[i];
            let fig = &mut figs[i];
            fig.mb_s.push(f.mb_s);
            fig.recorded_mb_s.extend(f.recorded_mb_s);
            fig.cpu.push(f.cpu_s_per_gib);
            fig.p50.push(p50);
            fig.p99.push(p99);
            if let Some((d50, d99)) = direct {
                fig.added_p50.push(p50 - d50);
                fig.added_p99.push(p99 - d99);
            }
            line += &format!(" {} {:.0} MB/s p99 {:.1} us;", p.name(), f.mb_s, p99);
            round.insert(
                p.name().to_string(),
                json!({"mb_s": f.mb_s, "recorded_mb_s": f.recorded_mb_s, "cpu_s_per_gib": f.cpu_s_per_gib, "p50_us": p50, "p99_us": p99}),
            );
        }
        round.insert(
            "order".to_string(),
            Value::from(order.iter().map(|&i| paths[i].name()).collect::<Vec<_>>()),
        );
        rounds_json.push(Value::Object(round));
        eprintln!("{line} load {}", loadavg());
    }

    let argv = race.unplug_argv.clone();
    let stop = race.stop().await;
    let journal_bytes: u64 = std::fs::read_dir(&journal_dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let load_after = loadavg();

    // The table.
    let mut out = String::new();
    out += &format!(
        "\nThe race ({started}; {} rounds, {} x 64-byte PUBLISH per flood = {:.1} MB, {} round trips per path per round; load average {load_before} before, {load_after} after)\n\n",
        args.rounds,
        args.publishes,
        (args.publishes * PACKET as u64) as f64 / 1e6,
        args.trips,
    );
    out += "| path | MB/s min / median / max | p50 us (median) | p99 us (median) | added p50 us | added p99 us min / median / max | CPU s/GiB min / median / max | CPU s/GiB over direct (median) |\n";
    out += "|---|---|---|---|---|---|---|---|\n";
    let direct_cpu = paths
        .iter()
        .position(|p| *p == Path::Direct)
        .map(|d| spread(&figs[d].cpu).1);
    let mut summary = serde_json::Map::new();
    for (i, p) in paths.iter().enumerate() {
        let f = &figs[i];
        let (m0, m1, m2) = spread(&f.mb_s);
        let (c0, c1, c2) = spread(&f.cpu);
        let (_, p50, _) = spread(&f.p50);
        let (_, p99, _) = spread(&f.p99);
        let added = |v: &[f64]| if v.is_empty() { None } else { Some(spread(v)) };
        let a50 = added(&f.added_p50);
        let a99 = added(&f.added_p99);
        out += &format!(
            "| {} | {m0:.1} / **{m1:.1}** / {m2:.1} | {p50:.1} | {p99:.1} | {} | {} | {c0:.2} / **{c1:.2}** / {c2:.2} | {} |\n",
            p.name(),
            a50.map(|a| format!("{:.1}", a.1)).unwrap_or("-".into()),
            a99.map(|a| format!("{:.1} / **{:.1}** / {:.1}", a.0, a.1, a.2)).unwrap_or("-".into()),
            direct_cpu.map(|d| format!("{:.2}", c1 - d)).unwrap_or("-".into()),
        );
        summary.insert(
            p.name().to_string(),
            json!({
                "mb_s": f.mb_s, "recorded_mb_s": f.recorded_mb_s, "cpu_s_per_gib": f.cpu, "p50_us": f.p50, "p99_us": f.p99,
                "added_p50_us": f.added_p50, "added_p99_us": f.added_p99,
            }),
        );
    }
    let at = |p: Path| paths.iter().position(|x| *x == p);
    let mut goals = serde_json::Map::new();
    if let (Some(u), Some(n)) = (at(Path::Unplug), at(Path::Noxious)) {
        // Per round: unplug against noxious in the same round.
        let share: Vec<f64> = figs[u]
            .mb_s
            .iter()
            .zip(&figs[n].mb_s)
            .map(|(a, b)| a / b)
            .collect();
        let (s0, s1, s2) = spread(&share);
        out += &format!(
            "\nunplug / noxious MB/s, per round: {:.1}% / median {:.1}% / {:.1}% (goal >= 50%: {})\n",
            s0 * 100.0,
            s1 * 100.0,
            s2 * 100.0,
            if s1 >= 0.5 { "met" } else { "MISSED" },
        );
        goals.insert("mb_s_share".into(), json!(share));
        if at(Path::Direct).is_some() {
            let extra: Vec<f64> = figs[u]
                .added_p99
                .iter()
                .zip(&figs[n].added_p99)
                .map(|(a, b)| a - b)
                .collect();
            let (e0, e1, e2) = spread(&extra);
            out += &format!(
                "unplug's added p99 minus noxious's, per round: {e0:.1} / median {e1:.1} / {e2:.1} us (goal <= 15 us: {})\n",
                if e1 <= 15.0 { "met" } else { "MISSED" },
            );
            let c: Vec<f64> = figs[u]
                .cpu
                .iter()
                .zip(&figs[n].cpu)
                .map(|(a, b)| a / b)
                .collect();
            let (_, c1, _) = spread(&c);
            out += &format!("unplug CPU per GiB / noxious's, median of rounds: {c1:.2}x\n");
            let rec: Vec<f64> = figs[u]
                .recorded_mb_s
                .iter()
                .zip(&figs[n].mb_s)
                .map(|(a, b)| a / b)
                .collect();
            if !rec.is_empty() {
                let (r0, r1, r2) = spread(&rec);
                let (_, m1, _) = spread(&figs[u].recorded_mb_s);
                out += &format!(
                    "unplug until its journal has the flood too (DISCONNECT recorded): median {m1:.1} MB/s, {:.1}% / median {:.1}% / {:.1}% of noxious's\n",
                    r0 * 100.0,
                    r1 * 100.0,
                    r2 * 100.0
                );
            }
            goals.insert("added_p99_minus_noxious_us".into(), json!(extra));
        }
        out += &format!(
            "unplug proxy's stop (Ctrl-C's work: journal settled, judged, drawn): {:.3} s; its journal files: {:.1} kB\n",
            stop.as_secs_f64(),
            journal_bytes as f64 / 1e3
        );
    }
    println!("{out}");
    if let Some(path) = &args.json {
        let v = json!({
            "started": started,
            "load_before": load_before,
            "load_after": load_after,
            "rounds": args.rounds,
            "publishes": args.publishes,
            "packet_bytes": PACKET,
            "trips": args.trips,
            "settle_ms": args.settle_ms,
            "unplug_argv": argv,
            "per_round": rounds_json,
            "paths": summary,
            "goals": goals,
            "unplug_stop_s": stop.as_secs_f64(),
            "unplug_journal_bytes": journal_bytes,
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The time now, UTC, to the second (no date crate needed).
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02} UTC")
}
