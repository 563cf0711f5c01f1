//! Load harness: dispatch-authz against a do-nothing Check server on the same
//! stack, in the same run, so that figures are ratios on this machine.
//!
//!     cargo run --release --example loadtest -- [OPTIONS]      (or scripts/bench.sh)
//!
//! It seeds a SQLite store with `--users` users, mints an ES256 token for
//! each, and starts each server as a separate process (pinned to core 0 with
//! `--pin`; run the harness itself on core 1, as scripts/bench.sh does). Then,
//! alternating baseline and sidecar, it drives Check over gRPC and reports
//! requests/s, latency percentiles, server CPU per check and RSS for:
//!
//! - `hit`: every token and user already cached (closed loop, `--concurrency`);
//! - `latency`: the same at a fixed `--latency-rate` (open loop), for latency
//!   below saturation;
//! - `cold`: a new token of a new user on every request (signature + query),
//!   open loop at `--cold-rate` requests/s;
//! - `deny`: valid tokens of unknown subjects (negative cache), closed loop;
//! - `envoy`: HTTP through a real Envoy (one worker) answering a static 200:
//!   without ext_authz, with ext_authz to the baseline, and with ext_authz to
//!   the sidecar over gRPC and over HTTP (`http_service`) (needs `--envoy`,
//!   ENVOY_BIN or .ci/venv/bin/envoy);
//! - `http`: the sidecar's HTTP check listener (Envoy's way) against its own
//!   gRPC Check, in turn, with one cache-hit check: server CPU per check;
//! - `h2load`: nghttp2's h2load (an external load generator, 16 connections
//!   × 16 streams) driving each server's gRPC endpoint with one cache-hit
//!   request; answers checked from the sidecar's decision lines.
//!
//! The baseline answers OK with one identity header: the ceiling.
//!
//! Every response's status is checked; a wrong answer counts as an error.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand, ValueEnum};
use dispatch_authz::{
    config::{Overrides, Settings},
    identity::unix_now,
    startup::App,
    store::StoreLocation,
};
use envoy_types::{
    ext_authz::v3::pb::{Authorization, AuthorizationServer, CheckResponse},
    pb::{
        envoy::service::auth::v3::{
            AttributeContext, CheckRequest, attribute_context,
            authorization_client::AuthorizationClient,
        },
        google::rpc,
    },
};
use hdrhistogram::Histogram;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint, Server, server::TcpIncoming};

/// The binary's allocator, so the sidecar measured here is the one shipped
/// (the sidecar runs in this process, see `servers.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod envoy;
mod h2load;
mod http;
mod load;
mod report;
mod servers;
mod setup;

use envoy::*;
use h2load::*;
use http::*;
use load::*;
use report::*;
use servers::*;
use setup::*;

#[derive(Parser)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Cmd>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// (internal) run one server process and print its address.
    Server {
        #[arg(long)]
        kind: Kind,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub(crate) enum Kind {
    Baseline,
    Sidecar,
}

#[derive(Parser, Clone)]
pub(crate) struct RunArgs {
    /// Users in the store (and tokens minted, one per user).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) users: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5)]
    pub(crate) duration_secs: u64,
    /// Requests in flight (closed-loop phases).
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// HTTP/2 connections the load spreads over.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// New tokens per second in the cold phase.
    #[arg(long, default_value_t = 1000)]
    pub(crate) cold_rate: u64,
    /// Cached checks per second in the latency phase (open loop).
    #[arg(long, default_value_t = 5000)]
    pub(crate) latency_rate: u64,
    /// Baseline/sidecar alternations per phase.
    #[arg(long, default_value_t = 2)]
    pub(crate) rounds: usize,
    /// Phases to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hit,latency,cold,deny,envoy,http,h2load"
    )]
    pub(crate) phases: Vec<Phase>,
    /// Servers to measure (a soak needs only the sidecar).
    #[arg(long, value_delimiter = ',', default_value = "baseline,sidecar")]
    pub(crate) servers: Vec<Kind>,
    /// Pin server processes (and Envoy) to core 0 with taskset.
    #[arg(long)]
    pub(crate) pin: bool,
    /// RUST_LOG for the sidecar; its log goes to a file, as in production.
    #[arg(long, default_value = "info")]
    pub(crate) server_log: String,
    /// A PostgreSQL server (`postgres://...`, one where databases may be
    /// created) to put the sidecar's store on, instead of a SQLite file.
    #[arg(long, value_name = "URL")]
    pub(crate) database: Option<String>,
    /// Run the sidecar without its operations listener, so with no metrics
    /// recorder (every recording a no-op).
    #[arg(long)]
    pub(crate) no_metrics: bool,
    /// Sign `x-dispatch-identity` on every allow: `reused` (a token per
    /// subject, the default when configured) or `per-request`.
    #[arg(long, value_name = "reused|per-request")]
    pub(crate) signed_identity: Option<String>,
    /// Scrape the sidecar's `/metrics` this often during each measured run
    /// (0: no scraper).
    #[arg(long, default_value_t = 0)]
    pub(crate) scrape_ms: u64,
    /// Envoy binary for the envoy phase [default: ENVOY_BIN, .ci/venv/bin/envoy].
    #[arg(long)]
    pub(crate) envoy: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub(crate) enum Phase {
    Hit,
    Latency,
    Cold,
    Deny,
    Envoy,
    Http,
    H2load,
}

