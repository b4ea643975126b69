//! The proxy with TLS on both sides.
//!
//! ```text
//!  Terminate (the default): willy --TLS (the run's certificate)--> proxy: MQTT in the clear
//!        --> the wire tap decodes every packet --> proxy --its own TLS--> broker
//!  PassThrough: willy --TLS--> proxy --the same bytes--> broker; the tap sees TLS records only
//! ```
//!
//! Ending TLS here keeps every fault's meaning (a drop fault still finds MQTT packets) and adds
//! the closes only a TLS end can make: a FIN without a close_notify, a close_notify without a
//! FIN. A broker that checks client certificates end to end needs pass-through.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::tls::{Prefixed, Stream};

/// How the proxy treats TLS from willy.
#[derive(Clone)]
pub enum ProxyTls {
    /// End willy's TLS with `serve` and open TLS to the broker with `upstream`, checking its
    /// certificate for `name`; `says` is how the journal names both.
    Terminate {
        serve: Arc<rustls::ServerConfig>,
        upstream: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        says: String,
    },
    /// Forward the encrypted bytes as they are.
    PassThrough,
}

impl std::fmt::Debug for ProxyTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyTls::Terminate { says, .. } => write!(f, "Terminate({says})"),
            ProxyTls::PassThrough => f.write_str("PassThrough"),
        }
    }
}

/// How long a TLS handshake may take on loopback before the connection is given up.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// End willy's TLS: `early` is what it sent while its connection was held.
pub async fn accept(
    serve: &Arc<rustls::ServerConfig>,
    early: Vec<u8>,
    client: tokio::net::TcpStream,
) -> Result<Stream, String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(serve.clone());
    match tokio::time::timeout(
        HANDSHAKE_LIMIT,
        acceptor.accept(Prefixed::new(early, client)),
    )
    .await
    {
        Err(_) => Err(format!(
            "no TLS handshake from willy within {HANDSHAKE_LIMIT:?}"
        )),
        Ok(Err(e)) => Err(format!("TLS handshake with willy failed: {e}")),
        Ok(Ok(s)) => Ok(Stream::Server(Box::new(s))),
    }
}

/// Open our own TLS to the broker over `tcp`.
pub async fn connect(
    upstream: &Arc<rustls::ClientConfig>,
    name: &ServerName<'static>,
    tcp: tokio::net::TcpStream,
) -> Result<Stream, String> {
    let connector = tokio_rustls::TlsConnector::from(upstream.clone());
    match tokio::time::timeout(HANDSHAKE_LIMIT, connector.connect(name.clone(), tcp)).await {
        Err(_) => Err(format!(
            "no TLS handshake with the broker within {HANDSHAKE_LIMIT:?}"
        )),
        Ok(Err(e)) => Err(format!("TLS handshake with the broker failed: {e}")),
        Ok(Ok(s)) => Ok(Stream::Client(Box::new(s))),
    }
}
