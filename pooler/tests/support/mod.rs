//! Shared parts of the pooler's tests: the private MariaDB, a TCP connector to it, and a pooler
//! published on a loopback port of its own.

#![allow(dead_code)]

pub mod mariadb;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use switchyard_pooler::backend::BackendSettings;
use switchyard_pooler::protocol::auth::AuthMethod;
use switchyard_pooler::protocol::client_handshake::{self, Login};
use switchyard_pooler::protocol::framing::PacketConn;
use switchyard_pooler::{ConnectFuture, Connector, PoolConfig, PoolMode, Pooler, PoolerConfig};
use tokio::net::{TcpListener, TcpStream};

pub use mariadb::{Tenant, server};

/// Connects to a fixed address over TCP.
pub struct TcpConnector(pub SocketAddr);

impl Connector for TcpConnector {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = TcpStream::connect(self.0).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as switchyard_pooler::BoxedStream)
        })
    }

    fn describe(&self) -> String {
        self.0.to_string()
    }
}

/// A pooler config for `tenant` with `max_connections` and small timeouts.
pub fn config(tenant: &Tenant, max_connections: usize) -> PoolerConfig {
    PoolerConfig {
        pool: PoolConfig {
            name: format!("test/{}", tenant.user),
            backend: BackendSettings {
                user: tenant.user.clone(),
                password: tenant.password.clone().into_bytes(),
                database: Some(tenant.database.clone()),
                max_packet: 64 << 20,
                connect_timeout: Duration::from_secs(5),
                tls: None,
            },
            max_connections,
            min_idle: 0,
            idle_timeout: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(3600),
            checkout_timeout: Duration::from_secs(5),
            health_check_after: Duration::from_secs(5),
        },
        mode: PoolMode::Transaction,
        max_client_sessions: 1000,
        handshake_timeout: Duration::from_secs(5),
        packet_timeout: Duration::from_secs(5),
        auth_method: AuthMethod::NativePassword,
        max_prepared_per_connection: 64,
        idle_transaction_timeout: Duration::from_secs(60),
        client_write_timeout: Duration::from_secs(30),
        insert_ids: Default::default(),
        client_tls: None,
    }
}

/// A pooler serving on a loopback port; the accept loop lives as long as the test's runtime.
pub struct Published {
    /// The pooler.
    pub pooler: Pooler,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Its tenant.
    pub tenant: Tenant,
}

impl Published {
    /// A client URL for this pooler.
    pub fn url(&self) -> String {
        format!(
            "mysql://{}:{}@{}/{}",
            self.tenant.user, self.tenant.password, self.addr, self.tenant.database
        )
    }

    /// `mysql_async` options for this pooler. `prefer_socket` is off, so that a test's client
    /// stays on TCP whatever the pooler answers for `@@socket` (`NULL`; `clients.rs` checks that
    /// a client with the defaults stays on the pooler).
    pub fn opts(&self) -> mysql_async::Opts {
        let opts = mysql_async::Opts::from_url(&self.url()).expect("url");
        mysql_async::OptsBuilder::from_opts(opts).prefer_socket(false).into()
    }

    /// A raw client logged in with the pooler's own client handshake, for tests that send
    /// packets no driver would.
    pub async fn raw_login(&self) -> PacketConn<TcpStream> {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let mut raw = PacketConn::new(stream, 1 << 20);
        let login = Login {
            user: &self.tenant.user,
            password: self.tenant.password.as_bytes(),
            database: Some(&self.tenant.database),
            collation: 45,
            found_rows: false,
            max_packet: 1 << 20,
        };
        client_handshake::login(&mut raw, &login).await.expect("raw login");
        raw
    }

    /// A fresh `mysql_async` connection.
    pub async fn conn(&self) -> mysql_async::Conn {
        mysql_async::Conn::new(self.opts()).await.expect("connect through the pooler")
    }
}

/// Reads the pooler's greeting from a raw client stream (so that its login has started).
pub async fn read_greeting(stream: &mut TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.expect("greeting header");
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.expect("greeting");
}

/// Starts a pooler for `tenant` on the test server with `config`.
pub async fn publish(tenant: Tenant, config: PoolerConfig) -> Published {
    publish_on(server().addr, tenant, config).await
}

/// Starts a pooler for `tenant` on the server at `backend` with `config`.
pub async fn publish_on(backend: SocketAddr, tenant: Tenant, config: PoolerConfig) -> Published {
    let pooler = Pooler::new(config, Arc::new(TcpConnector(backend)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = pooler.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let pooler = serving.clone();
            tokio::spawn(async move { pooler.serve(stream, &peer.to_string()).await });
        }
    });
    Published { pooler, addr, tenant }
}

/// Samples the server's connection count for `user` every `period` until `stop` is set; the
/// maximum seen.
pub fn watch_connections(
    user: String,
    stop: Arc<AtomicBool>,
    period: Duration,
) -> tokio::task::JoinHandle<usize> {
    let watcher = server().watch_connections(&user, stop, period);
    tokio::task::spawn_blocking(move || watcher.join().expect("the connection watcher"))
}
