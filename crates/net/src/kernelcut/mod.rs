//! Cuts in the kernel: a driver willy in a network namespace of its own, joined to the host by
//! a veth pair; the proxy listens on the host end, so its wire tap still sees every byte that
//! crosses.
//!
//! ```text
//!  netns unplug-PID-START                   host
//!  +--------------------------+            +-----------------------------------+
//!  | willy (driver)           |   veth     | proxy 10.222.x.y+1:PORT --> broker |
//!  | 10.222.x.y+2/30 uplPIDn  |<---------->| uplPIDh                            |
//!  | nft table inet unplug:   |            +-----------------------------------+
//!  |   output/input chains    |
//!  +--------------------------+
//!  blackhole = drop (output: upstream, input: downstream); reset = reject with tcp reset;
//!  link = uplPIDh down
//! ```
//!
//! Names carry the runner's pid and its start time (`/proc/PID/stat` field 22), so they cannot
//! collide between live runs, and a namespace is its owner's only while that process, with
//! that start time, lives: a pid reused by another process does not keep a dead run's
//! namespace. The /30 is the first one no host link holds, chosen and set up under one lock
//! (`/run/unplug/kernelcut.lock`), so two runs never share it.
//!
//! [`sweep`] (at every kernel run's start, and `unplug sweep`) deletes each `unplug-PID-START`
//! namespace whose owner is gone, and each `uplPIDh` link no live namespace owns. The rules
//! live inside the namespace and go with it. [`Netns`] removes its own on drop: the normal
//! end, an error, a panic, SIGINT and SIGTERM all drop it; a SIGKILL leaves it to the next
//! sweep.

use std::process::Command;

use anyhow::Context;

pub use crate::cut::CutLayer;

/// iproute2's `ip`.
pub const IP: &str = "ip";
const NFT: &str = "nft";

/// A name prefix no one else uses: namespaces `unplug-PID`, host links `uplPIDh`.
const NS_PREFIX: &str = "unplug-";
const LINK_PREFIX: &str = "upl";

/// Why a kernel cut cannot be set up: said with what to do.
pub fn check_privilege() -> anyhow::Result<()> {
    if !has_capabilities() {
        anyhow::bail!(
            "a kernel cut (--cut kernel|link, layer = \"kernel\") needs root or CAP_NET_ADMIN: run as root, or `setcap cap_net_admin,cap_sys_admin+ep` on unplug"
        );
    }
    for (tool, pkg) in [(IP, "iproute2"), (NFT, "nftables")] {
        if find(tool).is_none() {
            anyhow::bail!(
                "a kernel cut needs `{tool}`: apt-get install {pkg} (or scripts/setup.sh)"
            );
        }
    }
    Ok(())
}

/// CAP_NET_ADMIN (bit 12: links, addresses, nftables) and CAP_SYS_ADMIN (bit 21: `ip netns
/// add` mounts the namespace) in this process's effective set; root has both.
fn has_capabilities() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|c| c & (1 << 12) != 0 && c & (1 << 21) != 0)
}

fn find(tool: &str) -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(Into::into));
    dirs.into_iter().map(|d| d.join(tool)).find(|p| p.is_file())
}

fn run(tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let path = find(tool).with_context(|| format!("`{tool}` not found"))?;
    let out = Command::new(path)
        .args(args)
        .output()
        .with_context(|| format!("running {tool} {}", args.join(" ")))?;
    if !out.status.success() {
        anyhow::bail!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn output(tool: &str, args: &[&str]) -> String {
    find(tool)
        .and_then(|p| Command::new(p).args(args).output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The namespace and veth of the run whose runner has pid `pid`, started at `start`
/// ([`start_time`]): (namespace, host link, namespace link). A link name has 15 bytes, room
/// for the pid only; the namespace's name says whose it is.
pub fn names(pid: u32, start: u64) -> (String, String, String) {
    (
        format!("{NS_PREFIX}{pid}-{start}"),
        format!("{LINK_PREFIX}{pid}h"),
        format!("{LINK_PREFIX}{pid}n"),
    )
}

/// The /30s of 10.222.0.0/16: slot `i` is 10.222.0.0 + 4i.
const SLOTS: u32 = 16384;
const NET: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 222, 0, 0);

/// The /30 of slot `i` in 10.222.0.0/16: (host end, namespace end).
pub fn addresses(slot: u32) -> (std::net::Ipv4Addr, std::net::Ipv4Addr) {
    let base = u32::from(NET) + (slot % SLOTS) * 4;
    (
        std::net::Ipv4Addr::from(base + 1),
        std::net::Ipv4Addr::from(base + 2),
    )
}

/// The slot of each address of 10.222.0.0/16 in `ip -o -4 addr show`'s lines.
fn used_slots(ip_addr_lines: &str) -> std::collections::HashSet<u32> {
    ip_addr_lines
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|t| *t == "inet")?;
            let addr: std::net::Ipv4Addr = w.next()?.split('/').next()?.parse().ok()?;
            let off = u32::from(addr).checked_sub(u32::from(NET))?;
            (off < SLOTS * 4).then_some(off / 4)
        })
        .collect()
}

