//! Issue 17, item 2: what no request may get, in any world. Worlds
//! (organizations, roles, users enabled or not, memberships, bindings) and
//! requests (who, method, path, host, organization, forged `x-dispatch-*`
//! headers in any spelling) are generated; each request goes through the
//! conversion the gRPC server makes (`CheckRequest` → view → pipeline →
//! `CheckResponse`) over the in-memory store. The decision tables say what
//! each row gets; these hold for every row nobody wrote.
//!
//! The oracle below is written from README's model, not from the code:
//! action from the method, resource from the test's routes, organization
//! from `x-dispatch-org` or the default.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use dispatch_authz::{
    check::Checker,
    server::grpc::{check_response, request_view},
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse,
    attribute_context::{HttpRequest, Request},
};
use proptest::prelude::*;

use crate::{
    common::{
        memory::{MemoryStore, World},
        *,
    },
    pipeline::pipeline_with,
    rbac::credential,
};

const ORGS: [&str; 2] = ["acme", "globex"];
const RESOURCES: [&str; 5] = ["function", "image", "orders", "shop", "runs"];
const ACTIONS: [&str; 4] = ["get", "create", "update", "delete"];
const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];

/// A permission: each side an index, or `*`.
type PermSpec = (Option<usize>, Option<usize>);

#[derive(Debug, Clone)]
struct RoleSpec {
    /// `None`: global.
    org: Option<usize>,
    perms: Vec<PermSpec>,
}

#[derive(Debug, Clone)]
struct UserSpec {
    enabled: bool,
    member: [bool; 2],
    default_org: Option<usize>,
    /// Role indexes (modulo the roles there are); an organization's role
    /// only where the user is a member, as the admin API allows.
    roles: Vec<usize>,
}

#[derive(Debug, Clone)]
struct WorldSpec {
    roles: Vec<RoleSpec>,
    users: Vec<UserSpec>,
}

impl UserSpec {
    fn is_member(&self, org: usize) -> bool {
        self.member[org] || self.default_org == Some(org)
    }
}

impl WorldSpec {
    fn bound(&self, user: usize) -> impl Iterator<Item = (usize, &RoleSpec)> {
        let spec = &self.users[user];
        let mut roles: Vec<usize> = spec.roles.iter().map(|r| r % self.roles.len()).collect();
        roles.sort_unstable();
        roles.dedup();
        roles
            .into_iter()
            .map(|r| (r, &self.roles[r]))
            .filter(|(_, role)| role.org.is_none_or(|o| spec.is_member(o)))
    }

    fn world(&self) -> World {
        let mut w = World::default();
        for org in ORGS {
            w.org(org);
        }
        for (i, role) in self.roles.iter().enumerate() {
            let perms: Vec<String> = role
                .perms
                .iter()
                .map(|(r, a)| {
                    let r = r.map_or("*", |r| RESOURCES[r]);
                    let a = a.map_or("*", |a| ACTIONS[a]);
                    format!("{r}:{a}")
                })
                .collect();
            let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
            w.role(role.org.map_or("", |o| ORGS[o]), &format!("r{i}"), &perms);
        }
        for (u, spec) in self.users.iter().enumerate() {
            w.user(USERS[u]);
            if !spec.enabled {
                w.disable(USERS[u]);
            }
            for (o, org) in ORGS.iter().enumerate() {
                if spec.is_member(o) {
                    w.member(org, USERS[u], spec.default_org == Some(o));
                }
            }
            for (r, role) in self.bound(u) {
                w.bind(role.org.map_or("", |o| ORGS[o]), &format!("r{r}"), USERS[u]);
            }
        }
        w
    }

    /// Whether `user` may do `action` on `resource` in `org`, by README.
    fn grants(&self, user: usize, org: usize, resource: &str, action: &str) -> bool {
        let spec = &self.users[user];
        let bound: Vec<&RoleSpec> = self.bound(user).map(|(_, r)| r).collect();
        let has_global = bound.iter().any(|r| r.org.is_none());
        if !spec.enabled || !(spec.is_member(org) || has_global) {
            return false;
        }
        bound
            .iter()
            .filter(|r| r.org.is_none_or(|o| o == org))
            .flat_map(|r| &r.perms)
            .any(|(r, a)| {
                r.is_none_or(|r| RESOURCES[r] == resource) && a.is_none_or(|a| ACTIONS[a] == action)
            })
    }
}

