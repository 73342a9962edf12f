//! The `switchyard` binary's library: the command line, the config, the wasm host, logs and
//! traces, and the wiring of `vnet`, `pooler` and `policy`.
//!
//! ```text
//!   switchyard (this crate) ── config, CLI, wasm host, wiring
//!        ├── switchyard-vnet   ── virtual loopback networks, forwards (→ policy)
//!        ├── switchyard-pooler ── MySQL pooling (knows nothing of wasmtime)
//!        └── switchyard-policy ── default-deny decisions (pure)
//! ```
//!
//! It does not implement protocols itself; the crates below do.

// One `unsafe` call is allowed, with its reason beside it: loading a component compiled by an
// earlier start (`host::components`). Everything else is safe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod admin_client;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod host;
pub mod map;
pub mod policy_check;
pub mod reload;
pub mod status;
pub mod telemetry;
