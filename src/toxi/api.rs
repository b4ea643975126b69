//! The proxies a standalone `unplug proxy` runs, and toxiproxy's HTTP API over them.
//!
//! ```text
//!  HTTP (axum) --route--> Server (one lock over the proxies)
//!      POST /proxies {name, listen, upstream, enabled} --> Proxy::start_at + NAME.events.jsonl
//!      POST /proxies/P/toxics {...} --Toxic::create/effect--> Proxy::apply(n, fault) per fault
//!      DELETE /proxies/P/toxics/T --> Proxy::heal(n) for each of its faults
//!      POST /proxies/P {"enabled": false} --> faults close + refuse (the proxy is down)
//! ```
//!
//! Every endpoint answers with toxiproxy's JSON shapes and status codes, its errors as
//! `{"error", "status"}`, so a toxiproxy client library drives `unplug` unchanged. Each proxy
//! records into its own journal (`NAME.events.jsonl`, `NAME.log` in the output directory),
//! which `unplug judge` reads. Nothing here is on the data path: a request changes the
//! proxy's network state once, and the links read it per chunk as they always do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::model::{ApiError, Stream, Toxic};
use crate::event::{Actor, Echo, Event, Journal};
use crate::proxy::{Options, Proxy, PublishRecords, Share};
use crate::scenario::{FaultKind, NewConnections};

/// The version `GET /version` reports: unplug's own, in toxiproxy's shape.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The proxies and where their journals go.
pub struct Server {
    proxies: Mutex<BTreeMap<String, Entry>>,
    config: Config,
    /// What the live page (`/ui`, page.rs) shows, folded from the journals.
    page: Arc<super::page::Hub>,
}

/// How a server runs its proxies: where their journals go, what they print, and what an API
/// client may ask of it.
#[derive(Debug, Clone)]
pub struct Config {
    /// Each proxy's `NAME.events.jsonl` and `NAME.log` go here.
    pub out: PathBuf,
    /// What each journal prints on the terminal as it records.
    pub echo: Echo,
    /// Where the echo goes (the terminal); `None` prints nothing.
    pub print: Option<fn(&str)>,
    /// Each proxy's two journal files together, at most (bytes): PUBLISH records are thinned
    /// out past it (crate::event::thin). None: no budget.
    pub journal_max: Option<u64>,
    /// A record per PUBLISH (`Each`), or runs of them (`Runs`, the default: a flood costs a
    /// record per batch, not per packet).
    pub publishes: PublishRecords,
    /// Listening on an address other than loopback is allowed (`--public`).
    pub public: bool,
    pub limits: Limits,
}

/// What one `unplug proxy` process takes at most: an API client asking for more gets a 429
/// (or 413 for a body) naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub proxies: usize,
    pub toxics_per_proxy: usize,
    /// Open connections through one proxy; one more is accepted and closed at once, said in
    /// its journal. Each takes two of the process's file descriptors (20,000 here).
    pub connections_per_proxy: usize,
    /// HTTP connections to the API at once; more wait in the kernel's backlog.
    pub api_connections: usize,
    /// A request body, at most (bytes).
    pub body_bytes: usize,
    /// Live pages (`/ui/events` streams) open at once; one more is answered 429. Each holds
    /// one of the API's connections and at most the page's ring of messages.
    pub page_clients: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            proxies: 1_000,
            toxics_per_proxy: 64,
            connections_per_proxy: 4_096,
            api_connections: 64,
            body_bytes: 64 * 1024,
            page_clients: 8,
        }
    }
}

/// `--journal-max`'s default: 100 MB for a proxy's two journal files.
pub const JOURNAL_MAX: u64 = 100_000_000;

impl Config {
    /// What `unplug proxy` runs with by default, journals in `out`.
    pub fn new(out: PathBuf) -> Config {
        Config {
            out,
            echo: Echo::default(),
            print: None,
            journal_max: Some(JOURNAL_MAX),
            publishes: PublishRecords::Runs,
            public: false,
            limits: Limits::default(),
        }
    }
}

