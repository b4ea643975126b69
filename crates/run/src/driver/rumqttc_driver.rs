//! rumqttc as a willy driver: `unplug driver-rumqttc` (hidden) speaks the line protocol of
//! [`super::protocol`] with rumqttc 0.25.1, so rumqttc can run as a process of its own, inside
//! willy's network namespace, for a kernel cut (`--willy rumqttc --cut kernel|link`). With the
//! proxy cut rumqttc stays in the runner's process (`actor/willy.rs`).
//!
//! ```text
//!  stdin: connect  -> the last connection's EventLoop dropped (no DISCONNECT), a new one
//!                     polled on a task: its first poll is the CONNACK (connected) or the
//!                     error (connection_failed, rumqttc's words)
//!         publish  -> try_publish; the EventLoop's Outgoing::Publish -> published
//!         disconnect -> try_disconnect; Outgoing::Disconnect (DISCONNECT written, the call
//!                     is back: disconnect_returned) -> EventLoop dropped (closed)
//!         quit     -> exit
//!  a poll's error on an established connection -> disconnected (rumqttc's words)
//! ```
//!
//! Like the built-in willy, rumqttc never reconnects on its own here: each EventLoop is polled
//! until its first error and then dropped; the runner decides when to connect again.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::{AsyncClient, ConnectionError, EventLoop, LastWill, MqttOptions, Outgoing, QoS};
use tokio::task::JoinHandle;

use super::protocol::{Command, ReportKind};

/// The library and its version (Cargo.toml pins `rumqttc = "=0.25.1"`; a unit test holds
/// the two together).
pub const LIBRARY: &str = "rumqttc 0.25.1";

/// Writes reports, one whole line at a time, stamped on the driver's monotonic clock.
#[derive(Clone)]
struct Out {
    t0: Instant,
    lock: Arc<Mutex<()>>,
}

impl Out {
    fn report(&self, kind: ReportKind, says: String, extra: &[(&str, serde_json::Value)]) {
        let mut v = serde_json::json!({
            "report": kind,
            "ms": crate::event::ms_of(self.t0.elapsed()),
            "says": says,
        });
        for (k, x) in extra {
            v[*k] = x.clone();
        }
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{v}");
        let _ = o.flush();
    }
}

/// rumqttc's own words for an error: its Display, and the variant.
fn says(e: &ConnectionError) -> String {
    format!("{e} ({e:?})")
}

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// One connection: its client, the publishes handed to it (topic, payload) in order, and the
/// task polling its EventLoop (aborting it drops the EventLoop and so the socket).
struct Conn {
    client: AsyncClient,
    publishes: Arc<Mutex<VecDeque<(String, String)>>>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The options a `connect` command asks for; an error for a URL rumqttc cannot take.
fn options(c: &Command) -> anyhow::Result<(MqttOptions, u64)> {
    let Command::Connect {
        url,
        client_id,
        keepalive_s,
        clean,
        connect_timeout_ms,
        will,
        username,
        password,
        tls,
    } = c
    else {
        anyhow::bail!("not a connect command");
    };
    let (scheme, rest) = url.split_once("://").context("a URL scheme://host:port")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = hostport.rsplit_once(':').context("a port in the URL")?;
    let port: u16 = port.parse().context("a port number in the URL")?;
    let tls = match tls {
        Some(t) => Some(t.trust().client_config()?),
        None => None,
    };
    let needs_tls = || {
        tls.clone()
            .context("a TLS URL without its `tls` in the connect")
    };
    let mut o = match scheme {
        "mqtt" | "tcp" => MqttOptions::new(client_id, host, port),
        "ws" => {
            let mut o = MqttOptions::new(client_id, url.clone(), port);
            o.set_transport(rumqttc::Transport::Ws);
            o
        }
        "mqtts" => {
            let mut o = MqttOptions::new(client_id, host, port);
            o.set_transport(crate::broker::access::rumqttc_tls(needs_tls()?));
            o
        }
        "wss" => {
            let mut o = MqttOptions::new(client_id, url.clone(), port);
            o.set_transport(rumqttc::Transport::Wss(rumqttc::TlsConfiguration::Rustls(
                needs_tls()?,
            )));
            o
        }
        other => {
            anyhow::bail!("scheme {other}: rumqttc here speaks mqtt://, ws://, mqtts:// and wss://")
        }
    };
    o.set_keep_alive(Duration::from_secs(*keepalive_s));
    o.set_clean_session(*clean);
    let max = crate::limits::CLIENT_MAX_PACKET;
    o.set_max_packet_size(max, max);
    if let Some(u) = username {
        o.set_credentials(u.clone(), password.clone().unwrap_or_default());
    }
    if let Some(w) = will {
        o.set_last_will(LastWill::new(
            &w.topic,
            w.payload.as_bytes().to_vec(),
            qos(w.qos),
            w.retain,
        ));
    }
    // rumqttc's connection timeout is whole seconds (TCP or WebSocket connect and CONNACK).
    Ok((o, connect_timeout_ms.div_ceil(1000).max(1)))
}

/// Poll one connection's EventLoop: the CONNACK or the failure first, then every
/// PUBLISH and the DISCONNECT written, until its first error or its DISCONNECT.
async fn poll(
    mut el: EventLoop,
    out: Out,
    publishes: Arc<Mutex<VecDeque<(String, String)>>>,
    ending: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    match el.poll().await {
        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(c))) => out.report(
            ReportKind::Connected,
            format!(
                "ConnAck {{ session_present: {}, code: {:?} }}",
                c.session_present, c.code
            ),
            &[("session_present", c.session_present.into())],
        ),
        Ok(other) => {
            out.report(
                ReportKind::ConnectionFailed,
                format!("the first event was not the CONNACK: {other:?}"),
                &[],
            );
            return;
        }
        Err(e) => {
            out.report(ReportKind::ConnectionFailed, says(&e), &[]);
            return;
        }
    }
    loop {
        match el.poll().await {
            Ok(rumqttc::Event::Outgoing(Outgoing::Publish(pkid))) => {
                let (topic, payload) = publishes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop_front()
                    .unwrap_or_default();
                out.report(
                    ReportKind::Published,
                    format!("Outgoing::Publish({pkid}): {payload} written"),
                    &[("topic", topic.into())],
                );
            }
            Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) => {
                out.report(
                    ReportKind::DisconnectReturned,
                    "Outgoing::Disconnect (the DISCONNECT written and flushed)".to_string(),
                    &[],
                );
                // A client closes its network connection after DISCONNECT [MQTT-3.14.4-1].
                drop(el);
                out.report(
                    ReportKind::Closed,
                    "the EventLoop dropped: its socket closed".to_string(),
                    &[],
                );
                return;
            }
            Ok(_) => {}
            // Lost, asked to disconnect or not: a disconnect asked for but not yet written is
            // lost with it (as the in-process willy's is), so the runner hears it now rather
            // than waiting for a disconnect_returned that cannot come.
            Err(e) => {
                let says = if ending.load(Ordering::SeqCst) {
                    format!("{} (before the DISCONNECT was written)", says(&e))
                } else {
                    says(&e)
                };
                out.report(ReportKind::Disconnected, says, &[]);
                return;
            }
        }
    }
}

