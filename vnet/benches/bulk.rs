//! Bulk throughput: 1 GiB through a virtual stream vs kernel loopback TCP, in the same run.
//!
//! `cargo bench -p switchyard-vnet --bench bulk` (set `BULK_MIB` to change the volume). Both
//! sides use the same runtime (2 worker threads), the same 64 KiB writes and reads, a writer task
//! and a reader task; only the transport differs.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 64 * 1024;

async fn transfer<W, R>(mut writer: W, mut reader: R, total: usize) -> Duration
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin,
{
    let start = Instant::now();
    let send = tokio::spawn(async move {
        let chunk = vec![0x5au8; CHUNK];
        let mut sent = 0;
        while sent < total {
            let n = CHUNK.min(total - sent);
            writer.write_all(&chunk[..n]).await.expect("write");
            sent += n;
        }
        writer.shutdown().await.expect("shutdown");
    });
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0;
    loop {
        let n = reader.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        received += n;
    }
    send.await.expect("writer task");
    assert_eq!(received, total, "every byte arrives");
    start.elapsed()
}

async fn kernel_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.expect("connect"), accepted.expect("accept").0)
}

fn gib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / (1u64 << 30) as f64
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("bulk: skipped (run with `cargo bench -p switchyard-vnet --bench bulk`)");
        return;
    }
    let mib: usize = std::env::var("BULK_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let total = mib << 20;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let (a, b) = switchyard_vnet::pipe::duplex(switchyard_vnet::pipe::DEFAULT_CAPACITY);
        let virt = transfer(a, b, total).await;
        let (client, server) = kernel_pair().await;
        let kernel = transfer(client, server, total).await;
        println!("bulk {mib} MiB, virtual stream:      {:6.2} GiB/s ({virt:.2?})", gib_per_s(total, virt));
        println!(
            "bulk {mib} MiB, kernel loopback TCP: {:6.2} GiB/s ({kernel:.2?})",
            gib_per_s(total, kernel)
        );
        println!("ratio virtual / kernel: {:.2}x (goal >= 1x)", kernel.as_secs_f64() / virt.as_secs_f64());
    });
}
