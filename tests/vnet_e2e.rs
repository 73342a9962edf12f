//! End to end, with the real example guests and the real `switchyard up` binary: requests go
//! through the ingress to an http component, which reaches a service component over its tenant's
//! virtual network; every other way out is decided by the tenant's policy.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use support::{Switchyard, free_port, guest, request, request_bytes};

/// Two tenants with the same components: a gateway routed by host, an echo service on
/// 127.0.0.1:7777 greeting with the tenant's name, and (acme only) a second echo service on
/// [::1]:7778. `extra` is appended to the config (more keys for the last tenant's components
/// are not needed by these tests).
fn two_tenants(admin: SocketAddr, ingress: SocketAddr, acme_allowed: &str, root_extra: &str) -> String {
    let gateway = guest("http_gateway.wasm");
    let echo = guest("echo-service.wasm");
    format!(
        r#"
version: 1
admin:
  listen: {admin}
{root_extra}
tenants:
  - name: acme
    allowed_hosts: {acme_allowed}
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: acme.localhost }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_GREETING: "acme:" }}
      - name: echo6
        kind: service
        wasm: {echo}
        env: {{ ECHO_GREETING: "acme6:", ECHO_LISTEN: "[::1]:7778" }}
  - name: globex
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: globex.localhost }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_GREETING: "globex:" }}
"#
    )
}

fn addrs() -> (SocketAddr, SocketAddr) {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    (admin, ingress)
}

/// Waits (bounded) until `/healthz` says ready and the three echo services of
/// [`two_tenants`] are listening.
async fn wait_ready(switchyard: &Switchyard) {
    for _ in 0..400 {
        if switchyard.healthz().await.0 == 200 {
            switchyard.wait_for_log_count("echo-service: listening on", 3, Duration::from_secs(10));
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not ready after 10s: {:?}\nlog:\n{}", switchyard.healthz().await, switchyard.log());
}

#[tokio::test]
async fn requests_reach_their_own_tenants_service_and_no_os_port_is_opened() {
    let (admin, ingress) = addrs();
    let switchyard = Switchyard::start("round_trip", admin, &two_tenants(admin, ingress, "[]", ""));
    wait_ready(&switchyard).await;

    // Both tenants listen on 127.0.0.1:7777; each gateway reaches its own tenant's service.
    assert_eq!(
        request(ingress, "acme.localhost", "POST", "/echo", b"hello").await,
        (200, "acme:hello".into())
    );
    assert_eq!(
        request(ingress, "globex.localhost", "POST", "/echo", b"hello").await,
        (200, "globex:hello".into())
    );

    // Byte-exact both ways, larger than any buffer on the way, every byte value.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(7) % 256) as u8).collect();
    let (status, body) = request_bytes(ingress, "acme.localhost", "POST", "/echo", &payload).await;
    assert_eq!(status, 200);
    assert_eq!(&body[..5], b"acme:");
    assert!(body[5..] == payload[..], "echoed {} bytes, sent {}", body.len() - 5, payload.len());

    // IPv6 loopback is a separate address on the same virtual network.
    assert_eq!(request(ingress, "acme.localhost", "GET", "/connect/[::1]:7778", b"").await.0, 200);
    // acme's 7778 does not exist on globex's network.
    assert_eq!(
        request(ingress, "globex.localhost", "GET", "/connect/[::1]:7778", b"").await,
        (502, "ConnectionRefused\n".into())
    );

    // The only OS listening sockets are the ingress and the admin endpoint: three services
    // bound virtual ports and none of them reached the kernel.
    let expected: BTreeSet<SocketAddr> = [admin, ingress].into_iter().collect();
    assert_eq!(switchyard.listening_sockets(), expected);

    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status} after SIGTERM; log:\n{log}");
    assert!(log.contains("stopped"), "no clean stop in the log:\n{log}");
}

#[tokio::test]
async fn undeclared_destinations_are_denied_and_missing_listeners_refused() {
    let (admin, ingress) = addrs();
    let switchyard = Switchyard::start("denied", admin, &two_tenants(admin, ingress, "[]", ""));
    wait_ready(&switchyard).await;

    assert_eq!(
        request(ingress, "acme.localhost", "GET", "/connect/10.1.2.3:80", b"").await,
        (502, "PermissionDenied\n".into())
    );
    switchyard.wait_for_log("target=tcp://10.1.2.3:80", Duration::from_secs(5));
    let log = switchyard.log();
    let line = log.lines().find(|l| l.contains("target=tcp://10.1.2.3:80")).expect("denial line");
    for part in ["egress denied", "tenant=acme", "component=\"web\"", "suggestion=\"tcp://10.1.2.3:80\""] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }

    // Nothing listens on virtual port 9.
    assert_eq!(
        request(ingress, "acme.localhost", "GET", "/connect/127.0.0.1:9", b"").await,
        (502, "ConnectionRefused\n".into())
    );
    // Names the policy does not cover are not even looked up.
    let (status, body) = request(ingress, "acme.localhost", "GET", "/lookup/db.example.com", b"").await;
    assert_eq!(status, 502);
    assert!(body.starts_with("PermissionDenied"), "{body}");
    switchyard.wait_for_log(
        "DNS lookup denied: no allowed_hosts entry covers `db.example.com`",
        Duration::from_secs(5),
    );
    // `localhost` is the virtual loopback.
    let (status, body) = request(ingress, "acme.localhost", "GET", "/lookup/localhost", b"").await;
    assert_eq!((status, body.as_str()), (200, "127.0.0.1\n::1\n"));
}

