//! The SVG writer: text metrics, numbers with one decimal, label shelves, the time scale.

use std::fmt::Write as _;

use crate::report::Summary;

/// The width of every picture, in px.
pub const WIDTH: f64 = 1200.0;
/// Where the time axis starts: the lane names sit left of it.
pub(super) const LEFT: f64 = 150.0;
pub(super) const RIGHT: f64 = 28.0;
/// The font the widths are estimated for; the others are fallbacks.
pub(super) const FONT: &str = "'DejaVu Sans', Verdana, Arial, sans-serif";
/// Space kept between two labels on one shelf.
pub(super) const GAP: f64 = 8.0;

pub(super) const STYLE: &str = r##"
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

pub(super) const DEFS: &str = r##"<defs><pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f6dcd8" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="8" stroke="#c0392b" stroke-width="2.5" stroke-opacity="0.45"/></pattern></defs>"##;

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

pub(super) fn bold_width(s: &str, size: f64) -> f64 {
    text_width(s, size) * 1.12
}

/// A number as SVG wants it: one decimal, no "-0.0".
pub(super) fn n(v: f64) -> String {
    let s = format!("{v:.1}");
    if s == "-0.0" {
        "0.0".to_string()
    } else {
        s
    }
}

pub(super) fn esc(s: &str) -> String {
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
pub(super) fn fit(s: &str, size: f64, width: f64) -> String {
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
pub(super) fn nice_step(span_s: f64, max: f64) -> f64 {
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
pub(super) struct Doc {
    pub(super) body: String,
}

impl Doc {
    pub(super) fn new() -> Doc {
        Doc {
            body: String::new(),
        }
    }

    pub(super) fn open(&mut self, id: &str) {
        let _ = writeln!(self.body, r#"<g id="{}">"#, esc(id));
    }

    pub(super) fn close(&mut self) {
        self.body.push_str("</g>\n");
    }

    pub(super) fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" class="{class}"/>"#,
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0))
        );
    }

    pub(super) fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) {
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
    pub(super) fn poly(&mut self, pts: &[(f64, f64)], class: &str) {
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

    pub(super) fn circle(&mut self, x: f64, y: f64, r: f64, class: &str) {
        let _ = writeln!(
            self.body,
            r#"<circle cx="{}" cy="{}" r="{}" class="{class}"/>"#,
            n(x),
            n(y),
            n(r)
        );
    }

    /// An X of half-size `r` centred on (x, y).
    pub(super) fn cross(&mut self, x: f64, y: f64, r: f64) {
        self.line(x - r, y - r, x + r, y + r, "cross");
        self.line(x - r, y + r, x + r, y - r, "cross");
    }

    /// Text starting at `x` (or ending there with `end`), baseline `y`.
    pub(super) fn text(&mut self, x: f64, y: f64, class: &str, s: &str) {
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

    pub(super) fn text_end(&mut self, x: f64, y: f64, class: &str, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}" class="{class}" text-anchor="end">{}</text>"#,
            n(x),
            n(y),
            esc(s)
        );
    }

    pub(super) fn finish(self, height: f64, title: &str) -> String {
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
pub(super) struct Shelves {
    pub(super) rows: Vec<Vec<(f64, f64)>>,
    pub(super) lo: f64,
    pub(super) hi: f64,
}

impl Shelves {
    pub(super) fn new(rows: usize, lo: f64, hi: f64) -> Shelves {
        Shelves {
            rows: vec![Vec::new(); rows],
            lo,
            hi,
        }
    }

    pub(super) fn free(&self, row: usize, a: f64, b: f64) -> bool {
        a >= self.lo
            && b <= self.hi
            && self.rows[row]
                .iter()
                .all(|&(x, y)| b + GAP <= x || a >= y + GAP)
    }

    pub(super) fn take(&mut self, row: usize, a: f64, b: f64) -> (usize, f64) {
        self.rows[row].push((a, b));
        (row, a)
    }

    /// A place for a label `w` wide beside `x`: right of it if there is room, else left of it,
    /// on the first row with room. None when there is no room anywhere.
    pub(super) fn beside(&mut self, x: f64, w: f64) -> Option<(usize, f64)> {
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
    pub(super) fn centred(&mut self, cx: f64, w: f64) -> Option<(usize, f64)> {
        let a = (cx - w / 2.0).clamp(self.lo, (self.hi - w).max(self.lo));
        (0..self.rows.len())
            .find(|&row| self.free(row, a, a + w))
            .map(|row| self.take(row, a, a + w))
    }
}

/// Milliseconds to x.
#[derive(Clone, Copy)]
pub(super) struct Scale {
    pub(super) t1: f64,
    pub(super) x0: f64,
    pub(super) x1: f64,
}

impl Scale {
    pub(super) fn x(&self, ms: f64) -> f64 {
        self.x0 + ms.clamp(0.0, self.t1) / self.t1 * (self.x1 - self.x0)
    }
}

/// The broker's close followed willy's own DISCONNECT: a clean end, not a keepalive drop.
pub(super) fn after_disconnect(s: &Summary) -> bool {
    s.last_packet_kind.as_deref() == Some("DISCONNECT")
}
