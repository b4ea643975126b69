//! The MQTT 5 connection willy drives itself: bytes from [`super::v5wire`] out, the broker's
//! packets in through the wire tap's decoder.
//!
//! It keeps rumqttc's keepalive rule so v4 and v5 runs are judged alike: a PINGREQ every
//! keepalive from the CONNACK, whatever else was sent, and "ping timeout" when the next one is
//! due while the last PINGRESP has not come. The keepalive is the one willy sent, or the
//! Server Keep Alive the CONNACK carries, which replaces it [MQTT-3.1.2-21].
//!
//! Over WebSocket, the HTTP upgrade is tungstenite's client handshake; the frames stay ours
//! (`v5wire::ws_frame` out, the tap's decoder in): willy's pings and the packets' exact bytes
//! are what a run measures, and the decoder must see every byte the broker sends.

use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

use super::v5wire;
use crate::broker::access::NO_CONNACK;
use crate::tap::{Decoded, Decoder, Direction, Fields, PacketKind};
use crate::tls::Stream;

/// One v5 connection to the broker (through the proxy).
pub struct Session {
    stream: Stream,
    decoder: Decoder,
    decoded: Vec<Decoded>,
    keepalive: Duration,
    next_ping: Instant,
    awaiting_pingresp: bool,
    /// A network write or read may take this long before the connection is called stuck.
    step: Duration,
    /// Over WebSocket: each packet goes out in a masked binary frame with this key.
    ws_mask: Option<[u8; 4]>,
    /// WebSocket pings of its own (seed 004): every this long, and the connection is given up
    /// when a pong does not come within the timeout.
    ws_pings: Option<WsPings>,
}

/// willy's WebSocket ping schedule, kept beside the MQTT keepalive.
#[derive(Debug, Clone, Copy)]
pub struct WsPings {
    pub every: Duration,
    pub pong_timeout: Option<Duration>,
    next: Instant,
    /// When the pong of the ping in flight is due.
    pong_due: Option<Instant>,
}

/// The CONNACK as willy saw it.
pub struct Connack {
    pub session_present: bool,
    pub code: u8,
    /// The Server Keep Alive it carried: the session pings by it from then on.
    pub server_keepalive_s: Option<u16>,
}

impl Session {
    /// Connect and wait for the CONNACK, all within `limit` (rumqttc's connection timeout).
    /// With `ws_path`, over WebSocket: the HTTP upgrade first, then every packet in a frame;
    /// the broker's side (the 101 answer, then frames) goes through the wire tap's decoder,
    /// which knows both.
    pub async fn connect(
        port: u16,
        ws_path: Option<&str>,
        connect: &[u8],
        keepalive: Duration,
        limit: Duration,
    ) -> Result<(Session, Connack), String> {
        Self::connect_at(port, ws_path, None, connect, keepalive, limit, 5).await
    }