fn role_spec() -> impl Strategy<Value = RoleSpec> {
    let perm = (
        prop::option::weighted(0.8, 0..RESOURCES.len()),
        prop::option::weighted(0.8, 0..ACTIONS.len()),
    );
    (
        prop::option::weighted(0.7, 0..ORGS.len()),
        prop::collection::vec(perm, 1..4),
    )
        .prop_map(|(org, perms)| RoleSpec { org, perms })
}

fn user_spec() -> impl Strategy<Value = UserSpec> {
    (
        prop::bool::weighted(0.85),
        [any::<bool>(), any::<bool>()],
        prop::option::of(0..ORGS.len()),
        prop::collection::vec(0..8usize, 0..4),
    )
        .prop_map(|(enabled, member, default_org, roles)| UserSpec {
            enabled,
            member,
            default_org,
            roles,
        })
}

fn world_spec() -> impl Strategy<Value = WorldSpec> {
    (
        prop::collection::vec(role_spec(), 1..6),
        prop::collection::vec(user_spec(), USERS.len()),
    )
        .prop_map(|(roles, users)| WorldSpec { roles, users })
}

/// Who calls: a user of the world, a valid token of a subject nobody
/// registered, or no credential.
#[derive(Debug, Clone, Copy)]
enum Who {
    User(usize),
    Stranger,
    Nobody,
}

#[derive(Debug, Clone)]
struct Call {
    who: Who,
    method: String,
    host: String,
    path: String,
    /// Every header but the credential, as the client spelled it.
    headers: Vec<(String, String)>,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        6 => (0..USERS.len()).prop_map(Who::User),
        1 => Just(Who::Stranger),
        1 => Just(Who::Nobody),
    ]
}

fn method() -> impl Strategy<Value = String> {
    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "PROPFIND",
    ];
    prop::sample::select(&METHODS[..]).prop_map(str::to_owned)
}

/// Paths the oracle can read: the test's routes and the default map.
fn plain_path() -> impl Strategy<Value = String> {
    let resource = prop::sample::select(&RESOURCES[..]);
    let id = prop::option::of("[a-z0-9]{1,6}");
    prop_oneof![
        (resource, id.clone()).prop_map(|(r, id)| match id {
            Some(id) => format!("/v1/{r}/{id}"),
            None => format!("/v1/{r}"),
        }),
        id.clone()
            .prop_map(|id| format!("/api/orders/{}", id.unwrap_or_default())),
        "[a-z]{1,6}".prop_map(|x| format!("/api/{x}")),
        Just("/healthz".to_owned()),
        Just("/v1/runs?functionName=f".to_owned()),
    ]
}

/// `name` in a spelling a client might use: any case, `_` for `-`.
fn spelling(name: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<bool>(), any::<bool>()), name.len()).prop_map(move |flips| {
        name.chars()
            .zip(flips)
            .map(|(c, (upper, underscore))| match c {
                '-' if underscore => '_',
                c if upper => c.to_ascii_uppercase(),
                c => c,
            })
            .collect()
    })
}

fn forged() -> impl Strategy<Value = (String, String)> {
    const NAMES: [&str; 6] = [
        "x-dispatch-user",
        "x-dispatch-roles",
        "x-dispatch-subject-kind",
        "x-dispatch-groups",
        "x-dispatch-identity",
        "x-dispatch-anything",
    ];
    let name = prop::sample::select(&NAMES[..]).prop_flat_map(spelling);
    (
        name,
        prop::sample::select(&["mallory", "admin", "acme", ""][..]),
    )
        .prop_map(|(n, v)| (n, v.to_owned()))
}

fn call_with(path: impl Strategy<Value = String>) -> impl Strategy<Value = Call> {
    let org = prop::option::of((
        spelling("x-dispatch-org"),
        prop::sample::select(&["acme", "globex", "nope", "ACME"][..]),
    ));
    (
        who(),
        method(),
        prop::sample::select(&["api.test", "shop.test", "SHOP.test"][..]),
        path,
        org,
        prop::collection::vec(forged(), 0..4),
    )
        .prop_map(|(who, method, host, path, org, mut headers)| {
            if let Some((name, value)) = org {
                headers.push((name, value.to_owned()));
            }
            Call {
                who,
                method,
                host: host.to_owned(),
                path,
                headers,
            }
        })
}

/// One token per subject for the whole run (signing is the slow part).
fn credential_of(who: Who) -> Option<String> {
    static TOKENS: OnceLock<std::sync::Mutex<HashMap<String, String>>> = OnceLock::new();
    let subject = match who {
        Who::User(u) => USERS[u],
        Who::Stranger => "stranger",
        Who::Nobody => return None,
    };
    let tokens = TOKENS.get_or_init(Default::default);
    let mut tokens = tokens.lock().unwrap();
    let token = tokens
        .entry(subject.to_owned())
        .or_insert_with(|| credential(subject));
    Some(format!("Bearer {token}"))
}

