//! The SQL admin interface: a MySQL-protocol endpoint with a user of its own that answers
//! `SHOW POOLS`, `SHOW CLIENTS`, `SHOW SERVERS` and `SHOW STATS` about every pool it is given,
//! so that any MySQL client (`mariadb -h ... -e 'SHOW POOLS'`) can look at the pooler. It never
//! reaches a backend and answers nothing else (an ERR lists what it answers).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mysql_common::constants::{Command, StatusFlags};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::pins::PinReason;
use crate::pool::Pool;
use crate::protocol::auth::AuthMethod;
use crate::protocol::framing::{PacketConn, Sequence};
use crate::protocol::server_handshake::{self, Greeting};
use crate::protocol::{packets, resultset};
use crate::stats::ErrorKind;

/// `ER_PARSE_ERROR`.
const ER_PARSE: u16 = 1064;
/// `ER_UNKNOWN_COM_ERROR`.
const ER_UNKNOWN_COM: u16 = 1047;

/// A pool the admin interface reports on.
#[derive(Debug, Clone)]
pub struct AdminPool {
    /// Its tenant.
    pub tenant: String,
    /// Its name in the tenant.
    pub name: String,
    /// The pool.
    pub pool: Pool,
}

/// The admin endpoint's state: the pools and its own login.
#[derive(Debug, Clone)]
pub struct Admin {
    pools: Arc<RwLock<Arc<Vec<AdminPool>>>>,
    user: String,
    password: Vec<u8>,
    handshake_timeout: Duration,
}

