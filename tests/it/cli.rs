//! The `dispatch-authz` binary as a user runs it.

use std::{path::Path, process::Stdio, time::Duration};

use crate::common::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
    sync::mpsc,
};

const BIN: &str = env!("CARGO_BIN_EXE_dispatch-authz");

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(config: &Path, args: &[&str]) -> Run {
    run_env(config, args, &[])
}

fn run_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits (up to 10 s) until the server's `/metrics` shows `series` at
/// `want`.
async fn metric_reaches(operations: &str, series: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(format!("http://{operations}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
        if value == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} is {value:?}, not {want}, in:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dispatch-authz.toml");
    std::fs::write(&path, config_toml(dir.path(), &Options::default())).unwrap();
    (dir, path)
}

const ADD: &[&str] = &[
    "users",
    "add",
    "--issuer",
    "test",
    "--subject",
    "583231",
    "--login",
    "octocat",
    "--email",
    "octocat@example.com",
];

#[test]
fn users_can_be_added_listed_disabled_and_removed() {
    let (_dir, config) = config_dir();
    let added = run(&config, ADD);
    assert!(added.ok, "{}", added.stderr);
    assert!(added.stdout.contains("octocat"));

    let list = run(&config, &["users", "list", "--json"]);
    let users: Vec<Value> = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["subject"], "583231");
    assert_eq!(users[0]["enabled"], true);
    let id = users[0]["id"].as_str().unwrap().to_owned();

    let disabled = run(&config, &["users", "disable", "test:583231"]);
    let field = |out: &str, name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    assert!(disabled.ok, "{}", disabled.stderr);
    assert_eq!(field(&disabled.stdout, "enabled").as_deref(), Some("no"));
    // Absent values print as "-", times as ISO-8601.
    assert_eq!(
        field(&disabled.stdout, "display_name").as_deref(),
        Some("-")
    );
    assert!(
        field(&disabled.stdout, "created_at")
            .unwrap()
            .ends_with('Z')
    );
    let enabled = run(&config, &["users", "enable", &id]);
    assert!(enabled.ok);
    assert_eq!(field(&enabled.stdout, "enabled").as_deref(), Some("yes"));
    let shown = run(&config, &["users", "show", &id]);
    assert!(shown.stdout.contains("octocat@example.com"));
    assert!(run(&config, &["users", "list"]).stdout.contains("octocat"));

    assert!(run(&config, &["users", "remove", &id]).ok);
    let gone = run(&config, &["users", "show", &id]);
    assert!(!gone.ok);
    assert!(gone.stderr.contains("no user"), "{}", gone.stderr);
}

#[test]
fn a_duplicate_subject_is_refused_and_changes_nothing() {
    let (_dir, config) = config_dir();
    assert!(run(&config, ADD).ok);
    let again = run(
        &config,
        &[
            "users",
            "add",
            "--issuer",
            "test",
            "--subject",
            "583231",
            "--login",
            "other",
        ],
    );
    assert!(!again.ok);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(!again.stderr.contains("panicked"));
    let list = run(&config, &["users", "list", "--json"]);
    assert_eq!(list.stdout.lines().count(), 1);
    assert!(list.stdout.contains("octocat") && !list.stdout.contains("other"));
}

