//! The live page `unplug proxy` serves on its API port (`/ui`): the devices behind each proxy,
//! how long since each one's last packet against its 1.5 x keepalive bound, buttons that cut and
//! heal, the will when it arrives, the timeline and the verdict, as records come.
//!
//! ```text
//!  each proxy's Journal --follow_bounded (a record past the cap is missed, counted)-->
//!      fold: ProxyView (connections, wills, faults) --seq'd message, serialised once-->
//!      broadcast ring (RING messages) --each page's receiver--> /ui/events (server-sent events)
//!  control records (CONNECT, cut, close, will, heal) --> judge task, at most once a second:
//!      the journal file read back thinned --> judge --> verdict lines + render_run SVG
//!  ui.rs: the routes; the page's buttons --POST /ui/api/... + X-Unplug-Token--> the same
//!  Server methods as the API
//! ```
//!
//! The page is a reader of the journal, never a second source of truth: what it shows is folded
//! from the records, and the verdict and timeline are the CLI's own (`judge`, `render_run`).
//! Nothing here is on the data path: the journal hands records to a bounded channel with
//! `try_send`, so a slow page costs a missed record, never a wait; a browser that reads slowly
//! lags on the broadcast ring and is sent a fresh snapshot.
//!
//! Cross-site requests: the toxiproxy API keeps its browser guard; the page's paths are exempt
//! and protected otherwise. Its actions need the per-process token embedded in the page (a
//! custom header, which a cross-site form cannot send and a cross-site script cannot without a
//! CORS preflight nobody answers), a same-origin `Origin` when one is sent, and every `/ui`
//! request a `Host` that is an address or `localhost` (no DNS rebinding to read the token).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify, Semaphore};
use tokio::task::JoinHandle;

use super::judge::connect_of;
use crate::event::{Actor, Event, Journal, Record, Side};
use crate::mqtt::PacketKind;
use crate::tap::Fields;

/// Messages kept for the open pages: a page further behind gets a fresh snapshot instead.
const RING: usize = 512;
/// Records waiting between a journal and its fold, at most: more are missed (and counted).
const FOLLOW_CAP: usize = 4096;
/// Closed connections a proxy's view keeps (the open ones are all there).
const CLOSED_KEPT: usize = 16;
/// Messages on a will topic a proxy's view keeps.
const WILLS_KEPT: usize = 16;
/// A connection's packets are told to the pages at most this often (a PUBLISH flood is not a
/// message per batch); its control packets at once.
const PACKET_EVERY_MS: f64 = 500.0;
/// Judging (the journal read back, the picture drawn) at most this often per proxy.
const JUDGE_EVERY: Duration = Duration::from_secs(1);
/// A record the recorder stamped may reach the file this much later.
const JUDGE_SETTLE: Duration = Duration::from_millis(300);

/// What every open page shares: the views, the ring, the token, the cap on pages.
pub struct Hub {
    pub(super) tx: broadcast::Sender<Arc<str>>,
    state: Mutex<PageState>,
    /// One permit per open page (`Limits::page_clients`).
    pub(super) pages: Arc<Semaphore>,
    pub(super) page_cap: usize,
    /// Required on the page's actions; embedded in the page, never printed.
    pub(super) token: String,
}

#[derive(Default)]
pub(super) struct PageState {
    /// The last message's number: a page ignores what its snapshot already holds.
    seq: u64,
    proxies: BTreeMap<String, ProxyView>,
    /// Each proxy's latest picture (render_run's SVG).
    pub(super) svgs: BTreeMap<String, Arc<String>>,
    /// Each proxy's judging task's bell: rung when a page opens (judging waits for one).
    bells: BTreeMap<String, Arc<Notify>>,
    /// The proxies whose judging was called for while no page was open.
    stale: std::collections::BTreeSet<String>,
}

