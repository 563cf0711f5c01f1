//! Micro-benchmarks of the check path, in process.
//!
//! - `verify/<alg>`: a cold token verification per algorithm (no cache);
//! - `check/cache_hit`: a whole Check, `CheckRequest` → `CheckResponse`, with
//!   token and user cached (the common case);
//! - `check/encode_decode`: the protobuf work around it, for scale;
//! - `paths/*`: request-path parsing and public-path matching;
//! - `headers/upstream`: building the injected and removed headers.
//!
//! Before the benchmarks it prints the number of heap allocations of one
//! cache-hit Check, counted by a wrapping global allocator.
//!
//!     cargo bench --bench check

use std::{
    alloc::{GlobalAlloc, Layout, System},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use criterion::{Criterion, criterion_group};
use dispatch_authz::{
    assertion::{Asserter, AssertionSettings, KeyOrigin, Keys, SigningAlgorithm, SigningKey},
    check::{
        Authorization, Checker, ClientHeaders, CredentialSettings, MethodOverride, Permit,
        RequestRules, RequestView, SettledCache, UpstreamRules,
    },
    directory::{
        CacheSettings, Directory, GrantsCache, LinkedCache, OrgCache, ServiceAccountCache,
        UserCache,
    },
    domain::{IssuerName, Login, OrgName, RequestId, RoleName, Subject, SubjectRef},
    identity::{ClaimMapping, IdentityVerifier, JwtIssuer, KeySource, TokenCache, keys, unix_now},
    policy::{
        PublicPaths, RequestPath, RouteMap,
        rbac::{Permission, Role, Scope},
    },
    server::grpc::{answer, request_view},
    store::{
        Actor, BindingAdmin, CheckStore, NewUser, OrgAdmin, RoleAdmin, RoleBinding, RoleKey,
        SqlStore, UserAdmin, UserRef,
    },
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, attribute_context,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use prost::Message;

/// Counts allocations so one Check's can be reported.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ISS: &str = "https://issuer.bench";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn token(alg: Algorithm, private: &str, subject: &str) -> String {
    let pem = std::fs::read(fixture(private)).unwrap_or_else(|_| private.as_bytes().to_vec());
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(private.as_bytes()),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": ISS, "aud": "dispatch", "sub": subject, "iat": now, "exp": now + 3600,
        "preferred_username": "octocat",
    });
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
}

fn verifier(key: keys::VerifyKey) -> IdentityVerifier {
    IdentityVerifier::new(
        vec![JwtIssuer {
            name: IssuerName::parse("bench").unwrap(),
            iss: ISS.into(),
            audiences: vec!["dispatch".into()],
            keys: KeySource::fixed(vec![key]),
            leeway_secs: 30,
            claims: ClaimMapping::default(),
        }],
        TokenCache::new(100_000, Duration::from_secs(300)),
    )
}

fn pem_key(alg: Algorithm, public: &str) -> keys::VerifyKey {
    keys::load_pem(&fixture(public), alg, None).unwrap()
}

fn bench_verify(c: &mut Criterion) {
    // Verification with static keys never awaits; block_on adds ~0.1 µs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let secret = "bench-secret-bench-secret-bench-secret";
    let cases = [
        ("RS256", Algorithm::RS256, "rsa.pem", "rsa.pub.pem"),
        ("PS256", Algorithm::PS256, "rsa.pem", "rsa.pub.pem"),
        ("ES256", Algorithm::ES256, "ec256.pem", "ec256.pub.pem"),
        ("ES384", Algorithm::ES384, "ec384.pem", "ec384.pub.pem"),
        ("EdDSA", Algorithm::EdDSA, "ed25519.pem", "ed25519.pub.pem"),
    ];
    let mut group = c.benchmark_group("verify");
    for (name, alg, private, public) in cases {
        let v = verifier(pem_key(alg, public));
        let t = token(alg, private, "1");
        group.bench_function(name, |b| {
            b.iter(|| runtime.block_on(v.verify_uncached(&t, unix_now())).unwrap())
        });
    }
    let v = verifier(keys::VerifyKey {
        kid: None,
        algorithm: Algorithm::HS256,
        key: DecodingKey::from_secret(secret.as_bytes()),
    });
    let t = token(Algorithm::HS256, secret, "1");
    group.bench_function("HS256", |b| {
        b.iter(|| runtime.block_on(v.verify_uncached(&t, unix_now())).unwrap())
    });
    group.finish();
}

/// A checker over a real SQLite store holding one user, and a request of
/// that user, both warmed so that every Check is a cache hit.
struct HotPath {
    runtime: tokio::runtime::Runtime,
    checker: Arc<Checker>,
    request: CheckRequest,
    _dir: tempfile::TempDir,
}

impl HotPath {
    fn new() -> Self {
        Self::with(Authorization::Rbac(RouteMap::dispatch()))
    }

    fn with(authorization: Authorization) -> Self {
        Self::built(authorization, None)
    }

