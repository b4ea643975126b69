//! The four ways to the sink, all in this process on 127.0.0.1.
//!
//! ```text
//!  direct   client ------------------------------------------------> sink
//!  plain    client --> tokio copy_bidirectional (32 KiB buffers) ---> sink
//!  noxious  client --> noxious 1.0.4 ProxyRunner, no toxics -------> sink
//!  unplug   client --> `unplug proxy --listen 127.0.0.1:0 --upstream SINK` as the CLI
//!                      parses it: config_of(&Serve), Server::create, the API served --> sink
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner, Toxics};
use noxious::signal::{Close, Stop, Stopper};
use tokio::net::{TcpListener, TcpStream};
use unplug::toxi::api::{self, ProxySpec, Server};
use unplug::toxi::control::{config_of, ProxyArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Direct,
    Plain,
    Noxious,
    Unplug,
}

pub const ALL: [Path; 4] = [Path::Direct, Path::Plain, Path::Noxious, Path::Unplug];

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Plain => "plain",
            Path::Noxious => "noxious",
            Path::Unplug => "unplug",
        }
    }
}

/// `unplug proxy`'s command line, parsed by unplug's own clap definition.
#[derive(Parser)]
#[command(name = "unplug proxy")]
struct UnplugProxy {
    #[command(flatten)]
    args: ProxyArgs,
}

pub struct Paths {
    pub sink: SocketAddr,
    pub plain: SocketAddr,
    pub noxious: SocketAddr,
    pub unplug: SocketAddr,
    pub unplug_api: SocketAddr,
    /// The unplug proxy's journal (NAME.events.jsonl), as its answer named it.
    pub unplug_journal: std::path::PathBuf,
    /// The command line the unplug path was started with.
    pub unplug_argv: Vec<String>,
    server: Arc<Server>,
    api_stop: Option<tokio::sync::oneshot::Sender<()>>,
    api: tokio::task::JoinHandle<()>,
    noxious_stop: Stopper,
    noxious_run: tokio::task::JoinHandle<std::io::Result<()>>,
    // Dropping it ends noxious's toxic-event task; kept for the race.
    _noxious_events:
        bmrng::RequestSender<noxious::toxic::ToxicEvent, noxious::toxic::ToxicEventResult>,
}

impl Paths {
    pub fn addr(&self, p: Path) -> SocketAddr {
        match p {
            Path::Direct => self.sink,
            Path::Plain => self.plain,
            Path::Noxious => self.noxious,
            Path::Unplug => self.unplug,
        }
    }

    pub async fn start(sink: SocketAddr, journal_dir: &std::path::Path) -> anyhow::Result<Paths> {
        let plain = plain_proxy(sink).await?;
        let (noxious, noxious_stop, noxious_run, events) = noxious_proxy(sink).await?;

        // What a user types, with --out in a temporary directory and the API on a free port
        // (toxiproxy's 8474 may be taken on a shared machine); every other flag its default.
        let unplug_argv: Vec<String> = [
            "unplug proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &sink.to_string(),
            "--out",
            &journal_dir.display().to_string(),
            "--api",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let args = UnplugProxy::try_parse_from(&unplug_argv)?.args;
        anyhow::ensure!(args.control.is_none(), "no control subcommand");
        let serve = args.serve;
        // As control::serve_with does: the server from the command line, the API, the proxy.
        let server = Server::new(config_of(&serve));
        let listener = TcpListener::bind(&serve.api).await?;
        let unplug_api = listener.local_addr()?;
        let (api_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let api = tokio::spawn(api::serve_http(
            listener,
            api::router(server.clone()),
            server.config().limits.api_connections,
            async move {
                let _ = stopped.await;
            },
        ));
        let made = server
            .create(ProxySpec {
                name: serve.name.clone(),
                listen: serve.listen.clone().context("--listen")?,
                upstream: serve.upstream.clone().context("--upstream")?,
                enabled: true,
            })
            .await
            .map_err(|e| anyhow::anyhow!("unplug proxy: {}", e.error))?;
        let unplug: SocketAddr = made["listen"]
            .as_str()
            .context("the proxy's listen address")?
            .parse()?;
        let unplug_journal = made["journal"]
            .as_str()
            .context("the proxy's journal")?
            .into();
        Ok(Paths {
            unplug_journal,
            sink,
            plain,
            noxious,
            unplug,
            unplug_api,
            unplug_argv,
            server,
            api_stop: Some(api_stop),
            api,
            noxious_stop,
            noxious_run,
            _noxious_events: events,
        })
    }

    /// Stop noxious and unplug (as Ctrl-C does: every journal complete, judged and drawn);
    /// how long unplug's stop took.
    pub async fn stop(mut self) -> Duration {
        self.noxious_stop.stop();
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.noxious_run).await;
        let t0 = Instant::now();
        self.server.shutdown().await;
        let took = t0.elapsed();
        if let Some(s) = self.api_stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.api).await;
        took
    }
}

/// A plain Rust proxy: what noxious does with no toxics, in tokio's own copy (32 KiB buffers
/// as toxiproxy's io.Copy), with nodelay both ways.
async fn plain_proxy(upstream: SocketAddr) -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut down, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut down,
                    &mut up,
                    32 * 1024,
                    32 * 1024,
                )
                .await;
            });
        }
    });
    Ok(addr)
}

type NoxiousStarted = (
    SocketAddr,
    Stopper,
    tokio::task::JoinHandle<std::io::Result<()>>,
    bmrng::RequestSender<noxious::toxic::ToxicEvent, noxious::toxic::ToxicEventResult>,
);

/// noxious's proxy with no toxics, run as noxious-server runs each proxy: `initialize_proxy`
/// then `run_proxy` on a task.
async fn noxious_proxy(upstream: SocketAddr) -> anyhow::Result<NoxiousStarted> {
    // noxious's listener does not say which port it bound: take a free one first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let config = ProxyConfig {
        name: "race".to_string(),
        listen: listen.to_string(),
        upstream: upstream.to_string(),
        enabled: true,
        rand_seed: None,
    };
    let (listener, info) =
        ProxyRunner::initialize_proxy::<noxious::socket::TcpListener>(config, Toxics::empty())
            .await?;
    let (events, receiver) = bmrng::channel(1);
    let (stop, stopper) = Stop::new();
    let (_close, closer) = Close::new();
    let run = tokio::spawn(ProxyRunner::run_proxy(
        listener, info, receiver, stop, closer,
    ));
    Ok((listen, stopper, run, events))
}
