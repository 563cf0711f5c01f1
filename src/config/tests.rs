use jsonwebtoken::Algorithm;

use super::*;
use crate::identity::{KeyConfig, keys::VerifyKey};

/// An issuer's keys read from files.
fn fixed(keys: &KeyConfig) -> &[VerifyKey] {
    match keys {
        KeyConfig::Fixed(keys) => keys,
        KeyConfig::Remote(_) => panic!("remote keys"),
    }
}

fn load_str(toml: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    Settings::load(Some(&path), &Overrides::default())?.compile()
}

fn err(toml: &str) -> String {
    load_str(toml).unwrap_err().to_string()
}

const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/keys/rsa.pub.pem"
);

fn issuer(extra: &str) -> String {
    format!(
        "[[issuers]]\nname = \"dex\"\nissuer = \"https://dex.test\"\naudiences = [\"dispatch\"]\n{extra}\n"
    )
}

#[test]
fn defaults_compile() {
    let config = load_str("").unwrap();
    assert_eq!(config.listen, ListenAddr::parse("127.0.0.1:50051").unwrap());
    assert!(config.issuers.is_empty());
    // Every allow has its decision line unless sampling is asked for.
    assert_eq!(
        config.request_rules.allow_lines_every.map(|n| n.get()),
        Some(1)
    );
    let sampled = load_str("[log]\nsample_allows = 100").unwrap();
    assert_eq!(
        sampled.request_rules.allow_lines_every.map(|n| n.get()),
        Some(100)
    );
    let off = load_str("[log]\nsample_allows = 0").unwrap();
    assert_eq!(off.request_rules.allow_lines_every, None);
    assert!(err("[log]\nsample_allows = 2000000").contains("log.sample_allows"));
}

#[test]
fn a_full_issuer_compiles() {
    let config = load_str(&issuer(&format!(
            "[[issuers.public_keys]]\npem_file = \"{KEY}\"\nalgorithm = \"RS256\"\nkid = \"k1\"\n[issuers.claims]\nlogin = \"login\"\nemail = \"\""
        )))
        .unwrap();
    let dex = &config.issuers[0];
    assert_eq!(fixed(&dex.keys).len(), 1);
    assert_eq!(dex.claims.login.as_deref(), Some("login"));
    assert_eq!(dex.claims.email, None);
}

#[test]
fn a_jwks_file_compiles_with_pinned_algorithms() {
    use jsonwebtoken::{
        EncodingKey,
        jwk::{Jwk, JwkSet},
    };
    let dir = tempfile::tempdir().unwrap();
    let pem = |name: &str| std::fs::read(KEY.replace("rsa.pub.pem", name)).unwrap();
    let mut rsa = Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(&pem("rsa.pem")).unwrap(),
        Algorithm::PS256,
    )
    .unwrap();
    rsa.common.key_id = Some("r".into());
    let mut ec = Jwk::from_encoding_key(
        &EncodingKey::from_ec_pem(&pem("ec256.pem")).unwrap(),
        Algorithm::ES256,
    )
    .unwrap();
    ec.common.key_id = Some("e".into());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet {
            keys: vec![rsa, ec],
        })
        .unwrap(),
    )
    .unwrap();
    let config = load_str(&issuer(&format!("jwks_file = \"{}\"", jwks.display()))).unwrap();
    let algs: Vec<_> = fixed(&config.issuers[0].keys)
        .iter()
        .map(|k| (k.kid.clone().unwrap(), k.algorithm))
        .collect();
    assert_eq!(
        algs,
        [
            ("r".to_owned(), Algorithm::PS256),
            ("e".to_owned(), Algorithm::ES256)
        ]
    );

    std::fs::write(&jwks, "{\"keys\": 3}").unwrap();
    let e = err(&issuer(&format!("jwks_file = \"{}\"", jwks.display())));
    assert!(
        e.contains("issuers[0].jwks_file") && e.contains("not a JWKS document"),
        "{e}"
    );
}

