//! The HTTP check listener: the same [`Checker`] as the gRPC Check, for
//! proxies that ask over plain HTTP — Envoy's `http_service`, nginx
//! `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`.
//!
//! Translation only: `request.rs` reads the original request where the
//! configured proxy puts it, `answer.rs` writes the decision back. Every
//! outcome is an HTTP answer; a request that cannot be read is a 400.
//!
//! It trusts the `X-Original-*` / `X-Forwarded-*` headers because the proxy
//! sets them: only the proxy may reach this listener (loopback by default).

mod answer;
mod request;

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::io::{AsyncRead, AsyncWrite};

pub use answer::{Body, ENVOY_REMOVE};
pub use request::Style;

use super::Listener;
use crate::check::{self, Live};

/// What answers the requests of an HTTP listener: the check listener here,
/// the operations listener (`server/ops.rs`).
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        request: http::Request<Incoming>,
    ) -> impl Future<Output = http::Response<Body>> + Send;
}

impl Handler for HttpCheck {
    async fn handle(&self, request: http::Request<Incoming>) -> http::Response<Body> {
        self.check(request).await
    }
}

/// One proxy's way in to the checker.
pub struct HttpCheck {
    checker: Arc<Live>,
    style: Style,
}

impl HttpCheck {
    pub fn new(checker: Arc<Live>, style: Style) -> Self {
        Self { checker, style }
    }

    /// Decides on one check request. Its body, if any, is not read.
    pub async fn check<B>(&self, request: http::Request<B>) -> http::Response<Body> {
        let (parts, _body) = request.into_parts();
        match request::view(self.style, &parts) {
            Ok(view) => answer::answer(self.style, self.checker.current().check(&view).await),
            Err(message) => answer::answer(
                self.style,
                check::malformed("malformed_check_request", message),
            ),
        }
    }
}

/// Serves until `stop` resolves, then lets in-flight requests finish.
pub async fn serve<H: Handler>(listener: Listener, handler: H, stop: impl Future<Output = ()>) {
    let service = Arc::new(handler);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut stop => break,
        };
        match accepted {
            Ok(Conn::Tcp(stream)) => spawn(&builder, &graceful, stream, &service),
            Ok(Conn::Unix(stream)) => spawn(&builder, &graceful, stream, &service),
            // Out of file descriptors, say: wait a little rather than spin.
            Err(e) => {
                tracing::warn!(error = %e, "HTTP check listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    graceful.shutdown().await;
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Conn> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, _) = l.accept().await?;
            // Without it the first answer on a connection waits for Nagle.
            stream.set_nodelay(true)?;
            Ok(Conn::Tcp(stream))
        }
        Listener::Unix(l, _) => Ok(Conn::Unix(l.accept().await?.0)),
    }
}

fn spawn<I, H>(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    io: I,
    service: &Arc<H>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let service = service.clone();
    let handler = service_fn(move |request: http::Request<Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(service.handle(request).await) }
    });
    let conn = builder
        .serve_connection(TokioIo::new(io), handler)
        .into_owned();
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        // A client that goes away mid-request is not our error.
        let _ = conn.await;
    });
}