/// A proxy as the API holds it.
struct Entry {
    /// toxiproxy's `listen`: the address bound, with the real port when 0 was asked for.
    listen: SocketAddr,
    /// toxiproxy's `upstream`, as given (resolved when the proxy was created).
    upstream: String,
    enabled: bool,
    proxy: Arc<Proxy>,
    /// In the order they came; listed upstream first, as toxiproxy does.
    toxics: Vec<Applied>,
    /// The faults that keep a disabled proxy down.
    down: Vec<u32>,
    /// The next fault number (the journal's `n`).
    next: u32,
    /// monit for the device: subscribes at the broker to the will its CONNECT names.
    monit: JoinHandle<()>,
    /// Its journal's JSONL file (NAME.events.jsonl, or NAME-2... when that name was taken).
    journal: PathBuf,
    /// The page's fold and judging of this journal.
    page: Vec<JoinHandle<()>>,
}

/// A toxic and the faults it put into effect.
struct Applied {
    toxic: Toxic,
    faults: Vec<u32>,
    /// A fault it applies later (timeout > 0, reset_peer): aborted when the toxic goes.
    timer: Option<JoinHandle<()>>,
}

impl Entry {
    fn number(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    fn json(&self, name: &str) -> Value {
        json!({
            "name": name,
            "listen": self.listen.to_string(),
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_list(),
        })
    }

    fn toxic_list(&self) -> Vec<&Toxic> {
        let mut list: Vec<&Toxic> = self.toxics.iter().map(|a| &a.toxic).collect();
        list.sort_by_key(|t| t.stream != Stream::Upstream.as_str());
        list
    }

    fn note(&self, message: String) {
        self.proxy
            .journal()
            .record(Actor::Proxy, Event::Note { message });
    }

    /// Put `toxic` into effect: its faults now, its later fault on a timer. With a toxicity
    /// between 0 and 1 they act on the connections its share picks, decided per connection
    /// (keyed on its first fault's number, so all its faults pick alike).
    fn apply(&mut self, toxic: Toxic) -> Result<(), ApiError> {
        let effect = toxic.effect()?;
        let share = toxic.partial().then_some(Share {
            key: self.next + 1,
            toxicity: toxic.toxicity,
        });
        self.note(format!(
            "toxic {} added: {} {} (toxicity {})",
            toxic.name, toxic.kind, toxic.stream, toxic.toxicity
        ));
        let mut faults = Vec::new();
        for (kind, new) in &effect.now {
            let n = self.number();
            self.proxy.apply_to_some(n, kind, *new, share);
            faults.push(n);
        }
        let timer = effect.later.map(|(after, kind)| {
            let n = self.number();
            faults.push(n);
            tokio::spawn(later(self.proxy.clone(), n, after, kind, share))
        });
        self.toxics.push(Applied {
            toxic,
            faults,
            timer,
        });
        Ok(())
    }

    /// Where the toxic called `name` is.
    fn find(&self, name: &str) -> Result<usize, ApiError> {
        self.toxics
            .iter()
            .position(|a| a.toxic.name == name)
            .ok_or_else(ApiError::toxic_not_found)
    }

    /// Take the toxic at `i` out of effect.
    fn remove(&mut self, i: usize) -> Applied {
        let a = self.toxics.remove(i);
        if let Some(t) = &a.timer {
            t.abort();
        }
        for n in &a.faults {
            self.proxy.heal(*n);
        }
        self.note(format!("toxic {} removed", a.toxic.name));
        a
    }

    fn set_enabled(&mut self, enabled: bool) {
        if enabled == self.enabled {
            return;
        }
        self.enabled = enabled;
        if enabled {
            for n in std::mem::take(&mut self.down) {
                self.proxy.heal(n);
            }
            self.note("proxy enabled".to_string());
            return;
        }
        self.note("proxy disabled: its connections closed, new ones refused".to_string());
        for (kind, new) in [
            (FaultKind::Close, NewConnections::Accept),
            (FaultKind::Refuse, NewConnections::Refuse),
        ] {
            let n = self.number();
            self.proxy.apply(n, &kind, new);
            self.down.push(n);
        }
    }

    /// End the observation (what follows is no part of it: closing the device's connection
    /// here would earn its will), stop the proxy (its connections closed, FIN both ways, no
    /// fault), and close the journal: where it is.
    async fn finish(mut self, name: &str) -> PathBuf {
        self.proxy.settle().await;
        self.proxy.journal().record(
            Actor::Runner,
            Event::RunEnded {
                reason: format!("proxy {name} stopped"),
            },
        );
        self.monit.abort();
        for t in &self.page {
            t.abort();
        }
        while !self.toxics.is_empty() {
            self.remove(0);
        }
        self.proxy.stop(STOP_WAIT).await;
        self.proxy.settle().await;
        self.note(format!("proxy {name} stopped"));
        if let Err(e) = self.proxy.journal().close() {
            eprintln!("error: writing the journal of proxy {name}: {e}");
        }
        self.journal
    }
}

/// How long a stopping proxy waits for its connections' ends to close after its FINs.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A toxic's timer (toxiproxy's `reset_peer`, `timeout` above 0), per connection as
/// toxiproxy's: the connections open `after` from now are cut together, recorded as fault `n`;
/// each one opened later is cut `after` from when it was first seen (polled every 20 ms), until
/// the toxic goes (the task is aborted). With a share, only the connections it picks.
async fn later(
    proxy: Arc<Proxy>,
    n: u32,
    after: std::time::Duration,
    kind: FaultKind,
    share: Option<Share>,
) {
    use tokio::time::Instant;
    tokio::time::sleep(after).await;
    // When each connection is due; None: cut already (by the fault, under the proxy's lock of
    // its connections). One accepted after that lock, even before this line, gets a timer of
    // its own: a snapshot of the open connections taken here would count it as cut and leave
    // it open for good (seen once under load: tests/toxiproxy_api.rs's later connection never reset).
    let mut due: BTreeMap<u64, Option<Instant>> = proxy
        .apply_to_some(n, &kind, NewConnections::Accept, share)
        .into_iter()
        .map(|id| (id, None))
        .collect();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let open = proxy.open_connections();
        for c in open
            .iter()
            .filter(|c| share.map_or(true, |s| s.applies(c.id)))
        {
            let at = due.entry(c.id).or_insert(Some(now + after));
            if at.is_some_and(|at| at <= now) {
                proxy.cut_connection(c.id, &kind);
                *at = None;
            }
        }
        due.retain(|id, _| open.iter().any(|c| c.id == *id));
    }
}

