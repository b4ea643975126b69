//! TLS: the run's own certificates, what each of our clients trusts, and a stream that is TCP
//! or TLS over it.
//!
//! ```text
//!  RunCerts::generate(dir) --rcgen--> a CA of the run, a server certificate it signs
//!        (localhost, 127.0.0.1, the veth address), a client certificate it signs
//!      builtin/mosquitto: their TLS and WSS listeners serve the server certificate
//!      the proxy (terminating): serves it to willy, which trusts the run's CA only
//!  Trust { roots: the run's CA | --ca FILE | the system's | --insecure, name, client identity }
//!      --client_config--> rustls ClientConfig: monit, pubby, the proxy's own TLS to the broker
//! ```
//!
//! Nothing is fixed in the repository: every run makes its own key pairs, in a private temp
//! dir removed with the run. `--insecure` is never the default and says so in the journal.

pub mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

pub use stream::{Prefixed, Stream};

/// The crypto every config of ours uses (ring: rumqttd's rustls builds it anyway).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One run's certificates, as PEM text and as files (mosquitto and rumqttd read files).
#[derive(Debug, Clone)]
pub struct RunCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// For a broker that wants client certificates: signed by the same CA.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl RunCerts {
    /// A CA and the certificates it signs, written into `dir` (which must be private: the keys
    /// are written 0600 there). The server certificate names localhost, 127.0.0.1 and `ips`.
    pub fn generate(dir: &Path, ips: &[std::net::IpAddr]) -> anyhow::Result<RunCerts> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("unplug run CA (pid {})", std::process::id()),
        );
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;

        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(ips.iter().map(|ip| ip.to_string()));
        let mut server = CertificateParams::new(names)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key)?;

        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name.push(DnType::CommonName, "willy");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key)?;

        let certs = RunCerts {
            ca_pem: ca_cert.pem(),
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        for (path, text) in [
            (&certs.ca, &certs.ca_pem),
            (&certs.cert, &certs.cert_pem),
            (&certs.key, &certs.key_pem),
            (&certs.client_cert, &certs.client_cert_pem),
            (&certs.client_key, &certs.client_key_pem),
        ] {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(certs)
    }

    /// What a client of ours trusts to reach a listener serving [`RunCerts::cert_pem`].
    pub fn trust(&self) -> Trust {
        Trust {
            roots: Roots::Pem(self.ca_pem.clone().into_bytes(), "the run's own CA".into()),
            name: "localhost".to_string(),
            identity: None,
        }
    }

    /// The config a TLS listener of ours serves with (the proxy's side to willy).
    pub fn server_config(&self) -> anyhow::Result<Arc<ServerConfig>> {
        let certs = pem_certs(self.cert_pem.as_bytes(), "the run's server certificate")?;
        let key = pem_key(self.key_pem.as_bytes(), "the run's server key")?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        Ok(Arc::new(config))
    }
}

/// What a client accepts as the server's certificate.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub enum Roots {
    /// The system's roots (rustls-native-certs: /etc/ssl/certs here).
    System,
    /// The CA certificates in this PEM text, and where it came from (for messages).
    Pem(Vec<u8>, String),
    /// Anything (`--insecure`): for self-signed lab brokers; never the default.
    Insecure,
}

/// How one of our clients checks the server it reaches over TLS, and what it shows of itself.
/// (Serialized only to hand it to willy's child process, through its stdin.)
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Trust {
    pub roots: Roots,
    /// The name the server's certificate must carry (also sent as SNI when it is a DNS name),
    /// whatever address the client connects to: the proxy on 127.0.0.1 stands in for it.
    pub name: String,
    /// A client certificate chain and key, PEM, for a broker that requires one.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("roots", &self.describe())
            .field("name", &self.name)
            .field(
                "identity",
                &self.identity.as_ref().map(|_| "(a client certificate)"),
            )
            .finish()
    }
}

impl Trust {
    /// How the journal says it: "the run's own CA, name localhost".
    pub fn describe(&self) -> String {
        let roots = match &self.roots {
            Roots::System => "the system's roots".to_string(),
            Roots::Pem(_, from) => from.clone(),
            Roots::Insecure => "any certificate (--insecure)".to_string(),
        };
        format!(
            "{roots}, name {}{}",
            self.name,
            if self.identity.is_some() {
                ", with a client certificate"
            } else {
                ""
            }
        )
    }

    /// The server name to verify and to send as SNI.
    pub fn server_name(&self) -> anyhow::Result<ServerName<'static>> {
        ServerName::try_from(self.name.clone())
            .with_context(|| format!("{:?} is not a host name or IP address", self.name))
    }

    /// A rustls client config that checks the server as this says.
    pub fn client_config(&self) -> anyhow::Result<Arc<ClientConfig>> {
        let verifier: Arc<dyn ServerCertVerifier> = match &self.roots {
            Roots::Insecure => Arc::new(AnyCertificate(provider())),
            roots => {
                let mut store = RootCertStore::empty();
                match roots {
                    Roots::Pem(pem, from) => {
                        for c in pem_certs(pem, from)? {
                            store
                                .add(c)
                                .with_context(|| format!("{from}: not a CA certificate"))?;
                        }
                    }
                    _ => {
                        let found = rustls_native_certs::load_native_certs();
                        for c in found.certs {
                            let _ = store.add(c);
                        }
                        if store.is_empty() {
                            anyhow::bail!("no system root certificates found (give --ca FILE)");
                        }
                    }
                }
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider(),
                )
                .build()?;
                Arc::new(NamedServer {
                    inner,
                    name: self.server_name()?,
                })
            }
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    pem_certs(cert, "the client certificate")?,
                    pem_key(key, "the client key")?,
                )
                .context("the client certificate and key do not match")?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// The CA certificates in a PEM text; `from` names it in errors.
pub fn pem_certs(pem: &[u8], from: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{from}: not PEM"))?;
    if certs.is_empty() {
        anyhow::bail!("{from}: no CERTIFICATE in it");
    }
    Ok(certs)
}

fn pem_key(pem: &[u8], from: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut &pem[..])
        .with_context(|| format!("{from}: not PEM"))?
        .with_context(|| format!("{from}: no PRIVATE KEY in it"))
}

/// Read a PEM file a user named with a flag, naming the flag in errors.
pub fn read_pem(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{flag} {}: cannot read", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        anyhow::bail!("{flag} {}: not a PEM file", path.display());
    }
    Ok(bytes)
}

/// The usual web PKI checks, against a fixed name rather than the address connected to: the
/// proxy on 127.0.0.1 stands in for a broker whose certificate names its host.
#[derive(Debug)]
struct NamedServer {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _connected_to: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `--insecure`: any certificate, though the handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Open TCP to `addr` and TLS over it as `trust` says, within `limit`.
pub async fn connect(
    addr: std::net::SocketAddr,
    trust: &Trust,
    limit: std::time::Duration,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config = trust.client_config()?;
    let name = trust.server_name()?;
    tokio::time::timeout(limit, async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
    })
    .await
    .map_err(|_| anyhow::anyhow!("no TLS handshake with {addr} within {limit:?}"))?
    .with_context(|| format!("TLS to {addr} ({})", trust.describe()))
}

#[cfg(test)]
mod tests;
