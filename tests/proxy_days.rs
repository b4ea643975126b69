//! `unplug proxy` as a person leaves it in front of a device for days, with its defaults: a
//! flood costs a journal record per batch and a terminal line a second, a journal past its
//! budget is thinned and keeps what judging needs, Ctrl-C ends it with a judged summary, and
//! the API refuses what it cannot honour, toxiproxy-shaped. A real broker (rumqttd, in this
//! test's process), the real binary, real sockets on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;
use unplug::toxi::control::request;

/// The address after `word` in the first line containing `needle`.
fn addr_after(served: &mut Served, needle: &str, word: &str) -> SocketAddr {
    let l = served.line_with(needle);
    let rest = &l[l.find(word).unwrap_or_else(|| panic!("{l}")) + word.len()..];
    let addr: String = rest
        .trim_start_matches("http://")
        .chars()
        .take_while(|c| !matches!(c, ',' | ' ' | ';'))
        .collect();
    addr.parse()
        .unwrap_or_else(|e| panic!("{addr:?} in {l:?}: {e}"))
}

/// SIGINT: (exit code, how long it took to exit, every line it printed).
fn stop(mut served: Served) -> (i32, Duration, Vec<String>) {
    let sent = Instant::now();
    let code = served.interrupt();
    (code, sent.elapsed(), std::mem::take(&mut served.seen))
}

fn string(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    unplug::mqtt::string(s.as_bytes(), &mut v);
    v
}

/// CONNECT, MQTT 3.1.1, clean, keepalive 30 s, with a will on `dev/<id>/status`.
fn connect(id: &str) -> Vec<u8> {
    connect_with_keepalive(id, 30)
}

fn connect_with_keepalive(id: &str, keepalive_s: u8) -> Vec<u8> {
    let mut body = string("MQTT");
    body.extend_from_slice(&[4, 0x02 | 0x04, 0, keepalive_s]);
    body.extend(string(id));
    body.extend(string(&format!("dev/{id}/status")));
    body.extend(string("offline"));
    unplug::mqtt::packet(0x10, &body)
}

/// A QoS 0 PUBLISH of exactly 64 bytes.
fn publish() -> Vec<u8> {
    let mut body = string("dev/sensor-1/data");
    body.resize(62, b'x');
    unplug::mqtt::packet(0x30, &body)
}

/// A device: CONNECT (waits for the CONNACK), `n` 64-byte PUBLISHes in 64 KiB writes, then a
/// clean DISCONNECT and close. The seconds the PUBLISHes took.
fn device(proxy: SocketAddr, n: usize) -> f64 {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&connect("sensor-1")).unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let batch = publish().repeat(1024);
    let started = Instant::now();
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(1024);
        s.write_all(&batch[..k * 64]).unwrap();
        sent += k;
    }
    let took = started.elapsed().as_secs_f64();
    s.write_all(&[0xe0, 0]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    took
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// How many PUBLISHes from the device the journal accounts for: a `packet` record each, or a
/// run's count.
fn publishes_recorded(recs: &[Value]) -> u64 {
    recs.iter()
        .filter(|r| r["from"] == "client")
        .map(|r| match r["event"].as_str() {
            Some("publish_run") => r["count"].as_u64().unwrap(),
            Some("packet") if r["kind"] == "PUBLISH" => 1,
            _ => 0,
        })
        .sum()
}

#[test]
fn a_flood_through_the_default_proxy_costs_a_record_per_batch_and_a_line_a_second() {
    let out = out_dir("proxy_days_flood");
    let mut served = Served::in_front_of_the_broker("sensor", &out, &[]);
    let proxy = addr_after(&mut served, "proxy sensor: listening on", "listening on ");
    const N: usize = 200_000;
    let took = device(proxy, N);
    served.line_with("conn 1: closed");
    let (code, stop, lines) = stop(served);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let jsonl = out.join("sensor.events.jsonl");
    let recs = records(&jsonl);
    // Exact: every PUBLISH is in one run or one record, none lost, none twice.
    assert_eq!(publishes_recorded(&recs), N as u64);
    // A record per PUBLISH would take ~46 MB for these (two lines of ~230 B each): runs take
    // a record per recorder batch, each of many packets.
    let journal = size(&jsonl) + size(&out.join("sensor.log"));
    assert!(
        journal < (N as u64 * 230) / 10,
        "journal {journal} B for {N} PUBLISHes"
    );
    // The terminal: the control packets and a flood line about once a second, not a line per
    // packet.
    let flood_lines = lines
        .iter()
        .filter(|l| l.contains("PUBLISH and acks:"))
        .count();
    assert!(
        flood_lines as f64 <= took + 3.0,
        "{flood_lines} flood lines for a flood of {took:.1} s:\n{}",
        lines.join("\n")
    );
    assert!(lines.len() < 60, "{}", lines.join("\n"));
    for needle in [
        "conn 1: device -> upstream CONNECT",
        "conn 1 (sensor-1): PUBLISH and acks:",
        "conn 1: device -> upstream DISCONNECT",
        "proxy sensor, judged from its journal:",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "no {needle:?} in:\n{}",
            lines.join("\n")
        );
    }
    assert!(
        out.join("sensor.summary.json").exists(),
        "judged and written at the stop"
    );
    eprintln!("{N} PUBLISHes in {took:.2} s; journal {journal} B; stopped in {stop:?}");
}

