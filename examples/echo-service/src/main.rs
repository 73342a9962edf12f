//! A service component: listens on a port of its workload's virtual network and answers each
//! connection with what the client sent, byte for byte, once the client has half-closed (reading
//! the whole request first means a client that writes everything before reading never deadlocks
//! against a full buffer, whatever the request's size).
//!
//! Environment:
//! - `ECHO_LISTEN` — the address to listen on (default `127.0.0.1:7777`).
//! - `ECHO_GREETING` — bytes sent on each connection before the echo (default none), so a test
//!   can tell which workload's service answered.
//! - `ECHO_CRASH` — if set, the service exits with status 3 at start, printing this text to
//!   stderr (to exercise the host's restart backoff).
//! - `ECHO_CRASH_TIMES` — a count: the service exits with status 3 at start while the host says
//!   (`SWITCHYARD_RESTARTS`) it has been restarted fewer times in a row, then serves (a service
//!   that crashes a fixed number of times, then recovers).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    if let Ok(reason) = std::env::var("ECHO_CRASH") {
        eprintln!("echo-service: crashing on purpose: {reason}");
        std::process::exit(3);
    }
    if let Some(times) = std::env::var("ECHO_CRASH_TIMES").ok().and_then(|v| v.parse::<u32>().ok()) {
        let restarts =
            std::env::var("SWITCHYARD_RESTARTS").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        if restarts < times {
            eprintln!("echo-service: crashing on purpose, restart {restarts} of {times}");
            std::process::exit(3);
        }
    }
    let listen = std::env::var("ECHO_LISTEN").unwrap_or_else(|_| "127.0.0.1:7777".to_owned());
    let greeting = std::env::var("ECHO_GREETING").unwrap_or_default();
    let listener = match TcpListener::bind(&listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("echo-service: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("echo-service: listening on {listen}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = echo(stream, greeting.as_bytes()) {
                    eprintln!("echo-service: connection ended with an error: {e}");
                }
            }
            Err(e) => eprintln!("echo-service: accept failed: {e}"),
        }
    }
}

/// Reads until the client's end of file, sends the greeting and everything read, then closes.
fn echo(mut stream: TcpStream, greeting: &[u8]) -> std::io::Result<()> {
    let mut request = Vec::new();
    stream.read_to_end(&mut request)?;
    stream.write_all(greeting)?;
    stream.write_all(&request)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Write)
}
