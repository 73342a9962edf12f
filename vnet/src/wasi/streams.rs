//! `wasi:io` input and output streams over the in-memory pipes of a connection.
//!
//! Writes copy synchronously into the pipe (within what `check-write` granted), so a guest's
//! write followed by `shutdown` or drop never loses bytes. Every readiness a guest waits for
//! spends one unit of its task's tokio budget, so a guest whose streams are always ready still
//! yields its shard (besides the engine's time slices).

use bytes::{Bytes, BytesMut};
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{InputStream, OutputStream, StreamError, StreamResult};

use crate::pipe::{PipeReader, PipeWriter, ReadOutcome};

/// The most a single `read` hands to a guest.
const MAX_READ: usize = 64 * 1024;

/// The guest's reading end of a connection.
pub(crate) struct GuestInput(pub(crate) PipeReader);

/// The guest's writing end of a connection.
pub(crate) struct GuestOutput(pub(crate) PipeWriter);

#[wasmtime_wasi::async_trait]
impl Pollable for GuestInput {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.0.poll_readable(cx)).await;
        tokio::task::coop::consume_budget().await;
    }
}

impl InputStream for GuestInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let want = size.min(MAX_READ).min(self.0.buffered().max(1));
        let mut buf = BytesMut::zeroed(want);
        match self.0.try_read(&mut buf) {
            ReadOutcome::Data(n) => {
                buf.truncate(n);
                Ok(buf.freeze())
            }
            ReadOutcome::Empty => Ok(Bytes::new()),
            ReadOutcome::Eof => Err(StreamError::Closed),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.0.poll_writable(cx)).await;
        tokio::task::coop::consume_budget().await;
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let written = self.0.try_write(&bytes).map_err(|_| StreamError::Closed)?;
        if written < bytes.len() {
            return Err(StreamError::trap("write exceeds the permit that check-write gave"));
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Writes are already in the peer's buffer; report a closed peer like a write would.
        self.0.writable_len().map(|_| ()).map_err(|_| StreamError::Closed)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.0.writable_len().map_err(|_| StreamError::Closed)
    }
}
