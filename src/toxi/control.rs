//! The command line of `unplug proxy`: serve (a proxy, the API, or both), or control a running
//! one through its API (`cut`, `heal`, `toxic add|rm`, `list`).
//!
//! ```text
//!  unplug proxy --listen A --upstream B --> Server::create(NAME) + HTTP API --> wait for Ctrl-C
//!                                          --> Server::shutdown (journals complete) --> exit 0
//!  unplug proxy cut|heal|toxic|list --> one HTTP request or a few --> a line each, exit 0
//!                                       (an error answer or no API: its message, exit 2)
//! ```
//!
//! The requests go out through hyper's HTTP/1.1 client (it reads the answer's head and joins a
//! chunked body); what stays ours is the cap on an answer's size and time, and the words a
//! hostile answer is refused with.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::api::{self, ProxySpec, Server};
use crate::event::Echo;
use crate::lifeline::Interrupts;

/// toxiproxy's API address, which its client libraries use by default.
pub const DEFAULT_API: &str = "127.0.0.1:8474";

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  unplug proxy --listen 127.0.0.1:1884 --upstream 127.0.0.1:1883 --name sensor --out /tmp/runs\n  unplug proxy cut                 # nothing passes either way; the connection stays open\n  unplug proxy heal\n  unplug proxy toxic add latency -a latency=200 --stream downstream\n  unplug proxy toxic add drop -a packets=PINGREQ --stream upstream\n  unplug proxy toxic rm latency_downstream\n  unplug proxy list\n  unplug judge /tmp/runs/sensor.events.jsonl\n\nThe API (--api, toxiproxy's 127.0.0.1:8474 by default) speaks toxiproxy's HTTP API: its client libraries drive unplug unchanged. Ctrl-C stops every proxy: its journal (NAME.events.jsonl, NAME.log) is complete and, when a device connected, judged and drawn (NAME.summary.json, NAME.svg); exit 0. Exit 2 on bad input or when the API refuses."
)]
pub struct ProxyArgs {
    #[command(subcommand)]
    pub control: Option<Control>,
    #[command(flatten)]
    pub serve: Serve,
}

#[derive(Args, Debug)]
pub struct Serve {
    /// Where the device connects: ADDR:PORT to listen on (port 0: a free one, printed).
    #[arg(long, value_name = "ADDR:PORT", requires = "upstream")]
    pub listen: Option<String>,
    /// The broker every connection is forwarded to (TCP or WebSocket; bytes either way).
    #[arg(long, value_name = "HOST:PORT", requires = "listen")]
    pub upstream: Option<String>,
    /// The proxy's name: its journal files are NAME.events.jsonl and NAME.log.
    #[arg(long, default_value = "proxy", value_name = "NAME")]
    pub name: String,
    /// Directory for every proxy's journal files (created if missing), as every other command's
    /// `--out`.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Serve toxiproxy's HTTP API here (port 0: a free one, printed).
    #[arg(long, default_value = DEFAULT_API, value_name = "ADDR:PORT")]
    pub api: String,
    /// Serve no HTTP API (the proxy stays as it is until Ctrl-C).
    #[arg(long, conflicts_with = "api")]
    pub no_api: bool,
    /// Print only the addresses, not a line per connection event and control packet.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print a line per packet (by default a PUBLISH flood is a line per connection about
    /// once a second: count, bytes, rate).
    #[arg(long, short)]
    pub verbose: bool,
    /// Each proxy's journal files (NAME.events.jsonl + NAME.log) together, at most, in MB:
    /// past it the records of PUBLISH floods are thinned out (every CONNECT, ping, close,
    /// fault and will is kept, and the journal says what it thinned). 0: no limit.
    #[arg(long, default_value_t = api::JOURNAL_MAX / 1_000_000, value_name = "MB")]
    pub journal_max: u64,
    /// How the journal records PUBLISHes: `runs` (a flood of alike QoS 0 PUBLISHes is one
    /// record per batch: count, bytes, first and last time) or `each` (a record per packet).
    #[arg(long, default_value = "runs", value_parser = ["runs", "each"])]
    pub publish_records: String,
    /// Allow the API and the proxies to listen on an address other than loopback. The API has
    /// no authentication: whoever reaches it can cut, reset and redirect every proxy.
    #[arg(long)]
    pub public: bool,
}

