//! Issue 16, item 4: `examples/compose/compose.yaml` run natively, since no
//! container engine runs here. The same programs (the image's, built by
//! `scripts/container.sh build`, the script the Dockerfile runs, and started
//! through its `run`, the image's entry point), the same files at the paths
//! the compose volumes give them, the same environment (the env file, the
//! image's `ENV`), service names resolved to loopback. Then the quick
//! start's flow through Envoy: an allow with our identity and not the
//! forged one, a 401, a 403, a public path.
//!
//! What differs from a container, and why: the ports (free ones instead of
//! the containers' own, which would collide with other tests), the store's
//! URL (a fresh database on the test server instead of the `postgres`
//! service's credentials), and the container paths (under a temporary
//! root).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::{Value, json};

use crate::common::{
    postgres_if_available,
    programs::{self, Running, free_port},
    upstream::{seen, through_proxy},
};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(file: &str) -> String {
    std::fs::read_to_string(repository().join(file)).unwrap()
}

/// The image's programs (`scripts/container.sh build DIR`), from
/// `DISPATCH_TEST_IMAGE_DIR`; `.ci/run` builds them and requires the test.
fn image_dir() -> Option<PathBuf> {
    match std::env::var_os("DISPATCH_TEST_IMAGE_DIR") {
        Some(dir) => Some(dir.into()),
        None => {
            assert!(
                std::env::var_os("DISPATCH_TEST_REQUIRE_COMPOSE").is_none(),
                "DISPATCH_TEST_REQUIRE_COMPOSE is set but DISPATCH_TEST_IMAGE_DIR is not"
            );
            eprintln!(
                "SKIPPED: the compose topology needs the image's programs \
                 (scripts/container.sh build DIR --debug; DISPATCH_TEST_IMAGE_DIR=DIR)"
            );
            None
        }
    }
}

