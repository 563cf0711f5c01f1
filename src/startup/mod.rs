//! Assembling the application: open the store, build the pipeline, bind the
//! listener (all fallible, all before serving), then run; `reload.rs` builds
//! the pipeline again from a changed file.

mod listen;
mod pipeline;
mod reload;
mod stores;

use pipeline::identity_verifier;
pub use pipeline::{checker, explainer, http_client};
pub use stores::{local_iam, local_iam_read_only, migrate, open_existing_store, open_store};

use std::{future::Future, io, net::SocketAddr, path::PathBuf, sync::Arc};

use thiserror::Error;
use tokio::net::TcpListener;

use crate::{
    check::{Live, Replicas},
    config::{Config, Overrides, Settings},
    domain::IssuerName,
    iam::Iam,
    server::{self, AdminService, HttpCheck, Listener, Operations, ServeError, http::Style},
    store::{SqlStore, StoreError, StoreLocation},
    telemetry::metrics,
};

#[derive(Debug, Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The setting names the listener; the cause follows in the chain.
    #[error("cannot listen on {addr} ({setting})")]
    Bind {
        setting: &'static str,
        addr: String,
        source: io::Error,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(
        "no database at {0}: a read-only command never creates one (store.database or \
         --database names it; `dispatch-authz migrate` or the server creates it)"
    )]
    NoDatabase(String),
}

pub struct App {
    listener: Listener,
    admin: Option<TcpListener>,
    http: Option<(Listener, Style)>,
    operations: Option<TcpListener>,
    sources: Vec<IssuerName>,
    checker: Arc<Live>,
    store: SqlStore,
    shutdown_grace: std::time::Duration,
    /// Where the configuration is read again from (`reloadable`).
    reload: Option<(Option<PathBuf>, Overrides, Settings)>,
}

use listen::{bind, bind_admin, bind_http, bind_tcp, style};
pub use reload::Reloader;

