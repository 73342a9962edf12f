//! Bad clients: malformed, truncated and oversized packets, a client that never finishes its
//! handshake, and clients that send one byte at a time (before and after logging in). Each gets
//! an ERR or is closed within the configured timeouts, and a well-behaved client of the same
//! pool keeps working all along. A session slot is taken only after a client has authenticated,
//! and past `max_client_sessions` a client is refused with 1040 until a session ends.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::{Published, config, publish, read_greeting, server};
use switchyard_pooler::protocol::framing::Sequence;
use switchyard_pooler::stats::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The timeouts this test configures (handshake and packet alike).
const TIMEOUT: Duration = Duration::from_millis(800);
/// The largest packet the test pooler accepts from a client.
const MAX_PACKET: usize = 64 << 10;

/// Reads what the pooler sends until it closes the connection (bounded by `within`); the bytes
/// read. Panics if the connection is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the pooler did not close the connection within {within:?}"),
        }
    }
}

/// Whether the packets in `bytes` include an ERR whose message carries `text`.
fn has_err(bytes: &[u8], text: &str) -> bool {
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16;
        let payload = &rest[4..(4 + len).min(rest.len())];
        if payload.first() == Some(&0xFF) && String::from_utf8_lossy(payload).contains(text) {
            return true;
        }
        rest = &rest[(4 + len).min(rest.len())..];
    }
    false
}

