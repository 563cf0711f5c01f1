//! From an HTTP request to the question RBAC answers: which resource, which
//! action.
//!
//! Dispatch's model: the action comes from the method (GET/HEAD → get,
//! POST → create, PUT/PATCH → update, DELETE → delete) and the resource from
//! the path (`/v1/function/x` → `function`). Unlike Dispatch, the query
//! string never becomes part of the resource (`/v1/runs?functionName=f` is
//! `runs`, not `runs?functionName=f`): [`RequestPath`] has cut it off.

use std::{borrow::Cow, fmt};

use thiserror::Error;

use super::RequestPath;

/// What a request does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Get,
    Create,
    Update,
    Delete,
}

impl Action {
    /// `None` for methods with no place in the model (OPTIONS, TRACE,
    /// CONNECT, anything unknown): such requests are denied.
    pub fn from_method(method: &str) -> Option<Self> {
        Some(match method {
            "GET" | "HEAD" => Self::Get,
            "POST" => Self::Create,
            "PUT" | "PATCH" => Self::Update,
            "DELETE" => Self::Delete,
            _ => return None,
        })
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "get" => Self::Get,
            "create" => Self::Create,
            "update" => Self::Update,
            "delete" => Self::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dispatch's API: every resource under `/v1/` that its IAM knew.
pub const DISPATCH_RESOURCES: &[&str] = &[
    "function",
    "image",
    "baseimage",
    "secret",
    "event",
    "api",
    "runs",
    "application",
    "serviceclass",
    "serviceinstance",
    "iam",
];

/// One mapping: requests for `host` (any host when `None`) whose path starts
/// with `prefix` (whole segments) concern `resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: Option<String>,
    pub prefix: Vec<String>,
    pub resource: String,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("route {prefix:?}: {reason}")]
pub struct InvalidRoute {
    pub prefix: String,
    pub reason: String,
}

/// Path prefixes to resources. The most specific route wins: a route for the
/// request's host before a route for any host, then the longest prefix.
#[derive(Debug, Clone, Default)]
pub struct RouteMap {
    routes: Vec<Route>,
}

impl RouteMap {
    /// `/v1/<resource>` for each of Dispatch's resources.
    pub fn dispatch() -> Self {
        let routes = DISPATCH_RESOURCES
            .iter()
            .map(|r| Route {
                host: None,
                prefix: vec!["v1".into(), (*r).into()],
                resource: (*r).into(),
            })
            .collect();
        Self { routes }
    }

    /// Adds a route from configuration: a plain absolute path prefix and a
    /// resource name.
    pub fn with(
        mut self,
        host: Option<&str>,
        prefix: &str,
        resource: &str,
    ) -> Result<Self, InvalidRoute> {
        let invalid = |reason: &str| InvalidRoute {
            prefix: prefix.to_owned(),
            reason: reason.to_owned(),
        };
        if prefix.contains(['?', '#', '%']) {
            return Err(invalid("use a plain path without '?', '#' or '%'"));
        }
        let path = RequestPath::parse(prefix).map_err(|e| invalid(&e.to_string()))?;
        let valid_resource = !resource.is_empty()
            && resource
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_resource {
            return Err(invalid(
                "resource: use lower-case letters, digits, '-' and '_'",
            ));
        }
        self.routes.push(Route {
            host: host.map(str::to_ascii_lowercase),
            prefix: path.segments().map(|s| s.into_owned()).collect(),
            resource: resource.to_owned(),
        });
        Ok(self)
    }

    /// The resource a request concerns, or `None` (unmatched: denied unless
    /// the path is public).
    /// (Check asks [`super::target`], which reads the path every way.)
    #[cfg(test)]
    pub fn resource(&self, host: &str, path: &RequestPath<'_>) -> Option<&str> {
        let segments: Vec<Cow<'_, str>> = path.segments().collect();
        self.resource_of(host, &segments, false)
    }

    /// The resource of these (read) segments. A host matches with its port
    /// and a trailing dot (`api.example.com.`, the same DNS name) cut off.
    pub(super) fn resource_of(
        &self,
        host: &str,
        segments: &[Cow<'_, str>],
        fold_case: bool,
    ) -> Option<&str> {
        let host = host.split(':').next().unwrap_or_default();
        let host = host.strip_suffix('.').unwrap_or(host);
        self.routes
            .iter()
            .filter(|r| {
                r.host
                    .as_deref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(host))
            })
            .filter(|r| {
                r.prefix.len() <= segments.len()
                    && r.prefix
                        .iter()
                        .zip(segments)
                        .all(|(p, s)| super::readings::same_segment(p, s, fold_case))
            })
            .max_by_key(|r| (r.host.is_some(), r.prefix.len()))
            .map(|r| r.resource.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource<'m>(map: &'m RouteMap, host: &str, path: &str) -> Option<&'m str> {
        map.resource(host, &RequestPath::parse(path).unwrap())
    }

