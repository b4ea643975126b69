//! `unplug judge` on journals nobody should trust: real journals with their numbers made
//! extreme, lines cut short, garbage and huge strings put in, records dropped, doubled and
//! added. Whatever the file, the judge gives a verdict or a refusal naming the file (and the
//! line, when a line is at fault); never a panic, never memory without bound.
//!
//! ```text
//!  tests/fixtures/journals/*.events.jsonl --mutate (proptest)--> temp file
//!     --toxi::judge::judge_journal (what `unplug judge` calls)--> Ok(summary) | Err(names it)
//!  a few by hand --the real binary--> exit 2, `file:line` on stderr
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;

use common::{out_dir, unplug_within};

/// Two real journals: an `unplug proxy` one (judged by the CONNECT its tap saw) and a
/// scenario run's (judged by the scenario it records).
const SEEDS: [&str; 2] = [
    "tests/fixtures/journals/sensor-7.events.jsonl",
    "tests/fixtures/journals/pingreq-dropped.events.jsonl",
];

fn seed(i: usize) -> Vec<String> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SEEDS[i]))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Numbers that break arithmetic, conversions and allocations when trusted.
fn extreme(i: usize) -> Value {
    let all: [Value; 18] = [
        Value::from(0),
        Value::from(1e12),
        Value::from(268_435_455),
        Value::from(65_535),
        Value::from(u32::MAX),
        Value::from(-1),
        Value::from(1e300),
        Value::from(-1e300),
        Value::from(1e12 + 1.0),
        Value::from(u64::MAX),
        Value::from(i64::MIN),
        Value::from(1u64 << 53),
        Value::from(1_000_000_000_000u64),
        Value::from(4_294_967_296u64),
        Value::from(65_536),
        Value::from(268_435_456),
        Value::from(1.5),
        Value::from(1e-300),
    ];
    all[i % all.len()].clone()
}

/// Every number and every string in `v`, as pointers (`/fields/payload_len`).
fn leaves(v: &Value, at: String, numbers: &mut Vec<String>, strings: &mut Vec<String>) {
    match v {
        Value::Number(_) => numbers.push(at),
        Value::String(_) => strings.push(at),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{at}/{i}"), numbers, strings);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                leaves(x, format!("{at}/{k}"), numbers, strings);
            }
        }
        _ => {}
    }
}

