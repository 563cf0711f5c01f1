//! The `h2load` phase: an external load generator (nghttp2's h2load, not
//! our client) drives each server's gRPC endpoint with one cache-hit
//! request, so the ratio does not depend on how our own client behaves.
//!
//! h2load ignores `grpc-status`, so answers are checked on the server's side:
//! the sidecar's decision lines must all be allows.

use super::*;

/// Returns the number of wrong answers.
pub(crate) async fn h2load_phase(args: &RunArgs, fixture: &Fixture) -> anyhow::Result<u64> {
    if std::process::Command::new("h2load")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("h2load skipped: no h2load (Debian: nghttp2-client)");
        return Ok(0);
    }
    let dir = fixture.dir.path();
    let body = dir.join("check.grpc");
    std::fs::write(&body, grpc_frame(&fixture.hit[0]))?;
    let mut rows = Vec::new();
    let mut errors = 0;
    for kind in [Kind::Baseline, Kind::Sidecar] {
        let name = format!("{kind:?}").to_lowercase();
        let log = dir.join(format!("h2load-{name}.log"));
        let server = ServerProcess::start(kind, &fixture.config, args, &log).await?;
        // Warm the caches, and see that the request is answered as intended.
        let mut client = AuthorizationClient::connect(format!("http://{}", server.addr)).await?;
        let answer = client.check(fixture.hit[0].clone()).await?.into_inner();
        if answer.status.map(|s| s.code) != Some(0) {
            anyhow::bail!("{name}: the h2load request is not allowed");
        }
        let cpu = cpu_secs(server.pid());
        let (done, rps) = run_h2load(args, &server.addr, &body).await?;
        let cpu_us = (cpu_secs(server.pid()) - cpu) * 1e6 / done.max(1) as f64;
        let rss = rss_mib(server.pid());
        // Decision lines reach the file in batches; the kill must not lose any.
        tokio::time::sleep(2 * dispatch_authz::telemetry::FLUSH_INTERVAL).await;
        drop(server);
        let wrong = if kind == Kind::Sidecar {
            let log = std::fs::read_to_string(&log)?;
            log.lines()
                .filter(|l| l.contains(r#""decision":"deny""#))
                .count() as u64
        } else {
            0
        };
        errors += wrong;
        println!(
            "{:<6} {:<9} {:>10.0} {:>8} {:>9} {:>9} {:>9} {:>12.1} {:>8.1} {:>7}",
            "h2load", name, rps, wrong, "-", "-", "-", cpu_us, rss, 0
        );
        rows.push((rps, cpu_us));
    }
    println!(
        "h2load ratio sidecar/baseline: throughput {:.2}x, cpu per check {:.2}x",
        rows[1].0 / rows[0].0,
        rows[1].1 / rows[0].1
    );
    Ok(errors)
}

/// A gRPC message as it travels: no compression flag, a 4-byte big-endian
/// length, then the protobuf.
fn grpc_frame(request: &CheckRequest) -> Vec<u8> {
    use prost::Message;
    let message = request.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    frame
}

/// Runs h2load for the phase's duration on the load core; returns the
/// requests done and their rate.
async fn run_h2load(args: &RunArgs, addr: &str, body: &Path) -> anyhow::Result<(u64, f64)> {
    let url = format!("http://{addr}/envoy.service.auth.v3.Authorization/Check");
    let output = Command::new("h2load")
        .args(["-c", "16", "-m", "16", "-t", "1"])
        .arg("-D")
        .arg(args.duration_secs.to_string())
        .arg("-d")
        .arg(body)
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg(&url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |line: &str, after: &str| -> Option<f64> {
        let rest = line.split(after).nth(1)?;
        rest.split_whitespace()
            .next()?
            .trim_end_matches([',', 's'])
            .parse()
            .ok()
    };
    let mut done = None;
    let mut rps = None;
    for line in text.lines() {
        if line.starts_with("finished in") {
            rps = line
                .split(", ")
                .nth(1)
                .and_then(|r| r.split(' ').next()?.parse().ok());
        }
        if line.starts_with("requests:") {
            done = field(line, "started, ").map(|n| n as u64);
            // The counts after "succeeded, " and "failed, " are the failed
            // and errored requests.
            let bad =
                field(line, "succeeded, ").unwrap_or(0.0) + field(line, "failed, ").unwrap_or(0.0);
            if bad > 0.0 {
                anyhow::bail!("h2load: failed or errored requests: {line}");
            }
        }
    }
    match (done, rps) {
        (Some(done), Some(rps)) => Ok((done, rps)),
        _ => anyhow::bail!("cannot read h2load's output:\n{text}"),
    }
}