#[test]
fn bad_arguments_name_the_problem() {
    let (_dir, config) = config_dir();
    let cases: &[(&[&str], &str)] = &[
        (
            &["users", "add", "--issuer", "test", "--login", "x"],
            "--subject",
        ),
        (
            &[
                "users",
                "add",
                "--source",
                "test",
                "--github-id",
                "12ab",
                "--login",
                "x",
            ],
            "invalid value '12ab'",
        ),
        (
            &[
                "users",
                "add",
                "--source",
                "test",
                "--github-id",
                "1",
                "--subject",
                "1",
                "--login",
                "x",
            ],
            "cannot be used with",
        ),
        (
            &[
                "users",
                "add",
                "--issuer",
                "nope",
                "--subject",
                "1",
                "--login",
                "x",
            ],
            "source \"nope\" is not configured (configured: test)",
        ),
        (
            &[
                "users",
                "add",
                "--issuer",
                "test",
                "--subject",
                "1",
                "--login",
                "a\nb",
            ],
            "invalid login",
        ),
        (
            &[
                "users",
                "add",
                "--issuer",
                "test",
                "--subject",
                "1",
                "--login",
                "x",
                "--email",
                "nope",
            ],
            "invalid e-mail",
        ),
        (&["users", "show", "octocat"], "neither a user id"),
        (&["serve", "--listen", "localhost"], "server.listen"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["--log-format", "xml", "migrate"], "invalid value 'xml'"),
    ];
    for (args, want) in cases {
        let r = run(&config, args);
        assert!(!r.ok, "{args:?} succeeded");
        assert!(
            r.stderr.contains(want),
            "{args:?}: want {want:?} in {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn config_mistakes_stop_start_up_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[server]\nlisten_adress = \"127.0.0.1:1\"\n").unwrap();
    let r = run(&config, &["migrate"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("listen_adress"), "{}", r.stderr);

    std::fs::write(&config, "[server\nlisten = 1").unwrap();
    let r = run(&config, &["migrate"]);
    assert!(!r.ok && r.stderr.contains("TOML"), "{}", r.stderr);

    let r = run(&dir.path().join("missing.toml"), &["migrate"]);
    assert!(!r.ok && r.stderr.contains("missing.toml"), "{}", r.stderr);
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let (dir, config) = config_dir();
    let env_db = dir.path().join("from-env.db");
    let r = run_env(
        &config,
        &["migrate"],
        &[("DISPATCH_AUTHZ_STORE__DATABASE", env_db.to_str().unwrap())],
    );
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("from-env.db"), "{}", r.stdout);

    let flag_db = dir.path().join("from-flag.db");
    let r = run_env(
        &config,
        &["--database", flag_db.to_str().unwrap(), "migrate"],
        &[("DISPATCH_AUTHZ_STORE__DATABASE", env_db.to_str().unwrap())],
    );
    assert!(r.stdout.contains("from-flag.db"), "{}", r.stdout);
    assert!(flag_db.exists());

    let r = run_env(
        &config,
        &["migrate"],
        &[("DISPATCH_AUTHZ_CACHE__USERS_TTL_SECS", "soon")],
    );
    assert!(
        !r.ok && r.stderr.to_lowercase().contains("cache.users_ttl_secs"),
        "{}",
        r.stderr
    );
}

#[test]
fn help_explains_the_commands() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "users", "--config", "x-dispatch-user"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}