/// What Envoy sends: names lower-cased, repeated names joined with `,`.
fn envoy_request(call: &Call) -> CheckRequest {
    let mut headers: HashMap<String, String> = HashMap::new();
    let credential = credential_of(call.who).map(|c| ("authorization".to_owned(), c));
    for (name, value) in call.headers.iter().cloned().chain(credential) {
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value)
            })
            .or_insert(value);
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    id: "req-1".into(),
                    method: call.method.clone(),
                    path: call.path.clone(),
                    host: call.host.clone(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    headers,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}

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

fn resource_of<'a>(host: &str, path: &'a str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or_default();
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    // A route for the request's host first, then the longest prefix.
    if under("/api") && host.eq_ignore_ascii_case("shop.test") {
        return Some("shop");
    }
    if under("/api/orders") {
        return Some("orders");
    }
    if under("/api") {
        return None;
    }
    let mut segments = path.strip_prefix("/v1/")?.split('/');
    segments.next().filter(|s| !s.is_empty())
}

fn action_of(method: &str) -> Option<&'static str> {
    Some(match method {
        "GET" | "HEAD" => "get",
        "POST" => "create",
        "PUT" | "PATCH" => "update",
        "DELETE" => "delete",
        _ => return None,
    })
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

/// A spelling of `path` that some upstream reads as `path` itself.
#[derive(Debug, Clone)]
enum Respell {
    /// The byte at this index (of a segment's letters) percent-encoded,
    /// in upper or lower case hex.
    Encode(usize, bool),
    /// A slash doubled.
    DoubleSlash(usize),
    /// `/./` for a slash.
    Dot(usize),
    /// `/x/../` for a slash.
    DotDot(usize),
    /// A slash as `%2F` or `%2f`.
    EncodedSlash(usize, bool),
    /// `;x` after a segment (a path parameter to Tomcat and Jetty).
    Parameter(usize),
    /// A backslash for a slash (the same to IIS and some routers).
    Backslash(usize),
    /// A trailing slash, `?`, or `#x`.
    Trailing(&'static str),
}

fn respell() -> impl Strategy<Value = Respell> {
    let i = 0..64usize;
    prop_oneof![
        (i.clone(), any::<bool>()).prop_map(|(i, u)| Respell::Encode(i, u)),
        i.clone().prop_map(Respell::DoubleSlash),
        i.clone().prop_map(Respell::Dot),
        i.clone().prop_map(Respell::DotDot),
        (i.clone(), any::<bool>()).prop_map(|(i, u)| Respell::EncodedSlash(i, u)),
        i.clone().prop_map(Respell::Parameter),
        i.prop_map(Respell::Backslash),
        prop::sample::select(&["/", "?", "#x", "/.", "%00", "%20"][..]).prop_map(Respell::Trailing),
    ]
}

impl Respell {
    fn apply(&self, path: &str) -> String {
        let nth = |i: usize, pred: fn(&(usize, char)) -> bool| {
            let found: Vec<usize> = path.char_indices().filter(pred).map(|(at, _)| at).collect();
            found[i % found.len()]
        };
        let slash = |i| nth(i, |(_, c)| *c == '/');
        let splice = |at: usize, len: usize, with: &str| {
            format!("{}{with}{}", &path[..at], &path[at + len..])
        };
        match *self {
            Respell::Encode(i, upper) => {
                let at = nth(i, |(_, c)| c.is_ascii_alphanumeric());
                let byte = path.as_bytes()[at];
                let hex = if upper {
                    format!("%{byte:02X}")
                } else {
                    format!("%{byte:02x}")
                };
                splice(at, 1, &hex)
            }
            Respell::DoubleSlash(i) => splice(slash(i), 1, "//"),
            Respell::Dot(i) => splice(slash(i), 1, "/./"),
            Respell::DotDot(i) => splice(slash(i), 1, "/x/../"),
            Respell::EncodedSlash(i, upper) => {
                let at = slash(i);
                if at == 0 {
                    return path.to_owned();
                }
                splice(at, 1, if upper { "%2F" } else { "%2f" })
            }
            Respell::Parameter(i) => {
                let at = slash(i);
                if at == 0 {
                    return format!("{path};x");
                }
                splice(at, 0, ";x")
            }
            Respell::Backslash(i) => {
                let at = slash(i);
                if at == 0 {
                    return path.to_owned();
                }
                splice(at, 1, "\\")
            }
            Respell::Trailing(tail) => format!("{path}{tail}"),
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
