//! OpenTelemetry (issue 14): with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the
//! binary exports a span per check to an OTLP collector (a fake one here,
//! a real tonic server), as a child of the trace Envoy's call carries
//! (W3C `traceparent` in the gRPC metadata, or Jaeger's `uber-trace-id` on
//! the checked request), with the outcome as attributes and the cold
//! path's database queries as child spans.

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
    trace::v1::Span,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_dispatch-authz");

#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            if let Some(r) = &resource.resource {
                for a in &r.attributes {
                    if a.key == "service.name"
                        && let Some(AnyValue::StringValue(s)) =
                            a.value.as_ref().and_then(|v| v.value.clone())
                    {
                        self.services.lock().unwrap().push(s);
                    }
                }
            }
            for scope in resource.scope_spans {
                self.spans.lock().unwrap().extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Collector {
    /// The spans of `trace_id` (hex), once `count` have arrived.
    async fn trace(&self, trace_id: &str, count: usize) -> Vec<Span> {
        for _ in 0..200 {
            let spans: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .cloned()
                .collect();
            if spans.len() >= count {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no {count} spans of trace {trace_id}: {:?}",
            self.spans.lock().unwrap()
        );
    }
}

#[tokio::test]
async fn checks_are_traced_as_children_of_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dispatch-authz.toml");
    std::fs::write(&config, config_toml(dir.path(), &Options::default())).unwrap();
    let add = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args([
            "users",
            "add",
            "--source",
            "test",
            "--subject",
            "alice",
            "--login",
            "alice",
        ])
        .output()
        .unwrap();
    assert!(add.status.success(), "{add:?}");

    let mut child = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json", "serve"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_SERVICE_NAME", "authz-under-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("server did not start")
            .unwrap()
            .expect("server exited");
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "serving ext_authz"
        {
            assert_eq!(v["traces"], format!("http://{otlp}"), "{v}");
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let auth = bearer(&token(&claims("alice")));

    // 1. Envoy's ext_authz span in the call's metadata (W3C): the check is
    // its child, and the cold path's database query the check's.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(check_request(
        "GET",
        "/v1/function/f",
        &[("authorization", &auth)],
    ));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{parent}-01").parse().unwrap(),
    );
    let r = client.check(request).await.unwrap().into_inner();
    assert_eq!(code(&r), OK);
    let spans = collector.trace(trace, 2).await;
    let check = spans
        .iter()
        .find(|s| s.name == "check")
        .expect("a check span");
    assert_eq!(hex(&check.parent_span_id), parent);
    assert_eq!(attribute(check, "decision").as_deref(), Some("allow"));
    assert_eq!(attribute(check, "reason").as_deref(), Some("authenticated"));
    assert!(attribute(check, "subject_id").is_some_and(|id| id.len() == 36));
    let database = spans
        .iter()
        .find(|s| s.name == "database")
        .expect("a database span");
    assert_eq!(database.parent_span_id, check.span_id);
    assert_eq!(attribute(database, "cache").as_deref(), Some("users"));

    // 2. Jaeger's header on the checked request; a denial's reason.
    let r = client
        .check(check_request(
            "GET",
            "/v1/function/f",
            &[("uber-trace-id", "3a2b1c:5e6f:0:1")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&r), UNAUTHENTICATED);
    let jaeger = format!("{:0>32}", "3a2b1c");
    let spans = collector.trace(&jaeger, 1).await;
    assert_eq!(hex(&spans[0].parent_span_id), format!("{:0>16}", "5e6f"));
    assert_eq!(attribute(&spans[0], "decision").as_deref(), Some("deny"));
    assert_eq!(
        attribute(&spans[0], "reason").as_deref(),
        Some("missing_credential")
    );
    assert!(
        collector
            .services
            .lock()
            .unwrap()
            .iter()
            .all(|s| s == "authz-under-test")
    );
}
