//! Brokers: where willy's proxy and monit connect.
//!
//! ```text
//!  BrokerChoice --start--> Broker { name, endpoints, (a guard that stops it) }
//!      builtin:   rumqttd in this process, on free loopback ports (no shutdown API: one per process)
//!      mosquitto: a child process with our config on free loopback ports; stopped and reaped
//!      url:       a broker someone else runs; only the endpoints the user listed exist
//! ```
//!
//! A broker is only ever reached through its [`Endpoints`]; nothing else in the run knows which
//! broker it is, except the profile the checks read.

pub mod access;
pub mod builtin;
pub mod mosquitto;
pub use crate::profile;
pub mod recognise;
pub mod url;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
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
    /// MQTT 5 over TCP when it has a listener of its own (rumqttd); None: `tcp` speaks both.
    pub v5: Option<SocketAddr>,
    /// MQTT over TLS, if the broker has such a listener.
    pub tls: Option<SocketAddr>,
    /// MQTT over WebSocket over TLS (its path is `ws_path`), if it has one.
    pub wss: Option<SocketAddr>,
    /// MQTT 5 over TLS when it has a listener of its own (rumqttd); None: `tls` speaks both.
    pub v5_tls: Option<SocketAddr>,
    /// The broker takes TLS only (a URL broker without tcp://): `tcp` is its TLS listener.
    pub no_plain: bool,
}

impl Endpoints {
    /// The TCP listener for clients of `protocol`.
    pub fn tcp_for(&self, protocol: crate::scenario::Protocol) -> SocketAddr {
        match protocol {
            crate::scenario::Protocol::V5 => self.v5.unwrap_or(self.tcp),
            crate::scenario::Protocol::V311 => self.tcp,
        }
    }

    /// Where willy's proxy forwards to for a scenario over `transport` speaking `protocol`;
    /// `name` is the broker's, for the error when it has no such listener.
    pub fn for_willy(
        &self,
        name: &str,
        transport: Transport,
        protocol: Protocol,
    ) -> anyhow::Result<SocketAddr> {
        let missing = |what: &str| anyhow::anyhow!("{name} has no {what} listener");
        // A broker with an MQTT 5 listener of its own (rumqttd) speaks 3.1.1 on the others.
        if transport.is_ws() && protocol == Protocol::V5 && self.v5.is_some() {
            anyhow::bail!(
                "{name}: its WebSocket listener speaks MQTT 3.1.1 only; run MQTT 5 over WebSocket on mosquitto or a broker given by URL"
            )
        }
        if self.no_plain && !transport.is_tls() {
            anyhow::bail!("{name} was given by TLS URLs only: run it with --transport tls or wss");
        }
        match transport {
            Transport::Tcp => Ok(self.tcp_for(protocol)),
            Transport::Ws => self.ws.ok_or_else(|| missing("WebSocket (ws://)")),
            Transport::Tls => self
                .tls_for(protocol)
                .ok_or_else(|| missing("TLS (mqtts://)")),
            Transport::Wss => self
                .wss
                .ok_or_else(|| missing("WebSocket over TLS (wss://)")),
        }
    }

    /// The TLS listener for clients of `protocol`, if there is one.
    pub fn tls_for(&self, protocol: Protocol) -> Option<SocketAddr> {
        match protocol {
            Protocol::V5 => self.v5_tls.or(self.tls),
            Protocol::V311 => self.tls,
        }
    }

    /// The endpoints monit and the other clients of the run use: a TLS run's clients all
    /// speak TLS, so its plain-TCP slots point at the TLS listeners (the clients take TLS
    /// from [`access::set_tls`]).
    pub fn for_clients(&self, name: &str, transport: Transport) -> anyhow::Result<Endpoints> {
        if !transport.is_tls() {
            if self.no_plain {
                anyhow::bail!(
                    "{name} was given by TLS URLs only: run it with --transport tls or wss"
                );
            }
            return Ok(self.clone());
        }
        let tls = self
            .tls
            .ok_or_else(|| anyhow::anyhow!("{name} has no TLS (mqtts://) listener for monit"))?;
        Ok(Endpoints {
            tcp: tls,
            v5: self.v5_tls,
            ..self.clone()
        })
    }
}

use crate::scenario::{Protocol, Transport};

/// A broker the run uses. Dropping it stops it, where stopping is possible.
pub struct Broker {
    /// What it is, with its version: goes into summary.json `broker`.
    pub name: String,
    pub endpoints: Endpoints,
    /// Its timing model and known deviations.
    pub profile: profile::Profile,
    /// The child process, for a broker we started (mosquitto): stopped by `stop` or on drop.
    pub process: Option<mosquitto::Process>,
    /// How our clients check its TLS listeners: the run's CA, or what the user said.
    pub trust: Option<crate::tls::Trust>,
    /// The private dir its files are in, removed with it (the builtin's certificates).
    pub files: Option<mosquitto::TempDir>,
}

impl Broker {
    /// Stop a broker we started and reap it; nothing to do for the others.
    pub async fn stop(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.stop().await;
        }
        self.process = None;
    }
}

/// The environment variable a parent hands its child runs the broker's password in.
pub const CHILD_PASSWORD_ENV: &str = "UNPLUG_CHILD_BROKER_PASSWORD";

use url::{BrokerUrls, Login};

/// Which broker to run against.
#[derive(Debug, Clone, PartialEq, Eq)]
// Made once per command from its flags: the URL variant's size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum BrokerChoice {
    /// rumqttd, in-process.
    Builtin,
    /// mosquitto as a child process; the binary given, or found on PATH or in /usr/sbin.
    Mosquitto { bin: Option<PathBuf> },
    /// A broker someone else runs.
    Url(url::BrokerUrls),
}