/// A proxy as the page shows it, folded from its journal.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyView {
    pub name: String,
    /// The API's JSON of it: listen, upstream, enabled, toxics.
    pub api: Value,
    pub conns: BTreeMap<u64, ConnView>,
    pub wills: Vec<WillView>,
    /// The faults in effect: number -> label.
    pub faults: BTreeMap<u32, String>,
    /// The first fault's time (ms), while one is in effect or since.
    pub cut_ms: Option<f64>,
    pub verdict: Option<VerdictView>,
    /// The picture's version: the page fetches it again when it changes.
    pub timeline: u64,
    /// Records the fold missed because it fell behind (none, normally).
    pub missed: u64,
    /// A scenario run's status line (`cycle 2/3 | ... | waiting for ...`).
    pub status: Option<String>,
    #[serde(skip)]
    start: Instant,
    #[serde(skip)]
    last_told: BTreeMap<u64, f64>,
}

impl ProxyView {
    /// Is a packet of connection `conn` at `ms` worth a message to the pages? A control packet
    /// always; a PUBLISH or ping at most every [`PACKET_EVERY_MS`], so a flood is not a storm.
    fn tell(&mut self, conn: u64, ms: f64, control: bool) -> bool {
        let told = self.last_told.get(&conn).copied().unwrap_or(f64::MIN);
        if !control && ms - told < PACKET_EVERY_MS {
            return false;
        }
        self.last_told.insert(conn, ms);
        true
    }
}

/// The pages' message for one connection's view.
fn conn_message(c: &ConnView) -> Value {
    json!({"type": "conn", "conn": c})
}

/// One device connection.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ConnView {
    pub conn: u64,
    pub client_id: Option<String>,
    /// tcp or ws.
    pub transport: String,
    pub protocol: Option<String>,
    pub keepalive_s: Option<u64>,
    /// 1.5 x keepalive (ms): where the page's bar is full.
    pub bound_ms: Option<f64>,
    pub will_topic: Option<String>,
    pub opened_ms: f64,
    /// The device's last packet (ms), and its kind.
    pub last_packet_ms: Option<f64>,
    pub last_packet: Option<String>,
    pub closed_ms: Option<f64>,
    /// Who closed first: `device`, `broker` or the fault's words.
    pub closed_by: Option<String>,
}

/// A message on a will topic (monit's, straight from the broker).
#[derive(Debug, Clone, Serialize)]
pub struct WillView {
    pub ms: f64,
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    /// ms after the first cut, when there was one.
    pub after_cut_ms: Option<f64>,
}

/// The checks' verdict, in the CLI's words.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictView {
    /// PASS, FAIL, ...
    pub word: String,
    /// `verdict_lines()`: the lines `unplug proxy` prints at its stop.
    pub lines: String,
    /// True once there is nothing more to wait for: the will came, the broker closed the
    /// connection, or a run's observation window passed since the cut.
    pub decided: bool,
}

impl Hub {
    pub fn new(page_clients: usize) -> Hub {
        let (tx, _) = broadcast::channel(RING);
        Hub {
            tx,
            state: Mutex::new(PageState::default()),
            pages: Arc::new(Semaphore::new(page_clients)),
            page_cap: page_clients,
            token: token(),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, PageState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number `msg`, hand it to every open page; under the state's lock, so the numbers follow
    /// the state's changes.
    fn tell(&self, st: &mut PageState, mut msg: Value) {
        st.seq += 1;
        msg["seq"] = Value::from(st.seq);
        // No page open: nothing is serialised.
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::from(msg.to_string()));
        }
    }

    /// Everything the pages show, as one message (the first on each page's stream).
    pub(super) fn snapshot(&self, st: &PageState) -> String {
        let now: BTreeMap<&String, f64> = st
            .proxies
            .iter()
            .map(|(n, v)| (n, ms_since(v.start)))
            .collect();
        json!({"type": "snapshot", "seq": st.seq, "proxies": st.proxies, "now": now}).to_string()
    }

