//! The edges of the sandbox, end to end with the real binary and guests:
//!
//! - A hostile guest tries to reach the host's own loopback (its admin endpoint, a real server) by
//!   every spelling of a loopback address, through outgoing HTTP, raw sockets and DNS answers,
//!   under `allowed_hosts: ["*"]` (THREATS.md invariant 1). None of them gets there: each is the
//!   tenant's own virtual network or refused. A declared forward to the same server is the
//!   positive control.
//! - An anonymous client whose request makes a component trap gets a short message and a request
//!   id; the trap's details are in the log only.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Switchyard, free_port, guest, request};

/// A real HTTP server on the host's loopback that counts the connections it accepts.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(|_: hyper::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        hyper::body::Bytes::from_static(b"the host's own server"),
                    )))
                });
                let _ = http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// Every spelling of the host's loopback a guest might try, as URL hosts.
const LOOPBACK_FORMS: &[&str] = &[
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "mapped.test",
    "compat.test",
    "nat64.test",
    "sixtofour.test",
    "localhost.",
    "LOCALHOST",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
];

#[tokio::test]
async fn a_guest_never_reaches_the_hosts_loopback_in_any_address_form() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (host, accepted) = counting_server().await;
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
dns:
  hosts:
    mapped.test: ["::ffff:127.0.0.1"]
    compat.test: ["::127.0.0.1"]
    nat64.test: ["64:ff9b::7f00:1"]
    sixtofour.test: ["2002:7f00:1::"]
tenants:
  - name: mallory
    allowed_hosts: ["*"]
    forwards:
      - "8000:127.0.0.1:{port}"
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}" }}
"#,
        port = host.port(),
        gateway = guest("http_gateway.wasm"),
    );
    let switchyard = Switchyard::start("egress_forms", admin, &config);
    switchyard.wait_for_log("forward mounted", Duration::from_secs(30));

    // The control: the declared forward reaches the server, and the counter sees it.
    let (status, body) = request(ingress, "any", "GET", "/fetch/http://127.0.0.1:8000/", b"").await;
    assert_eq!((status, body.as_str()), (200, "the host's own server"), "{}", switchyard.log());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    for port in [host.port(), admin.port()] {
        for form in LOOPBACK_FORMS {
            let (status, body) =
                request(ingress, "any", "GET", &format!("/fetch/http://{form}:{port}/healthz"), b"").await;
            assert_ne!(status, 200, "outgoing HTTP to {form}:{port} answered: {body}");
            let addr = format!("{form}:{port}");
            let (status, body) = request(ingress, "any", "GET", &format!("/connect/{addr}"), b"").await;
            assert_ne!(status, 200, "a raw connect to {addr} succeeded: {body}");
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "a guest reached the host's server:\n{}",
        switchyard.log()
    );

    // The same spellings do reach the tenant's own virtual network: the forward on port 8000.
    for form in ["[::ffff:127.0.0.1]", "[64:ff9b::7f00:1]", "nat64.test", "localhost."] {
        let (status, body) =
            request(ingress, "any", "GET", &format!("/fetch/http://{form}:8000/"), b"").await;
        assert_eq!((status, body.as_str()), (200, "the host's own server"), "{form} via the virtual network");
    }
}

#[tokio::test]
async fn a_trapping_component_shows_the_client_a_request_id_and_the_log_the_details() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: acme
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}" }}
"#,
        gateway = guest("http_gateway.wasm"),
    );
    let switchyard = Switchyard::start("trap_body", admin, &config);
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(30));
    let (status, body) = request(ingress, "any", "GET", "/panic", b"").await;
    assert_eq!(status, 500, "{body}");
    let id = body
        .strip_prefix("internal error (request id ")
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("not a short message with a request id: {body:?}"));
    for detail in ["panick", "trap", "wasm", "acme", "web", "backtrace"] {
        assert!(!body.to_lowercase().contains(detail), "the body shows `{detail}`: {body}");
    }
    switchyard.wait_for_log("request failed", Duration::from_secs(10));
    let log = switchyard.log();
    let line = log.lines().find(|l| l.contains("request failed")).expect("the failure is logged");
    assert!(line.contains(id), "the log line does not carry the request id {id}: {line}");
    assert!(log.contains("panicking on purpose at /panic"), "the guest's panic is not in the log:\n{log}");
}
