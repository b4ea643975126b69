//! Forward first, record after: how many writes a chunk takes, and that the recorder,
//! however far behind, loses nothing and keeps each connection's order.

use super::tests::received;
use super::*;
use crate::mqtt::PacketKind;
use crate::scenario::Direction;
use crate::tap::Fields;
use std::time::Duration;

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
        .filter(|r| {
            matches!(
                &r.event,
                Event::Packet {
                    kind: PacketKind::Publish,
                    ..
                }
            )
        })
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
        .filter(|r| matches!(&r.event, Event::PacketDropped { packet, .. } if packet == "PINGREQ"))
        .count();
    let wire: Vec<(String, bool)> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Packet { kind, dropped, .. } => Some((kind.as_str().to_string(), *dropped)),
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
            Event::Packet {
                fields: Fields::Publish { topic, .. },
                ..
            } => Some(topic.clone()),
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
