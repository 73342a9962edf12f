//! Forwards against real loopback servers: byte-exact relaying with half-close, names resolved
//! and every address decided before any connect, TLS origination verified against the server
//! name, and the per-forward connection cap.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchyard_policy::{AllowedHost, BlockedNetworks, HostName, Policy, TargetHost};
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::forward::{Forward, ForwardSpec, ForwardTls};
use switchyard_vnet::tls::TlsClient;
use switchyard_vnet::{Limits, Network};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback server that, per connection, reads to end of file, answers with the bytes reversed,
/// and closes; it counts the connections it accepted.
struct ReversingServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn reversing_server(tls: Option<tokio_rustls::TlsAcceptor>) -> ReversingServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => reverse(stream).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            reverse(stream).await;
                        }
                    }
                }
            });
        }
    });
    ReversingServer { addr, accepted }
}

async fn reverse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut got = Vec::new();
    if stream.read_to_end(&mut got).await.is_ok() {
        got.reverse();
        let _ = stream.write_all(&got).await;
        let _ = stream.shutdown().await;
    }
}

struct Setup {
    network: Arc<Network>,
    egress: Arc<Egress>,
}

fn setup(allowed: &[String], blocked: BlockedNetworks, fixed: &[(&str, &str)]) -> Setup {
    let entries = allowed.iter().map(|e| e.parse::<AllowedHost>().expect("entry"));
    let fixed: BTreeMap<HostName, Vec<IpAddr>> = fixed
        .iter()
        .map(|(name, ip)| (HostName::parse(name).expect("name"), vec![ip.parse().expect("ip")]))
        .collect();
    let resolver =
        Resolver::hosts_file_only(Duration::from_secs(2)).expect("resolver").with_fixed_answers(fixed);
    let egress = Egress::new("t1", Policy::new(entries, blocked), resolver, Duration::from_secs(2));
    Setup { network: Network::new("t1", Limits::default()), egress }
}

fn spec(port: u16, host: &str, to_port: u16) -> ForwardSpec {
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => TargetHost::Addr(ip),
        Err(_) => TargetHost::Name(HostName::parse(host).expect("name")),
    };
    ForwardSpec {
        port,
        host,
        to_port,
        tls: None,
        connect_timeout: Duration::from_secs(2),
        max_connections: 8,
        idle_timeout: None,
    }
}

/// Connects to the forward on the virtual network, sends `data`, half-closes, reads to the end.
async fn exchange(network: &Arc<Network>, port: u16, data: &[u8]) -> Vec<u8> {
    let mut connection = network.connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("virtual connect");
    connection.write_all(data).await.expect("write");
    connection.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), connection.read_to_end(&mut answer))
        .await
        .expect("the forward answers or closes within 10s")
        .expect("read");
    answer
}

/// As [`exchange`], for a forward that may close the connection before the data is written:
/// what was read before the end (nothing, for a forward that could not dial).
async fn exchange_with_failing_forward(network: &Arc<Network>, port: u16, data: &[u8]) -> Vec<u8> {
    let mut connection = network.connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("virtual connect");
    let _ = connection.write_all(data).await;
    let _ = connection.shutdown().await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), connection.read_to_end(&mut answer))
        .await
        .expect("the forward answers or closes within 10s");
    answer
}

fn reversed(data: &[u8]) -> Vec<u8> {
    data.iter().rev().copied().collect()
}

#[tokio::test]
async fn a_forward_relays_byte_exact_both_ways_with_half_close() {
    let server = reversing_server(None).await;
    let s = setup(&[format!("tcp://127.0.0.1:{}", server.addr.port())], BlockedNetworks::defaults(), &[]);
    let forward = Forward::mount(&s.network, s.egress.clone(), spec(5432, "127.0.0.1", server.addr.port()))
        .expect("mount");
    let task = tokio::spawn(forward.serve());

    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
    let answer = exchange(&s.network, 5432, &data).await;
    assert_eq!(answer.len(), data.len());
    assert!(answer == reversed(&data), "the relayed bytes differ");
    // Over IPv6 loopback too: the forward holds the port on both families.
    let mut v6 = s.network.connect("[::1]:5432".parse().expect("addr")).expect("virtual connect over ::1");
    v6.write_all(b"abc").await.expect("write");
    v6.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    v6.read_to_end(&mut answer).await.expect("read");
    assert_eq!(answer, b"cba");

    task.abort();
    let _ = task.await;
    // Dropping the forward freed its port.
    assert!(s.network.connect(SocketAddr::from(([127, 0, 0, 1], 5432))).is_err());
    s.network.bind(SocketAddr::from(([0, 0, 0, 0], 5432))).expect("the port is free again");
}

