//! The egress gate against real loopback sockets: relays keep byte order and half-close, and
//! every connect or lookup outside the policy is refused before any socket is opened.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use switchyard_policy::{AllowedHost, BlockedNetworks, Policy};
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::{Egress, EgressError, LookupError};
use switchyard_vnet::pipe::duplex;
use switchyard_vnet::relay::relay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn egress(entries: &[&str]) -> Arc<Egress> {
    let entries = entries.iter().map(|e| e.parse::<AllowedHost>().expect("entry"));
    let policy = Policy::new(entries, BlockedNetworks::defaults());
    let resolver = Resolver::hosts_file_only(Duration::from_secs(2)).expect("resolver");
    Egress::new("t1", policy, resolver, Duration::from_secs(2))
}

/// A loopback server that reads everything, then answers with it reversed and closes.
async fn reversing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.expect("read");
        got.reverse();
        stream.write_all(&got).await.expect("write");
        stream.shutdown().await.expect("shutdown");
    });
    addr
}

#[tokio::test]
async fn relay_keeps_bytes_and_half_close_in_both_directions() {
    let addr = reversing_server().await;
    let gate = egress(&[&format!("tcp://127.0.0.1:{}", addr.port())]);
    let remote = gate.connect_tcp("web", addr).await.expect("allowed connect");
    let (mut guest, host_end) = duplex(4096);
    let relayed = tokio::spawn(relay(remote, host_end, None));

    let request: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    guest.write_all(&request).await.expect("guest write");
    guest.shutdown().await.expect("guest half-close");
    let mut answer = Vec::new();
    guest.read_to_end(&mut answer).await.expect("guest read");

    let mut expected = request.clone();
    expected.reverse();
    assert_eq!(answer.len(), expected.len());
    assert!(answer == expected, "the answer differs from the reversed request");
    let relayed = relayed.await.expect("relay task");
    assert_eq!(relayed.to_remote, request.len() as u64);
    assert_eq!(relayed.to_guest, request.len() as u64);
}

#[tokio::test]
async fn relay_stops_when_the_guest_drops_its_reader() {
    // The remote side never speaks and never closes; the relay must still end.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
    });
    let gate = egress(&[&format!("tcp://127.0.0.1:{}", addr.port())]);
    let remote = gate.connect_tcp("web", addr).await.expect("allowed connect");
    let (guest, host_end) = duplex(4096);
    let relayed = tokio::spawn(relay(remote, host_end, None));
    drop(guest);
    tokio::time::timeout(Duration::from_secs(5), relayed)
        .await
        .expect("relay ended after the guest went away")
        .expect("relay task");
}

#[tokio::test]
async fn undeclared_connects_are_denied_before_any_socket_is_opened() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Allowed: another port only.
    let gate = egress(&[&format!("tcp://127.0.0.1:{}", addr.port().wrapping_add(1).max(1))]);
    match gate.connect_tcp("web", addr).await {
        Err(EgressError::Denied { workload, denied }) => {
            assert_eq!(workload, "t1");
            assert!(denied.to_string().contains(&addr.to_string()), "{denied}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    // A connect that had been made would already wait in the listener's queue (the kernel
    // completes the handshake); nothing does.
    let pending = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(pending.is_err(), "the denied connect reached the listener: {pending:?}");
}

#[tokio::test]
async fn refused_connects_name_the_address() {
    // Bind then drop: nothing listens on this port any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let gate = egress(&[&format!("tcp://127.0.0.1:{}", closed.port())]);
    match gate.connect_tcp("web", closed).await {
        Err(err @ EgressError::Io { .. }) => assert!(err.to_string().contains(&closed.to_string()), "{err}"),
        other => panic!("expected a refused connect, got {other:?}"),
    }
}

#[tokio::test]
async fn lookups_answer_literals_and_localhost_and_deny_undeclared_names() {
    let gate = egress(&["tcp://db.example.com:3306"]);
    assert_eq!(gate.lookup("web", "10.1.2.3").await, Ok(vec![IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))]));
    assert_eq!(gate.lookup("web", "[::1]").await, Ok(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]));
    assert_eq!(
        gate.lookup("web", "localhost").await,
        Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)])
    );
    match gate.lookup("web", "other.example.com").await {
        Err(err @ LookupError::Denied { .. }) => {
            let text = err.to_string();
            assert!(text.contains("t1") && text.contains("other.example.com"), "{text}");
        }
        other => panic!("expected a denied lookup, got {other:?}"),
    }
    assert!(matches!(gate.lookup("web", "bad..name").await, Err(LookupError::InvalidName { .. })));
}

/// A reload that narrows a tenant's policy (THREATS.md: egress): the next connect is denied at
/// once, and the denial is kept for the admin page; a connection made before stays usable.
#[tokio::test]
async fn a_narrowed_policy_denies_the_next_connect_and_leaves_open_ones_alone() {
    let addr = reversing_server().await;
    let gate = egress(&[&format!("tcp://127.0.0.1:{}", addr.port())]);
    let mut open = gate.connect_tcp("web", addr).await.expect("allowed before the reload");
    gate.replace_policy(Policy::new(Vec::<AllowedHost>::new(), BlockedNetworks::defaults()));
    match gate.connect_tcp("web", addr).await {
        Err(EgressError::Denied { denied, .. }) => {
            assert!(denied.to_string().contains(&addr.to_string()), "{denied}")
        }
        other => panic!("the narrowed policy let a new connect through: {other:?}"),
    }
    let recent = gate.recent_denials();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].target, format!("tcp://{addr}"));
    assert_eq!(gate.denied_total(), 1);
    open.write_all(b"abc").await.expect("write on the connection made before");
    open.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    open.read_to_end(&mut answer).await.expect("read");
    assert_eq!(answer, b"cba");
}
