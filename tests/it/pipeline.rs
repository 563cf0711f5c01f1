//! The middle boundary: the real Check pipeline (configuration, identity
//! verification, caches, RBAC, upstream headers) over an in-memory world,
//! without gRPC or a database file. Decision tables live here, one row per
//! line; `rbac.rs` keeps a few rows through the wire and the admin API.

use std::sync::Arc;

use dispatch_authz::{
    check::{ClientHeaders, Decision, RequestView},
    config::{Overrides, Settings},
    startup,
};

use crate::{
    common::{
        config_toml,
        memory::{MemoryStore, World},
    },
    rbac::{Want, Want::*, credential, rbac, row_headers},
};

/// The world of `rbac.rs`, in memory:
/// - acme: alice (default org; developer), bob (viewer; no default org),
///   erin (member, no role), frank (developer; also in globex as viewer),
///   service account acme/ci (builder);
/// - globex: carol (default org; admin);
/// - dave holds the global role auditor (`*:get`) and is a member of none;
/// - root holds the global role admin (`*:*`), as `bootstrap` makes it.
fn world() -> World {
    let mut w = World::default();
    w.org("acme").org("globex");
    w.role(
        "acme",
        "developer",
        &["function:*", "image:get", "baseimage:get", "orders:get"],
    );
    w.role("acme", "viewer", &["*:get"]);
    w.role(
        "acme",
        "builder",
        &["image:create", "baseimage:create", "function:update"],
    );
    w.role("globex", "admin", &["*:*"])
        .role("globex", "viewer", &["*:get"]);
    w.role("", "auditor", &["*:get"])
        .role("", "admin", &["*:*"]);
    for user in [
        "alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivy", "root", "lena",
        "mona",
    ] {
        w.user(user);
    }
    w.member("acme", "alice", true)
        .member("acme", "bob", false)
        .member("acme", "erin", true);
    w.member("acme", "frank", false)
        .member("globex", "frank", false);
    w.member("globex", "carol", true);
    w.bind("acme", "developer", "alice")
        .bind("acme", "viewer", "bob");
    w.bind("acme", "developer", "frank")
        .bind("globex", "viewer", "frank");
    w.bind("globex", "admin", "carol")
        .bind("", "auditor", "dave");
    w.bind("", "admin", "root");
    w.service_account("acme", "ci", "ES256", "ec256.pub.pem");
    w.bind("acme", "builder", "acme/ci");
    w.member("acme", "ivy", true);
    // Groups (issue 15): gina is in acme only through its platform group;
    // ivy (a member with no role of her own) gets viewer through readers;
    // hank is in globex's ops group, which holds the global auditor role.
    w.group("acme", "platform", &["developer"], &["gina"])
        .group("acme", "readers", &["viewer"], &["ivy"])
        .group("globex", "ops", &["/auditor"], &["hank"]);
    // Linked groups: acme's sre is whoever the issuer's `groups` claim says
    // is in sre (lena; mona's values only look alike).
    w.linked_group("acme", "sre", &["developer"], "test:groups=sre");
    w
}

/// The pipeline the server would build from the test configuration, over
/// `world`.
fn pipeline(world: World) -> dispatch_authz::check::Checker {
    pipeline_over(Arc::new(MemoryStore::new(world)))
}

fn pipeline_over(store: Arc<MemoryStore>) -> dispatch_authz::check::Checker {
    pipeline_with(store, |toml| toml)
}

/// `edit` may change the configuration text first.
pub(crate) fn pipeline_with(
    store: Arc<MemoryStore>,
    edit: impl FnOnce(String) -> String,
) -> dispatch_authz::check::Checker {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, edit(config_toml(dir.path(), &rbac()))).unwrap();
    let config = Settings::load(Some(&path), &Overrides::default())
        .unwrap()
        .compile()
        .unwrap();
    startup::checker(store, config)
}

type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Want,
);