/// A proxy to create: toxiproxy's `Proxy` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySpec {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
}

impl ProxySpec {
    /// From a JSON object as `POST /proxies` and `/populate` take it.
    fn from_json(v: &Value, at: &str) -> Result<ProxySpec, ApiError> {
        let Value::Object(m) = v else {
            return Err(ApiError::bad_body(format!(
                "expected a JSON object, got {v}"
            )));
        };
        let s = |k: &str| -> Result<String, ApiError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(ApiError::bad_body(format!(
                    "{k} must be a string, not {other}"
                ))),
            }
        };
        let spec = ProxySpec {
            name: s("name")?,
            listen: s("listen")?,
            upstream: s("upstream")?,
            enabled: enabled_of(m)?.unwrap_or(true),
        };
        if spec.name.is_empty() {
            return Err(ApiError::missing_field(&format!("name{at}")));
        }
        if spec.upstream.is_empty() {
            return Err(ApiError::missing_field(&format!("upstream{at}")));
        }
        Ok(spec)
    }
}

fn enabled_of(m: &Map<String, Value>) -> Result<Option<bool>, ApiError> {
    match m.get("enabled") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::bad_body(format!(
            "enabled must be true or false, not {other}"
        ))),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

/// A proxy name becomes file names: keep it to what is safe there.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_body(format!(
            "proxy name {name:?}: up to 100 letters, digits, '-', '_' and '.', not starting with '.' (it names its journal files)"
        )))
    }
}

impl Server {
    /// A server with no proxies, run as `config` says.
    pub fn new(config: Config) -> Arc<Server> {
        let page = Arc::new(super::page::Hub::new(config.limits.page_clients));
        Arc::new(Server {
            proxies: Mutex::new(BTreeMap::new()),
            config,
            page,
        })
    }

    /// Start a proxy: its journal files, its listener. The answer also says where its
    /// journal is (`journal`: a new file, never one that was there).
    pub async fn create(&self, spec: ProxySpec) -> Result<Value, ApiError> {
        check_name(&spec.name)?;
        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&spec.name) {
            return Err(ApiError::proxy_exists());
        }
        let cap = self.config.limits.proxies;
        if proxies.len() >= cap {
            return Err(ApiError::too_many(format!(
                "{cap} proxies run already, the most one unplug proxy takes: delete one first"
            )));
        }
        let mut entry = self.start(&spec).await?;
        entry.page = self.page.watch(
            &spec.name,
            entry.json(&spec.name),
            entry.proxy.journal(),
            entry.journal.clone(),
        );
        let mut v = entry.json(&spec.name);
        v["journal"] = Value::from(entry.journal.display().to_string());
        proxies.insert(spec.name, entry);
        Ok(v)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the live page shows.
    pub fn page(&self) -> &super::page::Hub {
        &self.page
    }

