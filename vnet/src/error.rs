//! Errors of the virtual network, one enum per operation; each names the workload and the
//! address, and maps onto one `wasi:sockets` error code.

use std::net::SocketAddr;

use thiserror::Error;

/// Why a bind failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BindError {
    /// Only loopback and unspecified addresses exist on a virtual network (`address-not-bindable`).
    #[error(
        "workload `{network}`: cannot bind {addr}: only 127.0.0.0/8, ::1, 0.0.0.0 and :: exist on its virtual network"
    )]
    NotBindable {
        /// The workload.
        network: String,
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address (or an overlapping wildcard) is bound already (`address-in-use`).
    #[error("workload `{network}`: virtual address {addr} is already in use")]
    InUse {
        /// The workload.
        network: String,
        /// The address asked for.
        addr: SocketAddr,
    },
    /// No ephemeral port is free (`address-in-use`).
    #[error("workload `{network}`: no ephemeral port is free on its virtual network")]
    PortsExhausted {
        /// The workload.
        network: String,
    },
    /// The workload has as many sockets as `limits.max_sockets` allows (`new-socket-limit`).
    #[error("workload `{network}`: socket limit reached ({limit}, limits.max_sockets)")]
    SocketLimit {
        /// The workload.
        network: String,
        /// The cap.
        limit: usize,
    },
}

/// Why a connect failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectError {
    /// Nothing listens there, or its backlog is full (`connection-refused`).
    #[error("workload `{network}`: connection to virtual address {addr} refused: nothing listens there")]
    Refused {
        /// The workload.
        network: String,
        /// The address connected to.
        addr: SocketAddr,
    },
    /// The address is outside the virtual network; the caller decides it by policy.
    #[error("workload `{network}`: {addr} is not on the virtual network")]
    NotVirtual {
        /// The workload.
        network: String,
        /// The address connected to.
        addr: SocketAddr,
    },
    /// The workload has as many connections as `limits.max_connections` allows.
    #[error("workload `{network}`: connection limit reached ({limit}, limits.max_connections)")]
    ConnectionLimit {
        /// The workload.
        network: String,
        /// The cap.
        limit: usize,
    },
    /// No local port could be bound for the connection.
    #[error(transparent)]
    Bind(BindError),
}
