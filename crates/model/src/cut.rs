//! Where a network fault acts: in the proxy (userspace, the default), or in the kernel.

/// A network fault's layer (`layer` in a `[[faults]]` entry, `--cut` for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutLayer {
    /// The proxy forwards nothing (or resets): its kernel still ACKs what willy sends.
    #[default]
    Proxy,
    /// nftables rules in willy's network namespace: drops (blackhole), `reject with tcp
    /// reset` (reset). Unacknowledged data, retransmissions and timeouts are the kernel's.
    Kernel,
    /// The veth between willy's namespace and the host goes down: the cable pulled.
    Link,
}

impl CutLayer {
    pub fn as_str(self) -> &'static str {
        match self {
            CutLayer::Proxy => "proxy",
            CutLayer::Kernel => "kernel",
            CutLayer::Link => "link",
        }
    }

    /// willy needs a network namespace of its own.
    pub fn in_kernel(self) -> bool {
        self != CutLayer::Proxy
    }
}

impl std::str::FromStr for CutLayer {
    type Err = String;
    fn from_str(s: &str) -> Result<CutLayer, String> {
        match s.trim() {
            "proxy" => Ok(CutLayer::Proxy),
            "kernel" => Ok(CutLayer::Kernel),
            "link" => Ok(CutLayer::Link),
            other => Err(format!(
                "unknown cut layer {other:?} (expected proxy, kernel or link)"
            )),
        }
    }
}
