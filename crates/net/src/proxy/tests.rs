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
pub(super) async fn received(got: &mut mpsc::UnboundedReceiver<Vec<u8>>, want: usize) -> Vec<u8> {
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
        .filter(|r| matches!(&r.event, Event::PacketDropped { packet, .. } if packet == "PINGREQ"))
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

#[test]
fn a_share_picks_about_its_toxicity_of_the_connections_and_always_the_same_ones() {
    let half = super::Share {
        key: 3,
        toxicity: 0.5,
    };
    let picked = (1..=1000u64).filter(|&c| half.applies(c)).count();
    assert!((400..=600).contains(&picked), "{picked} of 1000");
    let rare = super::Share {
        key: 3,
        toxicity: 0.01,
    };
    // A lower toxicity picks a subset: the draw per connection is the same, the bar lower.
    assert!((1..=1000u64).all(|c| !rare.applies(c) || half.applies(c)));
    let other = super::Share {
        key: 4,
        toxicity: 0.5,
    };
    assert!((1..=1000u64).any(|c| other.applies(c) != half.applies(c)));
}

#[test]
fn loopback_sources_spread_over_127_8_never_127_0_0_1_and_are_distinct() {
    use super::loopback_source;
    let mut seen = std::collections::HashSet::new();
    for i in 0..200_000u64 {
        let a = loopback_source(i);
        let o = a.octets();
        assert_eq!(o[0], 127);
        assert!(o[1] >= 1 && o[3] >= 1 && o[3] <= 254, "{a}");
        assert!(seen.insert(a), "{i}: {a} twice");
    }
    assert_eq!(loopback_source(0).to_string(), "127.1.0.1");
}
