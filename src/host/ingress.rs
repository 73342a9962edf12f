//! HTTP ingress: one HTTP/1.1 server per configured listen address, routing each request by
//! `Host` and longest path prefix to an http component, which gets a fresh instance per request
//! (`wasi:http/incoming-handler`), run on its tenant's shard.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tracing::Instrument;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::guest::{GuestState, Workload};
use super::guest_output::ComponentOutput;
use super::instance_slots::InstanceSlot;
use super::listener::{Listener, http1_server};
use super::request_body::BoundedBody;
use super::request_instance::{InstanceError, tie_to_body};
use super::shards::Shards;
use super::tenant_usage::Refusal;
use crate::config::EnvValue;

/// The identifier of one ingress request: unique within this process (a per-start prefix and a
/// counter). A client gets it with an error, the log has it with the error's details, so that the
/// two can be matched without the details ever reaching the client.
fn next_request_id() -> String {
    static START: LazyLock<u32> = LazyLock::new(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.subsec_nanos() ^ (now.as_secs() as u32)
    });
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:08x}-{}", *START, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An http component, ready to be instantiated per request.
pub struct HttpComponent {
    name: String,
    workload: Workload,
    pre: ProxyPre<GuestState>,
    env: BTreeMap<String, EnvValue>,
    output: ComponentOutput,
}

impl HttpComponent {
    /// Prepares `component` for per-request instantiation.
    pub fn new(
        name: &str,
        workload: Workload,
        component: &Component,
        linker: &Linker<GuestState>,
        env: BTreeMap<String, EnvValue>,
    ) -> anyhow::Result<Self> {
        let pre = ProxyPre::new(linker.instantiate_pre(component)?).map_err(|e| {
            anyhow::anyhow!(
                "tenant {}: component {name}: not a wasi:http/incoming-handler component: {e}",
                workload.tenant
            )
        })?;
        let output = ComponentOutput::new(&workload.tenant, name);
        Ok(HttpComponent { name: name.to_owned(), workload, pre, env, output })
    }

    /// Handles one request in a fresh instance, which holds `slot` (one of its tenant's
    /// `limits.max_instances`, see `instance_slots`) while it lives, lives at most
    /// `limits.request_timeout`, and is dropped with its response body.
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
        slot: InstanceSlot,
    ) -> Result<hyper::Response<HyperOutgoingBody>, InstanceError> {
        let mut store = GuestState::new(&self.workload, &self.name, &self.env, &self.output)
            .into_store(self.pre.engine());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (limit, idle) = (self.workload.max_request_body, self.workload.request_body_timeout);
        let usage = self.workload.usage.clone();
        let request = request.map(|body| BoundedBody::new(body, limit, idle, usage));
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(anyhow::Error::from)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(anyhow::Error::from)?;
        let pre = self.pre.clone();
        let deadline = self.workload.request_timeout;
        let task = tokio::spawn(
            async move {
                // Declared before the store, so dropped after it (also when the task is
                // aborted): the engine's slot is free before the permit says so.
                let _slot = slot;
                let mut store = store;
                let clock = store.data().slice_clock();
                let run = async {
                    let proxy = pre.instantiate_async(&mut store).await?;
                    proxy.wasi_http_incoming_handler().call_handle(&mut store, request, out).await
                };
                tokio::time::timeout(deadline, clock.track(run))
                    .await
                    .map_err(|_| InstanceError::TimedOut(deadline))
            }
            .instrument(tracing::Span::current()),
        );
        let instance = task.abort_handle();
        match receiver.await {
            Ok(Ok(response)) => Ok(response.map(|body| tie_to_body(body, instance))),
            Ok(Err(code)) => Err(anyhow::anyhow!("the component answered with error {code:?}").into()),
            Err(_) => match task.await {
                Ok(Ok(Ok(()))) => {
                    Err(anyhow::anyhow!("the component returned without setting a response").into())
                }
                Ok(Ok(Err(e))) => Err(anyhow::Error::from(e).context("the component trapped").into()),
                Ok(Err(timed_out)) => Err(timed_out),
                Err(e) => Err(anyhow::anyhow!("the request task failed: {e}").into()),
            },
        }
    }
}

