//! The live page's routes (`/ui`) beside toxiproxy's: the page and its assets (inside the
//! binary), its event stream from the [`Hub`](super::page::Hub), its picture, and its actions
//! over the same [`Server`] methods as toxiproxy's API.
//!
//! ```text
//!  GET  /ui, /ui/page.js, /ui/page.css       the page (its token in a meta tag)
//!  GET  /ui/events                            server-sent events: a snapshot, then changes
//!  GET  /ui/proxies/P/timeline.svg            the latest picture (render_run)
//!  POST /ui/api/proxies/P/cut {"stream"}      as `unplug proxy cut`
//!  POST /ui/api/proxies/P/heal                as `unplug proxy heal`
//!  POST /ui/api/proxies/P/toxics {toxic}      DELETE /ui/api/proxies/P/toxics/T
//! ```
//!
//! Cross-site requests: toxiproxy's routes keep their browser guard; these are for browsers
//! and guarded otherwise. Every `/ui` request needs a `Host` that is an address or
//! `localhost` (no DNS name rebound to 127.0.0.1 reads the token), the actions the page's
//! token in a header (a cross-site form cannot send one; a cross-site script cannot without a
//! CORS preflight nobody answers) and, when the browser names them, the same origin.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::api::Server;
use super::model::ApiError;
use super::page::Hub;

const INDEX_HTML: &str = include_str!("../../crates/report/src/report/page/index.html");
const PAGE_JS: &str = include_str!("../../crates/report/src/report/page/page.js");
const PAGE_CSS: &str = include_str!("../../crates/report/src/report/page/page.css");