    /// A proxy's settings changed (created, toxics, enabled): `api` is its API JSON.
    pub fn proxy_changed(&self, name: &str, api: Value) {
        let mut st = self.lock();
        let Some(v) = st.proxies.get_mut(name) else {
            return;
        };
        if v.api == api {
            // A read (GET) through the same path: nothing to tell.
            return;
        }
        v.api = api.clone();
        self.tell(&mut st, json!({"type": "proxy", "proxy": name, "api": api}));
    }

    /// Show `name` (its API JSON `api`) and fold `journal` into it; with `wake`, notified when
    /// a record calls for judging again. The task ends with the journal's followers.
    fn follow(
        self: &Arc<Self>,
        name: &str,
        api: Value,
        journal: &Journal,
        wake: Option<Arc<Notify>>,
    ) -> JoinHandle<()> {
        let view = ProxyView {
            name: name.to_string(),
            api,
            conns: BTreeMap::new(),
            wills: Vec::new(),
            faults: BTreeMap::new(),
            cut_ms: None,
            verdict: None,
            timeline: 0,
            missed: 0,
            status: None,
            start: journal.start(),
            last_told: BTreeMap::new(),
        };
        {
            let mut st = self.lock();
            let msg = json!({"type": "added", "proxy": view, "now": 0.0});
            st.proxies.insert(name.to_string(), view);
            self.tell(&mut st, msg);
        }
        let (mut records, missed) = journal.follow_bounded(shown, FOLLOW_CAP);
        let hub = self.clone();
        let p = name.to_string();
        tokio::spawn(async move {
            while let Some(rec) = records.recv().await {
                let missed = missed.load(Ordering::Relaxed);
                let (Some(due), Some(wake)) = (hub.fold(&p, &rec, missed), &wake) else {
                    continue;
                };
                wake.notify_one();
                if let Some(after) = due {
                    let wake = wake.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        wake.notify_one();
                    });
                }
            }
        })
    }

    /// Show proxy `name` and follow its journal (at `jsonl`), judging and drawing it as
    /// records call for it: the tasks that do it, for the proxy to abort when it stops.
    pub fn watch(
        self: &Arc<Self>,
        name: &str,
        api: Value,
        journal: &Journal,
        jsonl: std::path::PathBuf,
    ) -> Vec<JoinHandle<()>> {
        let judge_now = Arc::new(Notify::new());
        let fold = self.follow(name, api, journal, Some(judge_now.clone()));
        self.lock()
            .bells
            .insert(name.to_string(), judge_now.clone());
        let hub = self.clone();
        let p = name.to_string();
        let journal = journal.clone();
        let judging = tokio::spawn(async move {
            loop {
                judge_now.notified().await;
                // Judging reads the journal file back: nobody looking, nobody pays for it
                // (the page that opens next rings for it).
                if !hub.any_page_open() {
                    hub.lock().stale.insert(p.clone());
                    continue;
                }
                tokio::time::sleep(JUDGE_SETTLE).await;
                let _ = journal.flush();
                let path = jsonl.clone();
                let name = p.clone();
                let now = journal.ms_since_start(Instant::now());
                let decided = hub.decided(&p);
                let judged =
                    tokio::task::spawn_blocking(move || judge_and_draw(&name, &path, now, decided))
                        .await;
                if let Ok(Ok(Some((summary, svg)))) = judged {
                    hub.judged(&p, &summary, svg, decided);
                }
                tokio::time::sleep(JUDGE_EVERY.saturating_sub(JUDGE_SETTLE)).await;
            }
        });
        vec![fold, judging]
    }

    /// Is a page's stream open?
    fn any_page_open(&self) -> bool {
        self.pages.available_permits() < self.page_cap
    }

    /// A page opened: judge what was left unjudged while none was.
    pub(super) fn page_opened(&self) {
        let mut st = self.lock();
        for name in std::mem::take(&mut st.stale) {
            if let Some(bell) = st.bells.get(&name) {
                bell.notify_one();
            }
        }
    }

    /// A scenario run's status line, for its page.
    pub fn status(&self, name: &str, line: &str) {
        let mut st = self.lock();
        let Some(v) = st.proxies.get_mut(name) else {
            return;
        };
        v.status = Some(line.to_string());
        self.tell(
            &mut st,
            json!({"type": "status", "proxy": name, "text": line}),
        );
    }

    /// A scenario run ended: its verdict and picture, as its files have them.
    pub fn finished(&self, name: &str, summary: &crate::report::Summary, svg: Option<String>) {
        self.status(name, &format!("ended: {}", summary.end_reason));
        self.judged(name, summary, svg, true);
    }

    /// Proxy `name` is gone.
    pub fn forget(&self, name: &str) {
        let mut st = self.lock();
        st.svgs.remove(name);
        st.bells.remove(name);
        st.stale.remove(name);
        if st.proxies.remove(name).is_some() {
            self.tell(&mut st, json!({"type": "removed", "proxy": name}));
        }
    }

    /// Fold `rec` into proxy `name`'s view and tell the pages. Some(..): judge again (and
    /// once more after the duration, when given: a cut's outcome is due then).
    fn fold(&self, name: &str, rec: &Record, missed: u64) -> Option<Option<Duration>> {
        let mut st = self.lock();
        let v = st.proxies.get_mut(name)?;
        v.missed = missed;
        let (msg, judge) = fold_record(v, rec);
        // Judging (the journal file read back) starts with the first cut: before it there is
        // no outcome to wait for, and a device that reconnects all day costs nothing here.
        let judge = judge.filter(|_| v.cut_ms.is_some());
        if let Some(mut msg) = msg {
            msg["proxy"] = Value::from(name);
            msg["now"] = Value::from(ms_since(v.start));
            msg["missed"] = Value::from(missed);
            self.tell(&mut st, msg);
        }
        judge
    }

    /// Nothing more to wait for since proxy `name`'s first cut: a message on a will topic came,
    /// the broker closed a connection, or a run's observation window passed.
    fn decided(&self, name: &str) -> bool {
        let st = self.lock();
        let Some(v) = st.proxies.get(name) else {
            return false;
        };
        let Some(cut) = v.cut_ms else {
            return false;
        };
        let keepalive = v.conns.values().filter_map(|c| c.keepalive_s).max();
        let observed = crate::judge::timing::observe_window(
            Duration::from_secs(keepalive.unwrap_or(0).min(3600)),
            Duration::ZERO,
        );
        v.wills.iter().any(|w| w.ms >= cut)
            || v.conns.values().any(|c| {
                c.closed_ms.is_some_and(|t| t >= cut) && c.closed_by.as_deref() == Some("broker")
            })
            || ms_since(v.start) - cut >= observed.as_secs_f64() * 1000.0
    }

    fn judged(
        &self,
        name: &str,
        summary: &crate::report::Summary,
        svg: Option<String>,
        decided: bool,
    ) {
        let mut st = self.lock();
        let Some(v) = st.proxies.get_mut(name) else {
            return;
        };
        if let Some(svg) = svg {
            v.timeline += 1;
            let version = v.timeline;
            st.svgs.insert(name.to_string(), Arc::new(svg));
            self.tell(
                &mut st,
                json!({"type": "timeline", "proxy": name, "version": version}),
            );
        }
        let Some(v) = st.proxies.get_mut(name) else {
            return;
        };
        if !decided {
            // A verdict before the outcome could come would only say "not yet".
            return;
        }
        let verdict = VerdictView {
            word: summary.verdict_word().to_string(),
            lines: summary.verdict_lines(),
            decided,
        };
        v.verdict = Some(verdict.clone());
        self.tell(
            &mut st,
            json!({"type": "verdict", "proxy": name, "verdict": verdict}),
        );
    }
}

