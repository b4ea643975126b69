//! Finding a willy driver and starting it as a child process that dies with the runner.
//!
//! ```text
//!  WillyKind --resolve--> Launch { program, args, env }   (missing runtime or package: an
//!                                                          error naming the install command)
//!  Launch --spawn (optionally `ip netns exec NS`)--> child: stdin piped, stdout piped
//! ```
//!
//! The driver programs are in the source tree (`drivers/`, or `$UNPLUG_DRIVER_DIR`); their
//! client libraries in `$UNPLUG_DRIVERS` (default `/opt/unplug-drivers`), where
//! `scripts/drivers.sh` installs them.

use std::path::{Path, PathBuf};

use super::WillyKind;

/// What `scripts/drivers.sh` installs, and how to say so.
pub const INSTALL: &str = "scripts/drivers.sh (or scripts/setup.sh)";

/// How to start one driver.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Why a driver cannot start: each names what is missing and how to install it.
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    #[error("willy mqttjs needs Node.js (`node` on PATH): apt-get install nodejs")]
    Node,
    #[error("willy mqttjs needs the npm package mqtt in {0}: run {INSTALL}")]
    MqttJs(String),
    #[error("willy paho needs paho-mqtt in the venv {0}: run {INSTALL} (python3 -m venv, pip install paho-mqtt==2.2.0)")]
    Paho(String),
    #[error("willy driver {0}: not found in the source tree (set UNPLUG_DRIVER_DIR to the drivers/ directory)")]
    Program(String),
    #[error("willy cmd:{0}: not an executable file")]
    Cmd(String),
    #[error("willy rumqttc through a kernel cut runs as `unplug driver-rumqttc`, but this program's own path is unknown: {0}")]
    OwnExe(String),
}

/// The source tree this binary was built from (the workspace's root, two floors above this
/// crate's manifest): where `drivers/` ships.
fn workspace_root() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().and_then(Path::parent).unwrap_or(here)
}

/// The driver programs' directory.
pub fn driver_dir() -> PathBuf {
    std::env::var_os("UNPLUG_DRIVER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("drivers"))
}

/// Where `scripts/drivers.sh` put the client libraries.
pub fn libraries_dir() -> PathBuf {
    std::env::var_os("UNPLUG_DRIVERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/unplug-drivers"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| is_executable(f))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How to start the scenario's willy as a driver; None for rumqttc in the runner's process
/// (the proxy cut). A kernel cut needs willy in a process of its own, so rumqttc there is
/// this program itself: `unplug driver-rumqttc` ([`super::rumqttc_driver`]).
pub fn resolve_for(s: &crate::scenario::Scenario) -> Result<Option<Launch>, Missing> {
    match &s.client {
        WillyKind::Rumqttc if s.willy_runs_as_driver() => {
            let exe = std::env::current_exe().map_err(|e| Missing::OwnExe(e.to_string()))?;
            Ok(Some(Launch {
                program: exe,
                args: vec!["driver-rumqttc".into()],
                env: Vec::new(),
            }))
        }
        kind => resolve(kind),
    }
}

/// How to start `kind`'s driver; None for the built-in rumqttc.
pub fn resolve(kind: &WillyKind) -> Result<Option<Launch>, Missing> {
    let libs = libraries_dir();
    let program = |rel: &str| {
        let p = driver_dir().join(rel);
        if p.is_file() {
            Ok(p.display().to_string())
        } else {
            Err(Missing::Program(p.display().to_string()))
        }
    };
    Ok(Some(match kind {
        WillyKind::Rumqttc => return Ok(None),
        WillyKind::Mqttjs => {
            let node = on_path("node").ok_or(Missing::Node)?;
            let modules = libs.join("mqttjs/node_modules");
            if !modules.join("mqtt/package.json").is_file() {
                return Err(Missing::MqttJs(modules.display().to_string()));
            }
            Launch {
                program: node,
                args: vec![program("mqttjs/driver.js")?],
                env: vec![(
                    "UNPLUG_MQTTJS_MODULES".into(),
                    modules.display().to_string(),
                )],
            }
        }
        WillyKind::Paho => {
            let venv = libs.join("paho");
            let python = venv.join("bin/python");
            let found = std::fs::read_dir(venv.join("lib")).ok().is_some_and(|d| {
                d.flatten().any(|py| {
                    py.path()
                        .join("site-packages/paho/mqtt/client.py")
                        .is_file()
                })
            });
            if !is_executable(&python) || !found {
                return Err(Missing::Paho(venv.display().to_string()));
            }
            Launch {
                program: python,
                args: vec!["-u".into(), program("paho/driver.py")?],
                env: Vec::new(),
            }
        }
        WillyKind::Cmd(p) => {
            if !is_executable(p) {
                return Err(Missing::Cmd(p.display().to_string()));
            }
            Launch {
                program: p.clone(),
                args: Vec::new(),
                env: Vec::new(),
            }
        }
    }))
}

impl Launch {
    /// The command, run inside network namespace `netns` when given (`ip netns exec`, which
    /// execs the driver: its pid is the driver's). Dies with the runner, even a SIGKILLed one.
    pub fn command(&self, netns: Option<&str>) -> tokio::process::Command {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = tokio::process::Command::new(crate::kernelcut::IP);
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => tokio::process::Command::new(&self.program),
        };
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        crate::lifeline::die_with_parent(&mut cmd, nix::sys::signal::Signal::SIGKILL);
        cmd
    }
}
