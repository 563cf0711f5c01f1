//! `dispatch-authz healthcheck`: asks the running server's check listener
//! for its gRPC health, for a container's `HEALTHCHECK` or a probe that can
//! only run a command. Exit status 0 when SERVING.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::config::{Config, ListenAddr};

/// `service`: "" (the process) or `envoy.service.auth.v3.Authorization`
/// (ready: keys loaded, database answering).
pub async fn healthcheck(config: &Config, service: &str) -> anyhow::Result<()> {
    let ListenAddr::Tcp(addr) = &config.listen else {
        bail!("server.listen is a unix socket: healthcheck speaks TCP only");
    };
    // A server listening on every address answers on loopback.
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        *addr
    };
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("no server on {addr} (server.listen)"))?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .with_context(|| format!("health check on {addr} failed"))?
        .into_inner()
        .status;
    if status != ServingStatus::Serving as i32 {
        let name = ServingStatus::try_from(status).map_or("UNKNOWN", |s| s.as_str_name());
        bail!("{addr}: {name}");
    }
    println!("{addr}: SERVING");
    Ok(())
}
