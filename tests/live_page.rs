//! The live page in a real browser: Debian's headless Chromium, driven over its DevTools
//! protocol (a WebSocket, tungstenite), opens `unplug proxy`'s page before any device, sees a
//! device (rumqttc, keepalive 2 s, a will) connect through the proxy, presses the page's cut
//! button, and sees the will's payload and the verdict arrive on the same open page, without a
//! reload; the verdict is the one `unplug proxy` prints at its stop. The static results index
//! is opened too, and neither page may log an error to the console.
//!
//! Screenshots of each step go to the test's output directory; with `UNPLUG_BLESS=1` also to
//! `results/live/` (committed). Without chromium the test says SKIPPED, unless CI=true.
//! A real broker (rumqttd, in this test's process), the real binary, sockets on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use common::*;

const CLIENT_ID: &str = "sensor-live-27";
const WILL_PAYLOAD: &str = "offline: cable pulled (27)";

/// Debian's chromium, or None after saying loudly why the test is skipped.
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: chromium not installed, and CI=true (scripts/setup.sh installs it)");
        }
        eprintln!("\n*** SKIPPED {test}: chromium not installed (apt-get install chromium) ***\n");
    }
    found
}

/// A headless Chromium; killed (and reaped) on drop, its profile directory removed.
struct Browser {
    child: Child,
    profile: tempfile::TempDir,
    /// Its DevTools endpoint, `127.0.0.1:PORT/devtools/browser/ID`.
    devtools: String,
    /// The browser's own session: pages are made, and the browser closed, through it.
    cdp: Option<Cdp>,
}

impl Browser {
    fn start(bin: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--window-size=1100,760",
                "--force-device-scale-factor=1",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: the drop ends its helpers too.
            .process_group(0)
            .spawn()
            .expect("chromium starts");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..." on stderr.
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { return };
                if let Some(rest) = l.split("ws://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let devtools = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(at) => at,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not say where DevTools listens within 30 s");
            }
        };
        Browser {
            child,
            profile,
            devtools,
            cdp: None,
        }
    }

    /// A new page's DevTools session (asked for on the browser's own WebSocket).
    fn page(&mut self) -> Cdp {
        let browser = self
            .cdp
            .get_or_insert_with(|| Cdp::connect(&format!("ws://{}", self.devtools)));
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().unwrap().to_string();
        let host = self.devtools.split('/').next().unwrap();
        // (the browser's session stays open: it closes the browser at the end)
        let mut cdp = Cdp::connect(&format!("ws://{host}/devtools/page/{id}"));
        for m in ["Page.enable", "Runtime.enable", "Log.enable"] {
            cdp.call(m, json!({}));
        }
        cdp
    }
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let (ws, _) = tungstenite::connect(url).expect("DevTools WebSocket");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        Cdp {
            ws,
            next: 0,
            errors: Vec::new(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Asked to close, it reaps its own helpers; then whatever is left of its group goes.
        if let Some(cdp) = &mut self.cdp {
            let msg = json!({"id": 0, "method": "Browser.close"}).to_string();
            let _ = cdp.ws.send(Message::text(msg));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.profile;
    }
}

/// One DevTools session: calls answered by id; the console's errors kept as they come.
struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
    /// Console errors, uncaught exceptions and failed loads, as DevTools reported them.
    errors: Vec<String>,
}

impl Cdp {
    /// Call `method`; its result within 20 s.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let Some(v) = self.read() else { continue };
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
        panic!("{method}: no answer within 20 s");
    }

    /// One message (None on a read timeout); events noted.
    fn read(&mut self) -> Option<Value> {
        let m = match self.ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(_) => return None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(e) => panic!("DevTools connection: {e}"),
        };
        let v: Value = serde_json::from_str(m.as_str()).unwrap();
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => self
                .errors
                .push(format!("exception: {}", v["params"]["exceptionDetails"])),
            Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => self
                .errors
                .push(format!("console.error: {}", v["params"]["args"])),
            Some("Log.entryAdded") if v["params"]["entry"]["level"] == "error" => self
                .errors
                .push(format!("log: {}", v["params"]["entry"]["text"])),
            _ => {}
        }
        Some(v)
    }

    /// `expr` evaluated in the page (its value, by value).
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Wait until `expr` is true in the page, at most `within`; what the page says otherwise.
    fn wait_for(&mut self, what: &str, expr: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.eval(expr) == Value::Bool(true) {
                return;
            }
            // Events meanwhile (and a pause between looks).
            let _ = self.read();
        }
        let text = self.eval("document.body.innerText");
        panic!("the page did not show {what} within {within:?}; it shows:\n{text}");
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(
            "a loaded document",
            "document.readyState === 'complete'",
            Duration::from_secs(20),
        );
    }

    /// A PNG of the viewport, to `dir/name` (and results/live/name when blessing).
    fn screenshot(&mut self, dir: &Path, name: &str) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        std::fs::write(dir.join(name), &png).unwrap();
        if std::env::var("UNPLUG_BLESS").is_ok_and(|v| v == "1") {
            let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/live");
            std::fs::create_dir_all(&kept).unwrap();
            std::fs::write(kept.join(name), &png).unwrap();
        }
    }
}

