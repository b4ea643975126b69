//! A fleet run's picture: the distribution of drop and will latency beside the bound, and the
//! wills arriving after the cut.
//!
//! ```text
//!  per-willy latencies (FleetFacts) --CDF, 400 quantiles--> two curves, 0..100 %
//!                                   | the bound (1.5 x keepalive) and the window's late edge
//!  will arrivals after the cut -----100 ms bins-----------> bars
//! ```

use super::writer::{nice_step, secs, Doc, LEFT, RIGHT, WIDTH};
use crate::judge::fleet::FleetFacts;
use crate::judge::timing;
use crate::report::Summary;
use crate::scenario::Scenario;

const TOP: f64 = 70.0;
const CDF_H: f64 = 300.0;
const GAP: f64 = 80.0;
const HIST_H: f64 = 160.0;
/// Points a curve is drawn through: enough for a smooth step, few enough for a small file.
const POINTS: usize = 400;

/// The picture of a fleet run, from its records' facts and its summary.
pub fn render_fleet(s: &Scenario, facts: &FleetFacts, summary: &Summary) -> String {
    let mut doc = Doc::new();
    let (drops, wills) = facts.latencies();
    let arrivals = facts.wills_after_cut();
    let (early, late) = summary
        .fleet
        .as_ref()
        .map_or((0.0, 0.0), |f| (f.window_ms.0, f.window_ms.1));
    let bound = timing::keepalive_bound_ms(s.keepalive);
    let (early, late) = if late > 0.0 {
        (early, late)
    } else {
        (bound, bound)
    };
    heading(&mut doc, summary);
    let y0 = cdf_panel(&mut doc, &drops, &wills, (early, late), bound);
    let h1 = arrivals_panel(&mut doc, &arrivals, late, y0);
    doc.finish(h1 + 40.0, &format!("{}: fleet", summary.scenario))
}

/// The verdict, the run in a line, and the wills' counts.
fn heading(doc: &mut Doc, summary: &Summary) {
    let x1 = WIDTH - RIGHT;
    let verdict = summary.verdict_word();
    let class = if summary.pass {
        "pass title"
    } else {
        "fail title"
    };
    doc.text_end(x1, 30.0, class, verdict);
    let n = summary.fleet.as_ref().map_or(0, |f| f.willies);
    doc.text(
        16.0,
        30.0,
        "title",
        &format!(
            "{}: {n} willies, {}, MQTT {}, keepalive {} s",
            summary.scenario, summary.broker, summary.protocol, summary.keepalive_s
        ),
    );
    if let Some(f) = &summary.fleet {
        doc.text(
            16.0,
            50.0,
            "sub",
            &format!(
                "wills received {} of {}, lost {}, duplicated {}; cut to last will {}",
                f.wills_received,
                f.wills_expected,
                f.wills_lost,
                f.wills_duplicated,
                f.cut_to_last_will_ms.map_or("-".to_string(), secs)
            ),
        );
    }
}