    pub(super) fn page_arc(&self) -> Arc<super::page::Hub> {
        self.page.clone()
    }

    async fn start(&self, spec: &ProxySpec) -> Result<Entry, ApiError> {
        let listen: SocketAddr = match spec.listen.as_str() {
            "" => SocketAddr::from(([127, 0, 0, 1], 0)),
            l => resolve(l)
                .await
                .map_err(|e| ApiError::bad_body(format!("listen {l:?}: {e}")))?,
        };
        if !self.config.public {
            check_loopback("listen", listen).map_err(ApiError::bad_body)?;
        }
        let upstream = resolve(&spec.upstream)
            .await
            .map_err(|e| ApiError::bad_body(format!("upstream {:?}: {e}", spec.upstream)))?;
        let (journal, path) = self
            .journal(&spec.name)
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        let options = Options {
            publishes: self.config.publishes,
            max_connections: self.config.limits.connections_per_proxy,
            client: "the device",
            ..Options::default()
        };
        let proxy = Proxy::start_at(listen, upstream, journal.clone(), options)
            .await
            .map_err(|e| ApiError::internal(format!("listen tcp {listen}: {e}")))?;
        let listen = proxy.addr;
        journal.record(
            Actor::Proxy,
            Event::Note {
                message: format!(
                    "proxy {} listening on {listen}, upstream {} ({upstream}); journal {}",
                    spec.name,
                    spec.upstream,
                    path.display()
                ),
            },
        );
        let monit = super::watch::spawn(&spec.name, upstream, journal.clone());
        let mut entry = Entry {
            monit,
            journal: path,
            listen,
            upstream: spec.upstream.clone(),
            enabled: true,
            proxy: Arc::new(proxy),
            toxics: Vec::new(),
            down: Vec::new(),
            next: 0,
            page: Vec::new(),
        };
        entry.set_enabled(spec.enabled);
        Ok(entry)
    }

    /// A new journal for proxy `name`: `NAME.events.jsonl` and `NAME.log` in the output
    /// directory, created new (never replacing a file there: a name taken by an earlier proxy
    /// or anything else gets `NAME-2`, `NAME-3` ...). It streams: nothing is kept in memory.
    fn journal(&self, name: &str) -> anyhow::Result<(Journal, PathBuf)> {
        use anyhow::Context;
        let out = &self.config.out;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let (jsonl, log, jsonl_path, log_path) = (1..=1000)
            .find_map(|i| {
                let stem = if i == 1 {
                    name.to_string()
                } else {
                    format!("{name}-{i}")
                };
                let (j, l) = (
                    out.join(format!("{stem}.events.jsonl")),
                    out.join(format!("{stem}.log")),
                );
                let jf = crate::fsx::create_new(&j).ok()?;
                match crate::fsx::create_new(&l) {
                    Ok(lf) => Some((jf, lf, j, l)),
                    Err(_) => {
                        let _ = std::fs::remove_file(&j);
                        None
                    }
                }
            })
            .with_context(|| {
                format!(
                    "no free journal name for proxy {name} in {} (tried {name}.events.jsonl to {name}-1000.events.jsonl)",
                    out.display()
                )
            })?;
        let journal = match self.config.print {
            Some(print) => Journal::to_writers(jsonl, log, self.config.echo, print),
            None => Journal::to_writers(jsonl, log, Echo::default(), |_| {}),
        };
        let budget = self
            .config
            .journal_max
            .map(|max_bytes| crate::event::Budget {
                max_bytes,
                jsonl: jsonl_path.clone(),
                log: log_path,
            });
        let journal = journal.streaming_files(budget, crate::event::Naming::Device);
        Ok((journal, jsonl_path))
    }

    /// `GET /proxies`: every proxy by name.
    pub async fn list(&self) -> Value {
        let proxies = self.proxies.lock().await;
        Value::Object(
            proxies
                .iter()
                .map(|(name, e)| (name.clone(), e.json(name)))
                .collect(),
        )
    }

