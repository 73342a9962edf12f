//! Traces over OTLP: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `switchyard up` exports one trace
//! per request that follows it from the ingress through the virtual connect into the tenant's
//! pooler: `http.request` → `vnet.connect` → `pool.session` → `pool.query` → `pool.checkout`.
//! The receiver here is an OTLP/HTTP endpoint that decodes the real protobuf export requests
//! (there is no OpenTelemetry Collector among Debian's packages).

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use support::demo::{DEMO_ENV, demo_config};
use support::{Switchyard, free_port, request};

/// Every span received so far, and the paths that were posted to.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    paths: Vec<String>,
}

/// An OTLP/HTTP receiver on loopback: decodes each `ExportTraceServiceRequest` it is sent.
async fn start_receiver() -> (SocketAddr, Arc<Mutex<Received>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
    let addr = listener.local_addr().expect("receiver address");
    let received = Arc::new(Mutex::new(Received::default()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let store = store.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let store = store.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let status = match ExportTraceServiceRequest::decode(body) {
                            Ok(export) => {
                                let mut store = store.lock().expect("receiver store");
                                store.paths.push(path);
                                for resource in export.resource_spans {
                                    for scope in resource.scope_spans {
                                        store.spans.extend(scope.spans);
                                    }
                                }
                                200
                            }
                            Err(_) => 400,
                        };
                        let response = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/x-protobuf")
                            .body(Full::new(Bytes::new()))
                            .expect("response");
                        Ok::<_, Infallible>(response)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (addr, received)
}

/// A string attribute of a span.
fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_from_the_ingress_to_the_pool_checkout() {
    let (receiver, received) = start_receiver().await;
    let state: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-state/traces");
    let _ = std::fs::remove_dir_all(&state);
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let endpoint = format!("http://{receiver}");
    let mut env = DEMO_ENV.to_vec();
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint));
    let switchyard = Switchyard::start_with_env("traces", admin, &demo_config(admin, ingress, &state), &env);
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(60));
    assert!(switchyard.log().contains("exporting traces over OTLP/HTTP"), "{}", switchyard.log());

    let (status, page) = request(ingress, "acme.localhost", "GET", "/", b"").await;
    assert_eq!(status, 200, "{page}");
    // Exiting sends what is still buffered.
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");

    let received = received.lock().expect("receiver store");
    assert!(received.paths.iter().all(|p| p == "/v1/traces"), "posted to {:?}", received.paths);
    let by_id: HashMap<&[u8], &Span> = received.spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let parent = |span: &Span| by_id.get(span.parent_span_id.as_slice()).copied();
    let names: Vec<&str> = received.spans.iter().map(|s| s.name.as_str()).collect();

    // A checkout whose ancestors are query → session → connect → the request for acme's page.
    let chain = received.spans.iter().filter(|s| s.name == "pool.checkout").find_map(|checkout| {
        let query = parent(checkout).filter(|s| s.name == "pool.query")?;
        let session = parent(query).filter(|s| s.name == "pool.session")?;
        let connect = parent(session).filter(|s| s.name == "vnet.connect")?;
        let http = parent(connect).filter(|s| s.name == "http.request")?;
        Some([checkout, query, session, connect, http])
    });
    let Some([checkout, query, session, connect, http]) = chain else {
        panic!("no trace request → vnet.connect → pool.session → pool.query → pool.checkout among {names:?}");
    };
    assert!(
        [query, session, connect, http].iter().all(|s| s.trace_id == checkout.trace_id),
        "the spans are not one trace"
    );
    assert!(http.parent_span_id.is_empty(), "the request is the trace's root");
    assert_eq!(attribute(http, "tenant"), Some("acme"));
    assert_eq!(attribute(http, "path"), Some("/"));
    assert_eq!(attribute(connect, "to"), Some("127.0.0.1:3306"));
    assert_eq!(attribute(session, "pool"), Some("acme/main"));
    assert_eq!(attribute(query, "command"), Some("COM_QUERY"));
    assert_eq!(attribute(checkout, "pool"), Some("acme/main"));
    // A statement's text never leaves in a trace: only its first word.
    for span in received.spans.iter().filter(|s| s.name == "pool.query") {
        let statement = attribute(span, "statement").unwrap_or_default();
        assert!(statement.chars().all(|c| c.is_ascii_alphabetic()), "statement attribute {statement:?}");
    }
}
