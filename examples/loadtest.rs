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
//!   the sidecar (needs `--envoy`, ENVOY_BIN or .ci/venv/bin/envoy).
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
use tonic::transport::{Channel, Endpoint, Server, server::TcpIncoming};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// (internal) run one server process and print its address.
    Server {
        #[arg(long)]
        kind: Kind,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Kind {
    Baseline,
    Sidecar,
}

#[derive(Parser, Clone)]
struct RunArgs {
    /// Users in the store (and tokens minted, one per user).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,
    /// Requests in flight (closed-loop phases).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the load spreads over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// New tokens per second in the cold phase.
    #[arg(long, default_value_t = 1000)]
    cold_rate: u64,
    /// Cached checks per second in the latency phase (open loop).
    #[arg(long, default_value_t = 5000)]
    latency_rate: u64,
    /// Baseline/sidecar alternations per phase.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Phases to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hit,latency,cold,deny,envoy"
    )]
    phases: Vec<Phase>,
    /// Servers to measure (a soak needs only the sidecar).
    #[arg(long, value_delimiter = ',', default_value = "baseline,sidecar")]
    servers: Vec<Kind>,
    /// Pin server processes (and Envoy) to core 0 with taskset.
    #[arg(long)]
    pin: bool,
    /// RUST_LOG for the sidecar; its log goes to a file, as in production.
    #[arg(long, default_value = "info")]
    server_log: String,
    /// Envoy binary for the envoy phase [default: ENVOY_BIN, .ci/venv/bin/envoy].
    #[arg(long)]
    envoy: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Phase {
    Hit,
    Latency,
    Cold,
    Deny,
    Envoy,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Latency => "latency",
            Self::Cold => "cold",
            Self::Deny => "deny",
            Self::Envoy => "envoy",
        }
    }
}

const ISS: &str = "https://issuer.loadtest";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Server { kind, config }) => serve(kind, config).await,
        None => run(cli.run).await,
    }
}

// ---------------------------------------------------------------- servers --

/// Answers OK at once: the ceiling of tonic + HTTP/2 here.
struct Baseline;

#[tonic::async_trait]
impl Authorization for Baseline {
    async fn check(
        &self,
        _: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(CheckResponse {
            status: Some(rpc::Status::default()),
            ..Default::default()
        }))
    }
}

async fn serve(kind: Kind, config: Option<PathBuf>) -> anyhow::Result<()> {
    match kind {
        Kind::Baseline => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("listening {}", listener.local_addr()?);
            // Same stack and TCP_NODELAY as the sidecar.
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            Server::builder()
                .add_service(AuthorizationServer::new(Baseline))
                .serve_with_incoming(incoming)
                .await?;
        }
        Kind::Sidecar => {
            let path = config.expect("--config");
            let config = Settings::load(Some(&path), &Overrides::default())?.compile()?;
            let _log = dispatch_authz::telemetry::init(config.log_format);
            let app = App::build(config).await?;
            println!("listening {}", app.local_addr().expect("tcp"));
            app.run_until_stopped(std::future::pending()).await?;
        }
    }
    Ok(())
}

struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    async fn start(kind: Kind, config: &Path, args: &RunArgs, log: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut cmd = if args.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(["server", "--kind", &format!("{kind:?}").to_lowercase()])
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", &args.server_log)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("{kind:?} server exited; see {}", log.display()))?;
        let addr = line.trim_start_matches("listening ").to_owned();
        Ok(Self { child, addr })
    }

    /// Under `--pin`, taskset execs the server, so this is the server's pid.
    fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }
}

/// CPU seconds (user + system) of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident set size in MiB (`VmRSS`) of a process tree's root.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

// ------------------------------------------------------------------ setup --

struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
    hit: Arc<Vec<CheckRequest>>,
    deny: Arc<Vec<CheckRequest>>,
}

async fn setup(args: &RunArgs) -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("users.db");
    let config = dir.path().join("sidecar.toml");
    let capacity = args.users * 2 + 10_000;
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
[store]
database = "{db}"
[cache]
users_capacity = {capacity}
users_ttl_secs = 3600
tokens_capacity = {capacity}
tokens_max_ttl_secs = 3600
[log]
format = "json"
[admin]
listen = "off"
[[issuers]]
name = "load"
issuer = "{ISS}"
audiences = ["dispatch"]
[[issuers.public_keys]]
pem_file = "{key}"
algorithm = "ES256"
"#,
            db = db.display(),
            key = fixture("ec256.pub.pem").display(),
        ),
    )?;
    let started = Instant::now();
    seed(&db, args.users).await?;
    eprintln!("seeded {} users in {:.1?}", args.users, started.elapsed());
    let started = Instant::now();
    let key = EncodingKey::from_ec_pem(&std::fs::read(fixture("ec256.pem"))?)?;
    let hit = (0..args.users)
        .map(|i| request(&key, &format!("u{i}")))
        .collect();
    let deny = (0..1000)
        .map(|i| request(&key, &format!("nobody{i}")))
        .collect();
    eprintln!(
        "minted {} tokens in {:.1?}",
        args.users + 1000,
        started.elapsed()
    );
    Ok(Fixture {
        dir,
        config,
        hit: Arc::new(hit),
        deny: Arc::new(deny),
    })
}

