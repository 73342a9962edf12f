//! Arbitrary bytes from a MySQL client: the first half goes to the pooler's handshake (framing,
//! the handshake-response decoder, auth), the rest to a logged-in session's command loop
//! (framing, every command's decoder, statements, long data, change user, options). The pool's
//! backend is unreachable, so commands that need one get an ERR. Nothing may panic, every run
//! ends within 5 s (the input ends the client stream), and no input logs in (the nonce is
//! random, so a login would be one without the password); packet sizes are capped at 1 MiB.

#![no_main]

use std::sync::Arc;
use std::time::Duration;

use switchyard_pooler::backend::BackendSettings;
use switchyard_pooler::pool::{Pool, PoolConfig};
use switchyard_pooler::protocol::auth::AuthMethod;
use switchyard_pooler::protocol::framing::PacketConn;
use switchyard_pooler::protocol::server_handshake::{self, Client, Greeting};
use switchyard_pooler::session::{PoolMode, Session, SessionContext};
use switchyard_pooler::{ConnectFuture, Connector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A backend that is never there.
struct Unreachable;

impl Connector for Unreachable {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async { Err(std::io::Error::other("no backend while fuzzing")) })
    }

    fn describe(&self) -> String {
        "nowhere".to_owned()
    }
}

const MAX_PACKET: usize = 1 << 20;

fn pool() -> Pool {
    let config = PoolConfig {
        name: "fuzz/pool".to_owned(),
        backend: BackendSettings {
            user: "app".to_owned(),
            password: b"secret".to_vec(),
            database: Some("app".to_owned()),
            max_packet: MAX_PACKET,
            connect_timeout: Duration::from_secs(1),
            tls: None,
        },
        max_connections: 1,
        min_idle: 0,
        idle_timeout: Duration::from_secs(60),
        max_lifetime: Duration::from_secs(60),
        checkout_timeout: Duration::from_millis(10),
        health_check_after: Duration::from_secs(60),
    };
    Pool::new(config, Arc::new(Unreachable))
}

/// Feeds `input` as a client stream to `run`, draining what the pooler writes back.
async fn feed<F, Fut>(input: &[u8], run: F)
where
    F: FnOnce(PacketConn<tokio::io::DuplexStream>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let input = input.to_vec();
    let client_side = async move {
        let (mut read, mut write) = tokio::io::split(&mut client);
        let writer = async {
            let _ = write.write_all(&input).await;
            let _ = write.shutdown().await;
        };
        let drainer = async {
            let mut sink = vec![0u8; 16 * 1024];
            while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        tokio::join!(writer, drainer);
    };
    let server_side = run(PacketConn::new(server, MAX_PACKET));
    tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(client_side, server_side) })
        .await
        .expect("the pooler did not finish with a client whose stream ended, within 5 s");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let split = data.len() / 2;
    let (handshake, commands) = data.split_at(split);
    runtime.block_on(async {
        let greeting = Greeting {
            server_version: "10.11.0-MariaDB".to_owned(),
            connection_id: 1,
            method: AuthMethod::NativePassword,
            user: "app".to_owned(),
            password: b"secret".to_vec(),
        };
        feed(handshake, |mut conn| async move {
            let login = server_handshake::accept(&mut conn, &greeting).await;
            assert!(login.is_err(), "arbitrary bytes logged in: {login:?}");
        })
        .await;
        let hello = Client {
            caps: server_handshake::OFFERED,
            collation: 45,
            user: "app".to_owned(),
            database: Some("app".to_owned()),
            nonce: [0x41; 20],
        };
        let ctx = SessionContext {
            pool: pool(),
            mode: PoolMode::Transaction,
            password: Arc::from(&b"secret"[..]),
            max_prepared_per_connection: 4,
            packet_timeout: Duration::from_secs(1),
            max_packet: MAX_PACKET,
            idle_transaction_timeout: Duration::from_secs(1),
            client_write_timeout: Duration::from_secs(1),
            insert_ids: Default::default(),
            known_sets: Default::default(),
            listed: None,
        };
        feed(commands, |conn| async move { Session::new(conn, hello, ctx).run().await }).await;
    });
});
