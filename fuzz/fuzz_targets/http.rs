//! The HTTP check listener's way in (`server::http`): a proxy's check
//! request read where each proxy style puts the original request (Envoy's
//! `http_service`, nginx `auth_request`, Caddy/Traefik `forward_auth`),
//! decided, and written back as the HTTP answer the proxy acts on. Any
//! method, URI and headers a proxy could send (hyper has already refused
//! what is not HTTP), sometimes with one of the three real tokens.
//! Invariants: never a panic; an answer is 200 only for an allow, and one
//! carrying an identity is alice's, who sent her token.
#![no_main]

mod world;

use arbitrary::Arbitrary;
use dispatch_authz::server::{HttpCheck, http::Style};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use world::world;

#[derive(Arbitrary, Debug)]
struct Input {
    /// 0: Envoy, 1: nginx, 2: Caddy/Traefik.
    style: u8,
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    /// 0: alice (allowed), 1: bob (disabled), 2: carol (globex); else none.
    token: u8,
}

fuzz_target!(|input: Input| {
    let world = world();
    let style = match input.style % 3 {
        0 => Style::Envoy,
        1 => Style::Nginx,
        _ => Style::Forwarded,
    };
    // What hyper would hand over: anything else it refuses itself.
    let (Ok(method), Ok(uri)) = (
        Method::from_bytes(input.method.as_bytes()),
        input.uri.parse::<Uri>(),
    ) else {
        return;
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    if let Some(token) = world.tokens.get(usize::from(input.token)) {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        request.headers_mut().insert("authorization", value);
    }
    let check = HttpCheck::new(world.live.clone(), style);
    let response = world.runtime.block_on(check.check(request));
    let identity = response.headers().get("x-dispatch-user");
    if identity.is_some() {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(input.token, 0, "an identity for someone else: {identity:?}");
    }
    if response.status() == StatusCode::OK {
        // An allow has no body; a denial always explains itself.
        assert!(response.headers().get("content-type").is_none());
    }
});
