//! The admin endpoint: `GET /healthz` (200 `ready`, or 503 `not ready` with one line per
//! problem naming the tenant and component and why) and `GET /metrics` (Prometheus text).

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use http_body_util::Full;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

use super::health::Health;
use super::listener::{Listener, http1_server};
use super::metrics::Metrics;

/// Binds `addr` and serves the admin endpoint until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    metrics: Metrics,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("admin.listen: cannot listen on {addr}"))?;
    tracing::info!(%addr, "admin endpoint listening (/healthz, /metrics)");
    let listener = Listener::new(listener, "admin");
    Ok(tokio::spawn(async move {
        loop {
            let (client, _, connection) = listener.accept().await;
            let (health, metrics) = (health.clone(), metrics.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let (health, metrics) = (health.clone(), metrics.clone());
                        async move {
                            let (status, body) = match request.uri().path() {
                                "/healthz" if health.is_ready() => (200, health.report()),
                                "/healthz" => (503, health.report()),
                                "/metrics" => (200, metrics.render()),
                                other => {
                                    (404, format!("no admin page at {other}; try /healthz or /metrics\n"))
                                }
                            };
                            let content_type = if request.uri().path() == "/metrics" {
                                "text/plain; version=0.0.4; charset=utf-8"
                            } else {
                                "text/plain; charset=utf-8"
                            };
                            let mut response = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                            response.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static(content_type),
                            );
                            *response.status_mut() =
                                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                            Ok::<_, Infallible>(response)
                        }
                    });
                let _ = http1_server().serve_connection(TokioIo::new(client), service).await;
                drop(connection);
            });
        }
    }))
}

/// Binds the SQL admin interface (`admin.sql`) and serves it until the returned task is aborted.
pub async fn serve_sql(
    sql: &crate::config::AdminSql,
    pools: Vec<switchyard_pooler::admin::AdminPool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
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
    Ok(tokio::spawn(async move {
        loop {
            let (client, peer, connection) = listener.accept().await;
            let admin = admin.clone();
            tokio::spawn(async move {
                admin.serve(client, &peer.to_string()).await;
                drop(connection);
            });
        }
    }))
}
