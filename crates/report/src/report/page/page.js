// unplug proxy's live page: one EventSource on /ui/events (a snapshot, then each change the
// journals record), the bars advanced locally between messages; buttons post to /ui/api with
// the page's token. Everything a device sent is shown with textContent, never as markup.
"use strict";

const TOKEN = document.querySelector('meta[name="unplug-token"]').content;
const TOXICS = ["latency", "bandwidth", "timeout", "reset_peer", "slow_close", "slicer",
  "limit_data", "blackhole", "drop", "hang", "refuse"];
const KEEP_CLOSED = 16;
const KEEP_WILLS = 16;

const state = { seq: 0, proxies: {}, offsets: {}, dom: {} };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function secs(ms) {
  return ms < 10000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 1000) + " s";
}

// The proxy's clock (ms since its journal started) now.
function nowOf(name) {
  return performance.now() + (state.offsets[name] || 0);
}

async function act(name, method, path, body, errEl) {
  errEl.textContent = "";
  try {
    const r = await fetch("/ui/api/proxies/" + encodeURIComponent(name) + path, {
      method,
      headers: { "X-Unplug-Token": TOKEN, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) {
      let why = r.status + "";
      try { why = (await r.json()).error || why; } catch (_) { /* not JSON */ }
      errEl.textContent = why;
    }
  } catch (e) {
    errEl.textContent = String(e);
  }
}

function attrsOf(text) {
  const attrs = {};
  for (const kv of text.split(/[\s,]+/).filter(Boolean)) {
    const [k, v] = kv.split("=");
    if (!k || v === undefined) throw new Error(kv + ": expected KEY=VALUE");
    attrs[k] = /^-?\d+$/.test(v) ? Number(v) : v;
  }
  return attrs;
}

// The parts of a proxy's section that stay (buttons, the toxic form), made once.
function section(name) {
  if (state.dom[name]) return state.dom[name];
  const d = {};
  d.err = el("span", { class: "error" });
  d.title = el("h2");
  d.addr = el("span", { class: "sub" });
  d.faults = el("span", { class: "faults" });
  d.toxics = el("span");
  const button = (label, action, cls, f) =>
    el("button", { class: cls || "", "data-action": action, onclick: f }, label);
  const controls = el("div", { class: "controls" },
    button("Cut (both ways)", "cut-both", "cut", () => act(name, "POST", "/cut", { stream: "both" }, d.err)),
    button("Cut upstream", "cut-upstream", "cut", () => act(name, "POST", "/cut", { stream: "upstream" }, d.err)),
    button("Cut downstream", "cut-downstream", "cut", () => act(name, "POST", "/cut", { stream: "downstream" }, d.err)),
    button("Heal", "heal", "", () => act(name, "POST", "/heal", undefined, d.err)),
    d.faults, d.err);
  const kind = el("select", { "aria-label": "toxic type" }, ...TOXICS.map((t) => el("option", { value: t }, t)));
  const stream = el("select", { "aria-label": "stream" },
    el("option", { value: "downstream" }, "downstream"), el("option", { value: "upstream" }, "upstream"));
  const attrs = el("input", { placeholder: "latency=200 jitter=50", size: "22", "aria-label": "attributes" });
  const toxicity = el("input", { type: "number", min: "0", max: "1", step: "0.1", value: "1", "aria-label": "toxicity" });
  toxicity.style.width = "4em";
  const add = button("Add toxic", "add-toxic", "", () => {
    let body;
    try {
      body = { type: kind.value, stream: stream.value, toxicity: Number(toxicity.value),
        attributes: attrsOf(attrs.value) };
    } catch (e) { d.err.textContent = e.message; return; }
    act(name, "POST", "/toxics", body, d.err);
  });
  const toxicForm = el("div", { class: "controls" }, "toxics: ", d.toxics, kind, stream, attrs,
    "toxicity", toxicity, add);
  d.controls = controls;
  d.toxicForm = toxicForm;
  d.status = el("div", { class: "runstatus" });
  d.conns = el("tbody");
  const table = el("table", { class: "conns" },
    el("thead", {}, el("tr", {}, ...["conn", "client id", "transport", "keepalive", "will topic",
      "since the device's last packet to reach the broker (full: 1.5 x keepalive)", "state"].map((h) => el("th", {}, h)))),
    d.conns);
  d.wills = el("div", { class: "wills" });
  d.verdict = el("div", { class: "verdict" });
  d.img = el("img", { alt: "timeline" });
  d.timeline = el("div", { class: "timeline" });
  d.missed = el("div", { class: "error" });
  d.root = el("section", { class: "proxy", id: "proxy-" + name, "data-proxy": name },
    el("div", {}, d.title, " ", d.addr), d.status, controls, toxicForm, table, d.wills, d.verdict,
    d.timeline, d.missed);
  document.getElementById("proxies").append(d.root);
  state.dom[name] = d;
  return d;
}

function renderProxy(name) {
  const p = state.proxies[name];
  const d = state.dom[name];
  if (!p) {
    if (d) { d.root.remove(); delete state.dom[name]; }
    return;
  }
  const s = section(name);
  const api = p.api || {};
  const run = api.kind === "run";
  s.title.textContent = (run ? "scenario " : "proxy ") + name;
  s.addr.textContent = run ? "" : (api.listen || "?") + " → " + (api.upstream || "?") +
    (api.enabled === false ? " (disabled)" : "");
  // A scenario run's faults are its own: no buttons, its status line instead.
  s.controls.hidden = run;
  s.toxicForm.hidden = run;
  s.status.hidden = !run;
  s.status.textContent = p.status || "starting…";
  const faults = Object.values(p.faults || {});
  s.faults.textContent = faults.length ? "in effect: " + faults.join(", ") : "";
  s.toxics.replaceChildren(...(api.toxics || []).map((t) =>
    el("span", { class: "toxic" }, t.name + " ",
      el("button", { "data-action": "remove-toxic", title: "remove " + t.name,
        onclick: () => act(name, "DELETE", "/toxics/" + encodeURIComponent(t.name), undefined, s.err) }, "×"))));
  const conns = Object.values(p.conns || {}).sort((a, b) => b.conn - a.conn);
  s.conns.replaceChildren(...conns.map((c) => {
    const bar = el("span", { class: "bar" }, el("span"));
    const since = el("span", { class: "since" });
    const row = el("tr", { class: c.closed_ms == null ? "open" : "closed", "data-conn": c.conn },
      el("td", {}, String(c.conn)),
      el("td", { class: "client-id" }, c.client_id == null ? "(no CONNECT yet)" : c.client_id),
      el("td", {}, c.transport + (c.protocol ? " / MQTT " + c.protocol : "")),
      el("td", {}, c.keepalive_s == null ? "" : c.keepalive_s + " s"),
      el("td", {}, c.will_topic || "(no will)"),
      el("td", {}, bar, " ", since),
      el("td", {}, c.closed_ms == null ? "open" : "closed by " + (c.closed_by || "?") + " at " + secs(c.closed_ms)));
    row._conn = c;
    row._bar = bar;
    row._since = since;
    return row;
  }));
  s.wills.replaceChildren(...(p.wills || []).slice().reverse().map((w) =>
    el("div", { class: "will" }, "message on will topic ", el("code", {}, w.topic), ": ",
      el("span", { class: "payload" }, w.payload),
      " at " + secs(w.ms) + (w.after_cut_ms == null ? "" : ", " + secs(w.after_cut_ms) + " after the cut") +
      (w.retain ? " (retained)" : ""))));
  if (p.verdict) {
    const v = p.verdict;
    s.verdict.replaceChildren(
      el("span", { class: "word word-" + v.word }, v.word),
      " (decided)",
      el("pre", {}, v.lines));
  } else {
    s.verdict.replaceChildren(el("span", { class: "sub" },
      p.cut_ms == null ? "verdict: after a cut" :
        "verdict: waiting for the outcome (the will, or the broker closing the connection, by 1.5 x keepalive after the last packet)"));
  }
  if (p.timeline > 0 && s.img.dataset.version !== String(p.timeline)) {
    s.img.dataset.version = String(p.timeline);
    s.img.src = "/ui/proxies/" + encodeURIComponent(name) + "/timeline.svg?v=" + p.timeline;
    s.timeline.replaceChildren(s.img);
  }
  s.missed.textContent = p.missed ? p.missed + " journal records not shown (the page fell behind)" : "";
  tick();
}

function renderAll() {
  for (const name of Object.keys(state.dom)) {
    if (!state.proxies[name]) renderProxy(name);
  }
  for (const name of Object.keys(state.proxies)) renderProxy(name);
  document.getElementById("empty").hidden = Object.keys(state.proxies).length > 0;
}

// The bars: time since each connection's last packet against 1.5 x its keepalive.
function tick() {
  for (const [name, d] of Object.entries(state.dom)) {
    const now = nowOf(name);
    for (const row of d.conns.children) {
      const c = row._conn;
      if (!c || c.last_packet_ms == null) { if (row._since) row._since.textContent = ""; continue; }
      const end = c.closed_ms == null ? now : c.closed_ms;
      const since = Math.max(0, end - c.last_packet_ms);
      const bound = c.bound_ms || 0;
      row._since.textContent = secs(since) + (bound ? " / " + secs(bound) : "");
      const fill = bound ? Math.min(1, since / bound) : 0;
      row._bar.firstChild.style.width = (fill * 100).toFixed(1) + "%";
      row._bar.classList.toggle("over", bound > 0 && since > bound);
    }
  }
}

function apply(msg) {
  if (msg.type === "snapshot") {
    state.seq = msg.seq;
    state.proxies = msg.proxies;
    for (const [n, ms] of Object.entries(msg.now || {})) state.offsets[n] = ms - performance.now();
    renderAll();
    return;
  }
  if (msg.seq <= state.seq) return;
  state.seq = msg.seq;
  if (msg.type === "added") {
    state.proxies[msg.proxy.name] = msg.proxy;
    state.offsets[msg.proxy.name] = -performance.now();
    renderAll();
    return;
  }
  if (msg.type === "removed") {
    delete state.proxies[msg.proxy];
    renderAll();
    return;
  }
  const p = state.proxies[msg.proxy];
  if (!p) return;
  if (typeof msg.now === "number") state.offsets[msg.proxy] = msg.now - performance.now();
  if (typeof msg.missed === "number") p.missed = msg.missed;
  switch (msg.type) {
    case "proxy": p.api = msg.api; break;
    case "conn": {
      p.conns[msg.conn.conn] = msg.conn;
      const closed = Object.values(p.conns).filter((c) => c.closed_ms != null).sort((a, b) => a.conn - b.conn);
      for (const c of closed.slice(0, Math.max(0, closed.length - KEEP_CLOSED))) delete p.conns[c.conn];
      break;
    }
    case "faults": p.faults = msg.faults; p.cut_ms = msg.cut_ms; break;
    case "will": p.wills.push(msg.will); p.wills = p.wills.slice(-KEEP_WILLS); break;
    case "verdict": p.verdict = msg.verdict; break;
    case "timeline": p.timeline = msg.version; break;
    case "status": p.status = msg.text; break;
    default: return;
  }
  renderProxy(msg.proxy);
}

function listen() {
  const status = document.getElementById("status");
  const es = new EventSource("/ui/events");
  es.onopen = () => { status.textContent = "live"; status.className = "status live"; };
  es.onerror = () => { status.textContent = "reconnecting…"; status.className = "status down"; };
  es.onmessage = (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch (_) { return; }
    apply(msg);
  };
}

listen();
setInterval(tick, 250);