#[test]
fn remote_sources_compile_and_are_checked() {
    let config = load_str(
            "[[issuers]]\nname = \"actions\"\npreset = \"github-actions\"\naudiences = [\"dispatch\"]\n\n[github]\nrequired_team = \"acme/platform\"\n",
        )
        .unwrap();
    let actions = &config.issuers[0];
    assert_eq!(actions.iss, GITHUB_ACTIONS_ISSUER);
    assert!(matches!(actions.keys, KeyConfig::Remote(_)));
    assert_eq!(actions.claims.login.as_deref(), Some("repository"));
    assert_eq!(config.github.as_ref().unwrap().name.as_str(), "github");
    assert_eq!(config.source_names().len(), 2);

    let cases = [
        ("[github]\nclient_id = \"x\"\n", "github.client_id"),
        (
            "[github]\nrequired_team = \"acme\"\n",
            "github.required_team",
        ),
        ("[github]\napi_url = \"ftp://x\"\n", "github.api_url"),
        (
            "[github]\nname = \"test\"\n[[issuers]]\nname = \"test\"\nissuer = \"https://x\"\naudiences = [\"a\"]\ndiscovery = true\n",
            "github.name",
        ),
        ("[github]\ncleint_id = \"x\"\n", "cleint_id"),
        (
            &issuer(&format!("discovery = true\njwks_file = \"{KEY}\"")),
            "cannot be combined",
        ),
        (&issuer("jwks_uri = \"not a url\""), "issuers[0].jwks_uri"),
        (
            "[[issuers]]\nname = \"x\"\naudiences = [\"a\"]\ndiscovery = true\n",
            "issuers[0].issuer",
        ),
        (
            "[check]\ntoken_header = \"Authorization\"\n",
            "check.token_header",
        ),
    ];
    for (toml, want) in cases {
        let e = err(toml);
        assert!(e.contains(want), "want {want:?} in {e}");
    }
}

#[test]
fn a_typo_names_the_key() {
    let e = err("[server]\nlisten_addr = \"127.0.0.1:1\"\n");
    assert!(e.contains("listen_addr"), "{e}");
    let e = err("[sever]\n");
    assert!(e.contains("sever"), "{e}");
}

#[test]
fn invalid_values_name_the_field() {
    let cases = [
        ("[server]\nlisten = \"localhost\"", "server.listen"),
        ("[cache]\nusers_capacity = 0", "cache.users_capacity"),
        (
            "[check]\npublic_paths = [\"/a/../b\"]",
            "check.public_paths",
        ),
        ("[check]\nmax_token_bytes = 70000", "check.max_token_bytes"),
        (
            "[check]\npassthrough_headers = [\"x-dispatch-user\"]",
            "check.passthrough_headers",
        ),
        (
            "[check]\npassthrough_headers = [\"authorization\"]",
            "check.passthrough_headers",
        ),
        (
            "[check]\nmethod_override = \"maybe\"",
            "check.method_override",
        ),
        (
            "[check]\ndefault_deadline_ms = 0",
            "check.default_deadline_ms",
        ),
        // Regression (issue 9, item 14): numbers are range-checked.
        ("[cache]\nusers_ttl_secs = 99999999", "cache.users_ttl_secs"),
        (
            "[cache]\ntokens_max_ttl_secs = 99999999",
            "cache.tokens_max_ttl_secs",
        ),
        (
            "[server]\nshutdown_grace_secs = 99999",
            "server.shutdown_grace_secs",
        ),
        ("[github]\ntimeout_ms = 0", "github.timeout_ms"),
        ("[github]\nlookups_per_sec = 0", "github.lookups_per_sec"),
        (
            "[github]\nfailure_ttl_secs = 99999",
            "github.failure_ttl_secs",
        ),
        (
            "[service_accounts]\nmax_token_lifetime_secs = 9999999",
            "service_accounts.max_token_lifetime_secs",
        ),
        ("[cache]\nusers_ttl_secs = \"soon\"", "users_ttl_secs"),
        ("[store]\ndatabase = \"\"", "store.database"),
        ("[store]\npool_size = 0", "store.pool_size"),
        ("[log]\nsample_allows = 1000001", "log.sample_allows"),
        ("[log]\nsample_allows = -1", "sample_allows"),
    ];
    for (toml, field) in cases {
        let e = err(toml);
        assert!(e.contains(field), "{toml}: {e}");
    }
}

#[test]
fn issuers_are_checked() {
    let pem = format!("[[issuers.public_keys]]\npem_file = \"{KEY}\"\nalgorithm = \"RS256\"");
    let cases = [
        (issuer(""), "issuers[0].jwks_file: the issuer has no keys"),
        (
            issuer("hmac_secret = \"0123456789abcdef0123456789abcdef\""),
            "development only",
        ),
        (
            issuer("hmac_secret = \"short\"\ndevelopment_only = true"),
            "at least 32 bytes",
        ),
        (
            issuer(&pem.replace("RS256", "HS256")),
            "not allowed for a public key",
        ),
        (issuer(&pem.replace("RS256", "RS999")), "unknown algorithm"),
        (
            issuer(&pem.replace(KEY, "/nonexistent.pem")),
            "issuers[0].public_keys[0].pem_file",
        ),
        (
            issuer("jwks_file = \"/nonexistent.json\""),
            "/nonexistent.json",
        ),
        (
            issuer(&pem).replace("audiences = [\"dispatch\"]", "audiences = []"),
            "issuers[0].audiences",
        ),
        (
            issuer(&pem).replace("name = \"dex\"", "name = \"Dex\""),
            "issuers[0].name",
        ),
        (
            format!(
                "{}{}",
                issuer(&pem),
                issuer(&pem).replace("https://dex.test", "https://x")
            ),
            "issuers[1].name: used by another issuer",
        ),
    ];
    for (toml, want) in cases {
        let e = err(&toml);
        assert!(e.contains(want), "want {want:?} in {e}");
    }
}

