//! Under a run's timeline: the legend of its symbols and the checks with their verdicts.

use super::writer::*;
use crate::report::Summary;

/// One legend entry's symbol, drawn in a 22 x 14 box whose left middle is (x, y).
pub(super) type Symbol = fn(&mut Doc, f64, f64);

/// The legend, wrapped to the width; returns the y below it.
pub(super) fn draw_legend(doc: &mut Doc, y0: f64, ka_ms: f64) -> f64 {
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
pub(super) fn draw_checks(doc: &mut Doc, s: &Summary, y0: f64) -> f64 {
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
