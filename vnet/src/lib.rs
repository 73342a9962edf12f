//! Switchyard's per-workload virtual loopback network.
//!
//! ```text
//!   guest wasi:sockets ── vnet (this crate) ── listener of the same workload (in-process stream)
//!                                           └─ declared forward ── policy ── real socket
//! ```
//!
//! Built so far: [`ports`], the per-family port accounting with ephemeral allocation, and
//! [`pipe`], the bounded in-memory streams of virtual connections. The listener table, forwards
//! and the `wasi:sockets` host follow (see `ARCHITECTURE.md`). This crate knows nothing of MySQL
//! or YAML.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod pipe;
pub mod ports;
