//! The kernel cut's own machinery: its rules really drop what crosses the veth (bytes sent
//! from willy's namespace never arrive while they are in place), and nothing of it outlives a
//! run: not the namespace, the veth, the rules, nor willy's process, even when the runner is
//! SIGKILLed (the next run's sweep removes what it left). rumqttc, the default willy, goes
//! through kernel and link cuts as its own driver (`unplug driver-rumqttc`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{drivers_or_skip, root_or_skip};
use unplug::kernelcut::{self, Netns};

fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().expect("ip runs");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn netns_exists(name: &str) -> bool {
    ip(&["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

fn link_exists(name: &str) -> bool {
    ip(&["-o", "link", "show"]).lines().any(|l| {
        l.split(": ")
            .nth(1)
            .is_some_and(|n| n.split('@').next() == Some(name))
    })
}

/// Whatever arrives on `s` within `within` (bounded reads of 100 ms).
fn arrived(s: &mut std::net::TcpStream, within: Duration) -> String {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let until = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A sender in the namespace: connects to host:port, then writes each stdin line and says
/// "sent" or the error.
const SENDER: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.sendall(line.encode())
        print("sent", flush=True)
    except OSError as e:
        print("error", e, flush=True)
"#;

#[test]
fn kernel_drop_rules_really_drop_and_everything_is_removed_afterwards() {
    if root_or_skip("kernel_drop").is_none() {
        return;
    }
    let ns = Netns::create().expect("the namespace is set up");
    let name = ns.name.clone();
    let (host_link, ns_link) = (ns.host_link.clone(), ns.ns_link.clone());
    assert!(netns_exists(&name) && link_exists(&host_link));

    let listener = TcpListener::bind((ns.host_addr, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut sender = Command::new("ip")
        .args(["netns", "exec", &name, "python3", "-c", SENDER])
        .arg(ns.host_addr.to_string())
        .arg(&port)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to = sender.stdin.take().unwrap();
    let mut from = BufReader::new(sender.stdout.take().unwrap());
    let mut said = |to: &mut std::process::ChildStdin, text: &str| {
        to.write_all(text.as_bytes()).unwrap();
        to.flush().unwrap();
        let mut l = String::new();
        from.read_line(&mut l).unwrap();
        l
    };
    let (mut conn, _) = listener.accept().unwrap();
    assert_eq!(said(&mut to, "before\n").trim(), "connected");
    assert_eq!(arrived(&mut conn, Duration::from_millis(1500)), "before\n");

    // Both directions dropped in willy's namespace: the write succeeds (the kernel buffers
    // it and retransmits) and nothing arrives.
    ns.cut(&kernelcut::blackhole(true, true, &ns_link)).unwrap();
    assert!(ns
        .ruleset()
        .contains(&format!("oifname \"{ns_link}\" drop")));
    assert_eq!(said(&mut to, "during\n").trim(), "sent");
    assert_eq!(arrived(&mut conn, Duration::from_millis(2000)), "");

    // Healed: the kernel's retransmission brings it (RTO backoff: within 10 s).
    ns.heal().unwrap();
    assert!(!ns.ruleset().contains("drop"));
    assert_eq!(arrived(&mut conn, Duration::from_secs(10)), "during\n");

    // The link down: the same silence, the kernel's own.
    ns.cut(&kernelcut::KernelCut::LinkDown).unwrap();
    assert_eq!(said(&mut to, "unplugged\n").trim(), "sent");
    assert_eq!(arrived(&mut conn, Duration::from_millis(2000)), "");
    ns.heal().unwrap();
    assert_eq!(arrived(&mut conn, Duration::from_secs(10)), "unplugged\n");

    // A reset: willy's next segment is answered with a RST; a later write fails (the first
    // may go into the buffer before the RST is back: at most 10 tries, 200 ms apart).
    ns.cut(&kernelcut::reset(&ns_link)).unwrap();
    let mut replies = Vec::new();
    for _ in 0..10 {
        let r = said(&mut to, "reset\n");
        let failed = r.starts_with("error");
        replies.push(r);
        if failed {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        replies.last().is_some_and(|r| r.contains("reset")),
        "no connection reset after a reset rule: {replies:?}"
    );
    drop(to);
    let _ = sender.wait();

    drop(ns);
    assert!(!netns_exists(&name), "namespace {name} left");
    assert!(!link_exists(&host_link), "link {host_link} left");
}

/// Start a kernel-cut run of mqtt.js and wait (at most 20 s) until willy's driver runs in its
/// namespace: (the run, its namespace, its host link, the driver's pids).
fn kernel_run_with_driver(tag: &str) -> (std::process::Child, String, String, Vec<u32>) {
    let (run, name, link, pids, _) = kernel_run_of(
        tag,
        &["ws-last-will", "--willy", "mqttjs"],
        "kernel",
        "driver.js",
    );
    (run, name, link, pids)
}

/// Start `unplug scenario ARGS --cut CUT` (kernel or link) and wait (at most 20 s) until a process whose
/// command line holds `driver` runs in its namespace: (the run, its namespace, its host link,
/// the driver's pids, its output directory).
fn kernel_run_of(
    tag: &str,
    args: &[&str],
    cut: &str,
    driver: &str,
) -> (
    std::process::Child,
    String,
    String,
    Vec<u32>,
    std::path::PathBuf,
) {
    let out = common::out_dir(tag);
    let mut run = Command::new(common::BIN)
        .arg("scenario")
        .args(args)
        .args(["--cut", cut, "-q"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(out.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let pid = run.id();
    let start = kernelcut::start_time(pid).expect("the run just started");
    let (name, host_link, _) = kernelcut::names(pid, start);
    // Until willy's driver runs in the namespace (bounded: 20 s). Only the driver counts:
    // `ip netns exec NS ip ...` of the set-up runs there for a moment too.
    let drivers_in_ns = || -> Vec<u32> {
        ip(&["netns", "pids", &name])
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(driver))
            })
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(20);
    let mut pids = drivers_in_ns();
    while pids.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        pids = drivers_in_ns();
    }
    if pids.is_empty() {
        // No stray run: it ends (and cleans up) before the test fails.
        let state = run.try_wait();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = run.wait();
        panic!(
            "willy's driver never ran in {name}: the run {state:?}, said {}",
            std::fs::read_to_string(out.join("stderr")).unwrap_or_default()
        );
    }
    (run, name, host_link, pids, out)
}

#[test]
fn a_sigkilled_kernel_run_leaves_nothing_after_the_next_sweep() {
    if root_or_skip("kernel_sigkill").is_none() {
        return;
    }
    if drivers_or_skip("kernel_sigkill").is_none() {
        return;
    }
    let (mut run, name, host_link, pids) = kernel_run_with_driver("kernel-sigkill");
    let pid = run.id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    run.wait().unwrap();
    // willy's driver dies with the runner (PR_SET_PDEATHSIG), within 5 s.
    let until = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| common::is_live(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        pids.iter().all(|p| !common::is_live(*p)),
        "willy's driver outlived the runner"
    );
    // The sweep at the next run's start (here called alone) removes the namespace, its rules
    // and the veth. Another test's sweep may have removed them first: either way, gone.
    kernelcut::sweep().unwrap();
    assert!(!netns_exists(&name), "namespace {name} survived the sweep");
    assert!(
        !link_exists(&host_link),
        "link {host_link} survived the sweep"
    );
}

/// rumqttc's own driver (no driver libraries needed) dies with a SIGKILLed runner as the
/// others do, and the sweep removes what the runner left.
#[test]
fn a_sigkilled_rumqttc_kernel_run_leaves_nothing_after_the_next_sweep() {
    if root_or_skip("kernel_sigkill_rumqttc").is_none() {
        return;
    }
    let (mut run, name, host_link, pids, _) = kernel_run_of(
        "kernel-sigkill-rumqttc",
        &["ws-last-will"],
        "kernel",
        "driver-rumqttc",
    );
    let pid = run.id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    run.wait().unwrap();
    // willy's driver dies with the runner (PR_SET_PDEATHSIG), within 5 s.
    let until = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| common::is_live(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        pids.iter().all(|p| !common::is_live(*p)),
        "willy's driver outlived the runner"
    );
    // The sweep at the next run's start (here called alone) removes the namespace, its rules
    // and the veth. Another test's sweep may have removed them first: either way, gone.
    kernelcut::sweep().unwrap();
    assert!(!netns_exists(&name), "namespace {name} survived the sweep");
    assert!(
        !link_exists(&host_link),
        "link {host_link} survived the sweep"
    );
}

#[test]
fn a_kernel_run_interrupted_by_sigint_removes_its_namespace_and_veth_itself() {
    if root_or_skip("kernel_sigint").is_none() || drivers_or_skip("kernel_sigint").is_none() {
        return;
    }
    let (mut run, name, host_link, pids) = kernel_run_with_driver("kernel-sigint");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130), "a run ended by SIGINT exits 130");
    // No sweep: the run removed them on its way out.
    assert!(!netns_exists(&name), "namespace {name} left after SIGINT");
    assert!(
        !link_exists(&host_link),
        "link {host_link} left after SIGINT"
    );
    let until = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| common::is_live(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        pids.iter().all(|p| !common::is_live(*p)),
        "willy's driver outlived the run"
    );
}

/// rumqttc through a kernel cut: the runner starts itself as `unplug driver-rumqttc` inside
/// willy's namespace; the will arrives, the verdict passes, and the namespace, the veth and
/// the driver are gone when the run ends. (No driver libraries needed: rumqttc is built in.)
#[test]
fn rumqttc_through_a_kernel_cut_passes_and_leaves_nothing() {
    if root_or_skip("kernel_rumqttc").is_none() {
        return;
    }
    let log = rumqttc_run_passes_and_leaves_nothing("kernel-rumqttc", "ws-last-will", "kernel");
    // willy's DISCONNECT into the dead link: rumqttc writes it into the socket's buffer and
    // its disconnect is back at once; cycle 4's attempts fail on rumqttc's own timeout.
    assert!(log.contains("Outgoing::Disconnect"));
    assert!(log.contains("Network timeout (NetworkTimeout)"));
}

/// The same through a link taken down, over TCP: the next attempt may end on the kernel's
/// "No route to host" before rumqttc's connection timeout, and the run still passes.
#[test]
fn rumqttc_through_a_link_cut_passes_and_leaves_nothing() {
    if root_or_skip("link_rumqttc").is_none() {
        return;
    }
    let log = rumqttc_run_passes_and_leaves_nothing("link-rumqttc", "native-last-will", "link");
    assert!(
        log.contains("ip link set upl"),
        "the link was not taken down"
    );
}

/// Run `scenario` with rumqttc through `cut`; assert the pass, the will, rumqttc's driver in
/// the namespace, and nothing left after; the run's log.
fn rumqttc_run_passes_and_leaves_nothing(tag: &str, scenario: &str, cut: &str) -> String {
    let (mut run, name, host_link, pids, out) =
        kernel_run_of(tag, &[scenario], cut, "driver-rumqttc");
    // The run ends by itself (ws-last-will: ~15 s here); bounded at 90 s.
    let until = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(st) = run.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= until {
            let _ = run.kill();
            let _ = run.wait();
            panic!("the rumqttc {cut}-cut run of {scenario} did not end within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("{scenario}.summary.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{:?}",
        common::failed_checks(&summary)
    );
    assert_eq!(common::status(&summary, "will"), "pass");
    let log = std::fs::read_to_string(out.join(format!("{scenario}.log"))).unwrap();
    assert!(
        log.contains("rumqttc says (ready"),
        "no ready report from rumqttc"
    );
    assert!(log.contains("rumqttc 0.25.1"));
    assert!(log.contains(&format!("fault 1 in the kernel ({name})")));
    // Nothing survives: the namespace, the veth, the driver process.
    assert!(!netns_exists(&name), "namespace {name} left");
    assert!(!link_exists(&host_link), "link {host_link} left");
    let until = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| common::is_live(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        pids.iter().all(|p| !common::is_live(*p)),
        "rumqttc's driver outlived the run"
    );
    log
}

/// A /30 another run holds is never chosen: a dummy link takes the one this runner's pid
/// would have had under the old `pid % 16384` (so a run whose pid differs by 16384 took it),
/// and the namespace gets another.
#[test]
fn a_slash_30_a_live_run_holds_is_not_taken_again() {
    if root_or_skip("kernel_slot").is_none() {
        return;
    }
    // Not an `upl...h` name: no sweep takes it for a run's leftover.
    let decoy = format!("unpldecoy{}", std::process::id() % 10_000);
    let (taken, _) = kernelcut::addresses(std::process::id() % 16384);
    // A veth pair (this kernel has no dummy links); its peer goes with it.
    assert!(ip_ok(&[
        "link",
        "add",
        &decoy,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{decoy}p")
    ]));
    let added = Command::new("ip")
        .args(["addr", "add", &format!("{taken}/30"), "dev", &decoy])
        .status()
        .unwrap()
        .success();
    let ns = Netns::create();
    let _ = Command::new("ip").args(["link", "del", &decoy]).status();
    assert!(added);
    let ns = ns.expect("the namespace is set up");
    assert_ne!(ns.host_addr, taken);
    assert_eq!(u32::from(ns.host_addr) % 4, 1);
}

/// A namespace whose pid now belongs to a process that started at another time (a reused
/// pid) is a gone run's: the sweep removes it. One whose owner lives (this test, by its own
/// pid and start time) stays.
#[test]
fn the_sweep_removes_a_namespace_whose_pid_was_reused_and_keeps_a_live_ones() {
    if root_or_skip("kernel_sweep_start").is_none() {
        return;
    }
    let me = std::process::id();
    let start = kernelcut::start_time(me).unwrap();
    let (stale, _, _) = kernelcut::names(me, start + 1);
    let (live, _, _) = kernelcut::names(me, start);
    for ns in [&stale, &live] {
        assert!(ip_ok(&["netns", "add", ns]), "ip netns add {ns}");
    }
    let removed = kernelcut::sweep().unwrap();
    let stale_left = netns_exists(&stale);
    let live_left = netns_exists(&live);
    let _ = ip_ok(&["netns", "del", &live]);
    let _ = ip_ok(&["netns", "del", &stale]);
    // Another test's sweep may have removed the stale one first: either way, gone.
    assert!(!stale_left, "{stale} survived the sweep: {removed:?}");
    assert!(live_left, "{live} was swept while its owner lives");
    let o = common::unplug(&["sweep"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn ip_ok(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}
