//! Files the harness writes are its own: a local user cannot make it write through a symlink,
//! feed mosquitto a config, or make a failed run destroy the previous one (issue 11, defects 1
//! and 3).
//!
//! The attacks pre-create what the old code wrote to: `$TMPDIR/unplug-mosquitto-PID-0/` (a
//! predictable name, reused if present, written through symlinks). `sh -c '...; exec unplug'`
//! keeps the shell's pid, so the test knows PID before unplug starts. TMPDIR points into the
//! test's own directory, so every path the attack aims at is the test's.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Run `unplug ARGS` as `sh -c` after `prepare` (a shell snippet that may use `$$`, which is
/// unplug's pid once the shell execs it) has run, with TMPDIR set. `between` runs after the
/// shell printed its pid and before unplug starts.
fn run_after(
    tmpdir: &Path,
    prepare: &str,
    args: &[&str],
    between: impl FnOnce(u32),
) -> std::process::Output {
    let script = format!("{prepare}\necho $$\nread go\nexec \"$UNPLUG\" \"$@\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .arg("sh")
        .args(args)
        .env("TMPDIR", tmpdir)
        .env("UNPLUG", BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut pid = String::new();
    out.read_line(&mut pid).unwrap();
    between(pid.trim().parse().expect("the shell printed its pid"));
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    // Bounded: the old code blocks forever opening the FIFO, so the wait must end on its own.
    common::wait_or_kill(
        &mut child,
        Duration::from_secs(60),
        "unplug (blocked on the attacker's file?)",
    );
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut out, &mut rest).unwrap();
    let mut output = child.wait_with_output().unwrap();
    output.stdout = rest;
    output
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_symlinked_mosquitto_conf_at_the_old_temp_name_overwrites_nothing() {
    if mosquitto_or_skip("a_symlinked_mosquitto_conf_at_the_old_temp_name_overwrites_nothing")
        .is_none()
    {
        return;
    }
    let tmp = out_dir("attack-symlink");
    let out = tmp.join("out");
    let victim = tmp.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let prepare = format!(
        "for n in 0 1 2 3; do d=\"$TMPDIR/unplug-mosquitto-$$-$n\"; mkdir \"$d\" && ln -s '{}' \"$d/mosquitto.conf\"; done",
        victim.display()
    );
    let o = run_after(
        &tmp,
        &prepare,
        &[
            "scenario",
            "v5-disconnect-normal",
            "--broker",
            "mosquitto",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_fifo_at_the_old_temp_name_injects_nothing_into_mosquitto() {
    if mosquitto_or_skip("a_fifo_at_the_old_temp_name_injects_nothing_into_mosquitto").is_none() {
        return;
    }
    let tmp = out_dir("attack-fifo");
    let out = tmp.join("out");
    let injected = tmp.join("injected.log");
    let prepare =
        "d=\"$TMPDIR/unplug-mosquitto-$$-0\"; mkdir \"$d\" && mkfifo \"$d/mosquitto.conf\"";
    let mut attacker = None;
    let o = run_after(
        &tmp,
        prepare,
        &[
            "scenario",
            "v5-disconnect-normal",
            "--broker",
            "mosquitto",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        |pid| {
            // Read the config unplug writes into the FIFO, then hand mosquitto that config plus
            // a line of the attacker's: mosquitto would log into a file of their choosing.
            let fifo = tmp.join(format!("unplug-mosquitto-{pid}-0/mosquitto.conf"));
            attacker = Some(
                Command::new("sh")
                    .arg("-c")
                    .arg("conf=$(cat \"$1\"); printf '%s\\nlog_dest file %s\\n' \"$conf\" \"$2\" > \"$1\"")
                    .arg("sh")
                    .arg(&fifo)
                    .arg(&injected)
                    .stdin(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .unwrap(),
            );
        },
    );
    // The attacker (a shell and its `cat`) still waits on a FIFO nobody opens: end its group.
    let mut attacker = attacker.unwrap();
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(attacker.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = attacker.wait();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !injected.exists(),
        "mosquitto obeyed the attacker's config and wrote {}",
        injected.display()
    );
}

#[test]
fn a_regular_file_at_the_old_temp_name_does_not_stop_the_run() {
    if mosquitto_or_skip("a_regular_file_at_the_old_temp_name_does_not_stop_the_run").is_none() {
        return;
    }
    let tmp = out_dir("attack-file");
    let out = tmp.join("out");
    let o = run_after(
        &tmp,
        "for n in 0 1 2 3; do echo x > \"$TMPDIR/unplug-mosquitto-$$-$n\"; done",
        &[
            "scenario",
            "v5-disconnect-normal",
            "--broker",
            "mosquitto",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn result_files_replace_symlinks_in_the_output_dir_instead_of_writing_through_them() {
    let dir = out_dir("out-symlinks");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let name = "v5-disconnect-normal";
    for f in [
        format!("{name}.log"),
        format!("{name}.events.jsonl"),
        format!("{name}.summary.json"),
        format!("{name}.svg"),
        format!("{name}.log.inprogress"),
        format!("{name}.events.jsonl.inprogress"),
    ] {
        std::os::unix::fs::symlink(&victim, out.join(f)).unwrap();
    }
    let (code, s) = run_scenario(name, &out, &[]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for f in ["log", "events.jsonl", "summary.json", "svg"] {
        let p = out.join(format!("{name}.{f}"));
        assert!(!std::fs::symlink_metadata(&p).unwrap().is_symlink(), "{f}");
    }
}

/// Every file of a run's set, by name, with its bytes.
fn set_of(out: &Path, name: &str) -> Vec<(String, Vec<u8>)> {
    ["log", "events.jsonl", "summary.json", "svg"]
        .iter()
        .map(|k| {
            let f = format!("{name}.{k}");
            let bytes = std::fs::read(out.join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            (f, bytes)
        })
        .collect()
}

#[test]
fn a_failed_start_leaves_the_previous_run_untouched_and_marks_its_own_journal() {
    let out = out_dir("failed-start");
    let name = "v5-disconnect-normal";
    let (code, s) = run_scenario(name, &out, &[]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let before = set_of(&out, name);
    // Nothing listens on a port held bound: the broker is unreachable.
    let (_held, port) = refusing_port();
    let o = unplug(&[
        "scenario",
        name,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--broker",
        &format!("tcp://127.0.0.1:{port}"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(set_of(&out, name), before, "the previous set changed");
    let failed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("{name}.incomplete.summary.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(failed["pass"], false);
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not accept connections")),
        "{failed:#}"
    );
    let log = std::fs::read_to_string(out.join(format!("{name}.incomplete.log"))).unwrap();
    assert!(log.contains("run ended: error"), "{log}");
    assert!(!out.join(format!("{name}.log.inprogress")).exists());
}

#[test]
fn a_killed_run_loses_at_most_the_journal_line_in_flight() {
    let out = out_dir("journal-flush");
    let mut child = Command::new(BIN)
        .args(["scenario", "native-last-will", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The log lines as the run prints them (each is echoed, then written to the files).
    let mut seen = Vec::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.contains("Cycle 2")) {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no Cycle 2 within 20 s: {seen:#?}");
        }
        seen.push(line.trim_end().to_string());
    }
    child.kill().unwrap(); // SIGKILL: nothing runs after this
    child.wait().unwrap();
    // (Before issue 11 the live log had the final name: look there too, so this test tells the
    // buffering apart from the naming.)
    let log = std::fs::read_to_string(out.join("native-last-will.log.inprogress"))
        .or_else(|_| std::fs::read_to_string(out.join("native-last-will.log")))
        .unwrap_or_default();
    let on_disk: Vec<&str> = complete_lines(&log);
    // Every line but the one in flight (printed, maybe not yet written) is on disk.
    let missing: Vec<&String> = seen[..seen.len() - 1]
        .iter()
        .filter(|l| !on_disk.contains(&l.as_str()))
        .collect();
    assert!(missing.is_empty(), "lost to SIGKILL: {missing:#?}");
    let events = std::fs::read_to_string(out.join("native-last-will.events.jsonl.inprogress"))
        .or_else(|_| std::fs::read_to_string(out.join("native-last-will.events.jsonl")))
        .unwrap_or_default();
    let records = complete_lines(&events);
    assert!(records.len() > 5, "{events}");
    for line in records {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

/// The lines of a file a SIGKILL cut short: all but a last one that has no newline yet (the
/// line in flight: one write, which the kill may have stopped part-way).
fn complete_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    if !text.is_empty() && !text.ends_with('\n') {
        lines.pop();
    }
    lines
}

#[test]
fn a_run_ended_by_sigterm_exits_143_and_leaves_the_previous_set_as_it_was() {
    let out = out_dir("run-sigterm");
    let name = "native-last-will";
    let (code, s) = run_scenario(name, &out, &["--keepalive", "1"]);
    assert_eq!(code, 0, "{:?}", failed_checks(&s));
    let before = set_of(&out, name);
    let mut child = Command::new(BIN)
        .args(["scenario", name, "--quiet", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let live = out.join(format!("{name}.events.jsonl.inprogress"));
    let deadline = Instant::now() + Duration::from_secs(20);
    // (Before issue 11 the live journal had its final name, which the previous run left here:
    // wait for it to be truncated and refilled.)
    let old_live = out.join(format!("{name}.events.jsonl"));
    let started = |p: &Path| {
        let t = std::fs::read_to_string(p).unwrap_or_default();
        t.contains(r#""event":"cycle_started""#) && !t.contains(r#""event":"run_ended""#)
    };
    while !(started(&live) || started(&old_live)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no cycle started within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run did not end within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.code(), Some(143), "{st}");
    assert_eq!(set_of(&out, name), before, "the previous set changed");
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("{name}.incomplete.summary.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&s["interrupted"], &s["pass"]),
        (
            &serde_json::Value::Bool(true),
            &serde_json::Value::Bool(false)
        )
    );
    assert_eq!(s["end_reason"], "interrupted (SIGTERM)");
}