/// A route: requests for `host` (any if `None`) whose path starts with `prefix`.
#[derive(Clone)]
pub struct Route {
    /// Lowercase host without port.
    pub host: Option<String>,
    /// Path prefix (starts with `/`).
    pub prefix: String,
    /// The component serving it.
    pub component: Arc<HttpComponent>,
}

/// The routes of one listen address, most specific first.
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Orders `routes`: host-specific before any-host, longer prefixes before shorter.
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            b.host.is_some().cmp(&a.host.is_some()).then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Router { routes }
    }

    fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<HttpComponent>> {
        self.routes
            .iter()
            .find(|r| r.host.as_deref().is_none_or(|h| Some(h) == host) && path.starts_with(&r.prefix))
            .map(|r| &r.component)
    }
}

/// The request's host, lowercase, without port.
fn request_host(request: &hyper::Request<Incoming>) -> Option<String> {
    let raw =
        request.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).or(request.uri().host())?;
    Some(strip_port(raw).to_ascii_lowercase())
}

/// `host:port` → `host`; `[v6]:port` → `v6`.
fn strip_port(raw: &str) -> &str {
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split_once(']').map_or(raw, |(host, _)| host);
    }
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => raw,
    }
}

fn text(status: u16, body: String) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(bytes::Bytes::from(body)).map_err(|never: Infallible| match never {}).boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The router a server uses, replaced whole by a reload; each request reads the one in force.
type SharedRouter = Arc<RwLock<Arc<Router>>>;

/// The host's ingress servers, one per listen address, each routing by the router in force.
/// Dropping it stops them all.
pub struct IngressServers {
    servers: BTreeMap<SocketAddr, (SharedRouter, tokio::task::JoinHandle<()>)>,
    shards: Arc<Shards>,
}

impl IngressServers {
    /// No servers yet; requests run on `shards`.
    pub fn new(shards: Arc<Shards>) -> Self {
        IngressServers { servers: BTreeMap::new(), shards }
    }

    /// Binds each of `addrs` not served yet. Changes nothing: on error the ones bound are closed.
    pub async fn bind_new(
        &self,
        addrs: impl Iterator<Item = SocketAddr>,
    ) -> anyhow::Result<Vec<(SocketAddr, TcpListener)>> {
        let mut bound = Vec::new();
        for addr in addrs {
            if !self.servers.contains_key(&addr) && !bound.iter().any(|(a, _)| *a == addr) {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("ingress: cannot listen on {addr}"))?;
                bound.push((addr, listener));
            }
        }
        Ok(bound)
    }

    /// Serves `routes`: the listeners in `bound` (from [`IngressServers::bind_new`]) start, the
    /// servers already running route by their new routes from their next request, and those
    /// whose address no longer has a route stop listening (their requests in flight finish; a
    /// connection kept alive gets 404 for the next).
    pub fn apply(
        &mut self,
        bound: Vec<(SocketAddr, TcpListener)>,
        mut routes: BTreeMap<SocketAddr, Vec<Route>>,
    ) {
        self.servers.retain(|addr, (router, task)| {
            let kept = routes.contains_key(addr);
            if !kept {
                tracing::info!(%addr, "ingress stopped: no component is routed there any more");
                // Connections kept alive past the listener's end get 404 from now on.
                *router.write().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    Arc::new(Router::new(Vec::new()));
                task.abort();
            }
            kept
        });
        for (addr, (router, _)) in &self.servers {
            let new = Router::new(routes.remove(addr).unwrap_or_default());
            *router.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(new);
        }
        for (addr, listener) in bound {
            let router = Router::new(routes.remove(&addr).unwrap_or_default());
            tracing::info!(%addr, routes = router.routes.len(), "ingress listening");
            let router: SharedRouter = Arc::new(RwLock::new(Arc::new(router)));
            let task = serve(listener, router.clone(), self.shards.clone());
            self.servers.insert(addr, (router, task));
        }
    }
}

