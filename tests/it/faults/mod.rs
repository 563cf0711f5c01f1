//! Issue 17, item 3: faults, each with the behaviour expected of it written
//! above its test. Always: fail closed (503 denials, never an allow, never
//! a transport error, in time), recover without a restart, and never serve
//! a stale allow after. Faults tested elsewhere: PostgreSQL stopped and
//! restarted under load (`replicas.rs`), an identity provider down, slow or
//! answering garbage (`oidc.rs`), GitHub rate-limiting, failing and slow
//! (`github.rs`), a database table gone (`api.rs`).

mod clock;
mod killed;
mod sqlite;

use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::{
    CheckResponse, authorization_client::AuthorizationClient,
};

use crate::common::*;

/// A Check of `GET /` with `authorization`, as Envoy sends it with a
/// `timeout` (its `grpc-timeout`); `Err` for a transport error.
pub async fn check_within(
    addr: &str,
    authorization: &str,
    timeout: Duration,
) -> Result<CheckResponse, tonic::Status> {
    let mut client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(check_request(
        "GET",
        "/",
        &[("authorization", authorization)],
    ));
    request.set_timeout(timeout);
    client.check(request).await.map(|r| r.into_inner())
}
