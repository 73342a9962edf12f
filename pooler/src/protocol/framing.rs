//! MySQL packet framing over any byte stream: a 3-byte little-endian length and a 1-byte
//! sequence id before each chunk; a logical payload of 16 MiB − 1 bytes or more is split into
//! full chunks and ends with a shorter (possibly empty) one.
//!
//! [`PacketConn`] owns the buffering: [`PacketConn::read_packet`] returns whole logical
//! payloads (reassembled, never larger than the configured cap, `Ok(None)` on a clean end of
//! stream between packets), and writes are queued into an output buffer that
//! [`PacketConn::flush`] sends. Sequence ids are the caller's: a reader checks them against
//! the [`Sequence`] it expects, a writer takes them from its own.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest chunk a packet header can announce; a chunk of exactly this size is continued.
pub const MAX_CHUNK: usize = 0xFF_FFFF;

/// How far ahead of the bytes that arrived the input buffer grows while a packet fills.
const FILL_STEP: usize = 64 * 1024;

/// The most output buffer a peer waiting for input keeps.
const IDLE_OUTPUT: usize = 1024;

/// Output buffered beyond this is flushed before more is queued.
const FLUSH_AT: usize = 64 * 1024;

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a packet.
    #[error("connection closed in the middle of a packet")]
    Truncated,
    /// A payload is larger than the cap.
    #[error("packet of {size} bytes or more is over the limit of {limit} bytes")]
    TooLarge {
        /// Bytes announced so far.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// A chunk's sequence id is not the expected one.
    #[error("packet out of order: sequence id {got}, expected {expected}")]
    OutOfOrder {
        /// The id that came.
        got: u8,
        /// The id that was due.
        expected: u8,
    },
}

/// The sequence ids of one command exchange: restart at 0 for each command, one per chunk in
/// either direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequence(u8);

impl Sequence {
    /// The sequence of a new command (next id 0).
    pub fn new() -> Self {
        Sequence(0)
    }

    /// A sequence whose next id is `next`.
    pub fn at(next: u8) -> Self {
        Sequence(next)
    }

    /// The id the next chunk carries.
    pub fn next(self) -> u8 {
        self.0
    }

    fn advance(&mut self) -> u8 {
        let id = self.0;
        self.0 = self.0.wrapping_add(1);
        id
    }
}

/// A packet connection: framing and buffering over `S`, nothing else.
#[derive(Debug)]
pub struct PacketConn<S> {
    stream: S,
    input: BytesMut,
    output: Vec<u8>,
    max_payload: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketConn<S> {
    /// Frames `stream`; payloads larger than `max_payload` are refused.
    pub fn new(stream: S, max_payload: usize) -> Self {
        PacketConn { stream, input: BytesMut::with_capacity(4096), output: Vec::new(), max_payload }
    }

    /// The largest payload [`Self::read_packet`] accepts.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Changes the largest payload [`Self::read_packet`] accepts (a client is allowed a
    /// handshake-sized packet before it logs in, and its session's limit after).
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload;
    }

    /// The framed stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream back, with `None` if bytes were buffered past the last packet (a peer out of
    /// step); for switching the stream to TLS mid-handshake.
    pub fn into_inner(self) -> Option<S> {
        self.input.is_empty().then_some(self.stream)
    }

    /// The stream back, and the bytes buffered past the last packet (a client's TLS
    /// `ClientHello` sent right behind its `SSLRequest`).
    pub fn into_parts(self) -> (S, bytes::Bytes) {
        (self.stream, self.input.freeze())
    }

