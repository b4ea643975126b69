//! What many runs (a suite, a comparison, the conformance table) came to, and its
//! machine-readable forms: the combined JSON and JUnit XML.
//!
//! ```text
//!  child exited 0/1, wrote NAME.summary.json with the run id the suite gave it --> Finished
//!  child exited 2, or another code, or its summary is missing or not its own  --> Error(reason)
//!  child ended by SIGINT/SIGTERM (exit 130/143, or the signal itself)          --> Interrupted
//!  never started: the suite was interrupted first                               --> NotRun
//! ```
//!
//! Only a Finished run has a summary here, so nothing but a run that really ended in this
//! invocation can show a verdict.

use serde::Serialize;

use super::Summary;

/// How one child run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// It ran to its end and wrote its own summary.
    Finished,
    /// It could not run, or left no summary of its own: why.
    Error(String),
    /// A signal ended it (`SIGINT`, `SIGTERM`).
    Interrupted(String),
    /// The suite was interrupted before it started.
    NotRun,
    /// `unplug merge --allow-missing`: no shard given to merge ran it.
    Missing,
}

/// How one child ended.
#[derive(Debug, Clone)]
pub struct ChildRun {
    /// The name of its files (`NAME.summary.json`).
    pub name: String,
    pub exit: Option<i32>,
    /// The summary it wrote in this invocation: only for a [`RunStatus::Finished`] run.
    pub summary: Option<Summary>,
    /// The child's stderr.
    pub error: String,
    pub status: RunStatus,
}

impl ChildRun {
    /// The status as one word: pass, fail, error, interrupted, not-run.
    pub fn status_word(&self) -> &'static str {
        match (&self.status, &self.summary) {
            (RunStatus::Finished, Some(s)) if s.pass => "pass",
            (RunStatus::Finished, _) => "fail",
            (RunStatus::Error(_), _) => "error",
            (RunStatus::Interrupted(_), _) => "interrupted",
            (RunStatus::NotRun, _) => "not-run",
            (RunStatus::Missing, _) => "missing",
        }
    }

    /// Why a run has no verdict, for a table cell; None for a finished run.
    pub fn problem(&self) -> Option<String> {
        match &self.status {
            RunStatus::Finished => None,
            RunStatus::Error(why) => Some(format!("error: {why}")),
            RunStatus::Interrupted(sig) => Some(format!("interrupted ({sig})")),
            RunStatus::NotRun => Some("not run (the suite was interrupted)".to_string()),
            RunStatus::Missing => Some("missing: no shard given to merge ran it".to_string()),
        }
    }
}

/// The last non-empty line of a child's stderr: its `error: ...` line.
pub fn last_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Many runs, and the signal that ended them early, if any.
#[derive(Debug, Clone)]
pub struct Batch {
    pub runs: Vec<ChildRun>,
    /// The signal the suite got (and passed on to its children).
    pub interrupted: Option<nix::sys::signal::Signal>,
}

impl Batch {
    /// 128 + the signal if interrupted; else 2 if a run could not run; else 1 if one failed.
    /// A run missing from a merge (`--allow-missing` asked for that) counts for nothing.
    pub fn exit_code(&self) -> u8 {
        if let Some(sig) = self.interrupted {
            return crate::lifeline::exit_code(sig);
        }
        let words: Vec<&str> = self
            .runs
            .iter()
            .map(ChildRun::status_word)
            .filter(|w| *w != "missing")
            .collect();
        if words.iter().any(|w| *w != "pass" && *w != "fail") {
            2
        } else if words.contains(&"fail") {
            1
        } else {
            0
        }
    }

