//! The whole `CheckRequest → Decision` path, with Envoy's request as the
//! gRPC server reads it: any method, path, host and headers, and sometimes
//! one of three real tokens (a member allowed to call functions, a
//! disabled user, a user of another organization), so the fuzzer gets
//! past the credential phase. Invariants: never a panic; an allow of a
//! protected path is alice's, holding a token, and sets `x-dispatch-user`.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use dispatch_authz::{
    check::{Checker, Decision, Permit},
    config::{Overrides, Settings},
    domain::{IssuerName, Login, OrgName, RoleName, Subject, SubjectRef},
    policy::rbac::{Permission, Role, Scope},
    server::grpc::request_view,
    startup,
    store::{
        Actor, BindingAdmin, NewUser, OrgAdmin, RoleAdmin, RoleBinding, RoleKey, SqlStore,
        StoreLocation, UserAdmin, UserRef,
    },
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest,
    attribute_context::{HttpRequest, Request},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/keys/");

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    /// 0: alice (allowed), 1: bob (disabled), 2: carol (globex); else none.
    token: u8,
}

struct World {
    runtime: tokio::runtime::Runtime,
    checker: Checker,
    tokens: [String; 3],
    _dir: tempfile::TempDir,
}

fn mint(subject: &str) -> String {
    let pem = std::fs::read(format!("{KEYS}rsa.pem")).unwrap();
    let now = dispatch_authz::identity::unix_now();
    let claims = serde_json::json!({
        "iss": "https://issuer.test", "aud": "dispatch", "sub": subject,
        "iat": now, "exp": now + 86_400,
    });
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            format!(
                "[store]\ndatabase = \"{db}\"\n[check]\npublic_paths = [\"/healthz\"]\n\
                 [[issuers]]\nname = \"test\"\nissuer = \"https://issuer.test\"\n\
                 audiences = [\"dispatch\"]\n[[issuers.public_keys]]\n\
                 pem_file = \"{KEYS}rsa.pub.pem\"\nalgorithm = \"RS256\"\n",
                db = dir.path().join("fuzz.db").display()
            ),
        )
        .unwrap();
        let config = Settings::load(Some(&file), &Overrides::default())
            .unwrap()
            .compile()
            .unwrap();
        let store = runtime.block_on(populate(&config.database));
        let checker = startup::checker(Arc::new(store), config);
        World {
            runtime,
            checker,
            tokens: [mint("alice"), mint("bob"), mint("carol")],
            _dir: dir,
        }
    })
}

async fn populate(location: &StoreLocation) -> SqlStore {
    let store = SqlStore::open(location, None).await.unwrap();
    let actor = Actor::local("fuzz");
    let user = async |subject: &str| {
        let new = NewUser {
            issuer: IssuerName::parse("test").unwrap(),
            subject: Subject::parse(subject).unwrap(),
            login: Login::parse(subject).unwrap(),
            email: None,
            display_name: None,
        };
        store.add(&actor, new).await.unwrap()
    };
    let (alice, bob, carol) = (user("alice").await, user("bob").await, user("carol").await);
    for (org, who) in [("acme", &alice), ("acme", &bob), ("globex", &carol)] {
        let org = OrgName::parse(org).unwrap();
        let _ = store.create_org(&actor, &org).await;
        store
            .add_member(&actor, &org, &UserRef::Id(who.id), true)
            .await
            .unwrap();
    }
    let developer = Role {
        name: RoleName::parse("developer").unwrap(),
        scope: Scope::Org(OrgName::parse("acme").unwrap()),
        permissions: vec![Permission::parse("function:*").unwrap()],
    };
    store.create_role(&actor, &developer).await.unwrap();
    for who in [&alice, &bob] {
        let binding = RoleBinding {
            role: RoleKey::of(&developer),
            subject: SubjectRef::User(who.id),
        };
        store.bind_role(&actor, &binding).await.unwrap();
    }
    store
        .set_enabled(&actor, &UserRef::Id(bob.id), false)
        .await
        .unwrap();
    store
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
    let checked = world.runtime.block_on(world.checker.check(&view));
    if let Decision::Allow { permit, upstream } = &checked.decision {
        if let Permit::Subject { who, .. } = permit {
            assert_eq!(input.token, 0, "allowed someone other than alice: {who:?}");
            let set = format!("{upstream:?}");
            assert!(set.contains("x-dispatch-user"), "{set}");
        }
    }
});
