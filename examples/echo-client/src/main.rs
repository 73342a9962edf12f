//! A command component that measures connect + echo round trips from inside a guest: each round
//! connects to `ECHO_ADDR`, writes a 64-byte message, reads the 64 bytes echoed back, checks them
//! and closes. The host runs the same component over the virtual network and over real sockets
//! (`vnet/benches/guest_echo.rs`), so the two figures differ only in the socket layer.
//!
//! Environment:
//! - `ECHO_ADDR` — where the echo server listens (default `127.0.0.1:7777`).
//! - `ECHO_ROUNDS` — how many round trips (default 1000).
//! - `ECHO_HALF_CLOSE` — if set, the client half-closes after writing (for a server that echoes
//!   once the request has ended, such as `echo-service`).
//!
//! Prints `rounds=N micros=T` on success; exits with status 1 and the error on the first failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

const MESSAGE: [u8; 64] = [0x42; 64];

fn main() {
    let addr = std::env::var("ECHO_ADDR").unwrap_or_else(|_| "127.0.0.1:7777".to_owned());
    let rounds: u32 = match std::env::var("ECHO_ROUNDS").map(|v| v.parse()) {
        Err(_) => 1000,
        Ok(Ok(rounds)) => rounds,
        Ok(Err(e)) => fail(&format!("ECHO_ROUNDS is not a count: {e}")),
    };
    let start = Instant::now();
    for round in 0..rounds {
        if let Err(e) = round_trip(&addr) {
            fail(&format!("round {round} to {addr}: {e}"));
        }
    }
    println!("rounds={rounds} micros={}", start.elapsed().as_micros());
}

fn round_trip(addr: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(&MESSAGE)?;
    if std::env::var_os("ECHO_HALF_CLOSE").is_some() {
        stream.shutdown(std::net::Shutdown::Write)?;
    }
    let mut back = [0u8; 64];
    stream.read_exact(&mut back)?;
    if back != MESSAGE {
        return Err(std::io::Error::other("the echo differs from the message"));
    }
    Ok(())
}

fn fail(message: &str) -> ! {
    eprintln!("echo-client: {message}");
    std::process::exit(1);
}
