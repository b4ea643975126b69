//! `index.html` for a directory of runs: every run's verdict and checks, with links to its
//! picture, log, events and summary; each comparison picture and table beside its runs.
//!
//! ```text
//!  DIR/**/NAME.summary.json --read--> one table per directory --render--> DIR/index.html
//! ```
//!
//! Static HTML with relative links and the style inline: it opens from the disk with no network
//! and no script. Rows are in file-name order, so the same runs give the same page.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::judge::Status;
use crate::report::Summary;

/// How deep below DIR to look for runs (results/SET/NAME.summary.json is depth 1).
const MAX_DEPTH: usize = 3;

/// Tables and pictures of a whole set, shown above its runs when present.
const SET_FILES: [&str; 6] = [
    "SUITE.svg",
    "COMPARE.svg",
    "SUITE.md",
    "COMPARE.md",
    "CONFORMANCE.md",
    "README.md",
];

/// The runs of one directory.
struct Set {
    /// Relative to the index, `/`-separated; empty for DIR itself.
    rel: String,
    dir: PathBuf,
    /// Each run's file stem (`NAME`, or `NAME.incomplete`) and summary.
    runs: Vec<(String, Summary)>,
}

/// Every directory under `root` (itself included) with at least one summary, in path order.
fn find_sets(root: &Path) -> anyhow::Result<Vec<Set>> {
    let mut sets = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading the directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        let mut runs = Vec::new();
        for p in &entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() && depth < MAX_DEPTH && !name.starts_with('.') {
                let sub = if rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel}/{name}")
                };
                stack.push((p.clone(), sub, depth + 1));
            } else if let Some(stem) = name.strip_suffix(".summary.json") {
                runs.push((stem.to_string(), Summary::read(p)?));
            }
        }
        if !runs.is_empty() {
            sets.push(Set { rel, dir, runs });
        }
    }
    sets.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(sets)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.0}"))
}

fn link(prefix: &str, file: &str, text: &str) -> String {
    format!("<a href=\"{}{}\">{text}</a>", esc(prefix), esc(file))
}

const STYLE: &str =
    "body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}\
th,td{border:1px solid #c3c8cf;padding:3px 7px;text-align:left;vertical-align:top;font-size:13px}\
th{background:#eceff3}td.n{text-align:right}\
.pass{color:#1c6e32;font-weight:bold}.fail{color:#b0281c;font-weight:bold}.none{color:#555;font-weight:bold}\
.deviation,.unexpected-pass{color:#7a5a00;font-weight:bold}\
.check{display:inline-block;margin-right:.6em;white-space:nowrap}\
img{max-width:100%;border:1px solid #c3c8cf}details{margin:.2em 0}";

/// A run's row; `name` is the stem of its files (an incomplete run's are `NAME.incomplete.*`).
fn run_row(prefix: &str, name: &str, s: &Summary) -> String {
    // Only a complete run can pass: an interrupted one or one that failed to start says so.
    let word = s.verdict_word();
    let class = match word {
        "PASS" => "pass",
        "NO CHECKS" => "none",
        _ => "fail",
    };
    let mut verdict = format!("<span class=\"{class}\">{word}</span>");
    if let Some(e) = &s.error {
        verdict += &format!("<br>{}", esc(e));
    }
    let checks: Vec<String> = s
        .checks
        .iter()
        .map(|c| {
            let class = if c.status == Status::Fail {
                "fail"
            } else {
                c.status.as_str()
            };
            format!(
                "<span class=\"check\" title=\"expected: {}; actual: {}\"><span class=\"{class}\">{}</span> {}</span>",
                esc(&c.expected),
                esc(&c.actual),
                c.status.as_str(),
                esc(&c.name.to_string())
            )
        })
        .collect();
    let files = [
        link(prefix, &format!("{name}.svg"), "picture"),
        link(prefix, &format!("{name}.log"), "log"),
        link(prefix, &format!("{name}.events.jsonl"), "events"),
        link(prefix, &format!("{name}.summary.json"), "summary"),
    ]
    .join(" ");
    format!(
        "<tr class=\"run {class}\"><td><b>{}</b><br>{}<details><summary>timeline</summary><img loading=\"lazy\" src=\"{}{}.svg\" alt=\"timeline of {}\"></details></td>\
         <td>{}</td><td>{} / {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{verdict}</td><td>{}</td><td>{files}</td></tr>\n",
        esc(name),
        esc(&s.description),
        esc(prefix),
        esc(name),
        esc(name),
        esc(&s.broker),
        esc(&s.transport),
        esc(&s.protocol),
        s.keepalive_s,
        ms(s.drop_after_last_packet_ms),
        ms(s.will_after_last_packet_ms),
        ms(s.client_detect_after_cut_ms),
        checks.join(" ")
    )
}

