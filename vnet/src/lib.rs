//! Switchyard's per-workload virtual loopback network.
//!
//! ```text
//!   guest wasi:sockets ── vnet (this crate) ── listener of the same workload (in-process stream)
//!                                           └─ declared forward ── policy ── real socket
//! ```
//!
//! Built so far: the per-workload [`Network`] (bind, listen, accept, connect, wildcard binds,
//! backlogs, caps), its port accounting ([`ports`]) and the bounded in-memory streams of its
//! connections ([`pipe`]). Forwards and the `wasi:sockets` host follow (see `ARCHITECTURE.md`).
//! This crate knows nothing of MySQL or YAML.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod connection;
mod error;
mod network;
pub mod pipe;
pub mod ports;

pub use accept::Listener;
pub use connection::Connection;
pub use error::{BindError, ConnectError};
pub use network::{BoundPort, Limits, Network, Usage, is_virtual};