#[test]
fn a_journal_past_its_budget_is_thinned_and_keeps_what_judging_needs() {
    let out = out_dir("proxy_days_budget");
    let upstream = broker().to_string();
    // A record per PUBLISH and a budget of 1 MB: 20,000 PUBLISHes write ~9 MB of lines.
    let mut served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--no-api",
        "--name",
        "small",
        "--out",
        out.to_str().unwrap(),
        "--journal-max",
        "1",
        "--publish-records",
        "each",
        "-q",
    ]);
    let proxy = addr_after(&mut served, "proxy small: listening on", "listening on ");
    const N: usize = 20_000;
    device(proxy, N);
    // The close comes through the journal, after every PUBLISH (a debug build on a loaded
    // machine takes seconds for the records and their thinnings).
    let jsonl = out.join("small.events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !std::fs::read_to_string(&jsonl).is_ok_and(|t| t.contains("connection_closed")) {
        assert!(Instant::now() < deadline, "no connection_closed record");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _, lines) = stop(served);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let journal = size(&jsonl) + size(&out.join("small.log"));
    // Thinned whenever the two files pass the budget: never more than one record over it.
    assert!(journal <= 1_000_000 + 4_096, "journal {journal} B");
    let recs = records(&jsonl);
    let thinned: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            r["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("journal thinned"))
        })
        .collect();
    assert!(!thinned.is_empty(), "no thinning said");
    assert!(publishes_recorded(&recs) < N as u64);
    for kind in ["CONNECT", "CONNACK", "DISCONNECT"] {
        assert!(
            recs.iter()
                .any(|r| r["event"] == "packet" && r["kind"] == kind),
            "{kind} thinned out"
        );
    }
    assert!(recs.iter().any(|r| r["event"] == "connection_closed"));
    // The last PUBLISH before the DISCONNECT is kept: what "the last packet before" reads.
    let disconnect = recs.iter().position(|r| r["kind"] == "DISCONNECT").unwrap();
    assert_eq!(recs[disconnect - 1]["kind"], "PUBLISH");
    // The log was written again with the JSONL: the same records, a line each.
    let log = std::fs::read_to_string(out.join("small.log")).unwrap();
    assert_eq!(log.lines().count(), recs.len());
}

/// The API's answer to one request: (status, JSON body).
fn call(api: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    request(api, method, path, body.as_ref()).unwrap()
}

