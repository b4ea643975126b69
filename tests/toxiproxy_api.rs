//! `unplug proxy` driven through toxiproxy's HTTP API by toxiproxy's own Node client
//! (toxiproxy-node-client 4.1.0 from npm, unchanged; scripts/third-party-brokers.sh installs it
//! and tests/toxiproxy/drive.js speaks to it a JSON line at a time), with a real MQTT client
//! (rumqttc, with a will) through the proxy to a real broker (rumqttd, in this test's process).
//!
//! Without the client library installed the tests that need it say SKIPPED loudly and pass;
//! with CI=true they fail.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

use common::*;
use unplug::toxi::control::request;

/// Where scripts/third-party-brokers.sh put toxiproxy-node-client, or None (SKIPPED).
fn node_client(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("UNPLUG_THIRD_PARTY").unwrap_or("/opt/unplug-third-party".into()),
    )
    .join("toxiproxy/node_modules");
    if dir.join("toxiproxy-node-client").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{test}: {} missing, and CI=true (run scripts/third-party-brokers.sh)",
            dir.display()
        );
    }
    eprintln!(
        "\n*** SKIPPED {test}: toxiproxy-node-client missing in {} (run scripts/third-party-brokers.sh) ***\n",
        dir.display()
    );
    None
}

/// toxiproxy-node-client behind tests/toxiproxy/drive.js.
struct Client {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Client {
    fn start(modules: &Path, api: &str) -> Client {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/toxiproxy/drive.js");
        let mut child = Command::new("node")
            .arg(script)
            .arg(format!("http://{api}"))
            .env("NODE_PATH", modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            answers,
        }
    }

    /// One command; the library's result, or its error message.
    fn call(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{command}").unwrap();
        let line = self
            .answers
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no answer to {command}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        match v.get("error") {
            Some(e) => Err(e.as_str().unwrap_or("").to_string()),
            None => Ok(v["ok"].clone()),
        }
    }

