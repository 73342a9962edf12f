//! Switchyard's per-tenant MySQL pooler: it speaks the MySQL protocol to any unmodified client
//! and multiplexes many short client sessions onto a small, bounded set of long-lived backend
//! connections.
//!
//! ```text
//!   client ─► Pooler::serve ─► handshake (protocol::server_handshake)
//!                           └► Session ─ per command ─► Pool::checkout ─► BackendConn
//!                                │                       (replay state)   │ relay (bytes)
//!                                └◄──────────────── response ◄────────────┘
//!   backend connections: Connector (given by the owner) ─► login (protocol::client_handshake)
//! ```
//!
//! - [`protocol`]: framing, the packets the pooler reads or writes itself, both handshakes.
//! - [`relay`]: one response from a backend to a client, as bytes, reading only status flags
//!   and session-state changes.
//! - [`state`], [`pins`]: what a session carries from one connection to the next, and what
//!   ties it to one connection.
//! - [`pool`], [`backend`]: the bounded, FIFO, health-checked set of connections.
//! - [`session`], [`pooler`]: one client's commands; the sessions of one pool.
//! - [`stats`], [`registry`], [`admin`]: counters, live lists of clients and servers, and the
//!   SQL admin interface (`SHOW POOLS`, `SHOW CLIENTS`, `SHOW SERVERS`, `SHOW STATS`).
//!
//! It does not parse result sets, know wasmtime or YAML, or open backend connections itself:
//! its owner passes a [`backend::Connector`], so that backends pass the owner's policy.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod backend;
pub mod client_error;
pub mod client_tls;
pub mod login_gate;
pub mod pins;
pub mod pool;
pub mod pooler;
pub mod protocol;
pub mod registry;
pub mod relay;
pub mod session;
pub mod state;
pub mod stats;

pub use backend::{BackendSettings, BoxedStream, ConnectFuture, Connector};
pub use pool::{Pool, PoolConfig};
pub use pooler::{Pooler, PoolerConfig};
pub use session::{InsertIds, PoolMode};
