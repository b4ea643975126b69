//! N runs of one scenario: each timing figure's spread (min to max, p50 and p90 marked) over
//! the window its check allowed. NAME.repeat.svg.

use super::writer::*;
use crate::repeat::Repeated;

const ROW: f64 = 60.0;
const TOP: f64 = 70.0;

/// The picture of a repeated run: one row per figure that has an allowed window.
pub fn render_repeat(r: &Repeated) -> String {
    let mut doc = Doc::new();
    let title = r.headline();
    let (verdict, class) = match r.verdict.as_str() {
        "pass" => ("PASS", "pass title"),
        _ => ("FAIL", "fail title"),
    };
    doc.text(
        16.0,
        24.0,
        "title",
        &fit(&title, 16.0 * 1.12, WIDTH - 200.0),
    );
    doc.text_end(WIDTH - RIGHT, 24.0, class, verdict);
    doc.text(
        16.0,
        42.0,
        "sub",
        "each figure over the runs: min to max, p50 and p90 marked; shaded: the window its check allowed",
    );
    let rows: Vec<(&String, &crate::repeat::Distribution, [f64; 2])> = r
        .figures
        .iter()
        .filter_map(|(k, d)| Some((k, d, *r.allowed.get(k)?)))
        .collect();
    let t1 = rows
        .iter()
        .map(|(_, d, [_, hi])| d.max.max(*hi))
        .fold(1.0, f64::max)
        * 1.08;
    let sc = Scale {
        t1,
        x0: LEFT + 120.0,
        x1: WIDTH - RIGHT,
    };
    doc.open("figures");
    for (i, (k, d, [lo, hi])) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW + ROW / 2.0;
        doc.text(16.0, y - 2.0, "lane", k.trim_end_matches("_ms"));
        doc.text(
            16.0,
            y + 12.0,
            "lanesub",
            &format!("{} runs, {} outside", d.n, d.outside.unwrap_or(0)),
        );
        doc.rect(sc.x(*lo), y - 14.0, sc.x(*hi) - sc.x(*lo), 28.0, "session");
        doc.line(sc.x(d.min), y, sc.x(d.max), y, "b-drop");
        for v in [d.min, d.max] {
            doc.line(sc.x(v), y - 8.0, sc.x(v), y + 8.0, "tick");
        }
        doc.circle(sc.x(d.p50), y, 5.0, "msg");
        doc.circle(sc.x(d.p90), y, 5.0, "msgo");
        doc.text(
            sc.x0,
            y + 24.0,
            "small",
            &format!(
                "min {:.0}, p50 {:.0}, p90 {:.0}, max {:.0} ms; allowed {lo:.0}..{hi:.0}",
                d.min, d.p50, d.p90, d.max
            ),
        );
    }
    doc.close();
    // The axis under the rows, in seconds.
    let axis_y = TOP + rows.len().max(1) as f64 * ROW + 6.0;
    super::timeline::draw_axis_at(&mut doc, &sc, t1, axis_y);
    if rows.is_empty() {
        doc.text(
            16.0,
            TOP + 20.0,
            "sub",
            "no timing figure with a window in these runs",
        );
    }
    doc.finish(axis_y + 30.0, &title)
}
