//! Pictures of runs, drawn from the records and the summary alone: data in, SVG text out.
//!
//! ```text
//!  NAME.events.jsonl + NAME.summary.json --render_run-----> NAME.svg   one run's timeline
//!  [Summary] ----------------------------render_compare--> SUITE.svg / COMPARE.svg  runs side by side
//! ```
//!
//! The timeline has one lane per actor (willy, the proxy's wire tap, the broker, monit) on a
//! shared time axis, with the cycles as bands, faults hatched, and the intervals the checks judge
//! as labelled brackets under the lanes. Meaning is carried by shape and dash as well as colour,
//! so a greyscale print still reads.
//!
//! The SVG is written by hand through a tiny writer: every number has one decimal and every list
//! is walked in record order, so the same records always give the same bytes (the golden test
//! relies on it). Text widths are estimated from DejaVu Sans metrics, a little generously, and
//! labels are shelved so that none overlaps another.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::event::{Actor, Event, Record, Side};
use crate::judge::timing;
use crate::report::Summary;

/// The width of every picture, in px.
pub const WIDTH: f64 = 1200.0;
/// Where the time axis starts: the lane names sit left of it.
const LEFT: f64 = 150.0;
const RIGHT: f64 = 28.0;
/// The font the widths are estimated for; the others are fallbacks.
const FONT: &str = "'DejaVu Sans', Verdana, Arial, sans-serif";
/// Space kept between two labels on one shelf.
const GAP: f64 = 8.0;