/// A scenario run's page: the run's journal folded into the hub as it goes, its status line
/// told (`unplug scenario --ui`).
pub struct RunPage(pub Arc<Hub>);

impl crate::runner::Watcher for RunPage {
    fn journal(&self, name: &str, journal: &Journal) {
        let api = json!({"kind": "run", "name": name});
        // Ends with the run's runtime.
        drop(self.0.follow(name, api, journal, None));
    }

    fn status(&self, name: &str, line: &str) {
        self.0.status(name, line);
    }
}

/// The records the page shows (a plain function: the journal calls it on every record).
fn shown(r: &Record) -> bool {
    matches!(
        r.event,
        Event::Packet {
            from: Side::Client,
            ..
        } | Event::PublishRun {
            from: Side::Client,
            ..
        } | Event::ConnectionAccepted { .. }
            | Event::SideClosed { .. }
            | Event::ConnectionClosed { .. }
            | Event::ConnectionCut { .. }
            | Event::FaultApplied { .. }
            | Event::FaultHealed { .. }
    ) || (r.actor == Actor::Monit && matches!(r.event, Event::MessageReceived { .. }))
}

/// What folding a record gives: the message for the pages, if any, and whether to judge again
/// (with a later judging due after the duration).
type Folded = (Option<Value>, Option<Option<Duration>>);

