//! The `envoy` phase: HTTP through a real Envoy, without ext_authz, with
//! the baseline and with the sidecar.

use super::*;

pub(crate) fn envoy_binary(args: &RunArgs) -> Option<PathBuf> {
    args.envoy
        .clone()
        .or_else(|| std::env::var_os("ENVOY_BIN").map(PathBuf::from))
        .or_else(|| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/envoy");
            p.exists().then_some(p)
        })
}

/// How a listener's ext_authz reaches its check server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Grpc,
    /// `http_service`, configured as `envoy/envoy-http.yaml` does.
    Http,
}

/// Listeners on one Envoy (one worker), each answering a static 200
/// (`direct_response`): without ext_authz, with ext_authz to the baseline,
/// with ext_authz to the sidecar over gRPC and over HTTP. The differences
/// are the cost of Envoy's ext_authz call and of the sidecar's work.
/// A listener: its name, its port, and the check server it asks, if any.
pub(crate) type Variant<'a> = (&'a str, u16, Option<(&'a str, Via)>);

pub(crate) fn envoy_config(listeners: &[Variant]) -> String {
    let listener = |name: &str, port: u16, authz: Option<Via>| {
        let authz_filter = authz.map_or(String::new(), |via| {
            let service = match via {
                Via::Grpc => format!(
                    "grpc_service: {{ envoy_grpc: {{ cluster_name: {name} }}, timeout: 1s }}"
                ),
                Via::Http => format!(
                    r#"allowed_headers: {{ patterns: [ {{ safe_regex: {{ regex: ".*" }} }} ] }}
              http_service:
                server_uri: {{ uri: "http://{name}", cluster: {name}, timeout: 1s }}
                authorization_response:
                  allowed_upstream_headers: {{ patterns: [ {{ prefix: x-dispatch- }}, {{ exact: cookie }} ] }}"#
                ),
            };
            format!(
                r#"
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              {service}"#
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
    let cluster = |name: &str, addr: &str, via: Via| {
        let (host, port) = addr.rsplit_once(':').unwrap();
        // gRPC needs HTTP/2; HTTP checks go over HTTP/1.1, as in envoy-http.yaml.
        let h2 = match via {
            Via::Grpc => {
                r#"
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"#
            }
            Via::Http => "",
        };
        format!(
            r#"
  - name: {name}
    type: STATIC
    connect_timeout: 1s{h2}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: {host}, port_value: {port} }} }} }}"#
        )
    };
    let mut yaml = String::from("static_resources:\n  listeners:");
    for (name, port, authz) in listeners {
        yaml += &listener(name, *port, authz.map(|(_, via)| via));
    }
    yaml += "\n  clusters:";
    for (name, _, authz) in listeners {
        if let Some((addr, via)) = authz {
            yaml += &cluster(name, addr, *via);
        }
    }
    yaml + "\n"
}

/// The `Authorization` value a check request carries: the same token, sent
/// over HTTP.
pub(crate) fn authorization_of(request: &CheckRequest) -> String {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .and_then(|h| h.headers.get("authorization").cloned())
        .unwrap_or_default()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Returns the number of wrong answers.
pub(crate) async fn envoy_phase(args: &RunArgs, fixture: &Fixture) -> anyhow::Result<u64> {
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
        (
            "baseline",
            free_port(),
            Some((baseline.addr.as_str(), Via::Grpc)),
        ),
        (
            "sidecar",
            free_port(),
            Some((sidecar.addr.as_str(), Via::Grpc)),
        ),
        (
            "sidecar-http",
            free_port(),
            Some((sidecar.http_addr.as_str(), Via::Http)),
        ),
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
    let envoy = cmd
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
    let auth = authorization_of(&fixture.hit[0]);
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
            // CPU per request of Envoy (in the cpu column) and of the check
            // server it calls (after the row): our answer is work for both.
            let check_pid = match *name {
                "baseline" => Some(baseline.pid()),
                "sidecar" | "sidecar-http" => Some(sidecar.pid()),
                _ => None,
            };
            let envoy_pid = envoy.id().unwrap_or_default();
            let (envoy_cpu, check_cpu) = (cpu_secs(envoy_pid), check_pid.map(cpu_secs));
            let outcome = http_load(&http, *port, &auth, args.concurrency, duration).await;
            let per_request = |before: f64, pid: u32| {
                (cpu_secs(pid) - before) * 1e6 / (outcome.ok + outcome.errors).max(1) as f64
            };
            let envoy_us = per_request(envoy_cpu, envoy_pid);
            let check_us = check_cpu
                .zip(check_pid)
                .map(|(before, pid)| {
                    format!("  check server {:.1} µs/request", per_request(before, pid))
                })
                .unwrap_or_default();
            println!(
                "envoy  {:<12} {:>7.0} {:>8} {:>9} {:>9} {:>9} {:>12.1} {:>8} {:>7}{check_us}",
                name,
                outcome.rps(),
                outcome.errors,
                outcome.quantile_us(0.5),
                outcome.quantile_us(0.99),
                outcome.quantile_us(0.999),
                envoy_us,
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
    println!(
        "envoy  ratio: http_service->sidecar / grpc_service->sidecar {:.2}x",
        mean("sidecar-http") / mean("sidecar")
    );
    Ok(rows.iter().map(|r| r.1.errors).sum())
}

pub(crate) async fn http_load(
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