#[tokio::test]
async fn the_decision_table() {
    let checker = pipeline(world());
    let failures = run(&checker, table(), &mut Credentials::default()).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One token per subject, minted on first use: a pass that reuses them
/// presents the very same tokens (a token minted a second later differs).
#[derive(Default)]
struct Credentials(std::collections::HashMap<&'static str, String>);

impl Credentials {
    fn of(&mut self, who: &'static str) -> &str {
        self.0.entry(who).or_insert_with(|| credential(who))
    }
}

/// Regression (issue 11): a second pass, from the per-token cache, decides
/// every row as the first (the full pipeline) did, and looks nothing up,
/// not even for a global role in an organization its holder is not in.
#[tokio::test]
async fn a_second_pass_decides_the_same_without_a_lookup() {
    let store = Arc::new(MemoryStore::new(world()));
    let checker = pipeline_over(store.clone());
    let known: Vec<Row> = table().into_iter().filter(|r| r.0 != "nobody").collect();
    let mut credentials = Credentials::default();
    let failures = run(&checker, known.clone(), &mut credentials).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let lookups = store.lookups();
    let before = lookups.load(std::sync::atomic::Ordering::SeqCst);
    let failures = run(&checker, known, &mut credentials).await;
    assert!(failures.is_empty(), "second pass: {}", failures.join("\n"));
    let after = lookups.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(after - before, 0, "lookups in the second pass");
}

/// Issue 11: once the users' TTL has passed, a settled token's subject is
/// looked up again from what the entry kept of the verification (for most
/// tokens a rebuilt identity, for service accounts the whole one), and every
/// row decides as before.
#[tokio::test]
async fn after_the_users_ttl_every_settled_token_decides_the_same() {
    let store = Arc::new(MemoryStore::new(world()));
    let checker = pipeline_with(store.clone(), |toml| {
        toml.replace("users_ttl_secs = 60", "users_ttl_secs = 1")
    });
    let known: Vec<Row> = table().into_iter().filter(|r| r.0 != "nobody").collect();
    let mut credentials = Credentials::default();
    for _ in 0..2 {
        let failures = run(&checker, known.clone(), &mut credentials).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let lookups = store.lookups();
    let before = lookups.load(std::sync::atomic::Ordering::SeqCst);
    let failures = run(&checker, known, &mut credentials).await;
    assert!(
        failures.is_empty(),
        "after the TTL: {}",
        failures.join("\n")
    );
    let after = lookups.load(std::sync::atomic::Ordering::SeqCst);
    assert!(after > before, "the subjects were looked up again");
}

/// Issue 11: a decision line from the settled entry names the same
/// subject and issuer as the full pipeline's line for the same request
/// (the entry keeps no principal: a denial's issuer comes from its user).
#[tokio::test]
async fn a_settled_decision_line_names_what_the_full_pipelines_did() {
    let store = Arc::new(MemoryStore::new(world()));
    let checker = pipeline_over(store);
    let known: Vec<Row> = table().into_iter().filter(|r| r.0 != "nobody").collect();
    let (lines, _guard) = capture_lines().await;
    let mut credentials = Credentials::default();
    let mut passes = Vec::new();
    for _ in 0..2 {
        lines.lock().unwrap().clear();
        let failures = run(&checker, known.clone(), &mut credentials).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let decisions: Vec<[serde_json::Value; 4]> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "decision")
            .map(|v| ["decision", "user_id", "issuer", "reason"].map(|k| v[k].clone()))
            .collect();
        assert_eq!(decisions.len(), known.len(), "{text}");
        passes.push(decisions);
    }
    assert!(
        passes[0].iter().any(|d| d[0] == "deny" && d[2].is_string()),
        "some denial of a known subject names its issuer"
    );
    assert_eq!(passes[0], passes[1]);
}

/// Sampled allow lines (`log.sample_allows`, opt-in for throughput): one
/// allow in three has its line, which says so; every denial keeps its own.
#[tokio::test]
async fn sampled_allow_lines_are_one_in_n_and_denials_are_all_logged() {
    let store = Arc::new(MemoryStore::new(world()));
    let checker = pipeline_with(store, |toml| format!("{toml}\n[log]\nsample_allows = 3\n"));
    let known: Vec<Row> = table().into_iter().filter(|r| r.0 != "nobody").collect();
    let allows = known.iter().filter(|r| matches!(r.5, Allow(..))).count();
    let denials = known.len() - allows;
    assert!(allows > 3 && denials > 0);
    let (lines, _guard) = capture_lines().await;
    let mut credentials = Credentials::default();
    for _ in 0..2 {
        let failures = run(&checker, known.clone(), &mut credentials).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
    let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    let decisions: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "decision")
        .collect();
    let allowed: Vec<_> = decisions
        .iter()
        .filter(|v| v["decision"] == "allow")
        .collect();
    let denied: Vec<_> = decisions
        .iter()
        .filter(|v| v["decision"] == "deny")
        .collect();
    assert_eq!(allowed.len(), (2 * allows).div_ceil(3));
    assert!(allowed.iter().all(|v| v["sampled_one_in"] == 3));
    assert_eq!(denied.len(), 2 * denials);
    assert!(denied.iter().all(|v| v.get("sampled_one_in").is_none()));
    drop(_guard);

    // `sample_allows = 0`: no allow lines at all, every denial's still.
    let store = Arc::new(MemoryStore::new(world()));
    let checker = pipeline_with(store, |toml| format!("{toml}\n[log]\nsample_allows = 0\n"));
    let (lines, _guard) = capture_lines().await;
    let failures = run(&checker, known.clone(), &mut Credentials::default()).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    let outcomes: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "decision")
        .map(|v| v["decision"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outcomes.len(), denials, "{outcomes:?}");
    assert!(outcomes.iter().all(|d| d == "deny"));
}

/// Decision lines as the production JSON format writes them, into a buffer,
/// while the guard lives; one capture at a time.
///
/// Why a second, idle dispatcher: with a single scoped subscriber in the
/// process, `tracing` caches a callsite's interest from whichever thread
/// reaches it first, and a test running alongside (no subscriber) made the
/// decision lines of this one vanish (regression, found with `sample_allows`).
/// With two, interest is "sometimes" and each thread asks its own.
async fn capture_lines() -> (Arc<std::sync::Mutex<Vec<u8>>>, impl Drop) {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = ONE_AT_A_TIME.lock().await;
    let lines = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .event_format(dispatch_authz::telemetry::JsonLines)
        .with_writer(move || Sink(sink.clone()))
        .finish();
    let idle = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    // Dropped in this order: the subscriber, then the turn.
    (lines, Capture(Some((guard, idle, turn))))
}

struct Capture(
    Option<(
        tracing::subscriber::DefaultGuard,
        tracing::Dispatch,
        tokio::sync::MutexGuard<'static, ()>,
    )>,
);

impl Drop for Capture {
    fn drop(&mut self) {
        self.0.take();
    }
}

/// A log writer into a shared buffer.
struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Regression (issue 11): a settled token is verified again once the token
/// cache would have (`tokens_max_ttl_secs`), so a change it was judged
/// against that no cache was told of (a key removed by another process) is
/// seen; reusing the verification for as long as the token lived let the
/// removed key's tokens in.
#[tokio::test]
async fn a_settled_token_is_verified_again_after_the_token_caches_lifetime() {
    let store = Arc::new(MemoryStore::new(world()));
    let checker = pipeline_with(store.clone(), |toml| {
        toml.replace(
            "users_ttl_secs = 60",
            "users_ttl_secs = 1\ntokens_max_ttl_secs = 1",
        )
    });
    let mut credentials = Credentials::default();
    let row: Row = (
        "ci",
        "",
        "POST",
        "api.test",
        "/v1/image",
        Allow("acme", "builder"),
    );
    for _ in 0..2 {
        let failures = run(&checker, vec![row.clone()], &mut credentials).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
    store.change(|w| w.remove_keys("acme", "ci"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let refused: Row = ("ci", "", "POST", "api.test", "/v1/image", Deny(401, ""));
    let failures = run(&checker, vec![refused], &mut credentials).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Linked groups (issue 15): a group the identity provider drops goes
/// with the token that said it: a new token without it is refused at once,
/// while the old one, whose claims are signed, keeps it until it expires
/// (the token cache's life). An admin's unlinking takes effect on the very
/// next check, of any token.
#[tokio::test]
async fn linked_membership_ends_with_the_token_or_at_once_with_the_link() {
    let store = Arc::new(MemoryStore::new(world()));
    let checker = pipeline_over(store.clone());
    let create = |want| ("lena", "acme", "POST", "api.test", "/v1/function", want);
    let allowed = || create(Allow("acme", "developer"));
    let refused = || create(Deny(403, "not a member of organization acme"));
    let mut old = Credentials::default();
    for _ in 0..2 {
        let failures = run(&checker, vec![allowed()], &mut old).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
    // The provider took lena out of sre: her next token says so.
    let mut new = Credentials::default();
    let without = crate::common::token(&crate::rbac::with_groups(
        crate::common::claims("lena"),
        &["oncall"],
    ));
    new.0.insert("lena", without);
    let failures = run(&checker, vec![refused()], &mut new).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let failures = run(&checker, vec![allowed()], &mut old).await;
    assert!(
        failures.is_empty(),
        "the old token keeps its signed claims: {failures:?}"
    );
    // An admin unlinks the group: no token of lena's gets its roles.
    store.change(|w| w.relink("acme", "sre", None));
    use dispatch_authz::iam::{Forget, Stale};
    checker.forget(&[Stale::LinkedGroups]).await;
    let failures = run(&checker, vec![refused()], &mut old).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Linked again, to a value of another claim the issuer is not set to
    // read: still nobody's.
    store.change(|w| w.relink("acme", "sre", Some("test:team=sre")));
    checker.forget(&[Stale::LinkedGroups]).await;
    let failures = run(&checker, vec![refused()], &mut old).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    store.change(|w| w.relink("acme", "sre", Some("test:groups=sre")));
    checker.forget(&[Stale::LinkedGroups]).await;
    let failures = run(&checker, vec![allowed()], &mut old).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn table() -> Vec<Row> {
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // who, x-dispatch-org, method, host, path → want
        ("alice", "", "GET", "api.test", "/v1/function/hello", Allow("acme", "developer")),
        ("alice", "", "POST", "api.test", "/v1/function", Allow("acme", "developer")),
        ("alice", "", "DELETE", "api.test", "/v1/function/hello", Allow("acme", "developer")),
        ("alice", "acme", "GET", "api.test", "/v1/function?tag=x", Allow("acme", "developer")),
        ("alice", "", "GET", "api.test", "/v1/image/py3", Allow("acme", "developer")),
        ("alice", "", "POST", "api.test", "/v1/image", Deny(403, "no role grants create on image")),
        ("alice", "", "GET", "api.test", "/v1/baseimage/python3", Allow("acme", "developer")),
        ("alice", "", "DELETE", "api.test", "/v1/baseimage/python3", Deny(403, "no role grants delete on baseimage")),
        ("alice", "", "GET", "api.test", "/v1/secret/db", Deny(403, "no role grants get on secret")),
        ("alice", "", "POST", "api.test", "/v1/iam/policy", Deny(403, "no role grants create on iam")),
        ("alice", "", "GET", "api.test", "/v1/runs?functionName=hello", Deny(403, "on runs in")),
        ("alice", "globex", "GET", "api.test", "/v1/function", Deny(403, "not a member of organization globex")),
        ("alice", "ACME", "GET", "api.test", "/v1/function", Deny(400, "x-dispatch-org")),
        ("alice", "", "GET", "api.test", "/v1/function/%2e%2e/secret", Deny(400, "")),
        ("alice", "", "GET", "api.test", "/v1/function/../secret/db", Deny(400, "")),
        ("alice", "", "GET", "api.test", "/v1/function%2fx", Deny(400, "")),
        ("alice", "", "GET", "api.test", "/v1//function", Deny(400, "")),
        ("alice", "", "GET", "api.test", "/v1/functions", Deny(403, "no route")),
        ("alice", "", "GET", "api.test", "/metrics", Deny(403, "no route")),
        ("alice", "", "OPTIONS", "api.test", "/v1/function", Deny(403, "method")),
        ("alice", "", "GET", "api.test", "/api/orders/7?secret=1", Allow("acme", "developer")),
        ("alice", "", "POST", "api.test", "/api/orders", Deny(403, "no role grants create on orders")),
        ("alice", "", "GET", "api.test", "/api/cart", Deny(403, "no route")),
        ("alice", "", "GET", "shop.test", "/api/orders/7", Deny(403, "on shop in")),
        ("bob", "acme", "GET", "api.test", "/v1/secret/db", Allow("acme", "viewer")),
        ("bob", "acme", "HEAD", "api.test", "/v1/function", Allow("acme", "viewer")),
        ("bob", "acme", "PUT", "api.test", "/v1/function/hello", Deny(403, "no role grants update")),
        ("bob", "", "GET", "api.test", "/v1/function", Deny(403, "no organization")),
        ("carol", "", "DELETE", "api.test", "/v1/iam/policy/x", Allow("globex", "admin")),
        ("carol", "", "PATCH", "api.test", "/v1/serviceinstance/db", Allow("globex", "admin")),
        ("carol", "acme", "GET", "api.test", "/v1/function", Deny(403, "not a member of organization acme")),
        ("dave", "acme", "GET", "api.test", "/v1/function", Allow("acme", "auditor")),
        ("dave", "globex", "GET", "api.test", "/v1/secret", Allow("globex", "auditor")),
        ("dave", "acme", "POST", "api.test", "/v1/function", Deny(403, "no role grants create")),
        ("dave", "", "GET", "api.test", "/v1/function", Deny(403, "no organization")),
        ("erin", "", "GET", "api.test", "/v1/function", Deny(403, "no role grants get on function")),
        ("gina", "acme", "POST", "api.test", "/v1/function", Allow("acme", "developer")),
        ("gina", "acme", "GET", "api.test", "/v1/secret/db", Deny(403, "no role grants get on secret")),
        ("gina", "", "GET", "api.test", "/v1/function", Deny(403, "no organization")),
        ("gina", "globex", "GET", "api.test", "/v1/function", Deny(403, "not a member of organization globex")),
        ("ivy", "", "GET", "api.test", "/v1/secret/db", Allow("acme", "viewer")),
        ("ivy", "", "POST", "api.test", "/v1/function", Deny(403, "no role grants create on function")),
        ("hank", "globex", "GET", "api.test", "/v1/function", Allow("globex", "auditor")),
        ("hank", "acme", "GET", "api.test", "/v1/function", Deny(403, "not a member of organization acme")),
        ("lena", "acme", "POST", "api.test", "/v1/function", Allow("acme", "developer")),
        ("lena", "acme", "GET", "api.test", "/v1/secret/db", Deny(403, "no role grants get on secret")),
        ("lena", "", "GET", "api.test", "/v1/function", Deny(403, "no organization")),
        ("lena", "globex", "GET", "api.test", "/v1/function", Deny(403, "not a member of organization globex")),
        ("mona", "acme", "GET", "api.test", "/v1/function", Deny(403, "not a member of organization acme")),
        ("frank", "acme", "POST", "api.test", "/v1/function", Allow("acme", "developer")),
        ("frank", "globex", "POST", "api.test", "/v1/function", Deny(403, "in organization globex")),
        ("frank", "globex", "GET", "api.test", "/v1/event/subscriptions", Allow("globex", "viewer")),
        ("frank", "", "GET", "api.test", "/v1/function", Deny(403, "no organization")),
        ("root", "acme", "DELETE", "api.test", "/v1/serviceinstance/x", Allow("acme", "admin")),
        ("root", "globex", "POST", "api.test", "/v1/iam/policy", Allow("globex", "admin")),
        ("root", "", "GET", "api.test", "/v1/function", Deny(403, "no organization")),
        ("ci", "", "POST", "api.test", "/v1/image", Allow("acme", "builder")),
        ("ci", "acme", "POST", "api.test", "/v1/baseimage", Allow("acme", "builder")),
        ("ci", "", "PUT", "api.test", "/v1/function/hello", Allow("acme", "builder")),
        ("ci", "", "GET", "api.test", "/v1/function", Deny(403, "no role grants get on function")),
        ("ci", "globex", "POST", "api.test", "/v1/image", Deny(403, "not a member of organization globex")),
        ("nobody", "acme", "GET", "api.test", "/v1/function", Deny(403, "not registered")),
    ];
    table
}

/// Checks every row; returns the rows that failed.
async fn run(
    checker: &dispatch_authz::check::Checker,
    table: Vec<Row>,
    credentials: &mut Credentials,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, (who, org, method, host, path, want)) in table.iter().enumerate() {
        let auth = format!("Bearer {}", credentials.of(who));
        let headers = row_headers(&auth, org);
        let view = RequestView {
            host,
            method,
            path,
            request_id: None,
            headers: ClientHeaders::new(headers.iter().copied()),
            budget: None,
            removals: Default::default(),
            trace: None,
        };
        let row = format!("row {i}: {who} {org:?} {method} {host}{path}");
        if let Err(failure) = judge(checker.check(&view).await.decision, who, want) {
            failures.push(format!("{row}: {failure}"));
        }
    }
    failures
}

/// Whether `decision` is what the row wants: an allow in the org with the
/// roles and our identity headers (the forged ones overwritten, only the
/// credential removed), or a denial with its status and message.
fn judge(decision: Decision, who: &str, want: &Want) -> Result<(), String> {
    match (decision, want) {
        (Decision::Allow { upstream, .. }, Allow(want_org, want_roles)) => {
            let header = |name: &str| {
                let found = upstream.set.iter().find(|(k, _)| *k == name);
                found.map(|(_, v)| v.as_str())
            };
            let (user, kind) = match who {
                "ci" => ("acme/ci", "service-account"),
                user => (user, "user"),
            };
            let got = (
                header("x-dispatch-org"),
                header("x-dispatch-roles"),
                header("x-dispatch-user"),
                header("x-dispatch-subject-kind"),
            );
            let expected = (Some(*want_org), Some(*want_roles), Some(user), Some(kind));
            if got != expected {
                return Err(format!("headers {got:?}, want {expected:?}"));
            }
            if upstream.remove != ["authorization"] {
                return Err(format!("removes {:?}", upstream.remove));
            }
            Ok(())
        }
        (Decision::Allow { .. }, Deny(status, _)) => Err(format!("allowed, want {status}")),
        (Decision::Deny(denial), Allow(..)) => Err(format!("denied {:?}", denial.message)),
        (Decision::Deny(denial), Deny(status, fragment)) => {
            let http = i32::from(denial.kind.http_status());
            if http != *status || !denial.message.contains(fragment) {
                return Err(format!(
                    "{http} {:?}, want {status} containing {fragment:?}",
                    denial.message
                ));
            }
            Ok(())
        }
    }
}
