//! willy drivers: willy's cycles run by the harness, its client library in a program of its own.
//!
//! ```text
//!  runner (driver::cycles: the seed's cycles, reconnects, fault moments)
//!     | stdin: {"cmd":"connect",...} {"cmd":"publish",...} {"cmd":"disconnect"} {"cmd":"quit"}
//!     v
//!  driver program (drivers/mqttjs/driver.js, drivers/paho/driver.py, cmd:PATH, or
//!                  `unplug driver-rumqttc`: rumqttc for a kernel cut)
//!     | stdout: {"report":"connected","ms":..,"says":".."} ... one JSON line per report
//!     v
//!  runner: each report -> a willy line in the journal (stamped on arrival), the library's
//!          own words beside it
//! ```
//!
//! [`WillyKind`] names the client (`--willy`, the scenario's `willy` key); rumqttc is built in
//! and stays the default: in the runner's process with the proxy cut, and as a driver of its
//! own (`unplug driver-rumqttc`, [`rumqttc_driver`]) when a kernel cut needs willy in a
//! namespace. [`protocol`] is the line protocol (docs/guide.md, "willy drivers"),
//! [`process`] finds and starts a driver, [`cycles`] runs willy's cycles through it,
//! [`output`] reads what the driver prints (lines capped, notes rate-limited).

pub mod cycles;
pub mod output;
pub mod process;
pub mod protocol;
pub mod rumqttc_driver;

/// Which client library willy is: a scenario's word, so it lives with the scenario.
pub use crate::scenario::WillyKind;
