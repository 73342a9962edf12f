//! A tenant's request bodies are bounded (THREATS.md invariant 2): one larger than
//! `limits.max_request_body_mib` is refused before any instance starts (by its `Content-Length`)
//! or cut off while it streams (chunked), and one trickled slower than
//! `limits.request_body_timeout` allows fails at that time-out instead of holding an instance.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Switchyard, free_port, guest, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(admin: SocketAddr, ingress: SocketAddr) -> String {
    format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: acme
    allowed_hosts: []
    limits: {{ max_request_body_mib: 1, request_body_timeout: 2s, request_timeout: 60s }}
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}" }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_GREETING: "acme:" }}
"#,
        gateway = guest("http_gateway.wasm"),
        echo = guest("echo-service.wasm"),
    )
}

/// Sends a raw HTTP/1.1 request (`head`, then `body` pieces `pause` apart, stopping when a write
/// fails) while reading the answer as it comes, so that an answer sent before the request is
/// complete is seen even if the connection is reset after it; the answer and how long it took.
async fn raw(ingress: SocketAddr, head: &str, pieces: &[&[u8]], pause: Duration) -> (String, Duration) {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(ingress).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let answer = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(Ok(n)) =
            tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), reader.read(&mut buf))
                .await
        {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        (String::from_utf8_lossy(&seen).into_owned(), started.elapsed())
    });
    if writer.write_all(head.as_bytes()).await.is_ok() {
        for piece in pieces {
            if writer.write_all(piece).await.is_err() {
                break;
            }
            tokio::time::sleep(pause).await;
        }
    }
    answer.await.expect("reader task")
}

#[tokio::test]
async fn request_bodies_are_held_to_their_tenants_size_and_pace() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let switchyard = Switchyard::start("request_body", admin, &config(admin, ingress));
    switchyard.wait_for_log("echo-service: listening on", Duration::from_secs(60));

    // Within the limit: echoed.
    let small = vec![b'x'; 512 << 10];
    let (status, body) = request(ingress, "any", "POST", "/echo", &small).await;
    assert_eq!((status, body.len()), (200, "acme:".len() + small.len()));

    // Declared larger: refused at once, before any of the body is sent.
    let head = "POST /echo HTTP/1.1\r\nHost: any\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n";
    let (answer, _) = raw(ingress, head, &[], Duration::ZERO).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("limits.max_request_body_mib"), "{answer}");

    // Chunked, larger: the guest's read fails once the limit is passed.
    let chunk = vec![b'y'; 256 << 10];
    let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
    let pieces: Vec<&[u8]> = std::iter::repeat_n(framed.as_slice(), 8).chain([&b"0\r\n\r\n"[..]]).collect();
    let head = "POST /echo HTTP/1.1\r\nHost: any\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let (answer, _) = raw(ingress, head, &pieces, Duration::ZERO).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "a 2 MiB chunked body was read: {answer}");

    // Trickled, one byte every 3 s: cut off at the 2 s pause, long before the 60 s request_timeout.
    let head = "POST /echo HTTP/1.1\r\nHost: any\r\nContent-Length: 10\r\nConnection: close\r\n\r\n";
    let (answer, took) = raw(ingress, head, &[b"a", b"b", b"c", b"d"], Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "a trickled body was read: {answer}");
    assert!(took < Duration::from_secs(20), "the trickled body held its instance for {took:?}");

    // Each refusal is counted against the budget that made it.
    let (_, metrics) = request(admin, "localhost", "GET", "/metrics", b"").await;
    for (budget, count) in [("max_request_body_mib", 2), ("request_body_timeout", 1), ("request_timeout", 0)]
    {
        let line = format!(r#"switchyard_tenant_refusals_total{{tenant="acme",budget="{budget}"}} {count}"#);
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in:\n{metrics}");
    }
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}