impl App {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let store = SqlStore::open(&config.database, config.pool_size).await?;
        let sources = config.source_names().into_iter().cloned().collect();
        let listener = bind("server.listen", &config.listen).await?;
        let admin = match config.admin_listen {
            Some(addr) => Some(bind_admin(addr).await?),
            None => None,
        };
        let http = match &config.http {
            Some((addr, proxy)) => Some((bind_http(addr).await?, style(*proxy))),
            None => None,
        };
        let operations = match config.operations_listen {
            Some(addr) => Some(bind_tcp(addr).await?),
            None => None,
        };
        let shutdown_grace = config.shutdown_grace;
        // Not ready until it hears the other replicas (see `Replicas`).
        let replicas = match store.location() {
            StoreLocation::Postgres(_) => Replicas::Starting,
            _ => Replicas::Alone,
        };
        let checker = Arc::new(Live::new(
            checker(Arc::new(store.clone()), config),
            replicas,
        ));
        Ok(Self {
            listener,
            admin,
            http,
            operations,
            sources,
            checker,
            store,
            shutdown_grace,
            reload: None,
        })
    }

    /// Reload on SIGHUP and through the admin API, reading `file` (and the
    /// environment, and `overrides`) again; `applied` is what `build` was
    /// given, compiled.
    pub fn reloadable(
        mut self,
        file: Option<PathBuf>,
        overrides: Overrides,
        applied: Settings,
    ) -> Self {
        self.reload = Some((file, overrides, applied));
        self
    }

    /// The bound TCP address (`None` on a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.listener {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// The admin API's bound address (`None` when it is off).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The HTTP check listener's bound TCP address (`None` when it is off
    /// or on a Unix socket).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        match &self.http {
            Some((Listener::Tcp(l), _)) => l.local_addr().ok(),
            _ => None,
        }
    }

    /// The operations listener's bound address (`None` when it is off).
    pub fn operations_addr(&self) -> Option<SocketAddr> {
        self.operations.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// The checker in force, and whether it follows the other replicas.
    pub fn live(&self) -> &Arc<Live> {
        &self.checker
    }

    /// A line per listener, then the start-up line: what runs where, on
    /// which store, trusting which issuers (the store's password masked);
    /// then, with no identity source, what to do about it.
    fn log_start(&self) {
        let at = |listener: &Listener| match listener {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        };
        let tcp = |l: &Option<TcpListener>| {
            l.as_ref()
                .and_then(|l| l.local_addr().ok())
                .map_or("off".to_owned(), |a| a.to_string())
        };
        let mut listeners = vec![(
            "check",
            at(&self.listener),
            "gRPC: Authorization, Health, reflection",
        )];
        if let Some(addr) = self.admin_addr() {
            listeners.push((
                "admin",
                addr.to_string(),
                "gRPC: admin API, Health, reflection",
            ));
        }
        if let Some((l, _)) = &self.http {
            listeners.push((
                "http",
                at(l),
                "HTTP checks for nginx, Caddy, Traefik, Envoy",
            ));
        }
        if let Some(addr) = self.operations_addr() {
            listeners.push((
                "operations",
                addr.to_string(),
                "HTTP: /healthz, /readyz, /metrics",
            ));
        }
        for (listener, addr, serves) in listeners {
            tracing::info!(listener, %addr, serves, "listening");
        }
        let issuers: Vec<&str> = self.sources.iter().map(IssuerName::as_str).collect();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            addr = %at(&self.listener),
            admin = %tcp(&self.admin),
            http = %self.http.as_ref().map_or("off".to_owned(), |(l, _)| at(l)),
            http_proxy = ?self.http.as_ref().map(|(_, style)| style),
            operations = %tcp(&self.operations),
            store = %self.store.location(),
            mode = self.checker.current().mode(),
            dry_run = %self.checker.current().dry_run_scope().describe(),
            issuers = %issuers.join(","),
            traces = %traces(),
            "serving ext_authz"
        );
        if self.sources.is_empty() {
            tracing::warn!(
                "no issuer configured: every request outside the public paths is refused. For a \
                 development setup run `dispatch-authz init DIR` and serve with its configuration; \
                 to trust Dex, GitHub or GitHub Actions see README.md, \"Identity sources\""
            );
        }
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartupError> {
        self.log_start();
        // Socket files to remove after a clean stop.
        let sockets: Vec<_> = [Some(&self.listener), self.http.as_ref().map(|(l, _)| l)]
            .into_iter()
            .flatten()
            .filter_map(|listener| match listener {
                Listener::Unix(_, path) => Some(path.clone()),
                Listener::Tcp(_) => None,
            })
            .collect();
        // Background key refreshers live as long as the server (dropping the
        // set aborts them).
        let mut refreshers = tokio::task::JoinSet::new();
        let reloader = self.reload.map(|(file, overrides, applied)| {
            Arc::new(Reloader::new(
                file,
                overrides,
                applied,
                self.checker.clone(),
            ))
        });
        match &reloader {
            // The reloader runs the key refreshers, and replaces them with
            // the sources.
            Some(reloader) => {
                refreshers.spawn(reloader.clone().on_hangup());
            }
            None => {
                for remote in self.checker.current().identity().remote_key_sets() {
                    refreshers.spawn(remote.run_refresher());
                }
            }
        }
        // Generated signing keys: the next one signs every so often (a
        // reload keeps the signer).
        if let Some(asserter) = self.checker.current().signed_identity().cloned() {
            refreshers.spawn(asserter.rotate_periodically());
        }
        // The metrics recorder's upkeep, while it records (operations on).
        if self.operations.is_some() {
            refreshers.spawn(metrics::upkeep());
        }
        // Several replicas on one PostgreSQL: forget what the others change.
        if let StoreLocation::Postgres(url) = self.store.location() {
            refreshers.spawn(crate::iam::follow(url.clone(), self.checker.clone()));
        }
        let admin = self.admin.map(|listener| {
            let iam = Iam::new(
                Arc::new(self.store.clone()),
                self.checker.clone(),
                self.sources,
            );
            let service = AdminService::new(self.checker.clone(), Arc::new(iam));
            match &reloader {
                Some(reloader) => (listener, service.with_reload(reloader.clone())),
                None => (listener, service),
            }
        });
        let http = self
            .http
            .map(|(listener, style)| (listener, HttpCheck::new(self.checker.clone(), style)));
        let operations = self.operations.map(|listener| {
            let service = Operations::new(self.checker.clone(), metrics::handle());
            (Listener::Tcp(listener), service)
        });
        let result = server::serve(
            self.listener,
            admin,
            http,
            operations,
            self.checker,
            shutdown,
            self.shutdown_grace,
        )
        .await;
        drop(refreshers);
        // Closing checkpoints the WAL, so a clean stop leaves one database file.
        self.store.pool().close().await;
        for path in sockets {
            let _ = std::fs::remove_file(path);
        }
        Ok(result?)
    }
}

/// Where spans go: the OTLP endpoint, or `off`.
fn traces() -> String {
    if !crate::telemetry::trace::exporting() {
        return "off".into();
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    .unwrap_or_else(|| "otlp".into())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