/// Where a control command finds the API.
#[derive(Args, Debug, Clone)]
pub struct ApiAt {
    /// The API of the running `unplug proxy` (or of a toxiproxy).
    #[arg(long, default_value = DEFAULT_API, value_name = "ADDR:PORT")]
    pub api: String,
    /// Which proxy; the only one when not given.
    #[arg(long, value_name = "NAME")]
    pub proxy: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Control {
    /// Cut the cable: nothing passes (toxiproxy's `timeout` toxic at 0), the sockets stay open.
    Cut {
        /// Which way: both, upstream (device -> broker) or downstream (broker -> device).
        #[arg(long, default_value = "both", value_parser = ["both", "upstream", "downstream"])]
        stream: String,
        #[command(flatten)]
        at: ApiAt,
    },
    /// Heal: remove every toxic of the proxy and enable it.
    Heal {
        #[command(flatten)]
        at: ApiAt,
    },
    /// Add or remove one toxic (toxiproxy's types and unplug's: blackhole, drop, hang, refuse).
    #[command(subcommand)]
    Toxic(ToxicCommand),
    /// List the proxies and their toxics.
    List {
        #[command(flatten)]
        at: ApiAt,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ToxicCommand {
    /// Add a toxic: `unplug proxy toxic add latency -a latency=200`.
    Add {
        /// latency, bandwidth, timeout, reset_peer, slicer, limit_data, slow_close, blackhole,
        /// drop, hang, refuse.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// Its name (default TYPE_STREAM).
        #[arg(long)]
        name: Option<String>,
        /// upstream (device -> broker) or downstream.
        #[arg(long, default_value = "downstream", value_parser = ["upstream", "downstream"])]
        stream: String,
        /// The chance it acts on a connection, decided per connection: 1 every one, 0 none.
        #[arg(long, default_value_t = 1.0)]
        toxicity: f64,
        /// An attribute, KEY=VALUE (a number, or text: packets=PINGREQ,PUBACK).
        #[arg(long = "attr", short = 'a', value_name = "KEY=VALUE", value_parser = parse_attr)]
        attrs: Vec<(String, Value)>,
        #[command(flatten)]
        at: ApiAt,
    },
    /// Remove a toxic by name.
    Rm {
        name: String,
        #[command(flatten)]
        at: ApiAt,
    },
}

fn parse_attr(s: &str) -> Result<(String, Value), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE, e.g. latency=200"))?;
    if k.is_empty() {
        return Err(format!("{s:?}: the attribute has no name"));
    }
    let v = match v.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(v),
    };
    Ok((k.to_string(), v))
}

/// `unplug proxy ...`.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    match args.control {
        Some(c) => control(c),
        None => serve(args.serve),
    }
}

fn print_line(line: &str) {
    println!("{line}");
}

fn serve(s: Serve) -> anyhow::Result<ExitCode> {
    let api_addr = (!s.no_api).then(|| s.api.clone());
    // clap's `requires` gives both or neither.
    let spec = match (&s.listen, &s.upstream) {
        (Some(listen), Some(upstream)) => Some(ProxySpec {
            name: s.name.clone(),
            listen: listen.clone(),
            upstream: upstream.clone(),
            enabled: true,
        }),
        _ => None,
    };
    if spec.is_none() && api_addr.is_none() {
        bail!(
            "nothing to serve: give --listen and --upstream, or leave the API on (drop --no-api)"
        );
    }
    serve_with(s, spec, api_addr.as_deref())
}

