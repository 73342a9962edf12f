//! `switchyard status CONFIG`: asks a running `switchyard up` of that config (its admin
//! endpoint, `admin.listen`) whether it is ready, and prints its report: `ready`, or `not ready`
//! and one line per tenant, component or pool that is not, and why.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

/// How long the admin endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Prints the readiness report of the switchyard whose admin endpoint is `admin`; exit 0 when
/// ready, 1 when not, 2 when it cannot be asked.
pub fn run(admin: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let Some(admin) = admin else {
        eprintln!(
            "error: admin.listen: the config has no admin endpoint to ask (set admin.listen or --admin-listen)"
        );
        return Ok(ExitCode::from(2));
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("runtime")?;
    match runtime.block_on(async { tokio::time::timeout(TIMEOUT, healthz(admin)).await }) {
        Ok(Ok((status, body))) => {
            print!("{body}");
            Ok(if status == 200 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Ok(Err(error)) => {
            eprintln!("error: cannot ask http://{admin}/healthz (is switchyard up running?): {error:#}");
            Ok(ExitCode::from(2))
        }
        Err(_) => {
            eprintln!("error: http://{admin}/healthz did not answer within {TIMEOUT:?}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn healthz(admin: SocketAddr) -> anyhow::Result<(u16, String)> {
    let stream = TcpStream::connect(admin).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/healthz")
        .header(hyper::header::HOST, admin.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