/// One change to a journal's lines.
#[derive(Debug, Clone)]
enum Mutation {
    /// A number of line `line` (the `pick`th) becomes an extreme one.
    Number {
        line: usize,
        pick: usize,
        value: usize,
    },
    /// A string of a line becomes `len` bytes long.
    String {
        line: usize,
        pick: usize,
        len: usize,
    },
    /// A line ends after `at` bytes.
    Truncate {
        line: usize,
        at: usize,
    },
    /// A line of arbitrary bytes goes in.
    Garbage {
        line: usize,
        bytes: Vec<u8>,
    },
    /// A line goes, or comes twice.
    Drop {
        line: usize,
    },
    Double {
        line: usize,
    },
    /// A `publish_run` record (the tap's folded PUBLISHes) with any numbers.
    Run {
        line: usize,
        count: u64,
        bytes: u64,
        payload_len: u64,
        first: usize,
        last: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = 0..200usize;
    prop_oneof![
        4 => (line.clone(), any::<usize>(), any::<usize>())
            .prop_map(|(line, pick, value)| Mutation::Number { line, pick, value }),
        1 => (line.clone(), any::<usize>(), prop_oneof![Just(0usize), Just(70_000), Just(2_000_000)])
            .prop_map(|(line, pick, len)| Mutation::String { line, pick, len }),
        1 => (line.clone(), 0..400usize).prop_map(|(line, at)| Mutation::Truncate { line, at }),
        1 => (line.clone(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(line, bytes)| Mutation::Garbage { line, bytes }),
        1 => line.clone().prop_map(|line| Mutation::Drop { line }),
        1 => line.clone().prop_map(|line| Mutation::Double { line }),
        2 => (line, 0..1000u64, any::<u64>(), 0..100u64, any::<usize>(), any::<usize>())
            .prop_map(|(line, count, extra, payload_len, first, last)| Mutation::Run {
                line,
                count,
                // Mostly bytes that add up (4 bytes of headers at least each), sometimes not.
                bytes: if extra % 4 == 0 { extra } else { count * (20 + payload_len) + extra % 1000 },
                payload_len,
                first,
                last,
            }),
    ]
}

/// The `pick`th number (or string) of line `i`, if it is JSON, becomes `value`.
fn replace_leaf(lines: &mut [Vec<u8>], i: usize, pick: usize, number: bool, value: Value) {
    let Some(mut v) = lines
        .get(i)
        .and_then(|l| serde_json::from_slice::<Value>(l).ok())
    else {
        return;
    };
    let (mut numbers, mut strings) = (Vec::new(), Vec::new());
    leaves(&v, String::new(), &mut numbers, &mut strings);
    let at = if number { numbers } else { strings };
    if let Some(p) = at.get(pick % at.len().max(1)) {
        *v.pointer_mut(p).unwrap() = value;
        lines[i] = serde_json::to_vec(&v).unwrap();
    }
}

/// `lines` with `m` applied (lines as bytes: garbage need not be UTF-8).
fn apply(lines: &mut Vec<Vec<u8>>, m: &Mutation) {
    let n = lines.len().max(1);
    match m.clone() {
        Mutation::Number { line, pick, value } => {
            replace_leaf(lines, line % n, pick, true, extreme(value));
        }
        Mutation::String { line, pick, len } => {
            replace_leaf(
                lines,
                line % n,
                pick,
                false,
                Value::from("\u{e9}".repeat(len / 2)),
            );
        }
        Mutation::Truncate { line, at } => {
            if let Some(l) = lines.get_mut(line % n) {
                l.truncate(at);
            }
        }
        Mutation::Garbage { line, bytes } => {
            let bytes: Vec<u8> = bytes.into_iter().filter(|b| *b != b'\n').collect();
            lines.insert((line % n).min(lines.len()), bytes);
        }
        Mutation::Drop { line } => {
            if line % n < lines.len() {
                lines.remove(line % n);
            }
        }
        Mutation::Double { line } => {
            if let Some(l) = lines.get(line % n).cloned() {
                lines.insert(line % n, l);
            }
        }
        Mutation::Run {
            line,
            count,
            bytes,
            payload_len,
            first,
            last,
        } => {
            let (first, last) = (extreme(first), extreme(last));
            let run = serde_json::json!({
                "ms": 3000.0, "t": "2026-11-29T17:26:05.798683125Z", "actor": "wire",
                "event": "publish_run", "conn": 1, "from": "client", "dropped": false,
                "topic": "sensors/7/status", "qos": 0, "retain": false,
                "payload_len": payload_len, "count": count, "bytes": bytes,
                "first_ms": first, "last_ms": last,
            });
            lines.insert(
                (line % n).min(lines.len()),
                serde_json::to_vec(&run).unwrap(),
            );
        }
    }
}

/// Judge `lines` as a journal the way `unplug judge` does: a verdict, or a refusal that names
/// the file.
fn judge_lines(dir: &Path, lines: &[Vec<u8>]) -> Result<(), String> {
    let path = dir.join("x.events.jsonl");
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    std::fs::write(&path, text).unwrap();
    match unplug::toxi::judge::judge_journal(&path, None) {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = format!("{e:#}");
            prop_assert_or_fail(e.contains(&path.display().to_string()), &e)?;
            Ok(())
        }
    }
}

fn prop_assert_or_fail(ok: bool, e: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("a refusal that does not name the file: {e}"))
    }
}

proptest! {
    // 256 cases (PROPTEST_CASES sets another count) of up to 4 changes each: about 4 s in a
    // debug build.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_journal_gets_a_verdict_or_a_refusal_naming_it(
        which in 0..2usize,
        changes in proptest::collection::vec(mutation(), 1..5),
    ) {
        let dir = tempfile::Builder::new().prefix("unplug-hostile-").tempdir().unwrap();
        let mut lines: Vec<Vec<u8>> = seed(which).into_iter().map(String::into_bytes).collect();
        for m in &changes {
            apply(&mut lines, m);
        }
        judge_lines(dir.path(), &lines).map_err(TestCaseError::fail)?;
    }
}

/// `unplug judge PATH`, killed if it is not done within 20 s (the old reader waited on a
/// FIFO forever and read /dev/zero until memory ran out).
fn judge_within(path: &Path) -> Output {
    unplug_within(&["judge", path.to_str().unwrap()], Duration::from_secs(20))
}

