//! A willy driver that prints without measure: a 20 MB stdout line, 5,000 stderr lines, then
//! 100 MB without a newline. The runner keeps none of it in memory or in the journal: each
//! long line is cut at 1 MiB and skipped to its end with a note saying how many bytes went,
//! and stderr is recorded at most 50 lines a second with a note of how many were left out.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{out_dir, BIN};

const DRIVER: &str = r#"#!/bin/sh
# A hostile willy driver: a 20 MB stdout line, 5000 stderr lines, 100 MB without a newline.
head -c 20000000 /dev/zero | tr '\0' 'x'; echo
i=0; while [ $i -lt 5000 ]; do echo "err line $i" >&2; i=$((i+1)); done
head -c 100000000 /dev/zero | tr '\0' 'y'
"#;

/// The peak resident set of process `pid`, in kB (VmHWM).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_driver_flooding_stdout_and_stderr_is_cut_skipped_and_counted() {
    let dir = out_dir("hostile-driver");
    let driver = dir.join("driver.sh");
    std::fs::write(&driver, DRIVER).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&driver, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let willy = format!("cmd:{}", driver.display());
    let mut child = Command::new(BIN)
        .args(["scenario", "native-last-will", "--quiet", "--willy", &willy])
        .args(["--out", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let journal = dir.join("native-last-will.events.jsonl.inprogress");
    let started = Instant::now();
    // The driver is done when the runner has said how much of the last line it skipped and
    // how many stderr lines it left out (the stderr reader says so at the stream's end).
    let (text, peak_kb) = loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        let peak_kb = peak_rss_kb(pid);
        if text.contains("100000000 bytes in all") && text.contains("more lines left out") {
            break (text, peak_kb);
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the driver's notes did not come within 60 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = started.elapsed().as_secs() + 1;
    eprintln!(
        "unplug's peak RSS while the driver printed 120 MB: {} kB; journal {} bytes",
        peak_kb.unwrap_or(0),
        text.len()
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    common::wait_or_kill(&mut child, Duration::from_secs(30), "unplug after SIGINT");
    // Both long lines: cut, skipped, counted; nothing of them kept.
    for n in ["20000000", "100000000"] {
        assert!(
            text.contains(&format!(
                "skipped the stdout line over 1048576 bytes ({n} bytes in all, none kept)"
            )),
            "{text}"
        );
    }
    assert!(!text.contains("xxxxxxxx") && !text.contains("yyyyyyyy"));
    // stderr: every line recorded or counted, at most 50 recorded a second.
    let recorded = text.matches("willy's driver (stderr): err line").count() as u64;
    let left_out: u64 = text
        .split("willy's driver (stderr): ")
        .filter_map(|s| s.split_once(" more lines left out"))
        .filter_map(|(n, _)| n.parse::<u64>().ok())
        .sum();
    assert_eq!(recorded + left_out, 5000, "{text}");
    assert!(recorded <= 50 * seconds, "{recorded} in {seconds} s");
    // The journal holds notes, not what was printed: 120 MB printed, a few kB recorded.
    assert!(text.len() < 1024 * 1024, "{} bytes", text.len());
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
