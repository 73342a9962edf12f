//! A command component that loads a MySQL server from inside a guest, as a tenant's serverless
//! components do: `mysql_async`, unmodified, over `wasi:sockets`. The host runs many instances
//! of it at once against the tenant's pooler and against a forward straight to the server
//! (`benches/guest_pool.rs`), so the two figures differ only in what is behind the port.
//!
//! Environment:
//! - `DB_ADDR` — where to connect (default `127.0.0.1:3306`); `DB_USER`, `DB_PASSWORD`, `DB_NAME`.
//! - `MODE` — `connect`: every request connects, runs one point select and quits (connect per
//!   request); `reuse`: one connection, every request one point select as a prepared statement.
//! - `SECONDS` — how long to run (default 5); `MAX_REQUESTS` — a cap on requests (default 1,000,000).
//! - `TABLE_SIZE` — rows of `sbtest1` (made by `sysbench oltp_point_select prepare`; default 10,000).
//! - `SEED` — where this instance's sequence of row ids starts (default 0).
//!
//! Prints `requests=N micros=T` on success; exits with status 1 and the error on the first failure.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;

/// What one run does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Connect,
    Reuse,
}

struct Settings {
    opts: mysql_async::Opts,
    mode: Mode,
    run_for: Duration,
    max_requests: u64,
    table_size: u64,
    seed: u64,
}

fn main() {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(e) => fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => fail(&format!("no async runtime: {e}")),
    };
    let start = Instant::now();
    match runtime.block_on(run(&settings)) {
        Ok(requests) => println!("requests={requests} micros={}", start.elapsed().as_micros()),
        Err(e) => fail(&e.to_string()),
    }
}

fn settings() -> Result<Settings, String> {
    let var = |name: &str| std::env::var(name).ok();
    let number = |name: &str, default: u64| -> Result<u64, String> {
        var(name).map_or(Ok(default), |v| v.parse().map_err(|e| format!("{name}={v}: {e}")))
    };
    let addr = var("DB_ADDR").unwrap_or_else(|| "127.0.0.1:3306".to_owned());
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("DB_ADDR={addr}: no port"))?;
    let port: u16 = port.parse().map_err(|e| format!("DB_ADDR={addr}: {e}"))?;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port)
        .user(var("DB_USER"))
        .pass(var("DB_PASSWORD"))
        .db_name(var("DB_NAME"))
        .prefer_socket(false)
        // Known up front, so the client does not ask the server for them after each connect.
        .max_allowed_packet(Some(16 << 20))
        .wait_timeout(Some(28_800));
    let mode = match var("MODE").as_deref() {
        None | Some("connect") => Mode::Connect,
        Some("reuse") => Mode::Reuse,
        Some(other) => return Err(format!("MODE={other}: not `connect` or `reuse`")),
    };
    Ok(Settings {
        opts: opts.into(),
        mode,
        run_for: Duration::from_secs(number("SECONDS", 5)?),
        max_requests: number("MAX_REQUESTS", 1_000_000)?,
        table_size: number("TABLE_SIZE", 10_000)?.max(1),
        seed: number("SEED", 0)?,
    })
}

async fn run(settings: &Settings) -> Result<u64, mysql_async::Error> {
    let deadline = Instant::now() + settings.run_for;
    let mut id = settings.seed % settings.table_size;
    let mut next_id = move |size: u64| {
        id = (id * 7919 + 13) % size;
        id + 1
    };
    let mut requests = 0;
    let mut held = match settings.mode {
        Mode::Reuse => Some(mysql_async::Conn::new(settings.opts.clone()).await?),
        Mode::Connect => None,
    };
    while requests < settings.max_requests && Instant::now() < deadline {
        let id = next_id(settings.table_size);
        match held.as_mut() {
            Some(conn) => {
                let _: Option<String> = conn.exec_first("SELECT c FROM sbtest1 WHERE id = ?", (id,)).await?;
            }
            None => {
                let mut conn = mysql_async::Conn::new(settings.opts.clone()).await?;
                let _: Option<String> =
                    conn.query_first(format!("SELECT c FROM sbtest1 WHERE id = {id}")).await?;
                conn.disconnect().await?;
            }
        }
        requests += 1;
    }
    if let Some(conn) = held {
        conn.disconnect().await?;
    }
    Ok(requests)
}

fn fail(message: &str) -> ! {
    eprintln!("mysql-load: {message}");
    std::process::exit(1);
}
