//! The world the `check` and `http` targets decide in: a real SQLite store
//! with alice (a member of acme allowed to call functions), bob (the same,
//! but disabled) and carol (a member of globex only), one RS256 issuer, and
//! a token for each. Built once per process.

use std::sync::{Arc, OnceLock};

use dispatch_authz::{
    check::{Live, Replicas},
    config::{Overrides, Settings},
    domain::{IssuerName, Login, OrgName, RoleName, Subject, SubjectRef},
    policy::rbac::{Permission, Role, Scope},
    startup,
    store::{
        Actor, BindingAdmin, NewUser, OrgAdmin, RoleAdmin, RoleBinding, RoleKey, SqlStore,
        StoreLocation, UserAdmin, UserRef,
    },
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/keys/");

pub struct World {
    pub runtime: tokio::runtime::Runtime,
    pub live: Arc<Live>,
    /// alice's, bob's, carol's.
    pub tokens: [String; 3],
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

pub fn world() -> &'static World {
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
        let live = Arc::new(Live::new(checker, Replicas::Alone));
        World {
            runtime,
            live,
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
