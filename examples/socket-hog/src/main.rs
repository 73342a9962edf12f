//! A service component that misbehaves on purpose, to show that a guest hits its own tenant's
//! limits (with clear errors) and nobody else's. `HOG_MODE` picks how:
//!
//! - `sockets` — once `HOG_TARGET` (default `127.0.0.1:7777`) listens (waiting at most 10 s),
//!   connects to it again and again, keeping every connection, until a connect fails (the
//!   tenant's `limits.max_sockets`).
//! - `bind` — binds `127.0.0.1:1`, `:2`, ... keeping every listener, until a bind fails (the
//!   socket cap), or all 65,535 are taken; then asks for any port once more.
//! - `backlog` — listens on `127.0.0.1:7100` with the default backlog, never accepts, and
//!   connects to itself until a connect fails (the backlog is full).
//! - `flood` — listens on `127.0.0.1:7200`, never accepts (so never reads), connects to itself
//!   and writes 16 KiB chunks, printing `socket-hog: flood: <n> bytes written` after each, until
//!   a write blocks for good on the full stream window.
//! - `spin` — computes without pause (no host call for seconds at a time) for `HOG_HOLD_SECONDS`.
//! - `pingpong` — listens on `127.0.0.1:7300`, connects to itself, and sends one byte back and
//!   forth with no pause for `HOG_HOLD_SECONDS`: every read finds its byte already there.
//! - `churn` — listens on `127.0.0.1:7400` and connects to itself, accepts and closes both ends,
//!   again and again with no pause for `HOG_HOLD_SECONDS`.
//!
//! - `deny` — connects to `HOG_TARGET` (default `10.9.9.9:80`, which its policy denies) and looks
//!   up `denied.example` as fast as it can for `HOG_HOLD_SECONDS`.
//! - `shout` — prints as fast as it can for `HOG_HOLD_SECONDS`: lines that try to pass for the
//!   host's own (an escape sequence, a carriage return, a newline and a fake `INFO` line).
//!
//! `spin`, `pingpong`, `churn`, `deny` and `shout` print `socket-hog: <mode>: started` first, and their report
//! when the time is up.
//!
//! It prints one line with what it got (`socket-hog: <mode>: <n> ..., then <error>`), then holds
//! everything for `HOG_HOLD_SECONDS` (default 600) and exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Attempts at most, whatever the caps (every loop is bounded).
const MAX_ATTEMPTS: u32 = 70_000;