/// An answer: column names and rows.
type Table = (Vec<&'static str>, Vec<Vec<Option<String>>>);

impl Admin {
    /// An endpoint reporting on `pools`, logged into as `user` with `password`.
    pub fn new(pools: Vec<AdminPool>, user: String, password: Vec<u8>, handshake_timeout: Duration) -> Self {
        Admin { pools: Arc::new(RwLock::new(Arc::new(pools))), user, password, handshake_timeout }
    }

    /// Reports on `pools` from the next statement on (the host's pools changed in a reload).
    pub fn replace_pools(&self, pools: Vec<AdminPool>) {
        *self.pools.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(pools);
    }

    fn pools(&self) -> Arc<Vec<AdminPool>> {
        self.pools.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Serves one admin client until it quits. `peer` names it in logs.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S, peer: &str) {
        let mut conn = PacketConn::new(stream, 1 << 20);
        let greeting = Greeting {
            server_version: "5.5.5-10.11.0-switchyard-admin".to_owned(),
            connection_id: 1,
            method: AuthMethod::NativePassword,
            user: self.user.clone(),
            password: self.password.clone(),
        };
        let hello = match tokio::time::timeout(
            self.handshake_timeout,
            server_handshake::accept(&mut conn, &greeting),
        )
        .await
        {
            Ok(Ok(hello)) => hello,
            Ok(Err(error)) => {
                tracing::info!(peer, "admin login failed: {error}");
                return;
            }
            Err(_) => {
                tracing::info!(peer, "admin client did not log in within {:?}", self.handshake_timeout);
                return;
            }
        };
        loop {
            let mut seq = Sequence::new();
            let Ok(Some(payload)) = conn.read_packet(&mut seq).await else { return };
            let reply = match payload.first().copied() {
                Some(c) if c == Command::COM_QUIT as u8 => return,
                Some(c) if c == Command::COM_PING as u8 || c == Command::COM_INIT_DB as u8 => {
                    conn.send(&mut seq, &packets::ok(StatusFlags::SERVER_STATUS_AUTOCOMMIT, hello.caps)).await
                }
                Some(c) if c == Command::COM_QUERY as u8 => match self
                    .answer(&String::from_utf8_lossy(&payload[1..]))
                {
                    Ok((columns, rows)) => {
                        resultset::write(
                            &mut conn,
                            &mut seq,
                            hello.caps,
                            StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                            &columns,
                            &rows,
                        )
                        .await
                    }
                    Err(message) => conn.send(&mut seq, &packets::err(ER_PARSE, b"42000", &message)).await,
                },
                _ => {
                    let message =
                        "the admin interface takes queries only (SHOW POOLS, CLIENTS, SERVERS, STATS)";
                    conn.send(&mut seq, &packets::err(ER_UNKNOWN_COM, b"08S01", message)).await
                }
            };
            if reply.is_err() {
                return;
            }
        }
    }

    /// The answer to one statement.
    pub fn answer(&self, sql: &str) -> Result<Table, String> {
        let words: Vec<String> =
            sql.trim().trim_end_matches(';').split_whitespace().map(str::to_ascii_uppercase).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["SHOW", "POOLS"] => Ok(self.pools_table()),
            ["SHOW", "CLIENTS"] => Ok(self.clients_table()),
            ["SHOW", "SERVERS"] => Ok(self.servers_table()),
            ["SHOW", "STATS"] => Ok(self.stats_table()),
            // What the mariadb and mysql command-line clients ask on connecting.
            ["SELECT", "@@VERSION_COMMENT", "LIMIT", "1"] => {
                Ok((vec!["@@version_comment"], vec![vec![Some("Switchyard pooler admin".to_owned())]]))
            }
            _ => Err(format!(
                "the admin interface answers SHOW POOLS, SHOW CLIENTS, SHOW SERVERS and SHOW STATS, not: {}",
                sql.trim()
            )),
        }
    }

    fn pools_table(&self) -> Table {
        let columns =
            vec!["tenant", "pool", "clients", "waiting", "backend_in_use", "backend_idle", "backend_max"];
        let rows = self
            .pools()
            .iter()
            .map(|p| {
                let s = p.pool.snapshot();
                let max = p.pool.max_connections();
                vec![
                    Some(p.tenant.clone()),
                    Some(p.name.clone()),
                    Some(s.clients.to_string()),
                    Some(s.waiting.to_string()),
                    Some(s.backend_open.saturating_sub(s.backend_idle).to_string()),
                    Some(s.backend_idle.to_string()),
                    Some(max.to_string()),
                ]
            })
            .collect();
        (columns, rows)
    }

    fn clients_table(&self) -> Table {
        let columns = vec![
            "tenant",
            "pool",
            "id",
            "user",
            "peer",
            "connected_s",
            "holding_server",
            "pinned",
            "idle_in_transaction_s",
        ];
        let now = Instant::now();
        let mut rows = Vec::new();
        for p in self.pools().iter() {
            for c in p.pool.clients().rows() {
                rows.push(vec![
                    Some(p.tenant.clone()),
                    Some(p.name.clone()),
                    Some(c.id.to_string()),
                    Some(c.user),
                    Some(c.peer),
                    Some(now.duration_since(c.since).as_secs().to_string()),
                    c.holding.map(|id| id.to_string()),
                    Some(c.pinned).filter(|p| !p.is_empty()),
                    c.idle_in_transaction_since.map(|since| now.duration_since(since).as_secs().to_string()),
                ]);
            }
        }
        (columns, rows)
    }

    fn servers_table(&self) -> Table {
        let columns = vec!["tenant", "pool", "connection_id", "backend", "state", "age_s", "in_state_s"];
        let now = Instant::now();
        let mut rows = Vec::new();
        for p in self.pools().iter() {
            for s in p.pool.servers().rows() {
                rows.push(vec![
                    Some(p.tenant.clone()),
                    Some(p.name.clone()),
                    Some(s.connection_id.to_string()),
                    Some(s.backend),
                    Some(if s.in_use { "in_use" } else { "idle" }.to_owned()),
                    Some(now.duration_since(s.since).as_secs().to_string()),
                    Some(now.duration_since(s.changed).as_secs().to_string()),
                ]);
            }
        }
        (columns, rows)
    }

    fn stats_table(&self) -> Table {
        let columns = vec![
            "tenant",
            "pool",
            "clients_total",
            "checkouts",
            "avg_wait_us",
            "queries",
            "backend_connects",
            "pins",
            "checkout_timeouts",
            "errors",
        ];
        let rows = self
            .pools()
            .iter()
            .map(|p| {
                let s = p.pool.snapshot();
                let avg_wait =
                    if s.checkouts == 0 { 0.0 } else { s.wait_seconds_total * 1e6 / s.checkouts as f64 };
                let pins: u64 = PinReason::ALL.iter().map(|r| s.pins_for(*r)).sum();
                let errors: u64 = ErrorKind::ALL.iter().map(|k| s.errors_of(*k)).sum();
                vec![
                    Some(p.tenant.clone()),
                    Some(p.name.clone()),
                    Some(s.clients_total.to_string()),
                    Some(s.checkouts.to_string()),
                    Some(format!("{avg_wait:.0}")),
                    Some(s.queries.to_string()),
                    Some(s.connects.to_string()),
                    Some(pins.to_string()),
                    Some(s.errors_of(ErrorKind::CheckoutTimeout).to_string()),
                    Some(errors.to_string()),
                ]
            })
            .collect();
        (columns, rows)
    }
}
