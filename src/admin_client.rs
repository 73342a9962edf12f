//! The client side of the admin endpoint, for `switchyard status` and `switchyard reload`: one
//! HTTP/1.1 request to `admin.listen` of a running `switchyard up`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

/// Sends `method path` to the admin endpoint at `admin`: the answer's status and body, or, when
/// there is no endpoint or no answer within `timeout`, exit status 2 (the reason printed).
pub fn ask(
    admin: Option<SocketAddr>,
    method: http::Method,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<Result<(u16, String), ExitCode>> {
    let Some(admin) = admin else {
        eprintln!(
            "error: admin.listen: the config has no admin endpoint to ask (set admin.listen or --admin-listen)"
        );
        return Ok(Err(ExitCode::from(2)));
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("runtime")?;
    match runtime.block_on(async { tokio::time::timeout(timeout, request(admin, method, path)).await }) {
        Ok(Ok(answer)) => Ok(Ok(answer)),
        Ok(Err(error)) => {
            eprintln!("error: cannot ask http://{admin}{path} (is switchyard up running?): {error:#}");
            Ok(Err(ExitCode::from(2)))
        }
        Err(_) => {
            eprintln!("error: http://{admin}{path} did not answer within {timeout:?}");
            Ok(Err(ExitCode::from(2)))
        }
    }
}

async fn request(admin: SocketAddr, method: http::Method, path: &str) -> anyhow::Result<(u16, String)> {
    let stream = TcpStream::connect(admin).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, admin.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