#[test]
fn the_api_refuses_what_it_cannot_honour_with_the_limit_named() {
    let out = out_dir("proxy_days_api");
    // A file of someone else's where a proxy's journal would go: never replaced.
    std::fs::write(out.join("taken.events.jsonl"), "precious\n").unwrap();
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let up = broker().to_string();
    let (status, made) = call(
        &api,
        "POST",
        "/proxies",
        Some(json!({"name": "taken", "listen": "127.0.0.1:0", "upstream": up})),
    );
    assert_eq!(status, 201, "{made}");
    assert!(
        made["journal"]
            .as_str()
            .unwrap()
            .ends_with("taken-2.events.jsonl"),
        "{made}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("taken.events.jsonl")).unwrap(),
        "precious\n"
    );
    // Not loopback: refused unless --public.
    let (status, body) = call(
        &api,
        "POST",
        "/proxies",
        Some(json!({"name": "open", "listen": "0.0.0.0:0", "upstream": up})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--public"),
        "{body}"
    );
    // Attributes past their maximum, named with it; nothing left in effect.
    let toxics = "/proxies/taken/toxics";
    for (kind, key, value, max) in [
        ("bandwidth", "rate", json!(i64::MAX), "1000000000"),
        ("latency", "latency", json!(86_400_001), "86400000"),
        ("latency", "jitter", json!(1e300), "86400000"),
        ("limit_data", "bytes", json!(-1), "9007199254740992"),
        ("slicer", "average_size", json!(1u64 << 40), "1048576"),
    ] {
        let (status, body) = call(
            &api,
            "POST",
            toxics,
            Some(json!({"type": kind, "attributes": {key: value}})),
        );
        assert_eq!(status, 400, "{kind} {key}={value}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(key) && error.contains(max),
            "{kind} {key}: {error}"
        );
    }
    assert_eq!(call(&api, "GET", toxics, None), (200, json!([])));
    // 64 toxics a proxy, then 429 naming the limit.
    for i in 0..64 {
        let (status, body) = call(
            &api,
            "POST",
            toxics,
            Some(json!({"name": format!("l{i}"), "type": "latency",
                "attributes": {"latency": 86_400_000, "jitter": 86_400_000}})),
        );
        assert_eq!(status, 200, "toxic {i}: {body}");
    }
    let (status, body) = call(
        &api,
        "POST",
        toxics,
        Some(json!({"name": "one-more", "type": "latency"})),
    );
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("64"), "{body}");
    // A body over 64 KiB: 413 before it is read.
    let big = json!({"name": "x".repeat(70_000), "type": "latency"});
    let (status, body) = call(&api, "POST", toxics, Some(big));
    assert_eq!(status, 413, "{body}");
    // Still serving, and /reset leaves no toxic.
    assert_eq!(call(&api, "POST", "/reset", None).0, 204);
    assert_eq!(call(&api, "GET", toxics, None), (200, json!([])));
    let (code, _, lines) = stop(served);
    assert_eq!(code, 0, "{}", lines.join("\n"));
}