/// A scenario run's page, served on a thread of its own (its own runtime, so the run's
/// runtime can end and the page stay) until [`RunPageServer::stop`].
pub struct RunPageServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunPageServer {
    /// Listen on `addr` (loopback only) and serve `hub`'s page there.
    pub fn start(addr: std::net::SocketAddr, hub: Arc<Hub>) -> anyhow::Result<RunPageServer> {
        use anyhow::Context;
        super::api::check_loopback("--ui", addr).map_err(anyhow::Error::msg)?;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("the page cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the page's runtime")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let max = super::api::Limits::default().api_connections;
        let thread = std::thread::Builder::new()
            .name("unplug-page".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    super::api::serve_http(listener, run_router(hub), max, async move {
                        let _ = rx.await;
                    })
                    .await;
                });
            })
            .context("starting the page's thread")?;
        Ok(RunPageServer {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stop serving: the open pages' streams end.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunPageServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What the page's routes serve: the hub, and the proxies its actions act on (none for a
/// scenario run's page: its faults are the scenario's).
pub struct Ui {
    hub: Arc<Hub>,
    server: Option<Arc<Server>>,
    /// `--public`: any `Host` is served.
    public: bool,
}

impl Ui {
    fn server(&self) -> Result<&Arc<Server>, ApiError> {
        self.server.as_ref().ok_or_else(|| {
            ApiError::not_covered("actions on a scenario run's page: its faults are the scenario's")
        })
    }
}

/// toxiproxy's routes (api.rs, unchanged) and the page's beside them.
pub fn router(server: Arc<Server>) -> Router {
    let ui = Ui {
        hub: server.page_arc(),
        public: server.config().public,
        server: Some(server.clone()),
    };
    super::api::router(server).merge(routes(Arc::new(ui)))
}

/// A scenario run's page alone (`unplug scenario --ui`): what `hub` shows, no actions.
pub fn run_router(hub: Arc<Hub>) -> Router {
    routes(Arc::new(Ui {
        hub,
        server: None,
        public: false,
    }))
}

type S = State<Arc<Ui>>;

/// The header the page's actions carry the token in.
pub const TOKEN_HEADER: &str = "x-unplug-token";

/// The page's routes over `ui` (no browser guard: they are for browsers).
fn routes(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route(
            "/ui/page.js",
            get(|| async { asset("text/javascript;charset=utf-8", PAGE_JS) }),
        )
        .route(
            "/ui/page.css",
            get(|| async { asset("text/css;charset=utf-8", PAGE_CSS) }),
        )
        .route("/ui/events", get(events))
        .route("/ui/proxies/:proxy/timeline.svg", get(timeline))
        .route("/ui/api/proxies/:proxy/cut", post(cut))
        .route("/ui/api/proxies/:proxy/heal", post(heal))
        .route("/ui/api/proxies/:proxy/toxics", post(add_toxic))
        .route(
            "/ui/api/proxies/:proxy/toxics/:toxic",
            axum::routing::delete(remove_toxic),
        )
        .with_state(ui.clone())
        .layer(axum::middleware::from_fn_with_state(ui, guard))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            ("content-type", kind),
            ("cache-control", "no-store"),
            ("x-content-type-options", "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index(State(s): S) -> Response {
    let html = INDEX_HTML.replace("{{TOKEN}}", &s.hub.token);
    (
        [
            ("content-type", "text/html;charset=utf-8"),
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
            (
                "content-security-policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

/// Every `/ui` request: a `Host` that is an address or localhost (unless `--public`); the
/// actions (POST, DELETE): the page's token and, when the browser says, the same origin.
async fn guard(State(s): S, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let h = req.headers();
    let host = h
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !s.public && !host_allowed(host) {
        return forbidden("the page answers only to an address or localhost as Host");
    }
    if req.method() != axum::http::Method::GET {
        if let Err(why) = action_allowed(h, host, &s.hub.token) {
            return forbidden(why);
        }
    }
    next.run(req).await
}

fn forbidden(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({"error": why, "status": 403})),
    )
        .into_response()
}

/// `HOST[:PORT]` names a loopback or literal address, or localhost: not a DNS name that could
/// be rebound to 127.0.0.1 by a page elsewhere.
fn host_allowed(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) && !n.ends_with(':') => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// An action from the page itself: its token, and its origin when the browser names one.
fn action_allowed(h: &HeaderMap, host: &str, token: &str) -> Result<(), &'static str> {
    let given = h
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Same length and bytes, compared whole (no early exit on the first difference).
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err("the page's actions need its token (X-Unplug-Token): reload the page");
    }
    if let Some(origin) = h.get(axum::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let expected = format!("http://{host}");
        if origin != expected {
            return Err("a cross-origin request: the page's actions come from the page");
        }
    }
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err("a cross-site request: the page's actions come from the page");
        }
    }
    Ok(())
}

/// One page's stream: a snapshot, then every message; a page that lags is sent a snapshot
/// again. At most `Limits::page_clients` at once (429 past it).
async fn events(State(s): S) -> Response {
    let hub = s.hub.clone();
    let Ok(permit) = hub.pages.clone().try_acquire_owned() else {
        return ApiError::too_many(format!(
            "{} pages are open, the most one unplug proxy serves: close one",
            hub.page_cap
        ))
        .into_response();
    };
    hub.page_opened();
    // Subscribed before the snapshot: nothing falls between them.
    let rx = hub.tx.subscribe();
    let first = hub.snapshot(&hub.lock());
    let stream = futures_util::stream::unfold(
        (Some(first), rx, hub, permit),
        |(pending, mut rx, hub, permit)| async move {
            if let Some(text) = pending {
                let ev = SseEvent::default().data(text);
                return Some((
                    Ok::<_, std::convert::Infallible>(ev),
                    (None, rx, hub, permit),
                ));
            }
            let text: String = match rx.recv().await {
                Ok(msg) => msg.to_string(),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the ring: start again from now.
                    rx = rx.resubscribe();
                    hub.snapshot(&hub.lock())
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(SseEvent::default().data(text)), (None, rx, hub, permit)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn timeline(State(s): S, Path(p): Path<String>) -> Response {
    let svg = s.hub.lock().svgs.get(&p).cloned();
    match svg {
        Some(svg) => (
            [
                ("content-type", "image/svg+xml"),
                ("cache-control", "no-store"),
            ],
            svg.as_str().to_owned(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no timeline yet: no device connected\n",
        )
            .into_response(),
    }
}

type Answer = Result<Response, ApiError>;

/// `{"stream": "both" | "upstream" | "downstream"}`: as `unplug proxy cut`.
async fn cut(State(s): S, Path(p): Path<String>, body: Bytes) -> Answer {
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(ApiError::bad_body)?
    };
    let stream = v["stream"].as_str().unwrap_or("both");
    let streams = super::model::cut_streams(stream)?;
    let mut added = Vec::new();
    for st in streams {
        let toxic = super::model::cut_toxic(st);
        added.push(
            s.server()?
                .add_toxic(&p, toxic.to_string().as_bytes())
                .await?,
        );
    }
    Ok(axum::Json(json!({"cut": added})).into_response())
}

/// As `unplug proxy heal`: every toxic removed, the proxy enabled.
async fn heal(State(s): S, Path(p): Path<String>) -> Answer {
    let names = super::model::toxic_names(&s.server()?.toxics(&p).await?);
    for n in &names {
        s.server()?.remove_toxic(&p, n).await?;
    }
    let v = s
        .server()?
        .update(&p, json!({"enabled": true}).to_string().as_bytes())
        .await?;
    Ok(axum::Json(v).into_response())
}

async fn add_toxic(State(s): S, Path(p): Path<String>, body: Bytes) -> Answer {
    Ok(axum::Json(s.server()?.add_toxic(&p, &body).await?).into_response())
}

async fn remove_toxic(State(s): S, Path((p, t)): Path<(String, String)>) -> Answer {
    s.server()?.remove_toxic(&p, &t).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_is_a_dns_name_is_refused_and_an_address_or_localhost_is_not() {
        for ok in [
            "127.0.0.1:8474",
            "localhost:1",
            "[::1]:8474",
            "LOCALHOST",
            "10.0.0.1",
        ] {
            assert!(host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:8474",
            "",
            "127.0.0.1.nip.io:80",
            "localhost.evil",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn an_action_needs_the_token_and_the_same_origin() {
        let mut h = HeaderMap::new();
        assert!(action_allowed(&h, "127.0.0.1:1", "abc").is_err());
        h.insert(TOKEN_HEADER, "abd".parse().unwrap());
        assert!(action_allowed(&h, "127.0.0.1:1", "abc").is_err());
        h.insert(TOKEN_HEADER, "abc".parse().unwrap());
        assert!(action_allowed(&h, "127.0.0.1:1", "abc").is_ok());
        h.insert("origin", "http://evil.example".parse().unwrap());
        assert!(action_allowed(&h, "127.0.0.1:1", "abc").is_err());
        h.insert("origin", "http://127.0.0.1:1".parse().unwrap());
        assert!(action_allowed(&h, "127.0.0.1:1", "abc").is_ok());
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(action_allowed(&h, "127.0.0.1:1", "abc").is_err());
    }
}

#[cfg(test)]
mod slow_page {
    use super::*;
    use std::io::{Read, Write};

    /// A page that stops reading while the messages pour in is not kept up with in memory:
    /// it falls behind the ring, and when it reads again it gets a fresh snapshot, then the
    /// messages from there.
    #[test]
    fn a_page_that_stops_reading_falls_behind_the_ring_and_gets_a_snapshot() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let hub = Arc::new(Hub::new(2));
        let journal = crate::event::Journal::in_memory();
        let listener = rt.block_on(async {
            crate::runner::Watcher::journal(
                &super::super::page::RunPage(hub.clone()),
                "r",
                &journal,
            );
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
        });
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = rt.spawn(super::super::api::serve_http(
            listener,
            run_router(hub.clone()),
            4,
            async move {
                let _ = stop_rx.await;
            },
        ));
        let mut page = std::net::TcpStream::connect(addr).unwrap();
        page.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(page, "GET /ui/events HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        // The first answer (the snapshot) is there: the stream is open.
        let mut first = [0u8; 512];
        let n = page.read(&mut first).unwrap();
        assert!(n > 0);
        // 40 MB of messages while the page reads nothing: far more than the sockets hold.
        let line = "x".repeat(2000);
        for i in 0..20_000 {
            hub.status("r", &format!("{i} {line}"));
            if i % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        hub.status("r", "the last");
        // Now read it all: a second snapshot comes, and the last message after it.
        let mut got = first[..n].to_vec();
        let mut buf = vec![0u8; 1 << 16];
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            match page.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.windows(8).any(|w| w == b"the last") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&got);
        let snapshots = text.matches("\"type\":\"snapshot\"").count();
        let statuses = text.matches("\"type\":\"status\"").count();
        assert!(text.contains("the last"), "the last message never came");
        assert!(snapshots >= 2, "no fresh snapshot after falling behind");
        assert!(
            statuses < 20_000,
            "{statuses} messages kept for a page that did not read"
        );
        let _ = stop_tx.send(());
        rt.block_on(served).unwrap();
    }
}