/// `serve` as a process: JSON decision lines, no token in any log line,
/// metrics that count exactly what it served, and a clean exit on SIGTERM.
#[tokio::test]
async fn serve_logs_decisions_without_tokens_and_stops_on_sigterm() {
    let (_dir, config) = config_dir();
    assert!(run(&config, ADD).ok);
    let minted = run(
        &config,
        &[
            "token",
            "mint",
            "--key",
            fixture("rsa.pem").to_str().unwrap(),
            "--kid",
            "k1",
            "--issuer",
            ISS,
            "--audience",
            AUD,
            "--subject",
            "583231",
        ],
    );
    assert!(minted.ok, "{}", minted.stderr);
    let good = minted.stdout.trim().to_owned();
    let ghost = [
        "users",
        "add",
        "--source",
        "test",
        "--subject",
        "666",
        "--login",
        "ghost",
    ];
    assert!(run(&config, &ghost).ok);
    assert!(run(&config, &["users", "disable", "test:666"]).ok);
    let ghost_token = token(&claims("666"));
    // Same header and claims, another signature.
    let dot = good.rfind('.').unwrap();
    let flipped = if &good[dot + 1..dot + 2] == "A" {
        "B"
    } else {
        "A"
    };
    let bad = format!("{}{flipped}{}", &good[..=dot], &good[dot + 2..]);

    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (tx, mut lines) = mpsc::unbounded_channel();
    let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let (mut addr, mut operations) = (None, None);
    while addr.is_none() || operations.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .expect("server did not start")
            .expect("server exited");
        log.push(line.clone());
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "serving ext_authz"
        {
            // One start-up line says it all (issue 14).
            assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{v}");
            assert_eq!(v["mode"], "registered", "{v}");
            assert_eq!(v["issuers"], "test", "{v}");
            assert_eq!(v["http"], "off", "{v}");
            assert!(v["store"].as_str().unwrap().ends_with("users.db"), "{v}");
            assert!(
                v["admin"].as_str().unwrap().starts_with("127.0.0.1:"),
                "{v}"
            );
            addr = v["addr"].as_str().map(str::to_owned);
            operations = v["operations"].as_str().map(str::to_owned);
        }
    }
    let (addr, operations) = (addr.unwrap(), operations.unwrap());

    let mut client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (token, want) in [(&good, 0), (&bad, 16), (&ghost_token, 7), (&good, 0)] {
        let auth = format!("Bearer {token}");
        let r = client
            .check(check_request(
                "POST",
                "/v1/secret?token=querysecret",
                &[("authorization", &auth)],
            ))
            .await
            .unwrap()
            .into_inner();
        // Every decision's id, in the access log's metadata; a denial's
        // also in a header for the client.
        let meta = &r.dynamic_metadata.as_ref().expect("metadata").fields;
        let Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(id)) =
            meta["decision_id"].kind.clone()
        else {
            panic!("no decision_id: {meta:?}")
        };
        if want != 0 {
            let headers = denied(&r).headers;
            assert_eq!(
                header(&headers, "x-dispatch-decision-id"),
                Some(id.as_str())
            );
        }
        ids.push(id);
        assert_eq!(r.status.unwrap().code, want);
    }

    // Issue 14: the metrics count exactly these four checks (this process
    // has served no other).
    let metrics = reqwest::get(format!("http://{operations}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (series, want) in [
        (
            r#"dispatch_authz_checks_total{decision="allow",reason="authenticated",subject_kind="user"}"#,
            "2",
        ),
        (
            r#"dispatch_authz_checks_total{decision="deny",reason="bad_signature",subject_kind="none"}"#,
            "1",
        ),
        (
            r#"dispatch_authz_checks_total{decision="deny",reason="user_disabled",subject_kind="user"}"#,
            "1",
        ),
        ("dispatch_authz_check_duration_seconds_count", "4"),
        (
            r#"dispatch_authz_cache_lookups_total{cache="settled",result="hit"}"#,
            "1",
        ),
        // The bad signature's token, the disabled user's, the first good one.
        (
            r#"dispatch_authz_cache_lookups_total{cache="settled",result="miss"}"#,
            "3",
        ),
        (
            r#"dispatch_authz_cache_lookups_total{cache="users",result="miss"}"#,
            "2",
        ),
        (r#"dispatch_authz_cache_entries{cache="settled"}"#, "1"),
    ] {
        let value = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
        assert_eq!(value, Some(want), "{series} in:\n{metrics}");
    }
    assert!(metrics.contains("# TYPE dispatch_authz_check_duration_seconds histogram"));

    // Issue 14: SIGHUP reads the file again. A broken file is refused,
    // counted, and changes nothing; a good one takes effect at once.
    let pid = child.id().unwrap().to_string();
    let hangup = || {
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        )
    };
    let original = std::fs::read_to_string(&config).unwrap();
    let open = async |client: &mut AuthorizationClient<_>| {
        let r = client
            .check(check_request("GET", "/v1/open/x", &[]))
            .await
            .unwrap()
            .into_inner();
        r.status.unwrap().code
    };
    std::fs::write(
        &config,
        original.replace("[check]", "[check]\nmax_token_bytes = 1"),
    )
    .unwrap();
    hangup();
    metric_reaches(
        &operations,
        r#"dispatch_authz_config_reloads_total{result="failed"}"#,
        "1",
    )
    .await;
    assert_eq!(open(&mut client).await, 16, "the old public paths stay");
    std::fs::write(
        &config,
        original.replace(
            r#"public_paths = ["/healthz"]"#,
            r#"public_paths = ["/healthz", "/v1/open"]"#,
        ),
    )
    .unwrap();
    hangup();
    metric_reaches(
        &operations,
        r#"dispatch_authz_config_reloads_total{result="ok"}"#,
        "1",
    )
    .await;
    assert_eq!(open(&mut client).await, 0, "the new public path");

    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    while let Ok(line) = lines.try_recv() {
        log.push(line);
    }
    let all = log.join("\n");
    let line = |message: &str| {
        log.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in:\n{all}"))
    };
    let refused = line("configuration reload refused: the configuration in force is kept");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("check.max_token_bytes"),
        "{refused}"
    );
    assert_eq!(line("configuration reloaded")["changed"], "check");
    assert!(!all.contains(&good[20..60]), "a token reached the log");
    assert!(
        !all.contains("querysecret"),
        "the query string reached the log"
    );

    let decisions: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "decision")
        .collect();
    // The four checks, then the two of /v1/open around the reload.
    assert_eq!(decisions.len(), 6, "{all}");
    assert_eq!(decisions[4]["reason"], "missing_credential", "{all}");
    assert_eq!(decisions[5]["reason"], "public_path", "{all}");
    let allow = &decisions[0];
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["reason"], "authenticated");
    assert_eq!(allow["login"], "octocat");
    assert_eq!(allow["issuer"], "test");
    assert!(allow["user_id"].is_string());
    assert_eq!(allow["method"], "POST");
    assert_eq!(allow["path"], "/v1/secret");
    assert_eq!(allow["request_id"], "req-42");
    assert_eq!(decisions[1]["decision"], "deny");
    assert_eq!(decisions[1]["reason"], "bad_signature");
    assert_eq!(decisions[2]["reason"], "user_disabled");
    // Issue 14: denial lines name the login, not only the id.
    assert_eq!(decisions[2]["login"], "ghost");
    // The same decision ids as the answers carried, line by line.
    let logged: Vec<&str> = decisions[..4]
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(logged, ids);
    assert!(
        decisions[2]["user_id"].is_string(),
        "a disabled user's denial names the user"
    );
    assert!(all.contains("shutting down"), "{all}");
}

