//! The `http` phase: one sidecar, its gRPC Check and its HTTP check listener
//! (read Envoy's way) driven in turn with the same cache-hit check, so the
//! cost per check of each front end is compared in one run.

use super::*;

/// Returns the number of wrong answers.
pub(crate) async fn http_phase(args: &RunArgs, fixture: &Fixture) -> anyhow::Result<u64> {
    let log = fixture.dir.path().join("http-sidecar.log");
    let server = ServerProcess::start(Kind::Sidecar, &fixture.config, args, &log).await?;
    let port: u16 = server
        .http_addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the sidecar reported no HTTP check listener"))?;
    let clients = channels(&server.addr, args.connections).await?;
    let request = fixture.hit[0].clone();
    let auth = authorization_of(&request);
    let one = Arc::new(vec![request]);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    // Warm the token's entry and both kinds of connection.
    closed_loop(&clients, one.clone(), 0, 8, Limit::Count(100)).await;
    http_load(&http, port, &auth, 8, Duration::from_millis(200)).await;
    let duration = Duration::from_secs(args.duration_secs);
    let mut rows = Vec::new();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            ["grpc", "http"]
        } else {
            ["http", "grpc"]
        };
        for front in order {
            let before = cpu_secs(server.pid());
            let outcome = match front {
                "grpc" => {
                    closed_loop(
                        &clients,
                        one.clone(),
                        0,
                        args.concurrency,
                        Limit::Time(duration),
                    )
                    .await
                }
                _ => http_load(&http, port, &auth, args.concurrency, duration).await,
            };
            let answered = (outcome.ok + outcome.errors).max(1);
            let row = Row {
                phase: "http",
                kind: front,
                cpu_us: (cpu_secs(server.pid()) - before) * 1e6 / answered as f64,
                rss: rss_mib(server.pid()),
                outcome,
            };
            print_row(&row, round);
            rows.push(row);
        }
    }
    let mean = |kind: &str, f: &dyn Fn(&Row) -> f64| {
        let v: Vec<f64> = rows.iter().filter(|r| r.kind == kind).map(f).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    println!(
        "http   ratio HTTP listener/gRPC Check: server cpu per check {:.2}x ({:.1} vs {:.1} µs), throughput {:.2}x (different load generators: reqwest HTTP/1.1 vs tonic HTTP/2)",
        mean("http", &|r| r.cpu_us) / mean("grpc", &|r| r.cpu_us),
        mean("http", &|r| r.cpu_us),
        mean("grpc", &|r| r.cpu_us),
        mean("http", &|r| r.outcome.rps()) / mean("grpc", &|r| r.outcome.rps()),
    );
    Ok(rows.iter().map(|r| r.outcome.errors).sum())
}
