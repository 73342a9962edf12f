//! Pages in a real browser: headless Chromium (Debian's `chromium`, driven over WebDriver by
//! Debian's `chromedriver`). The demo: acme's page adds an item through its form and finds it
//! listed. The admin endpoint's live page: the map of the config in force with live figures that
//! change without a page reload (pool sessions, denied egress, a reload's new tenant). Each takes
//! a screenshot into the test output directory (`target/tmp/browser/`).

mod support;

#[path = "../pooler/tests/support/mariadb.rs"]
#[allow(dead_code)] // shared with the pooler's tests; this one uses part of it
mod mariadb;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Locator;
use support::browser::ChromeDriver;
use support::demo::{DEMO_ENV, demo_config};
use support::{Switchyard, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_adds_an_item_through_the_form_and_finds_it_listed() {
    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser").join("demo");
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

/// The admin test's config: tenant acme with a gateway, an echo service and a pool published on
/// `publish`; `more` is appended to the tenants list.
fn admin_config(
    admin: SocketAddr,
    ingress: SocketAddr,
    publish: SocketAddr,
    db: &mariadb::Tenant,
    backend: SocketAddr,
    more: &str,
) -> String {
    format!(
        r#"
version: 1
admin: {{ listen: "{admin}" }}
tenants:
  - name: acme
    allowed_hosts: ["mysql://{backend}"]
{pools}    components:
      - name: web
        kind: http
        wasm: {gateway}
        ingress: {{ listen: "{ingress}", host: acme.localhost }}
      - name: echo
        kind: service
        wasm: {echo}
{more}"#,
        pools = support::server_pool(
            backend,
            &db.database,
            &db.user,
            &["max_connections: 2", &format!("publish: \"{publish}\"")]
        ),
        gateway = support::guest("http_gateway.wasm"),
        echo = support::guest("echo-service.wasm"),
    )
}

/// Waits (bounded) until the element `css` of the page shows `text`; its text then.
async fn wait_for_text(
    browser: &fantoccini::Client,
    css: &str,
    text: &str,
    switchyard: &Switchyard,
) -> String {
    let mut seen = String::new();
    for _ in 0..200 {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            seen = element.text().await.unwrap_or_default();
            if seen.contains(text) {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {text:?} within 20 s; it shows {seen:?}; log:\n{}", switchyard.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_draws_the_map_and_updates_its_figures_in_place() {
    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser").join("admin");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("test output folder");
    let server = mariadb::server();
    let db = server.tenant("e2e_admin_page", "pw-e2e-admin-page");
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let publish = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let env = [("E2E_POOL_PASSWORD", db.password.as_str())];
    let config = admin_config(admin, ingress, publish, &db, server.addr, "");
    let switchyard = Switchyard::start_with("admin_page", admin, &config, &env, &[]);
    switchyard.wait_for_log("service running", Duration::from_secs(60));

    let driver = ChromeDriver::start(&out.join("chromedriver.log"));
    let browser = driver.session(&out.join("profile")).await;
    browser.goto(&format!("http://{admin}/")).await.expect("load the admin page");
    // The map: the tenant, its components, its virtual network, its pool and the backend.
    let map = browser.find(Locator::Css("#map")).await.expect("the map").text().await.expect("map text");
    for part in
        ["tenant acme", "web", "echo", "virtual network", "pool main :", &format!("mysql://{}", server.addr)]
    {
        assert!(map.contains(part), "the map lacks {part:?}:\n{map}");
    }
    wait_for_text(&browser, "#live-acme__pool__main", "0 sessions", &switchyard).await;
    wait_for_text(&browser, "#live-acme__component__echo", "running", &switchyard).await;
    // A mark the page keeps only as long as it is not loaded again.
    browser.execute("window.notReloaded = true; return null;", vec![]).await.expect("set a mark");

    // Two sessions, each pinned to a backend connection by a user variable.
    let url = format!("mysql://{}:{}@{publish}/{}", db.user, db.password, db.database);
    let opts: mysql_async::Opts =
        mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).expect("url"))
            .prefer_socket(false)
            .into();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let mut conn = mysql_async::Conn::new(opts.clone()).await.expect("connect through the pool");
        mysql_async::prelude::Queryable::query_drop(&mut conn, "SET @pinned = 1").await.expect("pin");
        sessions.push(conn);
    }
    wait_for_text(&browser, "#live-acme__pool__main", "2 sessions", &switchyard).await;
    wait_for_text(&browser, "#live-acme__pool__main-2", "backend 2 in use, 0 idle, max 2", &switchyard).await;

    // Denied egress appears with its target.
    let (status, _) = support::request(ingress, "acme.localhost", "GET", "/connect/10.1.2.3:80", b"").await;
    assert_eq!(status, 502);
    let denials = wait_for_text(&browser, "#denials", "tcp://10.1.2.3:80", &switchyard).await;
    assert!(denials.contains("acme") && denials.contains("web"), "{denials}");
    wait_for_text(&browser, "#live-tenant-acme", "1 egress denied", &switchyard).await;

    // A reload adds a tenant: the page shows the new generation and map by itself.
    let globex = support::echo_tenant("globex", ingress);
    std::fs::write(
        switchyard.config_path(),
        admin_config(admin, ingress, publish, &db, server.addr, &globex),
    )
    .expect("write the new config");
    let reload = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("reload")
        .arg(switchyard.config_path())
        .output()
        .expect("switchyard reload");
    assert!(reload.status.success(), "{}", String::from_utf8_lossy(&reload.stderr));
    wait_for_text(&browser, "#generation", "2", &switchyard).await;
    wait_for_text(&browser, "#tenants", "2", &switchyard).await;
    wait_for_text(&browser, "#map", "tenant globex", &switchyard).await;
    wait_for_text(&browser, "#live-globex__component__echo", "running", &switchyard).await;
    // The acme sessions went on through the reload, and the page was never loaded again.
    wait_for_text(&browser, "#live-acme__pool__main", "2 sessions", &switchyard).await;
    // One tenant alone (`?tenant=`): only its figures; an unknown name is a 404.
    let (status, one) = support::request(admin, "admin", "GET", "/live.json?tenant=globex", b"").await;
    assert_eq!(status, 200, "{one}");
    assert!(one.contains("live-tenant-globex") && !one.contains("live-tenant-acme"), "{one}");
    assert_eq!(support::request(admin, "admin", "GET", "/?tenant=nobody", b"").await.0, 404);
    let kept = browser.execute("return window.notReloaded === true;", vec![]).await.expect("read the mark");
    assert_eq!(kept, serde_json::Value::Bool(true), "the page was loaded again");

    let screenshot = out.join("admin-live.png");
    browser.set_window_size(1600, 900).await.expect("window size");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    std::fs::write(&screenshot, png).expect("write the screenshot");
    println!("screenshot: {}", screenshot.display());
    browser.close().await.expect("close the browser");
    for conn in sessions {
        conn.disconnect().await.expect("quit");
    }
    let (status, log) = switchyard.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
}