/// `rec` folded into `v` (pure): the message for the pages, if any, and whether to judge
/// again (with a later judging due after the duration).
fn fold_record(v: &mut ProxyView, rec: &Record) -> Folded {
    let ms = rec.ms;
    match &rec.event {
        Event::ConnectionAccepted { conn, .. } => {
            let c = ConnView {
                conn: *conn,
                transport: "tcp".into(),
                opened_ms: ms,
                ..ConnView::default()
            };
            v.conns.insert(*conn, c.clone());
            (Some(conn_message(&c)), None)
        }
        Event::Packet {
            conn,
            kind,
            fields,
            dropped,
            ..
        } => fold_packet(v, rec, *conn, *kind, fields, *dropped),
        Event::PublishRun {
            conn,
            last_ms,
            dropped,
            ..
        } => {
            let Some(c) = v.conns.get_mut(conn) else {
                return (None, None);
            };
            if *dropped {
                return (None, None);
            }
            c.last_packet_ms = Some(*last_ms);
            c.last_packet = Some("PUBLISH".into());
            let told = v.tell(*conn, ms, false);
            (told.then(|| conn_message(&v.conns[conn])), None)
        }
        Event::SideClosed { conn, side, .. } => {
            let Some(c) = v.conns.get_mut(conn) else {
                return (None, None);
            };
            c.closed_by.get_or_insert_with(|| match side {
                Side::Client => "device".into(),
                Side::Broker => "broker".into(),
            });
            (Some(conn_message(c)), Some(None))
        }
        Event::ConnectionCut { conn, fault, .. } => {
            let Some(c) = v.conns.get_mut(conn) else {
                return (None, None);
            };
            c.closed_by.get_or_insert_with(|| fault.clone());
            (Some(conn_message(c)), Some(None))
        }
        Event::ConnectionClosed { conn, .. } => fold_closed(v, *conn, ms),
        Event::FaultApplied { fault, n, .. } => {
            v.faults.insert(*n, fault.clone());
            v.cut_ms.get_or_insert(ms);
            (
                Some(json!({"type": "faults", "faults": v.faults, "cut_ms": v.cut_ms})),
                Some(Some(outcome_due(v))),
            )
        }
        Event::FaultHealed { n, .. } => {
            v.faults.remove(n);
            (
                Some(json!({"type": "faults", "faults": v.faults, "cut_ms": v.cut_ms})),
                Some(None),
            )
        }
        Event::MessageReceived {
            topic,
            payload,
            retain,
            ..
        } => {
            let w = WillView {
                ms,
                topic: topic.clone(),
                payload: payload.chars().take(4096).collect(),
                retain: *retain,
                after_cut_ms: v.cut_ms.filter(|c| ms >= *c).map(|c| ms - c),
            };
            v.wills.push(w.clone());
            if v.wills.len() > WILLS_KEPT {
                v.wills.remove(0);
            }
            (Some(json!({"type": "will", "will": w})), Some(None))
        }
        _ => (None, None),
    }
}