    async fn with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Entry) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let e = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let out = f(e);
        self.page.proxy_changed(name, e.json(name));
        out
    }

    pub async fn show(&self, name: &str) -> Result<Value, ApiError> {
        self.with(name, |e| Ok(e.json(name))).await
    }

    /// `POST|PATCH /proxies/P`: `enabled` turns it on or off. A new listen or upstream is not
    /// taken (say so rather than pretend).
    pub async fn update(&self, name: &str, body: &[u8]) -> Result<Value, ApiError> {
        let v = parse_body(body)?;
        let Value::Object(m) = &v else {
            return Err(ApiError::bad_body(format!(
                "expected a JSON object, got {v}"
            )));
        };
        let enabled = enabled_of(m)?;
        let listen = m.get("listen").and_then(Value::as_str).map(str::to_string);
        let upstream = m
            .get("upstream")
            .and_then(Value::as_str)
            .map(str::to_string);
        let resolved_listen = match &listen {
            Some(l) => Some(
                resolve(l)
                    .await
                    .map_err(|e| ApiError::bad_body(format!("listen {l:?}: {e}")))?,
            ),
            None => None,
        };
        self.with(name, |e| {
            let moves = resolved_listen.is_some_and(|l| l != e.listen && l.port() != 0)
                || upstream.as_ref().is_some_and(|u| *u != e.upstream);
            if moves {
                return Err(ApiError::not_covered(
                    "changing a proxy's listen or upstream: delete it and create it again",
                ));
            }
            if let Some(on) = enabled {
                e.set_enabled(on);
            }
            Ok(e.json(name))
        })
        .await
    }

    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let entry = self
            .proxies
            .lock()
            .await
            .remove(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        self.page.forget(name);
        self.finish(name, entry).await;
        Ok(())
    }

    /// `POST /populate`: create the proxies that are not there (or differ), keep the rest.
    pub async fn populate(&self, body: &[u8]) -> Result<Value, ApiError> {
        let v = parse_body(body)?;
        let Value::Array(list) = v else {
            return Err(ApiError::bad_body("expected a JSON array of proxies"));
        };
        let specs = list
            .iter()
            .enumerate()
            .map(|(i, p)| ProxySpec::from_json(p, &format!(" at proxy {}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for spec in specs {
            let same = {
                let proxies = self.proxies.lock().await;
                proxies.get(&spec.name).map(|e| {
                    e.upstream == spec.upstream
                        && (spec.listen.is_empty() || spec.listen == e.listen.to_string())
                })
            };
            match same {
                Some(true) => {
                    self.with(&spec.name, |e| {
                        e.set_enabled(spec.enabled);
                        Ok(())
                    })
                    .await?;
                    out.push(self.show(&spec.name).await?);
                }
                Some(false) => {
                    self.delete(&spec.name).await?;
                    out.push(self.create(spec).await?);
                }
                None => out.push(self.create(spec).await?),
            }
        }
        Ok(json!({ "proxies": out }))
    }

    /// `POST /reset`: every proxy enabled, every toxic removed.
    pub async fn reset(&self) {
        let mut proxies = self.proxies.lock().await;
        for (name, e) in proxies.iter_mut() {
            e.set_enabled(true);
            while !e.toxics.is_empty() {
                e.remove(0);
            }
            self.page.proxy_changed(name, e.json(name));
        }
    }

    pub async fn toxics(&self, name: &str) -> Result<Value, ApiError> {
        self.with(name, |e| Ok(json!(e.toxic_list()))).await
    }

    pub async fn add_toxic(&self, name: &str, body: &[u8]) -> Result<Value, ApiError> {
        let toxic = Toxic::create(body)?;
        let cap = self.config.limits.toxics_per_proxy;
        self.with(name, |e| {
            if e.toxics.iter().any(|a| a.toxic.name == toxic.name) {
                return Err(ApiError::toxic_exists());
            }
            if e.toxics.len() >= cap {
                return Err(ApiError::too_many(format!(
                    "proxy {name} has {cap} toxics, the most a proxy takes: remove one first"
                )));
            }
            let v = json!(toxic);
            e.apply(toxic)?;
            Ok(v)
        })
        .await
    }

    pub async fn toxic(&self, name: &str, toxic: &str) -> Result<Value, ApiError> {
        self.with(name, |e| {
            let i = e.find(toxic)?;
            Ok(json!(e.toxics[i].toxic))
        })
        .await
    }

    pub async fn update_toxic(
        &self,
        name: &str,
        toxic: &str,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        self.with(name, |e| {
            let i = e.find(toxic)?;
            let new = e.toxics[i].toxic.updated(body)?;
            e.remove(i);
            let v = json!(new);
            e.apply(new)?;
            Ok(v)
        })
        .await
    }

    pub async fn remove_toxic(&self, name: &str, toxic: &str) -> Result<(), ApiError> {
        self.with(name, |e| {
            let i = e.find(toxic)?;
            e.remove(i);
            Ok(())
        })
        .await
    }

    /// Stop every proxy, all at once: connections closed, every journal complete, judged
    /// and drawn.
    pub async fn shutdown(self: &Arc<Self>) {
        let all = std::mem::take(&mut *self.proxies.lock().await);
        let mut stopping = tokio::task::JoinSet::new();
        for (name, e) in all {
            let server = self.clone();
            stopping.spawn(async move { server.finish(&name, e).await });
        }
        while stopping.join_next().await.is_some() {}
    }

    /// Stop one proxy; judge what its journal saw and draw it (NAME.summary.json, NAME.svg),
    /// when a device connected through it. The journal is read back thinned (its control
    /// records and the last PUBLISH before each), in bounded memory, on a blocking thread.
    async fn finish(&self, name: &str, entry: Entry) {
        let path = entry.finish(name).await;
        let name = name.to_string();
        let (print, echo) = (self.config.print, self.config.echo);
        let judged = tokio::task::spawn_blocking(move || judge_file(&name, &path)).await;
        match judged {
            Ok(Ok(Some((name, lines)))) => {
                if let (Some(print), true) = (print, echo.stdout) {
                    print(&format!("\nproxy {name}, judged from its journal:"));
                    print(lines.trim_end());
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => eprintln!("error: {e:#}"),
            Err(e) => eprintln!("error: judging a proxy's journal failed: {e}"),
        }
    }
}

/// Judge proxy `name`'s journal at `jsonl` and draw it beside (STEM.summary.json, STEM.svg),
/// when a device connected through it: its name and verdict lines.
fn judge_file(name: &str, jsonl: &std::path::Path) -> anyhow::Result<Option<(String, String)>> {
    use anyhow::Context;
    let (records, _) = crate::event::thin::read_thinned(jsonl)?;
    if !super::judge::is_proxy_journal(&records) {
        return Ok(None);
    }
    let summary = super::judge::judge(&records, None, name)
        .with_context(|| format!("proxy {name}: cannot judge its journal"))?;
    // Drawn up to the end of the observation: the proxy's own stop is no part of it.
    let end = records
        .iter()
        .position(|r| matches!(r.event, Event::RunEnded { .. }))
        .map_or(records.len(), |i| i + 1);
    let svg = crate::report::svg::render_run(&records[..end], &summary);
    let stem = jsonl
        .to_string_lossy()
        .trim_end_matches(".events.jsonl")
        .to_string();
    for (kind, text) in [("svg", svg), ("summary.json", summary.to_json())] {
        let p = PathBuf::from(format!("{stem}.{kind}"));
        crate::fsx::write_atomic(&p, text.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(Some((name.to_string(), summary.verdict_lines())))
}

/// Refuse an address other than loopback (`what` names it): a proxy or an API reachable
/// from the network is something to ask for (`--public`), not to get by a typo.
pub fn check_loopback(what: &str, addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "{what} {addr} is not a loopback address: anyone who reaches it could send through the proxy (or cut it, for the API, which has no authentication); give --public to allow it"
    ))
}

/// `HOST:PORT` as an address, IPv4 first (the proxy reopens a closed listener on IPv4).
async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host(addr).await?.collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| std::io::Error::other("no address"))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self)).into_response()
    }
}

