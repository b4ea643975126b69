//! The fleet's lean MQTT clients: one tokio task per willy, one for monit, no client library.
//!
//! ```text
//!  willy i: connect(proxy) -> CONNECT (id willy-i, will PREFIX/i) -> CONNACK (tap decoder)
//!           -> every keepalive from CONNECT: PINGREQ; whatever comes back is read and discarded
//!  monit:   connect(broker) -> CONNECT -> SUBSCRIBE PREFIX/+ -> SUBACK
//!           -> every PUBLISH: a `message_received` record (PUBACK for QoS 1)
//! ```
//!
//! A rumqttc event loop per device costs a task, channels and buffers each; the willies here
//! only need to connect, ping and be cut, so they write their few packets themselves (3.1.1
//! here, MQTT 5 through [`crate::actor::v5wire`]) and read with the wire tap's decoder.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::actor::v5wire;
use crate::event::{Actor, Event, Journal};
use crate::mqtt::{packet, string};
use crate::scenario::Protocol;
use crate::tap::{Decoded, Decoder, Direction, Fields, PacketKind};

/// A willy's read buffer: what it gets is a CONNACK and PINGRESPs.
pub const WILLY_BUF: usize = 256;

/// monit's read buffer: a will storm comes in bursts of thousands, and every will read at once
/// is recorded before the task yields; 4 KiB (about 170 wills) keeps that under a few ms.
pub const MONIT_BUF: usize = 4 * 1024;

/// PINGREQ: `c0 00`.
const PINGREQ: [u8; 2] = [0xc0, 0x00];

/// What a CONNECT says, besides the protocol.
pub struct Hello<'a> {
    pub client_id: &'a str,
    pub keepalive_s: u16,
    /// Will topic, payload and QoS.
    pub will: Option<(&'a str, &'a [u8], u8)>,
}

/// A clean-session CONNECT in `protocol`.
pub fn connect(protocol: Protocol, h: &Hello) -> Vec<u8> {
    let will = h.will.map(|(topic, payload, qos)| v5wire::Will {
        topic,
        payload,
        qos,
        retain: false,
        delay_s: None,
        content_type: None,
    });
    match protocol {
        Protocol::V5 => v5wire::connect(h.client_id, h.keepalive_s, true, None, will.as_ref()),
        _ => crate::actor::v311wire::connect(h.client_id, h.keepalive_s, true, will.as_ref(), None),
    }
}

/// SUBSCRIBE to one filter, packet id 1.
pub fn subscribe(protocol: Protocol, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = vec![0, 1];
    if protocol == Protocol::V5 {
        body.push(0); // no properties
    }
    string(filter.as_bytes(), &mut body);
    body.push(qos);
    packet(0x82, &body)
}

/// A reader of the packets one client receives: the wire tap's decoder, at a known level.
pub struct Incoming {
    decoder: Decoder,
    out: Vec<Decoded>,
    buf: Vec<u8>,
}

impl Incoming {
    /// A reader with a buffer of `buf` bytes: a willy only ever gets a CONNACK and PINGRESPs
    /// (small, so 4,000 of them stay small); monit gets bursts of wills ([`MONIT_BUF`]).
    pub fn new(protocol: Protocol, buf: usize) -> Incoming {
        let level = match protocol {
            Protocol::V311 => 4,
            Protocol::V5 => 5,
        };
        Incoming {
            decoder: Decoder::new(Direction::Downstream, Arc::new(AtomicU8::new(level))),
            out: Vec::new(),
            buf: vec![0; buf],
        }
    }

    /// Read once and decode: the packets that became complete (empty at end of stream is
    /// `Ok(None)`).
    pub async fn read(&mut self, s: &mut TcpStream) -> std::io::Result<Option<&[Decoded]>> {
        let n = s.read(&mut self.buf).await?;
        if n == 0 {
            return Ok(None);
        }
        self.out.clear();
        self.decoder.feed(&self.buf[..n], &mut self.out);
        Ok(Some(&self.out))
    }

