//! Runs side by side: per run, the drop and the will measured from the last packet.

use std::path::Path;

use anyhow::Context;

use super::writer::*;
use crate::judge::timing;
use crate::report::Summary;

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

/// The picture's columns and rows.
const ROW: f64 = 34.0;
const TOP: f64 = 62.0;
const NAME_X: f64 = 16.0;
const BROKER_X: f64 = 300.0;
const TRANSPORT_X: f64 = 470.0;
const X0: f64 = 540.0;
const X1: f64 = 1100.0;
const VERDICT_X: f64 = 1112.0;

/// [`render_compare`] with rows for runs that have no verdict, each saying why.
pub fn render_compare_rows(title: &str, rows: &[CompareRow]) -> String {
    let runs: Vec<&Summary> = rows
        .iter()
        .filter_map(|r| match r {
            CompareRow::Run(s) => Some(*s),
            CompareRow::Missing { .. } => None,
        })
        .collect();
    let mut doc = Doc::new();
    draw_heading(&mut doc, title);
    let axis = Axis::of(&runs);
    let bottom = TOP + ROW * rows.len() as f64;
    // Axis grid first, under the rows' bars.
    draw_grid(&mut doc, &axis, rows.len(), bottom);
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        doc.open(&format!("run-{}", i + 1));
        let mid = y + ROW / 2.0 + 4.0;
        match row {
            CompareRow::Run(s) => draw_run(&mut doc, &axis, s, y, mid),
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
            }
        }
        doc.close();
    }
    draw_axis(&mut doc, &axis, bottom);
    let ly = bottom + 38.0;
    draw_legend(&mut doc, ly);
    doc.finish(ly + 18.0, title)
}

/// The title, the line under it and the columns' heads.
fn draw_heading(doc: &mut Doc, title: &str) {
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
}

/// What the keepalive is measured from in a run: its last packet, or its last bytes.
fn reference(s: &Summary) -> Option<f64> {
    timing::reference_ms(s.last_packet_ms, s.last_upstream_ms)
}

/// The shared axis: milliseconds after willy's last packet, from `lo` to `hi`, with a tick
/// every `step` seconds.
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
    ticks: Vec<f64>,
}

impl Axis {
    /// Wide enough for every run's drop, will and bound (and at least a second).
    fn of(runs: &[&Summary]) -> Axis {
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
        let step = nice_step((hi - lo) / 1000.0, 12.0);
        let mut ticks = Vec::new();
        let mut k = (lo / 1000.0 / step).ceil() as i64;
        while k as f64 * step * 1000.0 <= hi {
            ticks.push(k as f64 * step * 1000.0);
            k += 1;
        }
        Axis {
            lo,
            hi,
            step,
            ticks,
        }
    }

    /// Where `ms` is drawn.
    fn x(&self, ms: f64) -> f64 {
        X0 + (ms - self.lo) / (self.hi - self.lo) * (X1 - X0)
    }
}

/// Zebra rows, the ticks' lines and the zero line.
fn draw_grid(doc: &mut Doc, axis: &Axis, rows: usize, bottom: f64) {
    for i in 0..rows {
        let y = TOP + ROW * i as f64;
        if i % 2 == 0 {
            doc.rect(0.0, y, WIDTH, ROW, "zebra");
        }
    }
    for t in &axis.ticks {
        doc.line(axis.x(*t), TOP, axis.x(*t), bottom, "axisgrid");
    }
    doc.line(axis.x(0.0), TOP, axis.x(0.0), bottom, "axis");
}

/// One run's row: its names and verdict, the bound, and its drop and will bars.
fn draw_run(doc: &mut Doc, axis: &Axis, s: &Summary, y: f64, mid: f64) {
    let x = |ms: f64| axis.x(ms);
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
        return;
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
}

/// The axis under the rows, with its seconds.
fn draw_axis(doc: &mut Doc, axis: &Axis, bottom: f64) {
    doc.open("axis");
    doc.line(X0, bottom, X1, bottom, "axis");
    for t in &axis.ticks {
        let label = if axis.step < 1.0 {
            format!("{:.1}", t / 1000.0)
        } else {
            format!("{:.0}", t / 1000.0)
        };
        doc.line(axis.x(*t), bottom, axis.x(*t), bottom + 5.0, "axis");
        let w = text_width(&label, 11.0);
        doc.text(axis.x(*t) - w / 2.0, bottom + 17.0, "", &label);
    }
    doc.close();
}

/// What the bars and the bound line mean, at `ly`.
fn draw_legend(doc: &mut Doc, ly: f64) {
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
}

/// Write a comparison picture to `path`.
pub fn write_compare(path: &Path, title: &str, runs: &[Summary]) -> anyhow::Result<()> {
    crate::fsx::write_atomic(path, render_compare(title, runs).as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