/// The page for the runs under `root`; links are relative to `root`.
pub fn render(root: &Path, title: &str) -> anyhow::Result<String> {
    let sets = find_sets(root)?;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = esc(title)
    );
    let total: usize = sets.iter().map(|s| s.runs.len()).sum();
    let failed: usize = sets
        .iter()
        .flat_map(|s| &s.runs)
        .filter(|(_, r)| !r.pass)
        .count();
    // Where the failures are: a probe of a third-party broker that breaks the spec fails by
    // design, and the count says so by naming each set's share.
    let failed_in = |s: &Set| s.runs.iter().filter(|(_, r)| !r.pass).count();
    let shares: Vec<String> = sets
        .iter()
        .filter(|s| failed_in(s) > 0)
        .map(|s| {
            let id = if s.rel.is_empty() { "." } else { &s.rel };
            format!("{} in {}", failed_in(s), esc(id))
        })
        .collect();
    let failed = if shares.is_empty() {
        format!("{failed} failed")
    } else {
        format!("{failed} failed ({})", shares.join(", "))
    };
    // Show only the runs of one verdict: a line of script, no network (the page is static).
    html += "<p>Show: <label><input type=\"radio\" name=\"show\" value=\"run\" checked onchange=\"filter(this)\"> all</label> \
             <label><input type=\"radio\" name=\"show\" value=\"fail\" onchange=\"filter(this)\"> not passed</label> \
             <label><input type=\"radio\" name=\"show\" value=\"pass\" onchange=\"filter(this)\"> passed</label></p>\n\
             <script>function filter(e){for(const r of document.querySelectorAll('tr.run'))r.style.display=r.classList.contains(e.value)?'':'none'}</script>\n";
    html += &format!(
        "<p>{total} runs, {failed}. Times in ms: from willy's last packet to the broker's drop and to the will at monit, and from the cut to willy noticing. Hover a check for what was expected and measured.</p>\n"
    );
    if sets.len() > 1 {
        html += "<ul>";
        for s in &sets {
            let f = failed_in(s);
            let f = if f > 0 {
                format!(", {f} failed")
            } else {
                String::new()
            };
            html += &format!(
                "<li><a href=\"#{id}\">{id}</a> ({} runs{f})</li>",
                s.runs.len(),
                id = esc(if s.rel.is_empty() { "." } else { &s.rel })
            );
        }
        html += "</ul>\n";
    }
    for set in &sets {
        let prefix = if set.rel.is_empty() {
            String::new()
        } else {
            format!("{}/", set.rel)
        };
        let id = if set.rel.is_empty() { "." } else { &set.rel };
        html += &format!("<h2 id=\"{i}\">{i}</h2>\n", i = esc(id));
        let present: Vec<&str> = SET_FILES
            .iter()
            .copied()
            .filter(|f| set.dir.join(f).is_file())
            .collect();
        if !present.is_empty() {
            let links: Vec<String> = present.iter().map(|f| link(&prefix, f, f)).collect();
            html += &format!("<p>{}</p>\n", links.join(" · "));
        }
        for f in present.iter().filter(|f| f.ends_with(".svg")) {
            html += &format!(
                "<p><img src=\"{}{}\" alt=\"{} of {}\"></p>\n",
                esc(&prefix),
                f,
                f,
                esc(id)
            );
        }
        html += "<table><tr><th>run</th><th>broker</th><th>transport / MQTT</th><th>ka s</th><th>last pkt → drop</th><th>last pkt → will</th><th>cut → willy notices</th><th>verdict</th><th>checks</th><th>files</th></tr>\n";
        for (stem, s) in &set.runs {
            html += &run_row(&prefix, stem, s);
        }
        html += "</table>\n";
    }
    html += "</body></html>\n";
    Ok(html)
}

/// Write `root/index.html`; returns its path.
pub fn write(root: &Path, title: &str) -> anyhow::Result<PathBuf> {
    let html = render(root, title)?;
    let path = root.join("index.html");
    crate::fsx::write_atomic(&path, html.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_markup_are_escaped() {
        assert_eq!(esc("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
    }

    #[test]
    fn a_directory_without_runs_gives_a_page_that_says_so() {
        let dir = std::env::temp_dir().join(format!("unplug-index-empty-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let html = render(&dir, "runs").unwrap();
        assert!(html.contains("0 runs, 0 failed"), "{html}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_interrupted_run_is_never_shown_as_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Summary::blank("b", 1.0);
        // Even a summary that claims a pass (as the old runner wrote them) is not one once it
        // says it was interrupted.
        s.interrupted = true;
        s.pass = true;
        std::fs::write(
            dir.path().join("ws-last-will.incomplete.summary.json"),
            s.to_json(),
        )
        .unwrap();
        let html = render(dir.path(), "runs").unwrap();
        assert!(html.contains(">INTERRUPTED<"), "{html}");
        assert!(!html.contains(">PASS<"), "{html}");
        assert!(
            html.contains("href=\"ws-last-will.incomplete.log\""),
            "{html}"
        );
        // A summary from before `interrupted` existed says it only in its end reason.
        let mut old = serde_json::to_value(&s).unwrap();
        let o = old.as_object_mut().unwrap();
        for k in ["schema_version", "run_id", "interrupted", "error"] {
            o.remove(k);
        }
        o.insert("end_reason".into(), "interrupted (Ctrl-C)".into());
        std::fs::write(
            dir.path().join("ws-last-will.summary.json"),
            serde_json::to_string(&old).unwrap(),
        )
        .unwrap();
        let html = render(dir.path(), "runs").unwrap();
        assert_eq!(html.matches(">INTERRUPTED<").count(), 2, "{html}");
        assert!(!html.contains(">PASS<"), "{html}");
    }

    #[test]
    fn a_broken_summary_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("unplug-index-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.summary.json"), "{").unwrap();
        let err = format!("{:#}", render(&dir, "runs").unwrap_err());
        assert!(err.contains("x.summary.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
