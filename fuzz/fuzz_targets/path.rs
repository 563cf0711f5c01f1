//! Path reading and route matching: any path and host (`PATH\nHOST`)
//! through `RequestPath::parse` and every reading a common upstream makes
//! (`policy::target`). Never a panic; a path with two readings is refused,
//! never routed.
#![no_main]

use std::sync::OnceLock;

use dispatch_authz::policy::{PublicPaths, RequestPath, RouteMap, target};
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (PublicPaths, RouteMap) {
    static SETUP: OnceLock<(PublicPaths, RouteMap)> = OnceLock::new();
    SETUP.get_or_init(|| {
        (
            PublicPaths::new(&["/healthz", "/v1/public"]).unwrap(),
            RouteMap::dispatch(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, host) = text.split_once('\n').unwrap_or((text, "api.test"));
    let (public, routes) = setup();
    if let Ok(request) = RequestPath::parse(path) {
        let _ = target(&request, host, public, Some(routes));
    }
});
