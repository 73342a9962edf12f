//! The end-to-end harness: builds the example guests once per test binary, runs the real
//! `switchyard up` binary on a config under the target dir, talks HTTP to its ingress and admin
//! endpoint, and inspects its sockets through `/proc`.

#![allow(dead_code)] // each test binary uses part of the harness

pub mod browser;
pub mod demo;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// The folder of the built example guests (`*.wasm`), built on first use.
pub fn guests() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target_dir = root.join("target/guests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        // From inside examples/, so that its .cargo/config.toml (guest-only rustflags) applies.
        let status = Command::new(cargo)
            .current_dir(root.join("examples"))
            .args(["build", "--target", "wasm32-wasip2"])
            .args(["--release", "--locked", "--target-dir"])
            .arg(&target_dir)
            .status()
            .expect("cannot run cargo to build the example guests");
        assert!(status.success(), "building the example guests failed: {status}");
        target_dir.join("wasm32-wasip2/release")
    })
}

/// The path of a built guest, e.g. `guest("echo-service.wasm")`.
pub fn guest(file: &str) -> String {
    guests().join(file).display().to_string()
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A running `switchyard up`, killed when dropped.
pub struct Switchyard {
    child: Option<Child>,
    dir: PathBuf,
    /// The admin endpoint's address.
    pub admin: SocketAddr,
}

impl Switchyard {
    /// Writes `config` (which must listen its admin endpoint on `admin`) to a fresh folder named
    /// after the test, starts `switchyard up` on it, and waits until the admin endpoint answers.
    pub fn start(test: &str, admin: SocketAddr, config: &str) -> Switchyard {
        Switchyard::start_with_env(test, admin, config, &[])
    }

    /// As [`Switchyard::start`], with extra environment variables (secrets the config references).
    pub fn start_with_env(test: &str, admin: SocketAddr, config: &str, env: &[(&str, &str)]) -> Switchyard {
        Switchyard::start_with(test, admin, config, env, &[])
    }

    /// Like [`Switchyard::start`], with more arguments for `switchyard up` (after the config).
    pub fn start_with_args(test: &str, admin: SocketAddr, config: &str, args: &[&str]) -> Switchyard {
        Switchyard::start_with(test, admin, config, &[], args)
    }

    /// Like [`Switchyard::start`], with extra environment variables and more arguments.
    pub fn start_with(
        test: &str,
        admin: SocketAddr,
        config: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Switchyard {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e").join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test folder");
        let config_path = dir.join("switchyard.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let log = File::create(dir.join("switchyard.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("up")
            .arg(&config_path)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start switchyard");
        let mut running = Switchyard { child: Some(child), dir, admin };
        running.wait_for_admin();
        running
    }

    fn wait_for_admin(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("switchyard exited with {status} during start; log:\n{}", self.log());
            }
            if std::net::TcpStream::connect(self.admin).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("switchyard's admin endpoint did not come up within 60s; log:\n{}", self.log());
    }

    /// The config file it runs.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("switchyard.yaml")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Everything the process wrote so far (its log and its guests' output).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("switchyard.log")).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `text`; panics with the log otherwise.
    pub fn wait_for_log(&self, text: &str, within: Duration) {
        self.wait_for_log_count(text, 1, within);
    }

    /// Waits (bounded) until the log contains `text` at least `count` times.
    pub fn wait_for_log_count(&self, text: &str, count: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().matches(text).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the log does not contain {text:?} {count} times after {within:?}; log:\n{}", self.log());
    }

    /// `GET /healthz`: status and body.
    pub async fn healthz(&self) -> (u16, String) {
        request(self.admin, "admin", "GET", "/healthz", b"").await
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
        assert!(sent.success(), "cannot signal switchyard");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("switchyard did not stop within 30s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The TCP sockets this process has in the LISTEN state (from `/proc/<pid>/fd` and
    /// `/proc/net/tcp{,6}`), whatever network namespace tricks a test might otherwise miss.
    pub fn listening_sockets(&self) -> BTreeSet<SocketAddr> {
        let pid = self.pid();
        let mut inodes = BTreeSet::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/<pid>/fd").flatten() {
            if let Ok(target) = std::fs::read_link(entry.path())
                && let Some(inode) =
                    target.to_str().and_then(|t| t.strip_prefix("socket:[")).and_then(|t| t.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
        let mut listening = BTreeSet::new();
        for (table, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            let Ok(text) = std::fs::read_to_string(table) else { continue };
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                    listening.insert(parse_proc_addr(fields[1], v6));
                }
            }
        }
        listening
    }
}

impl Drop for Switchyard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses `0100007F:1F90` (IPv4) or the 32-hex-digit IPv6 form, as `/proc/net/tcp*` write them.
fn parse_proc_addr(text: &str, v6: bool) -> SocketAddr {
    let (ip, port) = text.split_once(':').expect("proc address");
    let port = u16::from_str_radix(port, 16).expect("proc port");
    let ip = if v6 {
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).expect("proc ipv6");
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(ip, 16).expect("proc ipv4").to_ne_bytes()))
    };
    SocketAddr::new(ip, port)
}