/// A device through the proxy: rumqttc, MQTT 3.1.1, keepalive 2 s, a will; polled until
/// `stop` (at most 90 s).
fn device(proxy: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
            let mut o = MqttOptions::new(CLIENT_ID, proxy.ip().to_string(), proxy.port());
            o.set_keep_alive(Duration::from_secs(2));
            o.set_clean_session(true);
            o.set_last_will(LastWill::new(
                format!("dev/{CLIENT_ID}/status"),
                WILL_PAYLOAD,
                QoS::AtLeastOnce,
                false,
            ));
            let (_client, mut events) = AsyncClient::new(o, 10);
            let deadline = Instant::now() + Duration::from_secs(90);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let polled = tokio::time::timeout(Duration::from_millis(200), events.poll());
                if let Ok(Err(_)) = polled.await {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
    })
}

#[test]
fn a_device_s_will_arrives_on_the_open_page_after_its_cut_button_is_pressed() {
    let test = "live_page_will";
    let Some(bin) = chromium_or_skip(test) else {
        return;
    };
    let out = out_dir(test);
    let mut served = Served::in_front_of_the_broker("dev", &out, &[]);
    let api = served.api();
    let page_line = served.line("page: ");
    assert!(
        page_line.contains(&format!("http://{api}/ui")),
        "{page_line}"
    );
    let l = served.line_with("proxy dev: listening on");
    let proxy: std::net::SocketAddr = l
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .parse()
        .unwrap();

    let mut browser = Browser::start(&bin);
    let mut page = browser.page();
    let started = Instant::now();

    // 1. The page, before any device.
    page.navigate(&format!("http://{api}/ui"));
    page.wait_for(
        "its event stream live and proxy dev",
        "document.getElementById('status').textContent === 'live' && !!document.getElementById('proxy-dev')",
        Duration::from_secs(10),
    );
    // A mark that a reload would wipe.
    page.eval("window.unplugMark = 27; true");
    page.screenshot(&out, "1-open.png");

    // 2. A device connects: its client id on the page.
    let stop = Arc::new(AtomicBool::new(false));
    let dev = device(proxy, stop.clone());
    page.wait_for(
        "the device's client id",
        &format!("[...document.querySelectorAll('#proxy-dev .client-id')].some(e => e.textContent === '{CLIENT_ID}')"),
        Duration::from_secs(10),
    );
    page.wait_for(
        "its keepalive bar moving",
        "[...document.querySelectorAll('#proxy-dev tr.open .since')].some(e => / \\/ 3\\.0 s$/.test(e.textContent))",
        Duration::from_secs(10),
    );
    page.screenshot(&out, "2-device.png");

    // 3. The cut button.
    page.eval("document.querySelector('#proxy-dev button[data-action=cut-both]').click(); true");
    page.wait_for(
        "the cut in effect",
        "document.querySelector('#proxy-dev .faults').textContent.includes('in effect')",
        Duration::from_secs(10),
    );
    let cut_at = Instant::now();
    page.screenshot(&out, "3-cut.png");

    // 4. The will, on the same page, without a reload.
    page.wait_for(
        "the will's payload",
        &format!("[...document.querySelectorAll('#proxy-dev .will .payload')].some(e => e.textContent === {})", json!(WILL_PAYLOAD)),
        Duration::from_secs(20),
    );
    let will_after = cut_at.elapsed();
    assert_eq!(
        page.eval("window.unplugMark"),
        json!(27),
        "the page was reloaded"
    );
    page.screenshot(&out, "4-will.png");

    // 5. The verdict, decided, and its timeline.
    page.wait_for(
        "the verdict, decided",
        "!!document.querySelector('#proxy-dev .verdict .word') && document.querySelector('#proxy-dev .verdict').textContent.includes('(decided)')",
        Duration::from_secs(20),
    );
    page.wait_for(
        "the timeline drawn",
        "(() => { const i = document.querySelector('#proxy-dev .timeline img'); return !!i && i.complete && i.naturalWidth > 0; })()",
        Duration::from_secs(10),
    );
    page.eval("document.querySelector('#proxy-dev .verdict').scrollIntoView(); true");
    page.screenshot(&out, "5-verdict.png");
    let word = page
        .eval("document.querySelector('#proxy-dev .verdict .word').textContent")
        .as_str()
        .unwrap()
        .to_string();
    let lines = page
        .eval("document.querySelector('#proxy-dev .verdict pre').textContent")
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        page.errors.is_empty(),
        "the page logged errors: {:#?}",
        page.errors
    );

    // The static results index: no error in the console either.
    let index = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/index.html");
    page.navigate(&format!("file://{}", index.display()));
    let _ = page.read();
    assert!(
        page.errors.is_empty(),
        "results/index.html logged errors: {:#?}",
        page.errors
    );

    stop.store(true, Ordering::Relaxed);
    dev.join().unwrap();
    drop(browser);
    // The words the CLI prints at the stop are the page's.
    let code = served.interrupt();
    assert_eq!(code, 0, "{}", served.seen.join("\n"));
    let printed = served.seen.join("\n");
    // Each check's line, word for word (the run's last line names how it ended: the page
    // judged a proxy still running).
    let checks: Vec<&str> = lines
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::trim_end)
        .collect();
    assert!(!checks.is_empty(), "{lines}");
    for c in &checks {
        assert!(
            printed.contains(c),
            "the page's {c:?} is not what unplug proxy printed:\n{printed}"
        );
    }
    assert!(
        printed.contains(&format!("{word}: dev (")),
        "the page's verdict {word} is not what unplug proxy printed:\n{printed}"
    );
    eprintln!(
        "page open to verdict in {:.1} s; the will on the page {:.1} s after the cut button; {word}",
        started.elapsed().as_secs_f64(),
        will_after.as_secs_f64()
    );
}

