//! Guests that misbehave on purpose (`examples/socket-hog`) hit their own tenant's limits, with
//! an error in the guest and a log line naming the tenant and the limit, while another tenant's
//! requests go on as before: one takes sockets until `limits.max_sockets`, one binds every port,
//! one fills a listener's backlog that it never accepts from, one writes to a peer that never
//! reads.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{Switchyard, free_port, guest, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_guests_hit_their_own_limits_and_others_are_unaffected() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (hog, echo, gateway) =
        (guest("socket-hog.wasm"), guest("echo-service.wasm"), guest("http_gateway.wasm"));
    let config = format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
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
  - name: hog-sockets
    allowed_hosts: []
    limits: {{ max_sockets: 64 }}
    components:
      - name: echo
        kind: service
        wasm: {echo}
      - name: hog
        kind: service
        wasm: {hog}
        env: {{ HOG_MODE: sockets }}
  - name: hog-bind
    allowed_hosts: []
    limits: {{ max_sockets: 70000 }}
    components:
      - name: hog
        kind: service
        wasm: {hog}
        env: {{ HOG_MODE: bind }}
  - name: hog-backlog
    allowed_hosts: []
    components:
      - name: hog
        kind: service
        wasm: {hog}
        env: {{ HOG_MODE: backlog }}
  - name: hog-flood
    allowed_hosts: []
    components:
      - name: hog
        kind: service
        wasm: {hog}
        env: {{ HOG_MODE: flood }}
"#
    );
    let switchyard = Switchyard::start("guest_limits", admin, &config);
    for mode in ["sockets", "bind", "backlog"] {
        switchyard.wait_for_log(&format!("socket-hog: {mode}:"), Duration::from_secs(60));
    }
    let log = switchyard.log();
    // A guest's line is the message of a `switchyard::guest` event: from its text to the fields.
    let line = |mode: &str| {
        let start = format!("socket-hog: {mode}:");
        log.lines().find_map(|l| l.find(&start).map(|at| l[at..].to_owned())).unwrap_or_default()
    };

    // Sockets: stopped by its own cap (64, less the echo service's listener), with the host's
    // log line naming the tenant and the config key.
    let sockets = line("sockets");
    let open: usize = sockets.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    assert!((32..64).contains(&open) && sockets.contains(", then "), "{sockets}");
    assert!(
        log.lines().any(|l| l.contains("socket limit reached (64, limits.max_sockets)") && l.contains("hog-sockets")),
        "no limit line for hog-sockets:\n{log}"
    );
    // Bind: all 65,535 ports of its own network, then no more.
    let bind = line("bind");
    assert!(bind.contains("every port bound, then"), "{bind}");
    // Backlog: connects queue up to the listener's backlog, then are refused.
    let backlog = line("backlog");
    assert!(
        backlog.contains("connects queued, then") && backlog.to_lowercase().contains("refused"),
        "{backlog}"
    );

    // Flood: writing to a peer that never reads stops at the stream window (256 KiB, plus the
    // 16 KiB chunk that found it full), and stays stopped.
    let flooded = |log: &str| {
        log.lines()
            .filter_map(|l| {
                let rest = &l[l.find("socket-hog: flood: ")? + "socket-hog: flood: ".len()..];
                rest[..rest.find(" bytes written")?].parse::<usize>().ok()
            })
            .max()
            .unwrap_or(0)
    };
    switchyard.wait_for_log("socket-hog: flood: 16384 bytes written", Duration::from_secs(30));
    // However long it keeps trying (it logs each chunk it gets through), what it got through
    // stays within the window; looked at again after the neighbour's requests below.
    let within_window = |bytes: usize| (16 << 10..=(256 + 16) << 10).contains(&bytes);
    let first = flooded(&switchyard.log());
    assert!(within_window(first), "{first} bytes buffered for a reader that never reads");

    // Meanwhile, with the hogs holding everything they took, the good tenant answers promptly.
    // (How promptly is measured by benches/neighbours.rs, not asserted here.)
    for i in 0..20 {
        let body = format!("ping {i}");
        let (status, answer) = request(ingress, "good.localhost", "POST", "/echo", body.as_bytes()).await;
        assert_eq!((status, answer), (200, format!("good:{body}")));
    }
    let later = switchyard.log();
    let last = flooded(&later);
    assert!(within_window(last), "the flood went on past the window: {last} bytes");
    assert!(!later.contains("without blocking") && !later.contains("write failed"), "{later}");
    let (status, health) = switchyard.healthz().await;
    assert_eq!(status, 200, "the hogs are within their rights; every service runs: {health}");
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}
