//! An http component (one instance per request) that reaches other things from inside its
//! workload, so each egress path of the host can be exercised end to end:
//!
//! - `POST /echo` — connects to `127.0.0.1:$ECHO_PORT` (default 7777) on the virtual network,
//!   sends the request body, half-closes, and answers `200` with everything the service sent.
//! - `GET /connect/<addr>` — connects to `<addr>` (`ip:port` or `name:port`) and answers `200`
//!   `connected`, or `502` with the error kind (`PermissionDenied`, `ConnectionRefused`, ...).
//! - `GET /lookup/<name>` — resolves `<name>` and answers `200` with the addresses, one per
//!   line, or `502` with the error.
//! - `GET /fetch/<url>` — sends an outgoing `GET <url>` through `wasi:http` and answers with its
//!   status and body, or `502` with the `wasi:http` error code.
//! - `GET /panic` — traps before answering (the host must not show the trap to the client).
//! - `GET /sleep/<seconds>` — sleeps, then answers `200` (a slow handler).
//! - `GET /linger/<seconds>` — answers `200` at once, then sleeps before returning (a handler
//!   that holds its instance after answering).
//! - `GET /alloc/<mib>` — allocates and touches `<mib>` MiB, holds them a second, then answers
//!   `200` (or traps when its memory cannot grow).
//!
//! Anything else answers `404`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

struct Gateway;

wasip2::http::proxy::export!(Gateway);

impl wasip2::exports::http::incoming_handler::Guest for Gateway {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (status, body) = if path == "/echo" {
            match read_body(&request) {
                Ok(body) => echo(&body),
                Err(e) => (400, format!("cannot read the request body: {e}").into_bytes()),
            }
        } else if let Some(addr) = path.strip_prefix("/connect/") {
            connect(addr)
        } else if let Some(name) = path.strip_prefix("/lookup/") {
            lookup(name)
        } else if let Some(url) = path.strip_prefix("/fetch/") {
            fetch(url)
        } else if path == "/panic" {
            panic!("http-gateway: panicking on purpose at /panic");
        } else if let Some(seconds) = path.strip_prefix("/sleep/").and_then(|s| s.parse().ok()) {
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            (200, b"slept\n".to_vec())
        } else if let Some(mib) = path.strip_prefix("/alloc/").and_then(|s| s.parse::<usize>().ok()) {
            let mut held = vec![0u8; mib << 20];
            for page in held.chunks_mut(4096) {
                page[0] = 1;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
            let touched: usize = held.chunks(4096).map(|page| usize::from(page[0])).sum();
            (200, format!("allocated {} MiB\n", (touched * 4096) >> 20).into_bytes())
        } else if let Some(seconds) = path.strip_prefix("/linger/").and_then(|s| s.parse().ok()) {
            respond(out, 200, b"answered; lingering\n");
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            return;
        } else {
            (404, format!("no such route: {path}\n").into_bytes())
        };
        respond(out, status, &body);
    }
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|()| "body already consumed".to_owned())?;
    let mut stream = body.stream().map_err(|()| "body stream already taken".to_owned())?;
    let mut data = Vec::new();
    stream.read_to_end(&mut data).map_err(|e| e.to_string())?;
    drop(stream);
    Ok(data)
}

fn echo(body: &[u8]) -> (u16, Vec<u8>) {
    let port = std::env::var("ECHO_PORT").unwrap_or_else(|_| "7777".to_owned());
    let addr = format!("127.0.0.1:{port}");
    let result = (|| {
        let mut stream = TcpStream::connect(&addr)?;
        stream.write_all(body)?;
        stream.shutdown(Shutdown::Write)?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok::<_, std::io::Error>(reply)
    })();
    match result {
        Ok(reply) => (200, reply),
        Err(e) => (502, format!("echo via {addr}: {:?}: {e}\n", e.kind()).into_bytes()),
    }
}

fn connect(addr: &str) -> (u16, Vec<u8>) {
    match TcpStream::connect(addr) {
        Ok(_) => (200, b"connected\n".to_vec()),
        Err(e) => (502, format!("{:?}\n", e.kind()).into_bytes()),
    }
}

fn lookup(name: &str) -> (u16, Vec<u8>) {
    match (name, 0).to_socket_addrs() {
        Ok(addrs) => {
            let text: String = addrs.map(|a| format!("{}\n", a.ip())).collect();
            (200, text.into_bytes())
        }
        Err(e) => (502, format!("{:?}: {e}\n", e.kind()).into_bytes()),
    }
}

fn fetch(url: &str) -> (u16, Vec<u8>) {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return (400, b"fetch needs an http:// or https:// URL\n".to_vec());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let set = request
        .set_method(&Method::Get)
        .and(request.set_scheme(Some(&scheme)))
        .and(request.set_authority(Some(authority)))
        .and(request.set_path_with_query(Some(path)));
    if set.is_err() {
        return (400, format!("invalid URL: {url}\n").into_bytes());
    }
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return (502, format!("{code:?}\n").into_bytes()),
    };
    let response = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    match response {
        Ok(Ok(response)) => {
            let status = response.status();
            let mut data = Vec::new();
            if let Ok(body) = response.consume()
                && let Ok(mut stream) = body.stream()
                && let Err(e) = stream.read_to_end(&mut data)
            {
                return (502, format!("reading the response body: {e}\n").into_bytes());
            }
            (status, data)
        }
        Ok(Err(code)) => (502, format!("{code:?}\n").into_bytes()),
        Err(()) => (502, b"the response was already taken\n".to_vec()),
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        let _ = stream.write_all(body);
        let _ = stream.flush();
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