/// One raw HTTP/1.1 request; the status and the first bytes of the answer (at most 4 KiB,
/// within 5 s): enough for an event stream that does not end.
fn raw(api: &str, head: &str) -> (u16, String, TcpStream) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text, s)
}

#[test]
fn the_page_is_for_browsers_its_actions_need_its_token_and_its_streams_are_capped() {
    let out = out_dir("live_page_guard");
    let mut served = Served::in_front_of_the_broker("dev", &out, &["--quiet"]);
    let api = served.api();
    let get = |path: &str, host: &str, ua: &str| {
        raw(
            &api,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nConnection: close\r\n\r\n"),
        )
    };
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120";
    // toxiproxy's guard is unchanged; the page is for browsers.
    assert_eq!(get("/proxies", &api, browser).0, 403);
    assert_eq!(get("/proxies", &api, "toxiproxy-go").0, 200);
    let (status, page, _) = get("/ui", &api, browser);
    assert_eq!(status, 200, "{page}");
    // A DNS name (a rebinding page) is not served the page or its token.
    assert_eq!(
        get(
            "/ui",
            &format!("evil.example:{}", &api[api.rfind(':').unwrap() + 1..]),
            browser
        )
        .0,
        403
    );
    // The page's token, from the page.
    let (_, body, mut s) = get("/ui", &api, browser);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut rest);
    let body = body + &rest;
    let token = body
        .split("name=\"unplug-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 32, "{body}");
    assert!(
        !served.seen.iter().any(|l| l.contains(&token)),
        "the token is printed"
    );
    let post = |headers: &str| {
        raw(
            &api,
            &format!("POST /ui/api/proxies/dev/cut HTTP/1.1\r\nHost: {api}\r\nUser-Agent: {browser}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n{headers}\r\n{{}}"),
        )
        .0
    };
    assert_eq!(post(""), 403, "no token");
    assert_eq!(post("X-Unplug-Token: 0123\r\n"), 403, "a wrong token");
    assert_eq!(
        post(&format!(
            "X-Unplug-Token: {token}\r\nOrigin: http://evil.example\r\n"
        )),
        403,
        "another origin"
    );
    assert_eq!(
        post(&format!(
            "X-Unplug-Token: {token}\r\nOrigin: http://{api}\r\n"
        )),
        200,
        "the page itself"
    );
    let (_, toxics) =
        unplug::toxi::control::request(&api, "GET", "/proxies/dev/toxics", None).unwrap();
    assert_eq!(toxics.as_array().map(Vec::len), Some(2), "{toxics}");

    // At most 8 pages' streams at once (Limits::page_clients); the 9th is refused, named.
    let mut open = Vec::new();
    for i in 0..8 {
        let (status, head, s) = get("/ui/events", &api, browser);
        assert_eq!(status, 200, "stream {i}: {head}");
        assert!(head.contains("text/event-stream"), "{head}");
        open.push(s);
    }
    let (status, head, _) = get("/ui/events", &api, browser);
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("pages are open"), "{head}");
    // A closed page frees its place.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, s) = get("/ui/events", &api, browser);
        if status == 200 {
            open.push(s);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed page's place is not freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(open);
    assert_eq!(served.interrupt(), 0, "{}", served.seen.join("\n"));
}