    /// The combined JSON (`--json FILE`): every run with its status and, when it finished, its
    /// whole summary.
    pub fn to_json(&self, command: &str) -> String {
        #[derive(Serialize)]
        struct Run<'a> {
            name: &'a str,
            status: &'a str,
            exit: Option<i32>,
            reason: Option<String>,
            summary: Option<&'a Summary>,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            schema_version: u32,
            command: &'a str,
            interrupted: Option<&'a str>,
            exit_code: u8,
            counts: std::collections::BTreeMap<&'a str, usize>,
            runs: Vec<Run<'a>>,
        }
        let mut counts = std::collections::BTreeMap::new();
        for w in ["pass", "fail", "error", "interrupted", "not-run"] {
            counts.insert(w, 0);
        }
        for r in &self.runs {
            *counts.entry(r.status_word()).or_insert(0) += 1;
        }
        let doc = Doc {
            schema_version: super::SCHEMA_VERSION,
            command,
            interrupted: self.interrupted.map(|s| s.as_str()),
            exit_code: self.exit_code(),
            counts,
            runs: self
                .runs
                .iter()
                .map(|r| Run {
                    name: &r.name,
                    status: r.status_word(),
                    exit: r.exit,
                    reason: r.problem(),
                    summary: r.summary.as_ref(),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&doc).expect("the batch serializes") + "\n"
    }

    /// JUnit XML (`--junit FILE`): one `<testsuite>` per run, holding one testcase for the run
    /// itself (`verdict`: a failure when a check failed, an error when it did not finish, skipped
    /// when it never started) and one per check (a failure with expected and actual).
    pub fn to_junit(&self, title: &str) -> String {
        let mut suites = String::new();
        let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
        for r in &self.runs {
            let mut cases = String::new();
            let (mut t, mut f, mut e, mut sk) = (1, 0, 0, 0);
            let time = r.summary.as_ref().map_or(0.0, |s| s.duration_ms / 1000.0);
            let verdict_body = match (&r.status, &r.summary) {
                (RunStatus::Finished, Some(s)) if !s.pass => {
                    f += 1;
                    let failed = s.checks.iter().filter(|c| !c.pass).count();
                    format!(
                        "<failure type=\"fail\" message=\"{}\"/>",
                        xml(&format!(
                            "{failed} of {} checks failed ({})",
                            s.checks.len(),
                            s.end_reason
                        ))
                    )
                }
                (RunStatus::Finished, _) => String::new(),
                (RunStatus::NotRun, _) => {
                    sk += 1;
                    "<skipped message=\"not run: the suite was interrupted\"/>".to_string()
                }
                (RunStatus::Missing, _) => {
                    sk += 1;
                    "<skipped message=\"missing: no shard given to merge ran it\"/>".to_string()
                }
                _ => {
                    e += 1;
                    format!(
                        "<error type=\"{}\" message=\"{}\"/><system-err>{}</system-err>",
                        r.status_word(),
                        xml(&r.problem().unwrap_or_default()),
                        xml(&r.error)
                    )
                }
            };
            cases += &format!(
                "    <testcase classname=\"{n}\" name=\"verdict\" time=\"{time:.3}\">{verdict_body}</testcase>\n",
                n = xml(&r.name)
            );
            for c in r.summary.iter().flat_map(|s| &s.checks) {
                t += 1;
                let spec = c.spec.as_deref().unwrap_or("");
                let body = if c.pass {
                    match c.status {
                        crate::judge::Status::Pass => String::new(),
                        st => format!(
                            "<system-out>{}: expected {}; {}</system-out>",
                            st.as_str(),
                            xml(&c.expected),
                            xml(&c.actual)
                        ),
                    }
                } else {
                    f += 1;
                    format!(
                        "<failure type=\"check\" message=\"{}\">spec: {}\nexpected: {}\nactual: {}</failure>",
                        xml(&format!("expected {}; {}", c.expected, c.actual)),
                        xml(spec),
                        xml(&c.expected),
                        xml(&c.actual)
                    )
                };
                cases += &format!(
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">{body}</testcase>\n",
                    xml(&r.name),
                    xml(&c.name.to_string())
                );
            }
            let props = match &r.summary {
                Some(s) => format!(
                    "    <properties><property name=\"broker\" value=\"{}\"/><property name=\"transport\" value=\"{}\"/><property name=\"protocol\" value=\"{}\"/><property name=\"run_id\" value=\"{}\"/></properties>\n",
                    xml(&s.broker),
                    xml(&s.transport),
                    xml(&s.protocol),
                    xml(&s.run_id)
                ),
                None => String::new(),
            };
            suites += &format!(
                "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{sk}\" time=\"{time:.3}\">\n{props}{cases}  </testsuite>\n",
                xml(&r.name)
            );
            tests += t;
            failures += f;
            errors += e;
            skipped += sk;
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">\n{suites}</testsuites>\n",
            xml(title)
        )
    }
}

/// Text for an XML attribute or element: the five entities escaped, and characters XML 1.0
/// cannot hold at all (most control characters) dropped.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{Check, Status};

