//! Pictures of runs, drawn from the records and the summary alone: data in, SVG text out.
//!
//! ```text
//!  NAME.events.jsonl + NAME.summary.json --render_run-----> NAME.svg   one run's timeline
//!  [Summary] ----------------------------render_compare--> SUITE.svg / COMPARE.svg  runs side by side
//!  Repeated (N runs of one scenario) ----render_repeat---> NAME.repeat.svg  each figure's spread
//! ```
//!
//! The timeline has one lane per actor (willy, the proxy's wire tap, the broker, monit) on a
//! shared time axis, with the cycles as bands, faults hatched, and the intervals the checks judge
//! as labelled brackets under the lanes. Meaning is carried by shape and dash as well as colour,
//! so a greyscale print still reads.
//!
//! The SVG is written by hand through a tiny writer: every number has one decimal and every list
//! is walked in record order, so the same records always give the same bytes (the golden test
//! relies on it). Text widths are estimated from DejaVu Sans metrics, a little generously, and
//! labels are shelved so that none overlaps another.

mod compare;
mod fleet;
mod legend;
mod repeat;
mod timeline;
mod writer;

pub use compare::{render_compare, render_compare_rows, write_compare, CompareRow};
pub use fleet::render_fleet;
pub use repeat::render_repeat;
pub use timeline::{render_run, render_run_as, write_run, BRACKETS, LANES};
pub use writer::{secs, text_width, WIDTH};