    /// With `x-dispatch-identity` signed (EdDSA, generated keys): reused
    /// per subject, or signed per request.
    fn signed(per_request: bool) -> Self {
        let settings = AssertionSettings {
            algorithm: SigningAlgorithm::EdDSA,
            ttl: Duration::from_secs(300),
            issuer: "bench".into(),
            audience: None,
            per_request,
            origin: KeyOrigin::Generated {
                rotate: Duration::from_secs(86_400),
            },
            cache_capacity: 1000,
        };
        let keys = Keys {
            signing: SigningKey::generate(SigningAlgorithm::EdDSA).unwrap(),
            published: Vec::new(),
        };
        let asserter = Arc::new(Asserter::new(settings, keys));
        Self::built(Authorization::Rbac(RouteMap::dispatch()), Some(asserter))
    }

    fn built(authorization: Authorization, signed_identity: Option<Arc<Asserter>>) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let checker = runtime.block_on(async {
            let store = SqlStore::open(
                &dispatch_authz::store::StoreLocation::sqlite(dir.path().join("bench.db")),
                None,
            )
            .await
            .unwrap();
            // The default mode: a member of `acme` whose role grants
            // `function:create`, so the hot path includes the RBAC decision.
            let actor = Actor::local("bench");
            let user = store
                .add(
                    &actor,
                    NewUser {
                        issuer: IssuerName::parse("bench").unwrap(),
                        subject: Subject::parse("1001").unwrap(),
                        login: Login::parse("octocat").unwrap(),
                        email: None,
                        display_name: None,
                    },
                )
                .await
                .unwrap();
            let acme = OrgName::parse("acme").unwrap();
            store.create_org(&actor, &acme).await.unwrap();
            store
                .add_member(&actor, &acme, &UserRef::Id(user.id), true)
                .await
                .unwrap();
            let role = Role {
                name: RoleName::parse("developer").unwrap(),
                scope: Scope::Org(acme.clone()),
                permissions: vec![Permission::parse("function:*").unwrap()],
            };
            store.create_role(&actor, &role).await.unwrap();
            let binding = RoleBinding {
                role: RoleKey::of(&role),
                subject: SubjectRef::User(user.id),
            };
            store.bind_role(&actor, &binding).await.unwrap();
            let settings = CacheSettings {
                capacity: 1000,
                ttl: Duration::from_secs(3600),
                negative_ttl: Duration::from_secs(60),
            };
            let shared: Arc<dyn CheckStore> = Arc::new(store);
            let directory = Directory {
                users: UserCache::new(shared.clone(), settings),
                grants: GrantsCache::new(shared.clone(), settings),
                orgs: OrgCache::new(shared.clone(), settings),
                linked: LinkedCache::new(shared.clone(), settings),
                accounts: ServiceAccountCache::new(shared, settings),
            };
            Arc::new(Checker::new(
                verifier(pem_key(Algorithm::ES256, "ec256.pub.pem")),
                directory,
                SettledCache::new(1000, Duration::from_secs(3600), Duration::from_secs(3600)),
                RequestRules {
                    public: PublicPaths::new(&["/healthz"]).unwrap(),
                    credentials: CredentialSettings {
                        header: None,
                        cookie: None,
                        max_token_bytes: 8192,
                    },
                    upstream: UpstreamRules::default(),
                    method_override: MethodOverride::default(),
                    default_budget: Duration::from_secs(1),
                    allow_lines_every: Some(std::num::NonZeroU32::MIN),
                    dry_run: Default::default(),
                    signed_identity,
                },
                authorization,
            ))
        });
        let auth = format!("Bearer {}", token(Algorithm::ES256, "ec256.pem", "1001"));
        let request = check_request(&[
            ("authorization", auth.as_str()),
            ("x-request-id", "3c5e0b5e-7a0b-4d9c-9a53-5a7c1f0f2f11"),
            ("x-dispatch-user", "mallory"),
            ("user-agent", "curl/8.0"),
            ("accept", "*/*"),
        ]);
        let hot = Self {
            runtime,
            checker,
            request,
            _dir: dir,
        };
        let warm = hot.check().encode_to_vec();
        let warm = envoy_types::ext_authz::v3::pb::CheckResponse::decode(&warm[..]).unwrap();
        assert_eq!(warm.status.as_ref().unwrap().code, 0, "{warm:?}");
        hot
    }

    fn check(&self) -> dispatch_authz::server::grpc::Answer {
        self.runtime.block_on(async {
            let view = request_view(&self.request).unwrap();
            answer(self.checker.check(&view).await)
        })
    }
}

