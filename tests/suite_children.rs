//! suite, compare and conformance and their children (issue 11, defects 2 and 4): a signal or a
//! SIGKILL leaves no child running, and a table never shows a verdict its child did not write
//! in this invocation.
//!
//! Each suite writes into a fresh directory whose path is in every child's command line
//! (`--out DIR`): /proc/*/cmdline tells whether one is still alive. Every wait is bounded.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

fn spawn_suite(out: &Path, args: &[&str], own_group: bool) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["suite", "--out"])
        .arg(out)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if own_group {
        cmd.process_group(0);
    }
    cmd.spawn().unwrap()
}

/// Wait (bounded) until the runs `names` go on in `out`, each past its broker's start (its live
/// journal has cycle 1's banner); `extra`: more text every journal must hold.
fn wait_for_children(suite: &mut Child, out: &Path, names: &[&str], extra: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = names.iter().all(|n| {
            // (Before issue 11 the live journal had its final name: read that too, so the
            // tests fail on the old code for the defects, not for the naming.)
            let t = std::fs::read_to_string(out.join(format!("{n}.events.jsonl.inprogress")))
                .or_else(|_| std::fs::read_to_string(out.join(format!("{n}.events.jsonl"))))
                .unwrap_or_default();
            t.contains(r#""event":"cycle_started""#) && t.contains(extra)
        });
        if ready {
            return;
        }
        if Instant::now() > deadline || suite.try_wait().unwrap().is_some() {
            let _ = suite.kill();
            let _ = suite.wait();
            let _ = wait_until_gone(out.to_str().unwrap(), Duration::from_secs(20));
            panic!(
                "the children of the suite in {} never got going",
                out.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait (bounded) for the suite to exit; kill it and fail if it does not.
fn exit_of(suite: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(st) = suite.try_wait().unwrap() {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = suite.kill();
    let st = suite.wait().unwrap();
    panic!("the suite did not exit within {within:?} ({st})");
}

/// After the suite ended: no process runs in `out` (a short bounded grace for the kernel to
/// deliver parent-death signals and the children to end their runs), and nothing in `out`
/// claims a verdict.
fn assert_no_child_left_and_no_verdict(out: &Path, names: &[&str]) {
    let left = wait_until_gone(out.to_str().unwrap(), Duration::from_secs(15));
    if !left.is_empty() {
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        panic!("children outlived their suite: {left:?}");
    }
    for n in names {
        assert!(
            !out.join(format!("{n}.summary.json")).exists(),
            "{n} wrote a complete summary after the suite was stopped"
        );
    }
}

/// The Markdown table's verdict cells (last column).
fn verdicts(md: &str) -> Vec<String> {
    md.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scenario"))
        .map(|l| {
            l.trim_end_matches(" |")
                .rsplit(" | ")
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn sigterm_to_the_suite_alone_stops_its_children_and_no_run_shows_a_verdict() {
    let out = out_dir("suite-sigterm");
    let names = ["native-last-will", "ws-last-will"];
    let mut suite = spawn_suite(
        &out,
        &["--jobs", "2", names[0], names[1], "native-no-will"],
        false,
    );
    wait_for_children(&mut suite, &out, &names, "");
    kill(Pid::from_raw(suite.id() as i32), Signal::SIGTERM).unwrap();
    let st = exit_of(&mut suite, Duration::from_secs(40));
    assert_eq!(st.code(), Some(143), "{st}");
    assert_no_child_left_and_no_verdict(&out, &names);
    let md = std::fs::read_to_string(out.join("SUITE.md")).unwrap();
    assert!(md.contains("Interrupted (SIGTERM)"), "{md}");
    let v = verdicts(&md);
    assert_eq!(v.len(), 3, "{md}");
    assert!(v[..2].iter().all(|c| c.starts_with("interrupted")), "{md}");
    assert!(v[2].starts_with("not run"), "{md}");
    // Each child kept its partial journal, marked.
    for n in names {
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{n}.incomplete.summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            (s["interrupted"].as_bool(), s["pass"].as_bool()),
            (Some(true), Some(false))
        );
    }
    // The index does not make a pass of an interrupted run either.
    let o = unplug(&["index", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(!html.contains(">PASS<"), "{html}");
    assert_eq!(html.matches(">INTERRUPTED<").count(), 2);
}

#[test]
fn sigint_to_the_suites_process_group_stops_every_child() {
    let out = out_dir("suite-sigint-group");
    let names = ["native-last-will", "ws-last-will"];
    let mut suite = spawn_suite(&out, &["--jobs", "2", names[0], names[1]], true);
    wait_for_children(&mut suite, &out, &names, "");
    // As a terminal's Ctrl-C: the suite and its children all get SIGINT.
    killpg(Pid::from_raw(suite.id() as i32), Signal::SIGINT).unwrap();
    let st = exit_of(&mut suite, Duration::from_secs(40));
    assert_eq!(st.code(), Some(130), "{st}");
    assert_no_child_left_and_no_verdict(&out, &names);
    let md = std::fs::read_to_string(out.join("SUITE.md")).unwrap();
    assert!(
        verdicts(&md).iter().all(|c| c.starts_with("interrupted")),
        "{md}"
    );
}

/// willy's process id, from the runner's note `willy runs as process PID from cycle N`.
fn willy_pid(events: &Path) -> u32 {
    let text = std::fs::read_to_string(events).unwrap();
    let at = text
        .find("willy runs as process ")
        .expect("no willy process note");
    text[at + "willy runs as process ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_sigkilled_suite_takes_a_frozen_willy_with_it() {
    let out = out_dir("suite-sigkill-freeze");
    let mut suite = spawn_suite(&out, &["--jobs", "1", "native-freeze"], false);
    // Frozen: the fault sent SIGSTOP to willy's process.
    wait_for_children(
        &mut suite,
        &out,
        &["native-freeze"],
        r#""signal":"SIGSTOP""#,
    );
    let live = out.join("native-freeze.events.jsonl.inprogress");
    let old_live = out.join("native-freeze.events.jsonl");
    let willy = willy_pid(if live.exists() { &live } else { &old_live });
    let stat = std::fs::read_to_string(format!("/proc/{willy}/stat")).unwrap();
    assert!(
        stat.rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('T'),
        "willy is not stopped: {stat}"
    );
    suite.kill().unwrap(); // SIGKILL: the suite runs no handler at all
    suite.wait().unwrap();
    assert_no_child_left_and_no_verdict(&out, &["native-freeze"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_live(willy) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !is_live(willy),
        "the frozen willy {willy} outlived the suite"
    );
}

/// A complete, passing run of v5-disconnect-normal in `out`, its summary copied under each of
/// `names`: the previous runs whose verdicts a failed child must not inherit.
fn previous_passes(out: &Path, names: &[&str]) -> PathBuf {
    let (code, s) = run_scenario("v5-disconnect-normal", out, &[]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let src = out.join("v5-disconnect-normal.summary.json");
    for n in names {
        std::fs::copy(&src, out.join(format!("{n}.summary.json"))).unwrap();
    }
    src
}

#[test]
fn a_suite_whose_child_failed_shows_an_error_not_the_previous_pass() {
    let out = out_dir("suite-stale");
    previous_passes(&out, &[]);
    let (_held, port) = refusing_port();
    let broker = format!("tcp://127.0.0.1:{port}");
    let o = unplug(&[
        "suite",
        "--out",
        out.to_str().unwrap(),
        "--broker",
        &broker,
        "v5-disconnect-normal",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let md = std::fs::read_to_string(out.join("SUITE.md")).unwrap();
    let v = verdicts(&md);
    assert_eq!(v.len(), 1, "{md}");
    assert!(
        v[0].starts_with("error: exit 2") && v[0].contains("does not accept connections"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("SUITE.svg")).unwrap();
    assert!(svg.contains(">error<") && !svg.contains(">pass<"), "{svg}");
}

#[test]
fn compare_with_a_failed_child_shows_an_error_not_the_previous_pass() {
    let out = out_dir("compare-stale");
    // compare names its runs SCENARIO.BROKER.TRANSPORT.
    previous_passes(&out, &["v5-disconnect-normal.url.tcp"]);
    let (_held, port) = refusing_port();
    let broker = format!("tcp://127.0.0.1:{port}");
    let o = unplug(&[
        "compare",
        "--out",
        out.to_str().unwrap(),
        "--brokers",
        &broker,
        "v5-disconnect-normal",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let md = std::fs::read_to_string(out.join("COMPARE.md")).unwrap();
    let v = verdicts(&md);
    assert_eq!(v.len(), 1, "{md}");
    assert!(v[0].starts_with("error: exit 2"), "{md}");
    let svg = std::fs::read_to_string(out.join("COMPARE.svg")).unwrap();
    assert!(svg.contains(">error<") && !svg.contains(">pass<"), "{svg}");
}

#[test]
fn conformance_with_failed_children_shows_errors_not_previous_passes() {
    let out = out_dir("conformance-stale");
    previous_passes(
        &out,
        &[
            "native-last-will.mosquitto.tcp",
            "v5-disconnect-normal.mosquitto.tcp",
        ],
    );
    // Every child fails at once: its mosquitto binary is not there.
    let o = unplug(&[
        "conformance",
        "--jobs",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--brokers",
        "mosquitto",
        "--mosquitto-bin",
        "/nonexistent/mosquitto",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let md = std::fs::read_to_string(out.join("CONFORMANCE.md")).unwrap();
    let table: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scenario"))
        .collect();
    assert_eq!(table.len(), 19, "{md}");
    assert!(
        table.iter().all(|l| l.ends_with("| error |")),
        "a cell other than error:\n{md}"
    );
}

#[test]
fn junit_and_json_hold_every_run_its_checks_and_why_a_run_has_no_verdict() {
    let out = out_dir("machine-readable");
    let (junit, json) = (out.join("compare.xml"), out.join("compare.json"));
    let (_held, port) = refusing_port();
    let broker = format!("tcp://127.0.0.1:{port}");
    let o = unplug(&[
        "compare",
        "--out",
        out.to_str().unwrap(),
        "--brokers",
        &format!("builtin,{broker}"),
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "v5-disconnect-normal",
    ]);
    assert_eq!(o.status.code(), Some(2), "one broker is unreachable");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suites: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2, "{xml}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    // The builtin run: a verdict case plus one case per check in its summary.
    let checks = runs[0]["summary"]["checks"].as_array().unwrap().len();
    assert!(checks >= 1);
    let cases = suites[0]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases, 1 + checks, "{xml}");
    assert_eq!(runs[0]["summary"]["schema_version"], 1);
    // The unreachable one: an error with its reason, and no summary at all.
    assert_eq!(runs[1]["status"], "error");
    assert!(runs[1]["summary"].is_null());
    assert!(runs[1]["reason"]
        .as_str()
        .unwrap()
        .contains("does not accept connections"));
    assert_eq!(suites[1].attribute("errors"), Some("1"));
    assert_eq!(j["exit_code"], 2);
}

/// `--json -` puts the document on stdout, whole and alone (the table goes to stderr), and
/// `scenario --json -` prints the run's summary there, as `judge --json` does.
#[test]
fn json_on_stdout_is_the_document_alone() {
    let out = out_dir("json-stdout");
    let o = unplug(&[
        "suite",
        "--keepalive",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--json",
        "-",
        "native-no-will",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(j["command"], "suite");
    assert_eq!(j["runs"].as_array().unwrap().len(), 1);
    assert!(err.contains("native-no-will"), "the table on stderr: {err}");
    let o = unplug(&[
        "scenario",
        "native-no-will",
        "--keepalive",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--json",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["scenario"], "native-no-will");
    assert_eq!(s["pass"], true);
    let _ = std::fs::remove_dir_all(&out);
}
