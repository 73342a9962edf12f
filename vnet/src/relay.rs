//! Relaying a virtual stream to a real connection (a forward, or an allowed egress connect).
//!
//! Each direction is copied until its end of file and then half-closed on the other side, so a
//! guest that writes a request, shuts down sending and reads the answer works as over real TCP.
//! When the guest has dropped its reading end, nothing more can reach it: the real-to-guest
//! direction stops at once instead of waiting for the remote side to speak or close.

use std::future::poll_fn;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::pipe::VirtualStream;

/// Bytes moved by a finished relay, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relayed {
    /// From the guest to the real peer.
    pub to_remote: u64,
    /// From the real peer to the guest.
    pub to_guest: u64,
}

/// Copies between `virt` (the host's end of a guest's virtual connection) and `remote` until both
/// directions are done. I/O errors end a direction like end of file does; the other direction
/// still finishes.
pub async fn relay<R>(remote: R, virt: VirtualStream) -> Relayed
where
    R: AsyncRead + AsyncWrite + Send,
{
    let (mut remote_read, mut remote_write) = tokio::io::split(remote);
    let (mut virt_read, mut virt_write) = virt.into_split();
    let to_remote = async {
        let n = tokio::io::copy(&mut virt_read, &mut remote_write).await.unwrap_or(0);
        let _ = remote_write.shutdown().await;
        n
    };
    let to_guest = async {
        let watch = virt_write.shutdown_handle();
        let copied = tokio::select! {
            n = tokio::io::copy(&mut remote_read, &mut virt_write) => n.unwrap_or(0),
            () = poll_fn(|cx| watch.poll_reader_gone(cx)) => 0,
        };
        watch.close_write();
        copied
    };
    let (to_remote, to_guest) = tokio::join!(to_remote, to_guest);
    Relayed { to_remote, to_guest }
}
