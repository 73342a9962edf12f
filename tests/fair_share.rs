//! Fair share of the shards (THREATS.md invariant 2), as hostile tenants try it: a service that
//! computes without pause, and one that ping-pongs single bytes over its own virtual network
//! (every read already satisfied, so it never waits on anything). Each shares a shard with a
//! well-behaved tenant (`--shards 2`: tenants 0 and 2 on one, 1 and 3 on the other), whose
//! requests through its own echo service must all succeed while the attacks run.
//!
//! Without preemption each attacker keeps its shard for the whole `HOG_HOLD_SECONDS`, and every
//! neighbour request on that shard waits that long. The bound asserted here is generous (5 s, for
//! a busy 2-core CI machine); the latency figures themselves are in `docs/benchmarks.md`.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Switchyard, free_port, guest, request};

/// How long each attacker keeps going: well past the neighbours' requests.
const ATTACK_SECONDS: u64 = 120;

fn config(admin: SocketAddr, ingress: SocketAddr) -> String {
    let gateway = guest("http_gateway.wasm");
    let echo = guest("echo-service.wasm");
    let hog = guest("socket-hog.wasm");
    let neighbour = |name: &str| {
        format!(
            r#"
  - name: {name}
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: {name}.localhost }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_GREETING: "{name}:" }}"#
        )
    };
    let attacker = |name: &str, mode: &str| {
        format!(
            r#"
  - name: {name}
    allowed_hosts: []
    components:
      - name: hog
        kind: service
        wasm: {hog}
        env: {{ HOG_MODE: {mode}, HOG_HOLD_SECONDS: "{ATTACK_SECONDS}" }}"#
        )
    };
    format!(
        "version: 1\nadmin: {{ listen: \"{admin}\" }}\ntenants:{}{}{}{}\n",
        neighbour("same-shard"),
        neighbour("other-shard"),
        attacker("spinner", "spin"),
        attacker("pinger", "pingpong"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_or_ping_ponging_guest_does_not_stall_its_shard_neighbours() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let switchyard =
        Switchyard::start_with_args("fair_share", admin, &config(admin, ingress), &["--shards", "2"]);
    switchyard.wait_for_log("socket-hog: spin: started", Duration::from_secs(60));
    switchyard.wait_for_log("socket-hog: pingpong: started", Duration::from_secs(60));
    switchyard.wait_for_log_count("echo-service: listening on", 2, Duration::from_secs(60));

    let mut slowest = Duration::ZERO;
    for i in 0..40 {
        for tenant in ["same-shard", "other-shard"] {
            let started = Instant::now();
            let body = format!("ping {i}");
            let host = format!("{tenant}.localhost");
            let answer = tokio::time::timeout(
                Duration::from_secs(5),
                request(ingress, &host, "POST", "/echo", body.as_bytes()),
            )
            .await
            .unwrap_or_else(|_| panic!("{tenant}: request {i} waited more than 5 s beside the attackers"));
            assert_eq!(answer, (200, format!("{tenant}:{body}")), "{tenant}: request {i}");
            slowest = slowest.max(started.elapsed());
        }
    }
    eprintln!("slowest neighbour request beside the attackers: {slowest:?}");
    let log = switchyard.log();
    assert!(!log.contains("socket-hog: spin: 0 rounds"), "the spinner was starved itself:\n{log}");
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}

/// A tenant whose handlers are slow or linger, and one that behaves, on one shard.
fn budget_config(admin: SocketAddr, ingress: SocketAddr) -> String {
    let gateway = guest("http_gateway.wasm");
    let echo = guest("echo-service.wasm");
    format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: greedy
    allowed_hosts: []
    limits: {{ max_instances: 20, request_timeout: 5s }}
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: greedy.localhost }}
  - name: good
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: good.localhost }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_GREETING: "good:" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_instance_cap_is_refused_alone_and_lingering_instances_are_dropped() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let switchyard = Switchyard::start_with_args(
        "instance_budget",
        admin,
        &budget_config(admin, ingress),
        &["--shards", "1"],
    );
    switchyard.wait_for_log("echo-service: listening on", Duration::from_secs(60));

    // 200 slow requests at once: 20 hold the tenant's instances until its request_timeout (504),
    // every other one is refused at once (503).
    let slow: Vec<_> = (0..200)
        .map(|_| {
            tokio::spawn(async move { request(ingress, "greedy.localhost", "GET", "/sleep/60", b"").await })
        })
        .collect();
    // Meanwhile the other tenant is served.
    for i in 0..20 {
        let body = format!("ping {i}");
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            request(ingress, "good.localhost", "POST", "/echo", body.as_bytes()),
        )
        .await
        .unwrap_or_else(|_| panic!("request {i} of the good tenant waited more than 5 s"));
        assert_eq!(answer, (200, format!("good:{body}")), "request {i}");
    }
    let (mut refused, mut timed_out) = (0, 0);
    for answer in slow {
        let (status, body) = answer.await.expect("request task");
        match status {
            503 => {
                assert!(body.contains("limits.max_instances"), "{body}");
                refused += 1;
            }
            504 => timed_out += 1,
            other => panic!("a slow request of the greedy tenant got {other}: {body}"),
        }
    }
    assert_eq!((refused, timed_out), (180, 20), "refused at the cap, and timed out at request_timeout");

    // A handler that answers and then sleeps holds no instance once its answer is sent: 60 in a
    // row, three times the cap, are all answered.
    for i in 0..60 {
        let (status, body) = request(ingress, "greedy.localhost", "GET", "/linger/60", b"").await;
        assert_eq!((status, body.as_str()), (200, "answered; lingering\n"), "lingering request {i}");
    }
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}