/// One HTTP/1.1 request to `addr` with `Host: host`; returns the status and the body as text.
pub async fn request(addr: SocketAddr, host: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let (status, body) = request_bytes(addr, host, method, path, body).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One HTTP/1.1 request to `addr` with `Host: host`; returns the status and the body.
pub async fn request_bytes(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect to switchyard");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
        .await
        .expect("an answer within 30s")
        .expect("an HTTP answer");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("response body").to_bytes();
    (status, body.to_vec())
}

/// The YAML of a well-behaved tenant `name`: the gateway on `ingress` for host `name.localhost`,
/// and an echo service greeting with `name:` (a tenants-list item, indented for `tenants:`).
pub fn echo_tenant(name: &str, ingress: SocketAddr) -> String {
    format!(
        r#"
  - name: {name}
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: {name}.localhost }}
      - name: echo
        kind: service
        wasm: {echo}
        env: {{ ECHO_GREETING: "{name}:" }}
"#,
        gateway = guest("http_gateway.wasm"),
        echo = guest("echo-service.wasm"),
    )
}

/// The YAML of a tenant `name` with only the gateway on `ingress` for host `name.localhost`, and
/// `limits` (the inside of its `limits: {...}`) — the shape of a hostile tenant (a tenants-list
/// item, indented for `tenants:`).
pub fn gateway_tenant(name: &str, ingress: SocketAddr, limits: &str) -> String {
    format!(
        r#"
  - name: {name}
    allowed_hosts: []
    limits: {{ {limits} }}
    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: {name}.localhost }}"#,
        gateway = guest("http_gateway.wasm"),
    )
}

/// A config of `tenants` tenants (`t0`, `t1`, ...) that each run one `echo-service`, with its
/// admin endpoint on `admin` and its state in `state_dir`.
pub fn echo_service_tenants(admin: SocketAddr, state_dir: &Path, tenants: usize) -> String {
    let mut yaml = format!(
        "version: 1\nstate_dir: \"{}\"\nadmin: {{ listen: \"{admin}\" }}\ntenants:\n",
        state_dir.display()
    );
    for i in 0..tenants {
        yaml.push_str(&format!(
            "  - name: t{i}\n    allowed_hosts: []\n    components:\n      - name: echo\n        kind: service\n        wasm: {}\n",
            guest("echo-service.wasm")
        ));
    }
    yaml
}

/// Sends `count` echo requests to tenant `name` of [`echo_tenant`], one after another; each must
/// be answered correctly within `within` (a generous bound: figures belong in benchmarks). The
/// longest one took.
pub async fn assert_echoes(ingress: SocketAddr, name: &str, count: usize, within: Duration) -> Duration {
    let host = format!("{name}.localhost");
    let mut slowest = Duration::ZERO;
    for i in 0..count {
        let body = format!("ping {i}");
        let started = Instant::now();
        let answer = tokio::time::timeout(within, request(ingress, &host, "POST", "/echo", body.as_bytes()))
            .await
            .unwrap_or_else(|_| panic!("{name}: request {i} waited more than {within:?}"));
        assert_eq!(answer, (200, format!("{name}:{body}")), "{name}: request {i}");
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// The YAML of a tenant's `pools:` key (indented for a tenants-list item) with one pool `main`
/// on the MySQL server at `backend`, logging in as `user` to `database` with the password in
/// `${env:E2E_POOL_PASSWORD}`; each of `more` is one more key of the pool (`max_connections: 2`).
pub fn server_pool(backend: SocketAddr, database: &str, user: &str, more: &[&str]) -> String {
    let mut yaml = format!(
        "    pools:\n      - name: main\n        backend: \"mysql://{backend}\"\n        database: {database}\n        user: {user}\n        password: ${{env:E2E_POOL_PASSWORD}}\n"
    );
    for key in more {
        yaml.push_str(&format!("        {key}\n"));
    }
    yaml
}
