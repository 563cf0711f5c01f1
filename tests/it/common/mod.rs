//! Shared test harness: spawn the real server on port 0 with a fresh
//! database, mint tokens with the fixture keys, call Check like Envoy does.
#![allow(dead_code)]

pub mod admin;
pub mod fake_github;
pub mod fake_oidc;
pub mod memory;
pub mod programs;
pub mod serve;
pub mod upstream;

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use dispatch_authz::{
    config::{Overrides, Settings},
    domain::{IssuerName, Login, Subject},
    startup::App,
    store::{Actor, NewUser, SqlStore, User, UserAdmin},
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, attribute_context,
    authorization_client::AuthorizationClient,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

pub const ISS: &str = "https://issuer.test";
pub const AUD: &str = "dispatch";
pub const ISSUER_NAME: &str = "test";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

/// Serves `app` on a loopback port chosen by the OS; returns its address.
pub async fn serve_http(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn claims(subject: &str) -> Value {
    let now = now();
    json!({"iss": ISS, "aud": AUD, "sub": subject, "iat": now, "exp": now + 600,
           "preferred_username": "token-login"})
}

/// Signs `claims` with the fixture RSA key, `kid` k1.
pub fn token(claims: &Value) -> String {
    sign(Algorithm::RS256, "rsa.pem", Some("k1"), claims)
}

pub fn sign(alg: Algorithm, key_file: &str, kid: Option<&str>, claims: &Value) -> String {
    let pem = std::fs::read(fixture(key_file)).unwrap();
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(&pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    /// The HTTP check listener, when `Options::http_proxy` names a proxy.
    pub http_addr: Option<SocketAddr>,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub operations_addr: Option<SocketAddr>,
    pub store: SqlStore,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

pub struct Options {
    pub users_ttl_secs: u64,
    /// Added to the `[check]` section.
    pub extra: &'static str,
    /// Appended after the test issuer: more `[[issuers]]` or `[github]`.
    pub sources: String,
    /// The `[authorization]` section's body. Tests written before roles
    /// existed run in `registered` mode.
    pub authorization: String,
    /// `http.proxy`: with it, the HTTP check listener runs on port 0.
    pub http_proxy: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users_ttl_secs: 60,
            extra: "",
            sources: String::new(),
            authorization: r#"mode = "registered""#.into(),
            http_proxy: None,
        }
    }
}

pub fn config_toml(dir: &std::path::Path, opts: &Options) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 2

[store]
database = "{db}"

[cache]
users_ttl_secs = {ttl}
users_negative_ttl_secs = 1

[check]
public_paths = ["/healthz"]
token_cookie = "dispatch_token"
{extra}

[admin]
listen = "127.0.0.1:0"

[operations]
listen = "127.0.0.1:0"

[authorization]
{authorization}

[[issuers]]
name = "{ISSUER_NAME}"
issuer = "{ISS}"
audiences = ["{AUD}"]
leeway_secs = 5
group_claims = ["groups"]

[[issuers.public_keys]]
pem_file = "{key}"
algorithm = "RS256"
kid = "k1"
{sources}
{http}
"#,
        http = opts
            .http_proxy
            .map(|proxy| format!("[http]\nlisten = \"127.0.0.1:0\"\nproxy = \"{proxy}\"\n"))
            .unwrap_or_default(),
        sources = opts.sources,
        db = dir.join("users.db").display(),
        ttl = opts.users_ttl_secs,
        extra = opts.extra,
        authorization = opts.authorization,
        key = fixture("rsa.pub.pem").display(),
    )
}