#[tokio::test]
async fn a_crash_looping_service_is_restarted_with_backoff_then_reported() {
    let (admin, ingress) = addrs();
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: flaky
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}" }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_CRASH: "the disk is on fire" }}
        restart: {{ max_restarts: 3, backoff_initial: 300ms, backoff_max: 10s }}
"#,
        gateway = guest("http_gateway.wasm"),
        echo = guest("echo-service.wasm"),
    );
    let switchyard = Switchyard::start("crash_loop", admin, &config);

    // While it is being restarted the tenant is not ready, and /healthz says why.
    let mut seen_restarting = false;
    for _ in 0..400 {
        let (status, body) = switchyard.healthz().await;
        if body.contains("restarting") {
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("tenant flaky: component echo: restarting"), "{body}");
            seen_restarting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen_restarting, "/healthz never reported the restart; log:\n{}", switchyard.log());

    // Backoff doubles: 300ms, 600ms, 1.2s; then it gives up and says so.
    switchyard.wait_for_log("giving up after 3 restarts", Duration::from_secs(20));
    let log = switchyard.log();
    for delay in ["restarting in 300ms", "restarting in 600ms", "restarting in 1.2s"] {
        let line =
            log.lines().find(|l| l.contains(delay)).unwrap_or_else(|| panic!("no {delay:?} in:\n{log}"));
        assert!(line.contains("tenant=\"flaky\"") && line.contains("component=\"echo\""), "{line}");
    }
    assert_eq!(log.matches("crashing on purpose: the disk is on fire").count(), 4, "{log}");
    let (status, body) = switchyard.healthz().await;
    assert_eq!(status, 503);
    assert!(
        body.contains("tenant flaky: component echo: failed: gave up after restart.max_restarts"),
        "{body}"
    );

    // The rest of the tenant keeps serving: the gateway answers, the dead service refuses.
    let (status, body) = request(ingress, "anything", "POST", "/echo", b"x").await;
    assert_eq!(status, 502);
    assert!(body.contains("ConnectionRefused"), "{body}");
}

#[tokio::test]
async fn a_service_that_crashes_for_a_while_is_restarted_until_it_recovers() {
    let (admin, ingress) = addrs();
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: phoenix
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}" }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_CRASH_TIMES: "3", ECHO_GREETING: "back:" }}
        restart: {{ max_restarts: 20, backoff_initial: 500ms, backoff_max: 1s }}
"#,
        gateway = guest("http_gateway.wasm"),
        echo = guest("echo-service.wasm"),
    );
    let switchyard = Switchyard::start("crash_recover", admin, &config);

    // While it crashes: not ready with the reason, and a connect is refused at once (no hang).
    let mut health = (0, String::new());
    for _ in 0..200 {
        health = switchyard.healthz().await;
        if health.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(health.0, 503, "{}", health.1);
    assert!(health.1.contains("tenant phoenix: component echo: restarting"), "{}", health.1);
    let (status, body) = request(ingress, "anything", "POST", "/echo", b"x").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("ConnectionRefused"), "{body}");

    // Then it stays up: ready again, and it answers.
    let mut ready = (0, String::new());
    for _ in 0..200 {
        ready = switchyard.healthz().await;
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready.0, 200, "never ready again: {}; log:\n{}", ready.1, switchyard.log());
    let (status, body) = request(ingress, "anything", "POST", "/echo", b"hi").await;
    assert_eq!((status, body.as_str()), (200, "back:hi"));
    let log = switchyard.log();
    for restart in 0..3 {
        assert!(log.contains(&format!("crashing on purpose, restart {restart} of 3")), "{log}");
    }
    assert!(!log.contains("crashing on purpose, restart 3"), "{log}");
    assert!(!log.contains("giving up"), "{log}");
}

