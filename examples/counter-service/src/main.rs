//! A service component: a counter on a port of its workload's virtual network. Each connection
//! sends one line, `incr` (count one more and answer the new count) or `get` (answer the count);
//! anything else answers `error: ...`. The count lives in the instance's memory: a restart
//! starts it again from zero.
//!
//! Environment: `COUNTER_LISTEN` — the address to listen on (default `127.0.0.1:7000`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let listen = std::env::var("COUNTER_LISTEN").unwrap_or_else(|_| "127.0.0.1:7000".to_owned());
    let listener = match TcpListener::bind(&listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("counter-service: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("counter-service: listening on {listen}");
    let mut count: u64 = 0;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(stream, &mut count) {
                    eprintln!("counter-service: connection ended with an error: {e}");
                }
            }
            Err(e) => eprintln!("counter-service: accept failed: {e}"),
        }
    }
}

/// Reads one command line (at most 64 bytes) and answers it.
fn answer(stream: TcpStream, count: &mut u64) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(Read::take(&stream, 64)).read_line(&mut line)?;
    let reply = match line.trim() {
        "incr" => {
            *count += 1;
            count.to_string()
        }
        "get" => count.to_string(),
        other => format!("error: unknown command {other:?}; send incr or get"),
    };
    let mut stream = stream;
    stream.write_all(reply.as_bytes())?;
    stream.write_all(b"\n")?;
    stream.shutdown(std::net::Shutdown::Write)
}
