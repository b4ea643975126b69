//! The stage a run plays on, and its actors: set up, wired, torn down.
//!
//! ```text
//!  Stage::set_up:    broker::start -> Proxy::start(broker listener) -> the scenario recorded
//!  Actors::wire:     fault plan (fires from willy's and monit's moments)
//!                    -> monit (subscribed) -> extras (pubby connects) -> willy (cycles)
//!  Actors::stop:     willy, monit and the extras stopped (then the proxy's records are
//!                    waited for: `Cast::tear_down`, population.rs)
//!  a fleet's stage: the same broker and proxy (spreading its sources); its own actors are
//!                    `crate::fleet`'s
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::extras::{Extras, FlakyMonit};
use super::fault_plan::FaultPlan;
use crate::actor::monit::Monit;
use crate::actor::willy::{Target, Willy};
use crate::actor::MomentHook;
use crate::broker::{self, Broker, BrokerChoice};
use crate::event::{Actor, Event, Journal};
use crate::proxy::tlsend::ProxyTls;
use crate::proxy::Proxy;
use crate::scenario::{FaultKind, Scenario, TlsTap};

/// The broker and the proxy in front of it.
pub(super) struct Stage {
    pub(super) broker: Broker,
    pub(super) proxy: Arc<Proxy>,
    /// willy's network namespace for a kernel cut; removed when the last holder drops it.
    pub(super) netns: Option<Arc<crate::kernelcut::Netns>>,
    /// Over TLS: what willy trusts (the proxy's certificate, or the broker's in pass-through).
    pub(super) willy_tls: Option<crate::tls::Trust>,
    /// The proxy's certificates for a broker that has none of ours (given by URL).
    _tls_files: Option<crate::broker::mosquitto::TempDir>,
}

/// A TLS run's parts: the proxy's TLS, what willy trusts, and the files behind them. Every
/// client that reaches the broker itself speaks TLS from here on (`access::set_tls`).
fn tls_setup(
    s: &Scenario,
    broker: &Broker,
    listen: std::net::IpAddr,
    journal: &Journal,
) -> anyhow::Result<(
    Option<ProxyTls>,
    Option<crate::tls::Trust>,
    Option<crate::broker::mosquitto::TempDir>,
)> {
    if !s.transport.is_tls() {
        crate::broker::access::set_tls(None);
        return Ok((None, None, None));
    }
    if s.tls_tap == TlsTap::PassThrough {
        if let Some(f) = s.faults.iter().find(|f| f.kind.sees_inside_tls()) {
            anyhow::bail!(
                "a {} fault needs to see inside TLS: run it with --tls-tap terminate",
                f.kind.label()
            );
        }
    }
    let trust = broker
        .trust
        .clone()
        .with_context(|| format!("{} has no TLS listener", broker.name))?;
    let to_broker = trust.client_config()?;
    crate::broker::access::set_tls(Some(to_broker.clone()));
    let (proxy, willy, files, how) = match s.tls_tap {
        TlsTap::Terminate => {
            // The proxy's own, naming the address willy reaches it at (a kernel cut: the
            // veth's host end), whatever certificates the broker has.
            let dir = crate::broker::mosquitto::TempDir::new()
                .context("creating a temp dir for the proxy's certificate")?;
            let certs = crate::tls::RunCerts::generate(dir.path(), &[listen])?;
            let files = Some(dir);
            let proxy = ProxyTls::Terminate {
                serve: certs.server_config()?,
                upstream: to_broker,
                name: trust.server_name()?,
                says: format!("the broker checked against {}", trust.describe()),
            };
            let how = "the proxy ends willy's TLS with the run's certificate and opens its own to the broker: the wire tap sees MQTT";
            (proxy, certs.trust(), files, how)
        }
        TlsTap::PassThrough => (
            ProxyTls::PassThrough,
            trust.clone(),
            None,
            "the proxy passes TLS through: the wire tap sees TLS records only",
        ),
    };
    journal.record(
        Actor::Runner,
        Event::Note {
            message: format!(
                "TLS: {how}; willy trusts {}; monit trusts {}",
                willy.describe(),
                trust.describe()
            ),
        },
    );
    Ok((Some(proxy), Some(willy), files))
}