type Answer = Result<Response, ApiError>;

fn ok(v: Value) -> Answer {
    Ok(axum::Json(v).into_response())
}

fn created(v: Value) -> Answer {
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

type S = State<Arc<Server>>;

/// toxiproxy's routes over `server` (ui.rs puts the live page's beside them).
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async {
                (
                    [("content-type", "application/json;charset=utf-8")],
                    format!("{{\"version\": \"unplug-{VERSION}\"}}\n"),
                )
            }),
        )
        .route(
            "/reset",
            axum::routing::post(|State(s): S| async move {
                s.reset().await;
                no_content()
            }),
        )
        .route(
            "/proxies",
            get(|State(s): S| async move { ok(s.list().await) }).post(
                |State(s): S, body: Bytes| async move {
                    let spec = ProxySpec::from_json(&parse_body(&body)?, "")?;
                    created(s.create(spec).await?)
                },
            ),
        )
        .route(
            "/populate",
            axum::routing::post(|State(s): S, body: Bytes| async move {
                created(s.populate(&body).await?)
            }),
        )
        .route(
            "/proxies/:proxy",
            get(|State(s): S, Path(p): Path<String>| async move { ok(s.show(&p).await?) })
                .post(update_proxy)
                .patch(update_proxy)
                .delete(|State(s): S, Path(p): Path<String>| async move {
                    s.delete(&p).await?;
                    no_content()
                }),
        )
        .route(
            "/proxies/:proxy/toxics",
            get(|State(s): S, Path(p): Path<String>| async move { ok(s.toxics(&p).await?) }).post(
                |State(s): S, Path(p): Path<String>, body: Bytes| async move {
                    ok(s.add_toxic(&p, &body).await?)
                },
            ),
        )
        .route(
            "/proxies/:proxy/toxics/:toxic",
            get(
                |State(s): S, Path((p, t)): Path<(String, String)>| async move {
                    ok(s.toxic(&p, &t).await?)
                },
            )
            .post(update_toxic)
            .patch(update_toxic)
            .delete(
                |State(s): S, Path((p, t)): Path<(String, String)>| async move {
                    s.remove_toxic(&p, &t).await?;
                    no_content()
                },
            ),
        )
        .with_state(server.clone())
        .layer(axum::extract::DefaultBodyLimit::max(
            server.config.limits.body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            server.config.limits.body_bytes,
            bounded,
        ))
        .layer(axum::middleware::from_fn(no_browsers))
}

