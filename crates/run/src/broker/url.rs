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
//!
//! Each URL is parsed by the `url` crate. What stays ours: the list, the scheme table with its
//! default ports, and [`without_login`] for messages (it must work on text that did not parse).

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
            let (name, hp, path, this) = parse_one(url)?;
            if let Some(this) = this {
                match &login {
                    Some(l) if *l != this => return Err(UrlError::TwoLogins),
                    _ => login = Some(this),
                }
            }
            let taken = match name {
                "tcp://" => tcp.replace(hp).is_some(),
                "mqtts://" => tls.replace(hp).is_some(),
                "ws://" => ws.replace((hp, path)).is_some(),
                _ => wss.replace((hp, path)).is_some(),
            };
            if taken {
                return Err(UrlError::Duplicate(name));
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
pub fn without_login(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, tail) = authority_and_tail(rest);
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{tail}"),
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

/// One URL, parsed by the `url` crate (WHATWG rules: the last `@` ends the login, the first
/// `:` in it starts the password, IPv6 literals in brackets), with the scheme's port when
/// none is written: its kind (named as [`BrokerUrls::describe`] writes it), where it is, a
/// WebSocket URL's path and query ("" for the others), and its login.
#[allow(clippy::type_complexity)]
fn parse_one(url: &str) -> Result<(&'static str, HostPort, String, Option<Login>), UrlError> {
    use ::url::{Host, ParseError, Url};
    let shown = without_login(url);
    let malformed = || UrlError::Malformed(shown.clone());
    // `localhost:1883` would parse as a URL of scheme "localhost": a broker URL has `://`.
    let (_, rest) = url.split_once("://").ok_or_else(malformed)?;
    let (authority, tail) = authority_and_tail(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.starts_with('[') && !hostport.contains(']') {
        return Err(UrlError::Bracket(shown));
    }
    let parsed = Url::parse(url).map_err(|e| match e {
        ParseError::InvalidPort => UrlError::Port(shown.clone()),
        _ => malformed(),
    })?;
    let scheme = parsed.scheme();
    // Without a port, the scheme's own, as mosquitto_sub and mqtt.js assume: 1883 for MQTT,
    // 8883 for MQTT over TLS, 80 and 443 for WebSocket.
    let (name, default_port) = match scheme {
        "tcp" | "mqtt" => ("tcp://", 1883),
        "mqtts" | "ssl" | "tls" => ("mqtts://", 8883),
        "ws" => ("ws://", 80),
        "wss" => ("wss://", 443),
        other => return Err(UrlError::Scheme(shown, other.to_string())),
    };
    let host = match parsed.host() {
        Some(Host::Ipv6(a)) => a.to_string(),
        Some(Host::Ipv4(a)) => a.to_string(),
        Some(Host::Domain(d)) if !d.is_empty() => d.to_string(),
        _ => return Err(malformed()),
    };
    let port = match parsed.port_or_known_default().unwrap_or(default_port) {
        0 => return Err(UrlError::Port(shown)),
        p => p,
    };
    if parsed.fragment().is_some() || !parsed.has_authority() {
        return Err(malformed());
    }
    let path = if !name.starts_with("ws") {
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(malformed());
        }
        String::new()
    } else {
        // `ws://host` and `ws://host?q`: the path brokers serve MQTT on, /mqtt (the `url`
        // crate says "/" for both `ws://host` and `ws://host/`, so the text tells them apart).
        let path = match tail.is_empty() || tail.starts_with('?') {
            true => "/mqtt",
            false => parsed.path(),
        };
        match parsed.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    };
    let login = if parsed.username().is_empty() && parsed.password().is_none() {
        None
    } else {
        let decode = |x: &str| percent_decode(x).map_err(|e| UrlError::Percent(shown.clone(), e));
        Some(Login {
            username: decode(parsed.username())?,
            password: parsed.password().map(decode).transpose()?,
        })
    };
    Ok((name, HostPort { host, port }, path, login))
}

/// What follows `scheme://`, split where the authority ends (at the first `/` or `?`).
fn authority_and_tail(rest: &str) -> (&str, &str) {
    rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()))
}

/// A URL's user or password as UTF-8. The `url` crate keeps a `%` that is not followed by two
/// hex digits as it is; a login with one is refused rather than guessed at.
fn percent_decode(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let bad = b.iter().enumerate().any(|(i, c)| {
        *c == b'%'
            && !b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if bad {
        return Err("a % needs two hex digits");
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "not UTF-8 once decoded")
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
    fn the_examples_of_the_guide_parse() {
        let u = BrokerUrls::parse("tcp://localhost,ws://[::1]:9001/mqtt").unwrap();
        assert_eq!(u.describe(), "tcp://localhost:1883,ws://[::1]:9001/mqtt");
        let u = BrokerUrls::parse("mqtts://host,ws://h/").unwrap();
        assert_eq!(u.describe(), "ws://h:80/,mqtts://host:8883");
        assert!(matches!(
            BrokerUrls::parse("tcp://h:0"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            BrokerUrls::parse("tcp://u:50%zz@h"),
            Err(UrlError::Percent(_, _))
        ));
        assert!(matches!(
            BrokerUrls::parse("tcp://h/x"),
            Err(UrlError::Malformed(_))
        ));
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
