//! A private MariaDB server for tests: its own datadir, socket and port under the target
//! directory, started once per test binary from the system's `mariadbd`, and stopped by a
//! watchdog when the test process exits, which then removes the datadir (tests never leave a
//! server or its data behind).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running server.
pub struct MariaDb {
    /// Its TCP address on loopback.
    pub addr: SocketAddr,
    /// Its unix socket.
    pub socket: PathBuf,
    /// Its folder (datadir, socket, pid file, error log).
    dir: PathBuf,
    /// The shell command that runs it under a watchdog.
    command: String,
}

static SERVER: OnceLock<MariaDb> = OnceLock::new();

/// The server of this test binary (started on first use).
pub fn server() -> &'static MariaDb {
    SERVER.get_or_init(|| {
        MariaDb::start(&format!("mariadb-{}", std::process::id()))
            .unwrap_or_else(|e| panic!("cannot start MariaDB for the tests: {e}"))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
}

impl MariaDb {
    /// A fresh server in `target/tmp/<name>` (for a test that must kill and restart its own).
    pub fn start(name: &str) -> Result<MariaDb, String> {
        Self::start_with(name, &[])
    }

    /// As [`MariaDb::start`], with extra `mariadbd` options (e.g. `--ssl-cert=...`).
    pub fn start_with(name: &str, options: &[String]) -> Result<MariaDb, String> {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = base.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let data = dir.join("data");
        // A temporary folder of its own: servers installed at once in the default /tmp have
        // removed each other's bootstrap temporary tables.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let user = if is_root() { "root".to_owned() } else { std::env::var("USER").unwrap_or_default() };
        let install = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=socket", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .arg(format!("--tmpdir={}", tmp.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("mariadb-install-db: {e} (install mariadb-server)"))?;
        if !install.status.success() {
            return Err(format!("mariadb-install-db failed: {}", String::from_utf8_lossy(&install.stderr)));
        }
        let port = free_port();
        let socket = dir.join("mysqld.sock");
        let server = format!(
            "mariadbd --no-defaults --datadir={data} --socket={socket} --port={port} --bind-address=127.0.0.1 \
             --pid-file={dir}/mysqld.pid --log-error={dir}/error.log --user={user} --max-connections=2000 \
             --innodb-buffer-pool-size=64M --innodb-log-file-size=48M --skip-log-bin --max-allowed-packet=64M \
             --tmpdir={tmp} {options}",
            options = options.join(" "),
            data = data.display(),
            socket = socket.display(),
            dir = dir.display(),
            tmp = tmp.display(),
        );
        // The watchdog ends the server when this test process is gone, and then removes its
        // datadir (the error log stays); a server killed by the test itself is left for restart().
        let command = format!(
            "exec 0</dev/null; {server} & server=$!; echo $server > {dir}/server.pid; \
             while kill -0 {test} 2>/dev/null && kill -0 $server 2>/dev/null; do sleep 0.5; done; \
             kill $server 2>/dev/null; wait $server; \
             if ! kill -0 {test} 2>/dev/null; then rm -rf {dir}/data; fi",
            dir = dir.display(),
            test = std::process::id()
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = MariaDb { addr, socket, dir, command };
        server.launch()?;
        Ok(server)
    }

    /// Starts the server process on its datadir and waits (bounded) until it listens.
    fn launch(&self) -> Result<(), String> {
        Command::new("sh")
            .args(["-c", &self.command])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run mariadbd: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(self.addr).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                return Err(format!("mariadbd did not listen on {} within 60 s; its log:\n{log}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the server with SIGKILL (no shutdown, no flush) and waits until its port is closed.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.join("server.pid")).expect("the server's pid");
        let status = Command::new("kill").args(["-KILL", pid.trim()]).status().expect("run kill");
        assert!(status.success(), "kill -KILL {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).is_ok() {
            assert!(Instant::now() < deadline, "the killed server still accepts connections");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts a killed server again (same datadir and port; InnoDB recovers) and waits until it
    /// listens.
    pub fn restart(&self) {
        self.launch().unwrap_or_else(|e| panic!("cannot restart MariaDB: {e}"));
    }

    /// The `mariadbd` process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("server.pid")).ok()?.trim().parse().ok()
    }

    /// Runs SQL as root through the `mariadb` client on the socket; its tab-separated output.
    pub fn root_sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-u", "root", "--batch", "--skip-column-names"])
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-e", sql])
            .output()
            .expect("run the mariadb client");
        assert!(out.status.success(), "root SQL failed: {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A database and a user of its own for one test (`name` is a plain identifier).
    pub fn tenant(&self, name: &str, password: &str) -> Tenant {
        self.root_sql(&format!(
            "CREATE DATABASE IF NOT EXISTS {name}; \
             CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{password}'; \
             GRANT ALL ON {name}.* TO '{name}'@'%';"
        ));
        Tenant { user: name.to_owned(), password: password.to_owned(), database: name.to_owned() }
    }

    /// Samples the connections the server has open for `user` every `period` until `stop` is
    /// set (at most 100,000 samples), on a thread; the most seen. One `mariadb` client stays
    /// open for every sample, so sampling often costs the machine little while a load runs.
    pub fn watch_connections(
        &self,
        user: &str,
        stop: Arc<AtomicBool>,
        period: Duration,
    ) -> JoinHandle<usize> {
        let mut client = Command::new("mariadb")
            .args(["--no-defaults", "-u", "root", "--batch", "--skip-column-names", "--unbuffered"])
            .arg(format!("--socket={}", self.socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the mariadb client");
        let query = format!("SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{user}';\n");
        std::thread::spawn(move || {
            let mut input = client.stdin.take().expect("the client's stdin");
            let mut output = BufReader::new(client.stdout.take().expect("the client's stdout"));
            let mut max = 0;
            let mut line = String::new();
            for _ in 0..100_000 {
                line.clear();
                input.write_all(query.as_bytes()).expect("ask the mariadb client");
                output.read_line(&mut line).expect("the mariadb client's answer");
                max = max.max(line.trim().parse().unwrap_or_else(|_| panic!("not a count: {line:?}")));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(period);
            }
            drop(input);
            let _ = client.wait();
            max
        })
    }

    /// Fills `user`'s database with sysbench's `sbtest1` of `rows` rows (`sysbench
    /// oltp_point_select prepare` over TCP, as that user).
    pub fn sysbench_table(&self, user: &str, password: &str, rows: u64) {
        let prepared = Command::new("sysbench")
            .arg("oltp_point_select")
            .args(["--db-driver=mysql", "--mysql-host=127.0.0.1", "--tables=1"])
            .arg(format!("--table-size={rows}"))
            .arg(format!("--mysql-port={}", self.addr.port()))
            .args([
                format!("--mysql-user={user}"),
                format!("--mysql-password={password}"),
                format!("--mysql-db={user}"),
            ])
            .arg("prepare")
            .stdout(Stdio::null())
            .status()
            .expect("run sysbench (install sysbench)");
        assert!(prepared.success(), "sysbench prepare failed");
    }

    /// Connections the server has open for `user` now.
    pub fn connections_of(&self, user: &str) -> usize {
        self.root_sql(&format!("SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{user}'"))
            .trim()
            .parse()
            .expect("a count")
    }
}

/// A test's database and user.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// User (also the database's name).
    pub user: String,
    /// Password.
    pub password: String,
    /// Database.
    pub database: String,
}