/// The server's configuration from the command line.
pub fn config_of(s: &Serve) -> api::Config {
    let mut config = api::Config::new(s.out.clone());
    config.echo = Echo {
        stdout: !s.quiet,
        wire: true,
        floods: !s.verbose,
    };
    config.print = Some(print_line);
    config.journal_max = (s.journal_max > 0).then(|| s.journal_max.saturating_mul(1_000_000));
    config.publishes = match s.publish_records.as_str() {
        "each" => crate::proxy::PublishRecords::Each,
        _ => crate::proxy::PublishRecords::Runs,
    };
    config.public = s.public;
    config
}

fn serve_with(
    s: Serve,
    spec: Option<ProxySpec>,
    api_addr: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(async {
        let interrupts = Interrupts::listen().context("listening for SIGINT and SIGTERM")?;
        let server = Server::new(config_of(&s));
        let mut http = None;
        if let Some(addr) = api_addr {
            let at: std::net::SocketAddr = tokio::net::lookup_host(addr)
                .await
                .ok()
                .and_then(|mut a| a.next())
                .with_context(|| format!("--api {addr}: expected ADDR:PORT, e.g. 127.0.0.1:8474"))?;
            if s.public {
                eprintln!("unplug: warning: --public: the API at {at} has no authentication; whoever reaches it can cut, reset and redirect every proxy");
            } else {
                api::check_loopback("--api", at).map_err(anyhow::Error::msg)?;
            }
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("the API cannot listen on {addr}"))?;
            let bound = listener.local_addr()?;
            println!("api: toxiproxy's HTTP API on http://{bound}");
            println!("page: http://{bound}/ui (open it in a browser)");
            let app = super::ui::router(server.clone());
            let stop = interrupts.clone();
            let max = server.config().limits.api_connections;
            http = Some(tokio::spawn(api::serve_http(listener, app, max, async move {
                stop.wait().await;
            })));
        }
        if let Some(spec) = spec {
            let (name, upstream) = (spec.name.clone(), spec.upstream.clone());
            let made = match server.create(spec).await {
                Ok(v) => v,
                Err(e) => {
                    server.shutdown().await;
                    bail!("proxy {name}: {}", e.error.trim_start_matches("bad request body: "));
                }
            };
            println!(
                "proxy {name}: listening on {}, forwarding to {upstream}; journal {}",
                made["listen"].as_str().unwrap_or("?"),
                made["journal"].as_str().unwrap_or("?"),
            );
        }
        let sig = interrupts.wait().await;
        server.shutdown().await;
        if let Some(h) = http {
            let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
        }
        println!("stopped ({sig}): every journal is complete in {}", s.out.display());
        Ok(ExitCode::SUCCESS)
    })
}

/// The most of an API answer read: toxiproxy's answers are a few kB (every proxy with its
/// toxics); a server that sends more is not an API of ours.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// How long a whole answer may take to come.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request to the API; (status, JSON body or Null). The answer is read up to
/// [`MAX_ANSWER`] bytes and [`ANSWER_WITHIN`], whatever the server does. Blocking: it runs
/// hyper's client on a runtime of its own.
pub fn request(
    api: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let host = api
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&host)
        .with_context(|| format!("the API address {api:?}: expected ADDR:PORT"))?
        .next()
        .with_context(|| format!("the API address {api:?} names no address"))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let ask = Ask {
        addr,
        host: &host,
        method,
        path,
        body,
    };
    let (status, answer) = on_own_runtime(ask.exchange(MAX_ANSWER, ANSWER_WITHIN))??;
    Ok((status, json_of(&answer)))
}

/// Run `f` to its end on a runtime of its own (on a thread of its own when the caller is
/// already inside one, where a second cannot block).
fn on_own_runtime<T: Send>(f: impl std::future::Future<Output = T> + Send) -> anyhow::Result<T> {
    let run = move || -> anyhow::Result<T> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        Ok(rt.block_on(f))
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|s| {
        s.spawn(run)
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the API request's thread panicked")))
    })
}

