//! rumqttd 0.20, embedded: a v4 TCP listener and a WebSocket listener on free loopback ports.
//!
//! `Broker::start()` blocks forever and there is no way to stop it or to learn a bound port, so
//! the ports are chosen here, it runs on its own std thread for the rest of the process, and its
//! readiness is learned by connecting. Its tracing output becomes `mqtt` lines in the journal.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

use super::{hold_port, wait_until_accepting, Broker, Endpoints};
use crate::event::Journal;
use crate::tls::RunCerts;

/// The version we embed: Cargo.toml pins it exactly.
pub const VERSION: &str = "0.20.0";

/// The largest packet (remaining length) our rumqttd takes: its `max_payload_size`, checked
/// against each incoming packet's remaining length (rumqttd 0.20 src/protocol/v4/mod.rs
/// `check`), not preallocated. Room for the largest will a valid scenario can set (a
/// 65,535-byte topic and payload, `limits`); at the old 20 KiB a bigger will's CONNECT was
/// dropped and the run looped until its time limit.
pub const MAX_PACKET: usize = 256 * 1024;

static STARTED: AtomicBool = AtomicBool::new(false);

fn listener(name: &str, addr: SocketAddr) -> ServerSettings {
    ServerSettings {
        name: name.to_string(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_PACKET,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// A listener that serves the run's certificate. No `capath`: without rumqttd's
/// `verify-client-cert` feature (not built) it would be ignored, with a warning.
fn tls_listener(name: &str, addr: SocketAddr, certs: &RunCerts) -> ServerSettings {
    ServerSettings {
        tls: Some(rumqttd::TlsConfig::Rustls {
            capath: None,
            certpath: certs.cert.display().to_string(),
            keypath: certs.key.display().to_string(),
        }),
        ..listener(name, addr)
    }
}

/// The listeners' addresses, plain and TLS.
struct Ports {
    tcp: SocketAddr,
    ws: SocketAddr,
    v5: SocketAddr,
    tls: SocketAddr,
    wss: SocketAddr,
    v5_tls: SocketAddr,
}

fn config(p: &Ports, certs: &RunCerts) -> Config {
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            max_segment_size: 104_857_600,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([
            ("1".to_string(), listener("v4-1", p.tcp)),
            ("2".to_string(), tls_listener("v4-tls", p.tls, certs)),
        ])),
        ws: Some(HashMap::from([
            ("1".to_string(), listener("ws-1", p.ws)),
            ("2".to_string(), tls_listener("wss", p.wss, certs)),
        ])),
        // rumqttd's WebSocket listener speaks 3.1.1 only; MQTT 5 has these TCP listeners.
        v5: Some(HashMap::from([
            ("1".to_string(), listener("v5-1", p.v5)),
            ("2".to_string(), tls_listener("v5-tls", p.v5_tls, certs)),
        ])),
        ..Config::default()
    }
}

/// Start rumqttd in this process. A second call in the same process is a harness error.
pub async fn start(_journal: &Journal) -> anyhow::Result<Broker> {
    if STARTED.swap(true, Ordering::SeqCst) {
        anyhow::bail!("the builtin broker runs once per process (rumqttd has no shutdown API)");
    }
    // Held until rumqttd listens on them (see `PortHold`).
    let holds = [(); 6].map(|_| hold_port());
    let holds = holds.into_iter().collect::<Result<Vec<_>, _>>()?;
    let at: Vec<SocketAddr> = holds
        .iter()
        .map(|h| SocketAddr::from(([127, 0, 0, 1], h.port)))
        .collect();
    let ports = Ports {
        tcp: at[0],
        ws: at[1],
        v5: at[2],
        tls: at[3],
        wss: at[4],
        v5_tls: at[5],
    };
    // rumqttd reads its certificate files again for every TLS connection: they live as long
    // as the broker does (the run).
    let files = super::mosquitto::TempDir::new()?;
    let certs = RunCerts::generate(files.path(), &[])?;
    let cfg = config(&ports, &certs);
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(cfg);
            if let Err(e) = broker.start() {
                tracing::error!(target: "rumqttd", error = %e, "broker stopped");
            }
        })?;
    // Bind failures are only logged by rumqttd: a listener that never accepts is how we learn.
    let within = Duration::from_secs(10);
    // Each listener is probed by one connection that closes at once: rumqttd calls that an
    // ERROR, which is ours, not the broker's (logcapture keeps it as DEBUG).
    crate::logcapture::expect_probes(at.len());
    for addr in &at {
        wait_until_accepting(*addr, within).await?;
    }
    drop(holds);
    Ok(Broker {
        name: format!("rumqttd {VERSION} (builtin)"),
        endpoints: Endpoints {
            tcp: ports.tcp,
            ws: Some(ports.ws),
            ws_path: "/mqtt".to_string(),
            v5: Some(ports.v5),
            tls: Some(ports.tls),
            wss: Some(ports.wss),
            v5_tls: Some(ports.v5_tls),
            no_plain: false,
        },
        profile: super::profile::Profile::rumqttd(),
        process: None,
        trust: Some(certs.trust()),
        files: Some(files),
    })
}
