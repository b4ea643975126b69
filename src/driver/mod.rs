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

use std::fmt;
use std::path::PathBuf;

pub mod cycles;
pub mod output;
pub mod process;
pub mod protocol;
pub mod rumqttc_driver;

/// Which client library willy is.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WillyKind {
    /// rumqttc 0.25.1 (the default): in the runner's own process, or, for a kernel cut, as the
    /// driver `unplug driver-rumqttc` in willy's namespace.
    #[default]
    Rumqttc,
    /// mqtt.js (npm `mqtt`), the seed's client, through drivers/mqttjs/driver.js.
    Mqttjs,
    /// paho-mqtt 2.x (PyPI), through drivers/paho/driver.py.
    Paho,
    /// Any program that speaks the driver line protocol.
    Cmd(PathBuf),
}

impl WillyKind {
    /// A driver program always (anything but the built-in rumqttc, which is a driver only for
    /// a kernel cut: see `Scenario::willy_runs_as_driver`).
    pub fn is_driver(&self) -> bool {
        *self != WillyKind::Rumqttc
    }

    /// The name in tables and file names: `rumqttc`, `mqttjs`, `paho`, `cmd`.
    pub fn label(&self) -> &'static str {
        match self {
            WillyKind::Rumqttc => "rumqttc",
            WillyKind::Mqttjs => "mqttjs",
            WillyKind::Paho => "paho",
            WillyKind::Cmd(_) => "cmd",
        }
    }
}

impl fmt::Display for WillyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WillyKind::Cmd(p) => write!(f, "cmd:{}", p.display()),
            other => f.write_str(other.label()),
        }
    }
}

impl std::str::FromStr for WillyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<WillyKind, String> {
        match s.trim() {
            "rumqttc" => Ok(WillyKind::Rumqttc),
            "mqttjs" | "mqtt.js" => Ok(WillyKind::Mqttjs),
            "paho" => Ok(WillyKind::Paho),
            other => match other.strip_prefix("cmd:") {
                Some(p) if !p.is_empty() => Ok(WillyKind::Cmd(PathBuf::from(p))),
                _ => Err(format!(
                    "unknown willy {other:?} (expected rumqttc, mqttjs, paho or cmd:PATH)"
                )),
            },
        }
    }
}

impl TryFrom<String> for WillyKind {
    type Error = String;
    fn try_from(s: String) -> Result<WillyKind, String> {
        s.parse()
    }
}

impl From<WillyKind> for String {
    fn from(w: WillyKind) -> String {
        w.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::WillyKind;

    #[test]
    fn willy_kinds_read_back_as_written() {
        for s in ["rumqttc", "mqttjs", "paho", "cmd:/usr/local/bin/my-driver"] {
            let w: WillyKind = s.parse().unwrap();
            assert_eq!(w.to_string(), s);
        }
        assert!("cmd:".parse::<WillyKind>().is_err());
        assert!("hivemq"
            .parse::<WillyKind>()
            .unwrap_err()
            .contains("expected rumqttc"));
    }
}
