//! Switchyard's per-workload virtual loopback network (issue: vnet).
//!
//! Not built yet: this crate is a workspace member so that the dependency direction
//! (`switchyard → vnet → policy`) is fixed from the start. See `ARCHITECTURE.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
