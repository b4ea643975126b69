//! The wire, the workspace's ground floor: MQTT 3.1.1 and 5 packets and WebSocket frames,
//! encoded ([`mqtt`]: the exact packet forms our clients and the proxy's faults write) and
//! decoded ([`tap`]: the wire tap's incremental decoder and the whole-buffer framing the fault
//! gate uses). No I/O and no other crate of the workspace: everything above reads bytes
//! through this crate.

pub mod mqtt;
pub mod tap;