fn main() {
    let mode = std::env::var("HOG_MODE").unwrap_or_default();
    let hold: u64 = std::env::var("HOG_HOLD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let mut kept_streams = Vec::new();
    let mut kept_listeners = Vec::new();
    let report = match mode.as_str() {
        "sockets" => {
            let target = std::env::var("HOG_TARGET").unwrap_or_else(|_| "127.0.0.1:7777".to_owned());
            // The target is a service of the same tenant, started beside this one: wait (bounded)
            // until it listens, so that the count below is of the cap, not of the start-up race.
            for _ in 0..200 {
                match TcpStream::connect(&target) {
                    Ok(first) => {
                        drop(first);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(_) => break,
                }
            }
            let mut outcome = format!("{MAX_ATTEMPTS} connections open, no error");
            for n in 0..MAX_ATTEMPTS {
                match TcpStream::connect(&target) {
                    Ok(stream) => kept_streams.push(stream),
                    Err(e) => {
                        outcome = format!("{n} connections open, then {e}");
                        break;
                    }
                }
            }
            outcome
        }
        "bind" => {
            let mut outcome = String::new();
            for port in 1..=u16::MAX {
                match TcpListener::bind(("127.0.0.1", port)) {
                    Ok(listener) => kept_listeners.push(listener),
                    Err(e) => {
                        outcome = format!("{} ports bound, then {e} (port {port})", port - 1);
                        break;
                    }
                }
            }
            if outcome.is_empty() {
                // Every port is taken: one more, anywhere, must fail.
                outcome = match TcpListener::bind("127.0.0.1:0") {
                    Ok(_) => "every port bound, and one more".to_owned(),
                    Err(e) => format!("every port bound, then {e} (any port)"),
                };
            }
            outcome
        }
        "backlog" => match TcpListener::bind("127.0.0.1:7100") {
            Err(e) => format!("cannot listen: {e}"),
            Ok(listener) => {
                kept_listeners.push(listener);
                let mut outcome = format!("{MAX_ATTEMPTS} connects queued, no error");
                for n in 0..MAX_ATTEMPTS {
                    match TcpStream::connect("127.0.0.1:7100") {
                        Ok(stream) => kept_streams.push(stream),
                        Err(e) => {
                            outcome = format!("{n} connects queued, then {e}");
                            break;
                        }
                    }
                }
                outcome
            }
        },
        "spin" => {
            println!("socket-hog: spin: started");
            let until = Instant::now() + Duration::from_secs(hold);
            let mut x = 0u64;
            let mut rounds = 0u64;
            // Bounded by the clock, read once per 2^24 steps of pure computation.
            while Instant::now() < until {
                for i in 0..(1u64 << 24) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                }
                rounds += 1;
            }
            format!("{rounds} rounds of 2^24 steps computed ({x:x})")
        }
        "pingpong" => {
            println!("socket-hog: pingpong: started");
            match ping_pong(Duration::from_secs(hold)) {
                Ok(exchanges) => format!("{exchanges} one-byte exchanges"),
                Err(e) => format!("ping-pong failed: {e}"),
            }
        }
        "churn" => {
            println!("socket-hog: churn: started");
            match churn(Duration::from_secs(hold)) {
                Ok(connections) => format!("{connections} connections opened, accepted and closed"),
                Err(e) => format!("churn failed: {e}"),
            }
        }
        "deny" => {
            use std::net::ToSocketAddrs;
            println!("socket-hog: deny: started");
            let target = std::env::var("HOG_TARGET").unwrap_or_else(|_| "10.9.9.9:80".to_owned());
            let until = Instant::now() + Duration::from_secs(hold);
            let (mut denied, mut tries) = (0u64, 0u64);
            while Instant::now() < until {
                for _ in 0..100 {
                    tries += 2;
                    denied += u64::from(TcpStream::connect(&target).is_err());
                    denied += u64::from(("denied.example", 80).to_socket_addrs().is_err());
                }
            }
            format!("{denied} of {tries} connects and lookups denied")
        }
        "shout" => {
            println!("socket-hog: shout: started");
            let until = Instant::now() + Duration::from_secs(hold);
            let mut lines = 0u64;
            while Instant::now() < until {
                for _ in 0..1000 {
                    println!(
                        "\x1b[2K\rFAKE-HOST-LINE {lines}\n2026-01-01T00:00:00Z  INFO switchyard::host: FAKE-HOST-LINE"
                    );
                    lines += 1;
                }
            }
            format!("{lines} lines printed")
        }
        "flood" => {
            let listener = TcpListener::bind("127.0.0.1:7200");
            let stream = TcpStream::connect("127.0.0.1:7200");
            match (listener, stream) {
                (Ok(listener), Ok(mut stream)) => {
                    kept_listeners.push(listener);
                    let chunk = [0x46u8; 16 * 1024];
                    let mut written = 0usize;
                    // Bounded: 64 MiB at most, far past any window; a write blocks long before.
                    for _ in 0..4096 {
                        if let Err(e) = stream.write_all(&chunk) {
                            println!("socket-hog: flood: write failed after {written} bytes: {e}");
                            break;
                        }
                        written += chunk.len();
                        println!("socket-hog: flood: {written} bytes written");
                    }
                    format!("{written} bytes written without blocking")
                }
                (listener, stream) => format!("cannot set up: {:?} {:?}", listener.err(), stream.err()),
            }
        }
        other => {
            eprintln!(
                "socket-hog: unknown HOG_MODE `{other}` (sockets, bind, backlog, flood, spin, pingpong, churn, deny or shout)"
            );
            std::process::exit(2);
        }
    };
    println!("socket-hog: {mode}: {report}");
    std::thread::sleep(Duration::from_secs(hold));
    drop((kept_streams, kept_listeners));
}

/// Sends one byte back and forth between the two ends of a connection to itself until `time` is
/// up (the clock read once per 4,096 exchanges); how many exchanges were made.
/// Connects to itself, accepts and closes, for `time`; how many connections.
fn churn(time: Duration) -> std::io::Result<u64> {
    let listener = TcpListener::bind("127.0.0.1:7400")?;
    let until = Instant::now() + time;
    let mut connections = 0u64;
    while Instant::now() < until {
        for _ in 0..256 {
            let client = TcpStream::connect("127.0.0.1:7400")?;
            let (server, _) = listener.accept()?;
            drop((client, server));
        }
        connections += 256;
    }
    Ok(connections)
}

fn ping_pong(time: Duration) -> std::io::Result<u64> {
    let listener = TcpListener::bind("127.0.0.1:7300")?;
    let mut client = TcpStream::connect("127.0.0.1:7300")?;
    let (mut server, _) = listener.accept()?;
    let until = Instant::now() + time;
    let mut byte = [0u8; 1];
    let mut exchanges = 0u64;
    while Instant::now() < until {
        for _ in 0..4096 {
            client.write_all(&byte)?;
            server.read_exact(&mut byte)?;
            server.write_all(&byte)?;
            client.read_exact(&mut byte)?;
            byte[0] = byte[0].wrapping_add(1);
        }
        exchanges += 4096;
    }
    Ok(exchanges)
}
