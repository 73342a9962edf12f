//! Clients that never finish logging in hold almost nothing (THREATS.md: an unauthenticated
//! peer must not grow the pooler's memory). 1,000 clients connect; half announce a 16 MiB
//! login packet and send 15 KiB of it, half send 6 KiB of a 7 KiB one and then nothing. Every
//! allocation of this test process is counted (the pooler runs in it): with all of them
//! stuck, the pooler holds no more than a few KiB per client, and a client that does log in is
//! served at once. (Alone in its binary: another test's allocations would count.)

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use support::{config, publish, read_greeting, server};
use switchyard_pooler::login_gate::MAX_LOGINS_IN_PROGRESS;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLIENTS: usize = 1000;
/// What the pooler may hold per stuck client, on average (measured: 3.4 KiB in a debug build —
/// at most 256 logins in progress, each with its partial packet, under 8 KiB, and a small
/// future; before the login cap, the gate and the bounded buffer growth: 16 MiB reserved for
/// each oversized login).
const PER_CLIENT: isize = 5 * 1024;

/// Sends the header of a login packet of `announced` bytes and `sent` of them.
async fn send_part(stream: &mut TcpStream, announced: usize, sent: usize) {
    let len = (announced as u32).to_le_bytes();
    let mut bytes = vec![len[0], len[1], len[2], 1];
    bytes.resize(4 + sent, b'x');
    // The pooler may close the connection at the header; the rest then goes nowhere.
    let _ = stream.write_all(&bytes).await;
}

/// Whether the peer has closed `stream` (without waiting).
fn closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false, // bytes before the end (an ERR): the end comes at a later look
        Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_in_progress_hold_a_few_kib_each_and_the_pool_stays_usable() {
    let tenant = server().tenant("login_mem", "pw-login");
    let mut cfg = config(&tenant, 2);
    // Stuck for longer than the test takes: only the gate ends their logins.
    cfg.handshake_timeout = Duration::from_secs(600);
    let published = publish(tenant.clone(), cfg).await;
    // The pool knows its server's version once a client has logged in.
    let mut first = published.conn().await;
    first.query_drop("SELECT 1").await.expect("a first client");
    first.disconnect().await.expect("quit");
    let baseline = LIVE.load(Ordering::Relaxed);

    let mut oversized = Vec::new();
    let mut partial = Vec::new();
    for i in 0..CLIENTS {
        let mut stream = TcpStream::connect(published.addr).await.expect("connect");
        read_greeting(&mut stream).await;
        if i % 2 == 0 {
            send_part(&mut stream, 0xFF_FFFF - 1, 15 * 1024).await;
            oversized.push(stream);
        } else {
            send_part(&mut stream, 7 * 1024, 6 * 1024).await;
            partial.push(stream);
        }
    }

    // Every oversized login is refused at its header; of the partial ones, at most the newest
    // MAX_LOGINS_IN_PROGRESS are in progress and the older ones were told to give up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let gate = published.pooler.logins();
    loop {
        let refused = oversized.iter().filter(|s| closed(s)).count();
        let evicted = partial.iter().filter(|s| closed(s)).count();
        // (An oversized login that arrives at a full gate also evicts the oldest partial one.)
        if refused == oversized.len() && evicted + gate.in_progress() == partial.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{refused} of {} oversized logins refused, {evicted} partial ones evicted, {} in progress",
            oversized.len(),
            gate.in_progress()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gate.in_progress() <= MAX_LOGINS_IN_PROGRESS && gate.in_progress() > 0, "{}", gate.in_progress());
    let held = LIVE.load(Ordering::Relaxed) - baseline;
    println!("{CLIENTS} stuck logins: {held} bytes held, {} per client", held / CLIENTS as isize);
    assert!(
        held < PER_CLIENT * CLIENTS as isize,
        "{CLIENTS} stuck logins hold {held} bytes ({} per client)",
        held / CLIENTS as isize
    );

    // A client that logs in now is served (it takes the oldest stuck login's place).
    let started = Instant::now();
    let mut client = published.conn().await;
    let one: Option<i64> = client.query_first("SELECT 1").await.expect("served");
    assert_eq!(one, Some(1));
    println!("a real client logged in and was served in {:?}", started.elapsed());
    client.disconnect().await.expect("quit");
}