/// One request, as hyper's HTTP/1.1 client sends it.
struct Ask<'a> {
    addr: std::net::SocketAddr,
    host: &'a str,
    method: &'a str,
    path: &'a str,
    body: String,
}

impl Ask<'_> {
    /// Send it and read the answer: (status, body bytes), the body joined from its chunks
    /// when chunked, at most `cap` bytes, all within `within`.
    async fn exchange(self, cap: usize, within: Duration) -> anyhow::Result<(u16, Vec<u8>)> {
        let (method, path) = (self.method, self.path);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(self.addr),
        )
        .await
        .map_err(|_| anyhow::anyhow!("connection timed out"))
        .and_then(|r| Ok(r?))
        .with_context(|| {
            format!(
                "cannot reach the API at {} (is `unplug proxy` running there?)",
                self.host
            )
        })?;
        let answer = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(conn)).await?;
            let driving = tokio::spawn(connection);
            let request = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("Host", self.host)
                .header("User-Agent", "unplug")
                .header("Content-Type", "application/json")
                .header("Connection", "close")
                .body(self.body)?;
            let answer = sender.send_request(request).await?;
            let status = answer.status().as_u16();
            let body = read_body(answer.into_body(), cap).await;
            driving.abort();
            Ok::<_, anyhow::Error>((status, body?))
        };
        match tokio::time::timeout(within, answer).await {
            Err(_) => Err(anyhow::anyhow!(
                "no whole answer within {} s",
                within.as_secs_f64()
            ))
            .with_context(|| format!("reading the API's answer to {method} {path}")),
            Ok(r) => r
                .map_err(our_words)
                .with_context(|| format!("the API's answer to {method} {path}")),
        }
    }
}

/// A body's bytes, at most `cap` of them.
async fn read_body(mut body: hyper::body::Incoming, cap: usize) -> anyhow::Result<Vec<u8>> {
    use hyper::body::Body;
    let mut out = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > cap {
                bail!("an answer over {cap} bytes: not the API's");
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// hyper's reasons for refusing an answer, said as this command always said them: which part
/// of a chunked body is wrong, or that the answer ends early. hyper's I/O errors carry only
/// words, so these are matched on its words (an answer they do not name keeps hyper's).
fn our_words(e: anyhow::Error) -> anyhow::Error {
    const WORDS: &[(std::io::ErrorKind, &str, &str)] = &[
        (
            std::io::ErrorKind::UnexpectedEof,
            "chunk size",
            "the chunked body ends inside a chunk size",
        ),
        (
            std::io::ErrorKind::UnexpectedEof,
            "",
            "the answer is cut short",
        ),
        (
            std::io::ErrorKind::InvalidInput,
            "chunk size",
            "a bad chunk size in the chunked body",
        ),
        (
            std::io::ErrorKind::InvalidData,
            "chunk size",
            "a bad chunk size in the chunked body",
        ),
        (
            std::io::ErrorKind::InvalidInput,
            "chunk body",
            "a chunk not followed by CRLF",
        ),
    ];
    let io = e
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .map(|io| (io.kind(), io.to_string()));
    let hyper = e.chain().find_map(|c| c.downcast_ref::<hyper::Error>());
    if let Some((kind, text)) = io {
        if let Some((_, _, ours)) = WORDS
            .iter()
            .find(|(k, w, _)| *k == kind && text.to_ascii_lowercase().contains(w))
        {
            return anyhow::anyhow!("{ours} ({text})");
        }
    }
    match hyper {
        Some(h) if h.is_incomplete_message() => anyhow::anyhow!("the answer is cut short ({h})"),
        Some(h) if h.is_parse() => anyhow::anyhow!("no HTTP header: {h}"),
        _ => e,
    }
}

/// An answer's body as JSON (a body that is not JSON: as a string; none: Null).
fn json_of(body: &[u8]) -> Value {
    let body = String::from_utf8_lossy(body);
    if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|_| Value::String(body.into_owned()))
    }
}