/// The CDF of the drop and will latencies, the window `(early, late)` shaded, the bound and
/// the late edge marked. Returns the panel's bottom (its axis).
fn cdf_panel(doc: &mut Doc, drops: &[f64], wills: &[f64], window: (f64, f64), bound: f64) -> f64 {
    let (early, late) = window;
    let x1 = WIDTH - RIGHT;
    // From a little before the earliest of the window and the values to a little after the
    // latest: the curves, not empty seconds, fill the width.
    let hi = drops.iter().chain(wills).copied().fold(late, f64::max);
    let lo = drops.iter().chain(wills).copied().fold(early, f64::min);
    let pad = ((hi - lo) * 0.08).max(50.0);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let xs = |ms: f64| LEFT + (x1 - LEFT) * ((ms - lo) / (hi - lo)).clamp(0.0, 1.0);
    doc.open("cdf");
    let y0 = TOP + CDF_H;
    let ys = |frac: f64| y0 - CDF_H * frac;
    doc.rect(xs(early), TOP, xs(late) - xs(early), CDF_H, "zebra");
    for pct in [0.0, 0.25, 0.5, 0.75, 1.0] {
        doc.line(LEFT, ys(pct), x1, ys(pct), "axisgrid");
        doc.text_end(
            LEFT - 6.0,
            ys(pct) + 4.0,
            "small",
            &format!("{:.0} %", pct * 100.0),
        );
    }
    axis(doc, y0, lo, hi, &xs);
    doc.line(xs(bound), TOP, xs(bound), y0, "g-bound");
    doc.text(
        xs(bound) + 4.0,
        TOP + 12.0,
        "small",
        &format!("{} = {}", timing::BOUND_WORDS, secs(bound)),
    );
    doc.line(xs(late), TOP, xs(late), y0, "faultedge");
    doc.text_end(
        xs(late) - 4.0,
        y0 - 8.0,
        "small",
        &format!("latest allowed {}", secs(late)),
    );
    curve(doc, drops, "b-drop", &xs, &ys);
    curve(doc, wills, "b-will", &xs, &ys);
    // The legend, under the axis: nothing is drawn there.
    let ly = y0 + 34.0;
    doc.line(LEFT, ly - 4.0, LEFT + 30.0, ly - 4.0, "b-drop");
    doc.text(LEFT + 36.0, ly, "small", "broker drops the willy");
    doc.line(LEFT + 200.0, ly - 4.0, LEFT + 230.0, ly - 4.0, "b-will");
    doc.text(LEFT + 236.0, ly, "small", "its will reaches monit");
    doc.text(16.0, TOP + 12.0, "lane", "after each");
    doc.text(16.0, TOP + 28.0, "lane", "willy's last");
    doc.text(16.0, TOP + 44.0, "lane", "packet");
    doc.close();
    y0
}

/// Wills arriving after the cut, in 100 ms bins, under the CDF (whose axis is at `y0`).
/// Returns the panel's bottom.
fn arrivals_panel(doc: &mut Doc, arrivals: &[f64], late: f64, y0: f64) -> f64 {
    let x1 = WIDTH - RIGHT;
    doc.open("arrivals");
    let h0 = y0 + GAP;
    let h1 = h0 + HIST_H;
    let last = arrivals.iter().copied().fold(0.0, f64::max);
    let span = (last * 1.05).max(late).max(1.0);
    let xa = |ms: f64| LEFT + (x1 - LEFT) * (ms / span).clamp(0.0, 1.0);
    const BIN_MS: f64 = 100.0;
    let bins = (span / BIN_MS).ceil() as usize + 1;
    let mut counts = vec![0u32; bins];
    for a in arrivals {
        counts[((a / BIN_MS) as usize).min(bins - 1)] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    for (i, c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let h = HIST_H * f64::from(*c) / f64::from(most);
        let x = xa(i as f64 * BIN_MS);
        doc.rect(
            x,
            h1 - h,
            (xa((i + 1) as f64 * BIN_MS) - x).max(1.0),
            h,
            "bar-will",
        );
    }
    doc.line(LEFT, h1, x1, h1, "axis");
    axis(doc, h1, 0.0, span, &xa);
    doc.text(
        LEFT + 4.0,
        h0 - 4.0,
        "small",
        &format!("tallest bar: {most} wills in 100 ms"),
    );
    doc.text(16.0, h0 + 12.0, "lane", "wills after");
    doc.text(16.0, h0 + 28.0, "lane", "the cut");
    doc.close();
    h1
}

/// Ticks and labels in seconds under a panel.
fn axis(doc: &mut Doc, y: f64, lo: f64, hi: f64, x: &dyn Fn(f64) -> f64) {
    let step = nice_step((hi - lo) / 1000.0, 12.0) * 1000.0;
    let mut t = (lo / step).ceil() * step;
    while t <= hi {
        doc.line(x(t), y, x(t), y + 4.0, "tick");
        doc.text_end(x(t) + 8.0, y + 16.0, "small", &secs(t));
        t += step;
    }
}

/// A cumulative distribution through at most [`POINTS`] quantiles.
fn curve(
    doc: &mut Doc,
    values: &[f64],
    class: &str,
    x: &dyn Fn(f64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return;
    }
    let k = POINTS.min(v.len());
    let mut prev: Option<(f64, f64)> = None;
    for i in 0..=k {
        let frac = i as f64 / k as f64;
        let idx = ((frac * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        let p = (x(v[idx]), y(frac));
        if let Some(q) = prev {
            // A step: across at the old height, then up.
            doc.line(q.0, q.1, p.0, q.1, class);
            doc.line(p.0, q.1, p.0, p.1, class);
        }
        prev = Some(p);
    }
}
