//! Bounded in-memory byte streams: the data path of every virtual connection.
//!
//! A [`pipe`] is one direction: a writer, a reader and a buffer of at most `capacity` bytes
//! between them. A [`VirtualStream`] is two pipes, one each way, like a TCP connection. Streams
//! implement tokio's `AsyncRead`/`AsyncWrite` (so host-side services are plain tokio code) and
//! non-blocking `try_read`/`try_write` with readiness polling (what `wasi:io` streams need).
//!
//! Writes are synchronous copies into the buffer: nothing is buffered elsewhere, so a write
//! followed by a shutdown never loses bytes.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The window of one direction, the default for a virtual connection. Memory is taken as bytes
/// are buffered, not up front; a window this size lets bulk transfers move data with few
/// wake-ups (a 64 KiB window ran at half the speed of kernel loopback TCP, docs/benchmarks.md).
pub const DEFAULT_CAPACITY: usize = 256 * 1024;

/// A drained buffer keeps at most this much memory, so idle connections stay small — unless the
/// window filled within the last [`STREAMING_DRAINS`] drains: a streaming connection keeps its
/// buffer (freeing and re-taking a large buffer on every window costs more than the copy).
const IDLE_KEEP: usize = 1024;

/// How many drains a full window keeps a buffer for.
const STREAMING_DRAINS: u8 = 64;

#[derive(Debug)]
struct Direction {
    buf: VecDeque<u8>,
    capacity: usize,
    /// The writer shut down or was dropped: the reader gets EOF once the buffer is drained.
    writer_closed: bool,
    /// The reader was dropped: writes fail with `BrokenPipe`.
    reader_closed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// Drains to come before a drained buffer is shrunk again: set when the buffer reaches the
    /// window, counted down by each drain.
    streaming: u8,
}

#[derive(Debug)]
struct Shared(Mutex<Direction>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Direction> {
        // No code panics while holding the lock, so a poisoned lock still holds consistent state.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a non-blocking read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were copied out (at least one).
    Data(usize),
    /// Nothing buffered yet; the writer is still open.
    Empty,
    /// The writer closed and every byte was read.
    Eof,
}

/// The writing end of a pipe. Dropping it closes the pipe for writing (the reader sees EOF).
#[derive(Debug)]
pub struct PipeWriter(Arc<Shared>);

/// The reading end of a pipe. Dropping it makes further writes fail with `BrokenPipe`.
#[derive(Debug)]
pub struct PipeReader(Arc<Shared>);

/// A pipe holding at most `capacity` (at least 1) bytes in flight.
pub fn pipe(capacity: usize) -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared(Mutex::new(Direction {
        buf: VecDeque::new(),
        capacity: capacity.max(1),
        writer_closed: false,
        reader_closed: false,
        read_waker: None,
        write_waker: None,
        streaming: 0,
    })));
    (PipeWriter(shared.clone()), PipeReader(shared))
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the peer closed its end of the virtual connection")
}

fn write_after_shutdown() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "write after shutdown of the virtual connection")
}

