//! Binding the listeners, all before serving: a port taken or a socket path
//! unusable stops start-up with the address named.

use std::{io, net::SocketAddr, os::unix::fs::FileTypeExt, path::Path};

use tokio::net::{TcpListener, UnixListener};

use super::StartupError;
use crate::{
    config::{HttpProxy, ListenAddr},
    server::{Listener, http::Style},
};

fn bind_error(setting: &'static str, addr: impl ToString, source: io::Error) -> StartupError {
    StartupError::Bind {
        setting,
        addr: addr.to_string(),
        source,
    }
}

/// The admin API's listener. Beyond loopback it is allowed (a private
/// network, a mesh sidecar doing mTLS) but worth a warning.
pub(super) async fn bind_admin(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the admin API listens beyond loopback without TLS: callers' bearer tokens cross \
             the network in clear; keep it on a private network"
        );
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error("admin.listen", addr, e))
}

/// The operations listener.
pub(super) async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error("operations.listen", addr, e))
}

/// Where the original request is read from, by the configured proxy.
pub(super) fn style(proxy: HttpProxy) -> Style {
    match proxy {
        HttpProxy::Envoy => Style::Envoy,
        HttpProxy::Nginx => Style::Nginx,
        HttpProxy::Caddy | HttpProxy::Traefik => Style::Forwarded,
    }
}

/// The HTTP check listener believes the `X-Original-*` / `X-Forwarded-*`
/// headers it is sent: anyone else who reaches it chooses what is checked.
pub(super) async fn bind_http(addr: &ListenAddr) -> Result<Listener, StartupError> {
    if let ListenAddr::Tcp(addr) = addr
        && !addr.ip().is_loopback()
    {
        tracing::warn!(
            %addr,
            "the HTTP check listener listens beyond loopback: it believes the forwarded \
             method and URI of whoever calls it, so only the proxy may reach it"
        );
    }
    bind("http.listen", addr).await
}

/// `setting` names the listener in an error.
pub(super) async fn bind(
    setting: &'static str,
    addr: &ListenAddr,
) -> Result<Listener, StartupError> {
    match addr {
        ListenAddr::Tcp(addr) => TcpListener::bind(addr)
            .await
            .map(Listener::Tcp)
            .map_err(|e| bind_error(setting, addr, e)),
        ListenAddr::Unix(path) => {
            remove_stale_socket(path).map_err(|e| bind_error(setting, path.display(), e))?;
            UnixListener::bind(path)
                .map(|l| Listener::Unix(l, path.clone()))
                .map_err(|e| bind_error(setting, path.display(), e))
        }
    }
}

/// A socket file left by a crashed run would make bind fail; anything that
/// is not a socket is left alone (and bind reports it).
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        _ => Ok(()),
    }
}
