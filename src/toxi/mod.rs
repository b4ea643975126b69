//! `unplug proxy`: the fault proxy and wire tap in front of a real device, driven by toxiproxy's
//! HTTP API.
//!
//! ```text
//!  device --TCP--> unplug proxy --listen A --upstream B --> broker B
//!                      |  the same Proxy a scenario run uses: links, faults, wire tap
//!                      |  journal: DIR/NAME.events.jsonl, DIR/NAME.log; live lines on the terminal
//!  toxiproxy client --HTTP :8474--> api.rs (toxiproxy's endpoints) --model.rs--> faults
//!  unplug proxy cut|heal|toxic|list --HTTP--> the same API (control.rs)
//!  Ctrl-C --> every proxy closes its connections, settles its journal, exit 0
//! ```
//!
//! - `model.rs`: toxiproxy's toxics, attributes and errors, and the faults each one means (pure).
//! - `api.rs`: the proxies of one `unplug proxy` process and the HTTP routes over them.
//! - `control.rs`: the command line, serving and controlling.
//! - `judge.rs`: the scenario a proxy's journal amounts to (`unplug judge PROXY.events.jsonl`).
//! - `page.rs`: what the live page shows, folded from each proxy's journal and told to the
//!   open pages; `ui.rs` its routes on the API port (`/ui`), guarded by a per-process token.
//! - `watch.rs`: monit for a device: subscribes at the broker to each will the tap saw.

pub mod api;
pub mod control;
pub mod judge;
pub mod model;
pub mod page;
pub mod ui;
pub mod watch;