    fn ok(&mut self, command: Value) -> Value {
        let c = command.clone();
        self.call(command)
            .unwrap_or_else(|e| panic!("{c}: the client library failed: {e}"))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has(records: &[Value], event: &str) -> bool {
    records.iter().any(|r| r["event"] == event)
}

#[test]
fn a_toxiproxy_client_cuts_a_real_client_with_a_timeout_toxic_and_the_will_arrives() {
    let test = "a_toxiproxy_client_cuts_a_real_client";
    let Some(modules) = node_client(test) else {
        return;
    };
    let out = out_dir("toxiproxy-life");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker_tcp = broker();
    let upstream = broker_tcp.to_string();

    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let mut client = Client::start(&modules, &api);

    let version = client.ok(json!({"op": "version"}));
    assert!(version.as_str().unwrap().contains("unplug"), "{version}");
    let made = client.ok(json!({"op": "create", "body":
        {"name": "willy", "listen": "127.0.0.1:0", "upstream": upstream}}));
    assert_eq!(made["name"], "willy");
    assert_eq!(made["enabled"], true);
    let listen: std::net::SocketAddr = made["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(listen.port(), 0, "the real port is reported: {made}");

    // monit straight to the broker, willy (keepalive 2 s, with a will) through the proxy.
    let will_topic = "unplug/will/willy";
    let (will_tx, will_rx) = mpsc::channel::<Instant>();
    let (sub_tx, sub_rx) = mpsc::channel::<()>();
    let (conn_tx, conn_rx) = mpsc::channel::<()>();
    rt.spawn(async move {
        let mut o = MqttOptions::new("monit", broker_tcp.ip().to_string(), broker_tcp.port());
        o.set_keep_alive(Duration::from_secs(5));
        let (c, mut ev) = AsyncClient::new(o, 10);
        c.subscribe(will_topic, QoS::AtLeastOnce).await.unwrap();
        for _ in 0..10_000 {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = sub_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == will_topic => {
                    let _ = will_tx.send(Instant::now());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        drop(c);
    });
    sub_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("monit subscribed");
    rt.spawn(async move {
        let mut o = MqttOptions::new("willy", listen.ip().to_string(), listen.port());
        o.set_keep_alive(Duration::from_secs(2));
        o.set_last_will(LastWill::new(
            will_topic,
            "willy is gone",
            QoS::AtLeastOnce,
            false,
        ));
        let (c, mut ev) = AsyncClient::new(o, 10);
        for _ in 0..10_000 {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = conn_tx.send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        drop(c);
    });
    conn_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("willy connected through the proxy");
    std::thread::sleep(Duration::from_millis(300));

    // The cable is pulled: toxiproxy's timeout toxic at 0 on willy's stream.
    let cut = Instant::now();
    let toxic = client.ok(json!({"op": "addToxic", "proxy": "willy", "body":
        {"name": "cable", "type": "timeout", "stream": "upstream", "toxicity": 1.0,
         "attributes": {"timeout": 0}}}));
    assert_eq!(
        toxic,
        json!({"attributes": {"timeout": 0}, "name": "cable", "stream": "upstream",
               "toxicity": 1, "type": "timeout"})
    );
    assert!(will_rx.try_recv().is_err(), "no will before the cut");
    let will_at = will_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the broker dropped willy and published its will");
    // rumqttd drops at 1.5 x keepalive (3 s) after willy's last packet, which was at most one
    // keepalive (2 s) before the cut: from 1 s to 3 s after it, plus 500 ms of scheduling.
    let after = will_at - cut;
    assert!(
        after >= Duration::from_millis(1000) && after <= Duration::from_millis(3500),
        "the will came {after:?} after the cut"
    );

    assert_eq!(
        client.ok(json!({"op": "getToxic", "proxy": "willy", "name": "cable"}))["type"],
        "timeout"
    );
    client.ok(json!({"op": "removeToxic", "proxy": "willy", "name": "cable"}));
    assert_eq!(
        client.call(json!({"op": "getToxic", "proxy": "willy", "name": "cable"})),
        Err("Request failed with status code 404".to_string())
    );
    client.ok(json!({"op": "remove", "proxy": "willy"}));
    assert_eq!(client.ok(json!({"op": "all"})), json!({}));

    assert_eq!(served.interrupt(), 0, "{}", served.seen.join("\n"));
    let recs = records(&out.join("willy.events.jsonl"));
    let connect = recs
        .iter()
        .find(|r| r["event"] == "packet" && r["kind"] == "CONNECT")
        .unwrap_or_else(|| panic!("the tap saw willy's CONNECT: {recs:#?}"));
    assert_eq!(connect["conn"], 1, "{connect}");
    assert!(recs
        .iter()
        .any(|r| r["event"] == "fault_applied" && r["fault"] == "blackhole upstream"));
    assert!(recs
        .iter()
        .any(|r| r["event"] == "fault_healed" && r["fault"] == "blackhole upstream"));
    assert!(has(&recs, "connection_closed"));
    // Judged from the journal alone: the will topic and keepalive from the CONNECT the tap
    // saw, the will from the proxy's monit; rumqttd's profile (it drops at 1.5 x keepalive).
    let journal = out.join("willy.events.jsonl");
    let o = unplug(&["judge", journal.to_str().unwrap(), "--profile", "rumqttd"]);
    let verdict = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{verdict}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for check in ["will ", "keepalive-drop ", "will-timing "] {
        assert!(
            verdict
                .lines()
                .any(|l| l.trim_start().starts_with("pass") && l.contains(check)),
            "{check}: {verdict}"
        );
    }
    assert!(
        !verdict.contains("client-detect"),
        "willy's own reports are not in a proxy's journal: {verdict}"
    );
    // When the proxy stopped it judged and drew the same.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("willy.summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["checks"].as_array().unwrap().len(),
        verdict.lines().filter(|l| l.starts_with("  ")).count()
    );
    assert!(std::fs::read_to_string(out.join("willy.svg"))
        .unwrap()
        .starts_with("<svg"));
    // The terminal had a line per packet too.
    assert!(
        served.seen.iter().any(|l| l.contains("CONNECT")),
        "{}",
        served.seen.join("\n")
    );
}

#[test]
fn the_library_manages_proxies_and_toxics_as_toxiproxy_does() {
    let Some(modules) = node_client("the_library_manages_proxies_and_toxics") else {
        return;
    };
    let out = out_dir("toxiproxy-manage");
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let mut client = Client::start(&modules, &api);
    let up = "127.0.0.1:9";
    let made = client.ok(json!({"op": "populate", "body": [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": up},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": up, "enabled": false}]}));
    assert_eq!(made, json!(["a", "b"]));
    let all = client.ok(json!({"op": "all"}));
    assert_eq!(all["a"]["enabled"], true);
    assert_eq!(all["b"]["enabled"], false);
    assert_eq!(
        client.ok(json!({"op": "update", "proxy": "b", "body": {"enabled": true}}))["enabled"],
        true
    );
    let lat = client.ok(json!({"op": "addToxic", "proxy": "a", "body":
        {"type": "latency", "attributes": {"latency": 50}}}));
    assert_eq!(lat["name"], "latency_downstream");
    assert_eq!(lat["attributes"], json!({"latency": 50, "jitter": 0}));
    let lat = client.ok(
        json!({"op": "updateToxic", "proxy": "a", "name": "latency_downstream",
        "body": {"attributes": {"jitter": 10}}}),
    );
    assert_eq!(lat["attributes"], json!({"latency": 50, "jitter": 10}));
    // Ours beside toxiproxy's: drop PINGREQ on willy's stream.
    let drop = client.ok(json!({"op": "addToxic", "proxy": "a", "body":
        {"type": "drop", "stream": "upstream", "attributes": {"packets": ["PINGREQ"]}}}));
    assert_eq!(drop["name"], "drop_upstream");
    // Listed upstream first, as toxiproxy's chains are.
    let (status, list) = request(&api, "GET", "/proxies/a/toxics", None).unwrap();
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["drop_upstream", "latency_downstream"]);
    // toxiproxy's slicer with average_size 0 would recurse for ever: refused as a bad body.
    assert_eq!(
        client.call(json!({"op": "addToxic", "proxy": "a", "body": {"type": "slicer"}})),
        Err("Request failed with status code 400".to_string())
    );
    // What unplug does not do is still its 501: toxicity below 1 on a listener's toxic.
    assert_eq!(
        client.call(json!({"op": "addToxic", "proxy": "a", "body":
            {"type": "hang", "toxicity": 0.5}})),
        Err("Request failed with status code 501".to_string())
    );
    client.ok(json!({"op": "reset"}));
    let (_, list) = request(&api, "GET", "/proxies/a/toxics", None).unwrap();
    assert_eq!(list, json!([]));
    client.ok(json!({"op": "remove", "proxy": "a"}));
    client.ok(json!({"op": "remove", "proxy": "b"}));
    assert_eq!(client.ok(json!({"op": "all"})), json!({}));
    assert_eq!(served.interrupt(), 0);
}

/// The API answers bad requests with toxiproxy's `{"error", "status"}` and its status codes.
#[test]
fn errors_have_toxiproxys_shape_and_status_codes() {
    let out = out_dir("toxiproxy-errors");
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let call = |method: &str, path: &str, body: Option<Value>| {
        request(&api, method, path, body.as_ref()).unwrap()
    };
    let err = |status: u16, error: &str| (status, json!({"error": error, "status": status}));

    assert_eq!(
        call("GET", "/proxies/nope", None),
        err(404, "proxy not found")
    );
    // A web page cannot reach it through a browser, as toxiproxy's cannot.
    let mut s = std::net::TcpStream::connect(&api).unwrap();
    s.write_all(
        b"GET /proxies HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(
        call("POST", "/proxies", Some(json!({"upstream": "127.0.0.1:9"}))),
        err(400, "missing required field: name")
    );
    assert_eq!(
        call("POST", "/proxies", Some(json!({"name": "x"}))),
        err(400, "missing required field: upstream")
    );
    let (status, body) = call("POST", "/proxies", Some(json!("not an object")));
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request body: "),
        "{body}"
    );
    let (status, made) = call(
        "POST",
        "/proxies",
        Some(json!({"name": "x", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["toxics"], json!([]));
    assert_eq!(
        call(
            "POST",
            "/proxies",
            Some(json!({"name": "x", "upstream": "127.0.0.1:9"}))
        ),
        err(409, "proxy already exists")
    );
    // Listening where something already listens (the API itself): the OS's refusal, 500.
    let (status, body) = call(
        "POST",
        "/proxies",
        Some(json!({"name": "y", "listen": api, "upstream": "127.0.0.1:9"})),
    );
    assert_eq!(
        (status, body["status"].clone()),
        (500, json!(500)),
        "{body}"
    );
    let toxics = "/proxies/x/toxics";
    assert_eq!(
        call("POST", toxics, Some(json!({"type": "nope"}))),
        err(400, "invalid toxic type")
    );
    assert_eq!(
        call(
            "POST",
            toxics,
            Some(json!({"type": "latency", "stream": "sideways"}))
        ),
        err(
            400,
            "stream was invalid, can be either upstream or downstream"
        )
    );
    let (status, body) = call(
        "POST",
        toxics,
        Some(json!({"type": "latency", "attributes": {"latency": "slow"}})),
    );
    assert_eq!(
        (status, body["status"].clone()),
        (400, json!(400)),
        "{body}"
    );
    assert_eq!(call("POST", toxics, Some(json!({"type": "hang"}))).0, 200);
    assert_eq!(
        call("POST", toxics, Some(json!({"type": "hang"}))),
        err(409, "toxic already exists")
    );
    assert_eq!(
        call("GET", "/proxies/x/toxics/nope", None),
        err(404, "toxic not found")
    );
    assert_eq!(
        call("DELETE", "/proxies/x/toxics/nope", None),
        err(404, "toxic not found")
    );
    let (status, body) = call(
        "POST",
        toxics,
        Some(json!({"type": "refuse", "toxicity": 0.5})),
    );
    assert_eq!(
        (status, body["status"].clone()),
        (501, json!(501)),
        "{body}"
    );
    assert_eq!(
        call(
            "POST",
            toxics,
            Some(
                json!({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 10}})
            )
        ),
        err(
            400,
            "bad request body: slicer size_variation 10 must be less than average_size 10"
        )
    );
    assert_eq!(
        call("DELETE", "/proxies/x/toxics/hang_downstream", None),
        (204, Value::Null)
    );
    assert_eq!(call("POST", "/reset", None), (204, Value::Null));
    assert_eq!(call("DELETE", "/proxies/x", None), (204, Value::Null));
    assert_eq!(
        call("DELETE", "/proxies/x", None),
        err(404, "proxy not found")
    );
    assert_eq!(served.interrupt(), 0);
}

/// Ctrl-C while a client is connected through the proxy: the connection is closed, the journal
/// ends with it, and the process exits 0.
#[test]
fn ctrl_c_with_a_connection_open_completes_the_journal_and_exits_0() {
    let out = out_dir("toxiproxy-ctrl-c");
    let upstream = broker().to_string();
    let mut served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--name",
        "dev",
        "--no-api",
        "--out",
        out.to_str().unwrap(),
    ]);
    let line = served.line("proxy dev: listening on ");
    let listen = line["proxy dev: listening on ".len()..]
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let mut s = std::net::TcpStream::connect(&listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // CONNECT, 3.1.1, client id "dev", keepalive 30 s.
    s.write_all(b"\x10\x0f\x00\x04MQTT\x04\x02\x00\x1e\x00\x03dev")
        .unwrap();
    let mut connack = [0u8; 4];
    std::io::Read::read_exact(&mut s, &mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);

    assert_eq!(served.interrupt(), 0, "{}", served.seen.join("\n"));
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut rest);
    assert!(
        rest.is_empty(),
        "the proxy closed the connection (FIN), sent nothing more"
    );
    let recs = records(&out.join("dev.events.jsonl"));
    let closed = recs
        .iter()
        .position(|r| r["event"] == "connection_closed")
        .expect("the connection's close is in the journal");
    let last = recs.last().unwrap();
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m == "proxy dev stopped"),
        "the journal ends with the stop: {last}"
    );
    assert!(closed < recs.len() - 1);
    let log = std::fs::read_to_string(out.join("dev.log")).unwrap();
    assert_eq!(
        log.lines().count(),
        recs.len(),
        "the log has a line per record"
    );
}

#[test]
fn the_command_line_cuts_heals_and_lists_through_the_api() {
    let out = out_dir("toxiproxy-cli");
    let mut served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:9",
        "--name",
        "dev",
        "--api",
        "127.0.0.1:0",
        "--out",
        out.to_str().unwrap(),
    ]);
    let api = served.api();
    let ctl = |args: &[&str]| {
        let mut all = vec!["proxy"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--api", &api]);
        let o = unplug(&all);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = ctl(&["cut"]);
    assert_eq!(code, 0, "{stdout}");
    let (_, list) = request(&api, "GET", "/proxies/dev/toxics", None).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["type"] == "timeout" && t["attributes"]["timeout"] == 0));
    let (code, stdout, _) = ctl(&[
        "toxic",
        "add",
        "drop",
        "-a",
        "packets=PINGREQ",
        "--stream",
        "upstream",
    ]);
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = ctl(&["list"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("drop_upstream (drop upstream packets=\"PINGREQ\")"),
        "{stdout}"
    );
    let (code, _, _) = ctl(&["toxic", "rm", "drop_upstream"]);
    assert_eq!(code, 0);
    let (code, stdout, _) = ctl(&["heal"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("2 toxics removed"), "{stdout}");
    let (_, list) = request(&api, "GET", "/proxies/dev/toxics", None).unwrap();
    assert_eq!(list, json!([]));

    // The API's refusal, in its words, exit 2.
    let (code, _, stderr) = ctl(&["toxic", "add", "slicer"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("400 bad request body: slicer average_size must be at least 1"),
        "{stderr}"
    );
    let (code, _, stderr) = ctl(&["toxic", "add", "hang", "--toxicity", "0.5"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("501 not implemented by unplug: toxicity 0.5 on a hang toxic"),
        "{stderr}"
    );
    let (code, _, stderr) = ctl(&["toxic", "rm", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("404 toxic not found"), "{stderr}");
    assert_eq!(served.interrupt(), 0);

    // No API there at all.
    let o = unplug(&["proxy", "list", "--api", &api]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach the API"));
}

#[test]
fn bad_input_is_a_clear_error_and_exit_2() {
    for (args, says) in [
        (
            vec![
                "proxy",
                "--listen",
                "nonsense",
                "--upstream",
                "127.0.0.1:9",
                "--no-api",
            ],
            "listen \"nonsense\"",
        ),
        (
            vec![
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
                "--name",
                "../x",
                "--no-api",
            ],
            "proxy name \"../x\"",
        ),
        (vec!["proxy", "--no-api"], "nothing to serve"),
        (vec!["proxy", "--listen", "127.0.0.1:0"], "--upstream"),
        (
            vec!["proxy", "toxic", "add", "latency", "-a", "latency"],
            "expected KEY=VALUE",
        ),
    ] {
        let o = unplug(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let o = unplug(&["proxy", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("unplug proxy --listen 127.0.0.1:1884"),
        "{help}"
    );
}

/// A client through `proxy`'s listen address, CONNECTed (3.1.1, keepalive 30 s) to rumqttd.
fn connected(listen: &str, id: &str) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut connect = vec![0x10, (12 + id.len()) as u8, 0, 4];
    connect.extend_from_slice(b"MQTT\x04\x02\x00\x1e");
    connect.extend_from_slice(&[0, id.len() as u8]);
    connect.extend_from_slice(id.as_bytes());
    s.write_all(&connect).unwrap();
    let mut connack = [0u8; 4];
    std::io::Read::read_exact(&mut s, &mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    s
}

/// toxiproxy's `reset_peer` resets the connection after its timeout; its `timeout` above 0
/// swallows the bytes, then closes the connection after its timeout. Each connection has its
/// own timer, from when the toxic met it.
#[test]
fn reset_peer_and_a_timeout_above_zero_end_the_connection_after_their_time() {
    let out = out_dir("toxiproxy-timers");
    let upstream = broker().to_string();
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    for (name, toxic, ends) in [
        (
            "rst",
            json!({"type": "reset_peer", "attributes": {"timeout": 300}}),
            "reset",
        ),
        (
            "fin",
            json!({"type": "timeout", "attributes": {"timeout": 300}}),
            "eof",
        ),
    ] {
        let (status, made) = request(
            &api,
            "POST",
            "/proxies",
            Some(&json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream})),
        )
        .unwrap();
        assert_eq!(status, 201, "{made}");
        let mut s = connected(made["listen"].as_str().unwrap(), name);
        let added = Instant::now();
        let (status, t) = request(
            &api,
            "POST",
            &format!("/proxies/{name}/toxics"),
            Some(&toxic),
        )
        .unwrap();
        assert_eq!(status, 200, "{t}");
        let mut buf = [0u8; 16];
        let got = std::io::Read::read(&mut s, &mut buf);
        let after = added.elapsed();
        match (ends, &got) {
            ("reset", Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
            ("eof", Ok(0)) => {}
            _ => panic!("{name}: expected {ends}, got {got:?}"),
        }
        assert!(
            after >= Duration::from_millis(300) && after < Duration::from_millis(1500),
            "{name}: ended {after:?} after the toxic"
        );
        // A connection opened while the toxic is there gets its own timer, as in toxiproxy.
        let mut later = std::net::TcpStream::connect(made["listen"].as_str().unwrap()).unwrap();
        later
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let opened = Instant::now();
        let got = std::io::Read::read(&mut later, &mut buf);
        let after = opened.elapsed();
        match (ends, &got) {
            ("reset", Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
            ("eof", Ok(0)) => {}
            _ => panic!("{name}, a later connection: expected {ends}, got {got:?}"),
        }
        assert!(
            after >= Duration::from_millis(300) && after < Duration::from_millis(1500),
            "{name}: a later connection ended {after:?} after it opened"
        );
        assert_eq!(
            request(&api, "DELETE", &format!("/proxies/{name}"), None)
                .unwrap()
                .0,
            204
        );
        let recs = records(&out.join(format!("{name}.events.jsonl")));
        let cut = recs
            .iter()
            .find(|r| r["event"] == "connection_cut")
            .unwrap_or_else(|| panic!("{name}: {recs:#?}"));
        assert_eq!(
            cut["fault"],
            if ends == "reset" { "reset" } else { "close" }
        );
    }
    assert_eq!(served.interrupt(), 0);
}

/// What a plain TCP server saw of one connection: when it closed its end (after writing, when
/// it does) and every byte the client's side sent until it ended.
struct Served1 {
    closed: Instant,
    got: Vec<u8>,
}

/// A TCP server on 127.0.0.1 for `conns` connections: each waits for the client's first bytes,
/// answers `payload` in one write, then closes at once (`close_first`) or reads until the
/// other side ends. Reports each connection on the channel. A connection that does not start
/// with "go" is the proxy's own probe of its upstream (an MQTT CONNECT): closed, not counted.
fn tcp_server(
    conns: usize,
    payload: Vec<u8>,
    close_first: bool,
) -> (String, mpsc::Receiver<Served1>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..conns + 20 {
            let Ok((mut s, _)) = l.accept() else { return };
            let (tx, payload) = (tx.clone(), payload.clone());
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut got = vec![0u8; 2];
                if std::io::Read::read_exact(&mut s, &mut got).is_err() || got != b"go" {
                    return;
                }
                let _ = s.write_all(&payload);
                if !close_first {
                    let mut rest = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut s, &mut rest);
                    got.extend(rest);
                }
                drop(s);
                let _ = tx.send(Served1 {
                    closed: Instant::now(),
                    got,
                });
            });
        }
    });
    (addr, rx)
}

/// Every read the client made until EOF: when, and what.
fn reads_until_eof(s: &mut std::net::TcpStream) -> Vec<(Instant, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reads = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    for _ in 0..100_000 {
        match std::io::Read::read(s, &mut buf) {
            Ok(0) => return reads,
            Ok(n) => reads.push((Instant::now(), buf[..n].to_vec())),
            Err(e) => panic!("read failed after {} reads: {e}", reads.len()),
        }
    }
    panic!("no EOF after 100000 reads")
}

/// A proxy in front of `upstream`, made by toxiproxy's Node client; its listen address.
fn made_proxy(client: &mut Client, name: &str, upstream: &str) -> String {
    let made = client.ok(json!({"op": "create", "body":
        {"name": name, "listen": "127.0.0.1:0", "upstream": upstream}}));
    made["listen"].as_str().unwrap().to_string()
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// toxiproxy's `slicer`: a 1000-byte write from the server reaches the client as slices of at
/// most average_size + size_variation bytes, `delay` apart.
#[test]
fn slicer_cuts_a_write_into_slices_a_delay_apart() {
    let Some(modules) = node_client("slicer_cuts_a_write_into_slices") else {
        return;
    };
    let out = out_dir("toxiproxy-slicer");
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let mut client = Client::start(&modules, &api);
    let data = payload(1000);
    let (upstream, _seen) = tcp_server(1, data.clone(), false);
    let listen = made_proxy(&mut client, "sliced", &upstream);
    let (avg, var, delay_us) = (100usize, 20usize, 50_000u64);
    let toxic = client.ok(json!({"op": "addToxic", "proxy": "sliced", "body":
        {"type": "slicer", "attributes":
            {"average_size": avg, "size_variation": var, "delay": delay_us}}}));
    assert_eq!(
        toxic,
        json!({"attributes": {"average_size": 100, "size_variation": 20, "delay": 50000},
               "name": "slicer_downstream", "stream": "downstream", "toxicity": 1,
               "type": "slicer"})
    );
    let mut s = std::net::TcpStream::connect(&listen).unwrap();
    s.set_nodelay(true).unwrap();
    let asked = Instant::now();
    s.write_all(b"go").unwrap();
    let mut reads = Vec::new();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while got.len() < data.len() && reads.len() < 10_000 {
        let n = std::io::Read::read(&mut s, &mut buf).unwrap();
        assert!(n > 0, "EOF after {} bytes", got.len());
        reads.push((Instant::now(), n));
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data, "every byte, in order");
    let sizes: Vec<usize> = reads.iter().map(|r| r.1).collect();
    // toxiproxy's halving makes at least 1000 / (average + variation) slices and fewer than
    // 2 x 1000 / (average + variation). The proxy writes each one alone, a delay apart; a read
    // here may still hold two of them when this loaded machine read late, so the count of
    // reads is at most the slices', and the time is what proves the slicing: n slices take at
    // least n - 1 delays.
    let (least, most) = (data.len().div_ceil(avg + var), 2 * data.len() / (avg + var));
    assert!(
        sizes.len() >= 2 && sizes.len() <= most,
        "{} reads: {sizes:?}",
        sizes.len()
    );
    let delay = Duration::from_micros(delay_us);
    let took = reads.last().unwrap().0 - asked;
    assert!(
        took >= delay * (least as u32 - 1) && took <= delay * most as u32 + Duration::from_secs(2),
        "{} reads took {took:?}",
        sizes.len()
    );
    let gaps: Vec<u128> = reads
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_millis())
        .collect();
    eprintln!(
        "slicer: {} reads of {sizes:?} in {took:?}, gaps ms {gaps:?}",
        sizes.len()
    );
    drop(s);
    client.ok(json!({"op": "remove", "proxy": "sliced"}));
    assert_eq!(served.interrupt(), 0);
    let recs = records(&out.join("sliced.events.jsonl"));
    assert!(
        recs.iter().any(|r| r["event"] == "fault_applied"
            && r["fault"] == "slicer 100 B +20 B 50000 us downstream"),
        "{recs:#?}"
    );
    assert!(recs.iter().any(
        |r| r["event"] == "fault_healed" && r["fault"].as_str().unwrap().starts_with("slicer")
    ));
}

/// toxiproxy's `limit_data`: the connection is closed once that many bytes passed on its
/// stream, exactly that many, either way.
#[test]
fn limit_data_closes_the_connection_after_exactly_its_bytes() {
    let Some(modules) = node_client("limit_data_closes_the_connection") else {
        return;
    };
    let out = out_dir("toxiproxy-limit");
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let mut client = Client::start(&modules, &api);
    let data = payload(1000);
    let (upstream, seen) = tcp_server(2, data.clone(), false);
    let listen = made_proxy(&mut client, "limited", &upstream);

    // Downstream: the server writes 1000 bytes, the client gets 300, then EOF.
    client.ok(json!({"op": "addToxic", "proxy": "limited", "body":
        {"type": "limit_data", "attributes": {"bytes": 300}}}));
    let mut s = std::net::TcpStream::connect(&listen).unwrap();
    s.write_all(b"go").unwrap();
    let got: Vec<u8> = reads_until_eof(&mut s)
        .into_iter()
        .flat_map(|r| r.1)
        .collect();
    assert_eq!(got.len(), 300);
    assert_eq!(got, data[..300]);
    // The server's side was closed too (FIN), not left open.
    let server = seen
        .recv_timeout(Duration::from_secs(10))
        .expect("closed at the server");
    assert_eq!(server.got, b"go");
    drop(s);
    client.ok(json!({"op": "removeToxic", "proxy": "limited", "name": "limit_data_downstream"}));

    // Upstream: the client sends 2 + 40 bytes, the server gets 25, then EOF.
    client.ok(json!({"op": "addToxic", "proxy": "limited", "body":
        {"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 25}}}));
    let mut s = std::net::TcpStream::connect(&listen).unwrap();
    s.write_all(b"go").unwrap();
    let mut first = [0u8; 1000];
    std::io::Read::read_exact(&mut s, &mut first).unwrap();
    let _ = s.write_all(&[7u8; 40]);
    let server = seen
        .recv_timeout(Duration::from_secs(10))
        .expect("closed at the server");
    assert_eq!(server.got.len(), 25, "{:?}", server.got);
    assert_eq!(&server.got[..2], b"go");
    assert!(server.got[2..].iter().all(|&b| b == 7));
    let _ = reads_until_eof(&mut s);
    drop(s);
    client.ok(json!({"op": "remove", "proxy": "limited"}));
    assert_eq!(served.interrupt(), 0);
    let recs = records(&out.join("limited.events.jsonl"));
    let cuts: Vec<&Value> = recs
        .iter()
        .filter(|r| r["event"] == "connection_cut")
        .collect();
    assert_eq!(cuts.len(), 2, "{recs:#?}");
    assert!(cuts.iter().all(|c| c["fault"] == "limit-data"), "{cuts:?}");
    for label in ["limit-data 300 B downstream", "limit-data 25 B upstream"] {
        assert!(
            recs.iter()
                .any(|r| r["event"] == "fault_applied" && r["fault"] == label),
            "{label}"
        );
    }
}

/// toxiproxy's `slow_close`: the server's close reaches the client `delay` late; the bytes
/// before it do not wait.
#[test]
fn slow_close_delays_the_close_by_its_delay() {
    let Some(modules) = node_client("slow_close_delays_the_close") else {
        return;
    };
    let out = out_dir("toxiproxy-slow-close");
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let mut client = Client::start(&modules, &api);
    let (upstream, seen) = tcp_server(1, b"bye".to_vec(), true);
    let listen = made_proxy(&mut client, "slow", &upstream);
    client.ok(json!({"op": "addToxic", "proxy": "slow", "body":
        {"type": "slow_close", "attributes": {"delay": 500}}}));
    let mut s = std::net::TcpStream::connect(&listen).unwrap();
    s.write_all(b"go").unwrap();
    let reads = reads_until_eof(&mut s);
    let eof = Instant::now();
    let closed = seen.recv_timeout(Duration::from_secs(10)).unwrap().closed;
    let got: Vec<u8> = reads.iter().flat_map(|r| r.1.clone()).collect();
    assert_eq!(got, b"bye");
    let late = eof - closed;
    assert!(
        late >= Duration::from_millis(500) && late <= Duration::from_millis(2500),
        "the close came {late:?} after the server's"
    );
    let early = reads[0].0.saturating_duration_since(closed);
    assert!(early < Duration::from_millis(400), "bytes waited {early:?}");
    eprintln!("slow_close 500 ms: EOF {late:?} after the server closed");
    drop(s);
    client.ok(json!({"op": "remove", "proxy": "slow"}));
    assert_eq!(served.interrupt(), 0);
    let recs = records(&out.join("slow.events.jsonl"));
    assert!(recs
        .iter()
        .any(|r| r["event"] == "fault_applied" && r["fault"] == "slow-close 500 ms downstream"));
    assert!(recs.iter().any(|r| r["message"]
        .as_str()
        .is_some_and(|m| m.contains("slow_close"))));
}

/// toxiproxy's toxicity: a toxic at 0.5 acts on some connections and not on others, decided
/// per connection and recorded; what each connection met is what the journal says.
#[test]
fn toxicity_between_0_and_1_picks_connections_and_says_which() {
    let Some(modules) = node_client("toxicity_between_0_and_1") else {
        return;
    };
    let out = out_dir("toxiproxy-toxicity");
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let mut client = Client::start(&modules, &api);
    const CONNS: usize = 40;
    let data = payload(100);
    let (upstream, seen) = tcp_server(CONNS, data.clone(), true);
    let listen = made_proxy(&mut client, "coin", &upstream);
    // Open before the toxic comes (conn 1): decided when the toxic is added.
    let early = std::net::TcpStream::connect(&listen).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let toxic = client.ok(json!({"op": "addToxic", "proxy": "coin", "body":
        {"type": "limit_data", "toxicity": 0.5, "attributes": {"bytes": 10}}}));
    assert_eq!(toxic["toxicity"], 0.5);
    let mut limited = Vec::new();
    for i in 0..CONNS {
        let mut s = std::net::TcpStream::connect(&listen).unwrap();
        s.write_all(b"go").unwrap();
        let got: Vec<u8> = reads_until_eof(&mut s)
            .into_iter()
            .flat_map(|r| r.1)
            .collect();
        match got.len() {
            10 => limited.push(true),
            100 => limited.push(false),
            n => panic!("connection {i}: {n} bytes"),
        }
        assert_eq!(got, data[..got.len()]);
        seen.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    let n = limited.iter().filter(|&&l| l).count();
    eprintln!("toxicity 0.5: limit_data acted on {n} of {CONNS} connections");
    assert!(n > 0 && n < CONNS, "{n} of {CONNS}");
    drop(early);
    client.ok(json!({"op": "remove", "proxy": "coin"}));
    assert_eq!(served.interrupt(), 0);
    // The journal says, per connection, whether the toxic applies: as each one found it.
    let recs = records(&out.join("coin.events.jsonl"));
    let said = |conn: usize| -> Vec<String> {
        let prefix = format!("conn {conn}: fault 1 (limit-data 10 B downstream) ");
        recs.iter()
            .filter_map(|r| r["message"].as_str())
            .filter(|m| m.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(said(1).len(), 1, "conn 1, open when the toxic came");
    let added = recs
        .iter()
        .position(|r| r["event"] == "fault_applied")
        .unwrap();
    assert!(
        recs[added..]
            .iter()
            .any(|r| r["message"].as_str() == Some(said(1)[0].as_str())),
        "decided when the toxic was added"
    );
    for (i, l) in limited.iter().enumerate() {
        // The loop's connections are 2, 3, ...
        let want = if *l { "applies" } else { "does not apply" };
        assert_eq!(
            said(i + 2),
            [format!(
                "conn {}: fault 1 (limit-data 10 B downstream) {want} (toxicity 0.5)",
                i + 2
            )],
        );
    }
}