const STYLE: &str = r##"
text { font-size: 11px; fill: #222222; }
.title { font-size: 16px; font-weight: bold; }
.sub { fill: #555555; }
.lane { font-size: 13px; font-weight: bold; }
.lanesub { font-size: 10px; fill: #555555; }
.small { font-size: 10px; fill: #333333; }
.bold { font-weight: bold; }
.pass { fill: #1c6e32; font-weight: bold; }
.fail { fill: #b0281c; font-weight: bold; }
.band0 { fill: #eceff3; }
.band1 { fill: #ffffff; }
.zebra { fill: #f3f4f6; }
.fault { fill: url(#hatch); }
.faultedge { stroke: #b0281c; stroke-width: 1.5; }
.grid { stroke: #7d8794; stroke-width: 1; stroke-dasharray: 1 3; }
.axisgrid { stroke: #d5d9de; stroke-width: 1; }
.sep { stroke: #c3c8cf; stroke-width: 1; }
.axis { stroke: #222222; stroke-width: 1; }
.conn { fill: #2f4f86; }
.wait { stroke: #2f4f86; stroke-width: 1.5; stroke-dasharray: 4 3; fill: none; }
.session { fill: #9db3d3; stroke: #2f4f86; stroke-width: 1; }
.tick { stroke: #333333; stroke-width: 1.2; }
.ping { fill: #222222; }
.pong { fill: #ffffff; stroke: #222222; stroke-width: 1.2; }
.frame { fill: #ffffff; stroke: #666666; stroke-width: 1; }
.cross { stroke: #c0271b; stroke-width: 2.2; stroke-linecap: round; }
.cut { stroke: #b0281c; stroke-width: 3; }
.msg { fill: #222222; }
.msgo { fill: #ffffff; stroke: #222222; stroke-width: 1.5; }
.will { fill: #f0b400; stroke: #222222; stroke-width: 1.5; }
.arrow { stroke: #222222; stroke-width: 1.5; fill: none; }
.head { fill: #222222; }
.drop { stroke: #222222; stroke-width: 3.5; }
.g-last { stroke: #222222; stroke-width: 1.5; }
.g-drop { stroke: #222222; stroke-width: 1; stroke-dasharray: 6 3; }
.g-will { stroke: #222222; stroke-width: 1; stroke-dasharray: 2 2; }
.g-bound { stroke: #6a6a6a; stroke-width: 1.5; stroke-dasharray: 1 3; }
.b-drop { stroke: #222222; stroke-width: 2; fill: none; }
.b-will { stroke: #222222; stroke-width: 2; stroke-dasharray: 6 3; fill: none; }
.b-bound { stroke: #6a6a6a; stroke-width: 2.5; stroke-dasharray: 1 3; fill: none; }
.b-never { stroke: #6a6a6a; stroke-width: 1.5; stroke-dasharray: 8 4; fill: none; }
.bar-drop { fill: #2f4f86; }
.bar-will { fill: #f0b400; stroke: #222222; stroke-width: 1; }
"##;

const DEFS: &str = r##"<defs><pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f6dcd8" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="8" stroke="#c0392b" stroke-width="2.5" stroke-opacity="0.45"/></pattern></defs>"##;

/// Approximate advance width of `s` at `size` px in DejaVu Sans (regular), rounded up a little
/// so that gaps between estimated boxes are real gaps.
pub fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.31,
            ' ' | 'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | 'I' | '/' => 0.44,
            'm' | 'w' | 'M' | 'W' => 1.0,
            'A'..='Z' => 0.76,
            '0'..='9' => 0.65,
            c if c.is_ascii() => 0.63,
            _ => 0.86,
        })
        .sum::<f64>()
        * size
}

fn bold_width(s: &str, size: f64) -> f64 {
    text_width(s, size) * 1.12
}

/// A number as SVG wants it: one decimal, no "-0.0".
fn n(v: f64) -> String {
    let s = format!("{v:.1}");
    if s == "-0.0" {
        "0.0".to_string()
    } else {
        s
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Cut `s` to fit `width` px at `size`, ending it with an ellipsis if it was cut.
fn fit(s: &str, size: f64, width: f64) -> String {
    if text_width(s, size) <= width {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        out.push(c);
        if text_width(&out, size) + text_width("…", size) > width {
            out.pop();
            break;
        }
    }
    out.trim_end().to_string() + "…"
}

/// A duration or a moment in seconds, with as many decimals as its size deserves.
pub fn secs(ms: f64) -> String {
    let s = ms / 1000.0;
    if s.abs() < 10.0 {
        format!("{s:.2} s")
    } else if s.abs() < 100.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// A tick step (in seconds) that puts at most `max` ticks on `span_s`.
fn nice_step(span_s: f64, max: f64) -> f64 {
    const STEPS: [f64; 19] = [
        0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
        900.0, 1800.0, 3600.0, 7200.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_s / s <= max)
        .unwrap_or((span_s / max).ceil())
}

/// The SVG text, written element by element.
struct Doc {
    body: String,
}

impl Doc {
    fn new() -> Doc {
        Doc {
            body: String::new(),
        }
    }

    fn open(&mut self, id: &str) {
        let _ = writeln!(self.body, r#"<g id="{}">"#, esc(id));
    }

    fn close(&mut self) {
        self.body.push_str("</g>\n");
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" class="{class}"/>"#,
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0))
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" class="{class}"/>"#,
            n(x1),
            n(y1),
            n(x2),
            n(y2)
        );
    }

    /// A closed polygon through `pts`.
    fn poly(&mut self, pts: &[(f64, f64)], class: &str) {
        let p: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{},{}", n(*x), n(*y)))
            .collect();
        let _ = writeln!(
            self.body,
            r#"<polygon points="{}" class="{class}"/>"#,
            p.join(" ")
        );
    }

    fn circle(&mut self, x: f64, y: f64, r: f64, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<circle cx="{}" cy="{}" r="{}" class="{class}"/>"#,
            n(x),
            n(y),
            n(r)
        );
    }

    /// An X of half-size `r` centred on (x, y).
    fn cross(&mut self, x: f64, y: f64, r: f64) {
        self.line(x - r, y - r, x + r, y + r, "cross");
        self.line(x - r, y + r, x + r, y - r, "cross");
    }

    /// Text starting at `x` (or ending there with `end`), baseline `y`.
    fn text(&mut self, x: f64, y: f64, class: &str, s: &str) {
        let cls = if class.is_empty() {
            String::new()
        } else {
            format!(r#" class="{class}""#)
        };
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}"{cls}>{}</text>"#,
            n(x),
            n(y),
            esc(s)
        );
    }

    fn text_end(&mut self, x: f64, y: f64, class: &str, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}" class="{class}" text-anchor="end">{}</text>"#,
            n(x),
            n(y),
            esc(s)
        );
    }

    fn finish(self, height: f64, title: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}">"#,
            w = n(WIDTH),
            h = n(height)
        );
        let _ = writeln!(out, "<title>{}</title>", esc(title));
        let _ = writeln!(out, "<style>{STYLE}</style>");
        out.push_str(DEFS);
        out.push('\n');
        let _ = writeln!(
            out,
            r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
            n(WIDTH),
            n(height)
        );
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

/// Rows of labels ("shelves"), each remembering the spans it has given out, so no label lands
/// on another.
struct Shelves {
    rows: Vec<Vec<(f64, f64)>>,
    lo: f64,
    hi: f64,
}

impl Shelves {
    fn new(rows: usize, lo: f64, hi: f64) -> Shelves {
        Shelves {
            rows: vec![Vec::new(); rows],
            lo,
            hi,
        }
    }

    fn free(&self, row: usize, a: f64, b: f64) -> bool {
        a >= self.lo
            && b <= self.hi
            && self.rows[row]
                .iter()
                .all(|&(x, y)| b + GAP <= x || a >= y + GAP)
    }

    fn take(&mut self, row: usize, a: f64, b: f64) -> (usize, f64) {
        self.rows[row].push((a, b));
        (row, a)
    }

    /// A place for a label `w` wide beside `x`: right of it if there is room, else left of it,
    /// on the first row with room. None when there is no room anywhere.
    fn beside(&mut self, x: f64, w: f64) -> Option<(usize, f64)> {
        for row in 0..self.rows.len() {
            for a in [x + 4.0, x - 4.0 - w] {
                if self.free(row, a, a + w) {
                    return Some(self.take(row, a, a + w));
                }
            }
        }
        None
    }

    /// A place for a label centred on `cx`, pushed inside [lo, hi] if needed.
    fn centred(&mut self, cx: f64, w: f64) -> Option<(usize, f64)> {
        let a = (cx - w / 2.0).clamp(self.lo, (self.hi - w).max(self.lo));
        (0..self.rows.len())
            .find(|&row| self.free(row, a, a + w))
            .map(|row| self.take(row, a, a + w))
    }
}

/// Milliseconds to x.
#[derive(Clone, Copy)]
struct Scale {
    t1: f64,
    x0: f64,
    x1: f64,
}

impl Scale {
    fn x(&self, ms: f64) -> f64 {
        self.x0 + ms.clamp(0.0, self.t1) / self.t1 * (self.x1 - self.x0)
    }
}

/// The timeline's lanes, top to bottom: (id, name, what it shows).
pub const LANES: [(&str, &str, &str); 4] = [
    ("lane-willy", "willy", "the client, proxied"),
    ("lane-wire", "proxy / wire", "top: up, bottom: down"),
    ("lane-mqtt", "mqtt", "the broker"),
    ("lane-monit", "monit", "the subscriber"),
];

/// The brackets under the lanes, by id.
pub const BRACKETS: [&str; 4] = [
    "bracket-last-packet",
    "bracket-drop",
    "bracket-will",
    "bracket-bound",
];

const TITLE_Y: f64 = 24.0;
const SUB_Y: f64 = 42.0;
const HEAD_Y: f64 = 54.0;
const HEAD_ROW: f64 = 15.0;
const LANES_Y: f64 = HEAD_Y + 2.0 * HEAD_ROW + 4.0;
const LANE_H: f64 = 66.0;
const AXIS_Y: f64 = LANES_Y + 4.0 * LANE_H;
const BRACKET_Y: f64 = AXIS_Y + 30.0;
const BRACKET_ROW: f64 = 22.0;

fn lane_top(i: usize) -> f64 {
    LANES_Y + i as f64 * LANE_H
}

fn lane_mid(i: usize) -> f64 {
    lane_top(i) + LANE_H / 2.0
}

/// Label shelves of one lane: one line above its marks, one below.
fn lane_shelves() -> Shelves {
    Shelves::new(2, LEFT, WIDTH - RIGHT)
}

fn lane_label_y(i: usize, row: usize) -> f64 {
    if row == 0 {
        lane_top(i) + 13.0
    } else {
        lane_top(i) + LANE_H - 5.0
    }
}

/// Put a label beside `x` in lane `i`, if there is room.
fn lane_label(doc: &mut Doc, sh: &mut Shelves, i: usize, x: f64, class: &str, s: &str) {
    let size = if class == "small" { 10.0 } else { 11.0 };
    if let Some((row, a)) = sh.beside(x, text_width(s, size)) {
        doc.text(a, lane_label_y(i, row), class, s);
    }
}

/// The timeline of one run: NAME.svg.
pub fn render_run(records: &[Record], summary: &Summary) -> String {
    let t_end = records
        .iter()
        .map(|r| r.ms)
        .fold(summary.duration_ms, f64::max)
        .max(1.0);
    let sc = Scale {
        t1: t_end,
        x0: LEFT,
        x1: WIDTH - RIGHT,
    };
    let mut doc = Doc::new();
    let ka_ms = summary.keepalive_s as f64 * 1000.0;

    // Title: what ran, and the verdict on the right.
    let verdict = if summary.pass { "PASS" } else { "FAIL" };
    let vclass = if summary.pass {
        "pass title"
    } else {
        "fail title"
    };
    let vw = bold_width(verdict, 16.0);
    doc.text_end(WIDTH - RIGHT, TITLE_Y, vclass, verdict);
    let title = format!(
        "{}: {}, {}, MQTT {}, keepalive {} s",
        summary.scenario, summary.broker, summary.transport, summary.protocol, summary.keepalive_s
    );
    doc.text(
        16.0,
        TITLE_Y,
        "title",
        &fit(&title, 16.0 * 1.12, WIDTH - RIGHT - vw - 40.0),
    );
    doc.text(
        16.0,
        SUB_Y,
        "sub",
        &fit(&summary.description, 11.0, WIDTH - RIGHT - 16.0),
    );

    // Cycles as bands behind everything, labelled in the first header row.
    doc.open("cycles");
    let cycles: Vec<(u32, f64)> = records
        .iter()
        .filter_map(|r| match (&r.actor, &r.event) {
            (Actor::Willy, Event::CycleStarted { cycle }) => Some((*cycle, r.ms)),
            _ => None,
        })
        .collect();
    let mut head = Shelves::new(1, LEFT, WIDTH - RIGHT);
    for (i, (c, start)) in cycles.iter().enumerate() {
        let end = cycles.get(i + 1).map_or(t_end, |n| n.1);
        let (a, b) = (sc.x(*start), sc.x(end));
        let band = if i % 2 == 0 { "band0" } else { "band1" };
        doc.rect(a, HEAD_Y, b - a, AXIS_Y - HEAD_Y, band);
        doc.line(a, HEAD_Y, a, AXIS_Y, "sep");
        for label in [format!("cycle {c}"), c.to_string()] {
            let w = text_width(&label, 11.0);
            if w + 4.0 <= b - a {
                if let Some((_, x)) = head.centred((a + b) / 2.0, w) {
                    doc.text(x, HEAD_Y + 11.0, "bold", &label);
                }
                break;
            }
        }
    }
    doc.close();

    // Faults: hatched spans from applied to healed (or the end), named in the second header row.
    doc.open("faults");
    let mut fault_head = Shelves::new(1, LEFT, WIDTH - RIGHT);
    for (i, r) in records.iter().enumerate() {
        let Event::FaultApplied { fault, n: k, .. } = &r.event else {
            continue;
        };
        let healed = records[i..].iter().find_map(|h| match &h.event {
            Event::FaultHealed { n: hn, fault: hf } if hn == k && hf == fault => Some(h.ms),
            _ => None,
        });
        let (a, b) = (sc.x(r.ms), sc.x(healed.unwrap_or(t_end)));
        doc.rect(
            a,
            HEAD_Y + HEAD_ROW,
            (b - a).max(2.0),
            AXIS_Y - HEAD_Y - HEAD_ROW,
            "fault",
        );
        doc.line(a, HEAD_Y + HEAD_ROW, a, AXIS_Y, "faultedge");
        if healed.is_some() {
            doc.line(b, HEAD_Y + HEAD_ROW, b, AXIS_Y, "faultedge");
        }
        let label = match healed {
            Some(h) => format!("{fault} at {}, healed at {}", secs(r.ms), secs(h)),
            None => format!("{fault} at {}, never healed", secs(r.ms)),
        };
        if let Some((_, x)) = fault_head.beside(a, text_width(&label, 11.0)) {
            doc.text(x, HEAD_Y + HEAD_ROW + 11.0, "bold", &label);
        }
    }
    doc.close();

    // The keepalive grid over the lanes, when its lines are far enough apart to help.
    doc.open("keepalive-grid");
    if ka_ms > 0.0 && sc.x(ka_ms) - sc.x(0.0) >= 6.0 {
        let mut t = ka_ms;
        while t < t_end {
            doc.line(sc.x(t), LANES_Y, sc.x(t), AXIS_Y, "grid");
            t += ka_ms;
        }
    }
    doc.close();

    // Lane frames and names.
    for (i, (_, name, what)) in LANES.iter().enumerate() {
        doc.line(0.0, lane_top(i), WIDTH, lane_top(i), "sep");
        doc.text(16.0, lane_mid(i) - 2.0, "lane", name);
        doc.text(
            16.0,
            lane_mid(i) + 12.0,
            "lanesub",
            &fit(what, 10.0, LEFT - 20.0),
        );
    }
    doc.line(0.0, AXIS_Y, WIDTH, AXIS_Y, "sep");

    // Guides: the moments the brackets measure, drawn through the lanes down to their brackets,
    // broken where the axis has its numbers so that none is struck through.
    let guide = |doc: &mut Doc, x: f64, y1: f64, y2: f64, class: &str| {
        doc.line(x, y1, x, AXIS_Y, class);
        doc.line(x, AXIS_Y + 22.0, x, y2, class);
    };
    let reference = timing::reference_ms(summary.last_packet_ms, summary.last_upstream_ms);
    let bracket_bottom = BRACKET_Y + BRACKET_ROW * 4.0;
    if let Some(r) = reference {
        guide(&mut doc, sc.x(r), LANES_Y, bracket_bottom - 6.0, "g-last");
        let bound = r + timing::bound_of_ms(ka_ms);
        if bound <= t_end {
            guide(
                &mut doc,
                sc.x(bound),
                LANES_Y,
                BRACKET_Y + 3.0 * BRACKET_ROW + 6.0,
                "g-bound",
            );
        }
        if let Some(d) = summary.broker_drop_ms {
            guide(
                &mut doc,
                sc.x(d),
                lane_top(2),
                BRACKET_Y + BRACKET_ROW + 6.0,
                "g-drop",
            );
        }
        if let Some(w) = summary.will_received_ms {
            guide(
                &mut doc,
                sc.x(w),
                lane_top(3),
                BRACKET_Y + 2.0 * BRACKET_ROW + 6.0,
                "g-will",
            );
        }
    }

    draw_willy(&mut doc, records, &sc, t_end);
    draw_wire(&mut doc, records, &sc);
    draw_broker(&mut doc, records, summary, &sc, t_end);
    draw_monit(&mut doc, records, summary, &sc);
    draw_axis(&mut doc, &sc, t_end);
    draw_brackets(&mut doc, summary, &sc, t_end);
    let y = draw_legend(&mut doc, bracket_bottom + 10.0, ka_ms);
    let y = draw_checks(&mut doc, summary, y + 6.0);
    doc.finish(y + 12.0, &title)
}

/// willy: its connections (waiting for CONNACK, then connected), what it published, failures.
fn draw_willy(doc: &mut Doc, records: &[Record], sc: &Scale, t_end: f64) {
    const L: usize = 0;
    let y = lane_mid(L);
    doc.open(LANES[L].0);
    let mut sh = lane_shelves();
    let mut waiting: Option<f64> = None;
    let mut connected: Option<f64> = None;
    let mut marks: Vec<(f64, String)> = Vec::new();
    let mut fails: Vec<(f64, String)> = Vec::new();
    for r in records {
        match (&r.actor, &r.event) {
            (Actor::Willy, Event::Connecting { .. }) => waiting = Some(r.ms),
            (Actor::Willy, Event::Connected { .. }) => {
                if let Some(w) = waiting.take() {
                    doc.line(sc.x(w), y, sc.x(r.ms), y, "wait");
                }
                connected = Some(r.ms);
            }
            (Actor::Willy, Event::Disconnected) => {
                if let Some(c) = connected.take() {
                    doc.rect(sc.x(c), y - 6.0, sc.x(r.ms) - sc.x(c), 12.0, "conn");
                }
            }
            (Actor::Willy, Event::ConnectionFailed { error }) => {
                if let Some(c) = connected.take() {
                    doc.rect(sc.x(c), y - 6.0, sc.x(r.ms) - sc.x(c), 12.0, "conn");
                }
                if let Some(w) = waiting.take() {
                    doc.line(sc.x(w), y, sc.x(r.ms), y, "wait");
                }
                fails.push((r.ms, short_error(error)));
            }
            (Actor::Willy, Event::Published { payload, .. }) => {
                marks.push((r.ms, payload.clone()));
            }
            (Actor::Runner, Event::ProcessSignalled { signal, .. }) => {
                fails.push((r.ms, signal.clone()));
            }
            _ => {}
        }
    }
    if let Some(w) = waiting {
        doc.line(sc.x(w), y, sc.x(t_end), y, "wait");
    }
    if let Some(c) = connected {
        doc.rect(sc.x(c), y - 6.0, sc.x(t_end) - sc.x(c), 12.0, "conn");
    }
    for (ms, _) in &marks {
        doc.line(sc.x(*ms), y - 11.0, sc.x(*ms), y + 11.0, "tick");
    }
    for (ms, _) in &fails {
        doc.cross(sc.x(*ms), y, 6.0);
    }
    // Failures first: they matter more than the routine publishes if space runs out.
    for (ms, s) in &fails {
        lane_label(doc, &mut sh, L, sc.x(*ms), "", s);
    }
    for (ms, payload) in &marks {
        lane_label(
            doc,
            &mut sh,
            L,
            sc.x(*ms),
            "small",
            &format!("pub {payload}"),
        );
    }
    doc.close();
}

/// The gist of a client error, short enough for a label.
fn short_error(e: &str) -> String {
    let lower = e.to_lowercase();
    let gist = if lower.contains("no connack") || lower.contains("timeout") {
        "no CONNACK: gives up"
    } else if lower.contains("refused") {
        "connection refused"
    } else if lower.contains("reset") {
        "connection reset"
    } else if lower.contains("ping") {
        "ping timeout"
    } else {
        return format!("fails: {}", fit(e, 10.0, 180.0));
    };
    gist.to_string()
}

/// The wire tap: every MQTT packet as a tick, up for willy -> mqtt and down for mqtt -> willy.
fn draw_wire(doc: &mut Doc, records: &[Record], sc: &Scale) {
    const L: usize = 1;
    let y = lane_mid(L);
    doc.open(LANES[L].0);
    doc.line(LEFT, y, WIDTH - RIGHT, y, "sep");
    let mut sh = lane_shelves();
    let mut labels: Vec<(f64, String)> = Vec::new();
    for r in records {
        match &r.event {
            Event::Packet {
                from,
                dropped,
                kind,
                ..
            } => {
                let x = sc.x(r.ms);
                let dir = if *from == Side::Client { -1.0 } else { 1.0 };
                match kind.as_str() {
                    "PINGREQ" => doc.poly(
                        &[
                            (x - 5.0, y + dir * 4.0),
                            (x + 5.0, y + dir * 4.0),
                            (x, y + dir * 14.0),
                        ],
                        "ping",
                    ),
                    "PINGRESP" => doc.poly(
                        &[
                            (x - 5.0, y + dir * 14.0),
                            (x + 5.0, y + dir * 14.0),
                            (x, y + dir * 4.0),
                        ],
                        "pong",
                    ),
                    _ => doc.line(x, y + dir * 2.0, x, y + dir * 14.0, "tick"),
                }
                if *dropped {
                    doc.cross(x, y + dir * 9.0, 5.0);
                }
            }
            Event::WireFrame { from, what, .. } if what.starts_with("ws ") => {
                let dir = if *from == Side::Client { -1.0 } else { 1.0 };
                let x = sc.x(r.ms);
                doc.rect(x - 2.5, y + dir * 9.0 - 2.5, 5.0, 5.0, "frame");
            }
            Event::ConnectionCut { fault, .. } => {
                let x = sc.x(r.ms);
                doc.line(x, y - 16.0, x, y + 16.0, "cut");
                labels.push((r.ms, format!("{fault}: cut")));
            }
            Event::ConnectionAccepted { conn, held: true } => {
                labels.push((r.ms, format!("conn {conn} held")));
            }
            _ => {}
        }
    }
    for (ms, s) in &labels {
        lane_label(doc, &mut sh, L, sc.x(*ms), "small", s);
    }
    doc.close();
}

/// The broker: willy's sessions (CONNACK to the broker side closing) and the moment it dropped
/// willy.
fn draw_broker(doc: &mut Doc, records: &[Record], summary: &Summary, sc: &Scale, t_end: f64) {
    const L: usize = 2;
    let y = lane_mid(L);
    doc.open(LANES[L].0);
    let mut sh = lane_shelves();
    let tapped = records
        .iter()
        .any(|r| matches!(r.event, Event::Packet { .. }));
    // (conn, start) of sessions still open.
    let mut open: Vec<(u64, f64)> = Vec::new();
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for r in records {
        match &r.event {
            Event::Packet {
                conn,
                from: Side::Broker,
                dropped: false,
                kind,
                ..
            } if kind == "CONNACK" && !open.iter().any(|o| o.0 == *conn) => {
                open.push((*conn, r.ms))
            }
            Event::UpstreamOpened { conn } if !tapped => open.push((*conn, r.ms)),
            Event::SideClosed {
                conn,
                side: Side::Broker,
                ..
            }
            | Event::ConnectionClosed { conn, .. }
            | Event::ConnectionCut { conn, .. } => {
                if let Some(i) = open.iter().position(|o| o.0 == *conn) {
                    spans.push((open.remove(i).1, r.ms));
                }
            }
            _ => {}
        }
    }
    spans.extend(open.iter().map(|o| (o.1, t_end)));
    for (a, b) in spans {
        doc.rect(sc.x(a), y - 6.0, sc.x(b) - sc.x(a), 12.0, "session");
    }
    if let Some(d) = summary.broker_drop_ms {
        let x = sc.x(d);
        doc.line(x, y - 14.0, x, y + 14.0, "drop");
        let what = if after_disconnect(summary) {
            "closes after DISCONNECT"
        } else {
            "drops willy"
        };
        lane_label(doc, &mut sh, L, x, "bold", what);
    }
    // The will travels from the broker to monit.
    if let Some(w) = summary.will_received_ms {
        let x = sc.x(w);
        doc.line(x, y + 8.0, x, lane_mid(3) - 12.0, "arrow");
        doc.poly(
            &[
                (x - 4.0, lane_mid(3) - 16.0),
                (x + 4.0, lane_mid(3) - 16.0),
                (x, lane_mid(3) - 9.0),
            ],
            "head",
        );
    }
    doc.close();
}

/// monit: what it received; the will as a diamond.
fn draw_monit(doc: &mut Doc, records: &[Record], summary: &Summary, sc: &Scale) {
    const L: usize = 3;
    let y = lane_mid(L);
    doc.open(LANES[L].0);
    let mut sh = lane_shelves();
    let mut labels: Vec<(f64, String, bool)> = Vec::new();
    for r in records {
        let x = sc.x(r.ms);
        match (&r.actor, &r.event) {
            (Actor::Monit, Event::MessageReceived { payload, .. }) => {
                let is_will = summary
                    .will_received_ms
                    .is_some_and(|w| (w - r.ms).abs() < 0.001);
                if is_will {
                    doc.poly(
                        &[(x, y - 8.0), (x + 8.0, y), (x, y + 8.0), (x - 8.0, y)],
                        "will",
                    );
                    labels.insert(0, (r.ms, format!("will: {payload}"), true));
                } else {
                    let class = if payload == "true" { "msg" } else { "msgo" };
                    doc.circle(x, y, 4.5, class);
                    labels.push((r.ms, payload.clone(), false));
                }
            }
            (
                _,
                Event::LateReceived {
                    payload, retain, ..
                },
            ) => {
                doc.rect(x - 4.0, y - 4.0, 8.0, 8.0, "msgo");
                let kept = if *retain { " (retained)" } else { "" };
                labels.push((r.ms, format!("late subscriber: {payload}{kept}"), false));
            }
            _ => {}
        }
    }
    for (ms, s, will) in &labels {
        let class = if *will { "bold" } else { "small" };
        lane_label(doc, &mut sh, L, sc.x(*ms), class, s);
    }
    doc.close();
}

/// Seconds along the bottom of the lanes.
fn draw_axis(doc: &mut Doc, sc: &Scale, t_end: f64) {
    doc.open("axis");
    doc.line(LEFT, AXIS_Y, WIDTH - RIGHT, AXIS_Y, "axis");
    let step = nice_step(t_end / 1000.0, 16.0);
    let mut k = 0u32;
    loop {
        let s = step * k as f64;
        if s * 1000.0 > t_end + 1e-6 {
            break;
        }
        let x = sc.x(s * 1000.0);
        doc.line(x, AXIS_Y, x, AXIS_Y + 5.0, "axis");
        let label = if step < 1.0 {
            format!("{s:.1}")
        } else {
            format!("{s:.0}")
        };
        let w = text_width(&label, 11.0);
        doc.text(x - w / 2.0, AXIS_Y + 17.0, "", &label);
        k += 1;
    }
    doc.text_end(LEFT - 16.0, AXIS_Y + 17.0, "sub", "seconds");
    doc.close();
}

/// One bracket: a line from `a` to `b` with end stops, labelled right of it (or left of it when
/// there is no room on the right).
#[allow(clippy::too_many_arguments)]
fn bracket(
    doc: &mut Doc,
    sc: &Scale,
    row: usize,
    a: f64,
    b: f64,
    class: &str,
    stop_b: bool,
    s: &str,
) {
    let y = BRACKET_Y + row as f64 * BRACKET_ROW + 8.0;
    let (xa, xb) = (sc.x(a), sc.x(b));
    doc.line(xa, y, xb, y, class);
    doc.line(xa, y - 6.0, xa, y + 6.0, "b-drop");
    if stop_b {
        doc.line(xb, y - 6.0, xb, y + 6.0, "b-drop");
    }
    let w = text_width(s, 11.0);
    let x = if xb + 8.0 + w <= WIDTH - RIGHT {
        xb + 8.0
    } else if xa - 8.0 - w >= 4.0 {
        xa - 8.0 - w
    } else {
        (WIDTH - RIGHT - w).max(4.0)
    };
    doc.text(x, y + 4.0, "", s);
}

fn ratio(ms: f64, ka_ms: f64) -> String {
    if ka_ms > 0.0 {
        format!(" = {:.2} × keepalive", ms / ka_ms)
    } else {
        String::new()
    }
}

/// The intervals the checks judge, measured from willy's last packet.
fn draw_brackets(doc: &mut Doc, s: &Summary, sc: &Scale, t_end: f64) {
    let ka_ms = s.keepalive_s as f64 * 1000.0;
    let Some(r) = timing::reference_ms(s.last_packet_ms, s.last_upstream_ms) else {
        doc.open(BRACKETS[0]);
        doc.text(
            LEFT,
            BRACKET_Y + 12.0,
            "",
            "no network fault in this run: nothing to measure from a last packet",
        );
        doc.close();
        return;
    };
    let row_y = |row: usize| BRACKET_Y + row as f64 * BRACKET_ROW + 12.0;

    doc.open(BRACKETS[0]);
    let kind = s.last_packet_kind.as_deref().unwrap_or("bytes");
    let label = format!(
        "willy's last packet that reached the broker: {kind} at {}",
        secs(r)
    );
    let w = bold_width(&label, 11.0);
    let xr = sc.x(r);
    let x = if xr - 8.0 - w >= 4.0 {
        xr - 8.0 - w
    } else {
        xr + 8.0
    };
    doc.text(x, row_y(0), "bold", &label);
    doc.close();

    doc.open(BRACKETS[1]);
    match s.broker_drop_ms {
        Some(d) => {
            let dt = d - r;
            bracket(
                doc,
                sc,
                1,
                r,
                d,
                "b-drop",
                true,
                &if after_disconnect(s) {
                    format!(
                        "willy's DISCONNECT → broker closes the connection: {}",
                        secs(dt)
                    )
                } else {
                    format!(
                        "last packet → broker drops willy: {}{}",
                        secs(dt),
                        ratio(dt, ka_ms)
                    )
                },
            );
        }
        None => bracket(
            doc,
            sc,
            1,
            r,
            t_end,
            "b-never",
            false,
            "last packet → broker drop: never, to the end of the run",
        ),
    }
    doc.close();

    doc.open(BRACKETS[2]);
    match (s.will_received_ms, s.will_configured) {
        (Some(w), _) => {
            let dt = w - r;
            bracket(
                doc,
                sc,
                2,
                r,
                w,
                "b-will",
                true,
                &format!(
                    "last packet → will at monit: {}{}",
                    secs(dt),
                    ratio(dt, ka_ms)
                ),
            );
        }
        (None, true) => bracket(
            doc,
            sc,
            2,
            r,
            t_end,
            "b-never",
            false,
            "last packet → will at monit: never, to the end of the run",
        ),
        (None, false) => {
            doc.text(
                sc.x(r) + 8.0,
                row_y(2),
                "",
                "no will configured: monit is never told willy is gone",
            );
        }
    }
    doc.close();

    doc.open(BRACKETS[3]);
    let bound = timing::bound_of_ms(ka_ms);
    bracket(
        doc,
        sc,
        3,
        r,
        r + bound,
        "b-bound",
        true,
        &format!(
            "bound: {} = {} after the last packet (MQTT-3.1.2-24)",
            timing::BOUND_WORDS,
            secs(bound)
        ),
    );
    doc.close();
}

/// One legend entry's symbol, drawn in a 22 x 14 box whose left middle is (x, y).
type Symbol = fn(&mut Doc, f64, f64);

/// The legend, wrapped to the width; returns the y below it.
fn draw_legend(doc: &mut Doc, y0: f64, ka_ms: f64) -> f64 {
    let grid = format!("keepalive grid ({})", secs(ka_ms));
    let items: [(Symbol, &str); 13] = [
        (
            |d, x, y| d.rect(x, y - 5.0, 22.0, 10.0, "conn"),
            "willy connected",
        ),
        (
            |d, x, y| d.line(x, y, x + 22.0, y, "wait"),
            "waiting for CONNACK",
        ),
        (
            |d, x, y| d.cross(x + 11.0, y, 5.0),
            "failed / dropped by the fault",
        ),
        (
            |d, x, y| {
                d.poly(
                    &[(x + 6.0, y + 5.0), (x + 16.0, y + 5.0), (x + 11.0, y - 6.0)],
                    "ping",
                )
            },
            "PINGREQ (up)",
        ),
        (
            |d, x, y| {
                d.poly(
                    &[(x + 6.0, y - 5.0), (x + 16.0, y - 5.0), (x + 11.0, y + 6.0)],
                    "pong",
                )
            },
            "PINGRESP (down)",
        ),
        (
            |d, x, y| d.line(x + 11.0, y - 7.0, x + 11.0, y + 7.0, "tick"),
            "other packet",
        ),
        (
            |d, x, y| d.rect(x + 8.5, y - 2.5, 5.0, 5.0, "frame"),
            "WebSocket control frame",
        ),
        (
            |d, x, y| d.rect(x, y - 5.0, 22.0, 10.0, "session"),
            "willy's session at the broker",
        ),
        (|d, x, y| d.circle(x + 11.0, y, 4.5, "msg"), "true at monit"),
        (
            |d, x, y| d.circle(x + 11.0, y, 4.5, "msgo"),
            "other message",
        ),
        (
            |d, x, y| {
                d.poly(
                    &[
                        (x + 11.0, y - 7.0),
                        (x + 18.0, y),
                        (x + 11.0, y + 7.0),
                        (x + 4.0, y),
                    ],
                    "will",
                )
            },
            "the will",
        ),
        (
            |d, x, y| d.rect(x, y - 6.0, 22.0, 12.0, "fault"),
            "fault in effect",
        ),
        (
            |d, x, y| d.line(x + 11.0, y - 7.0, x + 11.0, y + 7.0, "grid"),
            "",
        ),
    ];
    doc.open("legend");
    let (mut x, mut y) = (16.0, y0 + 8.0);
    for (sym, label) in items {
        let label = if label.is_empty() {
            grid.as_str()
        } else {
            label
        };
        let w = 26.0 + text_width(label, 10.0) + 18.0;
        if x + w > WIDTH - 8.0 {
            x = 16.0;
            y += 18.0;
        }
        sym(doc, x, y);
        doc.text(x + 26.0, y + 3.5, "small", label);
        x += w;
    }
    doc.close();
    y + 10.0
}

/// Each check's verdict, wrapped to the width; returns the y below it.
fn draw_checks(doc: &mut Doc, s: &Summary, y0: f64) -> f64 {
    doc.open("checks");
    let (mut x, mut y) = (16.0, y0 + 12.0);
    doc.text(x, y, "bold", "checks:");
    x += bold_width("checks:", 11.0) + 8.0;
    for c in &s.checks {
        let mark = if c.status == crate::judge::Status::Fail {
            "FAIL"
        } else {
            c.status.as_str()
        };
        let w = bold_width(mark, 11.0) + 5.0 + text_width(&c.name.to_string(), 11.0) + 18.0;
        if x + w > WIDTH - 8.0 {
            x = 16.0;
            y += 16.0;
        }
        let class = if c.pass { "pass" } else { "fail" };
        doc.text(x, y, class, mark);
        doc.text(x + bold_width(mark, 11.0) + 5.0, y, "", &c.name.to_string());
        x += w;
    }
    doc.close();
    y
}

/// The broker's close followed willy's own DISCONNECT: a clean end, not a keepalive drop.
fn after_disconnect(s: &Summary) -> bool {
    s.last_packet_kind.as_deref() == Some("DISCONNECT")
}

/// Write NAME.svg for one run into `dir`; returns its path.
pub fn write_run(
    dir: &Path,
    name: &str,
    records: &[Record],
    s: &Summary,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.svg"));
    crate::fsx::write_atomic(&path, render_run(records, s).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// One row of a comparison picture.
pub enum CompareRow<'a> {
    /// A run that finished: its bars and verdict.
    Run(&'a Summary),
    /// A run with no verdict (it failed to run, was interrupted, or never started): its names,
    /// `status` where the verdict goes, and `reason` where the bars go.
    Missing {
        name: &'a str,
        broker: &'a str,
        transport: &'a str,
        status: &'a str,
        reason: String,
    },
}

/// Many runs side by side (SUITE.svg, COMPARE.svg): one row per run, the same intervals as bars
/// on a shared axis of seconds after willy's last packet.
pub fn render_compare(title: &str, runs: &[Summary]) -> String {
    let rows: Vec<CompareRow> = runs.iter().map(CompareRow::Run).collect();
    render_compare_rows(title, &rows)
}

/// [`render_compare`] with rows for runs that have no verdict, each saying why.
pub fn render_compare_rows(title: &str, rows: &[CompareRow]) -> String {
    let runs: Vec<&Summary> = rows
        .iter()
        .filter_map(|r| match r {
            CompareRow::Run(s) => Some(*s),
            CompareRow::Missing { .. } => None,
        })
        .collect();
    const ROW: f64 = 34.0;
    const TOP: f64 = 62.0;
    const NAME_X: f64 = 16.0;
    const BROKER_X: f64 = 300.0;
    const TRANSPORT_X: f64 = 470.0;
    const X0: f64 = 540.0;
    const X1: f64 = 1100.0;
    const VERDICT_X: f64 = 1112.0;
    let mut doc = Doc::new();
    doc.text(16.0, 24.0, "title", &fit(title, 16.0 * 1.12, WIDTH - 32.0));
    doc.text(
        16.0,
        42.0,
        "sub",
        "one row per run: how long after willy's last packet the broker dropped it, and the will reached monit",
    );
    for (x, h) in [
        (NAME_X, "run"),
        (BROKER_X, "broker"),
        (TRANSPORT_X, "transport"),
        (X0, "seconds after willy's last packet"),
        (VERDICT_X, "verdict"),
    ] {
        doc.text(x, TOP - 6.0, "bold", h);
    }
    let reference = |s: &Summary| timing::reference_ms(s.last_packet_ms, s.last_upstream_ms);
    let values: Vec<f64> = runs
        .iter()
        .filter(|s| reference(s).is_some())
        .flat_map(|s| {
            [
                s.drop_after_last_packet_ms,
                s.will_after_last_packet_ms,
                Some(timing::bound_of_secs_ms(s.keepalive_s)),
            ]
        })
        .flatten()
        .collect();
    let lo = values.iter().copied().fold(0.0, f64::min);
    let hi = values.iter().copied().fold(1000.0, f64::max) * 1.05;
    let x = |ms: f64| X0 + (ms - lo) / (hi - lo) * (X1 - X0);
    let bottom = TOP + ROW * rows.len() as f64;

    // Axis grid first, under the rows' bars.
    let step = nice_step((hi - lo) / 1000.0, 12.0);
    let mut ticks = Vec::new();
    let mut k = (lo / 1000.0 / step).ceil() as i64;
    while k as f64 * step * 1000.0 <= hi {
        ticks.push(k as f64 * step * 1000.0);
        k += 1;
    }
    for i in 0..rows.len() {
        let y = TOP + ROW * i as f64;
        if i % 2 == 0 {
            doc.rect(0.0, y, WIDTH, ROW, "zebra");
        }
    }
    for t in &ticks {
        doc.line(x(*t), TOP, x(*t), bottom, "axisgrid");
    }
    doc.line(x(0.0), TOP, x(0.0), bottom, "axis");

    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        doc.open(&format!("run-{}", i + 1));
        let mid = y + ROW / 2.0 + 4.0;
        let s = match row {
            CompareRow::Run(s) => *s,
            CompareRow::Missing {
                name,
                broker,
                transport,
                status,
                reason,
            } => {
                doc.text(NAME_X, mid, "", &fit(name, 11.0, BROKER_X - NAME_X - 10.0));
                doc.text(
                    BROKER_X,
                    mid,
                    "",
                    &fit(broker, 11.0, TRANSPORT_X - BROKER_X - 10.0),
                );
                doc.text(TRANSPORT_X, mid, "", transport);
                doc.text(VERDICT_X, mid, "fail", status);
                doc.text(X0 + 6.0, mid, "sub", &fit(reason, 10.0, X1 - X0 - 12.0));
                doc.close();
                continue;
            }
        };
        doc.text(
            NAME_X,
            mid,
            "",
            &fit(&s.scenario, 11.0, BROKER_X - NAME_X - 10.0),
        );
        doc.text(
            BROKER_X,
            mid,
            "",
            &fit(&s.broker, 11.0, TRANSPORT_X - BROKER_X - 10.0),
        );
        doc.text(TRANSPORT_X, mid, "", &s.transport);
        let (verdict, class) = if s.pass {
            ("pass", "pass")
        } else {
            ("FAIL", "fail")
        };
        doc.text(VERDICT_X, mid, class, verdict);
        if reference(s).is_none() {
            doc.text(
                x(0.0) + 6.0,
                mid,
                "sub",
                "no network fault: nothing measured from a last packet",
            );
            doc.close();
            continue;
        }
        let bound = timing::bound_of_secs_ms(s.keepalive_s);
        doc.line(x(bound), y + 3.0, x(bound), y + ROW - 3.0, "g-bound");
        let bars = [
            (
                s.drop_after_last_packet_ms,
                y + 6.0,
                "bar-drop",
                "broker never dropped willy",
            ),
            (
                s.will_after_last_packet_ms,
                y + 19.0,
                "bar-will",
                if s.will_configured {
                    "no will at monit"
                } else {
                    "no will configured"
                },
            ),
        ];
        // A close that follows willy's own DISCONNECT is the end of a clean session, not the
        // keepalive giving up: say so beside the bar.
        let clean = after_disconnect(s);
        for (v, by, class, none) in bars {
            match v {
                Some(v) => {
                    let (a, b) = (x(v.min(0.0)), x(v.max(0.0)));
                    doc.rect(a, by, (b - a).max(1.5), 9.0, class);
                    let label = if clean && class == "bar-drop" {
                        format!("{}: the close after willy's DISCONNECT", secs(v))
                    } else {
                        secs(v)
                    };
                    doc.text(b + 5.0, by + 8.5, "small", &label);
                }
                None => doc.text(x(0.0) + 6.0, by + 8.5, "small", none),
            }
        }
        doc.close();
    }
    doc.open("axis");
    doc.line(X0, bottom, X1, bottom, "axis");
    for t in &ticks {
        let label = if step < 1.0 {
            format!("{:.1}", t / 1000.0)
        } else {
            format!("{:.0}", t / 1000.0)
        };
        doc.line(x(*t), bottom, x(*t), bottom + 5.0, "axis");
        let w = text_width(&label, 11.0);
        doc.text(x(*t) - w / 2.0, bottom + 17.0, "", &label);
    }
    doc.close();
    // Legend.
    let ly = bottom + 38.0;
    doc.open("legend");
    doc.rect(16.0, ly - 5.0, 22.0, 9.0, "bar-drop");
    doc.text(44.0, ly + 3.5, "small", "last packet → broker drops willy");
    doc.rect(260.0, ly - 5.0, 22.0, 9.0, "bar-will");
    doc.text(288.0, ly + 3.5, "small", "last packet → will at monit");
    doc.line(490.0, ly - 7.0, 490.0, ly + 7.0, "g-bound");
    doc.text(
        500.0,
        ly + 3.5,
        "small",
        &format!("{}: the spec's bound for the drop", timing::BOUND_WORDS),
    );
    doc.close();
    doc.finish(ly + 18.0, title)
}

/// Write a comparison picture to `path`.
pub fn write_compare(path: &Path, title: &str, runs: &[Summary]) -> anyhow::Result<()> {
    crate::fsx::write_atomic(path, render_compare(title, runs).as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
