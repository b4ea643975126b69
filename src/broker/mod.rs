//! Brokers: where willy's proxy and monit connect.
//!
//! ```text
//!  BrokerChoice --start--> Broker { name, endpoints, (a guard that stops it) }
//!      builtin:  rumqttd in this process, on free loopback ports (no shutdown API: one per process)
//! ```
//!
//! A broker is only ever reached through its [`Endpoints`]; nothing else in the run knows which
//! broker it is, except the profile the checks read.

pub mod builtin;
pub mod profile;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::event::Journal;

/// Where a broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// MQTT 3.1.1 over plain TCP.
    pub tcp: SocketAddr,
    /// MQTT over WebSocket, if the broker has such a listener.
    pub ws: Option<SocketAddr>,
    /// The HTTP path of the WebSocket endpoint.
    pub ws_path: String,
}

/// A broker the run uses. Dropping it stops it, where stopping is possible.
pub struct Broker {
    /// What it is, with its version: goes into summary.json `broker`.
    pub name: String,
    pub endpoints: Endpoints,
    /// Its timing model and known deviations.
    pub profile: profile::Profile,
}

/// Which broker to run against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChoice {
    /// rumqttd, in-process.
    Builtin,
}

/// Start the chosen broker and wait until it accepts connections.
pub async fn start(choice: &BrokerChoice, journal: &Journal) -> anyhow::Result<Broker> {
    match choice {
        BrokerChoice::Builtin => builtin::start(journal).await,
    }
}

/// A port nothing listens on right now. Another process could take it before we bind it; on a
/// loopback-only test machine that race has not been seen, and a bind failure is reported.
pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Poll-connect until `addr` accepts, closing each probe at once: rumqttd's WebSocket listener
/// does its handshake inside the accept loop, so an idle probe would block every later client.
pub async fn wait_until_accepting(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let probe = tokio::task::spawn_blocking(move || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        })
        .await?;
        match probe {
            Ok(s) => {
                drop(s);
                return Ok(());
            }
            Err(e) if Instant::now() >= deadline => {
                anyhow::bail!(
                    "the broker does not accept connections on {addr} after {within:?}: {e}"
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
