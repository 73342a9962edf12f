//! Headless Chromium for end-to-end tests: Debian's `chromium` driven over WebDriver by Debian's
//! `chromedriver` (package `chromium-driver`; `scripts/test.sh` installs both).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use super::free_port;

/// The Chromium flags for a closed, headless test machine (no sandbox as root, no background
/// connections that the machine would refuse, a fresh profile).
fn chromium_args(profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,700",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

/// A running `chromedriver`, killed when dropped.
pub struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    /// Starts `chromedriver` on a free loopback port, logging to `log`.
    pub fn start(log: &Path) -> ChromeDriver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (Debian package chromium-driver; scripts/test.sh installs it)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {addr} within 20s");
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver { child, url: format!("http://{addr}") }
    }

    /// A new headless Chromium session with a fresh profile in `profile`.
    pub async fn session(&self, profile: &Path) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": chromium_args(profile) }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