    /// The framed stream, for writing bytes past the framing (tests of bad clients).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Waits until at least one byte of a next packet is buffered: `Ok(false)` if the stream
    /// ends first. Cancel-safe (bytes read stay buffered). An idle peer costs little: with
    /// nothing buffered, the input buffer is given up (the wait reads into a small one) and so
    /// is an output buffer grown past [`IDLE_OUTPUT`].
    pub async fn wait_for_input(&mut self) -> std::io::Result<bool> {
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = BytesMut::new();
        }
        if self.output.is_empty() && self.output.capacity() > IDLE_OUTPUT {
            self.output = Vec::new();
        }
        while self.input.is_empty() {
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Without waiting: whether the peer has closed the stream or sent bytes nobody asked for.
    /// A connection idle in a pool must have nothing to read; one that does was closed (a
    /// server restart, `KILL`, `wait_timeout`) or is out of step, and must not be used.
    pub fn peer_closed_or_spoke(&mut self) -> bool {
        if !self.input.is_empty() {
            return true;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        match std::pin::Pin::new(&mut self.stream).poll_read(&mut cx, &mut buf) {
            std::task::Poll::Pending => false,
            std::task::Poll::Ready(Ok(())) => {
                self.input.extend_from_slice(buf.filled());
                true
            }
            std::task::Poll::Ready(Err(_)) => true,
        }
    }

    /// Whether bytes of a next packet have arrived already (nothing is waiting to be read).
    pub fn has_buffered_input(&self) -> bool {
        !self.input.is_empty()
    }

    /// Reads one logical payload whose first chunk carries `seq.next()`, advancing `seq` past
    /// every chunk. `Ok(None)` when the stream ends cleanly before a packet starts.
    pub async fn read_packet(&mut self, seq: &mut Sequence) -> Result<Option<Bytes>, FrameError> {
        let mut payload: Option<BytesMut> = None;
        loop {
            let Some((len, id)) = self.read_header(payload.is_none()).await? else {
                return Ok(None);
            };
            if id != seq.next() {
                return Err(FrameError::OutOfOrder { got: id, expected: seq.next() });
            }
            seq.advance();
            let size = payload.as_ref().map_or(0, |p| p.len()) + len;
            if size > self.max_payload {
                return Err(FrameError::TooLarge { size, limit: self.max_payload });
            }
            self.fill(len).await?;
            let chunk = self.input.split_to(len);
            let whole = match payload.take() {
                None if len < MAX_CHUNK => return Ok(Some(chunk.freeze())),
                None => chunk,
                Some(mut so_far) => {
                    so_far.extend_from_slice(&chunk);
                    so_far
                }
            };
            if len < MAX_CHUNK {
                return Ok(Some(whole.freeze()));
            }
            payload = Some(whole);
        }
    }

    /// Reads a chunk header; `None` on a clean end of stream if `at_start`.
    async fn read_header(&mut self, at_start: bool) -> Result<Option<(usize, u8)>, FrameError> {
        while self.input.len() < 4 {
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return if at_start && self.input.is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
            }
        }
        let len =
            usize::from(self.input[0]) | usize::from(self.input[1]) << 8 | usize::from(self.input[2]) << 16;
        let id = self.input[3];
        self.input.advance(4);
        Ok(Some((len, id)))
    }

    /// Reads until `len` bytes are buffered. The buffer grows with the bytes that arrive (at
    /// most [`FILL_STEP`] ahead of them), never to what a header merely announced: a peer that
    /// announces 16 MiB and sends a little holds a little.
    async fn fill(&mut self, len: usize) -> Result<(), FrameError> {
        while self.input.len() < len {
            let wanted = (len - self.input.len()).min(FILL_STEP);
            if self.input.capacity() - self.input.len() < wanted {
                self.input.reserve(wanted);
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(FrameError::Truncated);
            }
        }
        Ok(())
    }

    /// Queues `payload` as one logical packet (split into chunks as needed), taking sequence
    /// ids from `seq`. Sends what is queued when the buffer grows past 64 KiB.
    pub async fn write_packet(&mut self, seq: &mut Sequence, payload: &[u8]) -> std::io::Result<()> {
        let mut rest = payload;
        loop {
            let len = rest.len().min(MAX_CHUNK);
            let header = (len as u32).to_le_bytes();
            self.output.extend_from_slice(&[header[0], header[1], header[2], seq.advance()]);
            self.output.extend_from_slice(&rest[..len]);
            rest = &rest[len..];
            if self.output.len() >= FLUSH_AT {
                self.flush().await?;
            }
            if len < MAX_CHUNK {
                return Ok(());
            }
        }
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
            if self.output.capacity() > 4 * FLUSH_AT {
                self.output.shrink_to(FLUSH_AT);
            }
        }
        self.stream.flush().await
    }

    /// Queues `payload`, sends it and everything before it.
    pub async fn send(&mut self, seq: &mut Sequence, payload: &[u8]) -> std::io::Result<()> {
        self.write_packet(seq, payload).await?;
        self.flush().await
    }

    /// Shuts the stream down for writing after sending what is queued.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        self.stream.shutdown().await
    }

    /// Drops the input buffer's excess capacity (after a large packet), keeping unread bytes.
    pub fn shrink_input(&mut self) {
        if self.input.capacity() > 64 * 1024 && self.input.len() < 4096 {
            let rest = self.input.split();
            self.input = BytesMut::with_capacity(4096);
            self.input.extend_from_slice(&rest);
        }
    }
}

#[cfg(test)]
mod tests;