/// `KEY=VALUE` lines, comments and blank lines skipped (compose's env file).
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The Dockerfile's `ENV` assignments of `DISPATCH_AUTHZ_*`.
fn image_env(dockerfile: &str) -> BTreeMap<String, String> {
    dockerfile
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .filter(|(k, _)| k.starts_with("DISPATCH_AUTHZ_"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

struct Topology {
    image: PathBuf,
    env: BTreeMap<String, String>,
    _root: tempfile::TempDir,
}

impl Topology {
    /// `container.sh run ARGS` in the container's environment.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(self.image.join("container.sh"));
        command
            .arg("run")
            .args(args)
            .env_remove("DISPATCH_AUTHZ_BIN")
            .envs(&self.env);
        command
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn port(&self, variable: &str) -> u16 {
        let value = &self.env[variable];
        value.rsplit(':').next().unwrap().parse().unwrap()
    }
}

#[tokio::test]
async fn the_compose_topology_runs_the_quick_start_flow() {
    let Some(image) = image_dir() else {
        return;
    };
    let Some(envoy) = programs::require(programs::ENVOY) else {
        return;
    };
    let Some(database) = postgres_if_available().await else {
        return;
    };
    let compose = read("examples/compose/compose.yaml");
    // The container's filesystem, as the volumes lay it out (asserted, so a
    // change to compose.yaml cannot leave this test behind).
    for volume in [
        "./dispatch-authz.toml:/etc/dispatch-authz/dispatch-authz.toml:ro",
        "../quickstart:/etc/dispatch-authz/keys:ro",
        "./envoy.yaml:/etc/envoy/envoy.yaml:ro",
        "env_file: dispatch-authz.env",
        r#"entrypoint: ["/usr/local/bin/echo-upstream", "0.0.0.0:8080"]"#,
    ] {
        assert!(compose.contains(volume), "compose.yaml changed: {volume}");
    }
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/dispatch-authz");
    std::fs::create_dir_all(etc.join("keys")).unwrap();
    std::fs::copy(
        repository().join("examples/compose/dispatch-authz.toml"),
        etc.join("dispatch-authz.toml"),
    )
    .unwrap();
    for entry in std::fs::read_dir(repository().join("examples/quickstart")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, etc.join("keys").join(path.file_name().unwrap())).unwrap();
    }

    // The environment: the image's, then the env file's; container paths
    // under the root, listeners on free loopback ports, the store ours.
    let mut env = image_env(&read("Dockerfile"));
    env.extend(env_file(&read("examples/compose/dispatch-authz.env")));
    assert!(env.contains_key("DISPATCH_AUTHZ_SERVER__LISTEN"), "{env:?}");
    for value in env.values_mut() {
        if let Some(path) = value.strip_prefix("/etc/") {
            *value = root.path().join("etc").join(path).display().to_string();
        } else if value.starts_with("0.0.0.0:") {
            *value = format!("127.0.0.1:{}", free_port());
        }
    }
    assert!(env["DISPATCH_AUTHZ_STORE__DATABASE"].contains("@postgres:5432/"));
    env.insert("DISPATCH_AUTHZ_STORE__DATABASE".into(), database);
    let topology = Topology {
        image,
        env,
        _root: root,
    };

    // dispatch-authz (the image's default command) and the upstream.
    let sidecar_log = topology._root.path().join("sidecar.log");
    let mut sidecar = tokio::process::Command::from(topology.command(&[]));
    let _sidecar = sidecar
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&sidecar_log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let upstream_port = free_port();
    let _upstream = tokio::process::Command::new(topology.image.join("echo-upstream"))
        .arg(format!("127.0.0.1:{upstream_port}"))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Healthy by the image's HEALTHCHECK command, as compose waits for it.
    let mut healthy = false;
    for _ in 0..200 {
        if topology
            .command(&["healthcheck"])
            .output()
            .unwrap()
            .status
            .success()
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        healthy,
        "never healthy: {}",
        std::fs::read_to_string(&sidecar_log).unwrap_or_default()
    );

    // Envoy with the compose file, names resolved to loopback.
    let check_port = topology.port("DISPATCH_AUTHZ_SERVER__LISTEN");
    let yaml = read("examples/compose/envoy.yaml")
        .replace(
            "address: dispatch-authz, port_value: 50051",
            &format!("address: 127.0.0.1, port_value: {check_port}"),
        )
        .replace(
            "address: upstream, port_value: 8080",
            &format!("address: 127.0.0.1, port_value: {upstream_port}"),
        )
        .replace(
            "address: 0.0.0.0, port_value: 10000",
            "address: 127.0.0.1, port_value: 0",
        )
        .replace("port_value: 9901", "port_value: 0");
    assert!(
        !yaml.contains("address: dispatch-authz"),
        "a name left unresolved"
    );
    let envoy = Running::envoy_yaml(&envoy, yaml).await;

    // The quick start's flow, with the image's own commands.
    let admin = format!(
        "http://127.0.0.1:{}",
        topology.port("DISPATCH_AUTHZ_ADMIN__LISTEN")
    );
    let boot = [
        "bootstrap",
        "--source",
        "dev",
        "--subject",
        "583231",
        "--login",
        "octocat",
    ];
    topology.run(&boot);
    let key = topology
        ._root
        .path()
        .join("etc/dispatch-authz/keys/dev-signing-key.pem");
    let mint = |subject: &str| {
        topology.run(&[
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
            subject,
        ])
    };
    let root_token = mint("583231");
    // The admin API, as `dispatch-authz --server` from the host.
    for args in [
        &["iam", "create", "organization", "acme"][..],
        &[
            "users",
            "add",
            "--source",
            "dev",
            "--subject",
            "1001",
            "--login",
            "hubot",
        ],
        &[
            "iam",
            "create",
            "member",
            "dev:1001",
            "--org",
            "acme",
            "--default",
        ],
        &[
            "iam",
            "create",
            "role",
            "developer",
            "--org",
            "acme",
            "-p",
            "function:*",
        ],
        &[
            "iam",
            "create",
            "binding",
            "developer",
            "--org",
            "acme",
            "--user",
            "dev:1001",
        ],
    ] {
        let mut command = topology.command(&[args[0]]);
        command
            .arg("--server")
            .arg(&admin)
            .args(&args[1..])
            .env("DISPATCH_TOKEN", &root_token);
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let hubot = format!("Bearer {}", mint("1001"));
    let http = reqwest::Client::new();
    let get = async |path: &str, headers: &[(&str, &str)]| {
        through_proxy(http.get(envoy.url(path)), headers).await
    };
    let forged = [
        ("authorization", hubot.as_str()),
        ("x-dispatch-user", "mallory"),
    ];
    let (status, _, echo) = get("/v1/function/hello", &forged).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(seen(&echo, "x-dispatch-user"), Some(&vec![json!("hubot")]));
    assert_eq!(seen(&echo, "x-dispatch-org"), Some(&vec![json!("acme")]));
    assert!(!echo.to_string().contains("mallory"), "{echo}");
    let (status, headers, _) = get("/v1/function", &[]).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, body) = get("/v1/secret/db", &forged[..1]).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, echo) = get("/healthz", &[("x-dispatch-user", "mallory")]).await;
    assert_eq!(status, 200);
    assert_eq!(seen(&echo, "x-dispatch-user"), None::<&Vec<Value>>);
}