#[test]
fn github_users_are_added_by_numeric_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let opts = Options {
        sources: "\n[github]\napi_url = \"http://127.0.0.1:9\"\n".into(),
        ..Default::default()
    };
    std::fs::write(&config, config_toml(dir.path(), &opts)).unwrap();
    let r = run(
        &config,
        &[
            "users",
            "add",
            "--source",
            "github",
            "--github-id",
            "583231",
            "--login",
            "octocat",
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let list = run(&config, &["users", "list", "--json"]);
    let user: Value = serde_json::from_str(list.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (user["source"].as_str(), user["subject"].as_str()),
        (Some("github"), Some("583231"))
    );
    assert!(run(&config, &["users", "list"]).stdout.contains("SOURCE"));
    assert!(
        run(&config, &["users", "show", "github:583231"])
            .stdout
            .contains("octocat")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_then_iam_commands_over_the_admin_api() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Options::default()
    })
    .await;
    let config = app.dir.path().join("dispatch-authz.toml");
    let boot = [
        "bootstrap",
        "--source",
        "test",
        "--subject",
        "root",
        "--login",
        "root",
    ];
    let first = run(&config, &boot);
    assert!(first.ok, "{}", first.stderr);
    let again = run(&config, &boot);
    assert!(!again.ok);
    assert!(
        again.stderr.contains("a global admin exists already"),
        "{}",
        again.stderr
    );

    let server = format!("http://{}", app.admin_addr.unwrap());
    let root = token(&claims("root"));
    let iam = |args: &[&str]| {
        let mut all = vec!["iam", "--json", "--server", &server];
        all.extend_from_slice(args);
        run_env(&config, &all, &[("DISPATCH_TOKEN", &root)])
    };
    let key = fixture("ec256.pub.pem").display().to_string();
    for args in [
        &["create", "organization", "acme"][..],
        &[
            "create",
            "role",
            "builder",
            "--org",
            "acme",
            "-p",
            "image:*",
            "-p",
            "baseimage:create",
        ],
        &[
            "create",
            "serviceaccount",
            "ci",
            "--org",
            "acme",
            "--public-key",
            &key,
            "--key-algorithm",
            "ES256",
        ],
        &[
            "create",
            "binding",
            "builder",
            "--org",
            "acme",
            "--to-service-account",
            "acme/ci",
        ],
    ] {
        let r = iam(args);
        assert!(r.ok, "{args:?}: {}", r.stderr);
    }
    let roles = iam(&["get", "role", "--org", "acme"]);
    let role: Value = serde_json::from_str(roles.stdout.trim()).unwrap();
    assert_eq!(
        role["permissions"],
        serde_json::json!(["baseimage:create", "image:*"])
    );
    let bad = iam(&["create", "role", "x", "--org", "acme", "-p", "image"]);
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("InvalidArgument: permissions[0]"),
        "{}",
        bad.stderr
    );

    // The service account, as Dispatch's CLI used it: a token signed on the
    // spot with its private key. It may build images, not administer.
    let private = fixture("ec256.pem").display().to_string();
    let as_ci = [
        "--service-account",
        "acme/ci",
        "--key",
        &private,
        "--algorithm",
        "ES256",
    ];
    let mut args = vec!["iam", "--server", &server, "get", "member", "--org", "acme"];
    args.extend_from_slice(&as_ci);
    let denied = run(&config, &args);
    assert!(!denied.ok);
    assert!(
        denied.stderr.contains("PermissionDenied"),
        "{}",
        denied.stderr
    );
    let mut mint = vec!["token", "mint"];
    mint.extend_from_slice(&as_ci[..4]);
    mint.extend_from_slice(&["--algorithm", "ES256", "--ttl-secs", "600"]);
    let minted = run(&config, &mint);
    assert!(minted.ok, "{}", minted.stderr);
    let auth = bearer(minted.stdout.trim());
    let r = app
        .check_on("POST", "api.test", "/v1/image", &[("authorization", &auth)])
        .await;
    assert_eq!(code(&r), OK, "{r:?}");

    let audit = iam(&["get", "audit", "--org", "acme"]);
    assert_eq!(audit.stdout.lines().count(), 4, "{}", audit.stdout);
}

