//! One run's timeline: four lanes on a shared time axis, brackets for what the checks judge.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::legend::*;
use super::writer::*;
use crate::event::{Actor, Event, Record, Side};
use crate::judge::timing;
use crate::mqtt::PacketKind;
use crate::report::Summary;

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

pub(super) const TITLE_Y: f64 = 24.0;
pub(super) const SUB_Y: f64 = 42.0;
pub(super) const HEAD_Y: f64 = 54.0;
pub(super) const HEAD_ROW: f64 = 15.0;
pub(super) const LANES_Y: f64 = HEAD_Y + 2.0 * HEAD_ROW + 4.0;
pub(super) const LANE_H: f64 = 66.0;
pub(super) const AXIS_Y: f64 = LANES_Y + 4.0 * LANE_H;
pub(super) const BRACKET_Y: f64 = AXIS_Y + 30.0;
pub(super) const BRACKET_ROW: f64 = 22.0;

pub(super) fn lane_top(i: usize) -> f64 {
    LANES_Y + i as f64 * LANE_H
}

pub(super) fn lane_mid(i: usize) -> f64 {
    lane_top(i) + LANE_H / 2.0
}

/// Label shelves of one lane: one line above its marks, one below.
pub(super) fn lane_shelves() -> Shelves {
    Shelves::new(2, LEFT, WIDTH - RIGHT)
}

pub(super) fn lane_label_y(i: usize, row: usize) -> f64 {
    if row == 0 {
        lane_top(i) + 13.0
    } else {
        lane_top(i) + LANE_H - 5.0
    }
}

/// Put a label beside `x` in lane `i`, if there is room.
pub(super) fn lane_label(doc: &mut Doc, sh: &mut Shelves, i: usize, x: f64, class: &str, s: &str) {
    let size = if class == "small" { 10.0 } else { 11.0 };
    if let Some((row, a)) = sh.beside(x, text_width(s, size)) {
        doc.text(a, lane_label_y(i, row), class, s);
    }
}

/// The timeline of one run: NAME.svg.
pub fn render_run(records: &[Record], summary: &Summary) -> String {
    render_run_as(records, summary, None)
}

/// [`render_run`] with `word` in place of the verdict (the live page's picture of a run whose
/// outcome has not come yet: no PASS or FAIL before the checks can be decided).
pub fn render_run_as(records: &[Record], summary: &Summary, word: Option<&str>) -> String {
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
    let title = draw_title(&mut doc, summary, word);
    draw_cycles(&mut doc, records, &sc, t_end);
    draw_fault_spans(&mut doc, records, &sc, t_end);
    draw_keepalive_grid(&mut doc, &sc, t_end, ka_ms);
    draw_lanes(&mut doc);
    let bracket_bottom = BRACKET_Y + BRACKET_ROW * 4.0;
    draw_guides(&mut doc, summary, &sc, t_end, ka_ms, bracket_bottom);
    draw_willy(&mut doc, records, &sc, t_end);
    draw_wire(&mut doc, records, summary, &sc);
    draw_broker(&mut doc, records, summary, &sc, t_end);
    draw_monit(&mut doc, records, summary, &sc);
    draw_axis(&mut doc, &sc, t_end);
    draw_brackets(&mut doc, summary, &sc, t_end);
    let y = draw_legend(&mut doc, bracket_bottom + 10.0, ka_ms);
    let y = draw_checks(&mut doc, summary, y + 6.0);
    doc.finish(y + 12.0, &title)
}

