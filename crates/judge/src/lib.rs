//! The judge: the spec checks as pure functions of (scenario, broker profile, records) ->
//! checks. No I/O, no clock, no network: a saved journal is judged exactly as a live run is.
//! See [`judge`].
//!
//! The floors below are re-exported so a path reads the same in every crate.

pub use unplug_model::{check_id, cut, event, fsx, lifeline, mqtt, profile, scenario, tap, timing};

pub mod judge;
