//! Proxy added latency: a request/response over loopback, straight to an echo server vs through
//! the proxy with the wire tap decoding every packet. Prints p50/p99 of each and the difference.
//!
//!   cargo bench --bench proxy            (release; 20,000 round trips each way)
//!
//! Each request is a 22-byte MQTT PUBLISH, so the tap has real packets to decode and record.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use unplug::event::Journal;
use unplug::proxy::Proxy;

async fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

fn publish() -> Vec<u8> {
    let mut p = vec![0x30, 20, 0, 14];
    p.extend_from_slice(b"test/connected");
    p.extend_from_slice(b"true");
    p.extend_from_slice(b"!!");
    p
}

async fn round_trips(addr: std::net::SocketAddr, n: usize) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = publish();
    let mut resp = vec![0u8; req.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&req).await.unwrap();
        s.read_exact(&mut resp).await.unwrap();
        out.push(t.elapsed());
    }
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let n: usize = if cfg!(debug_assertions) { 200 } else { 20_000 };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let echo = echo_server().await;
        let proxy = Proxy::start(echo, Journal::in_memory()).await.unwrap();
        // Warm up both paths.
        round_trips(echo, 500.min(n)).await;
        round_trips(proxy.addr, 500.min(n)).await;
        let mut direct = round_trips(echo, n).await;
        let mut proxied = round_trips(proxy.addr, n).await;
        direct.sort();
        proxied.sort();
        let (d50, d99) = (pct(&direct, 0.5), pct(&direct, 0.99));
        let (p50, p99) = (pct(&proxied, 0.5), pct(&proxied, 0.99));
        println!("round trip direct:       p50 {d50:.1} us  p99 {d99:.1} us  ({n} trips)");
        println!(
            "round trip through proxy: p50 {p50:.1} us  p99 {p99:.1} us  (tap on, both directions)"
        );
        println!(
            "added by the proxy:       p50 {:.1} us  p99 {:.1} us",
            p50 - d50,
            p99 - d99
        );
    });
}
