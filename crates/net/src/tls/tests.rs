use super::*;

async fn serve_once(certs: &RunCerts) -> std::net::SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for _ in 0..8 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"hello").await;
                let _ = tls.shutdown().await;
            }
        }
    });
    addr
}

/// The run's CA vouches for its server certificate by name and by address; another name, or
/// a CA that is not the run's, is refused; `--insecure` takes anything.
#[tokio::test]
async fn a_run_trusts_its_own_certificates_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let certs = RunCerts::generate(dir.path(), &[]).unwrap();
    let addr = serve_once(&certs).await;
    let limit = std::time::Duration::from_secs(5);
    let mut trust = certs.trust();
    assert!(connect(addr, &trust, limit).await.is_ok());
    trust.name = "127.0.0.1".into();
    assert!(connect(addr, &trust, limit).await.is_ok());
    trust.name = "broker.example".into();
    let e = connect(addr, &trust, limit).await.unwrap_err();
    assert!(format!("{e:#}").contains("not valid for name"), "{e:#}");

    let other_dir = tempfile::tempdir().unwrap();
    let other = RunCerts::generate(other_dir.path(), &[]).unwrap();
    let e = connect(addr, &other.trust(), limit).await.unwrap_err();
    assert!(
        format!("{e:#}").contains("invalid peer certificate"),
        "{e:#}"
    );
    let insecure = Trust {
        roots: Roots::Insecure,
        ..other.trust()
    };
    assert!(connect(addr, &insecure, limit).await.is_ok());
}

/// The files a broker reads are private to the run: the keys 0600 in a dir of ours.
#[test]
fn the_keys_are_written_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let certs = RunCerts::generate(dir.path(), &["10.1.2.3".parse().unwrap()]).unwrap();
    for key in [&certs.key, &certs.client_key] {
        let mode = std::fs::metadata(key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", key.display());
    }
    assert!(pem_certs(certs.cert_pem.as_bytes(), "x").is_ok());
    assert!(read_pem(&certs.ca, "--ca").is_ok());
    let e = read_pem(&dir.path().join("nope"), "--ca").unwrap_err();
    assert!(format!("{e:#}").starts_with("--ca "), "{e:#}");
}
