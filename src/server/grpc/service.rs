//! `envoy.service.auth.v3.Authorization` as a tonic service, written by hand
//! instead of envoy-types' generated server, so that Check can answer with an
//! [`Answer`] already encoded (`answer.rs`) rather than a `CheckResponse`.
//! The request side is envoy-types' `CheckRequest`, decoded by prost as
//! before.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use envoy_types::ext_authz::v3::pb::CheckRequest;
use tonic::{
    codegen::{Body, BoxFuture, Service, StdError, http},
    server::{Grpc, NamedService, UnaryService},
};

use super::{Answer, AuthorizationService};

/// The gRPC service Envoy's ext_authz filter calls.
#[derive(Clone)]
pub struct AuthorizationServer(Arc<AuthorizationService>);

impl AuthorizationServer {
    pub fn new(service: AuthorizationService) -> Self {
        Self(Arc::new(service))
    }
}

impl NamedService for AuthorizationServer {
    const NAME: &'static str = "envoy.service.auth.v3.Authorization";
}

const CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";

struct Check(Arc<AuthorizationService>);

impl UnaryService<CheckRequest> for Check {
    type Response = Answer;
    type Future = BoxFuture<tonic::Response<Answer>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<CheckRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.check(request).await) })
    }
}

impl<B> Service<http::Request<B>> for AuthorizationServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != CHECK {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let check = Check(self.0.clone());
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<Answer, CheckRequest>::default();
            Ok(Grpc::new(codec).unary(check, request).await)
        })
    }
}

/// Any other method of the service: UNIMPLEMENTED, as generated servers say.
fn unimplemented() -> http::Response<tonic::body::Body> {
    tonic::Status::unimplemented("no such method").into_http()
}
