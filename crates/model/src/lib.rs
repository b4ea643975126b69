//! What a run is, the floor every other crate stands on beside the wire: the validated
//! [`scenario`], the check ids ([`check_id`]), the spec's keepalive arithmetic ([`timing`]: its
//! only home), the broker timing profiles ([`profile`]), where a cut acts ([`cut`]), the journal's
//! records and their writer and reader ([`event`]), and the files and child processes the
//! harness owns ([`fsx`], [`lifeline`]).
//!
//! The wire's modules are re-exported here ([`mqtt`], [`tap`]) so a path reads the same in
//! every crate: `crate::mqtt::PacketKind`.

pub use unplug_wire::{mqtt, tap};

pub mod check_id;
pub mod cut;
pub mod event;
pub mod fsx;
pub mod lifeline;
pub mod profile;
pub mod scenario;
pub mod timing;
