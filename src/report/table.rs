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

/// Aligned columns for the terminal.
pub fn render_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    out += &line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_str())
            .collect(),
    );
    for r in rows {
        out += &line(r.iter().map(|s| s.as_str()).collect());
    }
    out
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
        let t = render_text(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\n---  --\nxxx  y\n");
    }

    #[test]
    fn markdown_table_has_a_separator_row() {
        let t = render_markdown(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
