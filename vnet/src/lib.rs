//! Switchyard's per-workload virtual loopback network.
//!
//! # In your own wasmtime host
//!
//! A host of your own gives its guests the virtual network and the egress policy in four
//! steps (the whole program: `examples/embed-host/src/main.rs` in the repository, run by the
//! test command):
//!
//! 1. one [`Network`] and one [`egress::Egress`] (a `switchyard_policy::Policy` and a
//!    [`dns::Resolver`]) per workload;
//! 2. [`wasi::add_to_linker`] on your `wasmtime::component::Linker`: WASI p2, with
//!    `wasi:sockets` answered by the network and the gate;
//! 3. your store data implements `wasmtime_wasi::WasiView` and [`wasi::GuestNetState`], holding
//!    a [`wasi::GuestNet`] made from the workload's network and gate;
//! 4. run the guests: a `connect("127.0.0.1:7777")` reaches the guest of the same workload that
//!    listens on 7777, in memory; anything else leaves only if the policy allows it.
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
pub mod denials;
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
