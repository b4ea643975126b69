//! Which client library willy is (`[willy] client`, `--willy`): rumqttc built in, or a driver
//! program (`crate::driver` in the run crate starts it).

use std::fmt;
use std::path::PathBuf;

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
