//! Cuts in the kernel: a driver willy in a network namespace of its own, joined to the host by
//! a veth pair; the proxy listens on the host end, so its wire tap still sees every byte that
//! crosses.
//!
//! ```text
//!  netns unplug-PID                         host
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
//! Every name carries the runner's pid, so a later run (or `unplug sweep`) removes what a dead
//! runner left: [`sweep`] deletes each `unplug-PID` namespace and `uplPIDh` link whose PID is
//! no live process. The rules live inside the namespace and go with it. [`Netns`] removes its
//! own on drop: the normal end, an error, a panic, SIGINT and SIGTERM all drop it; a SIGKILL
//! leaves it to the next sweep.

use std::process::Command;

use anyhow::Context;

mod layer;
pub use layer::CutLayer;

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

/// The namespace and veth of the run whose runner has pid `pid`.
pub fn names(pid: u32) -> (String, String, String) {
    (
        format!("{NS_PREFIX}{pid}"),
        format!("{LINK_PREFIX}{pid}h"),
        format!("{LINK_PREFIX}{pid}n"),
    )
}

/// The /30 of run `pid` in 10.222.0.0/16: (host end, namespace end).
pub fn addresses(pid: u32) -> (std::net::Ipv4Addr, std::net::Ipv4Addr) {
    let i = pid % 16384;
    let base = u32::from(std::net::Ipv4Addr::new(10, 222, 0, 0)) + i * 4;
    (
        std::net::Ipv4Addr::from(base + 1),
        std::net::Ipv4Addr::from(base + 2),
    )
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Remove every namespace and host link a dead runner left (names carry its pid); returns
/// what was removed. Those of live processes are left alone.
pub fn sweep() -> Vec<String> {
    let mut removed = Vec::new();
    for line in output(IP, &["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        {
            if !alive(pid) && run(IP, &["netns", "del", name]).is_ok() {
                removed.push(format!("netns {name}"));
            }
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
            if !alive(pid) && run(IP, &["link", "del", name]).is_ok() {
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
    /// Sweep leftovers, then create this run's namespace, veth pair, addresses and an empty
    /// nftables table with an input and an output chain.
    pub fn create() -> anyhow::Result<Netns> {
        check_privilege()?;
        sweep();
        let pid = std::process::id();
        let (name, host_link, ns_link) = names(pid);
        let (host_addr, ns_addr) = addresses(pid);
        // Our own earlier leftovers (a pid reused by this runner) go first.
        let _ = run(IP, &["netns", "del", &name]);
        let _ = run(IP, &["link", "del", &host_link]);
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
            names(4242),
            ("unplug-4242".into(), "upl4242h".into(), "upl4242n".into())
        );
        // Linux's largest pid still fits the 15 bytes of an interface name.
        assert!(names(4_194_304).1.len() <= 15);
        let (h, n) = addresses(4242);
        assert_eq!(h.octets()[..2], [10, 222]);
        assert_eq!(u32::from(n) - u32::from(h), 1);
        assert_eq!(u32::from(h) % 4, 1);
    }

    #[test]
    fn a_one_way_blackhole_drops_one_chain() {
        assert_eq!(
            blackhole(true, false, "upl1n"),
            KernelCut::Rules(vec![("output", "oifname upl1n drop".into())])
        );
    }
}