impl PipeWriter {
    /// Copies as much of `data` as fits; `Ok(0)` for non-empty `data` means the buffer is full.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let mut d = self.0.lock();
        if d.reader_closed {
            return Err(broken_pipe());
        }
        if d.writer_closed {
            return Err(write_after_shutdown());
        }
        let n = data.len().min(d.capacity - d.buf.len());
        if n > 0 {
            if d.buf.capacity() - d.buf.len() < n {
                // Grow once to the whole window instead of doubling step by step.
                let room = d.capacity - d.buf.len();
                d.buf.reserve_exact(room);
            }
            d.buf.extend(&data[..n]);
            if d.buf.len() == d.capacity {
                d.streaming = STREAMING_DRAINS;
            }
            if let Some(waker) = d.read_waker.take() {
                waker.wake();
            }
        }
        Ok(n)
    }

    /// Bytes that can be written now without blocking (0 when full; an error when closed).
    pub fn writable_len(&self) -> io::Result<usize> {
        let d = self.0.lock();
        if d.reader_closed {
            return Err(broken_pipe());
        }
        if d.writer_closed {
            return Err(write_after_shutdown());
        }
        Ok(d.capacity - d.buf.len())
    }

    /// Ready when at least one byte can be written or the pipe is broken.
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut d = self.0.lock();
        if d.reader_closed || d.writer_closed || d.buf.len() < d.capacity {
            return Poll::Ready(());
        }
        d.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Closes the pipe for writing (half-close): the reader drains what is buffered, then sees EOF.
    pub fn close(&self) {
        self.shutdown_handle().close_write();
    }

    /// A handle to shut this pipe down from elsewhere.
    pub fn shutdown_handle(&self) -> PipeShutdown {
        PipeShutdown(self.0.clone())
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.try_write(data) {
            Ok(0) if !data.is_empty() => {
                let mut d = self.0.lock();
                if d.buf.len() < d.capacity || d.reader_closed {
                    drop(d);
                    return self.poll_write(cx, data);
                }
                d.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            other => Poll::Ready(other),
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl PipeReader {
    /// Copies buffered bytes into `out` without blocking.
    pub fn try_read(&self, out: &mut [u8]) -> ReadOutcome {
        let mut d = self.0.lock();
        if d.buf.is_empty() || d.reader_closed {
            return if d.writer_closed || d.reader_closed { ReadOutcome::Eof } else { ReadOutcome::Empty };
        }
        if out.is_empty() {
            return ReadOutcome::Data(0);
        }
        let n = out.len().min(d.buf.len());
        let (front, back) = d.buf.as_slices();
        let from_front = n.min(front.len());
        out[..from_front].copy_from_slice(&front[..from_front]);
        out[from_front..n].copy_from_slice(&back[..n - from_front]);
        d.buf.drain(..n);
        if d.buf.is_empty() {
            if d.streaming == 0 && d.buf.capacity() > IDLE_KEEP {
                d.buf.shrink_to(IDLE_KEEP);
            }
            d.streaming = d.streaming.saturating_sub(1);
        }
        if let Some(waker) = d.write_waker.take() {
            waker.wake();
        }
        ReadOutcome::Data(n)
    }

    /// Ready when a byte is buffered or the writer has closed.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut d = self.0.lock();
        if !d.buf.is_empty() || d.writer_closed || d.reader_closed {
            return Poll::Ready(());
        }
        d.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Bytes buffered and not yet read.
    pub fn buffered(&self) -> usize {
        self.0.lock().buf.len()
    }

    /// A handle to shut this pipe down from elsewhere.
    pub fn shutdown_handle(&self) -> PipeShutdown {
        PipeShutdown(self.0.clone())
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.0.close_read();
    }
}

impl Shared {
    /// Stops reading: buffered bytes are discarded, the reader sees EOF, writes fail.
    fn close_read(&self) {
        let mut d = self.lock();
        d.reader_closed = true;
        d.buf = VecDeque::new();
        if let Some(waker) = d.write_waker.take() {
            waker.wake();
        }
        if let Some(waker) = d.read_waker.take() {
            waker.wake();
        }
    }
}

/// A handle that can shut down one end of a pipe while another owner reads or writes it (what a
/// socket's `shutdown` does to the streams it handed out).
#[derive(Debug, Clone)]
pub struct PipeShutdown(Arc<Shared>);

impl PipeShutdown {
    /// Shuts the pipe down for reading (`SHUT_RD`): buffered and later bytes are discarded, the
    /// reader sees EOF and the writer gets `BrokenPipe`.
    pub fn close_read(&self) {
        self.0.close_read();
    }

    /// Ready once the reader has gone (dropped or shut down): nothing written now can be read.
    /// Shares the writer's wake-up slot, so poll it from the task that writes.
    pub fn poll_reader_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut d = self.0.lock();
        if d.reader_closed {
            return Poll::Ready(());
        }
        d.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Shuts the pipe down for writing (`SHUT_WR`): the reader drains what is buffered, then
    /// sees EOF.
    pub fn close_write(&self) {
        let mut d = self.0.lock();
        d.writer_closed = true;
        if let Some(waker) = d.read_waker.take() {
            waker.wake();
        }
    }
}

/// Reads and writes through the tokio traits spend the task's cooperative budget, as tokio's own
/// sockets do: a native task relaying between always-ready pipes still yields its shard.
impl AsyncRead for PipeReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            match self.try_read(buf.initialize_unfilled()) {
                ReadOutcome::Data(n) => {
                    buf.advance(n);
                    coop.made_progress();
                    return Poll::Ready(Ok(()));
                }
                ReadOutcome::Eof => {
                    coop.made_progress();
                    return Poll::Ready(Ok(()));
                }
                ReadOutcome::Empty => {
                    if self.poll_readable(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let written = PipeWriter::poll_write(&self, cx, data);
        if written.is_ready() {
            coop.made_progress();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}

/// One end of a virtual connection: a reader from the peer and a writer to it.
#[derive(Debug)]
pub struct VirtualStream {
    reader: PipeReader,
    writer: PipeWriter,
}

/// Two connected ends, each direction buffering at most `capacity` bytes.
pub fn duplex(capacity: usize) -> (VirtualStream, VirtualStream) {
    let (a_writer, b_reader) = pipe(capacity);
    let (b_writer, a_reader) = pipe(capacity);
    (
        VirtualStream { reader: a_reader, writer: a_writer },
        VirtualStream { reader: b_reader, writer: b_writer },
    )
}

impl VirtualStream {
    /// The two halves, to read and write from different tasks.
    pub fn into_split(self) -> (PipeReader, PipeWriter) {
        (self.reader, self.writer)
    }

    /// The reading half.
    pub fn reader(&self) -> &PipeReader {
        &self.reader
    }

    /// The writing half.
    pub fn writer(&self) -> &PipeWriter {
        &self.writer
    }
}

impl AsyncRead for VirtualStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for VirtualStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.writer.poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests;
