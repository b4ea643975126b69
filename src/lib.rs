//! unplug: cut an MQTT client off the network and measure when (if ever) the rest of the
//! system finds out.
//!
//! ```text
//! scenarios/NAME.toml --parse+validate--> Scenario (typed, Durations)
//!         |
//!       runner --starts--> broker (rumqttd in-process)
//!         |      --starts--> proxy (listener -> per connection: upstream link + downstream link)
//!         |                     each link: read -> [fault verdict] -> write
//!         |      --starts--> willy (rumqttc, through the proxy)
//!         |      --starts--> monit (rumqttc, straight to the broker)
//!         |      --applies-> faults at their triggers (cycle + moment + offset), heals them
//!         v
//!    journal: every record = { ms (monotonic since start), t (UTC), actor, event }
//!         |
//!         +--> judge: pure functions of (Scenario, broker profile, records) -> [Check]
//!         +--> report: NAME.log (seed compose style), NAME.events.jsonl, NAME.summary.json
//!         +--> suite: many runs (child processes of this binary) -> one table
//! ```
//!
//! # Layout
//! - [`mqtt`]: the protocol's vocabulary, depending on nothing: packet kinds and names, topic
//!   filters, DISCONNECT forms and their bytes.
//! - [`scenario`]: the validated `Scenario` and the built-in scenarios; `parse.rs` one parser
//!   per table, `faults.rs` a `[[faults]]` entry's kind.
//! - [`runner`]: one run, from starting the broker to writing the files; `fault_plan.rs` puts
//!   faults in effect at their moments, `outcome.rs` says when there is nothing more to learn.
//! - [`broker`]: the brokers (rumqttd in-process, mosquitto, a URL), their timing profiles,
//!   recognising a URL broker (`recognise.rs`), its login and refusals (`access.rs`).
//! - [`proxy`]: the fault-injecting TCP proxy: listener, links (one write per chunk), network
//!   state; the wire tap decodes and records on a recorder thread, off the forwarding path.
//! - [`probe`]: the battery that gives a broker its row of the will table (`unplug probe`).
//! - [`actor`]: willy (the client that is cut off), monit (the subscriber), pubby, the twin;
//!   helpers they share in `actor/mod.rs`.
//! - [`event`]: the journal: typed records (`mod.rs`), their log lines (`format.rs`), the
//!   writer and reader (`journal.rs`); the terminal echo is the runner's, handed in.
//! - [`judge`]: the spec checks, pure over records: `facts` (the journal reduced), `timing` (the
//!   one home of the spec's arithmetic: 1.5 x keepalive, will delay, every allowance), `spec/`
//!   (one file per family, findings keyed by [`judge::CheckId`]), the profile applied once.
//! - [`report`]: the summary JSON and tables; `svg/` the pictures (writer, timeline, legend,
//!   compare); `rejudge` judges a saved journal again (`unplug judge`).
//! - [`fleet`]: many willies (`[fleet]`, the `will-storm` scenario): a lean client of our own
//!   (`client.rs`), the figures and checks from the records (`figures.rs`), the harness
//!   measuring itself (`harness.rs`: open-file limit, CPU, peak RSS, event-loop lag).
//! - [`suite`]: running many scenarios as child processes.
//! - [`compare`]: the brokers x transports matrix and its side-by-side table.
//! - [`logcapture`]: the broker's tracing output as journal lines.
//! - [`fsx`]: files the harness owns: created fresh, never written through a symlink.
//! - [`lifeline`]: child processes that die with their parent; SIGINT and SIGTERM.
//! - [`limits`]: the sizes MQTT, our brokers and our clients allow, checked before a run.

pub mod actor;
pub mod broker;
pub mod compare;
pub mod conformance;
pub mod event;
pub mod fleet;
pub mod fsx;
pub mod judge;
pub mod lifeline;
pub mod limits;
pub mod logcapture;
pub mod mqtt;
pub mod probe;
pub mod progress;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod suite;
pub mod tap;
