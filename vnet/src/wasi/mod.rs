//! The `wasi:sockets` host that wasm guests see: TCP over the workload's virtual [`Network`],
//! egress through its [`Egress`] gate, and name lookups decided by its policy.
//!
//! ```text
//!   guest ── wasi:sockets/tcp ──────────── tcp.rs ── Network (127.0.0.0/8, ::1: in-process)
//!                                                 └─ Egress (other addresses: policy, real TCP)
//!         ── wasi:sockets/ip-name-lookup ─ lookup.rs ── Egress (policy, DNS, name bindings)
//!         ── wasi:sockets/udp-create-socket ─ not-supported
//!         ── everything else ─────────────── wasmtime-wasi, unchanged
//! ```
//!
//! [`add_to_linker`] links all of wasmtime-wasi first and then shadows those interfaces with
//! ours, so a guest can never reach wasmtime-wasi's real sockets.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode};

use crate::egress::Egress;
use crate::network::Network;

mod lookup;
mod streams;
mod tcp;
mod tcp_connect;

pub use lookup::ResolveStream;
pub use tcp::TcpSocket;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "switchyard:vnet/sockets",
        imports: { default: trappable },
        require_store_data_send: true,
        trappable_error_type: {
            "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
        },
        with: {
            "wasi:io": wasmtime_wasi_io::bindings::wasi::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
            "wasi:sockets/udp": wasmtime_wasi::p2::bindings::sockets::udp,
            "wasi:sockets/tcp.tcp-socket": super::TcpSocket,
            "wasi:sockets/ip-name-lookup.resolve-address-stream": super::ResolveStream,
        },
    });
}

use bindings::wasi::sockets::{ip_name_lookup, tcp as tcp_bindings, tcp_create_socket, udp_create_socket};

/// What one guest instance's sockets are attached to: its workload's network and egress gate,
/// and its own name for logs. Lives in the store's data, next to the `WasiCtx`.
#[derive(Debug)]
pub struct GuestNet {
    network: Arc<Network>,
    egress: Arc<Egress>,
    component: Arc<str>,
    /// Socket resources this guest holds (bound or not); at most the network's `max_sockets`.
    sockets: usize,
}

impl GuestNet {
    /// Sockets of the component `component`, on `network`, leaving it through `egress`.
    pub fn new(network: Arc<Network>, egress: Arc<Egress>, component: impl Into<Arc<str>>) -> Self {
        GuestNet { network, egress, component: component.into(), sockets: 0 }
    }

    /// The workload's network.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }
}

/// The borrow of a store's data that the socket host functions work on.
pub struct GuestNetView<'a> {
    /// The guest's network context.
    pub net: &'a mut GuestNet,
    /// The store's resource table (shared with wasmtime-wasi).
    pub table: &'a mut ResourceTable,
}

/// Store data that carries a [`GuestNet`].
pub trait GuestNetState: Send {
    /// The view of the guest's sockets and the resource table.
    fn guest_net(&mut self) -> GuestNetView<'_>;
}

struct HasGuestNet;

impl HasData for HasGuestNet {
    type Data<'a> = GuestNetView<'a>;
}

/// Links every wasmtime-wasi P2 interface (async) and then replaces `wasi:sockets/tcp`,
/// `tcp-create-socket`, `ip-name-lookup` and `udp-create-socket` with the virtual network's.
pub fn add_to_linker<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: wasmtime_wasi::WasiView + GuestNetState + 'static,
{
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    add_sockets_to_linker(linker)
}

/// Replaces the socket interfaces in a linker that already holds wasmtime-wasi's (for hosts
/// that link wasmtime-wasi themselves, such as `wasmtime-wasi-http`'s `add_to_linker_async`).
pub fn add_sockets_to_linker<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: GuestNetState + 'static,
{
    linker.allow_shadowing(true);
    let result = (|| {
        tcp_bindings::add_to_linker::<T, HasGuestNet>(linker, T::guest_net)?;
        tcp_create_socket::add_to_linker::<T, HasGuestNet>(linker, T::guest_net)?;
        ip_name_lookup::add_to_linker::<T, HasGuestNet>(linker, T::guest_net)?;
        udp_create_socket::add_to_linker::<T, HasGuestNet>(linker, T::guest_net)
    })();
    linker.allow_shadowing(false);
    result
}

// Our interfaces use `wasi:sockets/network` types, so their bindings require these; they behave
// as wasmtime-wasi's (whose `network` interface stays linked).
impl network::Host for GuestNetView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        error: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let error = self.table.get(&error)?;
        Ok(error.downcast_ref::<std::io::Error>().map(ErrorCode::from))
    }
}

impl network::HostNetwork for GuestNetView<'_> {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl udp_create_socket::Host for GuestNetView<'_> {
    fn create_udp_socket(
        &mut self,
        _family: network::IpAddressFamily,
    ) -> Result<Resource<wasmtime_wasi::p2::UdpSocket>, SocketError> {
        Err(ErrorCode::NotSupported.into())
    }
}