fn check_request(headers: &[(&str, &str)]) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                time: None,
                http: Some(attribute_context::HttpRequest {
                    id: "12345".into(),
                    method: "POST".into(),
                    path: "/v1/function/hello?version=2".into(),
                    host: "api.example.com".into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}

fn bench_check(c: &mut Criterion) {
    let hot = HotPath::new();
    let mut group = c.benchmark_group("check");
    group.bench_function("cache_hit", |b| b.iter(|| hot.check()));
    // Without roles (`mode = "registered"`): what the RBAC decision costs.
    let registered = HotPath::with(Authorization::Registered);
    group.bench_function("cache_hit_registered", |b| b.iter(|| registered.check()));
    // With the signed identity: reused per subject (the default), and
    // signed for every request (`per_request`).
    let signed = HotPath::signed(false);
    group.bench_function("cache_hit_signed_identity", |b| b.iter(|| signed.check()));
    let per_request = HotPath::signed(true);
    group.bench_function("cache_hit_signed_per_request", |b| {
        b.iter(|| per_request.check())
    });
    // The same with the decision line formatted and written as in
    // production (JSON, the batching writer; its thread writes to a sink):
    // the cost of logging itself.
    let (writer, _guard) = dispatch_authz::telemetry::batched(std::io::sink()).unwrap();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .event_format(dispatch_authz::telemetry::JsonLines)
        .with_writer(writer)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("cache_hit_json_log", |b| b.iter(|| hot.check()));
    });
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("cache_hit_pretty_log", |b| b.iter(|| hot.check()));
    });
    let encoded = hot.request.encode_to_vec();
    let response = hot.check();
    group.bench_function("encode_decode", |b| {
        b.iter(|| {
            let request = CheckRequest::decode(encoded.as_slice()).unwrap();
            (request, response.encode_to_vec())
        })
    });
    group.finish();
}

fn bench_paths(c: &mut Criterion) {
    let public = PublicPaths::new(&["/healthz", "/docs/api", "/public"]).unwrap();
    let routes = RouteMap::dispatch();
    let target = |raw: &str| {
        let path = RequestPath::parse(raw).unwrap();
        dispatch_authz::policy::target(&path, "api.example.com", &public, Some(&routes)).is_ok()
    };
    let mut group = c.benchmark_group("paths");
    // What Check does: parse, then the target under every upstream reading.
    group.bench_function("parse_and_match", |b| {
        b.iter(|| target("/v1/function/hello-world/versions/3?x=1"))
    });
    // A letter case, a `%` or a `;` make every reading necessary.
    group.bench_function("parse_and_match_all_readings", |b| {
        b.iter(|| target("/v1/function/Hello-World/versions/3?x=1"))
    });
    group.bench_function("refuse_dot_segment", |b| {
        b.iter(|| RequestPath::parse("/healthz/%2e%2e/admin").is_err())
    });
    group.finish();
}

fn bench_headers(c: &mut Criterion) {
    let hot = HotPath::new();
    let view = RequestView {
        host: "",
        method: "GET",
        path: "/",
        request_id: RequestId::parse("3c5e0b5e"),
        headers: ClientHeaders::new([("x-dispatch-user", "mallory"), ("x-dispatch-org", "evil")]),
        budget: None,
        removals: Default::default(),
        trace: None,
    };
    let user = hot.runtime.block_on(async {
        let view = request_view(&hot.request).unwrap();
        match hot.checker.check(&view).await.decision {
            dispatch_authz::check::Decision::Allow { permit, .. } => permit,
            _ => unreachable!(),
        }
    });
    // The rules the hot path's checker has.
    let rules = UpstreamRules::default();
    let credentials = CredentialSettings {
        header: None,
        cookie: None,
        max_token_bytes: 8192,
    };
    c.bench_function("headers/upstream", |b| {
        b.iter(|| rules.headers(&user, &view, &credentials, None))
    });
    let public = Permit::PublicPath;
    c.bench_function("headers/public", |b| {
        b.iter(|| rules.headers(&public, &view, &credentials, None))
    });
}

/// Allocations of one cache-hit Check, request decoding and response encoding
/// excluded (tonic does those).
fn report_allocations() {
    let hot = HotPath::new();
    for _ in 0..100 {
        hot.check();
    }
    let rounds = 1000;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..rounds {
        std::hint::black_box(hot.check());
    }
    let per_check = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / rounds as f64;
    println!("allocations per cache-hit Check (CheckRequest -> CheckResponse): {per_check:.1}");
    // Where they are: reading the request, deciding, writing the response.
    let count = |f: &dyn Fn()| {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..rounds {
            f();
        }
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / rounds as f64
    };
    let view = count(&|| {
        std::hint::black_box(request_view(&hot.request).unwrap());
    });
    let decide = count(&|| {
        hot.runtime.block_on(async {
            let view = request_view(&hot.request).unwrap();
            std::hint::black_box(hot.checker.check(&view).await);
        })
    }) - view;
    println!(
        "  of which reading the request {view:.1}, deciding {decide:.1}, the response {:.1}",
        per_check - view - decide
    );
}

criterion_group!(
    benches,
    bench_verify,
    bench_check,
    bench_paths,
    bench_headers
);

fn main() {
    report_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