/// A real HTTP/1.1 server on loopback answering `hello from the test server <path>`.
async fn http_server() -> SocketAddr {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
                    let body = format!("hello from the test server {}", request.uri().path());
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        hyper::body::Bytes::from(body),
                    )))
                });
                let _ = http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A real TCP server on loopback that reads to end of file and answers with the bytes reversed.
async fn reversing_server(tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn reverse(mut stream: impl AsyncRead + AsyncWrite + Unpin) {
        let mut got = Vec::new();
        if stream.read_to_end(&mut got).await.is_ok() {
            got.reverse();
            let _ = stream.write_all(&got).await;
            let _ = stream.shutdown().await;
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            reverse(stream).await;
                        }
                    }
                    None => reverse(stream).await,
                }
            });
        }
    });
    addr
}

/// A TLS acceptor with a fresh self-signed certificate for `name`, and that certificate (PEM).
fn tls_acceptor(name: &str) -> (tokio_rustls::TlsAcceptor, String) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("certificate");
    let key =
        tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("server config");
    (tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)), certified.cert.pem())
}

#[tokio::test]
async fn forwards_and_outgoing_http_reach_real_servers_only_when_declared() {
    let (admin, ingress) = addrs();
    let web = http_server().await;
    // The echo forward originates TLS: the certificate names echo.test (the forward's target
    // name, the default server name), and the CA file is given relative to the config's folder.
    let (acceptor, ca_pem) = tls_acceptor("echo.test");
    let tcp = reversing_server(Some(acceptor)).await;
    let certs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e").join("forwards-certs");
    std::fs::create_dir_all(&certs).expect("certs folder");
    std::fs::write(certs.join("ca.pem"), ca_pem).expect("write the CA");
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
dns:
  hosts:
    api.test: [127.0.0.1]
    other.test: [127.0.0.1]
    echo.test: [127.0.0.1]
    meta.test: [169.254.169.254]
tenants:
  - name: acme
    allowed_hosts:
      - http://api.test:8000
      - tcp://127.0.0.1:{web_port}
      - tcp://echo.test:{tcp_port}
      - tcp://meta.test:80
    forwards:
      - "8000:127.0.0.1:{web_port}"
      - port: 9000
        to: echo.test:{tcp_port}
        connect_timeout: 2s
        max_connections: 4
        tls: {{ ca: ../forwards-certs/ca.pem }}
      - "9100:meta.test:80"
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}" }}
        env: {{ ECHO_PORT: "9000" }}
"#,
        web_port = web.port(),
        tcp_port = tcp.port(),
        gateway = guest("http_gateway.wasm"),
    );
    let switchyard = Switchyard::start("forwards", admin, &config);
    switchyard.wait_for_log_count("forward mounted", 3, Duration::from_secs(10));

    // Raw TCP through a TLS-originating forward to a name: byte-exact both ways, with half-close.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(13) >> 2) as u8).collect();
    let (status, body) = request_bytes(ingress, "any", "POST", "/echo", &payload).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let expected: Vec<u8> = payload.iter().rev().copied().collect();
    assert!(body == expected, "got {} bytes back, expected {} reversed", body.len(), payload.len());

    // Outgoing HTTP to an allowed URL: api.test is the virtual loopback, whose port 8000 is the
    // forward to the real server.
    assert_eq!(
        request(ingress, "any", "GET", "/fetch/http://api.test:8000/hello", b"").await,
        (200, "hello from the test server /hello".into())
    );
    // Not declared: the guest gets HTTP-request-denied, the log says why.
    assert_eq!(
        request(ingress, "any", "GET", "/fetch/http://other.test:8000/x", b"").await,
        (502, "ErrorCode::HttpRequestDenied\n".into())
    );
    switchyard.wait_for_log("target=http://other.test:8000", Duration::from_secs(5));

    // A forward whose name resolves into a blocked network (169.254.0.0/16 by default) accepts
    // the guest but never connects; the log names the address.
    assert_eq!(request(ingress, "any", "GET", "/connect/127.0.0.1:9100", b"").await.0, 200);
    switchyard.wait_for_log("forwarded connection closed", Duration::from_secs(5));
    let log = switchyard.log();
    let line = log.lines().find(|l| l.contains("forwarded connection closed")).expect("line");
    assert!(
        line.contains("169.254.169.254") && line.contains("tenant=\"acme\"") && line.contains("port=9100"),
        "{line}"
    );

    // Forwards are virtual ports too: no OS listening socket besides ingress and admin.
    let expected: BTreeSet<SocketAddr> = [admin, ingress].into_iter().collect();
    assert_eq!(switchyard.listening_sockets(), expected);
}
