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
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unplug did not finish within 60 s (blocked on the attacker's file?)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