/// Issue 15 through the binary: a group, a role bound to it and a member,
/// each with `dispatch-authz iam`, and the member's checks following them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_commands_manage_groups_their_roles_and_members() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Options::default()
    })
    .await;
    let config = app.dir.path().join("dispatch-authz.toml");
    let boot = [
        "bootstrap",
        "--source",
        "test",
        "--subject",
        "root",
        "--login",
        "root",
    ];
    assert!(run(&config, &boot).ok);
    app.add_user("carol", "carol").await;
    let server = format!("http://{}", app.admin_addr.unwrap());
    let root = token(&claims("root"));
    let iam = |args: &[&str]| {
        let mut all = vec!["iam", "--json", "--server", &server];
        all.extend_from_slice(args);
        let r = run_env(&config, &all, &[("DISPATCH_TOKEN", &root)]);
        assert!(r.ok, "{args:?}: {}", r.stderr);
        r.stdout
    };
    iam(&["create", "organization", "acme"]);
    iam(&[
        "create",
        "role",
        "developer",
        "--org",
        "acme",
        "-p",
        "function:*",
    ]);
    iam(&["create", "group", "platform", "--org", "acme"]);
    iam(&[
        "create",
        "binding",
        "developer",
        "--org",
        "acme",
        "--group",
        "platform",
    ]);
    let member = [
        "--org",
        "acme",
        "--group",
        "platform",
        "--user",
        "test:carol",
    ];
    iam(&[&["create", "groupmember"][..], &member].concat());

    let shown: Value =
        serde_json::from_str(iam(&["get", "group", "platform", "--org", "acme"]).trim()).unwrap();
    assert_eq!(shown["members"].as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown["roles"][0]["name"], "developer", "{shown}");
    let bindings = iam(&["get", "binding", "--org", "acme"]);
    assert!(bindings.contains("acme/platform"), "{bindings}");

    let auth = bearer(&token(&claims("carol")));
    let headers = [("authorization", auth.as_str()), ("x-dispatch-org", "acme")];
    assert_eq!(code(&app.check("/v1/function/f", &headers).await), OK);
    iam(&[&["delete", "groupmember"][..], &member].concat());
    assert_eq!(
        code(&app.check("/v1/function/f", &headers).await),
        PERMISSION_DENIED
    );

    // Linked to the issuer's `groups` claim: carol's token that says so.
    let platform = ["group", "platform", "--org", "acme"];
    let linked = iam(&[&["update"][..], &platform, &["--link", "test:groups=ops"]].concat());
    assert!(linked.contains("test:groups=ops"), "{linked}");
    let shown = iam(&["get", "group", "--org", "acme"]);
    assert!(shown.contains("test:groups=ops"), "{shown}");
    let ops = bearer(&token(&crate::rbac::with_groups(claims("carol"), &["ops"])));
    let headers = [("authorization", ops.as_str()), ("x-dispatch-org", "acme")];
    assert_eq!(code(&app.check("/v1/function/f", &headers).await), OK);
    iam(&[&["update"][..], &platform, &["--unlink"]].concat());
    assert_eq!(
        code(&app.check("/v1/function/f", &headers).await),
        PERMISSION_DENIED
    );
    // Neither, or a malformed link: refused with the reason.
    let mut all = vec!["iam", "--server", &server, "update"];
    all.extend_from_slice(&platform);
    let r = run_env(&config, &all, &[("DISPATCH_TOKEN", &root)]);
    assert!(!r.ok && r.stderr.contains("--link"), "{}", r.stderr);
    all.extend_from_slice(&["--link", "ops"]);
    let r = run_env(&config, &all, &[("DISPATCH_TOKEN", &root)]);
    assert!(
        !r.ok && r.stderr.contains("SOURCE:CLAIM=VALUE"),
        "{}",
        r.stderr
    );
    iam(&["delete", "group", "platform", "--org", "acme"]);
    assert!(iam(&["get", "group", "--org", "acme"]).trim().is_empty());
}

