//! The `embedded` pool backend: a private MariaDB that `switchyard up` starts from the system's
//! `mariadbd`, with its datadir under the config's `state_dir` (so data survives restarts), no
//! TCP port (`--skip-networking`: pools reach it over its unix socket), the tenants' databases
//! and users created or updated at every start, and stopped on exit. A watchdog stops it too if
//! this process dies without stopping it.
//!
//! Closed to other local users (THREATS.md invariant 7): the server's folder is `0700` and its
//! socket `0600`, and no account logs in without credentials. The administrator account is the
//! OS user that runs Switchyard, by unix-socket authentication (`root` when run as root); a datadir
//! created before (password-less `root`) is brought to the same state at start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use switchyard_pooler::{BoxedStream, ConnectFuture, Connector};

use super::state_dir::{own_folder, owner_only};
use crate::config::{Backend, Config};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running embedded server.
#[derive(Debug)]
pub struct EmbeddedMariaDb {
    dir: PathBuf,
    provisioner: Provisioner,
}

/// Creates the embedded pools' databases and users on the running server, at start and at each
/// reload that adds or changes one. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Provisioner {
    socket: PathBuf,
    /// The server account of the OS user running Switchyard (unix-socket authentication).
    admin: String,
}

/// What the host needs of the embedded server: a way in for pools, and its provisioning.
#[derive(Debug, Clone)]
pub struct EmbeddedBackend {
    /// Reaches the server over its socket.
    pub connector: SocketConnector,
    /// Creates databases and users.
    pub provisioner: Provisioner,
}

/// Reaches the embedded server over its unix socket.
#[derive(Debug, Clone)]
pub struct SocketConnector(pub PathBuf);

impl Connector for SocketConnector {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = tokio::net::UnixStream::connect(&self.0).await?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }

    fn describe(&self) -> String {
        format!("embedded MariaDB ({})", self.0.display())
    }
}