/// How long a request may take to arrive whole (its headers: hyper's header-read timeout in
/// [`serve_http`]; its body: here) and to be answered.
pub const REQUEST_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// A body over the limit is refused before it is read (413, toxiproxy's shape), and a
/// request that does not complete in [`REQUEST_TIME`] is answered 408: a client that sends
/// slowly holds nothing for long.
async fn bounded(
    State(limit): State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large(limit).into_response();
    }
    match tokio::time::timeout(REQUEST_TIME, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::too_slow(REQUEST_TIME).into_response(),
    }
}

/// Serve `app` on `listener` until `stop` resolves: HTTP/1.1 with a header-read timeout
/// ([`REQUEST_TIME`], which also ends a keep-alive connection idle that long) and at most
/// `max_connections` connections at once (more wait in the backlog). On `stop` it takes no
/// more and ends the open ones.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let mut open = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut stop => break,
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        while open.try_join_next().is_some() {}
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        open.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIME)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
    open.abort_all();
    while open.join_next().await.is_some() {}
}

/// toxiproxy's guard against web pages: a request from a browser (its User-Agent starts with
/// `Mozilla/`) could reach a local API through a page the person opens; 403, as toxiproxy.
async fn no_browsers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let browser = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if browser {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    next.run(req).await
}

async fn update_proxy(State(s): S, Path(p): Path<String>, body: Bytes) -> Answer {
    ok(s.update(&p, &body).await?)
}

