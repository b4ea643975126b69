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
//! The modules live in the workspace's crates, one floor each (docs/ARCHITECTURE.md has the
//! table): `unplug-wire` (mqtt, tap), `unplug-model` (scenario, check_id, timing, profile,
//! cut, event, fsx, lifeline), `unplug-judge` (judge), `unplug-report` (report, repeat),
//! `unplug-net` (proxy, tls, kernelcut), `unplug-run` (runner, broker, actor, driver, fleet,
//! limits, logcapture, progress, shard), and this crate on top (suite, compare, conformance,
//! probe, reference, toxi, and the binary). They are re-exported here under their old names.
//! - [`mqtt`]: the protocol's vocabulary, depending on nothing: packet kinds and names, topic
//!   filters, DISCONNECT forms and their bytes; [`tap`] the decoder and framing.
//! - [`scenario`]: the validated `Scenario` and the built-in scenarios; `parse.rs` one parser
//!   per table, `faults.rs` a `[[faults]]` entry's kind, `unparse.rs` a journal's scenario
//!   written back as its file and put through the same parser.
//! - [`runner`]: one run as named steps, from starting the broker to writing the files;
//!   `stage.rs` sets up the broker and proxy, wires the actors and tears them down,
//!   `extras.rs` starts the twin, pubby, a flaky monit's absence and the late subscriber at
//!   their moments, `fault_plan.rs` puts faults in effect at theirs, `outcome.rs` says when
//!   there is nothing more to learn.
//! - [`broker`]: the brokers (rumqttd in-process, mosquitto, a URL), their timing profiles,
//!   recognising a URL broker (`recognise.rs`), its login and refusals (`access.rs`).
//! - [`proxy`]: the fault-injecting TCP proxy: listener, links (one write per chunk), network
//!   state; the wire tap decodes and records on a recorder thread, off the forwarding path;
//!   `idle.rs` an intermediary's idle timeout, `wsgate.rs` WebSocket frames a fault takes,
//!   `piece.rs` what both gates cut a chunk into.
//! - [`toxi`]: `unplug proxy`, the proxy in front of a real device: toxiproxy's HTTP API over
//!   it (`api.rs`), its toxics as our faults (`model.rs`), its command line (`control.rs`),
//!   the live page on its port: the journals folded for it (`page.rs`), its routes and
//!   guard (`ui.rs`), its assets in `report/page/` (inside the binary).
//! - [`probe`]: the battery that gives a broker its row of the will table (`unplug probe`).
//! - [`actor`]: willy (the client that is cut off), monit (the subscriber), pubby, the twin;
//!   helpers they share in `actor/mod.rs`.
//! - [`driver`]: willy drivers: willy's client library in a program of its own behind a JSON
//!   line protocol (`protocol.rs`), found and started by `process.rs`, its cycles run by
//!   `cycles.rs`, what it prints read in bounded memory by `output.rs`; mqtt.js and paho
//!   ship in `drivers/`.
//! - [`kernelcut`]: cuts in the kernel: a driver willy in a network namespace of its own on a
//!   veth pair, nftables rules and the link going down; leftovers of gone runs swept (by
//!   the owner's pid and start time; `unplug sweep`).
//! - [`event`]: the journal: typed records (`mod.rs`), their log lines (`format.rs`), a wire
//!   packet's typed parts as the JSONL spells them (`packet.rs`), the writer (`journal.rs`),
//!   a saved journal read back capped and checked (`read.rs`), a journal kept within a
//!   budget by thinning PUBLISH floods and read back thinned (`thin.rs`), and the flood
//!   summaries `unplug proxy` prints (`live.rs`); a run's journal keeps its records for the
//!   checks, `unplug proxy`'s streams them to disk only; the terminal echo is the caller's,
//!   handed in.
//! - [`judge`]: the spec checks, pure over records: `facts` (the journal reduced; pubby's
//!   deliveries and a flaky monit in `facts/`; `live` keeps them as a run goes, from only the
//!   records the control loop has not seen), `timing` (the model crate's, the one home of the spec's arithmetic:
//!   1.5 x keepalive, will delay, every allowance), `spec/`
//!   (one file per family, findings keyed by [`judge::CheckId`]), the profile applied once;
//!   `layers` the layers beside MQTT's keepalive (idle timeout, Server Keep Alive, WebSocket).
//! - [`report`]: the summary JSON and tables; `svg/` the pictures (writer, timeline, legend,
//!   compare); `rejudge` judges a saved journal again (`unplug judge`).
//! - [`fleet`]: many willies (`[fleet]`, the `will-storm` scenario): a lean client of our own
//!   (`client.rs`), the figures and checks from the records (`figures.rs`), the harness
//!   measuring itself (`harness.rs`: open-file limit, CPU, peak RSS, event-loop lag); one
//!   fleet split into shards (`shard.rs`: `--partition K/N`, its willies, topics and shared
//!   cut, `NAME.willies.json`) and merged again (`merge.rs`).
//! - [`suite`]: running many scenarios as child processes.
//! - [`compare`]: the brokers x transports matrix and its side-by-side table.
//! - [`repeat`]: one scenario (or cell) N times, read as a distribution (`--repeat`).
//! - [`shard`]: a batch (or a fleet) split across machines (`--partition K/N`, `--start-at`)
//!   and its shards' manifests, put back together by `unplug merge`.
//! - [`logcapture`]: the broker's tracing output as journal lines.
//! - [`fsx`]: files the harness owns: created fresh, never written through a symlink.
//! - [`lifeline`]: child processes that die with their parent; SIGINT and SIGTERM.
//! - [`limits`]: the sizes MQTT, our brokers and our clients allow, checked before a run.
//! - [`tls`]: the harness's own certificates (a CA per run, in the run's private temp dir)
//!   and the TLS ends of the proxy and the clients.
//! - [`conformance`]: the built-in scenarios against each broker, as a table of checks.
//! - [`progress`]: the progress line a run prints while it waits (the phase, the deadline).
//! - [`check_id`], [`cut`], [`profile`]: the check names, where a cut acts, the brokers'
//!   timing profiles (the model crate's; [`judge::CheckId`] and [`broker::profile`] re-export
//!   them).
//! - [`reference`]: docs/reference.md written from the code (checks, profiles, timing keys,
//!   scenarios, exit codes); a test keeps the committed file current.
//!
//! The binary is apart from this library: `src/main.rs` names the commands and dispatches them;
//! `src/cli/` holds each command's flags and work (`info`, `run`, `batch`, `probe`) and the
//! flags and child-run helpers they share (`args`, `children`).

// The workspace's crates, floor by floor (docs/ARCHITECTURE.md); their modules re-exported so
// `unplug::judge::Facts` reads as it always has.
pub use unplug_judge::judge;
pub use unplug_model::{check_id, cut, event, fsx, lifeline, mqtt, profile, scenario, tap, timing};
pub use unplug_net::{kernelcut, proxy, tls};
pub use unplug_report::{repeat, report};
pub use unplug_run::{actor, broker, driver, fleet, limits, logcapture, progress, runner, shard};

pub mod compare;
pub mod conformance;
pub mod probe;
pub mod reference;
pub mod suite;
pub mod toxi;