    #[test]
    fn methods_map_to_actions() {
        let cases = [
            ("GET", Some(Action::Get)),
            ("HEAD", Some(Action::Get)),
            ("POST", Some(Action::Create)),
            ("PUT", Some(Action::Update)),
            ("PATCH", Some(Action::Update)),
            ("DELETE", Some(Action::Delete)),
            ("OPTIONS", None),
            ("TRACE", None),
            ("get", None),
        ];
        for (method, want) in cases {
            assert_eq!(Action::from_method(method), want, "{method}");
        }
    }

    /// Action names as roles write them, each its own (found unchecked by
    /// cargo-mutants: `delete` parsed by name was not).
    #[test]
    fn action_names_parse_and_print_the_same() {
        for action in [Action::Get, Action::Create, Action::Update, Action::Delete] {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            assert_eq!(action.to_string(), action.as_str());
        }
        for bad in ["", "GET", "Delete", "remove", "*"] {
            assert_eq!(Action::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn dispatch_paths_map_to_resources_without_the_query() {
        let map = RouteMap::dispatch();
        let cases = [
            ("/v1/function", Some("function")),
            ("/v1/function/hello", Some("function")),
            ("/v1/runs?functionName=f", Some("runs")),
            ("/v1/baseimage/python3", Some("baseimage")),
            ("/v1/image/py", Some("image")),
            ("/v1/iam/policy", Some("iam")),
            ("/v1/event/subscriptions", Some("event")),
            ("/v1/functions", None),
            ("/v1", None),
            ("/v2/function", None),
            ("/", None),
        ];
        for (path, want) in cases {
            assert_eq!(resource(&map, "api.example.com", path), want, "{path}");
        }
    }

    #[test]
    fn configured_routes_prefer_host_then_length() {
        let map = RouteMap::default()
            .with(None, "/api", "api")
            .unwrap()
            .with(None, "/api/orders", "orders")
            .unwrap()
            .with(Some("shop.example.com"), "/api", "shop")
            .unwrap();
        assert_eq!(
            resource(&map, "other.example.com", "/api/orders/7"),
            Some("orders")
        );
        assert_eq!(
            resource(&map, "other.example.com", "/api/users"),
            Some("api")
        );
        assert_eq!(
            resource(&map, "shop.example.com:8443", "/api/orders/7"),
            Some("shop")
        );
        assert_eq!(resource(&map, "SHOP.example.com", "/api"), Some("shop"));
        // Regression (issue 9, item 14): the same DNS name with its root dot.
        assert_eq!(resource(&map, "shop.example.com.", "/api"), Some("shop"));
        assert_eq!(
            resource(&map, "shop.example.com.:443", "/api"),
            Some("shop")
        );
        assert_eq!(resource(&map, "other.example.com", "/apis"), None);
    }

    /// Regression: `/api/%6Frders` is `/api/orders` to the upstream, so it
    /// must not fall back to the less specific `/api` route (whose
    /// permissions may be wider), nor miss a public prefix.
    #[test]
    fn encoded_characters_match_as_the_upstream_reads_them() {
        let map = RouteMap::default()
            .with(None, "/api", "shop")
            .unwrap()
            .with(None, "/api/orders", "orders")
            .unwrap();
        assert_eq!(resource(&map, "h", "/api/%6Frders/7"), Some("orders"));
        assert_eq!(resource(&map, "h", "/%61pi/orders"), Some("orders"));
        assert_eq!(resource(&map, "h", "/api/%6frders%2Dx"), Some("shop"));
        let map = RouteMap::dispatch();
        assert_eq!(resource(&map, "h", "/v1/%66unction/x"), Some("function"));
    }

    #[test]
    fn bad_routes_are_refused() {
        for (prefix, resource) in [
            ("/a?x", "a"),
            ("/a/../b", "a"),
            ("/%2f", "a"),
            ("/a", ""),
            ("/a", "A b"),
            ("/a", "a.b"),
            ("/a", "a:b"),
        ] {
            assert!(
                RouteMap::default().with(None, prefix, resource).is_err(),
                "{prefix} {resource}"
            );
        }
        // Lower-case letters, digits, '-' and '_' are all a resource may hold.
        for resource in ["base-image", "base_image", "v2", "a-1_b"] {
            let map = RouteMap::default().with(None, "/x", resource).unwrap();
            let path = RequestPath::parse("/x/1").unwrap();
            assert_eq!(map.resource("h", &path), Some(resource));
        }
    }
}
