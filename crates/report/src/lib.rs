//! Reporting: the summary JSON and tables, the SVG pictures, the results index, a saved
//! journal judged again ([`report`]), and a scenario run N times read as a distribution
//! ([`repeat`]). Reads journals and checks; runs nothing.
//!
//! The floors below are re-exported so a path reads the same in every crate.

pub use unplug_judge::judge;
pub use unplug_model::{check_id, cut, event, fsx, lifeline, mqtt, profile, scenario, tap, timing};

pub mod repeat;
pub mod report;
