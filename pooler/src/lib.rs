//! Switchyard's per-tenant MySQL pooler (issue: pooler).
//!
//! Not built yet: this crate is a workspace member so that the dependency direction
//! (`switchyard → pooler`, which knows nothing of wasmtime) is fixed from the start.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
