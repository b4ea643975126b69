//! Plain-text and Markdown tables of many runs.

use super::Summary;

/// A cell for a time in ms, or a dash when it never happened.
pub fn ms_cell(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.0}"))
}

/// The columns of the suite table.
pub const SUITE_HEADER: [&str; 8] = [
    "scenario",
    "transport",
    "will",
    "last pkt -> broker drop (ms)",
    "last pkt -> will at monit (ms)",
    "cut -> willy notices (ms)",
    "checks",
    "verdict",
];

pub fn suite_row(s: &Summary) -> Vec<String> {
    let passed = s.checks.iter().filter(|c| c.pass).count();
    vec![
        s.scenario.clone(),
        s.transport.clone(),
        match (s.will_configured, s.will_received_ms.is_some()) {
            (false, _) => "none set".to_string(),
            (true, true) => "received".to_string(),
            (true, false) => "not received".to_string(),
        },
        ms_cell(s.drop_after_last_packet_ms),
        ms_cell(s.will_after_last_packet_ms),
        ms_cell(s.client_detect_after_cut_ms),
        format!("{passed}/{}", s.checks.len()),
        verdict(s),
    ]
}

/// `pass` or `FAIL`, naming the checks that are known deviations or unexpectedly passed.
pub fn verdict(s: &Summary) -> String {
    use crate::judge::Status;
    let mut v = if s.pass { "pass" } else { "FAIL" }.to_string();
    for st in [Status::Deviation, Status::UnexpectedPass] {
        let names: Vec<String> = s
            .checks
            .iter()
            .filter(|c| c.status == st)
            .map(|c| c.name.to_string())
            .collect();
        if !names.is_empty() {
            v += &format!(" ({}: {})", st.as_str(), names.join(", "));
        }
    }
    v
}

/// The columns of the compare table.
pub const COMPARE_HEADER: [&str; 9] = [
    "scenario",
    "broker",
    "transport",
    "will expected / received",
    "last pkt -> broker drop (ms)",
    "last pkt -> will at monit (ms)",
    "cut -> willy notices (ms)",
    "willy's reconnects after the cut",
    "verdict",
];

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One compare row: `scenario` is the scenario as asked for (the summary's name carries the
/// broker and transport too).
pub fn compare_row(scenario: &str, s: &Summary) -> Vec<String> {
    vec![
        scenario.to_string(),
        s.broker.clone(),
        s.transport.clone(),
        if s.will_configured {
            format!(
                "{} / {}",
                yes_no(s.will_expected),
                yes_no(s.will_received_ms.is_some())
            )
        } else {
            "none set".to_string()
        },
        ms_cell(s.drop_after_last_packet_ms),
        ms_cell(s.will_after_last_packet_ms),
        ms_cell(s.client_detect_after_cut_ms),
        match s.failed_attempts_after_cut {
            1 => "1 failed attempt".to_string(),
            n => format!("{n} failed attempts"),
        },
        verdict(s),
    ]
}

/// A plain-text table for the terminal: on a terminal narrower than the table, the last column
/// (descriptions, timing models) wraps at words within the width; piped or redirected, every
/// row stays one line (`grep` and `tee` see whole rows).
pub fn render_text(header: &[&str], rows: &[Vec<String>]) -> String {
    render_text_within(header, rows, terminal_width())
}

/// The columns of the terminal on stdout, if stdout is one.
fn terminal_width() -> Option<usize> {
    // SAFETY: isatty and TIOCGWINSZ only read the descriptor's state into `ws`.
    unsafe {
        if libc::isatty(1) != 1 {
            return None;
        }
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0)
            .then_some(ws.ws_col as usize)
    }
}

/// The narrowest the last column is wrapped to: narrower, it would read worse than a long line.
const WRAP_MIN: usize = 20;

/// [`render_text`] within `max` columns, if given.
pub fn render_text_within(header: &[&str], rows: &[Vec<String>], max: Option<usize>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
    let last = widths.len().saturating_sub(1);
    if let (Some(max), Some(&lw)) = (max, widths.last()) {
        let others = total - lw;
        if total > max && max >= others + WRAP_MIN {
            widths[last] = max - others;
        }
    }
    let line = |cells: &[&str]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let row = |cells: &[&str]| {
        let Some((tail, head)) = cells.split_last().filter(|_| cells.len() == widths.len()) else {
            return line(cells);
        };
        let pieces = wrap(tail, widths[last]);
        let mut out = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            let mut cs: Vec<&str> = if i == 0 {
                head.to_vec()
            } else {
                vec![""; head.len()]
            };
            cs.push(piece);
            out += &line(&cs);
        }
        out
    };
    let mut out = row(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out += &line(&rule.iter().map(String::as_str).collect::<Vec<_>>());
    for r in rows {
        out += &row(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces (a word longer than the
/// width has a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    if text.chars().count() <= width {
        return vec![text.to_string()];
    }
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let cur = lines.last_mut().expect("one line at least");
        let n = cur.chars().count();
        if n > 0 && n + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if n > 0 {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    lines
}

/// A Markdown table.
pub fn render_markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out += &format!("|{}\n", header.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        out += &format!("| {} |\n", r.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_table_aligns_columns() {
        let t = render_text_within(&["a", "bb"], &[vec!["xxx".into(), "y".into()]], None);
        assert_eq!(t, "a    bb\n---  --\nxxx  y\n");
    }

    #[test]
    fn on_a_narrow_terminal_the_last_column_wraps_within_the_width() {
        let long =
            "keepalive scan every 6 s on a whole-second clock: up to 6.1 s after 1.5 x keepalive";
        let rows = vec![vec!["mosquitto".to_string(), long.to_string()]];
        let t = render_text_within(&["profile", "timing model"], &rows, Some(40));
        assert!(t.lines().all(|l| l.chars().count() <= 40), "{t}");
        let words: Vec<&str> = t.lines().skip(2).flat_map(str::split_whitespace).collect();
        assert_eq!(words.join(" "), format!("mosquitto {long}"));
        // Too narrow to wrap well: rows stay whole.
        let t = render_text_within(&["profile", "timing model"], &rows, Some(20));
        assert_eq!(t.lines().count(), 3);
    }

    #[test]
    fn markdown_table_has_a_separator_row() {
        let t = render_markdown(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
