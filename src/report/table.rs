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
        if s.pass { "pass" } else { "FAIL" }.to_string(),
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