/// Title: what ran, and the verdict (or `word`) on the right; the description under it.
/// Returns the title.
fn draw_title(doc: &mut Doc, summary: &Summary, word: Option<&str>) -> String {
    let (verdict, vclass) = match (word, summary.pass) {
        (Some(w), _) => (w, "sub title"),
        (None, true) => ("PASS", "pass title"),
        (None, false) => ("FAIL", "fail title"),
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
    title
}

/// Cycles as bands behind everything, labelled in the first header row.
fn draw_cycles(doc: &mut Doc, records: &[Record], sc: &Scale, t_end: f64) {
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
}

/// Faults: hatched spans from applied to healed (or the end), named in the second header row.
fn draw_fault_spans(doc: &mut Doc, records: &[Record], sc: &Scale, t_end: f64) {
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
}

/// The keepalive grid over the lanes, when its lines are far enough apart to help.
fn draw_keepalive_grid(doc: &mut Doc, sc: &Scale, t_end: f64, ka_ms: f64) {
    doc.open("keepalive-grid");
    if ka_ms > 0.0 && sc.x(ka_ms) - sc.x(0.0) >= 6.0 {
        let mut t = ka_ms;
        while t < t_end {
            doc.line(sc.x(t), LANES_Y, sc.x(t), AXIS_Y, "grid");
            t += ka_ms;
        }
    }
    doc.close();
}

/// Lane frames and names.
fn draw_lanes(doc: &mut Doc) {
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
}

/// Guides: the moments the brackets measure, drawn through the lanes down to their brackets,
/// broken where the axis has its numbers so that none is struck through.
fn draw_guides(
    doc: &mut Doc,
    summary: &Summary,
    sc: &Scale,
    t_end: f64,
    ka_ms: f64,
    bracket_bottom: f64,
) {
    let guide = |doc: &mut Doc, x: f64, y1: f64, y2: f64, class: &str| {
        doc.line(x, y1, x, AXIS_Y, class);
        doc.line(x, AXIS_Y + 22.0, x, y2, class);
    };
    let reference = timing::reference_ms(summary.last_packet_ms, summary.last_upstream_ms);
    if let Some(r) = reference {
        guide(doc, sc.x(r), LANES_Y, bracket_bottom - 6.0, "g-last");
        let bound = r + timing::bound_of_ms(ka_ms);
        if bound <= t_end {
            guide(
                doc,
                sc.x(bound),
                LANES_Y,
                BRACKET_Y + 3.0 * BRACKET_ROW + 6.0,
                "g-bound",
            );
        }
        if let Some(d) = summary.broker_drop_ms {
            guide(
                doc,
                sc.x(d),
                lane_top(2),
                BRACKET_Y + BRACKET_ROW + 6.0,
                "g-drop",
            );
        }
        if let Some(w) = summary.will_received_ms {
            guide(
                doc,
                sc.x(w),
                lane_top(3),
                BRACKET_Y + 2.0 * BRACKET_ROW + 6.0,
                "g-will",
            );
        }
    }
}

/// willy: its connections (waiting for CONNACK, then connected), what it published, failures.
pub(super) fn draw_willy(doc: &mut Doc, records: &[Record], sc: &Scale, t_end: f64) {
    const L: usize = 0;
    let y = lane_mid(L);
    doc.open(LANES[L].0);
    let mut sh = lane_shelves();
    let mut waiting: Option<f64> = None;
    let mut connected: Option<f64> = None;
    let mut marks: Vec<(f64, String)> = Vec::new();
    let mut fails: Vec<(f64, String)> = Vec::new();
    let mut left_open: Vec<f64> = Vec::new();
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
            // Its connection stays open until the next cycle takes it over: the bar ends where
            // willy's cycle does, labelled.
            (Actor::Willy, Event::LeftOpen) => {
                if let Some(c) = connected.take() {
                    doc.rect(sc.x(c), y - 6.0, sc.x(r.ms) - sc.x(c), 12.0, "conn");
                }
                left_open.push(r.ms);
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
    for ms in &left_open {
        lane_label(doc, &mut sh, L, sc.x(*ms), "small", "left open");
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

/// The gist of a client error, short enough for a label: its kind's, or the text itself.
pub(super) fn short_error(e: &str) -> String {
    match crate::event::ErrorKind::of(e).label() {
        Some(gist) => gist.to_string(),
        None => format!("fails: {}", fit(e, 10.0, 180.0)),
    }
}

/// The wire tap: every MQTT packet as a tick, up for willy -> mqtt and down for mqtt -> willy.
pub(super) fn draw_wire(doc: &mut Doc, records: &[Record], summary: &Summary, sc: &Scale) {
    const L: usize = 1;
    let y = lane_mid(L);
    doc.open(LANES[L].0);
    doc.line(LEFT, y, WIDTH - RIGHT, y, "sep");
    let mut sh = lane_shelves();
    // A step of the design that did not happen: a cross on the wire where it should have
    // been, labelled before anything else so it always has room.
    for m in &summary.missing_steps {
        let x = sc.x(m.ms);
        doc.cross(x, y - 9.0, 6.0);
        lane_label(
            doc,
            &mut sh,
            L,
            x,
            "bold",
            &format!("cycle {}: {}", m.cycle, m.what),
        );
    }
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
                match kind {
                    PacketKind::Pingreq => doc.poly(
                        &[
                            (x - 5.0, y + dir * 4.0),
                            (x + 5.0, y + dir * 4.0),
                            (x, y + dir * 14.0),
                        ],
                        "ping",
                    ),
                    PacketKind::Pingresp => doc.poly(
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
            // A run of PUBLISHes: a tick where it began and one where it ended.
            Event::PublishRun {
                from,
                dropped,
                first_ms,
                last_ms,
                ..
            } => {
                let dir = if *from == Side::Client { -1.0 } else { 1.0 };
                for ms in [*first_ms, *last_ms] {
                    let x = sc.x(ms);
                    doc.line(x, y + dir * 2.0, x, y + dir * 14.0, "tick");
                    if *dropped {
                        doc.cross(x, y + dir * 9.0, 5.0);
                    }
                }
            }
            Event::WireFrame { from, .. } if r.event.ws_frame_kind().is_some() => {
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
pub(super) fn draw_broker(
    doc: &mut Doc,
    records: &[Record],
    summary: &Summary,
    sc: &Scale,
    t_end: f64,
) {
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
            } if *kind == PacketKind::Connack && !open.iter().any(|o| o.0 == *conn) => {
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
pub(super) fn draw_monit(doc: &mut Doc, records: &[Record], summary: &Summary, sc: &Scale) {
    const L: usize = 3;
    let y = lane_mid(L);
    doc.open(LANES[L].0);
    let mut sh = lane_shelves();
    let mut labels: Vec<(f64, String, bool)> = Vec::new();
    for r in records {
        let x = sc.x(r.ms);
        match (&r.actor, &r.event) {
            (Actor::Monit, Event::MessageReceived { payload, .. }) => {
                let same = |ms: f64| (ms - r.ms).abs() < 0.001;
                let source = summary
                    .monit_messages
                    .iter()
                    .find(|m| same(m.ms))
                    .map(|m| m.source);
                let is_will = summary.will_received_ms.is_some_and(same)
                    || matches!(source, Some(crate::judge::Source::Will { .. }));
                if let Some(crate::judge::Source::Unaccounted) = source {
                    doc.cross(x, y, 6.0);
                    labels.insert(0, (r.ms, format!("unaccounted: {payload}"), true));
                } else if is_will {
                    doc.poly(
                        &[(x, y - 8.0), (x + 8.0, y), (x, y + 8.0), (x - 8.0, y)],
                        "will",
                    );
                    let label = match source {
                        Some(crate::judge::Source::Will { cycle }) => {
                            format!("will (cycle {cycle}): {payload}")
                        }
                        _ => format!("will: {payload}"),
                    };
                    labels.insert(0, (r.ms, label, true));
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
pub(super) fn draw_axis(doc: &mut Doc, sc: &Scale, t_end: f64) {
    draw_axis_at(doc, sc, t_end, AXIS_Y);
}

/// Seconds along a line at `y`, from the scale's left to its right end.
pub(super) fn draw_axis_at(doc: &mut Doc, sc: &Scale, t_end: f64, y: f64) {
    doc.open("axis");
    doc.line(sc.x0, y, sc.x1, y, "axis");
    let step = nice_step(t_end / 1000.0, 16.0);
    let mut k = 0u32;
    loop {
        let s = step * k as f64;
        if s * 1000.0 > t_end + 1e-6 {
            break;
        }
        let x = sc.x(s * 1000.0);
        doc.line(x, y, x, y + 5.0, "axis");
        let label = if step < 1.0 {
            format!("{s:.1}")
        } else {
            format!("{s:.0}")
        };
        let w = text_width(&label, 11.0);
        doc.text(x - w / 2.0, y + 17.0, "", &label);
        k += 1;
    }
    doc.text_end(sc.x0 - 16.0, y + 17.0, "sub", "seconds");
    doc.close();
}

/// One bracket: a line from `a` to `b` with end stops, labelled right of it (or left of it when
/// there is no room on the right).
#[allow(clippy::too_many_arguments)]
pub(super) fn bracket(
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

pub(super) fn ratio(ms: f64, ka_ms: f64) -> String {
    if ka_ms > 0.0 {
        format!(" = {:.2} × keepalive", ms / ka_ms)
    } else {
        String::new()
    }
}

/// The intervals the checks judge, measured from willy's last packet.
pub(super) fn draw_brackets(doc: &mut Doc, s: &Summary, sc: &Scale, t_end: f64) {
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
    last_packet_row(doc, s, sc, r);
    drop_row(doc, s, sc, r, t_end, ka_ms);
    will_row(doc, s, sc, r, t_end, ka_ms);
    bound_row(doc, s, sc, r, ka_ms);
}

/// The baseline of bracket row `row`'s text.
fn row_y(row: usize) -> f64 {
    BRACKET_Y + row as f64 * BRACKET_ROW + 12.0
}

/// Row 0: willy's last packet that reached the broker, at `r`.
fn last_packet_row(doc: &mut Doc, s: &Summary, sc: &Scale, r: f64) {
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
}

/// Row 1: from the last packet to the broker's drop (or its close after willy's
/// DISCONNECT), or to the end of the run when it never came.
fn drop_row(doc: &mut Doc, s: &Summary, sc: &Scale, r: f64, t_end: f64, ka_ms: f64) {
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
}

/// Row 2: from the last packet to the will at monit, or to the end of the run when it never
/// came; a run with no will says so.
fn will_row(doc: &mut Doc, s: &Summary, sc: &Scale, r: f64, t_end: f64, ka_ms: f64) {
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
}

/// Row 3: the keepalive bound after the last packet, and any late allowance past it.
fn bound_row(doc: &mut Doc, s: &Summary, sc: &Scale, r: f64, ka_ms: f64) {
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
            "bound: {} = {} after the last packet (MQTT-3.1.2-24){}",
            timing::BOUND_WORDS,
            secs(bound),
            allowance_words(s, bound)
        ),
    );
    doc.close();
}

/// What the keepalive-drop check allowed past the bound, when a broker's profile allows more
/// than scheduling slack: a picture that reads "3.11 x keepalive" beside PASS says why.
fn allowance_words(summary: &Summary, bound: f64) -> String {
    match summary.allowed.get("drop_after_last_packet_ms") {
        Some(&[_, hi]) if hi > bound + crate::profile::SPEC_LATE_MS as f64 => format!(
            "; the check allowed up to {} ({}'s late allowance)",
            secs(hi),
            summary.broker
        ),
        _ => String::new(),
    }
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