/// Issue 12, item 5: a team starts on SQLite and moves to PostgreSQL with
/// `export` and `import` (to another SQLite file where no server is set up).
#[tokio::test]
async fn export_then_import_moves_the_store_to_another_backend() {
    let (dir, config) = config_dir();
    assert!(run(&config, ADD).ok);
    let file = dir.path().join("iam.jsonl");
    let exported = run(&config, &["export", "--output", file.to_str().unwrap()]);
    assert!(exported.ok, "{}", exported.stderr);
    assert!(
        exported.stderr.contains("exported 1 rows"),
        "{}",
        exported.stderr
    );

    let target = match postgres_if_available().await {
        Some(url) => url,
        None => dir.path().join("moved.db").display().to_string(),
    };
    let args = ["--database", &target, "import", file.to_str().unwrap()];
    let imported = run(&config, &args);
    assert!(imported.ok, "{}", imported.stderr);
    assert!(
        imported.stdout.contains("imported 1 rows"),
        "{}",
        imported.stdout
    );
    assert!(!imported.stdout.contains("hunter2"));
    let listed = run(&config, &["--database", &target, "users", "list"]);
    assert!(listed.stdout.contains("octocat"), "{}", listed.stdout);
    // Again: the store is not empty any more, and says so.
    let again = run(&config, &args);
    assert!(
        !again.ok && again.stderr.contains("empty store"),
        "{}",
        again.stderr
    );
    // A file that is not an export names its line.
    std::fs::write(&file, "{\"table\":\"users\"}\n").unwrap();
    let fresh = dir.path().join("other.db").display().to_string();
    let bad = run(
        &config,
        &["--database", &fresh, "import", file.to_str().unwrap()],
    );
    assert!(!bad.ok && bad.stderr.contains("line 1"), "{}", bad.stderr);
}

/// Issue 16, item 7: a command prints the same with or without `--server`
/// (a table or `key value` lines by default, JSON lines with `--json`;
/// ISO-8601 times, absent values null), so scripts need not care which
/// way it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_and_server_commands_print_the_same() {
    let app = spawn_app_with(Options::default()).await;
    let config = app.dir.path().join("dispatch-authz.toml");
    let boot = [
        "bootstrap",
        "--source",
        "test",
        "--subject",
        "root",
        "--login",
        "root",
    ];
    assert!(run(&config, &boot).ok);
    let add = [
        "users",
        "add",
        "--source",
        "test",
        "--subject",
        "42",
        "--login",
        "hubot",
    ];
    assert!(run(&config, &add).ok);
    let server = format!("http://{}", app.admin_addr.unwrap());
    let root = token(&claims("root"));
    let env = [("DISPATCH_TOKEN", root.as_str())];
    for args in [
        &["users", "list"][..],
        &["users", "list", "--json"],
        &["users", "show", "test:42"],
        &["users", "show", "test:42", "--json"],
    ] {
        let local = run(&config, args);
        let mut remote_args = args.to_vec();
        remote_args.extend_from_slice(&["--server", &server]);
        let remote = run_env(&config, &remote_args, &env);
        assert!(
            local.ok && remote.ok,
            "{args:?}: {}{}",
            local.stderr,
            remote.stderr
        );
        assert_eq!(local.stdout, remote.stdout, "{args:?}");
    }
    let shown = run(&config, &["users", "show", "test:42", "--json"]);
    let user: Value = serde_json::from_str(shown.stdout.trim()).unwrap();
    assert_eq!(user["email"], Value::Null, "absent is null, not \"\"");
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(user["source"], "test");
}