/// A packet on connection `conn` folded into `v`: its CONNECT names the device's client id,
/// transport, protocol, keepalive and will (and asks for a judging).
fn fold_packet(
    v: &mut ProxyView,
    rec: &Record,
    conn: u64,
    kind: PacketKind,
    fields: &Fields,
    dropped: bool,
) -> Folded {
    let ms = rec.ms;
    let Some(c) = v.conns.get_mut(&conn) else {
        return (None, None);
    };
    // What the broker's keepalive counts: the packets that reached it, not those a
    // fault swallowed.
    if dropped {
        return (None, None);
    }
    c.last_packet_ms = Some(ms);
    c.last_packet = Some(kind.as_str().to_string());
    let mut judge = None;
    if let (Some(seen), Fields::Connect { client_id, .. }) = (connect_of(rec), fields) {
        c.client_id = Some(client_id.clone());
        c.transport = if seen.ws { "ws" } else { "tcp" }.into();
        c.protocol = Some(
            if seen.protocol_level == 5 {
                "5"
            } else {
                "3.1.1"
            }
            .into(),
        );
        c.keepalive_s = Some(seen.keepalive_s);
        c.bound_ms = Some(crate::judge::timing::bound_of_secs_ms(seen.keepalive_s));
        c.will_topic = seen.will.map(|w| w.topic);
        judge = Some(None);
    }
    let control = kind != PacketKind::Publish && kind != PacketKind::Pingreq;
    let told = v.tell(conn, ms, control);
    (told.then(|| conn_message(&v.conns[&conn])), judge)
}

/// Connection `conn` closed at `ms`: told, and the oldest closed ones beyond
/// [`CLOSED_KEPT`] dropped.
fn fold_closed(v: &mut ProxyView, conn: u64, ms: f64) -> Folded {
    let Some(c) = v.conns.get_mut(&conn) else {
        return (None, None);
    };
    c.closed_ms = Some(ms);
    let msg = json!({"type": "conn", "conn": c});
    v.last_told.remove(&conn);
    // The open ones all, the last few closed.
    let closed: Vec<u64> = v
        .conns
        .values()
        .filter(|c| c.closed_ms.is_some())
        .map(|c| c.conn)
        .collect();
    for old in closed.iter().take(closed.len().saturating_sub(CLOSED_KEPT)) {
        v.conns.remove(old);
    }
    (Some(msg), Some(None))
}