impl BrokerChoice {
    /// Parse `--broker`: `builtin`, `mosquitto`, or a comma-separated URL list.
    pub fn parse(arg: &str) -> Result<BrokerChoice, url::UrlError> {
        match arg.trim() {
            "builtin" | "rumqttd" => Ok(BrokerChoice::Builtin),
            "mosquitto" => Ok(BrokerChoice::Mosquitto { bin: None }),
            list => url::BrokerUrls::parse(list).map(BrokerChoice::Url),
        }
    }

    /// A short label for file names and tables: `builtin`, `mosquitto`, `url`.
    pub fn label(&self) -> &'static str {
        match self {
            BrokerChoice::Builtin => "builtin",
            BrokerChoice::Mosquitto { .. } => "mosquitto",
            BrokerChoice::Url(_) => "url",
        }
    }

    /// The arguments that make a child `unplug scenario` use this broker.
    pub fn args(&self) -> Vec<String> {
        let mut v = vec!["--broker".to_string()];
        match self {
            BrokerChoice::Builtin => v.push("builtin".into()),
            BrokerChoice::Mosquitto { bin } => {
                v.push("mosquitto".into());
                if let Some(b) = bin {
                    v.push("--mosquitto-bin".into());
                    v.push(b.display().to_string());
                }
            }
            BrokerChoice::Url(u) => {
                v.push(u.for_child());
                v.extend(u.tls_options.args());
                if let Some(p) = &u.profile {
                    v.extend(["--profile".to_string(), p.clone()]);
                }
                if let Some(l) = &u.login {
                    v.extend(["--username".to_string(), l.username.clone()]);
                    if l.password.is_some() {
                        v.extend(["--password-env".to_string(), CHILD_PASSWORD_ENV.to_string()]);
                    }
                }
            }
        }
        v
    }

    /// Put the login's password where child runs read it ([`CHILD_PASSWORD_ENV`]), never on
    /// their command line. Call before starting children.
    pub fn export_password(&self) {
        if let BrokerChoice::Url(BrokerUrls {
            login: Some(Login {
                password: Some(p), ..
            }),
            ..
        }) = self
        {
            // Set once, before any child or runtime thread exists.
            std::env::set_var(CHILD_PASSWORD_ENV, p);
        }
    }
}

/// [`start`], configured with a scenario's `[broker]` settings where the broker has them; a
/// broker that has not runs as it is, and the journal says so (its profile's `cannot`).
pub async fn start_with(
    choice: &BrokerChoice,
    journal: &Journal,
    settings: &crate::scenario::BrokerSettings,
) -> anyhow::Result<Broker> {
    if let BrokerChoice::Mosquitto { bin } = choice {
        return mosquitto::start_with(bin.as_deref(), journal, settings).await;
    }
    let broker = start(choice, journal).await?;
    if let Some(k) = settings.max_keepalive_s {
        let why = match choice {
            BrokerChoice::Builtin => profile::Profile::rumqttd()
                .cannot
                .iter()
                .find(|c| c.setting == "max_keepalive")
                .map_or(String::new(), |c| {
                    format!(": {} ({})", c.reason, c.evidence)
                }),
            _ => ": a broker we did not start is configured by whoever runs it".to_string(),
        };
        journal.record(
            crate::event::Actor::Runner,
            crate::event::Event::Note {
                message: format!(
                    "max_keepalive {k} s not set: {} has no such setting here{why}",
                    choice.label()
                ),
            },
        );
    }
    Ok(broker)
}

/// Start the chosen broker and wait until it accepts connections.
pub async fn start(choice: &BrokerChoice, journal: &Journal) -> anyhow::Result<Broker> {
    match choice {
        BrokerChoice::Builtin => builtin::start(journal).await,
        BrokerChoice::Mosquitto { bin } => mosquitto::start(bin.as_deref(), journal).await,
        BrokerChoice::Url(urls) => url::start(urls, journal).await,
    }
}

/// A loopback port held for a listener that a broker opens itself (rumqttd in this process,
/// mosquitto in a child), until it listens.
///
/// Choosing a free port and letting the broker bind it later leaves a window in which another
/// process takes it: an ephemeral port for an outgoing connection, or another run's listener.
/// Measured with 34 runs at once beside busy builds: one run's rumqttd lost its MQTT 5 port that
/// way ("Address already in use" in its log), and its monit then talked to another process's
/// listener. Holding the port bound (SO_REUSEADDR, never listening) closes the window: the
/// kernel hands no held port to a `bind(0)` or a `connect`, while the broker's own bind (tokio,
/// mio and mosquitto all set SO_REUSEADDR) and listen succeed beside it, since Linux lets two
/// SO_REUSEADDR sockets share a port while neither listens. Drop it once the broker accepts.
pub struct PortHold {
    _socket: tokio::net::TcpSocket,
    pub port: u16,
}

pub fn hold_port() -> std::io::Result<PortHold> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let port = socket.local_addr()?.port();
    Ok(PortHold {
        _socket: socket,
        port,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A held port is free for the broker's own listener (SO_REUSEADDR, as tokio and mosquitto
    /// bind), taken for everyone else once that listener listens, and accepts its clients.
    #[tokio::test]
    async fn a_held_port_lets_the_broker_listen_and_no_one_else() {
        let hold = hold_port().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], hold.port));
        let broker = tokio::net::TcpListener::bind(addr).await.unwrap();
        assert!(tokio::net::TcpListener::bind(addr).await.is_err());
        wait_until_accepting(addr, Duration::from_secs(5))
            .await
            .unwrap();
        let (_client, _) = tokio::time::timeout(Duration::from_secs(5), broker.accept())
            .await
            .unwrap()
            .unwrap();
        drop(hold);
        assert_eq!(broker.local_addr().unwrap(), addr);
    }
}
