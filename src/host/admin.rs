//! The admin endpoint: `GET /healthz` (200 `ready`, or 503 `not ready` with one line per
//! problem naming the tenant and component and why). Metrics join it with the pooler.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use http_body_util::Full;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

use super::health::Health;

/// Binds `addr` and serves the admin endpoint until the returned task is aborted.
pub async fn serve(addr: SocketAddr, health: Health) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("admin.listen: cannot listen on {addr}"))?;
    tracing::info!(%addr, "admin endpoint listening (/healthz)");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { continue };
            let health = health.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let health = health.clone();
                        async move {
                            let (status, body) = match request.uri().path() {
                                "/healthz" if health.is_ready() => (200, health.report()),
                                "/healthz" => (503, health.report()),
                                other => (404, format!("no admin page at {other}; try /healthz\n")),
                            };
                            let mut response = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                            *response.status_mut() =
                                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                            Ok::<_, Infallible>(response)
                        }
                    });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(client), service).await;
            });
        }
    }))
}
