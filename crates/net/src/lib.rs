//! The network between willy and the broker: the fault-injecting [`proxy`] with its wire tap
//! (decoding through the wire crate) and fault gates, TLS ending and the harness's certificates
//! ([`tls`]), and cuts in the kernel ([`kernelcut`]: nftables rules, a veth pair, a link
//! going down). Knows scenarios and journal records; knows nothing of brokers, clients or
//! the judge.
//!
//! The floors below are re-exported so a path reads the same in every crate.

pub use unplug_model::{check_id, cut, event, fsx, lifeline, mqtt, profile, scenario, tap, timing};

pub mod kernelcut;
pub mod proxy;
pub mod tls;
