//! The subcommands' homes: each file owns its commands' flags (a clap `Args` struct) and the
//! work from parsed flags to an exit code; `main.rs` names the commands and dispatches.
//!
//! ```text
//! main.rs: Cli -> Command --dispatch--> info.rs      list, profiles, judge, index, sweep (run nothing)
//!                                   \-> run.rs       scenario (one run in this process)
//!                                   \-> batch.rs     suite, compare, conformance (child runs)
//!                                   \-> probe.rs     probe (the will table's battery)
//!                                   \-> merge.rs     merge (shards of a batch or a fleet put together)
//!                                   \-> storm.rs     storm (a fleet in N shard processes, merged)
//!          shared by them: args.rs     broker, timing, name and transport flags; --junit/--json
//!                          children.rs running many child runs; their picture and exit code
//! ```

pub mod args;
pub mod batch;
pub mod children;
pub mod info;
pub mod merge;
pub mod probe;
pub mod run;
pub mod storm;