/// The first slot from `from` on (wrapping) that `used` does not hold.
fn free_slot(used: &std::collections::HashSet<u32>, from: u32) -> Option<u32> {
    (0..SLOTS)
        .map(|k| (from + k) % SLOTS)
        .find(|s| !used.contains(s))
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat` field 22); None
/// when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    stat_start(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of a `/proc/PID/stat` line. Field 2, the command, is in parentheses and may hold
/// anything, spaces and parentheses too: the fields are counted after the last ')'.
fn stat_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// A namespace name's owner: (pid, start time); a name of an older unplug (`unplug-PID`)
/// has no start time.
fn owner_of(ns: &str) -> Option<(u32, Option<u64>)> {
    let rest = ns.strip_prefix(NS_PREFIX)?;
    match rest.split_once('-') {
        Some((pid, start)) => Some((pid.parse().ok()?, Some(start.parse().ok()?))),
        None => Some((rest.parse().ok()?, None)),
    }
}

/// Is the owner still the process that made it: that pid, started at that time (an older
/// name: that pid alive)?
fn owner_lives((pid, start): (u32, Option<u64>)) -> bool {
    match start {
        Some(t) => start_time(pid) == Some(t),
        None => std::path::Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// The lock every kernel run's set-up and every sweep hold: a /30 is chosen and its address
/// set while no other run can choose, and a sweep never sees a namespace half made.
struct SetupLock(#[allow(dead_code)] std::fs::File);

impl SetupLock {
    const DIR: &'static str = "/run/unplug";

    fn take() -> anyhow::Result<SetupLock> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
        let dir = std::path::Path::new(Self::DIR);
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
        let meta = std::fs::symlink_metadata(dir)?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if !meta.is_dir() || meta.uid() != me {
            anyhow::bail!(
                "{} is not a directory of this user's: remove it (it holds the kernel cuts' lock)",
                dir.display()
            );
        }
        let path = dir.join("kernelcut.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Held until the file is closed, by drop or by the process's death (even a SIGKILL).
        loop {
            // SAFETY: flock on a descriptor we own, open for the call's length.
            let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
            if r == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        Ok(SetupLock(file))
    }
}

/// Remove every namespace and host link a gone runner left; returns what was removed. Those
/// of live runs are left alone. Waits for a run's set-up in progress.
pub fn sweep() -> anyhow::Result<Vec<String>> {
    let _lock = SetupLock::take()?;
    Ok(sweep_locked())
}

fn sweep_locked() -> Vec<String> {
    let mut removed = Vec::new();
    let mut live_pids = std::collections::HashSet::new();
    for line in output(IP, &["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(owner) = owner_of(name) else {
            continue;
        };
        if owner_lives(owner) {
            live_pids.insert(owner.0);
        } else if run(IP, &["netns", "del", name]).is_ok() {
            removed.push(format!("netns {name}"));
        }
    }
    for line in output(IP, &["-o", "link", "show"]).lines() {
        // "12: upl123h@if11: <...>"
        let Some(name) = line
            .split(": ")
            .nth(1)
            .map(|n| n.split('@').next().unwrap_or(n))
        else {
            continue;
        };
        if let Some(pid) = name
            .strip_prefix(LINK_PREFIX)
            .and_then(|r| r.strip_suffix('h'))
            .and_then(|p| p.parse::<u32>().ok())
        {
            // A run makes its namespace before its link: a host link whose runner has no
            // live namespace is a leftover.
            if !live_pids.contains(&pid) && run(IP, &["link", "del", name]).is_ok() {
                removed.push(format!("link {name}"));
            }
        }
    }
    removed
}

/// willy's network namespace, its veth pair and its nftables table; removed on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    pub host_link: String,
    pub ns_link: String,
    pub host_addr: std::net::Ipv4Addr,
    pub ns_addr: std::net::Ipv4Addr,
}

impl Netns {
    /// Sweep leftovers, then create this run's namespace, veth pair, addresses (the first
    /// free /30) and an empty nftables table with an input and an output chain, under the
    /// set-up lock.
    pub fn create() -> anyhow::Result<Netns> {
        check_privilege()?;
        let _lock = SetupLock::take()?;
        sweep_locked();
        let pid = std::process::id();
        let start = start_time(pid).context("reading this process's start time")?;
        let (name, host_link, ns_link) = names(pid, start);
        // Our own earlier leftovers (a pid reused by this runner) go first.
        let _ = run(IP, &["netns", "del", &name]);
        let _ = run(IP, &["link", "del", &host_link]);
        let used = used_slots(&output(IP, &["-o", "-4", "addr", "show"]));
        let slot = free_slot(&used, pid % SLOTS)
            .context("every /30 of 10.222.0.0/16 is in use: run `unplug sweep`")?;
        let (host_addr, ns_addr) = addresses(slot);
        let ns = Netns {
            name,
            host_link,
            ns_link,
            host_addr,
            ns_addr,
        };
        ns.build()
            .with_context(|| format!("setting up network namespace {}", ns.name))?;
        Ok(ns)
    }

    fn build(&self) -> anyhow::Result<()> {
        let (n, h, l) = (&self.name, &self.host_link, &self.ns_link);
        run(IP, &["netns", "add", n])?;
        run(IP, &["link", "add", h, "type", "veth", "peer", "name", l])?;
        run(IP, &["link", "set", l, "netns", n])?;
        run(
            IP,
            &["addr", "add", &format!("{}/30", self.host_addr), "dev", h],
        )?;
        run(IP, &["link", "set", h, "up"])?;
        let ns = |args: &[&str]| {
            let mut a = vec!["netns", "exec", n, IP];
            a.extend_from_slice(args);
            run(IP, &a)
        };
        ns(&["addr", "add", &format!("{}/30", self.ns_addr), "dev", l])?;
        ns(&["link", "set", l, "up"])?;
        ns(&["link", "set", "lo", "up"])?;
        self.nft(&["add", "table", "inet", "unplug"])?;
        for chain in ["input", "output"] {
            self.nft(&[
                "add",
                "chain",
                "inet",
                "unplug",
                chain,
                &format!("{{ type filter hook {chain} priority 0 ; policy accept ; }}"),
            ])?;
        }
        Ok(())
    }

    /// nft inside the namespace.
    pub fn nft(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut a = vec!["netns", "exec", &self.name, NFT];
        a.extend_from_slice(args);
        run(IP, &a)
    }

    /// The namespace's ruleset, as `nft list ruleset` prints it.
    pub fn ruleset(&self) -> String {
        output(IP, &["netns", "exec", &self.name, NFT, "list", "ruleset"])
    }

    /// Put a cut in effect: `rules` are (chain, rule) pairs; `link_down` takes the veth down.
    pub fn cut(&self, cut: &KernelCut) -> anyhow::Result<()> {
        match cut {
            KernelCut::Rules(rules) => {
                for (chain, rule) in rules {
                    let mut a = vec!["add", "rule", "inet", "unplug", chain];
                    a.extend(rule.split(' '));
                    self.nft(&a)?;
                }
                Ok(())
            }
            KernelCut::LinkDown => run(IP, &["link", "set", &self.host_link, "down"]),
        }
    }

    /// Lift every cut: the chains flushed, the link up.
    pub fn heal(&self) -> anyhow::Result<()> {
        for chain in ["input", "output"] {
            self.nft(&["flush", "chain", "inet", "unplug", chain])?;
        }
        run(IP, &["link", "set", &self.host_link, "up"])
    }

    /// Remove the namespace (its end of the veth, so the pair, and its rules go with it) and
    /// the host link if it is still there.
    pub fn remove(&self) -> anyhow::Result<()> {
        let ns = run(IP, &["netns", "del", &self.name]);
        let exists =
            output(IP, &["-o", "link", "show", "dev", &self.host_link]).contains(&self.host_link);
        if exists {
            run(IP, &["link", "del", &self.host_link])?;
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// A cut the kernel makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelCut {
    /// nftables rules: (chain, rule text).
    Rules(Vec<(&'static str, String)>),
    /// The host end of the veth goes down.
    LinkDown,
}

/// Which traffic a cut stops: willy -> broker (`up`), broker -> willy (`down`).
pub fn blackhole(up: bool, down: bool, link: &str) -> KernelCut {
    let mut rules = Vec::new();
    if up {
        rules.push(("output", format!("oifname {link} drop")));
    }
    if down {
        rules.push(("input", format!("iifname {link} drop")));
    }
    KernelCut::Rules(rules)
}

/// Every TCP segment either way answered with a RST: willy's own next one, and the host's.
pub fn reset(link: &str) -> KernelCut {
    KernelCut::Rules(vec![
        (
            "output",
            format!("oifname {link} meta l4proto tcp reject with tcp reset"),
        ),
        (
            "input",
            format!("iifname {link} meta l4proto tcp reject with tcp reset"),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runner_gets_its_own_names_and_slash_30() {
        assert_eq!(
            names(4242, 987654),
            (
                "unplug-4242-987654".into(),
                "upl4242h".into(),
                "upl4242n".into()
            )
        );
        // Linux's largest pid still fits the 15 bytes of an interface name.
        assert!(names(4_194_304, 0).1.len() <= 15);
        let (h, n) = addresses(4242);
        assert_eq!(h.octets()[..2], [10, 222]);
        assert_eq!(u32::from(n) - u32::from(h), 1);
        assert_eq!(u32::from(h) % 4, 1);
    }

    #[test]
    fn a_slash_30_in_use_is_never_chosen_again() {
        // Two runs whose pids differ by 16384 (the old pid % 16384 gave both slot 100).
        let lines =
            "5: upl100h    inet 10.222.1.145/30 scope global upl100h\\       valid_lft forever\n\
                     6: eth0    inet 192.168.1.7/24 brd 192.168.1.255 scope global eth0\n";
        let used = used_slots(lines);
        assert_eq!(used, [100].into());
        assert_eq!(free_slot(&used, 16484 % SLOTS), Some(101));
        assert_eq!(free_slot(&used, 7), Some(7));
        let all: std::collections::HashSet<u32> = (0..SLOTS).collect();
        assert_eq!(free_slot(&all, 0), None);
        let mut last = all.clone();
        last.remove(&3);
        assert_eq!(free_slot(&last, 16000), Some(3), "it wraps");
    }

    #[test]
    fn a_namespace_is_its_owners_only_while_that_process_lives() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(owner_lives(owner_of(&names(me, start).0).unwrap()));
        // The same pid with another start time: the process that made it is gone.
        assert!(!owner_lives(owner_of(&names(me, start + 1).0).unwrap()));
        // A name of an older unplug: its pid alone.
        assert_eq!(owner_of(&format!("unplug-{me}")), Some((me, None)));
        assert!(owner_lives((me, None)));
        assert_eq!(owner_of("unplug-x-1"), None);
        assert_eq!(owner_of("other-1-2"), None);
    }

    #[test]
    fn the_start_time_is_read_past_a_command_with_spaces_and_parentheses() {
        let fields: Vec<String> = (3..=30).map(|i| i.to_string()).collect();
        let stat = format!("4242 (a) (b c) {}", fields.join(" "));
        assert_eq!(stat_start(&stat), Some(22));
        assert_eq!(stat_start("4242 (x) S 1"), None);
        assert!(start_time(std::process::id()).is_some_and(|t| t > 0));
        assert_eq!(start_time(u32::MAX), None);
    }

    #[test]
    fn a_one_way_blackhole_drops_one_chain() {
        assert_eq!(
            blackhole(true, false, "upl1n"),
            KernelCut::Rules(vec![("output", "oifname upl1n drop".into())])
        );
    }
}