/// The outcome is due by 1.5 x keepalive after the device's last packet: judge again when a
/// run would stop watching for it, whatever comes.
fn outcome_due(v: &ProxyView) -> Duration {
    let keepalive = v
        .conns
        .values()
        .filter(|c| c.closed_ms.is_none())
        .filter_map(|c| c.keepalive_s)
        .max()
        .unwrap_or(0);
    crate::judge::timing::observe_window(Duration::from_secs(keepalive.min(3600)), Duration::ZERO)
        + Duration::from_millis(100)
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Proxy `name`'s journal at `jsonl` judged and drawn as `unplug proxy` does at its stop
/// (blocking: it reads the file back thinned), the observation ending at `now_ms`. None when
/// no device connected yet.
fn judge_and_draw(
    name: &str,
    jsonl: &std::path::Path,
    now_ms: f64,
    decided: bool,
) -> anyhow::Result<Option<(crate::report::Summary, Option<String>)>> {
    let (mut records, _) = crate::event::thin::read_thinned(jsonl)?;
    if !super::judge::is_proxy_journal(&records) {
        return Ok(None);
    }
    // The observation so far is the run: it ends now (the judge refuses a journal that
    // stops before its run did).
    if !records
        .iter()
        .any(|r| matches!(r.event, Event::RunEnded { .. }))
    {
        records.push(Record {
            ms: now_ms.max(records.last().map_or(0.0, |r| r.ms)),
            t: chrono::Utc::now(),
            actor: Actor::Runner,
            event: Event::RunEnded {
                reason: format!("judged live: proxy {name} still running"),
            },
        });
    }
    let summary = super::judge::judge(&records, None, name)?;
    let word = (!decided).then_some("LIVE: waiting for the outcome");
    let svg = crate::report::svg::render_run_as(&records, &summary, word);
    Ok(Some((summary, Some(svg))))
}

/// 128 bits from the OS's randomness (std seeds each `RandomState` from it), as hex.
fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ms: f64, actor: Actor, event: Event) -> Record {
        Record {
            ms,
            t: chrono::Utc::now(),
            actor,
            event,
        }
    }

    fn view() -> ProxyView {
        ProxyView {
            name: "p".into(),
            api: Value::Null,
            conns: BTreeMap::new(),
            wills: Vec::new(),
            faults: BTreeMap::new(),
            cut_ms: None,
            verdict: None,
            timeline: 0,
            missed: 0,
            status: None,
            start: Instant::now(),
            last_told: BTreeMap::new(),
        }
    }

    #[test]
    fn two_processes_tokens_differ_and_are_128_bits_of_hex() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_flood_is_told_twice_a_second_and_a_will_at_once() {
        let mut v = view();
        let (m, _) = fold_record(
            &mut v,
            &rec(
                0.0,
                Actor::Proxy,
                Event::ConnectionAccepted {
                    conn: 1,
                    held: false,
                },
            ),
        );
        assert!(m.is_some());
        let run = |ms: f64| Event::PublishRun {
            conn: 1,
            from: Side::Client,
            dropped: false,
            topic: "t".into(),
            qos: 0,
            retain: false,
            payload_len: 1,
            count: 10,
            bytes: 100,
            first_ms: ms,
            last_ms: ms,
        };
        let told = (1..=100)
            .filter(|i| {
                let ms = f64::from(*i) * 10.0;
                fold_record(&mut v, &rec(ms, Actor::Wire, run(ms)))
                    .0
                    .is_some()
            })
            .count();
        assert_eq!(told, 2, "1 s of batches every 10 ms");
        assert_eq!(v.conns[&1].last_packet_ms, Some(1000.0));
        let (m, judge) = fold_record(
            &mut v,
            &rec(
                1200.0,
                Actor::Monit,
                Event::MessageReceived {
                    topic: "dev/x/status".into(),
                    payload: "offline".into(),
                    retain: false,
                    qos: 1,
                },
            ),
        );
        assert_eq!(m.unwrap()["will"]["payload"], "offline");
        assert!(judge.is_some());
    }

    #[test]
    fn a_proxy_view_keeps_the_open_connections_and_the_last_closed_ones() {
        let mut v = view();
        for conn in 1..=100u64 {
            let ms = conn as f64;
            fold_record(
                &mut v,
                &rec(
                    ms,
                    Actor::Proxy,
                    Event::ConnectionAccepted { conn, held: false },
                ),
            );
            if conn % 2 == 0 {
                fold_record(
                    &mut v,
                    &rec(
                        ms,
                        Actor::Proxy,
                        Event::ConnectionClosed {
                            conn,
                            up_bytes: 0,
                            down_bytes: 0,
                            dropped_up_bytes: 0,
                            dropped_down_bytes: 0,
                        },
                    ),
                );
            }
        }
        let open = v.conns.values().filter(|c| c.closed_ms.is_none()).count();
        assert_eq!(open, 50);
        assert_eq!(v.conns.len(), 50 + CLOSED_KEPT);
    }

    #[tokio::test]
    async fn a_follower_that_does_not_read_misses_records_and_holds_no_more_than_its_cap() {
        let j = Journal::in_memory();
        let (mut rx, missed) = j.follow_bounded(|_| true, 8);
        for i in 0..100 {
            j.record(
                Actor::Proxy,
                Event::Note {
                    message: format!("{i}"),
                },
            );
        }
        assert_eq!(missed.load(Ordering::Relaxed), 92);
        let mut got = 0;
        while rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 8);
    }
}