/// A well-behaved client that runs a query every 20 ms until told to stop; how many it ran.
/// Every query must succeed quickly.
fn good_client(published: &Published) -> (tokio::task::JoinHandle<usize>, tokio::sync::watch::Sender<bool>) {
    let opts = published.opts();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut conn = mysql_async::Conn::new(opts).await.expect("good client connects");
        let mut ran = 0;
        for i in 0..2_000 {
            if *stopped.borrow_and_update() {
                break;
            }
            let started = Instant::now();
            let value: Option<i64> =
                conn.query_first(format!("SELECT {i}")).await.expect("good client's query");
            assert_eq!(value, Some(i));
            assert!(started.elapsed() < Duration::from_secs(2), "a query took {:?}", started.elapsed());
            ran += 1;
            let _ = tokio::time::timeout(Duration::from_millis(20), stopped.changed()).await;
        }
        conn.disconnect().await.expect("good client disconnects");
        ran
    });
    (task, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_get_an_error_or_are_closed_and_others_go_on() {
    let tenant = server().tenant("bad_clients", "pw-bad");
    let mut config = config(&tenant, 2);
    config.handshake_timeout = TIMEOUT;
    config.packet_timeout = TIMEOUT;
    config.pool.backend.max_packet = MAX_PACKET;
    let published = publish(tenant.clone(), config).await;
    let (good, stop_good) = good_client(&published);
    let slack = TIMEOUT + Duration::from_secs(3);

    // Never finishes its handshake: closed after the handshake timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect(published.addr).await.expect("connect");
    let greeting = read_until_closed(&mut silent, slack).await;
    assert!(greeting.len() > 4 && greeting[4] == 10, "it was greeted (protocol 10) before being closed");
    assert!(started.elapsed() >= TIMEOUT, "closed before the handshake timeout");

    // Sends its handshake one byte at a time: closed after the handshake timeout.
    let mut trickle = TcpStream::connect(published.addr).await.expect("connect");
    let mut first = [0u8; 256];
    let _ = trickle.read(&mut first).await.expect("greeting");
    let started = Instant::now();
    let mut closed = false;
    for byte in [0x20u8, 0, 0, 1, 0x0d, 0xa6, 0xff, 0x01, 0, 0, 0, 0, 45, 0, 0, 0] {
        if trickle.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > slack {
            break;
        }
    }
    if !closed {
        read_until_closed(&mut trickle, slack).await;
    }
    assert!(started.elapsed() < slack, "the trickling handshake was not cut off");

    // Logged in, then the first bytes of a command, 200 ms apart, and no more: ERR 1159 once
    // the packet timeout passes, then closed. (The second byte goes 200 ms after the first, well
    // inside the 800 ms timeout, so both writes land and the reply is always read.)
    let mut slow = published.raw_login().await;
    let started = Instant::now();
    for byte in [9u8, 0] {
        slow.get_mut().write_all(&[byte]).await.expect("a byte within the packet timeout");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rest = read_until_closed(slow.get_mut(), slack).await;
    assert!(has_err(&rest, "did not finish its packet"), "no ERR: {rest:?}");
    assert!(started.elapsed() < TIMEOUT + slack, "the slow client held on for {:?}", started.elapsed());

    // A packet out of sequence: ERR (bad packet), closed.
    let mut out_of_order = published.raw_login().await;
    out_of_order.get_mut().write_all(&[1, 0, 0, 7, 0x0e]).await.expect("send");
    let reply = read_until_closed(out_of_order.get_mut(), slack).await;
    assert!(has_err(&reply, "bad packet"), "{}", String::from_utf8_lossy(&reply));

    // Larger than the pooler accepts: ERR naming the limit, closed, nothing buffered for it.
    let mut oversized = published.raw_login().await;
    let big = MAX_PACKET + 1;
    let header = (big as u32).to_le_bytes();
    oversized.get_mut().write_all(&[header[0], header[1], header[2], 0, 0x03]).await.expect("send header");
    let reply = read_until_closed(oversized.get_mut(), slack).await;
    assert!(has_err(&reply, "bad packet"), "{}", String::from_utf8_lossy(&reply));

    // Truncated: a header announcing 100 bytes, 3 sent, then the client stops sending. The
    // pooler closes the connection, and the session it held is gone.
    let sessions_before = published.pooler.pool().snapshot().clients;
    let mut truncated = published.raw_login().await;
    truncated.get_mut().write_all(&[100, 0, 0, 0, 0x03, b'S', b'E']).await.expect("send");
    truncated.get_mut().shutdown().await.expect("half-close");
    read_until_closed(truncated.get_mut(), slack).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while published.pooler.pool().snapshot().clients > sessions_before {
        assert!(Instant::now() < deadline, "the truncated client's session was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Malformed commands: each gets an ERR and the session goes on.
    let mut malformed = published.raw_login().await;
    for payload in [
        &[][..],                             // empty command
        &[0x17, 0xff, 0xff, 0xff, 0x7f][..], // COM_STMT_EXECUTE of an unknown statement
        &[0x17][..],                         // COM_STMT_EXECUTE with no statement id
        &[0x11, 0x00][..],                   // COM_CHANGE_USER, cut short
        &[0x1b][..],                         // COM_SET_OPTION without an option
        &[0x16][..],                         // COM_STMT_PREPARE of nothing
    ] {
        let mut seq = Sequence::new();
        malformed.send(&mut seq, payload).await.expect("send");
        let reply = tokio::time::timeout(slack, malformed.read_packet(&mut seq))
            .await
            .unwrap_or_else(|_| panic!("no reply to {payload:02x?}"))
            .expect("a reply")
            .expect("a packet");
        assert_eq!(reply.first(), Some(&0xFF), "{payload:02x?} got a non-ERR reply: {reply:02x?}");
    }
    let mut seq = Sequence::new();
    malformed.send(&mut seq, b"\x03SELECT 1").await.expect("send");
    let first = malformed.read_packet(&mut seq).await.expect("reply").expect("packet");
    assert_ne!(first.first(), Some(&0xFF), "after the malformed commands a query still works");

    stop_good.send(true).expect("stop the good client");
    let ran = good.await.expect("the good client never failed");
    assert!(ran >= 10, "the good client ran only {ran} queries");
    let protocol_errors = published.pooler.pool().snapshot().errors_of(ErrorKind::ClientProtocol);
    assert!(protocol_errors >= 5, "client protocol errors counted: {protocol_errors}");
}

/// Prepares `sql` on a raw client; the response's first packet.
async fn prepare(
    raw: &mut switchyard_pooler::protocol::framing::PacketConn<TcpStream>,
    sql: &str,
) -> Vec<u8> {
    let mut payload = vec![0x16];
    payload.extend_from_slice(sql.as_bytes());
    let mut seq = Sequence::new();
    raw.send(&mut seq, &payload).await.expect("send a prepare");
    raw.read_packet(&mut seq).await.expect("read the response").expect("a response").to_vec()
}

/// The error code of an ERR packet, if `packet` is one.
fn err_code(packet: &[u8]) -> Option<u16> {
    (packet.first() == Some(&0xff)).then(|| u16::from_le_bytes([packet[1], packet[2]]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_a_bounded_number_of_prepared_statements() {
    let tenant = server().tenant("bad_stmts", "pw-bad-stmts");
    let published = publish(tenant.clone(), config(&tenant, 2)).await;
    let mut raw = published.raw_login().await;
    // `DO n` prepares with no parameters and no columns: the response is one packet.
    for n in 0..1024 {
        let reply = prepare(&mut raw, &format!("DO {n}")).await;
        assert_eq!(err_code(&reply), None, "statement {n} refused");
    }
    let refused = prepare(&mut raw, "DO 1024").await;
    assert_eq!(err_code(&refused), Some(1461), "the 1025th statement");
    // Closing one makes room for one.
    let mut close = vec![0x19];
    close.extend_from_slice(&1u32.to_le_bytes());
    raw.send(&mut Sequence::new(), &close).await.expect("close statement 1");
    let reply = prepare(&mut raw, "DO 1025").await;
    assert_eq!(err_code(&reply), None, "room after a close");

    // The statements' text is bounded too: one statement of more than 1 MiB.
    let mut fresh = published.raw_login().await;
    let long = format!("SELECT '{}'", "x".repeat(1 << 20));
    assert_eq!(err_code(&prepare(&mut fresh, &long).await), Some(1461));
    let reply = prepare(&mut fresh, "DO 1").await;
    assert_eq!(err_code(&reply), None, "a short one still prepares");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_packet_is_bounded_by_the_servers_max_allowed_packet() {
    let options = ["--max-allowed-packet=1M".to_owned()];
    let backend =
        tokio::task::spawn_blocking(move || support::mariadb::MariaDb::start_with("mariadb-1m", &options))
            .await
            .expect("join")
            .expect("a MariaDB with max_allowed_packet=1M");
    let tenant = backend.tenant("small_packets", "pw-small");
    // The pool's own cap is 64 MiB; the server's 1 MiB is the one that holds.
    let published = support::publish_on(backend.addr, tenant.clone(), config(&tenant, 1)).await;
    assert_eq!(published.pooler.pool().max_client_packet().await, 1 << 20);
    let mut raw = published.raw_login().await;
    let mut query = b"\x03SELECT '".to_vec();
    query.resize(2 << 20, b'x');
    query.push(b'\'');
    let _ = raw.send(&mut Sequence::new(), &query).await;
    let mut seq = Sequence::at(1);
    let reply = raw.read_packet(&mut seq).await.expect("an answer").expect("a packet");
    assert_eq!(err_code(&reply), Some(1835), "a 2 MiB packet for a 1 MiB server");
    assert!(String::from_utf8_lossy(&reply).contains("over the limit of 1048576 bytes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_client_sessions_a_client_is_refused_and_a_freed_slot_is_reused() {
    let tenant = server().tenant("admit_cap", "pw-admit");
    let mut cfg = config(&tenant, 2);
    cfg.max_client_sessions = 2;
    let published = publish(tenant.clone(), cfg).await;
    // Sockets that never log in take no session slot.
    let mut silent = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(published.addr).await.expect("connect");
        read_greeting(&mut stream).await;
        silent.push(stream);
    }
    let first = published.conn().await;
    let second = published.conn().await;
    let refused = mysql_async::Conn::new(published.opts()).await.expect_err("a third session is refused");
    assert!(matches!(&refused, mysql_async::Error::Server(e) if e.code == 1040), "{refused}");
    assert!(refused.to_string().contains("max_client_sessions"), "{refused}");
    first.disconnect().await.expect("quit");
    // The slot comes back when the session ends (after the pooler has seen the quit).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut third = loop {
        match mysql_async::Conn::new(published.opts()).await {
            Ok(conn) => break conn,
            Err(error) => assert!(Instant::now() < deadline, "the freed slot was never reused: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let one: Option<i64> = third.query_first("SELECT 1").await.expect("served");
    assert_eq!(one, Some(1));
    third.disconnect().await.expect("quit");
    second.disconnect().await.expect("quit");
    drop(silent);
}
