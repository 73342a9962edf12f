//! The request body an http component reads, bounded per tenant (THREATS.md invariant 2): at most
//! `limits.max_request_body_mib`, and never a longer pause than `limits.request_body_timeout`
//! between two pieces of it. Past either, the guest's next read of the body fails
//! (`HTTP-request-body-size`, `connection-read-timeout`), so a client that trickles or streams
//! without end holds an instance no longer than that.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::Error;

use super::tenant_usage::{Refusal, TenantUsage};

/// A request body with a size cap and an idle time-out.
pub struct BoundedBody {
    inner: Incoming,
    limit: u64,
    remaining: u64,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    usage: TenantUsage,
    refused: bool,
}

impl BoundedBody {
    /// `inner`, of which at most `limit` bytes are read, each piece within `idle_timeout` of the
    /// one before (or of the start); a body cut short counts once against `usage`.
    pub fn new(inner: Incoming, limit: u64, idle_timeout: Duration, usage: TenantUsage) -> Self {
        let idle = Box::pin(tokio::time::sleep(idle_timeout));
        BoundedBody { inner, limit, remaining: limit, idle_timeout, idle, usage, refused: false }
    }

    fn refuse(&mut self, budget: Refusal, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if !std::mem::replace(&mut self.refused, true) {
            self.usage.count_refusal(budget);
        }
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for BoundedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                if len > this.remaining {
                    let limit = this.limit;
                    return this.refuse(Refusal::MaxRequestBody, Error::HttpRequestBodySize(Some(limit)));
                }
                this.remaining -= len;
                this.idle.as_mut().reset(Instant::now() + this.idle_timeout);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => this.refuse(Refusal::RequestBodyTimeout, Error::ConnectionReadTimeout),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