    /// [`Session::connect`] speaking MQTT `level` (4: 3.1.1, 5), as the CONNECT it is given.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect_at(
        port: u16,
        ws_path: Option<&str>,
        tls: Option<&crate::tls::Trust>,
        connect: &[u8],
        keepalive: Duration,
        limit: Duration,
        level: u8,
    ) -> Result<(Session, Connack), String> {
        let deadline = Instant::now() + limit;
        let stream = Self::open_stream(port, tls, deadline).await?;
        let mut s = Session {
            stream,
            decoder: Decoder::new(Direction::Downstream, Arc::new(AtomicU8::new(level))),
            decoded: Vec::new(),
            keepalive,
            next_ping: Instant::now() + keepalive,
            awaiting_pingresp: false,
            step: limit,
            ws_mask: None,
            ws_pings: None,
        };
        if let Some(path) = ws_path {
            s.ws_handshake(port, path, deadline).await?;
        }
        s.write(connect).await?;
        let connack = s.read_connack(deadline).await?;
        if connack.code != 0 && level < 5 {
            return Err(format!(
                "{}CONNACK return code {}",
                crate::broker::access::REFUSED,
                connack.code
            ));
        }
        if connack.code != 0 {
            return Err(format!(
                "{}{}",
                crate::broker::access::REFUSED,
                crate::broker::access::v5_code_refusal(connack.code)
            ));
        }
        // [MQTT-3.1.2-21]: a Server Keep Alive in the CONNACK replaces the value willy sent.
        // 0 switches the mechanism off [MQTT-3.1.2-22 for the client's 0]: no pings at all.
        if let Some(k) = connack.server_keepalive_s {
            s.keepalive = match k {
                0 => Duration::from_secs(365 * 86_400),
                k => Duration::from_secs(u64::from(k)),
            };
        }
        s.next_ping = Instant::now() + s.keepalive;
        Ok((s, connack))
    }

    /// The TCP connection to the broker's `port`, TLS over it with `tls`, by `deadline`.
    async fn open_stream(
        port: u16,
        tls: Option<&crate::tls::Trust>,
        deadline: Instant,
    ) -> Result<Stream, String> {
        let tcp = timeout_at(deadline, TcpStream::connect(("127.0.0.1", port)))
            .await
            .map_err(|_| NO_CONNACK.to_string())?
            .map_err(|e| format!("I/O: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(match tls {
            None => Stream::Plain(tcp),
            Some(trust) => {
                let config = trust.client_config().map_err(|e| format!("TLS: {e:#}"))?;
                let name = trust.server_name().map_err(|e| format!("TLS: {e:#}"))?;
                let tls = timeout_at(
                    deadline,
                    tokio_rustls::TlsConnector::from(config).connect(name, tcp),
                )
                .await
                .map_err(|_| NO_CONNACK.to_string())?
                .map_err(|e| format!("TLS: {e}"))?;
                Stream::Client(Box::new(tls))
            }
        })
    }

    /// Read until the broker's CONNACK, by `deadline`; a refused WebSocket upgrade or a close
    /// before it is the error.
    async fn read_connack(&mut self, deadline: Instant) -> Result<Connack, String> {
        loop {
            let packets = match timeout_at(deadline, self.read_some()).await {
                Err(_) => return Err(NO_CONNACK.into()),
                Ok(Err(e)) if e.starts_with("connection closed") => {
                    return Err(crate::broker::access::closed_before_connack(true))
                }
                Ok(r) => r?,
            };
            if let Some(line) = packets.iter().find_map(|d| match d {
                Decoded::HttpUpgrade { line } if !line.contains(" 101") => Some(line.clone()),
                _ => None,
            }) {
                return Err(format!("the WebSocket upgrade was refused: {line}"));
            }
            if let Some(c) = packets.into_iter().find_map(|d| match d {
                Decoded::Packet(p) if p.kind == PacketKind::Connack => match p.fields {
                    Fields::Connack {
                        session_present,
                        code,
                        server_keepalive_s,
                    } => Some(Connack {
                        session_present,
                        code,
                        server_keepalive_s,
                    }),
                    _ => None,
                },
                _ => None,
            }) {
                return Ok(c);
            }
        }
    }

    /// The HTTP upgrade, by tungstenite's client handshake [RFC 6455 4.1]: it writes the
    /// request (a fresh key, and `Sec-WebSocket-Protocol: mqtt` [MQTT-6.0.0-3]) and checks the
    /// 101 (its Sec-WebSocket-Accept, Upgrade and Connection). Its handshake is a state machine
    /// over `Read + Write` that stops at WouldBlock, so it runs over buffers and this moves
    /// the bytes on our async stream (plain or TLS). What the broker answers also goes to the
    /// wire tap's decoder, which then reads the frames that follow. No frame goes out before
    /// the 101: tungstenite's server (rumqttd) fails the handshake on bytes after the request
    /// ("JunkAfterRequest").
    async fn ws_handshake(
        &mut self,
        port: u16,
        path: &str,
        deadline: Instant,
    ) -> Result<(), String> {
        use tungstenite::client::IntoClientRequest;
        use tungstenite::handshake::{client::ClientHandshake, HandshakeError};
        let mut request = format!("ws://127.0.0.1:{port}{path}")
            .into_client_request()
            .map_err(|e| format!("the WebSocket upgrade request: {e}"))?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static("mqtt"),
        );
        let mut mid = ClientHandshake::start(Buffers::default(), request, None)
            .map_err(|e| format!("the WebSocket upgrade request: {e}"))?;
        loop {
            match mid.handshake() {
                Ok(_) => break,
                Err(HandshakeError::Interrupted(m)) => mid = m,
                Err(HandshakeError::Failure(e)) => {
                    return Err(
                        match self.decoded.iter().find_map(|d| match d {
                            Decoded::HttpUpgrade { line } if !line.contains(" 101") => Some(line),
                            _ => None,
                        }) {
                            Some(line) => format!("the WebSocket upgrade was refused: {line}"),
                            None => format!("the WebSocket upgrade failed: {e}"),
                        },
                    )
                }
            }
            let out = std::mem::take(&mut mid.get_mut().get_mut().outbound);
            if !out.is_empty() {
                self.write(&out).await?;
            }
            let mut buf = [0u8; 4096];
            let n = match timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return Err(NO_CONNACK.into()),
                Ok(r) => r.map_err(|e| format!("I/O: {e}"))?,
            };
            if n == 0 {
                return Err("connection closed by the broker".into());
            }
            // The decoder keeps what it makes of these (the 101, any frame after it) for the
            // reads that follow.
            self.decoder.feed(&buf[..n], &mut self.decoded);
            mid.get_mut().get_mut().inbound.extend(&buf[..n]);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.ws_mask = Some((nanos ^ 0x5a5a_5a5a).to_be_bytes());
        Ok(())
    }

    /// Send a WebSocket ping every `every` from now on (WebSocket only), and give the
    /// connection up when its pong is not back within `pong_timeout`.
    pub fn ws_pings(&mut self, every: Duration, pong_timeout: Option<Duration>) {
        if self.ws_mask.is_some() {
            self.ws_pings = Some(WsPings {
                every,
                pong_timeout,
                next: Instant::now() + every,
                pong_due: None,
            });
        }
    }

    /// No PINGREQs from now on (`[willy] mqtt_pings = false`): the MQTT keepalive is silent,
    /// whatever else keeps the connection.
    pub fn mqtt_pings_off(&mut self) {
        self.keepalive = Duration::from_secs(365 * 86_400);
        self.next_ping = Instant::now() + self.keepalive;
    }

    /// A masked ping frame with an empty payload [RFC 6455 5.5.2].
    async fn write_ws_ping(&mut self) -> Result<(), String> {
        let mask = self.ws_mask.unwrap_or_default();
        let frame = [0x89, 0x80, mask[0], mask[1], mask[2], mask[3]];
        match timeout(self.step, async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await
        })
        .await
        {
            Err(_) => Err("timed out writing to the network".into()),
            Ok(r) => r.map_err(|e| format!("I/O: {e}")),
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        // The upgrade request goes out before the mask is set; everything after it is framed.
        let framed;
        let bytes = match self.ws_mask {
            Some(mask) => {
                framed = v5wire::ws_frame(bytes, mask);
                &framed[..]
            }
            None => bytes,
        };
        match timeout(self.step, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        {
            Err(_) => Err("timed out writing to the network".into()),
            Ok(r) => r.map_err(|e| format!("I/O: {e}")),
        }
    }

    async fn read_some(&mut self) -> Result<Vec<Decoded>, String> {
        let mut buf = [0u8; 4096];
        let n = self
            .stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("I/O: {e}"))?;
        if n == 0 {
            return Err("connection closed by the broker".into());
        }
        self.decoder.feed(&buf[..n], &mut self.decoded);
        Ok(std::mem::take(&mut self.decoded))
    }

    /// Keep the connection: read what comes, send PINGREQs when due, for `d`.
    pub async fn drive_for(&mut self, d: Duration) -> Result<(), String> {
        let until = Instant::now() + d;
        loop {
            let mut wake = self.next_ping.min(until);
            if let Some(w) = &self.ws_pings {
                wake = wake.min(w.next).min(w.pong_due.unwrap_or(wake));
            }
            match timeout_at(wake, self.read_some()).await {
                Ok(r) => {
                    for item in r? {
                        match item {
                            Decoded::WsControl {
                                opcode: crate::tap::WsOpcode::Pong,
                                ..
                            } => {
                                if let Some(w) = &mut self.ws_pings {
                                    w.pong_due = None;
                                }
                            }
                            Decoded::Packet(p) if p.kind == PacketKind::Pingresp => {
                                self.awaiting_pingresp = false
                            }
                            Decoded::Packet(p) if p.kind == PacketKind::Disconnect => {
                                let reason = match p.fields {
                                    Fields::Disconnect { reason } => reason.unwrap_or(0),
                                    _ => 0,
                                };
                                return Err(format!(
                                    "the broker sent DISCONNECT with reason 0x{reason:02x}"
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                Err(_)
                    if self
                        .ws_pings
                        .is_some_and(|w| w.pong_due.is_some_and(|d| Instant::now() >= d)) =>
                {
                    let t = self
                        .ws_pings
                        .and_then(|w| w.pong_timeout)
                        .unwrap_or_default();
                    return Err(format!(
                        "{} (no pong within {} ms of a ping)",
                        crate::event::ErrorKind::WsPongTimeout.text(),
                        t.as_millis()
                    ));
                }
                Err(_) if self.ws_pings.is_some_and(|w| Instant::now() >= w.next) => {
                    self.write_ws_ping().await?;
                    if let Some(w) = &mut self.ws_pings {
                        w.next += w.every;
                        if w.pong_due.is_none() {
                            w.pong_due = w.pong_timeout.map(|t| Instant::now() + t);
                        }
                    }
                }
                Err(_) if Instant::now() >= self.next_ping => {
                    if self.awaiting_pingresp {
                        return Err(
                            "ping timeout (no PINGRESP before the next PINGREQ was due)".into()
                        );
                    }
                    self.write(&v5wire::PINGREQ).await?;
                    self.awaiting_pingresp = true;
                    self.next_ping += self.keepalive;
                }
                Err(_) => return Ok(()),
            }
            if Instant::now() >= until {
                return Ok(());
            }
        }
    }
}

/// The bytes of tungstenite's client handshake: what it wrote, for us to send, and what the
/// broker answered, for it to read (WouldBlock until more comes).
#[derive(Default)]
struct Buffers {
    inbound: std::collections::VecDeque<u8>,
    outbound: Vec<u8>,
}

impl std::io::Read for Buffers {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inbound.is_empty() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        self.inbound.read(buf)
    }
}

impl std::io::Write for Buffers {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.outbound.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
