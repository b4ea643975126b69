//! A broker someone else runs, given by URL: `--broker tcp://127.0.0.1:1883,ws://127.0.0.1:8080/mqtt`.
//!
//! ```text
//!  "tcp://host:port,ws://host:port/path" --parse--> BrokerUrls { tcp, ws }
//!        --start: resolve each host, connect once--> Broker { endpoints, profile: unknown }
//! ```
//!
//! Only the endpoints the user listed exist. monit always connects over plain TCP, so a `tcp://`
//! URL is required; a WebSocket scenario also needs a `ws://` one. Nothing is started or stopped.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::{wait_until_accepting, Broker, Endpoints};
use crate::event::Journal;

/// One `host:port` as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The endpoints of a broker given by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrls {
    /// MQTT over plain TCP (`tcp://` or `mqtt://`): monit's way in, so always present.
    pub tcp: HostPort,
    /// MQTT over WebSocket (`ws://host:port/path`), with its path.
    pub ws: Option<(HostPort, String)>,
}

/// Why a `--broker` URL list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a broker URL: expected tcp://HOST:PORT or ws://HOST:PORT/PATH")]
    Malformed(String),
    #[error(
        "{0:?}: unsupported scheme {1:?} (tcp://, mqtt:// and ws:// are supported; TLS is not)"
    )]
    Scheme(String, String),
    #[error("{0:?}: the port must be a number from 1 to 65535")]
    Port(String),
    #[error("two {0} URLs given; give at most one of each kind")]
    Duplicate(&'static str),
    #[error(
        "no tcp:// URL given: monit connects to the broker over plain TCP, so one is required"
    )]
    NoTcp,
}

impl BrokerUrls {
    /// Parse a comma-separated list of URLs.
    pub fn parse(list: &str) -> Result<BrokerUrls, UrlError> {
        let mut tcp = None;
        let mut ws = None;
        for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let (scheme, rest) = url
                .split_once("://")
                .ok_or_else(|| UrlError::Malformed(url.to_string()))?;
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let (host, port) = authority
                .rsplit_once(':')
                .ok_or_else(|| UrlError::Malformed(url.to_string()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(UrlError::Malformed(url.to_string()));
            }
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| UrlError::Port(url.to_string()))?;
            let hp = HostPort {
                host: host.to_string(),
                port,
            };
            match scheme.to_ascii_lowercase().as_str() {
                "tcp" | "mqtt" => {
                    if !path.is_empty() && path != "/" {
                        return Err(UrlError::Malformed(url.to_string()));
                    }
                    if tcp.replace(hp).is_some() {
                        return Err(UrlError::Duplicate("tcp://"));
                    }
                }
                "ws" => {
                    let path = if path.is_empty() { "/mqtt" } else { path };
                    if ws.replace((hp, path.to_string())).is_some() {
                        return Err(UrlError::Duplicate("ws://"));
                    }
                }
                other => return Err(UrlError::Scheme(url.to_string(), other.to_string())),
            }
        }
        Ok(BrokerUrls {
            tcp: tcp.ok_or(UrlError::NoTcp)?,
            ws,
        })
    }

    /// The list back as the user could have written it.
    pub fn describe(&self) -> String {
        let mut s = format!("tcp://{}", self.tcp);
        if let Some((hp, path)) = &self.ws {
            s += &format!(",ws://{hp}{path}");
        }
        s
    }
}

fn resolve(hp: &HostPort) -> anyhow::Result<SocketAddr> {
    let mut addrs = (hp.host.as_str(), hp.port)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("--broker: cannot resolve {hp}: {e}"))?
        .collect::<Vec<_>>();
    // Prefer IPv4, as every other part of a run does.
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("--broker: {hp} resolves to no address"))
}

/// "Start" a broker given by URL: resolve its endpoints and make sure they accept connections.
pub async fn start(urls: &BrokerUrls, _journal: &Journal) -> anyhow::Result<Broker> {
    let within = Duration::from_secs(5);
    let tcp = resolve(&urls.tcp)?;
    wait_until_accepting(tcp, within)
        .await
        .map_err(|e| anyhow::anyhow!("--broker tcp://{}: {e:#}", urls.tcp))?;
    let (ws, ws_path) = match &urls.ws {
        Some((hp, path)) => {
            let addr = resolve(hp)?;
            wait_until_accepting(addr, within)
                .await
                .map_err(|e| anyhow::anyhow!("--broker ws://{hp}{path}: {e:#}"))?;
            (Some(addr), path.clone())
        }
        None => (None, "/mqtt".to_string()),
    };
    Ok(Broker {
        name: format!("broker at {}", urls.describe()),
        endpoints: Endpoints {
            tcp,
            ws,
            ws_path,
            v5: None,
        },
        profile: super::profile::Profile::unknown(),
        process: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_ws_urls_parse() {
        let u = BrokerUrls::parse("tcp://127.0.0.1:1883,ws://127.0.0.1:8080/mqtt").unwrap();
        assert_eq!(u.tcp.port, 1883);
        let (ws, path) = u.ws.unwrap();
        assert_eq!(
            (ws.host.as_str(), ws.port, path.as_str()),
            ("127.0.0.1", 8080, "/mqtt")
        );
    }

    #[test]
    fn a_ws_url_without_a_path_gets_slash_mqtt() {
        let u = BrokerUrls::parse("mqtt://localhost:1,ws://localhost:2").unwrap();
        assert_eq!(u.ws.unwrap().1, "/mqtt");
    }

    #[test]
    fn a_list_without_tcp_is_refused() {
        assert_eq!(
            BrokerUrls::parse("ws://127.0.0.1:8080/mqtt"),
            Err(UrlError::NoTcp)
        );
    }

    #[test]
    fn bad_urls_say_what_was_expected() {
        assert!(matches!(
            BrokerUrls::parse("127.0.0.1:1883"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            BrokerUrls::parse("tcp://127.0.0.1:99999"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            BrokerUrls::parse("mqtts://127.0.0.1:8883"),
            Err(UrlError::Scheme(_, _))
        ));
        assert!(matches!(
            BrokerUrls::parse("tcp://a:1,tcp://b:2"),
            Err(UrlError::Duplicate(_))
        ));
    }
}
