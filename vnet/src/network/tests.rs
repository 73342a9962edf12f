use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn net(name: &str) -> Arc<Network> {
    Network::new(name, Limits::default())
}

#[tokio::test]
async fn connect_reaches_the_listener_and_bytes_flow_both_ways() {
    let n = net("acme");
    let listener = n.listen(addr("127.0.0.1:7777"), 8).unwrap();
    let mut client = n.connect(addr("127.0.0.1:7777")).unwrap();
    let mut server = listener.accept().await;
    assert_eq!(server.local_addr(), addr("127.0.0.1:7777"));
    assert_eq!(server.peer_addr(), client.local_addr());
    assert_eq!(client.peer_addr(), addr("127.0.0.1:7777"));
    assert!(crate::ports::EPHEMERAL.contains(&client.local_addr().port()));
    client.write_all(b"ping").await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");
    server.write_all(b"pong").await.unwrap();
    drop(server);
    let mut back = Vec::new();
    client.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"pong");
}

#[test]
fn no_listener_is_refused_and_a_bound_socket_does_not_listen() {
    let n = net("acme");
    assert!(matches!(n.connect(addr("127.0.0.1:7777")), Err(ConnectError::Refused { .. })));
    let _bound = n.bind(addr("127.0.0.1:7777")).unwrap();
    assert!(matches!(n.connect(addr("127.0.0.1:7777")), Err(ConnectError::Refused { .. })));
    assert_eq!(n.usage().sockets, 1, "refused connects give their local port back");
}

#[test]
fn addresses_conflict_by_full_socket_address_and_wildcards() {
    let n = net("acme");
    let a = n.bind(addr("127.0.0.1:7777")).unwrap();
    assert!(matches!(n.bind(addr("127.0.0.1:7777")), Err(BindError::InUse { .. })));
    assert!(matches!(n.bind(addr("0.0.0.0:7777")), Err(BindError::InUse { .. })));
    let other_ip = n.bind(addr("127.0.0.2:7777")).unwrap();
    let v6 = n.bind(addr("[::1]:7777")).unwrap();
    assert!(matches!(n.bind(addr("[::]:7777")), Err(BindError::InUse { .. })));
    drop((a, other_ip, v6));
    let wildcard = n.bind(addr("0.0.0.0:7777")).unwrap();
    assert!(matches!(n.bind(addr("127.0.0.3:7777")), Err(BindError::InUse { .. })));
    assert!(n.bind(addr("[::1]:7777")).is_ok(), "families are separate");
    drop(wildcard);
    assert_eq!(n.usage(), Usage { sockets: 0, connections: 0, addresses: 0 });
}

#[test]
fn a_wildcard_listener_is_reached_through_every_loopback_address_of_its_family() {
    let n = net("acme");
    let listener = n.listen(addr("0.0.0.0:8080"), 8).unwrap();
    for to in ["127.0.0.1:8080", "127.9.8.7:8080"] {
        let client = n.connect(addr(to)).unwrap();
        let server = listener.try_accept().expect("queued");
        assert_eq!(server.local_addr(), addr(to));
        assert_eq!(server.peer_addr(), client.local_addr());
    }
    assert!(matches!(n.connect(addr("[::1]:8080")), Err(ConnectError::Refused { .. })));
}

#[test]
fn port_zero_gets_an_ephemeral_port_and_a_dropped_listener_frees_its_port_at_once() {
    let n = net("acme");
    let listener = n.listen(addr("127.0.0.1:0"), 1).unwrap();
    let port = listener.local_addr().port();
    assert!(crate::ports::EPHEMERAL.contains(&port));
    let fixed = n.listen(addr("127.0.0.1:7777"), 1).unwrap();
    drop(fixed);
    let again = n.listen(addr("127.0.0.1:7777"), 1).unwrap();
    assert_eq!(again.local_addr().port(), 7777);
    drop(listener);
    assert!(n.bind(SocketAddr::new(addr("127.0.0.1:1").ip(), port)).is_ok());
}

#[tokio::test]
async fn the_backlog_is_honoured_and_a_dropped_listener_closes_pending_connections() {
    let n = net("acme");
    let listener = n.listen(addr("127.0.0.1:7777"), 2).unwrap();
    let mut first = n.connect(addr("127.0.0.1:7777")).unwrap();
    let _second = n.connect(addr("127.0.0.1:7777")).unwrap();
    assert!(matches!(n.connect(addr("127.0.0.1:7777")), Err(ConnectError::Refused { .. })));
    let accepted = listener.try_accept().unwrap();
    let _third = n.connect(addr("127.0.0.1:7777")).unwrap();
    drop(accepted);
    let mut buf = Vec::new();
    assert_eq!(first.read_to_end(&mut buf).await.unwrap(), 0, "accepted then dropped: EOF");
    drop(listener);
    // A connection counts until both of its ends are gone: the three clients still hold theirs.
    assert_eq!(n.usage().connections, 3);
    drop((first, _second, _third));
    assert_eq!(n.usage().connections, 0);
    assert_eq!(n.usage().sockets, 0, "listener and client ports are all free");
    assert!(matches!(n.connect(addr("127.0.0.1:7777")), Err(ConnectError::Refused { .. })));
}

#[test]
fn two_workloads_bind_the_same_address_and_never_reach_each_other() {
    let (a, b) = (net("acme"), net("globex"));
    let la = a.listen(addr("127.0.0.1:7777"), 8).unwrap();
    let lb = b.listen(addr("127.0.0.1:7777"), 8).unwrap();
    let _ca = a.connect(addr("127.0.0.1:7777")).unwrap();
    assert_eq!((la.pending(), lb.pending()), (1, 0));
    let other = net("initech");
    assert!(matches!(other.connect(addr("127.0.0.1:7777")), Err(ConnectError::Refused { .. })));
}

#[test]
fn caps_are_enforced_with_errors_that_name_them_and_recover_on_drop() {
    let limits = Limits { max_sockets: 3, max_connections: 1, ..Limits::default() };
    let n = Network::new("acme", limits);
    let listener = n.listen(addr("127.0.0.1:7777"), 8).unwrap();
    let client = n.connect(addr("127.0.0.1:7777")).unwrap();
    let err = n.connect(addr("127.0.0.1:7777")).unwrap_err();
    assert!(err.to_string().contains("limits.max_connections"), "{err}");
    let _extra = n.bind(addr("127.0.0.1:1")).unwrap();
    let err = n.bind(addr("127.0.0.1:2")).unwrap_err();
    assert!(err.to_string().contains("limits.max_sockets") && err.to_string().contains("acme"), "{err}");
    drop(client);
    let server = listener.try_accept().unwrap();
    assert_eq!(n.usage().connections, 1, "one end is still open");
    drop(server);
    assert_eq!(n.usage().connections, 0);
    assert!(n.connect(addr("127.0.0.1:7777")).is_ok());
}

#[test]
fn only_loopback_and_unspecified_addresses_exist() {
    let n = net("acme");
    let err = n.bind(addr("10.0.0.1:80")).unwrap_err();
    assert!(matches!(err, BindError::NotBindable { .. }) && err.to_string().contains("10.0.0.1:80"));
    assert!(matches!(n.connect(addr("10.1.2.3:5432")), Err(ConnectError::NotVirtual { .. })));
    assert!(matches!(n.connect(addr("0.0.0.0:80")), Err(ConnectError::NotVirtual { .. })));
}