async fn seed(db: &Path, users: usize) -> anyhow::Result<()> {
    use dispatch_authz::store::SqliteStore;
    let store = SqliteStore::open(db).await?;
    let mut tx = store.pool().begin().await?;
    let now = unix_now() as i64;
    // The default (RBAC) mode: every user is a member of `load` (default
    // org) holding the role `developer` (`function:*`).
    for sql in [
        "INSERT INTO organizations (name, created_at) VALUES ('load', ?1)",
        "INSERT INTO roles (id, org, name, created_at) VALUES ('r1', 'load', 'developer', ?1)",
        "INSERT INTO role_permissions (role_id, resource, action) VALUES ('r1', 'function', '*')",
    ] {
        sqlx::query(sql).bind(now).execute(&mut *tx).await?;
    }
    for i in 0..users {
        let id = dispatch_authz::domain::UserId::new().to_string();
        sqlx::query(
            "INSERT INTO users (id, issuer, subject, login, enabled, created_at, updated_at) \
             VALUES (?1, 'load', ?2, ?3, 1, ?4, ?4)",
        )
        .bind(&id)
        .bind(format!("u{i}"))
        .bind(format!("user{i}"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO memberships (org, user_id, is_default, created_at) VALUES ('load', ?1, 1, ?2)",
        )
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO role_bindings (id, role_id, user_id, created_at) VALUES (?1, 'r1', ?2, ?3)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn request(key: &EncodingKey, subject: &str) -> CheckRequest {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": ISS, "aud": "dispatch", "sub": subject, "iat": now, "exp": now + 7200,
    });
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, key).unwrap();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                time: None,
                http: Some(attribute_context::HttpRequest {
                    id: "1".into(),
                    method: "GET".into(),
                    path: "/v1/function/hello?x=1".into(),
                    host: "api.example.com".into(),
                    headers: [
                        ("authorization".to_owned(), format!("Bearer {token}")),
                        (
                            "x-request-id".to_owned(),
                            "6c1f4a8e-0b1d-4f0e-9a3c-2f6e1d0b9c7a".to_owned(),
                        ),
                        ("user-agent".to_owned(), "loadtest".to_owned()),
                    ]
                    .into(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}

// ------------------------------------------------------------------- load --

#[derive(Default)]
struct Outcome {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latency: Option<Histogram<u64>>,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn quantile_us(&self, q: f64) -> u64 {
        self.latency.as_ref().map_or(0, |h| h.value_at_quantile(q))
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

async fn channels(addr: &str, n: usize) -> anyhow::Result<Vec<AuthorizationClient<Channel>>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        out.push(AuthorizationClient::new(channel));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Limit {
    Time(Duration),
    /// Exactly this many requests, each of `requests` once (warm-up).
    Count(usize),
}

/// Closed loop: `concurrency` tasks, each sending the next request as soon as
/// the previous answered, until the limit.
async fn closed_loop(
    clients: &[AuthorizationClient<Channel>],
    requests: Arc<Vec<CheckRequest>>,
    expect: i32,
    concurrency: usize,
    limit: Limit,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let (deadline, count) = match limit {
        Limit::Time(d) => (Instant::now() + d, usize::MAX),
        Limit::Count(n) => (Instant::now() + Duration::from_secs(3600), n),
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let mut client = clients[t % clients.len()].clone();
        let (requests, next) = (requests.clone(), next.clone());
        tasks.spawn(async move {
            let mut out = Outcome {
                latency: Some(histogram()),
                ..Default::default()
            };
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let i = n % requests.len();
                let sent = Instant::now();
                let answer = client.check(requests[i].clone()).await;
                let took = sent.elapsed().as_micros() as u64;
                match answer {
                    Ok(r) if r.get_ref().status.as_ref().map(|s| s.code) == Some(expect) => {
                        out.ok += 1;
                        out.latency.as_mut().unwrap().record(took.max(1)).ok();
                    }
                    _ => out.errors += 1,
                }
            }
            out
        });
    }
    merge(tasks, started).await
}

/// Open loop: one request every 1/rate s, each on its own task, so a slow
/// answer does not slow the sender (latency includes queueing).
async fn open_loop(
    clients: &[AuthorizationClient<Channel>],
    requests: Arc<Vec<CheckRequest>>,
    expect: i32,
    rate: u64,
    duration: Duration,
) -> Outcome {
    let total = ((rate as f64 * duration.as_secs_f64()) as usize).min(requests.len());
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    // Each task reports only its latency: a histogram per task would cost
    // the generator more than the request.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        ticker.tick().await;
        let mut client = clients[i % clients.len()].clone();
        let request = requests[i].clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            match client.check(request).await {
                Ok(r) if r.get_ref().status.as_ref().map(|s| s.code) == Some(expect) => {
                    Some((sent.elapsed().as_micros() as u64).max(1))
                }
                _ => None,
            }
        });
    }
    let mut out = Outcome {
        latency: Some(histogram()),
        ..Default::default()
    };
    while let Some(result) = tasks.join_next().await {
        match result.ok().flatten() {
            Some(us) => {
                out.ok += 1;
                out.latency.as_mut().unwrap().record(us).ok();
            }
            None => out.errors += 1,
        }
    }
    out.elapsed = started.elapsed();
    out
}

async fn merge(mut tasks: tokio::task::JoinSet<Outcome>, started: Instant) -> Outcome {
    let mut total = Outcome {
        latency: Some(histogram()),
        ..Default::default()
    };
    while let Some(Ok(part)) = tasks.join_next().await {
        total.ok += part.ok;
        total.errors += part.errors;
        if let (Some(t), Some(p)) = (total.latency.as_mut(), part.latency.as_ref()) {
            t.add(p).ok();
        }
    }
    total.elapsed = started.elapsed();
    total
}

// ----------------------------------------------------------------- report --

struct Row {
    phase: &'static str,
    kind: &'static str,
    outcome: Outcome,
    cpu_us: f64,
    rss: f64,
}

fn print_header() {
    println!(
        "{:<6} {:<9} {:>10} {:>8} {:>9} {:>9} {:>9} {:>12} {:>8} {:>7}",
        "phase",
        "server",
        "req/s",
        "errors",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "cpu µs/chk",
        "RSS MiB",
        "round"
    );
}

fn print_row(r: &Row, round: usize) {
    println!(
        "{:<6} {:<9} {:>10.0} {:>8} {:>9} {:>9} {:>9} {:>12.1} {:>8.1} {:>7}",
        r.phase,
        r.kind,
        r.outcome.rps(),
        r.outcome.errors,
        r.outcome.quantile_us(0.50),
        r.outcome.quantile_us(0.99),
        r.outcome.quantile_us(0.999),
        r.cpu_us,
        r.rss,
        round
    );
}

fn print_ratio(phase: &str, rows: &[Row]) {
    let mean = |kind: &str, f: &dyn Fn(&Row) -> f64| {
        let v: Vec<f64> = rows.iter().filter(|r| r.kind == kind).map(f).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let rps = mean("sidecar", &|r| r.outcome.rps()) / mean("baseline", &|r| r.outcome.rps());
    let cpu = mean("sidecar", &|r| r.cpu_us) / mean("baseline", &|r| r.cpu_us);
    let p99 = mean("sidecar", &|r| r.outcome.quantile_us(0.99) as f64)
        / mean("baseline", &|r| r.outcome.quantile_us(0.99) as f64);
    println!(
        "{phase:<6} ratio sidecar/baseline: throughput {rps:.2}x, cpu per check {cpu:.2}x, p99 {p99:.2}x"
    );
}

// -------------------------------------------------------------------- run --

async fn run(args: RunArgs) -> anyhow::Result<()> {
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

async fn measure(
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

// ------------------------------------------------------------------ envoy --

fn envoy_binary(args: &RunArgs) -> Option<PathBuf> {
    args.envoy
        .clone()
        .or_else(|| std::env::var_os("ENVOY_BIN").map(PathBuf::from))
        .or_else(|| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/envoy");
            p.exists().then_some(p)
        })
}

/// Three listeners on one Envoy (one worker), each answering a static 200
/// (`direct_response`): without ext_authz, with ext_authz to the baseline,
/// with ext_authz to the sidecar. The differences are the cost of Envoy's
/// ext_authz call and of the sidecar's work.
fn envoy_config(listeners: &[(&str, u16, Option<&str>)]) -> String {
    let listener = |name: &str, port: u16, cluster: Option<&str>| {
        let authz_filter = cluster.map_or(String::new(), |cluster| {
            format!(
                r#"
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              grpc_service: {{ envoy_grpc: {{ cluster_name: {cluster} }}, timeout: 1s }}"#
            )
        });
        format!(
            r#"
  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "ok" }} }}
          http_filters:{authz_filter}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"#
        )
    };
    let cluster = |name: &str, addr: &str| {
        let (host, port) = addr.rsplit_once(':').unwrap();
        format!(
            r#"
  - name: {name}
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: {host}, port_value: {port} }} }} }}"#
        )
    };
    let mut yaml = String::from("static_resources:\n  listeners:");
    for (name, port, authz) in listeners {
        yaml += &listener(name, *port, authz.map(|_| *name));
    }
    yaml += "\n  clusters:";
    for (name, _, authz) in listeners {
        if let Some(addr) = authz {
            yaml += &cluster(name, addr);
        }
    }
    yaml + "\n"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Returns the number of wrong answers.
