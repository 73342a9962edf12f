//! `switchyard`: a sidecar for WebAssembly hosts. See `README.md` and `ARCHITECTURE.md`.
//!
//! `main` only parses the command line and hands over; exit status 0 is success, 1 a denied
//! policy check, 2 an invalid config, entry, target or usage.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = switchyard::cli::Cli::parse();
    let telemetry = match switchyard::telemetry::Telemetry::init() {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let code = match cli.run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    };
    // Sends the traces still buffered before exiting.
    drop(telemetry);
    code
}
