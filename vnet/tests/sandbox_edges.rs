//! The edges of a tenant's sandbox (THREATS.md invariant 1), each an attack:
//!
//! - a loopback address in any IPv6 form is the tenant's virtual network, never the host's;
//! - a forward or pool backend whose name DNS answers with a loopback address (in any form) does
//!   not reach the host's loopback; only a target the config names does;
//! - one tenant's lookups do not warm another tenant's answers (timing would tell it which names
//!   its neighbours use).
//!
//! The name server is a real one on loopback (a few lines of DNS wire format below) that counts
//! the queries it is asked.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_policy::{AllowedHost, BlockedNetworks, HostName, Policy, Target};
use switchyard_vnet::dial::{DialError, dial};
use switchyard_vnet::dns::Resolver;
use switchyard_vnet::egress::{Egress, LookupError};
use switchyard_vnet::{Limits, Network, is_virtual};
use tokio::net::{TcpListener, UdpSocket};

/// Questions a [`name_server`] was asked, by `name type` (`partner-bank.test 1` for A).
type Asked = Arc<Mutex<HashMap<String, usize>>>;

/// A DNS server on loopback answering A and AAAA queries for `records` (TTL 300 s) and nothing
/// else; it counts every question by name and type.
async fn name_server(records: &[(&str, &str)]) -> (SocketAddr, Asked) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let mut answers: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for (name, ip) in records {
        answers.entry(name.to_string()).or_default().push(ip.parse().expect("record address"));
    }
    let asked: Asked = Arc::default();
    let counter = asked.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let Some((name, qtype, question_end)) = question(&buf[..len]) else { continue };
            *counter.lock().expect("counter").entry(format!("{name} {qtype}")).or_default() += 1;
            let records: Vec<&IpAddr> = answers
                .get(&name)
                .into_iter()
                .flatten()
                .filter(|ip| matches!((qtype, ip), (1, IpAddr::V4(_)) | (28, IpAddr::V6(_))))
                .collect();
            let mut reply = buf[..2].to_vec();
            reply.extend_from_slice(&[0x81, 0x80, 0, 1]);
            reply.extend_from_slice(&(records.len() as u16).to_be_bytes());
            reply.extend_from_slice(&[0, 0, 0, 0]);
            reply.extend_from_slice(&buf[12..question_end]);
            for ip in records {
                let data = match ip {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                reply.extend_from_slice(&[0xc0, 0x0c]);
                reply.extend_from_slice(&qtype.to_be_bytes());
                reply.extend_from_slice(&[0, 1, 0, 0, 0x01, 0x2c]);
                reply.extend_from_slice(&(data.len() as u16).to_be_bytes());
                reply.extend_from_slice(&data);
            }
            let _ = socket.send_to(&reply, from).await;
        }
    });
    (addr, asked)
}

/// The question of a DNS query: its name (lowercase, no trailing dot), its type, and where it
/// ends in the message.
fn question(message: &[u8]) -> Option<(String, u16, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*message.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(message.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*message.get(at)?, *message.get(at + 1)?]);
    Some((labels.join("."), qtype, at + 4))
}

fn egress(workload: &str, entries: &[&str], resolver: Resolver) -> Arc<Egress> {
    let entries = entries.iter().map(|e| e.parse::<AllowedHost>().expect("entry"));
    Egress::new(workload, Policy::new(entries, BlockedNetworks::defaults()), resolver, Duration::from_secs(2))
}

/// A real listener on the host's loopback that counts the connections it accepts.
async fn host_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn each_workload_pays_for_its_own_lookups() {
    let (server, asked) = name_server(&[("partner-bank.test", "192.0.2.10")]).await;
    let shared = Resolver::with_name_servers(&[server], Duration::from_secs(2)).expect("resolver");
    let a = egress("a", &["tcp://*.test:443"], shared.for_workload().expect("resolver a"));
    let b = egress("b", &["tcp://*.test:443"], shared.for_workload().expect("resolver b"));
    // A queries only: an empty AAAA answer (no SOA) is not cached by any resolver.
    let count = || asked.lock().expect("counter").get("partner-bank.test 1").copied().unwrap_or(0);

    let expected = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))];
    assert_eq!(b.lookup("web", "partner-bank.test").await, Ok(expected.clone()));
    let after_b = count();
    assert!(after_b >= 1, "the name server was not asked");
    // B's own second lookup is served from B's cache...
    assert_eq!(b.lookup("web", "partner-bank.test").await, Ok(expected.clone()));
    assert_eq!(count(), after_b, "B's cache did not answer B's second lookup");
    // ...but A's first lookup goes to the name server: B's lookup warmed nothing for A.
    assert_eq!(a.lookup("web", "partner-bank.test").await, Ok(expected));
    assert!(count() > after_b, "A's lookup was answered from B's cache");
}