/// The hidden `driver-rumqttc` subcommand.
pub fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let out = Out {
        t0: Instant::now(),
        lock: Arc::new(Mutex::new(())),
    };
    out.report(
        ReportKind::Ready,
        format!("{LIBRARY} (unplug {}'s own)", env!("CARGO_PKG_VERSION")),
        &[],
    );
    // Commands from a thread of their own (stdin blocks): EOF or a read error ends the channel.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut current: Option<(Conn, Arc<std::sync::atomic::AtomicBool>)> = None;
    while let Some(line) = lines.recv().await {
        let cmd: Command = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(e) => {
                out.report(ReportKind::BadCommand, format!("{e}: {line}"), &[]);
                continue;
            }
        };
        match &cmd {
            Command::Connect { .. } => {
                // The last connection goes without a DISCONNECT (its task aborted: the
                // EventLoop and its socket dropped).
                current = None;
                let (o, timeout_s) = match options(&cmd) {
                    Ok(x) => x,
                    Err(e) => {
                        out.report(ReportKind::ConnectionFailed, format!("{e:#}"), &[]);
                        continue;
                    }
                };
                let (client, mut el) = AsyncClient::new(o, 16);
                let mut net = el.network_options();
                net.set_connection_timeout(timeout_s);
                el.set_network_options(net);
                let publishes = Arc::new(Mutex::new(VecDeque::new()));
                let ending = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let task = tokio::spawn(poll(el, out.clone(), publishes.clone(), ending.clone()));
                current = Some((
                    Conn {
                        client,
                        publishes,
                        task,
                    },
                    ending,
                ));
            }
            Command::Publish {
                topic,
                payload,
                qos: q,
                retain,
            } => {
                let Some((c, _)) = &current else {
                    out.report(ReportKind::BadCommand, "publish before connect".into(), &[]);
                    continue;
                };
                c.publishes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back((topic.clone(), payload.clone()));
                if let Err(e) =
                    c.client
                        .try_publish(topic, qos(*q), *retain, payload.as_bytes().to_vec())
                {
                    out.report(
                        ReportKind::PublishFailed,
                        format!("try_publish: {e}"),
                        &[("topic", topic.clone().into())],
                    );
                }
            }
            Command::Disconnect => {
                let Some((c, ending)) = &current else {
                    out.report(
                        ReportKind::BadCommand,
                        "disconnect before connect".into(),
                        &[],
                    );
                    continue;
                };
                ending.store(true, std::sync::atomic::Ordering::SeqCst);
                if let Err(e) = c.client.try_disconnect() {
                    // The EventLoop is gone (the connection was lost): nothing to write.
                    out.report(
                        ReportKind::DisconnectReturned,
                        format!("try_disconnect: {e}"),
                        &[],
                    );
                }
            }
            Command::Quit => break,
        }
    }
    drop(current);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_version_is_the_one_built() {
        let lock = include_str!("../../../../Cargo.lock");
        let version = LIBRARY.strip_prefix("rumqttc ").unwrap();
        assert!(
            lock.contains(&format!("name = \"rumqttc\"\nversion = \"{version}\"")),
            "Cargo.lock has another rumqttc than {LIBRARY}"
        );
    }

    #[test]
    fn urls_become_rumqttc_options() {
        let connect = |url: &str| Command::Connect {
            url: url.into(),
            client_id: "willy".into(),
            keepalive_s: 2,
            clean: true,
            connect_timeout_ms: 4500,
            will: None,
            username: None,
            password: None,
            tls: None,
        };
        let (o, t) = options(&connect("mqtt://10.222.0.1:4000")).unwrap();
        assert_eq!(o.broker_address(), ("10.222.0.1".to_string(), 4000));
        assert_eq!(t, 5);
        let (o, _) = options(&connect("ws://10.222.0.1:4001/mqtt")).unwrap();
        assert_eq!(
            o.broker_address(),
            ("ws://10.222.0.1:4001/mqtt".to_string(), 4001)
        );
        // Over TLS only with what to trust.
        assert!(options(&connect("mqtts://h:1")).is_err());
        assert!(options(&connect("quic://h:1")).is_err());
    }
}
