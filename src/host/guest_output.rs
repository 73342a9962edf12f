//! What a guest prints on stdout and stderr becomes the host's log events, attributed and bounded
//! (THREATS.md invariants 2 and 6):
//!
//! - each line is one event, target `switchyard::guest`, with `tenant`, `component` and `stream`
//!   fields; the guest's text has its control characters escaped, so it can never start a line
//!   of its own or pass for one of the host's;
//! - a write never blocks the guest or its shard: lines go to the log's bounded queue
//!   (`telemetry`), and a line longer than [`MAX_LINE`] bytes is cut;
//! - each component has a budget of [`LINES_PER_SECOND`] lines a second ([`LINES_BURST`] at
//!   once), shared by its instances; lines past it are dropped and a summary says how many (before
//!   the next line written, or a second later if none comes).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use switchyard_vnet::log_budget::LogGate;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The longest line kept; the rest of a longer line is cut.
pub const MAX_LINE: usize = 4096;
/// Lines a component may print a second, in the long run.
pub const LINES_PER_SECOND: u32 = 200;
/// Lines a component may print at once.
pub const LINES_BURST: u32 = 1000;
/// How much a guest may write in one `write` call (it never waits for room).
const WRITE_PERMIT: usize = 64 << 10;

/// The output of one component: who it is, and the line budget its instances share.
#[derive(Clone)]
pub struct ComponentOutput {
    tenant: Arc<str>,
    component: Arc<str>,
    budget: LogGate,
}

impl ComponentOutput {
    /// The output of `component` of `tenant`, with a fresh budget.
    pub fn new(tenant: &str, component: &str) -> Self {
        let (tenant, component): (Arc<str>, Arc<str>) = (tenant.into(), component.into());
        let (t, c) = (tenant.clone(), component.clone());
        let budget = LogGate::new(LINES_PER_SECOND, LINES_BURST, move |held_back| {
            tracing::warn!(
                target: "switchyard::guest",
                tenant = &*t,
                component = &*c,
                suppressed = held_back,
                "{held_back} lines of this component's output were dropped (at most {LINES_PER_SECOND} a second)"
            );
        });
        ComponentOutput { tenant, component, budget }
    }

    /// A stream for one instance's `stream` (`stdout` or `stderr`).
    pub fn stream(&self, stream: &'static str) -> GuestOutput {
        GuestOutput(Arc::new(Lines { output: self.clone(), stream, partial: Mutex::new(Vec::new()) }))
    }

    fn emit(&self, stream: &'static str, line: &[u8]) {
        if !self.budget.allows() {
            return;
        }
        let (tenant, component) = (&*self.tenant, &*self.component);
        let text = String::from_utf8_lossy(line);
        tracing::info!(target: "switchyard::guest", tenant, component, stream, "{}", text.escape_debug());
    }
}

/// The lines of one instance's stream: a partial line is kept until its newline (or the end).
struct Lines {
    output: ComponentOutput,
    stream: &'static str,
    partial: Mutex<Vec<u8>>,
}

impl Lines {
    fn write(&self, mut bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = bytes.split_at(end);
            let room = MAX_LINE.saturating_sub(partial.len());
            partial.extend_from_slice(&line[..line.len().min(room)]);
            self.output.emit(self.stream, &partial);
            partial.clear();
            bytes = &rest[1..];
        }
        let room = MAX_LINE.saturating_sub(partial.len());
        partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let partial = self.partial.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !partial.is_empty() {
            self.output.emit(self.stream, partial);
        }
    }
}

/// One instance's stdout or stderr.
#[derive(Clone)]
pub struct GuestOutput(Arc<Lines>);

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.0.write(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
