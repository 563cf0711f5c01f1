//! The whole `CheckRequest → Decision` path, with Envoy's request as the
//! gRPC server reads it: any method, path, host and headers, and sometimes
//! one of three real tokens (a member allowed to call functions, a
//! disabled user, a user of another organization), so the fuzzer gets
//! past the credential phase. Invariants: never a panic; an allow of a
//! protected path is alice's, holding a token, and sets `x-dispatch-user`.
#![no_main]

mod world;

use arbitrary::Arbitrary;
use dispatch_authz::{
    check::{Decision, Permit},
    server::grpc::request_view,
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest,
    attribute_context::{HttpRequest, Request},
};
use libfuzzer_sys::fuzz_target;
use world::world;

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    /// 0: alice (allowed), 1: bob (disabled), 2: carol (globex); else none.
    token: u8,
}

fuzz_target!(|input: Input| {
    let world = world();
    let mut headers: std::collections::HashMap<String, String> =
        input.headers.into_iter().collect();
    let token = world.tokens.get(usize::from(input.token));
    if let Some(token) = token {
        headers.insert("authorization".into(), format!("Bearer {token}"));
    }
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: input.method,
                    path: input.path,
                    host: input.host,
                    headers,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    };
    let Ok(view) = request_view(&request) else {
        return;
    };
    let checked = world.runtime.block_on(world.live.current().check(&view));
    if let Decision::Allow { permit, upstream } = &checked.decision {
        if let Permit::Subject { who, .. } = permit {
            assert_eq!(input.token, 0, "allowed someone other than alice: {who:?}");
            let set = format!("{upstream:?}");
            assert!(set.contains("x-dispatch-user"), "{set}");
        }
    }
});
