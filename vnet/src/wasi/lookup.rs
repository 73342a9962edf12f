//! `wasi:sockets/ip-name-lookup`: a guest's name lookups, answered only for names its policy
//! allows (see [`Egress::lookup`](crate::egress::Egress::lookup)); the answers are bound to the
//! name so that connects to them are decided as that name.

use std::collections::VecDeque;
use std::net::IpAddr;

use tokio::task::JoinHandle;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::SocketResult;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network as NetworkCap};
use wasmtime_wasi_io::poll::{DynPollable, Pollable};

use super::GuestNetView;
use super::bindings::wasi::sockets::ip_name_lookup;
use crate::dns::DnsError;
use crate::egress::LookupError;

/// A lookup in progress or its answer (the `resolve-address-stream` resource).
pub struct ResolveStream(Lookup);

enum Lookup {
    Running(JoinHandle<Result<Vec<IpAddr>, ErrorCode>>),
    Answered(Result<VecDeque<IpAddr>, ErrorCode>),
}

impl Drop for ResolveStream {
    fn drop(&mut self) {
        if let Lookup::Running(task) = &self.0 {
            task.abort();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolveStream {
    async fn ready(&mut self) {
        if let Lookup::Running(task) = &mut self.0 {
            let outcome = task.await.unwrap_or(Err(ErrorCode::Unknown));
            self.0 = Lookup::Answered(outcome.map(VecDeque::from));
        }
    }
}

fn lookup_error(error: &LookupError) -> ErrorCode {
    match error {
        LookupError::InvalidName { .. } => ErrorCode::InvalidArgument,
        LookupError::Denied { .. } | LookupError::Blocked { .. } => ErrorCode::AccessDenied,
        LookupError::Dns { error: DnsError::NotFound { .. }, .. } => ErrorCode::NameUnresolvable,
        LookupError::Dns { error: DnsError::Config(_), .. } => ErrorCode::PermanentResolverFailure,
        LookupError::Dns { .. } => ErrorCode::TemporaryResolverFailure,
    }
}

impl ip_name_lookup::Host for GuestNetView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<NetworkCap>,
        name: String,
    ) -> SocketResult<Resource<ResolveStream>> {
        self.table.get(&network)?;
        let egress = self.net.egress.clone();
        let component = self.net.component.clone();
        let task = tokio::spawn(async move {
            egress.lookup(&component, &name).await.map_err(|e| {
                if matches!(e, LookupError::Dns { .. } | LookupError::InvalidName { .. }) {
                    tracing::info!(target: "switchyard::egress", tenant = egress.workload(), component = &*component, "{e}");
                }
                lookup_error(&e)
            })
        });
        Ok(self.table.push(ResolveStream(Lookup::Running(task)))?)
    }
}

impl ip_name_lookup::HostResolveAddressStream for GuestNetView<'_> {
    fn resolve_next_address(&mut self, this: Resource<ResolveStream>) -> SocketResult<Option<IpAddress>> {
        let stream = self.table.get_mut(&this)?;
        match &mut stream.0 {
            Lookup::Running(_) => Err(ErrorCode::WouldBlock.into()),
            Lookup::Answered(Err(code)) => Err((*code).into()),
            Lookup::Answered(Ok(addrs)) => Ok(addrs.pop_front().map(Into::into)),
        }
    }

    fn subscribe(&mut self, this: Resource<ResolveStream>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi_io::poll::subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<ResolveStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