/// The answer's JSON, or the API's error as ours.
fn expect_ok(api: &str, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let (status, v) = request(api, method, path, body)?;
    if (200..300).contains(&status) {
        return Ok(v);
    }
    let why = v["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    bail!("{method} {path}: {status} {why}")
}

/// The proxy a command acts on: the one named, or the only one there is.
fn which_proxy(at: &ApiAt) -> anyhow::Result<String> {
    if let Some(p) = &at.proxy {
        return Ok(p.clone());
    }
    let all = expect_ok(&at.api, "GET", "/proxies", None)?;
    let names: Vec<&String> = all
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!(
            "the API at {} runs no proxy: start one with --listen and --upstream",
            at.api
        ),
        many => bail!(
            "the API at {} runs {} proxies ({}): say which with --proxy NAME",
            at.api,
            many.len(),
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn control(c: Control) -> anyhow::Result<ExitCode> {
    match c {
        Control::Cut { stream, at } => {
            let p = which_proxy(&at)?;
            let streams =
                super::model::cut_streams(&stream).map_err(|e| anyhow::anyhow!(e.error))?;
            for s in streams {
                let body = super::model::cut_toxic(s);
                expect_ok(
                    &at.api,
                    "POST",
                    &format!("/proxies/{p}/toxics"),
                    Some(&body),
                )?;
            }
            println!("proxy {p}: cut ({}): nothing passes, the connections stay open; `unplug proxy heal` ends it", streams.join(" and "));
        }
        Control::Heal { at } => {
            let p = which_proxy(&at)?;
            let toxics = expect_ok(&at.api, "GET", &format!("/proxies/{p}/toxics"), None)?;
            let names = super::model::toxic_names(&toxics);
            for n in &names {
                expect_ok(&at.api, "DELETE", &format!("/proxies/{p}/toxics/{n}"), None)?;
            }
            expect_ok(
                &at.api,
                "POST",
                &format!("/proxies/{p}"),
                Some(&json!({"enabled": true})),
            )?;
            println!(
                "proxy {p}: healed ({} toxics removed, enabled)",
                names.len()
            );
        }
        Control::Toxic(ToxicCommand::Add {
            kind,
            name,
            stream,
            toxicity,
            attrs,
            at,
        }) => {
            let p = which_proxy(&at)?;
            let mut body = json!({"type": kind, "stream": stream, "toxicity": toxicity,
                "attributes": attrs.into_iter().collect::<serde_json::Map<_, _>>()});
            if let Some(n) = name {
                body["name"] = Value::from(n);
            }
            let t = expect_ok(
                &at.api,
                "POST",
                &format!("/proxies/{p}/toxics"),
                Some(&body),
            )
            .map_err(|e| {
                if e.to_string().ends_with("invalid toxic type") {
                    e.context(format!(
                        "{kind:?} is not a toxic type: expected one of {}",
                        super::model::type_names()
                    ))
                } else {
                    e
                }
            })?;
            println!("proxy {p}: added {}", describe(&t));
        }
        Control::Toxic(ToxicCommand::Rm { name, at }) => {
            let p = which_proxy(&at)?;
            expect_ok(
                &at.api,
                "DELETE",
                &format!("/proxies/{p}/toxics/{name}"),
                None,
            )?;
            println!("proxy {p}: removed {name}");
        }
        Control::List { at, json } => {
            let all = expect_ok(&at.api, "GET", "/proxies", None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = all
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
                .map(|p| {
                    let toxics: Vec<String> = p["toxics"]
                        .as_array()
                        .map(|a| a.iter().map(describe).collect())
                        .unwrap_or_default();
                    vec![
                        p["name"].as_str().unwrap_or("").to_string(),
                        p["listen"].as_str().unwrap_or("").to_string(),
                        p["upstream"].as_str().unwrap_or("").to_string(),
                        if p["enabled"] == Value::Bool(true) {
                            "yes"
                        } else {
                            "no"
                        }
                        .to_string(),
                        if toxics.is_empty() {
                            "-".to_string()
                        } else {
                            toxics.join("; ")
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                crate::report::table::render_text(
                    &["proxy", "listen", "upstream", "enabled", "toxics"],
                    &rows
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `name (type stream, attributes)`.
fn describe(t: &Value) -> String {
    let attrs: Vec<String> = t["attributes"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    format!(
        "{} ({} {}{}{})",
        t["name"].as_str().unwrap_or("?"),
        t["type"].as_str().unwrap_or("?"),
        t["stream"].as_str().unwrap_or("?"),
        if attrs.is_empty() { "" } else { " " },
        attrs.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribute_is_a_number_or_text() {
        assert_eq!(
            parse_attr("latency=200").unwrap(),
            ("latency".into(), json!(200))
        );
        assert_eq!(
            parse_attr("packets=PINGREQ,PUBACK").unwrap(),
            ("packets".into(), json!("PINGREQ,PUBACK"))
        );
        assert!(parse_attr("latency").is_err());
        assert!(parse_attr("=3").is_err());
    }

    /// A server on 127.0.0.1 that reads its one client's request head, sends `answer`, then
    /// waits `then` before it closes.
    fn server(answer: Vec<u8>, then: Duration) -> std::net::SocketAddr {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = c.write_all(&answer);
            std::thread::sleep(then);
        });
        at
    }

    /// What [`request`] makes of `raw`, a whole answer from a server.
    fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, Value)> {
        request(
            &server(raw.to_vec(), Duration::ZERO).to_string(),
            "GET",
            "/",
            None,
        )
    }

    /// One exchange with a server that answers `answer`, read up to `cap` within `within`.
    fn exchange(answer: Vec<u8>, then: Duration, cap: usize, within: Duration) -> anyhow::Error {
        let addr = server(answer, then);
        let ask = Ask {
            addr,
            host: "h",
            method: "GET",
            path: "/",
            body: String::new(),
        };
        on_own_runtime(ask.exchange(cap, within))
            .and_then(|r| r)
            .unwrap_err()
    }

    #[test]
    fn a_chunked_answer_is_read_whole() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap(), (200, json!({"a": 1})));
    }

    #[test]
    fn a_chunk_size_that_splits_a_character_joins_it_again() {
        // "é" is c3 a9: the first chunk ends between its bytes.
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\"\xc3\r\n2\r\n\xa9\"\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap(), (200, json!("\u{e9}")));
    }

    #[test]
    fn a_hostile_chunked_answer_is_refused_not_a_panic() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (body, why) in [
            ("ffffffffffffffffffff\r\nab\r\n0\r\n\r\n", "bad chunk size"),
            (
                "fffffffffffffff\r\nab\r\n0\r\n\r\n",
                "the answer is cut short",
            ),
            ("10\r\nabc", "the answer is cut short"),
            ("zz\r\nabc\r\n", "bad chunk size"),
            ("2\r\nabcd\r\n0\r\n\r\n", "not followed by CRLF"),
            ("2", "inside a chunk size"),
        ] {
            let raw = format!("{head}{body}");
            let e = parse_response(raw.as_bytes()).unwrap_err();
            assert!(format!("{e:#}").contains(why), "{body:?}: {e:#}");
        }
        for raw in [
            &b""[..],
            b"garbage",
            b"HTTP/1.1 200 OK\r\nX: y",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(parse_response(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn an_answer_over_the_cap_or_too_slow_is_refused() {
        let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n".to_vec();
        big.extend(vec![b'x'; 200_000]);
        let e = exchange(big, Duration::ZERO, 100_000, Duration::from_secs(10));
        assert!(format!("{e:#}").contains("over 100000 bytes"), "{e:#}");
        // A server that sends a little and then nothing, holding the connection open.
        let e = exchange(
            b"HTTP/1.1 200 OK\r\n".to_vec(),
            Duration::from_secs(3),
            100_000,
            Duration::from_millis(300),
        );
        assert!(
            format!("{e:#}").contains("no whole answer within 0.3 s"),
            "{e:#}"
        );
    }
}