/// With `DISPATCH_TEST_STORE=postgres` (the second run of this suite in
/// `.ci/run`), every app gets a fresh database on the server that
/// `DISPATCH_TEST_POSTGRES_URL` names instead of a SQLite file.
async fn postgres_database() -> Option<String> {
    if std::env::var("DISPATCH_TEST_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    let admin = std::env::var("DISPATCH_TEST_POSTGRES_URL")
        .expect("DISPATCH_TEST_STORE=postgres needs DISPATCH_TEST_POSTGRES_URL");
    Some(fresh_postgres_database(&admin).await)
}

/// A new database on the test server, for tests that need PostgreSQL
/// whatever the run's store: `None` (and a SKIPPED line) without a server,
/// a failure instead when `DISPATCH_TEST_REQUIRE_POSTGRES=1`.
pub async fn postgres_if_available() -> Option<String> {
    match std::env::var("DISPATCH_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => Some(fresh_postgres_database(&admin).await),
        _ => {
            assert!(
                std::env::var("DISPATCH_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "DISPATCH_TEST_REQUIRE_POSTGRES=1 but DISPATCH_TEST_POSTGRES_URL is not set"
            );
            eprintln!("SKIPPED: needs PostgreSQL (set DISPATCH_TEST_POSTGRES_URL)");
            None
        }
    }
}

/// A new, empty database on the server `admin` names; its URL.
pub async fn fresh_postgres_database(admin: &str) -> String {
    use sqlx::Connection;
    let name = format!("it_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// A user to add, with no e-mail or display name.
pub fn new_user(issuer: &str, subject: &str, login: &str) -> NewUser {
    NewUser {
        issuer: IssuerName::parse(issuer).unwrap(),
        subject: Subject::parse(subject).unwrap(),
        login: Login::parse(login).unwrap(),
        email: None,
        display_name: None,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let database = postgres_database().await;
    spawn_app_on(opts, database).await
}

/// An app on `database` (a PostgreSQL URL), or on a SQLite file of its own.
pub async fn spawn_app_on(opts: Options, database: Option<String>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dispatch-authz.toml");
    let mut toml = config_toml(dir.path(), &opts);
    if let Some(url) = database {
        let file = format!("database = \"{}\"", dir.path().join("users.db").display());
        toml = toml.replace(&file, &format!("database = \"{url}\""));
    }
    std::fs::write(&path, toml).unwrap();
    let settings = Settings::load(Some(&path), &Overrides::default()).unwrap();
    let config = settings.compile().unwrap();
    let app = App::build(config).await.unwrap().reloadable(
        Some(path.clone()),
        Overrides::default(),
        settings,
    );
    let addr = app.local_addr().unwrap();
    let admin_addr = app.admin_addr();
    let http_addr = app.http_addr();
    let operations_addr = app.operations_addr();
    let store = app.store().clone();
    // On PostgreSQL, what is cached before the replica listens is forgotten
    // once it does: a test's checks start once it follows, as Envoy's would
    // once health says SERVING.
    let live = app.live().clone();
    let mut replicas = live.replicas();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    tokio::time::timeout(
        Duration::from_secs(10),
        replicas.wait_for(|r| *r != dispatch_authz::check::Replicas::Starting),
    )
    .await
    .expect("the replica follows the others within 10 s")
    .unwrap();
    let app = TestApp {
        addr,
        admin_addr,
        http_addr,
        operations_addr,
        store,
        dir,
        shutdown: Some(tx),
        handle: Some(handle),
    };
    // And the health status has caught up (it is re-read, not pushed).
    if live.readiness().await.is_ready() {
        let serving = 1;
        for _ in 0..100 {
            if app.authorization_health().await == serving {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    app
}

impl TestApp {
    pub async fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    pub async fn add_user(&self, subject: &str, login: &str) -> User {
        self.add_user_of(ISSUER_NAME, subject, login).await
    }

    pub async fn add_user_of(&self, issuer: &str, subject: &str, login: &str) -> User {
        self.store
            .add(&Actor::local("test"), new_user(issuer, subject, login))
            .await
            .unwrap()
    }

    /// Disables a user in the database file, as `users disable` does.
    pub async fn disable_user(&self, user: &User) {
        self.store
            .set_enabled(
                &Actor::local("test"),
                &dispatch_authz::store::UserRef::Id(user.id),
                false,
            )
            .await
            .unwrap();
    }

    /// Every byte the store holds: the SQLite file and its WAL, or every
    /// row of every table as text on PostgreSQL.
    pub async fn everything_stored(&self) -> Vec<u8> {
        let file = self.dir.path().join("users.db");
        if file.exists() {
            let mut bytes = std::fs::read(&file).unwrap();
            bytes.extend(std::fs::read(self.dir.path().join("users.db-wal")).unwrap_or_default());
            return bytes;
        }
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        let mut bytes = Vec::new();
        for (table,) in tables {
            let sql = format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t");
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(self.store.pool())
                .await
                .unwrap();
            rows.iter().for_each(|(r,)| bytes.extend(r.as_bytes()));
        }
        bytes
    }

    /// Makes every query fail, as a broken database would.
    pub async fn break_database(&self) {
        self.rename_users("ALTER TABLE users RENAME TO users_gone")
            .await;
    }

    pub async fn repair_database(&self) {
        self.rename_users("ALTER TABLE users_gone RENAME TO users")
            .await;
    }

    /// The damage is the test's, not the server's: a rename that meets a
    /// lock is tried again (each failure printed), rather than failing the
    /// test before it checks anything.
    async fn rename_users(&self, sql: &'static str) {
        let mut errors = Vec::new();
        for _ in 0..5 {
            match sqlx::query(sql).execute(self.store.pool()).await {
                Ok(_) => return,
                Err(e) => {
                    eprintln!("{sql}: {e}");
                    errors.push(e.to_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{sql} failed every time: {errors:?}");
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("server did not stop")
                .unwrap();
        }
    }

    pub async fn check_bearer(&self, token: &str) -> CheckResponse {
        self.check("/", &[("authorization", &format!("Bearer {token}"))])
            .await
    }

    /// The health status the server reports for the Authorization service
    /// (SERVING only while every identity source has keys).
    pub async fn authorization_health(&self) -> i32 {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let request = HealthCheckRequest {
            service: "envoy.service.auth.v3.Authorization".into(),
        };
        HealthClient::new(channel)
            .check(request)
            .await
            .unwrap()
            .into_inner()
            .status
    }

    /// Checks every token at once, each on its own task; returns the status
    /// codes, in the order of `tokens`.
    pub async fn check_concurrently(&self, tokens: Vec<String>) -> Vec<i32> {
        let client = self.client().await;
        let mut tasks = tokio::task::JoinSet::new();
        for (i, token) in tokens.into_iter().enumerate() {
            let mut client = client.clone();
            tasks.spawn(async move {
                let auth = format!("Bearer {token}");
                let r = client
                    .check(check_request("GET", "/", &[("authorization", &auth)]))
                    .await
                    .unwrap();
                (i, r.get_ref().status.as_ref().map_or(-1, |s| s.code))
            });
        }
        let mut codes = Vec::new();
        while let Some(code) = tasks.join_next().await {
            codes.push(code.unwrap());
        }
        codes.sort_unstable();
        codes.into_iter().map(|(_, code)| code).collect()
    }

    /// Sends a check and gives up on it after `patience`, as Envoy does at
    /// its timeout. True when it did give up (the check was still waiting).
    pub async fn check_abandoned_after(&self, token: &str, patience: Duration) -> bool {
        let mut client = self.client().await;
        let auth = format!("Bearer {token}");
        let request = check_request("GET", "/", &[("authorization", &auth)]);
        tokio::time::timeout(patience, client.check(request))
            .await
            .is_err()
    }

    pub async fn check(&self, path: &str, headers: &[(&str, &str)]) -> CheckResponse {
        let mut client = self.client().await;
        client
            .check(check_request("GET", path, headers))
            .await
            .expect("Check must answer, never fail")
            .into_inner()
    }
}

impl TestApp {
    /// A check with any method and host.
    pub async fn check_on(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> CheckResponse {
        let mut request = check_request(method, path, headers);
        if let Some(http) = request
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
        {
            http.host = host.into();
        }
        self.client()
            .await
            .check(request)
            .await
            .expect("Check must answer, never fail")
            .into_inner()
    }
}

pub fn check_request(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                time: None,
                http: Some(attribute_context::HttpRequest {
                    id: "req-42".into(),
                    method: method.into(),
                    path: path.into(),
                    host: "api.test".into(),
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

// ---- reading CheckResponses ----

use envoy_types::ext_authz::v3::pb::{HeaderAppendAction, HttpResponse};

pub const OK: i32 = 0;
pub const INVALID_ARGUMENT: i32 = 3;
pub const PERMISSION_DENIED: i32 = 7;
pub const UNAVAILABLE: i32 = 14;
pub const UNAUTHENTICATED: i32 = 16;

pub fn code(r: &CheckResponse) -> i32 {
    r.status.as_ref().expect("status is always set").code
}

/// Headers set on the upstream request, each checked to overwrite.
pub fn upstream_headers(r: &CheckResponse) -> Vec<(String, String)> {
    let Some(HttpResponse::OkResponse(ok)) = &r.http_response else {
        panic!("not an ok response: {r:?}")
    };
    ok.headers
        .iter()
        .map(|h| {
            assert_eq!(
                h.append_action,
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32
            );
            #[allow(deprecated)]
            let append = h.append.as_ref().map(|a| a.value);
            assert_eq!(append, Some(false));
            let h = h.header.as_ref().unwrap();
            (h.key.clone(), h.value.clone())
        })
        .collect()
}

pub fn removed(r: &CheckResponse) -> Vec<String> {
    match &r.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok.headers_to_remove.clone(),
        _ => panic!("not an ok response"),
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub struct Denied {
    pub http: i32,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

pub fn denied(r: &CheckResponse) -> Denied {
    let Some(HttpResponse::DeniedResponse(d)) = &r.http_response else {
        panic!("not a denial: {r:?}")
    };
    Denied {
        http: d.status.as_ref().unwrap().code,
        headers: d
            .headers
            .iter()
            .map(|h| {
                let h = h.header.as_ref().unwrap();
                (h.key.clone(), h.value.clone())
            })
            .collect(),
        body: serde_json::from_str(&d.body).expect("denial body is JSON"),
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