/// Seed `i` with line `line` (1-based) replaced by `edit` of its JSON.
fn seed_with(dir: &Path, i: usize, line: usize, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut lines = seed(i);
    let mut v: Value = serde_json::from_str(&lines[line - 1]).unwrap();
    edit(&mut v);
    lines[line - 1] = v.to_string();
    let path = dir.join(format!("edited-{i}-{line}.events.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn assert_refused(path: &Path, want: &[&str]) {
    let o = judge_within(path);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}: {e}", path.display());
    for w in want {
        assert!(e.contains(w), "wanted {w:?} in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn the_binary_refuses_hostile_journals_with_exit_2_naming_file_and_line() {
    let dir = out_dir("hostile-journals");
    // A will of 1e12 bytes (the old judge made a 3 TB placeholder and aborted).
    let p = seed_with(&dir, 0, 5, |v| {
        v["fields"]["will"]["payload_len"] = Value::from(1_000_000_000_000u64)
    });
    let shown = p.display().to_string();
    assert_refused(
        &p,
        &[&format!("{shown}:5:"), "fields.will.payload_len", "65535"],
    );
    // A heal at 1e300 ms (the old judge panicked making a Duration of it).
    let p = seed_with(&dir, 0, 24, |v| v["ms"] = Value::from(1e300));
    assert_refused(&p, &[&format!("{}:24:", p.display()), "key `ms`"]);
    // The recorded scenario out of a scenario file's range, by its key.
    let line = seed(1)
        .iter()
        .position(|l| l.contains("scenario_recorded"))
        .unwrap()
        + 1;
    let p = seed_with(&dir, 1, line, |v| {
        v["scenario"]["will"]["qos"] = Value::from(7);
    });
    assert_refused(
        &p,
        &[
            &format!("{}:{line}:", p.display()),
            "key `will.qos`",
            "expected 0 to 2",
        ],
    );
    let p = seed_with(&dir, 1, line, |v| {
        v["scenario"]["keepalive"]["secs"] = Value::from(u64::MAX);
    });
    assert_refused(&p, &[&format!("{}:{line}:", p.display()), "keepalive_s"]);
    // A line of 2 MiB, and a FIFO, /dev/zero, a directory: refused before they are read.
    let p = dir.join("long.events.jsonl");
    std::fs::write(&p, "x".repeat(2 << 20)).unwrap();
    assert_refused(&p, &[&format!("{}:1: a line longer than", p.display())]);
    let fifo = dir.join("fifo.events.jsonl");
    common::mkfifo(&fifo);
    assert_refused(&fifo, &["a FIFO"]);
    assert_refused(Path::new("/dev/zero"), &["/dev/zero", "a character device"]);
    assert_refused(&dir, &["a directory"]);
    // The seeds themselves are judged (exit 0 or 1).
    for seed in SEEDS {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(seed);
        let o = judge_within(&p);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A proxy's journal whose PUBLISH runs stand for 2^44 PUBLISHes (a day of a 10 Gbit/s flood,
/// as far as the reader's checks go) gets its verdict: the judge places and counts a run's
/// PUBLISHes by index and holds one by one only those monit got a copy of (the old judge held
/// every one: 134 MB for 2,000,000 at a proxy's stop), and refuses, naming the file, a journal
/// whose copies would take more than the checks may hold.
#[test]
fn publish_runs_of_trillions_are_judged_without_holding_them() {
    let dir = out_dir("hostile-journals-runs");
    let lines = seed(0);
    let run = |ms: f64, topic: &str, payload_len: u64, from: &str| {
        let count = 1u64 << 44;
        serde_json::json!({
            "ms": ms, "t": "2026-11-29T17:26:05.798683125Z", "actor": "wire",
            "event": "publish_run", "conn": 1, "from": from, "dropped": false,
            "topic": topic, "qos": 0, "retain": false, "payload_len": payload_len,
            "count": count, "bytes": count * (payload_len + 4 + topic.len() as u64),
            "first_ms": ms - 1000.0, "last_ms": ms,
        })
        .to_string()
    };
    // Runs both ways before the cut (line 17) and one whose topic monit got, after it.
    let write = |name: &str, extra: &[(usize, String)]| {
        let mut l = lines.clone();
        for (at, line) in extra.iter().rev() {
            l.insert(*at, line.clone());
        }
        let p = dir.join(name);
        std::fs::write(&p, l.join("\n") + "\n").unwrap();
        p
    };
    let flood = write(
        "flood.events.jsonl",
        &[
            (12, run(2100.0, "sensors/7/data", 60, "client")),
            (14, run(3100.0, "sensors/7/data", 60, "broker")),
        ],
    );
    let o = judge_within(&flood);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("checks"), "{out}");
    let copied = write(
        "copied.events.jsonl",
        &[(12, run(2100.0, "sensors/7/status", 7, "client"))],
    );
    assert_refused(
        &copied,
        &[&copied.display().to_string(), "monit got copies of"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