impl Drop for IngressServers {
    fn drop(&mut self) {
        for (_, task) in self.servers.values() {
            task.abort();
        }
    }
}

/// Serves `listener` by `router` until the returned task is aborted.
fn serve(listener: TcpListener, router: SharedRouter, shards: Arc<Shards>) -> tokio::task::JoinHandle<()> {
    let listener = Listener::new(listener, "ingress");
    tokio::spawn(async move {
        loop {
            let (client, peer, connection) = listener.accept().await;
            let (router, shards) = (router.clone(), shards.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let router = router.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
                    let shards = shards.clone();
                    async move { Ok::<_, Infallible>(dispatch(&router, &shards, request).await) }
                });
                if let Err(e) =
                    http1_server().keep_alive(true).serve_connection(TokioIo::new(client), service).await
                {
                    tracing::debug!(%peer, "ingress connection ended: {e}");
                }
                drop(connection);
            });
        }
    })
}

async fn dispatch(
    router: &Router,
    shards: &Shards,
    request: hyper::Request<Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    let host = request_host(&request);
    let Some(component) = router.find(host.as_deref(), request.uri().path()).cloned() else {
        let host = host.unwrap_or_default();
        return text(
            404,
            format!("no component is routed for host `{host}` and path `{}`\n", request.uri().path()),
        );
    };
    let declared_length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > component.workload.max_request_body) {
        component.workload.usage.count_refusal(Refusal::MaxRequestBody);
        return text(
            413,
            "the request body is larger than this tenant accepts (limits.max_request_body_mib)\n".to_owned(),
        );
    }
    // The tenant's own budget and reserve (instance_slots): without a slot, only its own
    // requests are refused. Every request handled at once holds one, so they bound the host too.
    let slot = match component.workload.usage.try_instance() {
        Ok(slot) => slot,
        Err(refusal) => {
            // Debug only: the tenant decides how often this happens.
            tracing::debug!(
                tenant = &*component.workload.tenant,
                component = component.name,
                "503: {refusal}"
            );
            return text(503, format!("{refusal}\n"));
        }
    };
    let request_id = next_request_id();
    let span = tracing::info_span!(
        "http.request",
        tenant = &*component.workload.tenant,
        component = component.name,
        request_id,
        method = %request.method(),
        path = request.uri().path(),
        status = tracing::field::Empty,
    );
    // On the least loaded of the tenant's shards (its own unless `limits.shards` says more).
    let in_flight = shards.place(&component.workload.shards);
    component.workload.usage.count_placed(in_flight.shard());
    let handle = component.clone().handle(request, slot).instrument(span.clone());
    let task = shards.spawn(in_flight.shard(), async move {
        let _in_flight = in_flight;
        handle.await
    });
    // The details (traps, the component's errors) go to the log; the client, who may be anyone,
    // gets a short message and the id to quote.
    let response = match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(e @ InstanceError::TimedOut(_))) => {
            component.workload.usage.count_refusal(Refusal::RequestTimeout);
            tracing::warn!(parent: &span, "request failed: {e}");
            text(504, format!("the component did not answer in time (request id {request_id})\n"))
        }
        Ok(Err(e)) => {
            tracing::warn!(parent: &span, "request failed: {e:#}");
            text(500, format!("internal error (request id {request_id})\n"))
        }
        Err(e) => {
            tracing::warn!(parent: &span, "request cancelled: {e}");
            text(503, format!("the request was cancelled (request id {request_id})\n"))
        }
    };
    span.record("status", response.status().as_u16());
    response
}
