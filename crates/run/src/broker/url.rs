//! A broker someone else runs, given by URL: `--broker tcp://127.0.0.1:1883,ws://127.0.0.1:8080/mqtt`.
//!
//! ```text
//!  "tcp://[user:pass@]host:port,ws://host:port/path" --parse--> BrokerUrls { tcp, ws, login }
//!        --start: resolve each host, connect once--> Broker { endpoints, profile }
//!        --recognise: what the broker says of itself ($SYS/broker/version) --> its profile,
//!                     or the spec's own bound for a broker we do not know
//! ```
//!
//! Only the endpoints the user listed exist. monit always connects over plain TCP, so a `tcp://`
//! URL is required; a WebSocket scenario also needs a `ws://` one. Nothing is started or stopped.
//! A login (`user:pass@`, percent-decoded, or `--username` with `--password-env`) is used by
//! every client of the run and never written anywhere: [`BrokerUrls::describe`] leaves it out
//! and hides the values of a URL's query.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::{wait_until_accepting, Broker, Endpoints};
use crate::event::{Actor, Event, Journal};

/// One `host:port` as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

pub use super::access::Login;

/// How our clients check a URL broker's TLS listeners, and what they show of themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--ca FILE`: the CA certificates to trust instead of the system's.
    pub ca: Option<std::path::PathBuf>,
    /// `--insecure`: any certificate (a self-signed lab broker). Never the default.
    pub insecure: bool,
    /// `--client-cert FILE` and `--client-key FILE`, for a broker that requires them.
    pub client_cert: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
}

impl TlsOptions {
    /// The flags that give these to a child run.
    pub fn args(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut path = |flag: &str, p: &Option<std::path::PathBuf>| {
            if let Some(p) = p {
                v.extend([flag.to_string(), p.display().to_string()]);
            }
        };
        path("--ca", &self.ca);
        path("--client-cert", &self.client_cert);
        path("--client-key", &self.client_key);
        if self.insecure {
            v.push("--insecure".to_string());
        }
        v
    }

    /// What our clients trust, checking certificates against `host`; the files are read now,
    /// and a bad one is named with its flag.
    pub fn trust(&self, host: &str) -> anyhow::Result<crate::tls::Trust> {
        use crate::tls::{read_pem, Roots};
        let roots = match (&self.ca, self.insecure) {
            (Some(_), true) => anyhow::bail!("--ca and --insecure: give one of them"),
            (Some(ca), false) => {
                Roots::Pem(read_pem(ca, "--ca")?, format!("--ca {}", ca.display()))
            }
            (None, true) => Roots::Insecure,
            (None, false) => Roots::System,
        };
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => {
                Some((read_pem(c, "--client-cert")?, read_pem(k, "--client-key")?))
            }
            (None, None) => None,
            _ => anyhow::bail!("--client-cert and --client-key go together"),
        };
        Ok(crate::tls::Trust {
            roots,
            name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            identity,
        })
    }
}

/// The endpoints of a broker given by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrls {
    /// MQTT over plain TCP (`tcp://` or `mqtt://`): monit's way in for a plain run.
    pub tcp: Option<HostPort>,
    /// MQTT over WebSocket (`ws://host:port/path`), with its path (and query, if any).
    pub ws: Option<(HostPort, String)>,
    /// MQTT over TLS (`mqtts://`, `ssl://`, `tls://`): monit's way in for a TLS run.
    pub tls: Option<HostPort>,
    /// MQTT over WebSocket over TLS (`wss://host:port/path`).
    pub wss: Option<(HostPort, String)>,
    /// How the TLS listeners are checked.
    pub tls_options: TlsOptions,
    /// The login every client of the run uses, from the URL's `user:pass@` or the flags.
    pub login: Option<Login>,
    /// The profile to judge by, forced with `--profile`; None: recognise the broker.
    pub profile: Option<String>,
}

/// Why a `--broker` URL list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a broker URL: expected tcp://HOST[:PORT] or ws://HOST[:PORT]/PATH")]
    Malformed(String),
    #[error("{0:?}: an IPv6 address needs its closing bracket: [::1]:1883")]
    Bracket(String),
    #[error("{0:?}: bad percent-encoding in the login ({1})")]
    Percent(String, &'static str),
    #[error("two different logins given (in two URLs, or a URL and --username)")]
    TwoLogins,
    #[error(
        "{0:?}: unsupported scheme {1:?} (tcp://, mqtt://, ws://, mqtts:// and wss:// are supported)"
    )]
    Scheme(String, String),
    #[error("{0:?}: the port must be a number from 1 to 65535")]
    Port(String),
    #[error("two {0} URLs given; give at most one of each kind")]
    Duplicate(&'static str),
    #[error(
        "no tcp:// or mqtts:// URL given: monit connects to the broker over MQTT (plain TCP in a tcp or ws run, TLS in a tls or wss run), so one is required"
    )]
    NoTcp,
}