#[tokio::test]
async fn a_named_target_is_resolved_and_its_addresses_allowed_through_the_name() {
    let server = reversing_server(None).await;
    let s = setup(
        &[format!("tcp://db.test:{}", server.addr.port())],
        BlockedNetworks::defaults(),
        &[("db.test", "127.0.0.1")],
    );
    let forward = Forward::mount(&s.network, s.egress.clone(), spec(3306, "db.test", server.addr.port()))
        .expect("mount");
    let _task = tokio::spawn(forward.serve());
    assert_eq!(exchange(&s.network, 3306, b"hello").await, b"olleh");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_name_resolving_into_a_blocked_network_is_never_connected() {
    let server = reversing_server(None).await;
    // The name is allowed, but it resolves into 127.0.0.0/8, which this workload blocks.
    let blocked = BlockedNetworks::new(["127.0.0.0/8".parse().expect("net")]);
    let s = setup(&[format!("tcp://db.test:{}", server.addr.port())], blocked, &[("db.test", "127.0.0.1")]);
    let forward = Forward::mount(&s.network, s.egress.clone(), spec(3306, "db.test", server.addr.port()))
        .expect("mount");
    let _task = tokio::spawn(forward.serve());
    assert_eq!(exchange(&s.network, 3306, b"hello").await, b"", "the guest's connection ends with no data");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 0, "no connection reached the server");
}

