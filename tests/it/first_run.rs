//! Issue 16, items 5 and 7: the first run from anywhere (`init`, paths read
//! from the configuration file's directory) and `token mint` taking the
//! algorithm from whatever key form common tools write.

use std::{path::Path, process::Command};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::common::fixture;

const BIN: &str = env!("CARGO_BIN_EXE_dispatch-authz");

struct Ran {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The binary, started in `cwd`, with no `DISPATCH_AUTHZ_*` from outside.
fn run_in(cwd: &Path, args: &[&str]) -> Ran {
    let out = Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .env_remove("DISPATCH_AUTHZ_CONFIG")
        .output()
        .unwrap();
    Ran {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn header_alg(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["alg"].as_str().unwrap().to_owned()
}

#[test]
fn init_makes_a_setup_that_works_from_any_directory() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = home.path().join("dev");
    let dir_s = dir.to_str().unwrap();
    let made = run_in(home.path(), &["init", dir_s]);
    assert!(made.ok, "{}", made.stderr);
    assert!(
        made.stdout.contains("bootstrap --source dev"),
        "{}",
        made.stdout
    );
    let config = dir.join("dispatch-authz.toml");
    let config_s = config.to_str().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("dev-signing-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is the owner's only");
    }

    // From another directory: the key and the database are the file's.
    let boot = [
        "--config",
        config_s,
        "bootstrap",
        "--source",
        "dev",
        "--subject",
        "583231",
        "--login",
        "octocat",
    ];
    let booted = run_in(elsewhere.path(), &boot);
    assert!(booted.ok, "{}", booted.stderr);
    assert!(dir.join("dispatch-authz.db").exists());
    assert!(!elsewhere.path().join("dispatch-authz.db").exists());
    let key = dir.join("dev-signing-key.pem");
    let mint = [
        "token",
        "mint",
        "--key",
        key.to_str().unwrap(),
        "--kid",
        "dev-1",
        "--issuer",
        "https://dev.dispatch.local",
        "--audience",
        "dispatch",
        "--subject",
        "583231",
    ];
    let minted = run_in(elsewhere.path(), &mint);
    assert!(minted.ok, "{}", minted.stderr);
    let token = minted.stdout.trim();
    assert_eq!(header_alg(token), "ES256", "taken from the generated key");
    let explain = [
        "--config",
        config_s,
        "explain",
        "--token",
        token,
        "GET",
        "/v1/function/f",
    ];
    let explained = run_in(elsewhere.path(), &explain);
    assert!(
        explained.stdout.contains("token verified: dev:583231"),
        "{}{}",
        explained.stdout,
        explained.stderr
    );
    // Octocat is a global admin with no organization: refused, exit 2.
    assert_eq!(explained.code, Some(2), "{}", explained.stdout);

    // Never over what exists.
    let again = run_in(home.path(), &["init", dir_s]);
    assert!(!again.ok);
    assert!(
        again.stderr.contains("never overwrites"),
        "{}",
        again.stderr
    );
}

#[test]
fn with_no_source_bootstrap_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let boot = [
        "bootstrap",
        "--source",
        "github",
        "--subject",
        "1",
        "--login",
        "x",
    ];
    let refused = run_in(empty.path(), &boot);
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("dispatch-authz init"),
        "{}",
        refused.stderr
    );
}

#[test]
fn token_mint_takes_the_algorithm_from_the_key() {
    let cwd = tempfile::tempdir().unwrap();
    let mint = |key: &str, extra: &[&str]| {
        let key = fixture(key);
        let mut args = vec![
            "token",
            "mint",
            "--key",
            key.to_str().unwrap(),
            "--issuer",
            "i",
            "--subject",
            "s",
        ];
        args.extend_from_slice(extra);
        run_in(cwd.path(), &args)
    };
    for (key, alg) in [
        ("ec256.pem", "ES256"),
        ("ec256-sec1.pem", "ES256"),
        ("ec384.pem", "ES384"),
        ("ed25519.pem", "EdDSA"),
        ("rsa.pem", "RS256"),
        ("rsa-pkcs1.pem", "RS256"),
    ] {
        let minted = mint(key, &[]);
        assert!(minted.ok, "{key}: {}", minted.stderr);
        assert_eq!(header_alg(minted.stdout.trim()), alg, "{key}");
    }
    // An RSA key signs PS256 when asked; an EC key never RS256.
    let ps = mint("rsa.pem", &["--algorithm", "PS256"]);
    assert_eq!(header_alg(ps.stdout.trim()), "PS256", "{}", ps.stderr);
    let wrong = mint("ec256-sec1.pem", &["--algorithm", "RS256"]);
    assert!(!wrong.ok);
    assert!(
        wrong.stderr.contains("ES256, not RS256"),
        "{}",
        wrong.stderr
    );
    // A public key, or not PEM at all: named.
    let public = mint("ec256.pub.pem", &[]);
    assert!(
        !public.ok && public.stderr.contains("not a PEM private key"),
        "{}",
        public.stderr
    );
    let secret = cwd.path().join("secret");
    std::fs::write(&secret, "dev-secret-dev-secret-dev-secret").unwrap();
    let args = |alg: &'static [&'static str]| {
        let mut v = vec![
            "token".to_owned(),
            "mint".into(),
            "--key".into(),
            secret.to_str().unwrap().to_owned(),
            "--issuer".into(),
            "i".into(),
            "--subject".into(),
            "s".into(),
        ];
        v.extend(alg.iter().map(|s| s.to_string()));
        v
    };
    let no_alg = args(&[]);
    let refs: Vec<&str> = no_alg.iter().map(String::as_str).collect();
    let refused = run_in(cwd.path(), &refs);
    assert!(
        refused.stderr.contains("--algorithm HS256"),
        "{}",
        refused.stderr
    );
    let hs = args(&["--algorithm", "HS256"]);
    let refs: Vec<&str> = hs.iter().map(String::as_str).collect();
    let minted = run_in(cwd.path(), &refs);
    assert_eq!(
        header_alg(minted.stdout.trim()),
        "HS256",
        "{}",
        minted.stderr
    );
}

/// Issue 16, item 7: a read-only command on a database file that does not
/// exist says so, naming it, and creates nothing.
#[test]
fn read_only_commands_never_create_a_database() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["users", "list"][..],
        &["users", "show", "dev:1"],
        &["export"],
        &["explain", "--user", "dev:1", "GET", "/v1/function"],
    ] {
        let ran = run_in(cwd.path(), args);
        assert!(!ran.ok, "{args:?}");
        assert!(
            ran.stderr.contains("no database at dispatch-authz.db"),
            "{args:?}: {}",
            ran.stderr
        );
        assert!(
            std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
            "{args:?} created a file"
        );
    }
}
