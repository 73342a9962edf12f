//! The life of one request's http component instance, bounded three ways (THREATS.md
//! invariant 2): it holds one of its tenant's `limits.max_instances` permits while it lives, it
//! lives at most `limits.request_timeout`, and it is dropped as soon as its response body is done
//! with — sent, or abandoned by a client that went away — so a handler that answers and then
//! lingers holds nothing.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::task::AbortHandle;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Why a request got no response from its instance.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The instance outlived `limits.request_timeout` before answering (`504`).
    #[error("no response within limits.request_timeout ({0:?}); the instance was dropped")]
    TimedOut(std::time::Duration),
    /// The component failed: trapped, answered with an error, or returned without a response
    /// (`500`).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Aborts the instance's task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A response body that ends its instance when it is dropped.
struct InstanceBody {
    inner: HyperOutgoingBody,
    _instance: AbortOnDrop,
}

impl Body for InstanceBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body`, which drops the instance running as `instance` when it is itself dropped.
pub fn tie_to_body(body: HyperOutgoingBody, instance: AbortHandle) -> HyperOutgoingBody {
    InstanceBody { inner: body, _instance: AbortOnDrop(instance) }.boxed_unsync()
}