impl Stage {
    /// Start the broker `choice` says and a proxy to its listener for the scenario's transport, and record
    /// the scenario, the run's start and the addresses.
    pub(super) async fn set_up(
        s: &Scenario,
        choice: &BrokerChoice,
        journal: &Journal,
    ) -> anyhow::Result<Stage> {
        let mut broker = broker::start_with(choice, journal, &s.broker).await?;
        let upstream = broker
            .endpoints
            .for_willy(&broker.name, s.transport, s.protocol)?;
        // A TLS run's monit, pubby and the rest reach the broker's TLS listeners.
        broker.endpoints = broker.endpoints.for_clients(&broker.name, s.transport)?;
        // A kernel cut: willy's namespace first, then the proxy on the veth's host end.
        let netns = if s.kernel_cut() {
            let ns = crate::kernelcut::Netns::create()?;
            journal.record(
                Actor::Runner,
                Event::Note {
                    message: format!(
                        "willy's network namespace {}: {} {} <-veth-> {} {} (host)",
                        ns.name, ns.ns_link, ns.ns_addr, ns.host_link, ns.host_addr
                    ),
                },
            );
            Some(Arc::new(ns))
        } else {
            None
        };
        let listen = netns
            .as_ref()
            .map_or(std::net::Ipv4Addr::LOCALHOST, |n| n.host_addr);
        let (proxy_tls, willy_tls, tls_files) = tls_setup(s, &broker, listen.into(), journal)?;
        let proxy = Arc::new(
            Proxy::start_on(
                listen.into(),
                upstream,
                journal.clone(),
                crate::proxy::Options {
                    publishes: s.publishes,
                    tls: proxy_tls,
                    // A fleet's willies reach a loopback broker from many sources.
                    spread_sources: s.fleet.is_some(),
                    ..Default::default()
                },
            )
            .await
            .context("starting the proxy")?,
        );
        record_run_start(journal, s, &broker);
        // A fleet says where its willies and monit go itself (`fleet::gather`).
        if s.fleet.is_none() {
            record_addresses(journal, s, &broker, &proxy, upstream);
        }
        Ok(Stage {
            broker,
            proxy,
            netns,
            willy_tls,
            _tls_files: tls_files,
        })
    }
}

/// Where the broker listens and willy's and monit's ways to it.
fn record_addresses(
    journal: &Journal,
    s: &Scenario,
    broker: &Broker,
    proxy: &Proxy,
    upstream: std::net::SocketAddr,
) {
    journal.record(
        Actor::Runner,
        Event::Note {
            message: format!(
                "broker tcp {} ws {}; willy -> proxy {} -> {upstream}; monit -> {}",
                broker.endpoints.tcp,
                broker.endpoints.ws.map_or("-".to_string(), |a| format!(
                    "{a}{}",
                    broker.endpoints.ws_path
                )),
                proxy.addr,
                broker.endpoints.tcp_for(s.monit_protocol())
            ),
        },
    );
}

/// Everything that acts in a run, once wired.
pub(super) struct Actors {
    /// Puts faults in effect at willy's and monit's moments; knows willy's process.
    plan: Arc<FaultPlan>,
    monit: JoinHandle<()>,
    pub(super) willy: JoinHandle<()>,
    /// willy's cycle, as willy sets it.
    pub(super) cycle: Arc<AtomicU32>,
    pub(super) extras: Extras,
}

