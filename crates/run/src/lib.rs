//! One run, from starting the broker to writing the files: the [`runner`] and what it starts:
//! the brokers ([`broker`]), willy, monit, pubby and the twin ([`actor`]), willy drivers
//! ([`driver`]), many willies ([`fleet`]); the limits checked before a run ([`limits`]), the
//! broker's log as journal lines ([`logcapture`]), the progress line ([`progress`]), and a
//! batch or fleet split across machines ([`shard`]).
//!
//! The floors below are re-exported so a path reads the same in every crate.

pub use unplug_judge::judge;
pub use unplug_model::{check_id, cut, event, fsx, lifeline, mqtt, profile, scenario, tap, timing};
pub use unplug_net::{kernelcut, proxy, tls};
pub use unplug_report::{repeat, report};

pub mod actor;
pub mod broker;
pub mod driver;
pub mod fleet;
pub mod limits;
pub mod logcapture;
pub mod progress;
pub mod runner;
pub mod shard;
