//! The demo in a real browser: headless Chromium (Debian's `chromium`, driven over WebDriver by
//! Debian's `chromedriver`) loads acme's page, adds an item through the form, finds it listed,
//! and takes a screenshot into the test output directory (`target/tmp/browser/`).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use support::demo::{DEMO_ENV, demo_config};
use support::{Switchyard, free_port};

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
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start(log: &Path) -> ChromeDriver {
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

    async fn session(&self, profile: &Path) -> Client {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_adds_an_item_through_the_form_and_finds_it_listed() {
    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("test output folder");
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let switchyard = Switchyard::start_with_env(
        "browser",
        admin,
        &demo_config(admin, ingress, &out.join("state")),
        &DEMO_ENV,
    );
    switchyard.wait_for_log("switchyard is up", Duration::from_secs(60));

    let driver = ChromeDriver::start(&out.join("chromedriver.log"));
    let browser = driver.session(&out.join("profile")).await;
    // Chromium resolves every `*.localhost` name to loopback itself.
    let page = format!("http://acme.localhost:{}/", ingress.port());
    browser.goto(&page).await.expect("load acme's page");
    let title = browser.find(Locator::Css("h1")).await.expect("the page's heading");
    assert_eq!(title.text().await.expect("heading text"), "Items of acme");

    let name = "added from Chromium";
    browser
        .find(Locator::Css("input[name=name]"))
        .await
        .expect("the form's input")
        .send_keys(name)
        .await
        .expect("type");
    browser.find(Locator::Id("add")).await.expect("the Add button").click().await.expect("click Add");
    // The form posts, the component answers 303 back to `/`, the list shows the new item.
    let item = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(&format!("//li[contains(., '{name}')]")))
        .await
        .unwrap_or_else(|e| panic!("the new item is not listed: {e}; log:\n{}", switchyard.log()));
    assert!(item.text().await.expect("item text").starts_with(name));
    assert_eq!(
        browser.current_url().await.expect("url").as_str(),
        page,
        "the form did not redirect back to the page"
    );

    let screenshot = out.join("acme-page.png");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    std::fs::write(&screenshot, png).expect("write the screenshot");
    println!("screenshot: {}", screenshot.display());
    browser.close().await.expect("close the browser");

    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}