async fn update_toxic(State(s): S, Path((p, t)): Path<(String, String)>, body: Bytes) -> Answer {
    ok(s.update_toxic(&p, &t, &body).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One thing an API client may do.
    #[derive(Debug, Clone)]
    enum Op {
        Create(String, String),
        Delete(String),
        AddToxic(String, Value),
        RemoveToxic(String, String),
        Enable(String, bool),
        Reset,
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string),
            ".{0,120}",
            "[a-z./-]{1,8}",
        ]
    }

    fn toxic() -> impl Strategy<Value = Value> {
        let n = prop_oneof![
            any::<i64>().prop_map(Value::from),
            (0i64..100_000).prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ];
        (
            proptest::sample::select(vec![
                "latency",
                "bandwidth",
                "timeout",
                "reset_peer",
                "slow_close",
                "slicer",
                "limit_data",
                "blackhole",
                "drop",
                "hang",
                "refuse",
                "jitterbug",
            ]),
            proptest::sample::select(vec!["upstream", "downstream"]),
            proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "latency",
                        "jitter",
                        "rate",
                        "timeout",
                        "delay",
                        "average_size",
                        "size_variation",
                        "bytes",
                    ]),
                    n,
                ),
                0..4,
            ),
            proptest::option::of(0.0f64..=1.0),
            proptest::option::of("[a-z]{1,3}"),
        )
            .prop_map(|(kind, stream, attrs, toxicity, name)| {
                let attributes: Map<String, Value> =
                    attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                let mut t = json!({"type": kind, "stream": stream, "attributes": attributes});
                if let Some(x) = toxicity {
                    t["toxicity"] = json!(x);
                }
                if let Some(n) = name {
                    t["name"] = json!(n);
                }
                t
            })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                name(),
                prop_oneof![
                    Just("127.0.0.1:0".to_string()),
                    Just("0.0.0.0:0".to_string()),
                    ".{0,10}"
                ]
            )
                .prop_map(|(n, l)| Op::Create(n, l)),
            name().prop_map(Op::Delete),
            (name(), toxic()).prop_map(|(n, t)| Op::AddToxic(n, t)),
            (name(), "[a-z_]{1,20}").prop_map(|(n, t)| Op::RemoveToxic(n, t)),
            (name(), any::<bool>()).prop_map(|(n, b)| Op::Enable(n, b)),
            Just(Op::Reset),
        ]
    }

    /// An upstream that takes connections and echoes: the proxies forward to it.
    async fn echo_server() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any sequence of requests: each answered with a status toxiproxy uses, never a panic;
        /// after /reset no toxic is left in effect; a connection through a proxy ends when the
        /// proxy is deleted or stopped; every proxy stops.
        #[test]
        fn any_sequence_of_requests_is_answered_and_leaves_nothing_behind(
            ops in proptest::collection::vec(op(), 1..25),
        ) {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let mut config = Config::new(dir.path().to_path_buf());
                config.limits.proxies = 3;
                config.limits.toxics_per_proxy = 4;
                let server = Server::new(config);
                let upstream = echo_server().await.to_string();
                // A device on proxy "a" for the whole sequence.
                server.create(ProxySpec { name: "a".into(), listen: String::new(),
                    upstream: upstream.clone(), enabled: true }).await.unwrap();
                let listen: SocketAddr = server.show("a").await.unwrap()["listen"]
                    .as_str().unwrap().parse().unwrap();
                let mut device = tokio::net::TcpStream::connect(listen).await.unwrap();
                device.write_all(b"hello").await.unwrap();
                for op in ops {
                    let status = match op {
                        Op::Create(n, l) => server
                            .create(ProxySpec { name: n, listen: l, upstream: upstream.clone(), enabled: true })
                            .await
                            .map(|_| 201),
                        Op::Delete(n) => server.delete(&n).await.map(|_| 204),
                        Op::AddToxic(n, t) => server.add_toxic(&n, t.to_string().as_bytes()).await.map(|_| 200),
                        Op::RemoveToxic(n, t) => server.remove_toxic(&n, &t).await.map(|_| 204),
                        Op::Enable(n, b) => server
                            .update(&n, json!({"enabled": b}).to_string().as_bytes())
                            .await
                            .map(|_| 200),
                        Op::Reset => {
                            server.reset().await;
                            Ok(204)
                        }
                    };
                    match status {
                        Ok(_) => {}
                        Err(e) => assert!(
                            matches!(e.status, 400 | 404 | 409 | 429 | 500 | 501),
                            "{e:?}"
                        ),
                    }
                }
                server.reset().await;
                let all = server.list().await;
                for (name, p) in all.as_object().unwrap() {
                    assert_eq!(p["toxics"], json!([]), "{name}");
                    assert_eq!(p["enabled"], json!(true), "{name}");
                }
                server.shutdown().await;
                // The device's connection was ended by the stop (or a delete before it).
                let mut buf = [0u8; 64];
                let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    loop {
                        match device.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                assert!(ended.is_ok(), "the device's connection outlived its proxy");
            });
        }
    }
}