impl Actors {
    /// The fault plan, then monit (waited for until it is subscribed), then pubby, then
    /// willy, which starts its cycles.
    pub(super) async fn wire(
        s: &Scenario,
        stage: &Stage,
        journal: &Journal,
    ) -> anyhow::Result<Actors> {
        let endpoints = &stage.broker.endpoints;
        let plan = Arc::new(FaultPlan {
            scenario: s.clone(),
            proxy: stage.proxy.clone(),
            fired: Mutex::new(vec![false; s.faults.len()]),
            willy_pid: Arc::new(AtomicU32::new(0)),
            netns: stage.netns.clone(),
        });
        let hook: MomentHook = {
            let plan = plan.clone();
            Arc::new(move |cycle, trigger| plan.on_moment(cycle, trigger))
        };
        let cycle = Arc::new(AtomicU32::new(0));

        let (ready_tx, ready_rx) = oneshot::channel();
        // A flaky monit leaves and returns when the runner says (see `Extras::on_tick`).
        let (flaky, flaky_signals) = FlakyMonit::signals(s);
        // rumqttd 0.20 panics writing a v5 will with properties to a 3.1.1 subscriber (see its
        // profile): a v5 run keeps monit on the v5 listener, speaking v5, unless the scenario
        // asks for a 3.1.1 monit to show exactly that (v5-will-to-v4-subscriber).
        let monit_protocol = s.monit_protocol();
        let monit = tokio::spawn(
            Monit {
                broker: endpoints.tcp_for(monit_protocol),
                protocol: monit_protocol,
                keepalive: s.keepalive,
                journal: journal.clone(),
                hook: hook.clone(),
                cycle: cycle.clone(),
                setup: s.monit,
                flaky: flaky_signals,
            }
            .run(ready_tx),
        );
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .map_err(|_| {
                anyhow::anyhow!("monit could not subscribe at {} within 10 s", endpoints.tcp)
            })?
            .map_err(|_| anyhow::anyhow!("monit stopped before subscribing"))?
            .map_err(|why| anyhow::anyhow!("{why}"))?;

        // pubby connects now; it publishes from the start or from the cut.
        let extras = Extras::start(s, endpoints, journal, flaky);

        let willy = spawn_willy(s, stage, journal, hook, &cycle, &plan)?;
        Ok(Actors {
            plan,
            monit,
            willy,
            cycle,
            extras,
        })
    }

    /// Stop every actor (the proxy's records are waited for by `Cast::tear_down`).
    pub(super) fn stop(self) {
        self.willy.abort();
        // A child willy (running or stopped) ends with the run; kill_on_drop then reaps it.
        if self.plan.willy_pid.load(Ordering::SeqCst) != 0 {
            self.plan.signal(Signal::SIGKILL);
        }
        self.monit.abort();
        self.extras.abort();
    }
}

/// willy, starting its cycles through the proxy: a driver (rumqttc's own for a kernel cut),
/// or rumqttc in this process; a fault on willy's process needs willy in a process of its own.
fn spawn_willy(
    s: &Scenario,
    stage: &Stage,
    journal: &Journal,
    hook: MomentHook,
    cycle: &Arc<AtomicU32>,
    plan: &FaultPlan,
) -> anyhow::Result<JoinHandle<()>> {
    let endpoints = &stage.broker.endpoints;
    let target = Target {
        transport: s.transport,
        port: stage.proxy.addr.port(),
        ws_path: endpoints.ws_path.clone(),
        tls: stage.willy_tls.clone(),
    };
    let willy = if let Some(launch) = crate::driver::process::resolve_for(s)? {
        let host = stage.proxy.addr.ip();
        let url = target.url_at(host);
        tokio::spawn(
            crate::driver::cycles::DriverWilly {
                scenario: s.clone(),
                launch,
                url,
                netns: stage.netns.as_ref().map(|n| n.name.clone()),
                tls: stage.willy_tls.clone(),
                journal: journal.clone(),
                hook,
                cycle: cycle.clone(),
                pid: plan.willy_pid.clone(),
            }
            .run(),
        )
    } else if s.faults.iter().any(|f| f.kind.on_process()) {
        let restart = s
            .faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::Crash { restart: true }));
        tokio::spawn(crate::actor::child::drive(
            s.clone(),
            target,
            journal.clone(),
            hook,
            cycle.clone(),
            plan.willy_pid.clone(),
            restart,
        ))
    } else {
        tokio::spawn(
            Willy {
                scenario: s.clone(),
                target,
                journal: journal.clone(),
                hook,
                cycle: cycle.clone(),
                first_cycle: 1,
            }
            .run(),
        )
    };
    Ok(willy)
}

/// The scenario recorded whole (so `unplug judge` can judge the journal again) and the run's
/// start: the first records of every run, one willy's or a fleet's.
fn record_run_start(journal: &Journal, s: &Scenario, broker: &Broker) {
    journal.record(
        Actor::Runner,
        Event::ScenarioRecorded {
            scenario: Box::new(s.clone()),
            profile: broker.profile.broker.clone(),
        },
    );
    journal.record(
        Actor::Runner,
        Event::RunStarted {
            scenario: s.name.clone(),
            broker: broker.name.clone(),
            transport: s.transport.as_str().to_string(),
            protocol: s.protocol.as_str().to_string(),
            keepalive_s: s.keepalive.as_secs(),
        },
    );
}