impl BrokerUrls {
    /// Parse a comma-separated list of URLs. Errors show a URL without its login.
    pub fn parse(list: &str) -> Result<BrokerUrls, UrlError> {
        let mut tcp = None;
        let mut ws = None;
        let mut tls = None;
        let mut wss = None;
        let mut login: Option<Login> = None;
        for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let shown = without_login(url);
            let malformed = || UrlError::Malformed(shown.clone());
            let (scheme, rest) = url.split_once("://").ok_or_else(malformed)?;
            let (authority, path) = match rest.find(['/', '?']) {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let (userinfo, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            // Without a port, the scheme's own, as mosquitto_sub and mqtt.js assume: 1883 for
            // MQTT, 8883 for MQTT over TLS, 80 and 443 for WebSocket.
            let default_port = match scheme.to_ascii_lowercase().as_str() {
                "tcp" | "mqtt" => "1883",
                "mqtts" | "ssl" | "tls" => "8883",
                "ws" => "80",
                "wss" => "443",
                _ => "",
            };
            let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
                let (host, after) = inner
                    .split_once(']')
                    .ok_or_else(|| UrlError::Bracket(shown.clone()))?;
                match after {
                    "" if !default_port.is_empty() => (host, default_port),
                    _ => (host, after.strip_prefix(':').ok_or_else(malformed)?),
                }
            } else {
                match hostport.rsplit_once(':') {
                    Some(hp) => hp,
                    None if !default_port.is_empty() => (hostport, default_port),
                    None => return Err(malformed()),
                }
            };
            if host.is_empty() {
                return Err(malformed());
            }
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| UrlError::Port(shown.clone()))?;
            let hp = HostPort {
                host: host.to_string(),
                port,
            };
            if let Some(u) = userinfo {
                let (user, pass) = match u.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (u, None),
                };
                let decode =
                    |x: &str| percent_decode(x).map_err(|e| UrlError::Percent(shown.clone(), e));
                let this = Login {
                    username: decode(user)?,
                    password: pass.map(decode).transpose()?,
                };
                match &login {
                    Some(l) if *l != this => return Err(UrlError::TwoLogins),
                    _ => login = Some(this),
                }
            }
            match scheme.to_ascii_lowercase().as_str() {
                s @ ("tcp" | "mqtt" | "mqtts" | "ssl" | "tls") => {
                    if !path.is_empty() && path != "/" {
                        return Err(malformed());
                    }
                    let (slot, name) = match s {
                        "tcp" | "mqtt" => (&mut tcp, "tcp://"),
                        _ => (&mut tls, "mqtts://"),
                    };
                    if slot.replace(hp).is_some() {
                        return Err(UrlError::Duplicate(name));
                    }
                }
                s @ ("ws" | "wss") => {
                    let path = if path.is_empty() {
                        "/mqtt".to_string()
                    } else if path.starts_with('?') {
                        format!("/mqtt{path}")
                    } else {
                        path.to_string()
                    };
                    let (slot, name) = match s {
                        "ws" => (&mut ws, "ws://"),
                        _ => (&mut wss, "wss://"),
                    };
                    if slot.replace((hp, path)).is_some() {
                        return Err(UrlError::Duplicate(name));
                    }
                }
                other => return Err(UrlError::Scheme(shown.clone(), other.to_string())),
            }
        }
        if tcp.is_none() && tls.is_none() {
            return Err(UrlError::NoTcp);
        }
        Ok(BrokerUrls {
            tcp,
            ws,
            tls,
            wss,
            tls_options: TlsOptions::default(),
            login,
            profile: None,
        })
    }

    /// Add the login of `--username` and `--password-env`; one in the URL too is an error
    /// unless it is the same.
    pub fn with_login(mut self, login: Option<Login>) -> Result<BrokerUrls, UrlError> {
        match (&self.login, login) {
            (Some(a), Some(b)) if *a != b => return Err(UrlError::TwoLogins),
            (_, Some(b)) => self.login = Some(b),
            _ => {}
        }
        Ok(self)
    }

    /// The list as it may be shown and written: no login, and the values of a query hidden.
    pub fn describe(&self) -> String {
        self.list(redact_query)
    }

    /// The list a child run is given on its command line: the query as it is (the broker
    /// needs it), the login left out (the child gets it through the environment).
    pub fn for_child(&self) -> String {
        self.list(|p| p.to_string())
    }

    fn list(&self, path: impl Fn(&str) -> String) -> String {
        let mut urls = Vec::new();
        if let Some(hp) = &self.tcp {
            urls.push(format!("tcp://{hp}"));
        }
        if let Some((hp, p)) = &self.ws {
            urls.push(format!("ws://{hp}{}", path(p)));
        }
        if let Some(hp) = &self.tls {
            urls.push(format!("mqtts://{hp}"));
        }
        if let Some((hp, p)) = &self.wss {
            urls.push(format!("wss://{hp}{}", path(p)));
        }
        urls.join(",")
    }
}

