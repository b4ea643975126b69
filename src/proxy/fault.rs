//! What the network does to bytes right now: a small state every link consults per chunk.
//!
//! A fault is a decision, not a process: applying one changes [`NetState`], and each link decides
//! what happens to the next chunk from it. Healing restores the default, at any moment.

use crate::scenario::{Direction, FaultKind, NewConnections};

/// Which way bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// willy -> broker.
    Up,
    /// broker -> willy.
    Down,
}

/// The network as the links see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetState {
    /// willy -> broker bytes are swallowed.
    pub blackhole_up: bool,
    /// broker -> willy bytes are swallowed.
    pub blackhole_down: bool,
    /// New connections are refused (the listener is closed).
    pub refuse_new: bool,
}

/// What a link does with a chunk it has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
}

impl NetState {
    /// The state with `kind` applied on top.
    pub fn with(mut self, kind: &FaultKind, new_connections: NewConnections) -> NetState {
        match kind {
            FaultKind::Blackhole { direction } => {
                self.blackhole_up |= *direction != Direction::Downstream;
                self.blackhole_down |= *direction != Direction::Upstream;
                self.refuse_new |= new_connections == NewConnections::Refuse;
            }
        }
        self
    }

    pub fn verdict(&self, flow: Flow) -> Verdict {
        let swallowed = match flow {
            Flow::Up => self.blackhole_up,
            Flow::Down => self.blackhole_down,
        };
        if swallowed {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }

    /// A new connection cannot be completed: it is held until the network comes back, like a
    /// SYN retransmitted into a dead link.
    pub fn holds_new(&self) -> bool {
        self.blackhole_up && self.blackhole_down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blackhole_both_drops_both_ways_and_holds_new_connections() {
        let s = NetState::default().with(
            &FaultKind::Blackhole {
                direction: Direction::Both,
            },
            NewConnections::Hang,
        );
        assert_eq!(s.verdict(Flow::Up), Verdict::Drop);
        assert_eq!(s.verdict(Flow::Down), Verdict::Drop);
        assert!(s.holds_new());
        assert!(!s.refuse_new);
    }

    #[test]
    fn upstream_blackhole_lets_the_broker_still_talk() {
        let s = NetState::default().with(
            &FaultKind::Blackhole {
                direction: Direction::Upstream,
            },
            NewConnections::Hang,
        );
        assert_eq!(s.verdict(Flow::Up), Verdict::Drop);
        assert_eq!(s.verdict(Flow::Down), Verdict::Pass);
        assert!(!s.holds_new());
    }

    #[test]
    fn refuse_is_recorded() {
        let s = NetState::default().with(
            &FaultKind::Blackhole {
                direction: Direction::Both,
            },
            NewConnections::Refuse,
        );
        assert!(s.refuse_new);
    }

    #[test]
    fn healthy_network_passes_everything() {
        let s = NetState::default();
        assert_eq!(s.verdict(Flow::Up), Verdict::Pass);
        assert_eq!(s.verdict(Flow::Down), Verdict::Pass);
    }
}
