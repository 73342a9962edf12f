//! Relaying a virtual stream to a real connection (a forward, or an allowed egress connect).
//!
//! Each direction is copied until its end of file and then half-closed on the other side, so a
//! guest that writes a request, shuts down sending and reads the answer works as over real TCP.
//! When the guest has dropped its reading end, nothing more can reach it: the real-to-guest
//! direction stops at once instead of waiting for the remote side to speak or close. With an
//! idle timeout, a relay in which no byte moved either way for that long is closed on both sides
//! (a peer that accepts and then says nothing cannot hold it forever).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use crate::pipe::VirtualStream;

/// Bytes moved by a finished relay, per direction, and why it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relayed {
    /// From the guest to the real peer.
    pub to_remote: u64,
    /// From the real peer to the guest.
    pub to_guest: u64,
    /// Closed by the idle timeout (no byte either way for that long).
    pub idle_closed: bool,
}

/// When a byte last moved (milliseconds after `start`), shared by both directions.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }
}

/// A reader that counts its bytes and records activity.
struct Counted<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
    activity: Arc<Activity>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.bytes.fetch_add(read as u64, Ordering::Relaxed);
            this.activity.touch();
        }
        polled
    }
}

/// Copies between `virt` (the host's end of a guest's virtual connection) and `remote` until both
/// directions are done, or until no byte has moved either way for `idle_timeout` (then both
/// sides are closed). I/O errors end a direction like end of file does; the other direction
/// still finishes.
pub async fn relay<R>(remote: R, virt: VirtualStream, idle_timeout: Option<Duration>) -> Relayed
where
    R: AsyncRead + AsyncWrite + Send,
{
    let activity = Arc::new(Activity { start: Instant::now(), last_ms: AtomicU64::new(0) });
    let (sent, received) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (remote_read, mut remote_write) = tokio::io::split(remote);
    let (virt_read, mut virt_write) = virt.into_split();
    let mut virt_read = Counted { inner: virt_read, bytes: sent.clone(), activity: activity.clone() };
    let mut remote_read = Counted { inner: remote_read, bytes: received.clone(), activity: activity.clone() };
    let to_remote = async {
        let _ = tokio::io::copy(&mut virt_read, &mut remote_write).await;
        let _ = remote_write.shutdown().await;
    };
    let to_guest = async {
        let watch = virt_write.shutdown_handle();
        tokio::select! {
            _ = tokio::io::copy(&mut remote_read, &mut virt_write) => {}
            () = poll_fn(|cx| watch.poll_reader_gone(cx)) => {}
        }
        watch.close_write();
    };
    let idle = async {
        let Some(idle) = idle_timeout else { return std::future::pending::<()>().await };
        // Bounded: each turn either ends or waits until a later deadline.
        loop {
            let deadline = activity.idle_deadline(idle);
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    let idle_closed = tokio::select! {
        _ = async { tokio::join!(to_remote, to_guest) } => false,
        () = idle => true,
    };
    Relayed {
        to_remote: sent.load(Ordering::Relaxed),
        to_guest: received.load(Ordering::Relaxed),
        idle_closed,
    }
}
