//! Switchyard's per-workload virtual loopback network.
//!
//! ```text
//!   guest wasi:sockets ── vnet (this crate) ── listener of the same workload (in-process stream)
//!                                           └─ declared forward ── policy ── real socket
//! ```
//!
//! - [`Network`]: one workload's virtual addresses (bind, listen, accept, connect, wildcard binds,
//!   backlogs, caps), its port accounting ([`ports`]) and in-memory streams ([`pipe`]).
//! - [`wasi`]: the `wasi:sockets` host that guests see, over a `Network`.
//! - [`egress`]: the policy gate for everything that leaves a network, with [`dns`] resolution
//!   and [`relay`] of virtual streams onto real connections.
//!
//! This crate knows nothing of MySQL or YAML.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod connection;
pub mod dial;
pub mod dns;
pub mod egress;
mod error;
pub mod forward;
pub mod log_budget;
mod network;
pub mod pipe;
pub mod ports;
pub mod relay;
pub mod tls;
pub mod wasi;

pub use accept::{Acceptor, Listener};
pub use connection::{Connection, ConnectionGuard};
pub use error::{BindError, ConnectError};
pub use network::{BoundPort, Limits, Network, Usage, is_virtual};