#[tokio::test]
async fn dns_answers_in_any_loopback_form_never_reach_the_host_loopback() {
    let (host, accepted) = host_listener().await;
    let (server, _) = name_server(&[
        ("v4.evil.test", "127.0.0.1"),
        ("mapped.evil.test", "::ffff:127.0.0.1"),
        ("compat.evil.test", "::127.0.0.1"),
        ("nat64.evil.test", "64:ff9b::7f00:1"),
        ("sixtofour.evil.test", "2002:7f00:1::"),
    ])
    .await;
    let resolver = Resolver::with_name_servers(&[server], Duration::from_secs(2)).expect("resolver");
    let declared: BTreeMap<HostName, Vec<IpAddr>> =
        [(HostName::parse("declared.test").expect("name"), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])].into();
    let gate = egress("t1", &["tcp://*.test:*", "tcp://127.0.0.1:*"], resolver.with_fixed_answers(declared));

    for name in ["v4", "mapped", "compat", "nat64", "sixtofour"] {
        let target: Target = format!("tcp://{name}.evil.test:{}", host.port()).parse().expect("target");
        match dial(&gate, "forward :1", &target, None, Duration::from_secs(2)).await {
            Err(e @ DialError::LoopbackNotDeclared { .. }) => {
                assert!(e.to_string().contains(&format!("{name}.evil.test")), "{e}")
            }
            Err(other) => panic!("{name}: refused for another reason: {other}"),
            Ok(_) => panic!("{name}.evil.test reached the host's loopback"),
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a loopback answer reached the host's listener");

    // What the config names explicitly is reached: an address, and a dns.hosts answer.
    for target in [format!("tcp://127.0.0.1:{}", host.port()), format!("tcp://declared.test:{}", host.port())]
    {
        let target: Target = target.parse().expect("target");
        dial(&gate, "forward :1", &target, None, Duration::from_secs(2)).await.expect("declared loopback");
    }
    for _ in 0..500 {
        if accepted.load(Ordering::SeqCst) == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the declared targets did not reach the listener: {}", accepted.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_lookup_answered_with_a_blocked_address_in_an_ipv6_form_is_refused() {
    let (server, _) = name_server(&[
        ("mapped.meta.test", "::ffff:169.254.169.254"),
        ("nat64.meta.test", "64:ff9b::a9fe:a9fe"),
        ("sixtofour.meta.test", "2002:a9fe:a9fe::"),
    ])
    .await;
    let resolver = Resolver::with_name_servers(&[server], Duration::from_secs(2)).expect("resolver");
    let gate = egress("t1", &["tcp://*.test:*"], resolver);
    for name in ["mapped.meta.test", "nat64.meta.test", "sixtofour.meta.test"] {
        match gate.lookup("web", name).await {
            Err(e @ LookupError::Blocked { .. }) => assert!(e.to_string().contains("169.254.0.0/16"), "{e}"),
            other => panic!("{name}: expected a blocked lookup, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn loopback_in_any_form_is_the_virtual_network() {
    let network = Network::new("t1", Limits::default());
    let listener = network.listen(SocketAddr::from(([127, 0, 0, 1], 7000)), 8).expect("listen");
    for form in ["127.0.0.1", "::ffff:127.0.0.1", "::7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::"] {
        let ip: IpAddr = form.parse().expect("address");
        assert!(is_virtual(ip), "{form}");
        let connection = network.connect(SocketAddr::new(ip, 7000)).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(connection.peer_addr(), SocketAddr::from(([127, 0, 0, 1], 7000)), "{form}");
        let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap_or_else(|_| panic!("{form}: nothing accepted"));
        assert_eq!(accepted.peer_addr(), connection.local_addr(), "{form}");
    }
    for other in ["10.0.0.1", "::2", "2001:db8::7f00:1", "64:ff9b:1::7f00:1"] {
        assert!(!is_virtual(other.parse().expect("address")), "{other}");
    }
}