/// Sends a request head one header line a second; how long until the server closed or answered.
async fn trickle_headers(ingress: SocketAddr) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(ingress).await.expect("connect");
    stream.write_all(b"GET /echo HTTP/1.1\r\nHost: good.localhost\r\n").await.expect("write");
    let mut buf = [0u8; 1024];
    for _ in 0..60 {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(_) => return started.elapsed(),
            Err(_) if stream.write_all(b"X-Trickle: 1\r\n").await.is_err() => return started.elapsed(),
            Err(_) => {}
        }
    }
    panic!("a trickling request head was still open after 60 s");
}

/// Sends 300 KB of one unfinished request head; how long until the server closed or answered.
async fn endless_headers(ingress: SocketAddr) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(ingress).await.expect("connect");
    let mut head = b"GET /echo HTTP/1.1\r\nHost: good.localhost\r\n".to_vec();
    for i in 0..3000 {
        head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(80)).as_bytes());
    }
    let _ = stream.write_all(&head).await;
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await {
        Ok(_) => started.elapsed(),
        Err(_) => panic!("300 KB of unfinished headers were still held after 60 s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_endless_request_heads_are_cut_off_and_others_are_served() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let switchyard =
        Switchyard::start_with_args("slow_heads", admin, &budget_config(admin, ingress), &["--shards", "1"]);
    switchyard.wait_for_log("echo-service: listening on", Duration::from_secs(60));
    let trickling: Vec<_> = (0..100).map(|_| tokio::spawn(trickle_headers(ingress))).collect();
    let endless: Vec<_> = (0..100).map(|_| tokio::spawn(endless_headers(ingress))).collect();
    for i in 0..10 {
        let body = format!("ping {i}");
        assert_eq!(
            request(ingress, "good.localhost", "POST", "/echo", body.as_bytes()).await,
            (200, format!("good:{body}"))
        );
    }
    let mut longest = Duration::ZERO;
    for closed in trickling.into_iter().chain(endless) {
        longest = longest.max(closed.await.expect("client task"));
    }
    eprintln!("the longest a slow or endless request head was held: {longest:?}");
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}