#[tokio::test]
async fn an_undeclared_target_is_never_connected() {
    let server = reversing_server(None).await;
    let s = setup(&["tcp://other.test:1".to_owned()], BlockedNetworks::defaults(), &[]);
    let forward = Forward::mount(&s.network, s.egress.clone(), spec(6379, "127.0.0.1", server.addr.port()))
        .expect("mount");
    let _task = tokio::spawn(forward.serve());
    assert_eq!(exchange(&s.network, 6379, b"hello").await, b"");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_connection_cap_closes_extra_connections_and_recovers() {
    let server = reversing_server(None).await;
    let s = setup(&[format!("tcp://127.0.0.1:{}", server.addr.port())], BlockedNetworks::defaults(), &[]);
    let mut one = spec(7000, "127.0.0.1", server.addr.port());
    one.max_connections = 1;
    let forward = Forward::mount(&s.network, s.egress.clone(), one).expect("mount");
    let _task = tokio::spawn(forward.serve());

    // The first connection stays open (the server waits for its end of file).
    let mut first = s.network.connect(SocketAddr::from(([127, 0, 0, 1], 7000))).expect("connect");
    first.write_all(b"first").await.expect("write");
    for _ in 0..200 {
        if server.accepted.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    // The second is over the cap: closed with no data, never relayed.
    assert_eq!(exchange(&s.network, 7000, b"second").await, b"");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    // Once the first ends, a new one goes through.
    first.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).await.expect("read");
    assert_eq!(answer, b"tsrif");
    drop(first);
    let mut relayed = Vec::new();
    for _ in 0..200 {
        relayed = exchange(&s.network, 7000, b"third").await;
        if !relayed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(relayed, b"driht");
}

#[tokio::test]
async fn tls_is_originated_and_the_certificate_verified_against_the_server_name() {
    let certified = rcgen::generate_simple_self_signed(vec!["db.test".to_owned()]).expect("certificate");
    let dir = tempdir();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, certified.cert.pem()).expect("write ca");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("server config");
    let server = reversing_server(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
    let s = setup(&[format!("tcp://127.0.0.1:{}", server.addr.port())], BlockedNetworks::defaults(), &[]);
    let client = TlsClient::with_ca_file(&ca).expect("ca");

    let mut good = spec(5432, "127.0.0.1", server.addr.port());
    good.tls = Some(ForwardTls { client: client.clone(), server_name: "db.test".to_owned() });
    let _good = tokio::spawn(Forward::mount(&s.network, s.egress.clone(), good).expect("mount").serve());
    assert_eq!(exchange(&s.network, 5432, b"secret").await, b"terces");

    // The certificate does not name `other.test`: the handshake fails, nothing is relayed.
    let mut wrong = spec(5433, "127.0.0.1", server.addr.port());
    wrong.tls = Some(ForwardTls { client, server_name: "other.test".to_owned() });
    let _wrong = tokio::spawn(Forward::mount(&s.network, s.egress.clone(), wrong).expect("mount").serve());
    assert_eq!(exchange(&s.network, 5433, b"secret").await, b"");

    // The right name from an issuer the forward does not trust: refused, nothing relayed.
    let impostor = rcgen::generate_simple_self_signed(vec!["db.test".to_owned()]).expect("certificate");
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, impostor.cert.pem()).expect("write the other ca");
    let mut untrusted = spec(5434, "127.0.0.1", server.addr.port());
    let client = TlsClient::with_ca_file(&other_ca).expect("other ca");
    untrusted.tls = Some(ForwardTls { client, server_name: "db.test".to_owned() });
    let _untrusted =
        tokio::spawn(Forward::mount(&s.network, s.egress.clone(), untrusted).expect("mount").serve());
    assert_eq!(exchange(&s.network, 5434, b"secret").await, b"");

    // A CA file without certificates is refused with its path.
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let err = TlsClient::with_ca_file(&empty).expect_err("no certificate");
    assert!(err.to_string().contains("empty.pem"), "{err}");
}

fn tempdir() -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("forward-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn a_taken_port_is_reported_with_the_workload_and_the_port() {
    let s = setup(&[], BlockedNetworks::defaults(), &[]);
    let _service = s.network.listen(SocketAddr::from(([127, 0, 0, 1], 5432)), 8).expect("listen");
    let err = Forward::mount(&s.network, s.egress.clone(), spec(5432, "127.0.0.1", 1)).expect_err("taken");
    let text = err.to_string();
    assert!(text.contains("5432") && text.contains("t1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_silent_or_unresolvable_target_fails_within_its_timeout_and_others_go_on() {
    let healthy = reversing_server(None).await;
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    // Accepts and keeps every connection, silent (a TLS handshake never gets an answer).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut kept = Vec::new();
        for _ in 0..16 {
            let Ok((stream, _)) = listener.accept().await else { return };
            kept.push(stream);
        }
    });
    let allowed = [
        format!("tcp://127.0.0.1:{}", healthy.addr.port()),
        format!("tcp://127.0.0.1:{down}"),
        format!("tcp://127.0.0.1:{silent}"),
        "tcp://missing.test:5432".to_owned(),
    ];
    let s = setup(&allowed, BlockedNetworks::defaults(), &[]);
    // The silent target holds a dial until its connect timeout; the refused and unresolvable
    // ones have a long one, so that closing "at once" means well before it.
    let timeout = Duration::from_secs(5);
    let long = Duration::from_secs(60);
    let mount = |mut spec: ForwardSpec, connect_timeout: Duration| {
        spec.connect_timeout = connect_timeout;
        tokio::spawn(Forward::mount(&s.network, s.egress.clone(), spec).expect("mount").serve())
    };
    let _healthy = mount(spec(6000, "127.0.0.1", healthy.addr.port()), long);
    let _down = mount(spec(6001, "127.0.0.1", down), long);
    let mut tls = spec(6002, "127.0.0.1", silent);
    let certified = rcgen::generate_simple_self_signed(vec!["db.test".to_owned()]).expect("certificate");
    let ca = tempdir().join("silent-ca.pem");
    std::fs::write(&ca, certified.cert.pem()).expect("write ca");
    let client = TlsClient::with_ca_file(&ca).expect("ca");
    tls.tls = Some(ForwardTls { client, server_name: "db.test".to_owned() });
    let _silent = mount(tls, timeout);
    let _missing = mount(spec(6003, "missing.test", 5432), long);
    // Plain TCP to the silent target connects fine; its idle timeout closes the relay.
    let mut idle = spec(6004, "127.0.0.1", silent);
    idle.idle_timeout = Some(Duration::from_millis(300));
    let _idle = mount(idle, long);

    // Each faulty forward closes the guest's connection, at once or when its timeout runs out.
    let slack = Duration::from_secs(20);
    let network = s.network.clone();
    let silent_exchange = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let answer = exchange_with_failing_forward(&network, 6002, b"hello").await;
        (answer, started.elapsed())
    });
    for port in [6001, 6003] {
        let started = std::time::Instant::now();
        assert_eq!(exchange_with_failing_forward(&s.network, port, b"hello").await, b"", "port {port}");
        assert!(started.elapsed() < slack, "port {port} waited for its {long:?} connect timeout");
    }
    // While the silent target holds its dial, the healthy forward answers, several times.
    for _ in 0..5 {
        assert_eq!(exchange(&s.network, 6000, b"abc").await, b"cba");
    }
    assert!(!silent_exchange.is_finished(), "the healthy exchanges waited for the silent dial");
    let (answer, took) = silent_exchange.await.expect("join");
    assert_eq!(answer, b"");
    assert!(took >= timeout && took < timeout + slack, "the silent TLS target took {took:?}");
    let started = std::time::Instant::now();
    assert_eq!(exchange_with_failing_forward(&s.network, 6004, b"hello").await, b"");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < slack, "the idle relay was closed after {took:?}");
}