#[test]
fn a_private_key_is_refused_as_a_public_key() {
    let private = KEY.replace("rsa.pub.pem", "rsa.pem");
    let e = err(&issuer(&format!(
        "[[issuers.public_keys]]\npem_file = \"{private}\"\nalgorithm = \"RS256\""
    )));
    assert!(e.contains("private key"), "{e}");
}

/// Issue 12: the store is a file or a PostgreSQL URL, whose password never
/// shows in the settings' or the config's debug output.
#[test]
fn a_postgres_url_selects_postgres_and_hides_its_password() {
    let toml =
        "[store]\ndatabase = \"postgres://app:hunter2@db/authz?sslmode=require\"\npool_size = 20";
    let config = load_str(toml).unwrap();
    assert!(config.database.is_postgres());
    assert_eq!(config.pool_size, Some(20));
    let settings: super::server::StoreSettings =
        toml_like("database = \"postgres://app:hunter2@db/authz\"");
    for shown in [format!("{config:?}"), format!("{settings:?}")] {
        assert!(
            !shown.contains("hunter2") && shown.contains("db/authz"),
            "{shown}"
        );
    }
    assert!(!load_str("").unwrap().database.is_postgres());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let settings: IssuerSettings = toml_like(
        r#"name = "dev"
issuer = "x"
audiences = ["a"]
hmac_secret = "super-secret-value-super-secret-value"
development_only = true"#,
    );
    assert!(!format!("{settings:?}").contains("super-secret"));
}

fn toml_like<T: serde::de::DeserializeOwned>(s: &str) -> T {
    Figment::from(Toml::string(s)).extract().unwrap()
}

#[test]
fn a_missing_config_file_is_an_error() {
    let e = Settings::load(
        Some(Path::new("/nonexistent/c.toml")),
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/c.toml"), "{e}");
}

#[test]
fn flags_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    let overrides = Overrides {
        listen: Some("127.0.0.1:2".into()),
        ..Default::default()
    };
    let settings = Settings::load(Some(&path), &overrides).unwrap();
    assert_eq!(settings.server.listen, "127.0.0.1:2");
}

#[test]
fn authorization_service_accounts_and_admin_compile_or_name_the_field() {
    let config = load_str("").unwrap();
    assert!(
        matches!(config.authorization, Authorization::Rbac(_)),
        "rbac by default"
    );
    assert_eq!(
        config.admin_listen,
        Some("127.0.0.1:50052".parse().unwrap())
    );
    assert_eq!(
        config.service_accounts.map(|s| s.max_token_lifetime_secs),
        Some(3600)
    );
    let config = load_str(
        "[authorization]\nmode = \"registered\"\n[admin]\nlisten = \"off\"\n\
             [service_accounts]\nenabled = false\n",
    )
    .unwrap();
    assert!(matches!(config.authorization, Authorization::Registered));
    assert!(config.admin_listen.is_none() && config.service_accounts.is_none());

    let cases = [
        (
            "[[authorization.routes]]\nprefix = \"/a/../b\"\nresource = \"x\"\n",
            "authorization.routes[0]",
        ),
        (
            "[[authorization.routes]]\nprefix = \"/a\"\nresource = \"Bad Name\"\n",
            "authorization.routes[0]",
        ),
        ("[authorization]\nmode = \"allow-all\"\n", "allow-all"),
        ("[admin]\nlisten = \"localhost\"\n", "admin.listen"),
        (
            "[service_accounts]\nmax_token_lifetime_secs = 0\n",
            "service_accounts.max_token_lifetime_secs",
        ),
    ];
    let reserved = issuer(&format!(
        "[[issuers.public_keys]]\npem_file = \"{KEY}\"\nalgorithm = \"RS256\"\n"
    ))
    .replace("name = \"dex\"", "name = \"service-account\"");
    let reserved = [(reserved.as_str(), "reserved for service accounts")];
    for (toml, want) in cases.into_iter().chain(reserved) {
        let e = err(toml);
        assert!(e.contains(want), "{toml}: {e}");
    }
}