/// Whether any pool of `config` uses the embedded backend.
pub fn wanted(config: &Config) -> bool {
    config.tenants.iter().flat_map(|t| &t.pools).any(|p| p.backend == Backend::Embedded)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A backtick-quoted identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A single-quoted string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

impl EmbeddedMariaDb {
    /// Starts (initializing on first use) the server under `state_dir/mariadb` and provisions
    /// every embedded pool of `config`.
    pub fn start(config: &Config, state_dir: &Path) -> anyhow::Result<Self> {
        let dir = state_dir.join("mariadb");
        let data = dir.join("data");
        own_folder(state_dir)?;
        own_folder(&dir)?;
        let dir = dir.canonicalize().with_context(|| format!("state_dir: {}", dir.display()))?;
        let data = dir.join(data.file_name().unwrap_or_default());
        let user = if is_root() { "root".to_owned() } else { std::env::var("USER").unwrap_or_default() };
        if !data.join("mysql").exists() {
            tracing::info!(datadir = %data.display(), "initializing the embedded MariaDB");
            let out = Command::new("mariadb-install-db")
                .args(["--no-defaults", "--auth-root-authentication-method=socket", "--skip-test-db"])
                .arg(format!("--auth-root-socket-user={user}"))
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}"))
                .stdout(Stdio::null())
                .output()
                .context("backend embedded: cannot run mariadb-install-db (install mariadb-server)")?;
            if !out.status.success() {
                bail!(
                    "backend embedded: mariadb-install-db failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let socket = dir.join("mysqld.sock");
        let server = format!(
            "mariadbd --no-defaults --datadir={data} --socket={socket} --skip-networking \
             --pid-file={dir}/mysqld.pid --log-error={dir}/error.log --user={user} --skip-log-bin",
            data = data.display(),
            socket = socket.display(),
            dir = dir.display(),
        );
        let watchdog = format!(
            "{server} & server=$!; echo $server > {dir}/server.pid; \
             while kill -0 {me} 2>/dev/null && kill -0 $server 2>/dev/null; do sleep 1; done; \
             kill $server 2>/dev/null; wait $server",
            me = std::process::id(),
            dir = dir.display(),
        );
        Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("backend embedded: cannot run mariadbd")?;
        let embedded = EmbeddedMariaDb { dir, provisioner: Provisioner { socket, admin: user } };
        embedded.wait_until_up()?;
        owner_only(&embedded.provisioner.socket, 0o600)?;
        embedded.provisioner.provision(config)?;
        tracing::info!(state_dir = %embedded.dir.display(), socket = %embedded.provisioner.socket.display(), "embedded MariaDB running");
        Ok(embedded)
    }

    fn wait_until_up(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while std::os::unix::net::UnixStream::connect(&self.provisioner.socket).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                bail!(
                    "backend embedded: mariadbd did not accept connections on {} within {START_TIMEOUT:?}; \
                     the end of its log:\n{}",
                    self.provisioner.socket.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// What pools and reloads use of the server.
    pub fn backend(&self) -> EmbeddedBackend {
        EmbeddedBackend {
            connector: SocketConnector(self.provisioner.socket.clone()),
            provisioner: self.provisioner.clone(),
        }
    }

    /// Stops the server and waits (bounded) until it is gone.
    pub fn stop(self) {
        let pid = std::fs::read_to_string(self.dir.join("server.pid")).unwrap_or_default();
        let pid = pid.trim();
        if pid.is_empty() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Command::new("kill").args(["-0", pid]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        {
            if Instant::now() > deadline {
                tracing::warn!(pid, "the embedded MariaDB did not stop within {STOP_TIMEOUT:?}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tracing::info!("embedded MariaDB stopped");
    }
}

impl Provisioner {
    /// Closes every way in without credentials, then creates each embedded pool's database and
    /// user (the password set to the pool's).
    pub fn provision(&self, config: &Config) -> anyhow::Result<()> {
        let admin = literal(&self.admin);
        // The administrator is the OS user running Switchyard, over the socket only; `root` (when
        // that is someone else) likewise; anonymous accounts are dropped. Idempotent, and it
        // closes a datadir that an older Switchyard created with a password-less `root`.
        let mut sql = format!(
            "CREATE USER IF NOT EXISTS {admin}@'localhost' IDENTIFIED VIA unix_socket;\n\
             ALTER USER {admin}@'localhost' IDENTIFIED VIA unix_socket;\n\
             GRANT ALL ON *.* TO {admin}@'localhost' WITH GRANT OPTION;\n\
             ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;\n\
             DELETE FROM mysql.global_priv WHERE User = '';\n\
             FLUSH PRIVILEGES;\n"
        );
        for tenant in &config.tenants {
            for pool in tenant.pools.iter().filter(|p| p.backend == Backend::Embedded) {
                let user = literal(&pool.user);
                let password = literal(pool.password.expose());
                sql.push_str(&format!(
                    "CREATE USER IF NOT EXISTS {user}@'localhost' IDENTIFIED BY {password};\n\
                     ALTER USER {user}@'localhost' IDENTIFIED BY {password};\n"
                ));
                if let Some(database) = &pool.database {
                    sql.push_str(&format!(
                        "CREATE DATABASE IF NOT EXISTS {db};\nGRANT ALL ON {db}.* TO {user}@'localhost';\n",
                        db = ident(database)
                    ));
                }
            }
        }
        let first = self.run_sql(&self.admin, &sql);
        // A datadir from before these accounts existed: its `root` still has no password.
        let result = match first {
            Err(_) if self.admin != "root" => self.run_sql("root", &sql),
            other => other,
        };
        result.context("backend embedded: creating the pools' databases and users failed")
    }

    /// Runs `sql` as server account `user` over the socket (unix-socket authentication: the OS
    /// user running this process).
    fn run_sql(&self, user: &str, sql: &str) -> anyhow::Result<()> {
        let mut child = Command::new("mariadb")
            .args(["--no-defaults", "-u", user, "--batch"])
            .arg(format!("--socket={}", self.socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("backend embedded: cannot run the mariadb client")?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(sql.as_bytes()).context("backend embedded: provisioning")?;
        }
        let out = child.wait_with_output().context("backend embedded: provisioning")?;
        if !out.status.success() {
            bail!("as `{user}`: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }
}
