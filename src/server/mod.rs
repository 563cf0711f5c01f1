//! The listeners: Envoy's Authorization service, `grpc.health.v1.Health`
//! and server reflection (v1 and v1alpha) on one gRPC port; the admin API on
//! its own; the HTTP check listener (`http/`) for proxies that ask over HTTP.

pub mod admin;
mod conn;
pub mod grpc;
pub mod http;
pub mod ops;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use thiserror::Error;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::{StreamExt, wrappers::UnixListenerStream};
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::server::HealthReporter;

use crate::check::Live;

pub use admin::{AdminServer, AdminService, Reload, Reloaded};
pub use conn::Unvectored;
pub use grpc::{AuthorizationServer, AuthorizationService};
pub use http::HttpCheck;
pub use ops::Operations;

/// A bound listener; binding happens before serving so that tests can bind
/// port 0 and read the port back.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot build reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves until `shutdown` resolves, then stops accepting, reports
/// NOT_SERVING, and lets in-flight checks finish for up to `grace`.
pub async fn serve(
    listener: Listener,
    admin: Option<(TcpListener, AdminService)>,
    http: Option<(Listener, HttpCheck)>,
    operations: Option<(Listener, Operations)>,
    checker: Arc<Live>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    // Liveness ("") is SERVING at once; the Authorization service reports
    // SERVING only while every identity source can verify tokens.
    // Reported once before serving, so the first health check has an answer.
    let mut reported = None;
    report_readiness(&health, &checker, &mut reported).await;
    let readiness = track_readiness(health.clone(), checker.clone(), reported);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(crate::proto::EXT_AUTHZ_FILE_DESCRIPTOR_SET)
    };
    let router = Server::builder()
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(AuthorizationServer::new(AuthorizationService::new(checker)));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stop_rx.await;
    };
    let server = async {
        match listener {
            // TCP_NODELAY: without it the first response on a connection
            // waits ~40 ms for Nagle (see crates.md). `Unvectored`: answers
            // batched into few system calls (conn.rs).
            Listener::Tcp(l) => {
                let incoming = TcpIncoming::from(l)
                    .with_nodelay(Some(true))
                    .map(|conn| conn.map(Unvectored));
                router.serve_with_incoming_shutdown(incoming, stopped).await
            }
            Listener::Unix(l, _) => {
                let incoming = UnixListenerStream::new(l).map(|conn| conn.map(Unvectored));
                router.serve_with_incoming_shutdown(incoming, stopped).await
            }
        }
    };
    // The admin API: its own listener (loopback by default), stopped with
    // the main one.
    let (admin_stop_tx, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let admin_reflection = {
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(crate::proto::admin::FILE_DESCRIPTOR_SET)
        };
        (reflection().build_v1()?, reflection().build_v1alpha()?)
    };
    let admin_server = async {
        match admin {
            Some((listener, service)) => {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                // Health (SERVING while it runs) and reflection here too, so
                // `grpcurl` and probes work on the admin port as on the main.
                let (admin_health, admin_health_service) = tonic_health::server::health_reporter();
                admin_health
                    .set_serving::<AdminServer<AdminService>>()
                    .await;
                let (v1, v1alpha) = admin_reflection;
                Server::builder()
                    .add_service(admin_health_service)
                    .add_service(v1)
                    .add_service(v1alpha)
                    .add_service(AdminServer::new(service))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = admin_stop_rx.await;
                    })
                    .await
            }
            None => Ok(()),
        }
    };
    // The HTTP check listener stops accepting with the gRPC one, and its
    // in-flight checks get the same grace.
    let (http_stop_tx, http_stop_rx) = tokio::sync::watch::channel(false);
    let http_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let http_server = async {
        if let Some((listener, service)) = http {
            http::serve(listener, service, http_stopped(http_stop_rx.clone())).await;
        }
        Ok::<(), tonic::transport::Error>(())
    };
    // The operations listener too (readiness reports NOT_SERVING meanwhile
    // through the health service).
    let ops_server = async {
        if let Some((listener, service)) = operations {
            http::serve(listener, service, http_stopped(http_stop_rx.clone())).await;
        }
        Ok::<(), tonic::transport::Error>(())
    };
    let server =
        async { tokio::try_join!(server, admin_server, http_server, ops_server).map(|_| ()) };
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown => {}
        () = readiness => {}
    }
    let _ = admin_stop_tx.send(());
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: finishing in-flight checks"
    );
    set_not_serving(&health).await;
    let _ = stop_tx.send(());
    let _ = http_stop_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("shutdown grace period elapsed; closing remaining connections"),
    }
    Ok(())
}

/// The Authorization service's health follows `/readyz`: keys loaded, the
/// database answering, the other replicas followed. Re-read every 250 ms,
/// and at once when the replicas' state changes (a replica that starts to
/// follow is told SERVING without waiting for the next tick).
async fn track_readiness(health: HealthReporter, checker: Arc<Live>, mut reported: Option<bool>) {
    let mut replicas = checker.replicas();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            changed = replicas.changed() => {
                if changed.is_err() {
                    // The sender lives in `checker`: it cannot be gone.
                    continue;
                }
            }
        }
        report_readiness(&health, &checker, &mut reported).await;
    }
}

async fn report_readiness(health: &HealthReporter, checker: &Live, reported: &mut Option<bool>) {
    let readiness = checker.readiness().await;
    let ready = readiness.is_ready();
    if *reported == Some(ready) {
        return;
    }
    if ready {
        health.set_serving::<AuthorizationServer>().await;
    } else {
        tracing::warn!(
            keys_loaded = readiness.keys,
            database = readiness
                .database
                .as_ref()
                .err()
                .map_or("ok", String::as_str),
            replicas = readiness.replicas.describe(),
            "not ready"
        );
        health.set_not_serving::<AuthorizationServer>().await;
    }
    *reported = Some(ready);
}

async fn set_not_serving(health: &HealthReporter) {
    health.set_not_serving::<AuthorizationServer>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
}