    /// Read until a packet of `kind` comes; its fields.
    pub async fn until(&mut self, s: &mut TcpStream, kind: PacketKind) -> anyhow::Result<Fields> {
        loop {
            let Some(got) = self.read(s).await? else {
                anyhow::bail!("the broker closed the connection before {}", kind.as_str());
            };
            for d in got {
                match d {
                    Decoded::Packet(p) if p.kind == kind => return Ok(p.fields.clone()),
                    Decoded::Undecodable { reason, .. } => {
                        anyhow::bail!("undecodable bytes from the broker: {reason}")
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A connection the broker accepted.
pub struct Open {
    pub stream: TcpStream,
    pub incoming: Incoming,
    /// When CONNECT was written: the client's keepalive counts from its last packet sent
    /// [MQTT-3.1.2-23], not from the CONNACK, which a busy broker may send seconds later.
    pub sent_at: tokio::time::Instant,
}

/// Open a connection (from source address `from`, if given) and get a CONNACK that accepts
/// it, within `timeout`.
pub async fn open(
    addr: SocketAddr,
    from: Option<std::net::Ipv4Addr>,
    protocol: Protocol,
    hello: &[u8],
    timeout: Duration,
    buf: usize,
) -> anyhow::Result<Open> {
    let attempt = async {
        let mut s = match from {
            Some(ip) => crate::proxy::connect_from(ip, addr).await?,
            None => TcpStream::connect(addr).await?,
        };
        let _ = s.set_nodelay(true);
        s.write_all(hello).await?;
        let sent_at = tokio::time::Instant::now();
        let mut incoming = Incoming::new(protocol, buf);
        match incoming.until(&mut s, PacketKind::Connack).await? {
            Fields::Connack { code: 0, .. } => Ok(Open {
                stream: s,
                incoming,
                sent_at,
            }),
            Fields::Connack { code, .. } => anyhow::bail!("CONNACK refused it: code {code:#04x}"),
            _ => anyhow::bail!("a CONNACK without its fields"),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| anyhow::anyhow!("no CONNACK within {} s", timeout.as_secs_f64()))?
}

/// A willy once connected: ping every keepalive from its CONNECT, discard what comes back,
/// until the run aborts the task (a blackhole keeps the socket open, so nothing else ends it).
pub async fn keep_alive(open: Open, keepalive: Duration) {
    let Open {
        stream: mut s,
        mut incoming,
        sent_at,
    } = open;
    let mut next = sent_at + keepalive;
    loop {
        tokio::select! {
            r = incoming.read(&mut s) => match r {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            },
            _ = tokio::time::sleep_until(next) => {
                if s.write_all(&PINGREQ).await.is_err() {
                    return;
                }
                next += keepalive;
            }
        }
    }
}

/// monit for a fleet: subscribed to every will, recording each as it arrives. Says on `ready`
/// once the broker granted the subscription.
pub async fn monit(
    broker: SocketAddr,
    protocol: Protocol,
    filter: String,
    qos: u8,
    journal: Journal,
    client_id: String,
    ready: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) {
    // monit's own keepalive: long, and pinged well within it.
    const KEEPALIVE: Duration = Duration::from_secs(60);
    let hello = connect(
        protocol,
        &Hello {
            client_id: &client_id,
            keepalive_s: KEEPALIVE.as_secs() as u16,
            will: None,
        },
    );
    let started = monit_subscribed(broker, protocol, &hello, &filter, qos, &journal);
    let (mut s, mut incoming) = match started.await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut next_ping = Instant::now() + KEEPALIVE / 3;
    let mut acks = Vec::new();
    loop {
        let got = tokio::select! {
            r = incoming.read(&mut s) => r,
            _ = tokio::time::sleep_until(next_ping.into()) => {
                next_ping += KEEPALIVE / 3;
                let _ = s.write_all(&PINGREQ).await;
                continue;
            }
        };
        let Ok(Some(got)) = got else {
            journal.record(
                Actor::Monit,
                Event::ConnectionFailed {
                    error: "the broker closed monit's connection".to_string(),
                },
            );
            return;
        };
        // Every will of one read arrived together: stamped with the read, not with the moment
        // its record is made (a burst of thousands takes the journal a while).
        let (at, t) = (Instant::now(), chrono::Utc::now());
        acks.clear();
        record_wills(&journal, got, at, t, &mut acks);
        if !acks.is_empty() && s.write_all(&acks).await.is_err() {
            return;
        }
        // Let the proxy's links and the lag probe in between two bursts.
        tokio::task::yield_now().await;
    }
}

/// monit connected and subscribed to `filter` (its SUBACK granting it), recorded.
async fn monit_subscribed(
    broker: SocketAddr,
    protocol: Protocol,
    hello: &[u8],
    filter: &str,
    qos: u8,
    journal: &Journal,
) -> anyhow::Result<(TcpStream, Incoming)> {
    let Open {
        stream: mut s,
        mut incoming,
        ..
    } = open(
        broker,
        None,
        protocol,
        hello,
        Duration::from_secs(10),
        MONIT_BUF,
    )
    .await?;
    s.write_all(&subscribe(protocol, filter, qos)).await?;
    match incoming.until(&mut s, PacketKind::Suback).await? {
        Fields::Suback { codes, .. } if codes.iter().all(|&c| c < 0x80) => {}
        f => anyhow::bail!("the broker refused monit's subscription to {filter}: {f:?}"),
    }
    journal.record(
        Actor::Monit,
        Event::Subscribed {
            filter: filter.to_string(),
        },
    );
    Ok((s, incoming))
}

/// Every PUBLISH of one read recorded as received at (`at`, `t`); the PUBACKs its QoS 1 ones
/// need appended to `acks`.
fn record_wills(
    journal: &Journal,
    got: &[Decoded],
    at: Instant,
    t: chrono::DateTime<chrono::Utc>,
    acks: &mut Vec<u8>,
) {
    for d in got {
        if let Decoded::Packet(p) = d {
            if let Fields::Publish {
                topic,
                qos,
                retain,
                packet_id,
                payload_len,
                ..
            } = &p.fields
            {
                journal.record_at(
                    at,
                    t,
                    Actor::Monit,
                    Event::MessageReceived {
                        topic: topic.clone(),
                        // The fleet's monit reads topics; the payload only by its size.
                        payload: format!("({payload_len} bytes)"),
                        retain: *retain,
                        qos: *qos,
                    },
                );
                if let (1, Some(id)) = (qos, packet_id) {
                    let [a, b] = id.to_be_bytes();
                    acks.extend_from_slice(&[0x40, 0x02, a, b]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_311_connect_is_laid_out_as_the_spec_says() {
        let c = connect(
            Protocol::V311,
            &Hello {
                client_id: "w",
                keepalive_s: 4,
                will: Some(("t/1", b"x", 1)),
            },
        );
        // 10 RL | 00 04 MQTT 04 flags(clean, will, qos 1) 00 04 | 00 01 w | 00 03 t/1 | 00 01 x
        let want = [
            0x10, 21, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x0e, 0, 4, 0, 1, b'w', 0, 3, b't', b'/',
            b'1', 0, 1, b'x',
        ];
        assert_eq!(c, want);
    }

    #[test]
    fn the_tap_decodes_our_own_connect_and_subscribe() {
        for protocol in [Protocol::V311, Protocol::V5] {
            let level = Arc::new(AtomicU8::new(0));
            let mut d = Decoder::new(Direction::Upstream, level);
            let mut out = Vec::new();
            let hello = Hello {
                client_id: "willy-00001",
                keepalive_s: 4,
                will: Some(("fleet/will/00001", b"gone", 0)),
            };
            d.feed(&connect(protocol, &hello), &mut out);
            d.feed(&subscribe(protocol, "fleet/will/+", 1), &mut out);
            let kinds: Vec<_> = out
                .iter()
                .map(|x| match x {
                    Decoded::Packet(p) => p.kind,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(kinds, [PacketKind::Connect, PacketKind::Subscribe]);
            match &out[0] {
                Decoded::Packet(p) => match &p.fields {
                    Fields::Connect {
                        client_id, will, ..
                    } => {
                        assert_eq!(client_id, "willy-00001");
                        assert_eq!(will.as_ref().unwrap().topic, "fleet/will/00001");
                    }
                    f => panic!("{f:?}"),
                },
                _ => unreachable!(),
            }
        }
    }
}