/// `user:pass@` taken out of a URL, for error messages.
fn without_login(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{}", &rest[end..]),
                None => url.to_string(),
            }
        }
        None => url
            .split_once('@')
            .map_or(url.to_string(), |(_, h)| h.to_string()),
    }
}

/// `/mqtt?token=abc&x=1` -> `/mqtt?token=***&x=***`: a query often carries a token.
pub fn redact_query(path: &str) -> String {
    match path.split_once('?') {
        None => path.to_string(),
        Some((p, q)) => {
            let parts: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => kv.to_string(),
                })
                .collect();
            format!("{p}?{}", parts.join("&"))
        }
    }
}

/// RFC 3986 percent-decoding of a URL's user or password, as UTF-8.
fn percent_decode(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or("a % needs two hex digits")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "a % needs two hex digits")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a % needs two hex digits")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once decoded")
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

/// "Start" a broker given by URL: resolve its endpoints, make sure they accept connections,
/// and learn which broker it is (or take the profile `--profile` forced). A broker that refuses
/// our login, or closes the connection without a CONNACK, ends the run here.
pub async fn start(urls: &BrokerUrls, journal: &Journal) -> anyhow::Result<Broker> {
    async fn reach(scheme: &str, hp: &HostPort, path: &str) -> anyhow::Result<SocketAddr> {
        let addr = resolve(hp)?;
        wait_until_accepting(addr, Duration::from_secs(5))
            .await
            .map_err(|e| {
                anyhow::anyhow!("--broker {scheme}://{hp}{}: {e:#}", redact_query(path))
            })?;
        Ok(addr)
    }
    let tcp = match &urls.tcp {
        Some(hp) => Some(reach("tcp", hp, "").await?),
        None => None,
    };
    let tls = match &urls.tls {
        Some(hp) => Some(reach("mqtts", hp, "").await?),
        None => None,
    };
    let mut ws_path = "/mqtt".to_string();
    let ws = match &urls.ws {
        Some((hp, path)) => {
            ws_path = path.clone();
            Some(reach("ws", hp, path).await?)
        }
        None => None,
    };
    let wss = match &urls.wss {
        Some((hp, path)) => {
            if urls.ws.as_ref().is_some_and(|(_, p)| p != path) {
                anyhow::bail!("--broker: the ws:// and wss:// URLs must have the same path");
            }
            ws_path = path.clone();
            Some(reach("wss", hp, path).await?)
        }
        None => None,
    };
    // Whose name a TLS listener's certificate must carry: the host the user wrote.
    let trust = urls
        .tls
        .as_ref()
        .or(urls.wss.as_ref().map(|(hp, _)| hp))
        .map(|hp| urls.tls_options.trust(&hp.host))
        .transpose()?;
    // Asked over plain TCP when there is a tcp:// URL, else over TLS.
    let (asked, shown) = if let (Some(a), Some(hp)) = (tcp, &urls.tcp) {
        (a, format!("tcp://{hp}"))
    } else if let (Some(a), Some(hp), Some(trust)) = (tls, &urls.tls, &trust) {
        super::access::set_tls(Some(trust.client_config()?));
        (a, format!("mqtts://{hp}"))
    } else {
        return Err(UrlError::NoTcp.into());
    };
    let said = super::recognise::ask(asked)
        .await
        .map_err(|e| anyhow::anyhow!("--broker {shown}: {e}"))?;
    if tcp.is_none() {
        super::access::set_tls(None);
    }
    let (profile, how) = match &urls.profile {
        Some(name) => (
            super::profile::Profile::by_name(name).ok_or_else(|| {
                anyhow::anyhow!("--profile {name:?}: no such profile (see `unplug profiles`)")
            })?,
            format!("profile forced with --profile {name}"),
        ),
        None => super::recognise::profile_for(said.as_deref()),
    };
    journal.record(
        Actor::Runner,
        Event::Note {
            message: format!("broker at {}: {} ({how})", urls.describe(), profile.broker),
        },
    );
    Ok(Broker {
        name: format!("{} at {} ({how})", profile.broker, urls.describe()),
        endpoints: Endpoints {
            // A broker that takes TLS only: its plain-TCP slot is its TLS listener, which
            // only a TLS run uses (`no_plain`).
            tcp: asked,
            ws,
            ws_path,
            v5: None,
            tls,
            wss,
            v5_tls: None,
            no_plain: tcp.is_none(),
        },
        profile,
        process: None,
        trust,
        files: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_ws_urls_parse() {
        let u = BrokerUrls::parse("tcp://127.0.0.1:1883,ws://127.0.0.1:8080/mqtt").unwrap();
        assert_eq!(u.tcp.unwrap().port, 1883);
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
    fn tls_urls_parse_and_a_tls_only_broker_is_a_broker() {
        let u = BrokerUrls::parse("mqtts://broker.lan:8883,wss://broker.lan:8884/mqtt").unwrap();
        assert_eq!(u.tcp, None);
        assert_eq!(u.tls.as_ref().unwrap().port, 8883);
        assert_eq!(u.wss.as_ref().unwrap().1, "/mqtt");
        assert_eq!(
            u.describe(),
            "mqtts://broker.lan:8883,wss://broker.lan:8884/mqtt"
        );
        let opts = TlsOptions {
            ca: Some("/x/ca.pem".into()),
            ..Default::default()
        };
        assert_eq!(opts.args(), ["--ca", "/x/ca.pem"]);
        let both = TlsOptions {
            insecure: true,
            ..opts
        };
        assert!(both.trust("h").is_err());
    }

    #[test]
    fn a_list_without_tcp_is_refused() {
        assert_eq!(
            BrokerUrls::parse("ws://127.0.0.1:8080/mqtt"),
            Err(UrlError::NoTcp)
        );
    }

    #[test]
    fn a_url_without_a_port_takes_its_schemes() {
        let u = BrokerUrls::parse("mqtt://broker.lan,ws://broker.lan/mqtt").unwrap();
        assert_eq!(u.tcp.unwrap().port, 1883);
        assert_eq!(u.ws.unwrap().0.port, 80);
        let u = BrokerUrls::parse("mqtts://[::1],wss://b/mqtt").unwrap();
        assert_eq!(u.tls.unwrap().port, 8883);
        assert_eq!(u.wss.unwrap().0.port, 443);
        assert!(matches!(
            BrokerUrls::parse("tcp://[::1]x"),
            Err(UrlError::Malformed(_))
        ));
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
            BrokerUrls::parse("quic://127.0.0.1:8883"),
            Err(UrlError::Scheme(_, _))
        ));
        assert!(matches!(
            BrokerUrls::parse("mqtts://a:1,ssl://b:2"),
            Err(UrlError::Duplicate("mqtts://"))
        ));
        assert!(matches!(
            BrokerUrls::parse("tcp://a:1,tcp://b:2"),
            Err(UrlError::Duplicate(_))
        ));
    }

    #[test]
    fn a_login_in_the_url_is_percent_decoded_and_never_described() {
        let u = BrokerUrls::parse("tcp://user:p%40ss%3Aw@127.0.0.1:1883,ws://user:p%40ss%3Aw@127.0.0.1:8080/mqtt?token=abc").unwrap();
        let l = u.login.clone().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.as_deref()),
            ("user", Some("p@ss:w"))
        );
        assert_eq!(u.tcp.as_ref().unwrap().host, "127.0.0.1");
        let shown = u.describe();
        assert!(!shown.contains("p%40ss") && !shown.contains("p@ss") && !shown.contains("user"));
        assert!(
            shown.contains("?token=***") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(u.for_child().contains("token=abc") && !u.for_child().contains("user"));
    }

    #[test]
    fn errors_never_show_the_password() {
        let e = BrokerUrls::parse("quic://u:hunter2@h:1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = BrokerUrls::parse("tcp://u:hunter2@h:99999")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn ipv6_literals_parse_and_a_missing_bracket_is_named() {
        let u = BrokerUrls::parse("tcp://[::1]:1883").unwrap();
        assert_eq!(
            {
                let t = u.tcp.as_ref().unwrap();
                (t.host.as_str(), t.port)
            },
            ("::1", 1883)
        );
        assert_eq!(u.describe(), "tcp://[::1]:1883");
        assert!(matches!(
            BrokerUrls::parse("tcp://[::1"),
            Err(UrlError::Bracket(_))
        ));
        // Without a port: the scheme's (a_url_without_a_port_takes_its_schemes).
        assert_eq!(
            BrokerUrls::parse("tcp://[::1]").unwrap().tcp.unwrap().port,
            1883
        );
    }

    #[test]
    fn two_different_logins_are_refused() {
        assert_eq!(
            BrokerUrls::parse("tcp://a:b@h:1,ws://c:d@h:2/mqtt"),
            Err(UrlError::TwoLogins)
        );
        let u = BrokerUrls::parse("tcp://a:b@h:1").unwrap();
        let other = Login {
            username: "x".into(),
            password: None,
        };
        assert_eq!(u.with_login(Some(other)), Err(UrlError::TwoLogins));
    }
}
