//! The servers under test: the do-nothing baseline and the sidecar, each a
//! process of its own, with their CPU time and memory read from /proc.

use super::*;

/// Answers OK at once with one identity header: the ceiling of tonic +
/// HTTP/2 here, for an answer Envoy must act on.
pub(crate) struct Baseline;

#[tonic::async_trait]
impl Authorization for Baseline {
    async fn check(
        &self,
        _: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        use envoy_types::ext_authz::v3::pb::{
            HeaderAppendAction, HeaderValue, HeaderValueOption, HttpResponse, OkHttpResponse,
        };
        let header = HeaderValueOption {
            header: Some(HeaderValue {
                key: "x-dispatch-user".into(),
                value: "baseline".into(),
                raw_value: Vec::new(),
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..Default::default()
        };
        Ok(tonic::Response::new(CheckResponse {
            status: Some(rpc::Status::default()),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: vec![header],
                ..Default::default()
            })),
            ..Default::default()
        }))
    }
}

pub(crate) async fn serve(kind: Kind, config: Option<PathBuf>) -> anyhow::Result<()> {
    match kind {
        Kind::Baseline => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("listening {}", listener.local_addr()?);
            // Same stack, TCP_NODELAY and connections as the sidecar.
            let incoming = TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .map(|conn| conn.map(dispatch_authz::server::Unvectored));
            Server::builder()
                .add_service(AuthorizationServer::new(Baseline))
                .serve_with_incoming(incoming)
                .await?;
        }
        Kind::Sidecar => {
            let path = config.expect("--config");
            let config = Settings::load(Some(&path), &Overrides::default())?.compile()?;
            let _log = dispatch_authz::telemetry::init(config.log_format)?;
            let app = App::build(config).await?;
            // The gRPC Check, then the HTTP check listener (`http` phase).
            let http = app.http_addr().map(|a| a.to_string()).unwrap_or_default();
            let ops = app
                .operations_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            println!("listening {} {http} {ops}", app.local_addr().expect("tcp"));
            app.run_until_stopped(std::future::pending()).await?;
        }
    }
    Ok(())
}

pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) addr: String,
    /// The sidecar's HTTP check listener (Envoy's way), empty for the
    /// baseline.
    pub(crate) http_addr: String,
    /// The sidecar's operations listener (`/metrics`), empty when off.
    pub(crate) ops_addr: String,
}

impl ServerProcess {
    pub(crate) async fn start(
        kind: Kind,
        config: &Path,
        args: &RunArgs,
        log: &Path,
    ) -> anyhow::Result<Self> {
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
            // The HTTP check listener too, on a port of its own.
            .env("DISPATCH_AUTHZ_HTTP__LISTEN", "127.0.0.1:0")
            .env("DISPATCH_AUTHZ_HTTP__PROXY", "envoy")
            // Metrics recorded as in production (its listener on a port of
            // its own), unless `--no-metrics`.
            .env(
                "DISPATCH_AUTHZ_OPERATIONS__LISTEN",
                if args.no_metrics {
                    "off"
                } else {
                    "127.0.0.1:0"
                },
            )
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true);
        match args.signed_identity.as_deref() {
            None => {}
            Some("reused") => {
                cmd.env("DISPATCH_AUTHZ_SIGNED_IDENTITY__PER_REQUEST", "false");
            }
            Some("per-request") => {
                cmd.env("DISPATCH_AUTHZ_SIGNED_IDENTITY__PER_REQUEST", "true");
            }
            Some(other) => anyhow::bail!("--signed-identity {other}: reused or per-request"),
        }
        let mut child = cmd.spawn()?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("{kind:?} server exited; see {}", log.display()))?;
        let mut addrs = line.trim_start_matches("listening ").split(' ');
        let addr = addrs.next().unwrap_or_default().to_owned();
        let http_addr = addrs.next().unwrap_or_default().to_owned();
        let ops_addr = addrs.next().unwrap_or_default().to_owned();
        Ok(Self {
            child,
            addr,
            http_addr,
            ops_addr,
        })
    }

    /// Under `--pin`, taskset execs the server, so this is the server's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }
}

/// CPU seconds (user + system) of a process so far.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
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

pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident set size in MiB (`VmRSS`) of a process tree's root.
pub(crate) fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
