//! The admin endpoint: `GET /` (the live page, `admin_page`), `GET /healthz` (200 `ready`, or
//! 503 `not ready` with one line per problem naming the tenant and component and why; then the
//! config generation), `GET /metrics` (Prometheus text) and `POST /reload` (reads the config file
//! again and applies it; 200 with what changed, or 422 with every error and nothing changed).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use wasmtime_wasi_http::io::TokioIo;

use super::ReloadRequest;
use super::admin_page;
use super::health::Health;
use super::listener::{Listener, http1_server};
use super::live::Live;
use super::metrics::Metrics;

/// The longest a `POST /reload` waits for its outcome (a reload compiles changed components).
const RELOAD_ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// What the admin endpoint answers from. Cheap to clone.
#[derive(Clone)]
pub struct AdminEndpoint {
    health: Health,
    metrics: Metrics,
    live: Live,
    reloads: mpsc::Sender<ReloadRequest>,
}

/// One answer: status, content type, body.
type Answer = (u16, &'static str, String);

const TEXT: &str = "text/plain; charset=utf-8";

impl AdminEndpoint {
    /// An endpoint reporting `health`, `metrics` and the generation in `live`, and queueing
    /// reloads on `reloads` (bounded).
    pub fn new(health: Health, metrics: Metrics, live: Live, reloads: mpsc::Sender<ReloadRequest>) -> Self {
        AdminEndpoint { health, metrics, live, reloads }
    }

    async fn answer(&self, method: &http::Method, path: &str, query: Option<&str>) -> Answer {
        if matches!(path, "/" | "/live.json" | "/map.svg") && method == http::Method::GET {
            return self.live_page(path, query);
        }
        match (method, path) {
            (&http::Method::GET, "/healthz") => {
                let status = if self.health.is_ready() { 200 } else { 503 };
                let body =
                    format!("{}config generation {}\n", self.health.report(), self.live.view().generation);
                (status, TEXT, body)
            }
            (&http::Method::GET, "/metrics") => {
                (200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render())
            }
            (&http::Method::GET, "/live.js") => {
                (200, "text/javascript; charset=utf-8", admin_page::SCRIPT.to_owned())
            }
            (&http::Method::POST, "/reload") => self.reload().await,
            (_, "/reload") => (405, TEXT, "use POST /reload (switchyard reload CONFIG does)\n".to_owned()),
            (_, other) => {
                (404, TEXT, format!("no admin page at {other}; try /, /healthz, /metrics or POST /reload\n"))
            }
        }
    }

    /// The live page, its figures or its map: of every tenant, or of the one `?tenant=NAME`
    /// names (an unknown name is a 404, so that only a tenant's own name reaches the page).
    fn live_page(&self, path: &str, query: Option<&str>) -> Answer {
        let mut view = self.live.view();
        let wanted =
            query.into_iter().flat_map(|q| q.split('&')).find_map(|pair| pair.strip_prefix("tenant="));
        if let Some(name) = wanted {
            match view.only(name) {
                Some(one) => view = std::sync::Arc::new(one),
                None => {
                    return (404, TEXT, format!("no tenant named `{}` runs here\n", name.escape_default()));
                }
            }
        }
        match path {
            "/live.json" => (200, "application/json", admin_page::live_json(&view, &self.health)),
            "/map.svg" => (200, "image/svg+xml", crate::map::layout::svg(&view.config)),
            _ => (200, "text/html; charset=utf-8", admin_page::page(&view, wanted)),
        }
    }

    async fn reload(&self) -> Answer {
        let (reply, outcome) = oneshot::channel();
        if self.reloads.try_send(ReloadRequest { reply: Some(reply) }).is_err() {
            return (503, TEXT, "reloads are already queued; try again when they are done\n".to_owned());
        }
        match tokio::time::timeout(RELOAD_ANSWER_TIMEOUT, outcome).await {
            Ok(Ok(Ok(summary))) => (200, TEXT, format!("reloaded: {summary}\n")),
            Ok(Ok(Err(errors))) => (
                422,
                TEXT,
                format!(
                    "reload rejected; the config in force is unchanged (generation {}):\n{}\n",
                    self.live.view().generation,
                    errors.join("\n")
                ),
            ),
            Ok(Err(_)) => (503, TEXT, "switchyard is shutting down\n".to_owned()),
            Err(_) => (
                504,
                TEXT,
                format!(
                    "the reload did not finish within {RELOAD_ANSWER_TIMEOUT:?}; its outcome will be logged\n"
                ),
            ),
        }
    }
}

/// Binds `addr` and serves `endpoint` until the returned task is aborted.
pub async fn serve(addr: SocketAddr, endpoint: AdminEndpoint) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("admin.listen: cannot listen on {addr}"))?;
    tracing::info!(%addr, "admin endpoint listening (/ live page, /healthz, /metrics, POST /reload)");
    let listener = Listener::new(listener, "admin");
    Ok(tokio::spawn(async move {
        loop {
            let (client, _, connection) = listener.accept().await;
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let endpoint = endpoint.clone();
                        async move {
                            let (status, content_type, body) = endpoint
                                .answer(request.method(), request.uri().path(), request.uri().query())
                                .await;
                            let mut response = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                            let headers = response.headers_mut();
                            headers.insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static(content_type),
                            );
                            // The page runs only its own script and talks only to this endpoint.
                            headers.insert(
                                http::header::CONTENT_SECURITY_POLICY,
                                http::HeaderValue::from_static(
                                    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                                ),
                            );
                            headers.insert(
                                http::header::CACHE_CONTROL,
                                http::HeaderValue::from_static("no-store"),
                            );
                            *response.status_mut() =
                                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                            Ok::<_, Infallible>(response)
                        }
                    },
                );
                let _ = http1_server().serve_connection(TokioIo::new(client), service).await;
                drop(connection);
            });
        }
    }))
}

/// Binds the SQL admin interface (`admin.sql`) and serves it until the returned task is aborted.
/// The returned `Admin` is the one it serves: a reload replaces its pools there.
pub async fn serve_sql(
    sql: &crate::config::AdminSql,
    pools: Vec<switchyard_pooler::admin::AdminPool>,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, switchyard_pooler::admin::Admin)> {
    let listener = TcpListener::bind(sql.listen)
        .await
        .with_context(|| format!("admin.sql.listen: cannot listen on {}", sql.listen))?;
    let admin = switchyard_pooler::admin::Admin::new(
        pools,
        sql.user.clone(),
        sql.password.expose().as_bytes().to_vec(),
        std::time::Duration::from_secs(10),
    );
    tracing::info!(addr = %sql.listen, user = sql.user, "SQL admin interface listening (SHOW POOLS, CLIENTS, SERVERS, STATS)");
    let listener = Listener::new(listener, "admin.sql");
    let serving = admin.clone();
    let task = tokio::spawn(async move {
        let admin = serving;
        loop {
            let (client, peer, connection) = listener.accept().await;
            let admin = admin.clone();
            tokio::spawn(async move {
                admin.serve(client, &peer.to_string()).await;
                drop(connection);
            });
        }
    });
    Ok((task, admin))
}