async fn envoy_phase(args: &RunArgs, fixture: &Fixture) -> anyhow::Result<u64> {
    let Some(binary) = envoy_binary(args) else {
        println!("envoy  skipped: no Envoy binary (--envoy, ENVOY_BIN or .ci/venv/bin/envoy)");
        return Ok(0);
    };
    let dir = fixture.dir.path();
    let sidecar = ServerProcess::start(
        Kind::Sidecar,
        &fixture.config,
        args,
        &dir.join("envoy-sidecar.log"),
    )
    .await?;
    let baseline = ServerProcess::start(
        Kind::Baseline,
        &fixture.config,
        args,
        &dir.join("envoy-baseline.log"),
    )
    .await?;
    let variants = [
        ("plain", free_port(), None),
        ("baseline", free_port(), Some(baseline.addr.as_str())),
        ("sidecar", free_port(), Some(sidecar.addr.as_str())),
    ];
    let config = dir.join("envoy.yaml");
    std::fs::write(&config, envoy_config(&variants))?;
    let mut cmd = if args.pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(&binary);
        c
    } else {
        Command::new(&binary)
    };
    let _envoy = cmd
        .arg("-c")
        .arg(&config)
        .args([
            "--concurrency",
            "1",
            "--disable-hot-restart",
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let request = &fixture.hit[0];
    let auth = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .map(|h| h.headers["authorization"].clone())
        .unwrap_or_default();
    for (_, port, _) in &variants {
        let mut up = false;
        for _ in 0..100 {
            let r = http
                .get(format!("http://127.0.0.1:{port}/v1/function/ready"))
                .header("authorization", &auth)
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::ensure!(up, "envoy listener on port {port} did not answer 200");
    }
    let duration = Duration::from_secs(args.duration_secs);
    let mut rows: Vec<(&str, Outcome)> = Vec::new();
    for round in 0..args.rounds {
        let mut order: Vec<_> = variants.iter().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (name, port, _) in order {
            let outcome = http_load(&http, *port, &auth, args.concurrency, duration).await;
            println!(
                "envoy  {:<9} {:>10.0} {:>8} {:>9} {:>9} {:>9} {:>12} {:>8} {:>7}",
                name,
                outcome.rps(),
                outcome.errors,
                outcome.quantile_us(0.5),
                outcome.quantile_us(0.99),
                outcome.quantile_us(0.999),
                "-",
                "-",
                round
            );
            rows.push((name, outcome));
        }
    }
    let mean = |name: &str| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.0 == name)
            .map(|r| r.1.rps())
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    println!(
        "envoy  ratio: ext_authz->sidecar / ext_authz->baseline {:.2}x; ext_authz->sidecar / no ext_authz {:.2}x",
        mean("sidecar") / mean("baseline"),
        mean("sidecar") / mean("plain")
    );
    Ok(rows.iter().map(|r| r.1.errors).sum())
}

async fn http_load(
    http: &reqwest::Client,
    port: u16,
    auth: &str,
    concurrency: usize,
    duration: Duration,
) -> Outcome {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, auth) = (http.clone(), auth.to_owned());
        let url = format!("http://127.0.0.1:{port}/v1/function/hello");
        tasks.spawn(async move {
            let mut out = Outcome {
                latency: Some(histogram()),
                ..Default::default()
            };
            while Instant::now() < deadline {
                let sent = Instant::now();
                let r = http.get(&url).header("authorization", &auth).send().await;
                let ok = match r {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    out.ok += 1;
                    out.latency
                        .as_mut()
                        .unwrap()
                        .record((sent.elapsed().as_micros() as u64).max(1))
                        .ok();
                } else {
                    out.errors += 1;
                }
            }
            out
        });
    }
    merge(tasks, started).await
}