impl Phase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Latency => "latency",
            Self::Cold => "cold",
            Self::Deny => "deny",
            Self::Envoy => "envoy",
            Self::Http => "http",
            Self::H2load => "h2load",
        }
    }
}

pub(crate) const ISS: &str = "https://issuer.loadtest";

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

#[tokio::main]
pub(crate) async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Server { kind, config }) => serve(kind, config).await,
        None => run(cli.run).await,
    }
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let fixture = setup(&args).await?;
    let duration = Duration::from_secs(args.duration_secs);
    println!(
        "users={} duration={}s concurrency={} connections={} cold_rate={}/s pin={} server_log={}",
        args.users,
        args.duration_secs,
        args.concurrency,
        args.connections,
        args.cold_rate,
        args.pin,
        args.server_log
    );
    print_header();
    let mut errors = 0;
    for &phase in &args.phases {
        if phase == Phase::Envoy {
            errors += envoy_phase(&args, &fixture).await?;
            continue;
        }
        if phase == Phase::Http {
            errors += http_phase(&args, &fixture).await?;
            continue;
        }
        if phase == Phase::H2load {
            errors += h2load_phase(&args, &fixture).await?;
            continue;
        }
        let mut rows = Vec::new();
        for round in 0..args.rounds {
            // Alternate which server goes first.
            let order = if round % 2 == 0 {
                [Kind::Baseline, Kind::Sidecar]
            } else {
                [Kind::Sidecar, Kind::Baseline]
            };
            for kind in order.into_iter().filter(|k| args.servers.contains(k)) {
                let row = measure(phase, kind, &args, &fixture, duration).await?;
                print_row(&row, round);
                rows.push(row);
            }
        }
        if args.servers.len() == 2 {
            print_ratio(phase.name(), &rows);
        }
        errors += rows.iter().map(|r| r.outcome.errors).sum::<u64>();
    }
    anyhow::ensure!(errors == 0, "{errors} requests got a wrong answer or none");
    Ok(())
}

pub(crate) async fn measure(
    phase: Phase,
    kind: Kind,
    args: &RunArgs,
    fixture: &Fixture,
    duration: Duration,
) -> anyhow::Result<Row> {
    let log = fixture.dir.path().join(format!("{kind:?}.log"));
    let server = ServerProcess::start(kind, &fixture.config, args, &log).await?;
    let clients = channels(&server.addr, args.connections).await?;
    let expect = |sidecar_code: i32| {
        if kind == Kind::Sidecar {
            sidecar_code
        } else {
            0
        }
    };
    let (requests, code) = match phase {
        Phase::Deny => (fixture.deny.clone(), expect(7)),
        _ => (fixture.hit.clone(), expect(0)),
    };
    if phase != Phase::Cold {
        // Warm every cache: one pass over all tokens.
        let out = closed_loop(
            &clients,
            requests.clone(),
            code,
            args.concurrency,
            Limit::Count(requests.len()),
        )
        .await;
        anyhow::ensure!(
            out.errors == 0,
            "{kind:?} warm-up: {} wrong answers",
            out.errors
        );
    }
    let pid = server.pid();
    let samples = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let sampling = {
        // RSS over the run, to see whether it is steady.
        let samples = samples.clone();
        tokio::spawn(async move {
            let every = (duration / 10).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                samples.lock().unwrap().push(rss_mib(pid));
            }
        })
    };
    let scraper = (args.scrape_ms > 0 && !server.ops_addr.is_empty()).then(|| {
        let (url, every) = (
            format!("http://{}/metrics", server.ops_addr),
            Duration::from_millis(args.scrape_ms),
        );
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                if let Ok(response) = http.get(&url).send().await {
                    let _ = response.bytes().await;
                }
                tokio::time::sleep(every).await;
            }
        })
    });
    let cpu_before = cpu_secs(pid);
    let outcome = match phase {
        Phase::Cold => open_loop(&clients, requests, code, args.cold_rate, duration).await,
        Phase::Latency => open_loop(&clients, requests, code, args.latency_rate, duration).await,
        _ => {
            closed_loop(
                &clients,
                requests,
                code,
                args.concurrency,
                Limit::Time(duration),
            )
            .await
        }
    };
    let cpu = cpu_secs(pid) - cpu_before;
    sampling.abort();
    if let Some(scraper) = scraper {
        scraper.abort();
    }
    if duration >= Duration::from_secs(60) {
        let series: Vec<String> = samples
            .lock()
            .unwrap()
            .iter()
            .map(|m| format!("{m:.1}"))
            .collect();
        println!(
            "       {kind:?} RSS MiB every {}s: {}",
            (duration / 10).as_secs().max(1),
            series.join(" ")
        );
    }
    let answered = (outcome.ok + outcome.errors).max(1);
    Ok(Row {
        phase: phase.name(),
        kind: match kind {
            Kind::Baseline => "baseline",
            Kind::Sidecar => "sidecar",
        },
        cpu_us: cpu * 1e6 / answered as f64,
        rss: rss_mib(server.pid()),
        outcome,
    })
}