#[test]
fn an_api_or_proxy_off_loopback_needs_public() {
    let up = broker().to_string();
    for args in [
        vec!["--api", "0.0.0.0:0"],
        vec!["--listen", "0.0.0.0:0", "--upstream", &up, "--no-api"],
    ] {
        let out = unplug(&[&["proxy"][..], &args, &["--out", "/tmp"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--public"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_api_client_that_sends_its_headers_slowly_is_closed_at_the_header_timeout() {
    let out = out_dir("proxy_days_slowloris");
    let mut served = Served::start(&["--api", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    let api = served.api();
    let mut s = TcpStream::connect(api.as_str()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let opened = Instant::now();
    // A byte every 2 s: never a whole header.
    let (tx, rx) = mpsc::channel();
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || {
        for b in b"GET /version HTTP/1.1\r\nHost: x\r\n".iter().take(12) {
            if w.write_all(&[*b]).is_err() || rx.recv_timeout(Duration::from_secs(2)).is_ok() {
                return;
            }
        }
    });
    let mut buf = [0u8; 256];
    let got = s.read(&mut buf);
    let after = opened.elapsed();
    let _ = tx.send(());
    // hyper answers 408 or just closes: either way at the timeout (10 s), not at the read's
    // own 30 s, and not later than the next of the slow client's bytes after it.
    assert!(
        after >= unplug::toxi::api::REQUEST_TIME
            && after < unplug::toxi::api::REQUEST_TIME + Duration::from_secs(3),
        "closed after {after:?}: {got:?}"
    );
    let (code, _, _) = stop(served);
    assert_eq!(code, 0);
}

/// A device left behind the proxy meets two cuts: a short one it rides out (healed long before
/// rumqttd's 1.5 x keepalive), then a long one after which the broker drops it and publishes
/// its will. The stop's verdict is the first cut's, observed until the second began: the
/// second cut's drop and will are no news of the first (they made the first look like a
/// failed "no-broker-drop" before), and a cut ridden out expects no will.
#[test]
fn a_proxy_journal_with_two_cuts_is_judged_on_the_first_until_the_second_began() {
    let out = out_dir("proxy_days_two_cuts");
    let mut served = Served::in_front_of_the_broker("ride", &out, &[]);
    let api = served.api();
    let proxy = addr_after(&mut served, "proxy ride: listening on", "listening on ");

    // keepalive 2 s: rumqttd drops a device silent for 3 s. It pings every 400 ms.
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&connect_with_keepalive("ride", 2)).unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let (done, stop_pings) = mpsc::channel::<()>();
    let pinger = std::thread::spawn(move || {
        for _ in 0..100 {
            if s.write_all(&[0xc0, 0]).is_err()
                || stop_pings.recv_timeout(Duration::from_millis(400)).is_ok()
            {
                return;
            }
        }
    });
    // The proxy's monit subscribes to the will topic when the tap sees the CONNECT.
    served.line_with("subscribed to dev/ride/status");
    let ctl = |verb: &str| {
        let o = unplug(&["proxy", verb, "--api", &api]);
        assert_eq!(o.status.code(), Some(0), "{o:?}");
    };
    // Silent at the broker for at most 400 + 800 + 400 ms: ridden out.
    ctl("cut");
    std::thread::sleep(Duration::from_millis(800));
    ctl("heal");
    std::thread::sleep(Duration::from_millis(1500));
    // Silent for 5 s: rumqttd drops the device at 3 s and publishes its will.
    ctl("cut");
    served.line_with("dev/ride/status: offline");
    ctl("heal");
    let _ = done.send(());
    pinger.join().unwrap();
    let (code, _, lines) = stop(served);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let all = lines.join("\n");

    // The journal has both cuts and the second one's will.
    let jsonl = out.join("ride.events.jsonl");
    let recs = records(&jsonl);
    let applied = recs
        .iter()
        .filter(|r| r["event"] == "fault_applied")
        .count();
    assert_eq!(applied, 4, "a cut is a fault each way: {all}");
    assert!(
        recs.iter()
            .any(|r| r["event"] == "message_received" && r["topic"] == "dev/ride/status"),
        "monit got the will after the second cut: {all}"
    );
    // Judged at the stop, and again by `unplug judge`: the first cut only, which passes.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ride.summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["pass"], true, "{all}");
    let end = summary["end_reason"].as_str().unwrap();
    assert!(end.starts_with("observed until cut 2 of 2 began"), "{end}");
    let o = unplug(&["judge", jsonl.to_str().unwrap()]);
    let verdict = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{verdict}");
    assert!(
        verdict.contains("pass  will ")
            && verdict.contains("expected the will never reaches monit"),
        "{verdict}"
    );
    assert!(verdict.contains("pass  no-broker-drop"), "{verdict}");
    assert!(verdict.contains("PASS: ride"), "{verdict}");
}
