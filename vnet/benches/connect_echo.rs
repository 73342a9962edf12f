//! Connect + 64-byte echo round trip through the virtual network vs kernel loopback TCP, and the
//! memory an idle virtual connection costs.
//!
//! `cargo bench -p switchyard-vnet --bench connect_echo` (`ECHO_ROUNDS` sets the round trips).
//! Both sides run on one tokio runtime (2 workers) with an echo server task; each round connects,
//! writes 64 bytes, reads them back and closes. Memory is counted by a counting global allocator.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchyard_vnet::{Limits, Network};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/counting.rs"]
mod counting;

const MESSAGE: [u8; 64] = [0x42; 64];

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = [0u8; 64];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    stream.write_all(&MESSAGE).await.expect("write");
    let mut back = [0u8; 64];
    stream.read_exact(&mut back).await.expect("read");
    assert_eq!(back, MESSAGE);
}

async fn virtual_rounds(rounds: usize) -> Duration {
    let network = Network::new("bench", Limits::default());
    let listener = network.listen("127.0.0.1:7777".parse().expect("addr"), 1024).expect("listen");
    let server = tokio::spawn(async move {
        loop {
            let connection = listener.accept().await;
            tokio::spawn(echo(connection));
        }
    });
    let to: SocketAddr = "127.0.0.1:7777".parse().expect("addr");
    let start = Instant::now();
    for _ in 0..rounds {
        round_trip(network.connect(to).expect("connect")).await;
    }
    let elapsed = start.elapsed();
    server.abort();
    elapsed
}

async fn kernel_rounds(rounds: usize) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let to = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(echo(stream));
        }
    });
    let start = Instant::now();
    for _ in 0..rounds {
        let stream = TcpStream::connect(to).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        round_trip(stream).await;
    }
    let elapsed = start.elapsed();
    server.abort();
    elapsed
}

fn idle_bytes_per_connection(count: usize) -> usize {
    let network = Network::new(
        "idle",
        Limits { max_sockets: count * 2 + 1, max_connections: count, ..Limits::default() },
    );
    let listener = network.listen("127.0.0.1:7777".parse().expect("addr"), count).expect("listen");
    let before = counting::allocated();
    let mut ends = Vec::with_capacity(count * 2);
    let reserved = counting::allocated() - before;
    for _ in 0..count {
        let client = network.connect("127.0.0.1:7777".parse().expect("addr")).expect("connect");
        let server = listener.try_accept().expect("accepted");
        ends.push(client);
        ends.push(server);
    }
    let per = (counting::allocated() - before - reserved) / count;
    drop(ends);
    per
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("connect_echo: skipped (run with `cargo bench -p switchyard-vnet --bench connect_echo`)");
        return;
    }
    let rounds: usize = std::env::var("ECHO_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
    for (flavour, rt) in [
        (
            "multi-thread (2 workers)",
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build(),
        ),
        ("current-thread", tokio::runtime::Builder::new_current_thread().enable_all().build()),
    ] {
        let rt = rt.expect("runtime");
        let (virt, kernel) =
            rt.block_on(async { (virtual_rounds(rounds).await, kernel_rounds(rounds).await) });
        println!("tokio {flavour}, {rounds} rounds:");
        println!("  connect + 64 B echo, virtual:             {:8.2} us/round", per(virt));
        println!("  connect + 64 B echo, kernel loopback TCP: {:8.2} us/round", per(kernel));
        println!(
            "  ratio kernel / virtual: {:.1}x faster (goal >= 10x)",
            kernel.as_secs_f64() / virt.as_secs_f64()
        );
    }
    let idle = idle_bytes_per_connection(10_000);
    println!("idle virtual connection (both ends, addresses, ports): {idle} bytes (goal <= 4096)");
}