/// Issue 13: the HTTP check listener is off unless configured, and then
/// names its proxy, which fixes where the original request is read.
#[test]
fn the_http_listener_is_off_by_default_and_names_its_proxy() {
    assert_eq!(load_str("").unwrap().http, None);
    let config = load_str("[http]\nlisten = \"127.0.0.1:50053\"\nproxy = \"traefik\"\n").unwrap();
    assert_eq!(
        config.http,
        Some((
            ListenAddr::parse("127.0.0.1:50053").unwrap(),
            HttpProxy::Traefik
        ))
    );
    let cases = [
        (
            "[http]\nlisten = \"127.0.0.1:50053\"\n",
            "http.proxy: required with http.listen",
        ),
        (
            "[http]\nlisten = \"localhost:1\"\nproxy = \"nginx\"\n",
            "http.listen",
        ),
        (
            "[http]\nlisten = \"127.0.0.1:1\"\nproxy = \"haproxy\"\n",
            "haproxy",
        ),
        (
            "[http]\nlisten = \"127.0.0.1:1\"\nproxy = \"nginx\"\nstyle = \"x\"\n",
            "style",
        ),
    ];
    for (toml, want) in cases {
        let e = err(toml);
        assert!(e.contains(want), "{toml}: {e}");
    }
}

/// Secrets never show in `Debug` output (which is what lands in logs and
/// panics): neither as written nor once compiled.
#[test]
fn secrets_are_redacted_in_debug_output() {
    let toml = "[github]\nclient_id = \"app\"\nclient_secret = \"hunter2-client-secret\"\n\
                [[issuers]]\nname = \"dev\"\nissuer = \"https://dev.test\"\naudiences = [\"a\"]\n\
                hmac_secret = \"hunter2-hmac-secret-of-32-bytes-or-more\"\ndevelopment_only = true\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    let settings = Settings::load(Some(&path), &Overrides::default()).unwrap();
    let raw = format!("{settings:?}");
    let compiled = format!("{:?}", settings.compile().unwrap());
    for shown in [raw, compiled] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}

#[test]
fn group_claims_are_names_a_link_can_hold() {
    let keys = format!("[[issuers.public_keys]]\npem_file = \"{KEY}\"\nalgorithm = \"RS256\"\n");
    let ok = load_str(&issuer(&format!(
        "group_claims = [\"groups\", \"job_workflow_ref\"]\n{keys}"
    )))
    .unwrap();
    assert_eq!(ok.issuers[0].claims.groups, ["groups", "job_workflow_ref"]);
    let bad = err(&issuer(&format!(
        "group_claims = [\"groups\", \"a=b\"]\n{keys}"
    )));
    assert!(bad.contains("issuers[0].group_claims[1]"), "{bad}");
    let bad = err(&issuer(&format!("group_claims = [\"\"]\n{keys}")));
    assert!(bad.contains("group_claims[0]"), "{bad}");
}

/// Issue 16: paths written in the file are read from its directory (the
/// configuration works from anywhere); a database given by the caller
/// (`--database`, the environment) is theirs, from their directory.
#[test]
fn paths_in_the_file_are_read_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(KEY, dir.path().join("dev.pub.pem")).unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[store]\ndatabase = \"data/users.db\"\n[[issuers]]\nname = \"dev\"\nissuer = \"https://d\"\n\
         audiences = [\"a\"]\n[[issuers.public_keys]]\npem_file = \"dev.pub.pem\"\nalgorithm = \"RS256\"\n",
    )
    .unwrap();
    let config = Settings::load(Some(&path), &Overrides::default())
        .unwrap()
        .compile()
        .unwrap();
    assert_eq!(fixed(&config.issuers[0].keys).len(), 1, "the key was found");
    assert_eq!(
        config.database.to_string(),
        dir.path().join("data/users.db").display().to_string()
    );
    let overrides = Overrides {
        database: Some("mine.db".into()),
        ..Overrides::default()
    };
    let config = Settings::load(Some(&path), &overrides)
        .unwrap()
        .compile()
        .unwrap();
    assert_eq!(config.database.to_string(), "mine.db");
    let postgres = "postgres://u@h/db";
    assert_eq!(relative_to(dir.path(), postgres), postgres);
}

/// Issue 16, item 7: a bad value names the file and the key (or the
/// environment variable), without the configuration library's internals.
#[test]
fn load_errors_name_the_file_and_key_and_nothing_of_figment() {
    let message = err("[server]\nlisten = 5\n");
    assert!(
        message.contains("c.toml: server.listen: invalid type"),
        "{message}"
    );
    assert!(
        !message.contains("default.") && !message.contains("TOML file"),
        "{message}"
    );
    let missing = Settings::load(
        Some(Path::new("/nonexistent/x.toml")),
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("/nonexistent/x.toml: No such file"),
        "{missing}"
    );
}
