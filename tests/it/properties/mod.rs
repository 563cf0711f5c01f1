//! Issue 17, item 2: what no request may get, in any world. Worlds
//! (organizations, roles, users enabled or not, memberships, bindings) and
//! requests (who, method, path, host, organization, forged `x-dispatch-*`
//! headers in any spelling) are generated; each request goes through the
//! conversion the gRPC server makes (`CheckRequest` → view → pipeline →
//! `CheckResponse`) over the in-memory store. The decision tables say what
//! each row gets; these hold for every row nobody wrote.
//!
//! The oracle (`world.rs`) is written from README's model, not from the
//! code. The gRPC and HTTP front ends are compared in `http_check.rs`.

mod calls;
mod respell;
mod world;

use std::sync::Arc;

use dispatch_authz::{
    check::Checker,
    server::grpc::{check_response, request_view},
};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use proptest::prelude::*;

use crate::{
    common::{memory::MemoryStore, *},
    pipeline::pipeline_with,
};
use calls::{Call, Who, call_with, envoy_request, plain_path};
use respell::respell;
use world::{ORGS, USERS, WorldSpec, action_of, resource_of, world_spec};

async fn decide(checker: &Checker, call: &Call) -> CheckResponse {
    let request = envoy_request(call);
    let view = request_view(&request).expect("a well-formed CheckRequest");
    check_response(checker.check(&view).await)
}

fn pipeline(spec: &WorldSpec) -> Checker {
    pipeline_with(Arc::new(MemoryStore::new(spec.world())), |toml| toml)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn is_dispatch_name(name: &str) -> bool {
    name.to_ascii_lowercase()
        .replace('_', "-")
        .starts_with("x-dispatch-")
}

/// The invariants of one answer that need no oracle: on an allow, every
/// client-written `x-dispatch-*` name (any spelling) is removed or
/// overwritten by exactly that name, and nothing is both set and removed.
fn headers_hold(call: &Call, response: &CheckResponse) -> Result<(), TestCaseError> {
    if code(response) != OK {
        return Ok(());
    }
    // `upstream_headers` also asserts every set overwrites.
    let set: Vec<String> = upstream_headers(response)
        .into_iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    let removed: Vec<String> = removed(response)
        .iter()
        .map(|k| k.to_ascii_lowercase())
        .collect();
    let both: Vec<&String> = set.iter().filter(|n| removed.contains(n)).collect();
    prop_assert!(both.is_empty(), "both set and removed: {both:?}");
    for (name, _) in call.headers.iter().filter(|(n, _)| is_dispatch_name(n)) {
        let name = name.to_ascii_lowercase();
        prop_assert!(
            removed.contains(&name) || set.contains(&name),
            "client's {name} reaches the upstream: set {set:?}, removed {removed:?}"
        );
    }
    Ok(())
}

/// An allow of a protected path is a known, enabled user's, in the
/// organization asked for (or its default), holding a grant for exactly
/// this resource and action there.
fn allow_is_granted(
    spec: &WorldSpec,
    call: &Call,
    response: &CheckResponse,
) -> Result<(), TestCaseError> {
    if code(response) != OK {
        return Ok(());
    }
    let headers = upstream_headers(response);
    let Some(user) = header(&headers, "x-dispatch-user") else {
        prop_assert_eq!(call.path.as_str(), "/healthz", "an allow with no subject");
        return Ok(());
    };
    let u = USERS.iter().position(|u| *u == user);
    let u = u.ok_or_else(|| TestCaseError::fail(format!("allowed as {user}")))?;
    prop_assert!(
        matches!(call.who, Who::User(w) if w == u),
        "allowed as {user}"
    );
    let asked: Vec<&str> = call
        .headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().replace('_', "-") == "x-dispatch-org")
        .map(|(_, v)| v.as_str())
        .collect();
    let org = header(&headers, "x-dispatch-org").unwrap_or_default();
    match asked[..] {
        [] => prop_assert_eq!(spec.users[u].default_org.map(|o| ORGS[o]), Some(org)),
        [one] => prop_assert_eq!(one, org),
        _ => return Err(TestCaseError::fail("allowed with two organizations")),
    }
    let o = ORGS.iter().position(|o| *o == org).unwrap();
    let resource = resource_of(&call.host, &call.path);
    let action = action_of(&call.method);
    let (Some(resource), Some(action)) = (resource, action) else {
        return Err(TestCaseError::fail(format!(
            "allowed with resource {resource:?}, action {action:?}"
        )));
    };
    prop_assert!(
        spec.grants(u, o, resource, action),
        "{user} allowed {action} on {resource} in {org} without a grant"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Forged headers never pass, nothing is set and removed, and an allow
    /// is always granted, over generated worlds and requests.
    #[test]
    fn what_an_answer_lets_through_is_granted_and_ours(
        spec in world_spec(),
        calls in prop::collection::vec(call_with(plain_path()), 1..8),
    ) {
        let runtime = runtime();
        let checker = pipeline(&spec);
        for call in &calls {
            let response = runtime.block_on(decide(&checker, call));
            headers_hold(call, &response)?;
            allow_is_granted(&spec, call, &response)?;
        }
    }
}

/// The identity an allow gives: who, where, with which roles.
fn allowed_as(response: &CheckResponse) -> Option<[Option<String>; 3]> {
    (code(response) == OK).then(|| {
        let headers = upstream_headers(response);
        ["x-dispatch-user", "x-dispatch-org", "x-dispatch-roles"]
            .map(|name| header(&headers, name).map(str::to_owned))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Another spelling of the same path gets the same decision (the same
    /// identity, organization and roles on an allow) or a refusal: never
    /// an allow the plain spelling would not get.
    #[test]
    fn another_spelling_of_a_path_is_decided_the_same_or_refused(
        spec in world_spec(),
        call in call_with(plain_path().prop_filter("no query", |p| !p.contains('?'))),
        respellings in prop::collection::vec(respell(), 1..3),
    ) {
        let runtime = runtime();
        let checker = pipeline(&spec);
        let plain = allowed_as(&runtime.block_on(decide(&checker, &call)));
        let mut variant = call.clone();
        for r in &respellings {
            variant.path = r.apply(&variant.path);
        }
        let response = runtime.block_on(decide(&checker, &variant));
        headers_hold(&variant, &response)?;
        if let Some(got) = allowed_as(&response) {
            prop_assert_eq!(
                Some(got), plain,
                "{} allowed, {} not the same way", variant.path, call.path
            );
        }
    }
}
