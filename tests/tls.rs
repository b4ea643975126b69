//! MQTT over TLS and WebSocket over TLS, end to end: real rustls clients, rumqttd's and
//! mosquitto's own TLS listeners with the run's certificates, the proxy ending TLS so the wire
//! tap still reads every MQTT packet (or passing it through), brokers given by `mqtts://` URL
//! checked with `--ca`, and the closes only TLS has.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The journal's records, parsed.
fn events(out: &Path, name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join(format!("{name}.events.jsonl"))).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn log(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(format!("{name}.log"))).unwrap()
}

/// The packets the wire tap decoded: (kind, framing).
fn tapped(ev: &[Value]) -> Vec<(String, String)> {
    ev.iter()
        .filter(|e| e["event"] == "packet")
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["framing"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Run scenario runs side by side (each is ~15 s of waiting on timers): (name, args).
fn run_all(tag: &str, runs: &[(&str, Vec<&str>)]) -> Vec<(PathBuf, i32, Value)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                s.spawn(move || {
                    let out = out_dir(&format!("{tag}-{i}"));
                    let (code, v) = run_scenario(name, &out, args);
                    (out, code, v)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The seed's runs with a will, over TLS and WSS, on both brokers we start: each passes (the
/// will arrives within the broker's bound), and the proxy ended TLS so the tap read willy's
/// CONNECT inside it, framed as over plain TCP or WebSocket.
#[test]
fn tls_and_wss_last_will_pass_on_builtin_and_mosquitto() {
    if mosquitto_or_skip("tls_and_wss_last_will_pass_on_builtin_and_mosquitto").is_none() {
        return;
    }
    let runs: Vec<(&str, Vec<&str>)> = ["builtin", "mosquitto"]
        .iter()
        .flat_map(|b| {
            [
                ("tls-last-will", vec!["--broker", *b]),
                ("wss-last-will", vec!["--broker", *b]),
            ]
        })
        .collect();
    for ((name, args), (out, code, s)) in runs.iter().zip(run_all("tls-seed", &runs)) {
        assert_eq!(code, 0, "{name} {args:?}: {:?}", failed_checks(&s));
        assert_eq!(
            s["transport"],
            if name.starts_with("wss") {
                "wss"
            } else {
                "tls"
            }
        );
        let ev = events(&out, name);
        let framing = if name.starts_with("wss") { "ws" } else { "tcp" };
        let connects = tapped(&ev)
            .into_iter()
            .filter(|(k, f)| k == "CONNECT" && f.starts_with(framing))
            .count();
        // One CONNECT a cycle reached the broker: 3 before the cut at least.
        assert!(connects >= 3, "{name} {args:?}: {connects} CONNECTs tapped");
        let log = log(&out, name);
        assert!(
            log.contains("TLS from willy ended here (TLSv1_3"),
            "{name} {args:?}: no TLS termination in the log"
        );
        // The will follows the broker's close at once, except mosquitto over WSS: its
        // WebSocket library waits 5 s for the answer to its TLS close_notify first (the
        // mosquitto profile's `wss_close_ms`: 5 s and one 100 ms loop pass; 250 ms margin).
        let gap = num(&s, "will_received_ms").unwrap() - num(&s, "broker_drop_ms").unwrap();
        let (lo, hi) = if name.starts_with("wss") && args.contains(&"mosquitto") {
            (4900.0, 5350.0)
        } else {
            (-50.0, 250.0)
        };
        assert!(
            (lo..=hi).contains(&gap),
            "{name} {args:?}: will {gap:.0} ms after the close, expected {lo}..{hi}"
        );
    }
}

/// Passed through, the tap sees TLS records and no MQTT packet; the verdict is the same, as
/// the keepalive checks measure from bytes, not packets.
#[test]
fn tls_passed_through_shows_records_only() {
    let runs = [("tls-last-will", vec!["--tls-tap", "pass-through"])];
    let (out, code, s) = run_all("tls-pass", &runs).pop().unwrap();
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let ev = events(&out, "tls-last-will");
    assert!(
        tapped(&ev).is_empty(),
        "MQTT packets tapped: {:?}",
        tapped(&ev)
    );
    let records: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "wire_frame")
        .filter_map(|e| e["what"].as_str())
        .collect();
    assert!(
        records.iter().any(|w| w.starts_with("tls handshake")),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|w| w.starts_with("tls application_data")),
        "{records:?}"
    );
}

/// The closes TLS adds: a FIN without close_notify, and a close_notify with the TCP left open.
/// Neither is an MQTT DISCONNECT, so both brokers publish the will at once; the proxy's record
/// says which close it made.
#[test]
fn the_tls_closes_end_the_connection_with_a_will() {
    if mosquitto_or_skip("the_tls_closes_end_the_connection_with_a_will").is_none() {
        return;
    }
    let runs: Vec<(&str, Vec<&str>)> = ["builtin", "mosquitto"]
        .iter()
        .flat_map(|b| {
            [
                ("tls-close-without-notify", vec!["--broker", *b]),
                ("tls-notify-without-fin", vec!["--broker", *b]),
            ]
        })
        .collect();
    for ((name, args), (out, code, s)) in runs.iter().zip(run_all("tls-close", &runs)) {
        assert_eq!(code, 0, "{name} {args:?}: {:?}", failed_checks(&s));
        let said = if name.contains("notify-without-fin") {
            "TLS close_notify, TCP left open, to willy"
        } else {
            "FIN without a TLS close_notify to willy"
        };
        assert!(log(&out, name).contains(said), "{name} {args:?}: {said:?}");
    }
}

/// A TLS-only mosquitto of this test's own, on a port of its own, with certificates made for
/// it (its CA is what `--ca` names); `require_certificate`: clients must show one it signed.
struct TlsBroker {
    child: Child,
    port: u16,
    certs: unplug::tls::RunCerts,
    _dir: tempfile::TempDir,
}

impl TlsBroker {
    fn start(bin: &Path, require_certificate: bool) -> TlsBroker {
        let dir = tempfile::tempdir().unwrap();
        let certs = unplug::tls::RunCerts::generate(dir.path(), &[]).unwrap();
        let hold = unplug::broker::hold_port().unwrap();
        let port = hold.port;
        let root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        let mut conf = format!(
            "per_listener_settings false\nallow_anonymous true\npersistence false\n{}\
             listener {port} 127.0.0.1\nsocket_domain ipv4\ncertfile {}\nkeyfile {}\n",
            if root { "user root\n" } else { "" },
            certs.cert.display(),
            certs.key.display()
        );
        if require_certificate {
            conf += &format!("cafile {}\nrequire_certificate true\n", certs.ca.display());
        }
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(hold);
        TlsBroker {
            child,
            port,
            certs,
            _dir: dir,
        }
    }

    /// Its URL by name: the certificate says localhost, the tests connect to 127.0.0.1.
    fn url(&self) -> String {
        format!("mqtts://localhost:{}", self.port)
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tls-last-will` with `args` ends before any run with exit 2, naming the refused TLS
/// handshake and `why` (rustls's words).
fn handshake_refused(tag: &str, args: &[&str], why: &str) {
    let out = out_dir(tag);
    let mut a = vec![
        "scenario",
        "tls-last-will",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    let o = unplug(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains("the TLS handshake failed") && err.contains(why),
        "{args:?}: {err}"
    );
}

/// A broker given only by an `mqtts://` URL: with `--ca` it is reached (monit too, over TLS)
/// and judged; without, its certificate is refused before any run starts, naming why;
/// `--insecure` takes it as it is.
#[test]
fn a_tls_broker_by_url_is_checked_against_the_ca_given() {
    let Some(bin) = mosquitto_or_skip("a_tls_broker_by_url_is_checked_against_the_ca_given") else {
        return;
    };
    // One broker a run: two runs on one broker would take over each other's client ids.
    let broker = TlsBroker::start(&bin, false);
    let other = TlsBroker::start(&bin, false);
    let url = broker.url();
    let other_url = other.url();
    let ca = broker.certs.ca.display().to_string();

    handshake_refused("tls-url-untrusted", &["--broker", &url], "UnknownIssuer");

    let runs = [
        ("tls-last-will", vec!["--broker", &url, "--ca", &ca]),
        ("tls-last-will", vec!["--broker", &other_url, "--insecure"]),
    ];
    for ((_, args), (out, code, s)) in runs.iter().zip(run_all("tls-url", &runs)) {
        assert_eq!(code, 0, "{args:?}: {:?}", failed_checks(&s));
        let log = log(&out, "tls-last-will");
        assert!(log.contains("mqtts://localhost:"), "{args:?}");
        if args.contains(&"--insecure") {
            assert!(log.contains("any certificate (--insecure)"), "{args:?}");
        } else {
            assert!(
                log.contains(&format!("--ca {ca}, name localhost")),
                "{args:?}"
            );
        }
    }
}

/// A broker that requires client certificates: reached with `--client-cert` and
/// `--client-key`; refused without, before any run starts. The key never shows in the files.
#[test]
fn a_broker_that_requires_client_certificates() {
    let Some(bin) = mosquitto_or_skip("a_broker_that_requires_client_certificates") else {
        return;
    };
    let broker = TlsBroker::start(&bin, true);
    let url = broker.url();
    let ca = broker.certs.ca.display().to_string();
    let cert = broker.certs.client_cert.display().to_string();
    let key = broker.certs.client_key.display().to_string();

    handshake_refused(
        "tls-client-cert-none",
        &["--broker", &url, "--ca", &ca],
        "CertificateRequired",
    );

    let runs = [(
        "tls-last-will",
        vec![
            "--broker",
            &url,
            "--ca",
            &ca,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ],
    )];
    let (out, code, s) = run_all("tls-client-cert", &runs).pop().unwrap();
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let key_text = broker
        .certs
        .client_key_pem
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    for f in std::fs::read_dir(&out).unwrap().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        assert!(
            !text.contains(&key_text),
            "{} holds the key",
            f.path().display()
        );
    }
}

/// The closes TLS adds need TLS, and a fault that reads MQTT needs the proxy to end it: both
/// refused with the key named, exit 2.
#[test]
fn tls_only_settings_are_refused_where_they_cannot_work() {
    let dir = out_dir("tls-refused");
    let cases = [
        (
            "native-last-will",
            "[[faults]]\nkind = \"close-without-notify\"\ncycle = 2\n",
            "faults.kind",
        ),
        (
            "tls-last-will",
            "[tap]\ntls = \"pass-through\"\n[[faults]]\nkind = \"drop\"\npackets = [\"PINGREQ\"]\ncycle = 2\n",
            "tap.tls",
        ),
        ("ws-last-will", "[tap]\ntls = \"terminate\"\n", "tap.tls"),
    ];
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for (i, (base, more, key)) in cases.iter().enumerate() {
        let text = std::fs::read_to_string(builtin.join(format!("{base}.toml"))).unwrap();
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, format!("{text}\n{more}")).unwrap();
        let o = unplug(&[
            "scenario",
            path.to_str().unwrap(),
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(key), "case {i}: {err}");
    }
}

/// The seed's own client over TLS: mqtt.js and paho through the proxy (proxy cut), and mqtt.js
/// and the rumqttc driver in willy's own network namespace (kernel cut, as root). Each trusts
/// the proxy's certificate, which names the address it reaches the proxy at.
#[test]
fn the_drivers_speak_tls_through_proxy_and_kernel_cuts() {
    if drivers_or_skip("the_drivers_speak_tls_through_proxy_and_kernel_cuts").is_none() {
        return;
    }
    let mut runs: Vec<(&str, Vec<&str>)> = vec![
        ("tls-last-will", vec!["--willy", "mqttjs"]),
        ("wss-last-will", vec!["--willy", "paho"]),
    ];
    if root_or_skip("the_drivers_speak_tls_through_proxy_and_kernel_cuts (kernel cut)").is_some() {
        runs.push((
            "wss-last-will",
            vec!["--willy", "mqttjs", "--cut", "kernel"],
        ));
        runs.push((
            "tls-last-will",
            vec!["--willy", "rumqttc", "--cut", "kernel"],
        ));
    }
    for ((name, args), (out, code, s)) in runs.iter().zip(run_all("tls-drivers", &runs)) {
        assert_eq!(code, 0, "{name} {args:?}: {:?}", failed_checks(&s));
        let log = log(&out, name);
        assert!(
            log.contains("TLS from willy ended here"),
            "{name} {args:?}: no TLS from the driver"
        );
    }
}
