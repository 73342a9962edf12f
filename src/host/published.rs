//! A pool's real listeners (`publish`): TCP addresses and unix sockets, for clients on the host
//! rather than guests on the virtual network.
//!
//! A unix socket is closed to other OS users (THREATS.md, invariant 7): it is bound inside a
//! fresh owner-only folder beside its path, made `0600`, and only then renamed into place, so
//! that it is never reachable with looser permissions. A stale socket at the path (nothing
//! answers) is replaced; a live one, or anything that is not a socket, is an error naming the
//! path. The socket file is removed when the listener drops.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::config::PublishAddr;

/// One listening published address.
pub enum PublishedListener {
    /// A TCP address.
    Tcp(TcpListener),
    /// A unix socket, removed when dropped.
    Unix(UnixListener, PathBuf),
}

/// A client accepted on a published address.
pub enum Accepted {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over a unix socket.
    Unix(UnixStream),
}

impl PublishedListener {
    /// Listens on `addr`; errors name the address.
    pub async fn bind(addr: &PublishAddr) -> anyhow::Result<Self> {
        match addr {
            PublishAddr::Tcp(addr) => {
                let listener =
                    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
                Ok(PublishedListener::Tcp(listener))
            }
            PublishAddr::Unix(path) => {
                let path = PathBuf::from(path.as_str());
                let listener = bind_owner_only(&path)
                    .with_context(|| format!("cannot listen on unix:{}", path.display()))?;
                Ok(PublishedListener::Unix(listener, path))
            }
        }
    }

    /// The address, as the config writes it.
    pub fn describe(&self) -> String {
        match self {
            PublishedListener::Tcp(listener) => {
                listener.local_addr().map_or_else(|_| "a TCP address".to_owned(), |a| a.to_string())
            }
            PublishedListener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// The next client and a name for it (its TCP address, or `unix:PATH`).
    pub async fn accept(&self) -> std::io::Result<(Accepted, String)> {
        match self {
            PublishedListener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((Accepted::Tcp(stream), peer.to_string()))
            }
            PublishedListener::Unix(listener, path) => {
                let (stream, _) = listener.accept().await?;
                Ok((Accepted::Unix(stream), format!("unix:{}", path.display())))
            }
        }
    }
}

impl Drop for PublishedListener {
    fn drop(&mut self) {
        if let PublishedListener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a unix socket at `path`, owner-only (`0600`) from its first moment.
fn bind_owner_only(path: &Path) -> anyhow::Result<UnixListener> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("/"));
    path.file_name().context("the path names no file")?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!("another process listens on it");
            }
            std::fs::remove_file(path).context("cannot remove the stale socket")?;
        }
        Ok(_) => bail!("it exists and is not a socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("cannot look at the path"),
    }
    // Short, so that the staged path fits a socket address when the final one does.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = parent.join(format!(".sy{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let bound = (|| -> anyhow::Result<UnixListener> {
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700))?;
        let staged = staging.join("s");
        let listener = UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    bound
}
