//! A real `serve` process, as a deployment runs it, for what a server in
//! the test's own process cannot suffer: being killed, a file size limit, a
//! stepped clock, a second process on one database.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::io::{AsyncBufReadExt, BufReader};

pub const BIN: &str = env!("CARGO_BIN_EXE_dispatch-authz");

/// Killed when dropped.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    /// The Check listener.
    pub addr: String,
    /// The admin API (`[admin]` is in the test configuration).
    pub admin: String,
}

/// How to start it: `config` the file; `prelude` bash run first in the
/// process that then becomes `serve` (limits, ignored signals); `env` more
/// variables.
#[derive(Default)]
pub struct Launch<'a> {
    pub prelude: &'a str,
    pub env: Vec<(&'a str, String)>,
}

impl ServeProcess {
    pub async fn start(config: &PathBuf, launch: Launch<'_>) -> Self {
        let script = format!("{}\nexec \"$0\" \"$@\"", launch.prelude);
        let mut child = tokio::process::Command::new("bash")
            .args(["-c", &script, BIN, "--config"])
            .arg(config)
            .args(["--log-format", "json", "serve"])
            .env("RUST_LOG", "info")
            .envs(launch.env)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut addr, mut admin) = (None, None);
        while addr.is_none() {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("serve did not start")
                .unwrap()
                .expect("serve exited");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let at = v["addr"].as_str().map(str::to_owned);
            match (v["message"].as_str(), v["listener"].as_str()) {
                (Some("listening"), Some("admin")) => admin = at,
                (Some("serving ext_authz"), _) => addr = at,
                _ => {}
            }
        }
        // Keep reading its log, so that a full pipe never stalls it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            addr: addr.unwrap(),
            admin: admin.expect("the admin API is on"),
        }
    }

    /// Whether it still runs.
    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}
