//! A fault that cuts in the kernel: its rules put in willy's namespace (or its link taken
//! down) and recorded as the proxy records its own, so the checks measure from the same
//! moment (when willy's bytes last went through the proxy).

use crate::event::{Actor, Event};
use crate::kernelcut::{self, CutLayer, KernelCut, Netns};
use crate::proxy::Proxy;
use crate::scenario::{Direction, Fault, FaultKind};

/// What the kernel does for `f`.
fn cut_for(ns: &Netns, f: &Fault) -> Option<KernelCut> {
    match (&f.kind, f.layer) {
        (_, CutLayer::Link) => Some(KernelCut::LinkDown),
        (FaultKind::Blackhole { direction }, _) => Some(kernelcut::blackhole(
            *direction != Direction::Downstream,
            *direction != Direction::Upstream,
            &ns.ns_link,
        )),
        (FaultKind::Reset, _) => Some(kernelcut::reset(&ns.ns_link)),
        _ => None,
    }
}

pub(super) fn apply(proxy: &Proxy, ns: &Netns, n: u32, f: &Fault) {
    let journal = proxy.journal();
    let Some(cut) = cut_for(ns, f) else {
        return;
    };
    let said = match &cut {
        KernelCut::Rules(r) => r
            .iter()
            .map(|(chain, rule)| format!("{chain}: {rule}"))
            .collect::<Vec<_>>()
            .join("; "),
        KernelCut::LinkDown => format!("ip link set {} down", ns.host_link),
    };
    match ns.cut(&cut) {
        Ok(()) => {
            proxy.record_elsewhere_applied(n, &f.kind);
            journal.record(
                Actor::Runner,
                Event::Note {
                    message: format!("fault {n} in the kernel ({}): {said}", ns.name),
                },
            );
        }
        Err(e) => journal.record(
            Actor::Runner,
            Event::Note {
                message: format!("fault {n}: the kernel cut failed: {e:#}"),
            },
        ),
    }
}

pub(super) fn heal(proxy: &Proxy, ns: &Netns, n: u32, f: &Fault) {
    let journal = proxy.journal();
    match ns.heal() {
        Ok(()) => proxy.record_elsewhere_healed(n, &f.kind),
        Err(e) => journal.record(
            Actor::Runner,
            Event::Note {
                message: format!("fault {n}: lifting the kernel cut failed: {e:#}"),
            },
        ),
    }
}