    fn finished(name: &str, checks: Vec<(&str, Status)>) -> ChildRun {
        let mut s = Summary::blank("rumqttd", 1500.0);
        s.scenario = name.to_string();
        s.checks = checks
            .into_iter()
            .map(|(n, st)| Check {
                name: n.parse().unwrap(),
                spec: Some("MQTT-3.1.2-24".into()),
                status: st,
                pass: st != Status::Fail,
                expected: "<3000 ms & more>".into(),
                actual: "4000 ms".into(),
            })
            .collect();
        s.pass = s.checks.iter().all(|c| c.pass);
        ChildRun {
            name: name.into(),
            exit: Some(if s.pass { 0 } else { 1 }),
            summary: Some(s),
            error: String::new(),
            status: RunStatus::Finished,
        }
    }

    fn batch() -> Batch {
        Batch {
            runs: vec![
                finished("a", vec![("will", Status::Pass)]),
                finished(
                    "b",
                    vec![("will", Status::Pass), ("keepalive-drop", Status::Fail)],
                ),
                ChildRun {
                    name: "c".into(),
                    exit: Some(2),
                    summary: None,
                    error: "unplug: error: no broker \u{1b}[1m<here>".into(),
                    status: RunStatus::Error("no broker".into()),
                },
                ChildRun {
                    name: "d".into(),
                    exit: None,
                    summary: None,
                    error: String::new(),
                    status: RunStatus::NotRun,
                },
            ],
            interrupted: None,
        }
    }

    #[test]
    fn junit_has_a_suite_per_run_a_case_per_check_and_counts_that_add_up() {
        let text = batch().to_junit("unplug suite");
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        let attr = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().to_string();
        // a: verdict + 1 check; b: verdict + 2; c: verdict; d: verdict.
        assert_eq!(attr(root, "tests"), "7");
        assert_eq!(attr(root, "failures"), "2"); // b's verdict and its failed check
        assert_eq!(attr(root, "errors"), "1");
        assert_eq!(attr(root, "skipped"), "1");
        let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        assert_eq!(suites.len(), 4);
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("keepalive-drop"))
            .unwrap()
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("expected <3000 ms & more>; 4000 ms")
        );
        let error = doc.descendants().find(|n| n.has_tag_name("error")).unwrap();
        assert_eq!(error.attribute("message"), Some("error: no broker"));
    }

    #[test]
    fn the_combined_json_counts_every_status_and_only_finished_runs_carry_a_summary() {
        let b = batch();
        assert_eq!(b.exit_code(), 2);
        let v: serde_json::Value = serde_json::from_str(&b.to_json("suite")).unwrap();
        assert_eq!(v["counts"]["pass"], 1);
        assert_eq!(v["counts"]["fail"], 1);
        assert_eq!(v["counts"]["error"], 1);
        assert_eq!(v["counts"]["not-run"], 1);
        assert_eq!(v["runs"][2]["status"], "error");
        assert!(v["runs"][2]["summary"].is_null());
        assert_eq!(v["runs"][1]["summary"]["pass"], false);
        assert_eq!(v["exit_code"], 2);
    }

    #[test]
    fn a_run_missing_from_a_merge_is_skipped_and_not_counted_in_the_exit_code() {
        let mut b = batch();
        b.runs.truncate(2);
        b.runs.push(ChildRun {
            name: "m".into(),
            exit: None,
            summary: None,
            error: String::new(),
            status: RunStatus::Missing,
        });
        assert_eq!(b.runs[2].status_word(), "missing");
        assert_eq!(b.exit_code(), 1); // b failed; m counts for nothing
        let v: serde_json::Value = serde_json::from_str(&b.to_json("suite")).unwrap();
        assert_eq!(v["counts"]["missing"], 1);
        assert!(b
            .to_junit("t")
            .contains("<skipped message=\"missing: no shard"));
    }

    #[test]
    fn an_interrupted_batch_exits_128_plus_the_signal() {
        let mut b = batch();
        b.interrupted = Some(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(b.exit_code(), 143);
    }
}
