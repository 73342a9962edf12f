//! Outgoing HTTP from guests (`wasi:http/outgoing-handler`), decided by the tenant's policy.
//!
//! The request's `scheme://host:port` is decided first; a name is then resolved and every
//! address decided again (with the name bound to it), and the connection goes only to an address
//! that passed. Loopback destinations (`127.0.0.0/8`, `::1` in any address form, `localhost`, a
//! name that resolves to one) are the workload's own virtual network and need no entry, as for
//! sockets: a guest's request never reaches the host's own loopback. Denied requests fail with
//! `HTTP-request-denied`, which the guest can handle; the log says why.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::client::conn::http1;
use switchyard_policy::{HostName, Target};
use switchyard_vnet::egress::Egress;
use switchyard_vnet::tls::TlsClient;
use switchyard_vnet::{Network, is_virtual};
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::guest::Workload;

/// The longest wait for a connection or for the response's first byte when the guest sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The hooks of one guest instance.
pub struct HttpEgress {
    network: Arc<Network>,
    egress: Arc<Egress>,
    component: Arc<str>,
}

impl HttpEgress {
    /// The hooks of `component` in `workload`.
    pub fn new(workload: &Workload, component: &str) -> Self {
        HttpEgress {
            network: workload.network.clone(),
            egress: workload.egress.clone(),
            component: component.into(),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Result<(http::Response<WasiBody>, IoFuture), Error>;

impl WasiHttpHooks for HttpEgress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let (network, egress, component) =
            (self.network.clone(), self.egress.clone(), self.component.clone());
        Box::new(async move { send(&network, &egress, &component, request, options).await })
    }
}

async fn send(
    network: &Arc<Network>,
    egress: &Egress,
    component: &str,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(DEFAULT_TIMEOUT);
    let uri = request.uri().clone();
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(Error::HttpProtocolError),
    };
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let scheme = if https { "https" } else { "http" };

    let stream = connect(network, egress, component, scheme, host, port, connect_timeout).await?;
    let stream: Box<dyn StreamBox> = if https {
        let tls = TlsClient::webpki().map_err(|e| Error::InternalError(Some(e.to_string())))?;
        let tls_stream = tls.connect(host, stream).await.map_err(|e| {
            tracing::info!(target: "switchyard::egress", tenant = egress.workload(), component, "{e}");
            Error::TlsCertificateError
        })?;
        Box::new(tls_stream)
    } else {
        stream
    };

    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(Error::Hyper)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Origin-form on the wire: the authority travels in the Host header.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(Error::Hyper)?;
    let response = response.map(|body| body.map_err(Error::Hyper).boxed_unsync());
    Ok((response, Box::new(async { Ok(()) })))
}

/// A byte stream to the server: virtual or real, with or without TLS.
trait StreamBox: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> StreamBox for T {}

/// Decides and connects: virtual loopback directly, anything else through the policy.
async fn connect(
    network: &Arc<Network>,
    egress: &Egress,
    component: &str,
    scheme: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Box<dyn StreamBox>, Error> {
    let literal = host.parse::<IpAddr>().ok();
    let is_localhost = literal.is_none() && HostName::parse(host).is_ok_and(|n| n.as_str() == "localhost");
    if literal.is_some_and(is_virtual) || is_localhost {
        let ip = literal.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        return connect_virtual(network, SocketAddr::new(ip, port));
    }
    let target: Target =
        format!("{scheme}://{}:{port}", bracket(host)).parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    egress.check(component, &target).map_err(|_| Error::HttpRequestDenied)?;
    let addrs = match literal {
        Some(ip) => vec![ip],
        None => {
            let name = HostName::parse(host).map_err(|_| Error::HttpRequestUriInvalid)?;
            egress.resolve(&name).await.map_err(|e| {
                tracing::info!(target: "switchyard::egress", tenant = egress.workload(), component, "{e}");
                Error::DnsError { rcode: None, info_code: None }
            })?.addrs
        }
    };
    let mut last = Error::DestinationNotFound;
    for ip in addrs {
        if is_virtual(ip) {
            // A name that resolves to loopback means this workload's own network.
            return connect_virtual(network, SocketAddr::new(ip, port));
        }
        let addr_target: Target = format!("{scheme}://{}:{port}", bracket(&ip.to_string()))
            .parse()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        if egress.check(component, &addr_target).is_err() {
            last = Error::DestinationIpProhibited;
            continue;
        }
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(SocketAddr::new(ip, port))).await {
            Ok(Ok(stream)) => return Ok(Box::new(stream)),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

fn connect_virtual(network: &Arc<Network>, addr: SocketAddr) -> Result<Box<dyn StreamBox>, Error> {
    network.connect(addr).map(|c| Box::new(c) as Box<dyn StreamBox>).map_err(|e| {
        tracing::debug!(target: "switchyard::vnet", "{e}");
        Error::ConnectionRefused
    })
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}