/// An event stream (HTTP/1.0: the body is the stream itself, no chunks): what came with its
/// headers, and the socket.
fn events_at(addr: &str) -> (Vec<u8>, TcpStream) {
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120";
    let (status, text, s) = raw(
        addr,
        &format!("GET /ui/events HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: {browser}\r\n\r\n"),
    );
    assert_eq!(status, 200, "{text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (body.as_bytes().to_vec(), s)
}

/// Read an event stream's `data:` lines (after `buf`, what came already) from `s` until one
/// satisfies `wanted`, within `within`.
fn sse_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    within: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 16 * 1024];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            for line in text.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let v: Value = serde_json::from_str(data.trim()).unwrap();
                seen.push(v["type"].to_string());
                if wanted(&v) {
                    return v;
                }
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
    }
    panic!("no such message within {within:?}; got types {seen:?}");
}

#[test]
fn a_scenario_run_with_ui_is_shown_live_and_its_result_stays_until_ctrl_c() {
    let out = out_dir("live_page_scenario");
    let mut child = Killed(
        Command::new(BIN)
            .args([
                "scenario",
                "native-last-will",
                "--keepalive",
                "1",
                "--ui",
                "--out",
            ])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let (tx, lines) = mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let line_with = |needle: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}");
    };
    let page = line_with("page: http://");
    let addr = page
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120";
    let (mut buf, mut events) = events_at(&addr);
    // Live: the run's status line, willy's connection, the will, then the verdict.
    let status_line = sse_until(&mut events, &mut buf, Duration::from_secs(30), |v| {
        v["type"] == "status" && v["text"].as_str().is_some_and(|t| t.starts_with("cycle "))
    });
    eprintln!("status: {}", status_line["text"]);
    sse_until(&mut events, &mut buf, Duration::from_secs(30), |v| {
        v["type"] == "conn" && v["conn"]["client_id"].is_string()
    });
    let will = sse_until(&mut events, &mut buf, Duration::from_secs(30), |v| {
        v["type"] == "will"
    });
    assert_eq!(will["will"]["topic"], "test/connected", "{will}");
    let verdict = sse_until(&mut events, &mut buf, Duration::from_secs(60), |v| {
        v["type"] == "verdict"
    });
    assert_eq!(verdict["verdict"]["word"], "PASS", "{verdict}");
    line_with("page: the result stays at");
    // After the run: the page, its snapshot with the verdict, its picture.
    let (status, _, _) = get_page(&addr, "/ui", browser);
    assert_eq!(status, 200);
    let (mut buf, mut again) = events_at(&addr);
    let snap = sse_until(&mut again, &mut buf, Duration::from_secs(5), |v| {
        v["type"] == "snapshot"
    });
    assert_eq!(
        snap["proxies"]["native-last-will"]["verdict"]["word"], "PASS",
        "{snap}"
    );
    let (status, _, _) = get_page(&addr, "/ui/proxies/native-last-will/timeline.svg", browser);
    assert_eq!(status, 200);
    // The page's actions are the proxy's only: here they are refused, said so.
    let (status, answer, _) = raw(
        &addr,
        &format!("POST /ui/api/proxies/native-last-will/cut HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 403, "no token: {answer}");
    // Ctrl-C ends it, with the run's exit code.
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() > deadline {
            panic!("unplug scenario --ui did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    eprintln!("stopped {:?} after SIGINT", sent.elapsed());
}

fn get_page(addr: &str, path: &str, ua: &str) -> (u16, String, TcpStream) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {ua}\r\n\r\n"),
    )
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
