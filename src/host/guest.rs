//! The data of one guest instance's store: WASI context, resource table, virtual sockets, and
//! HTTP context with the egress hooks. Everything a guest can reach goes through here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_vnet::Network;
use switchyard_vnet::egress::Egress;
use switchyard_vnet::wasi::{GuestNet, GuestNetState, GuestNetView};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::cpu_budget::CpuBudget;
use super::engine::SliceClock;
use super::guest_output::ComponentOutput;
use super::http_egress::HttpEgress;
use super::tenant_usage::{InstanceMemory, TenantUsage};
use crate::config::EnvValue;

/// One tenant's shared parts: its virtual network and egress gate.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The tenant's name.
    pub tenant: Arc<str>,
    /// Its virtual network.
    pub network: Arc<Network>,
    /// Its egress gate.
    pub egress: Arc<Egress>,
    /// Its own shard (see [`super::shards`]): its services run there.
    pub shard: usize,
    /// The shards its http instances, pool sessions and forwarded connections may run on, its
    /// own first (`limits.shards`; just its own by default).
    pub shards: Arc<[usize]>,
    /// The longest one request's instance may live (`limits.request_timeout`).
    pub request_timeout: Duration,
    /// Its budgets of memory and instances, and its usage counters.
    pub usage: TenantUsage,
    /// The largest request body its http components read (`limits.max_request_body_mib`).
    pub max_request_body: u64,
    /// The longest pause between two pieces of a request body (`limits.request_body_timeout`).
    pub request_body_timeout: Duration,
    /// The share of one core each of its services may use (`limits.service_cpu_percent`).
    pub service_cpu_percent: u32,
}

/// Store data of a guest instance.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    net: GuestNet,
    http: WasiHttpCtx,
    hooks: HttpEgress,
    memory: InstanceMemory,
    cpu: Option<CpuBudget>,
    slice: SliceClock,
}

impl GuestState {
    /// The state of a fresh instance of `component` in `workload`, with environment `env` and
    /// the guest's standard output and error going to the log as the component's `output`.
    pub fn new(
        workload: &Workload,
        component: &str,
        env: &BTreeMap<String, EnvValue>,
        output: &ComponentOutput,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.stdout(output.stream("stdout")).stderr(output.stream("stderr")).arg(component);
        for (key, value) in env {
            wasi.env(key, value.expose());
        }
        GuestState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            net: GuestNet::new(workload.network.clone(), workload.egress.clone(), component),
            http: WasiHttpCtx::new(),
            hooks: HttpEgress::new(workload, component),
            memory: workload.usage.instance(),
            cpu: None,
            slice: SliceClock::default(),
        }
    }

    /// This instance, throttled to `budget` (services).
    pub fn with_cpu_budget(mut self, budget: CpuBudget) -> Self {
        self.cpu = Some(budget);
        self
    }

    /// The clock of this instance's slices: run the guest's futures under
    /// [`SliceClock::track`].
    pub fn slice_clock(&self) -> SliceClock {
        self.slice.clone()
    }

    /// Accounts one epoch tick at which this instance's guest code was running. A callback
    /// from a deadline that passed while the guest waited is no tick of its run: it is neither
    /// charged (a service woken a thousand times a second for a moment each is not using a
    /// thousand slices) nor yielded (a request's guest that just woke is not sent behind a busy
    /// guest's next slice); the next tick is its deadline.
    fn on_slice(&mut self) -> UpdateDeadline {
        if !self.slice.ticked_in_run() {
            return UpdateDeadline::Continue(1);
        }
        self.memory.tenant().count_slice();
        if let Some(wait) = self.cpu.as_mut().and_then(CpuBudget::on_slice) {
            return wait;
        }
        super::engine::end_of_slice(&self.slice)
    }

    /// A store for this instance: its memory within its tenant's budget, and time-sliced with
    /// each slice counted to its tenant.
    pub fn into_store(self, engine: &Engine) -> Store<GuestState> {
        let mut store = Store::new(engine, self);
        store.limiter(|state| &mut state.memory);
        super::engine::time_sliced(&mut store, GuestState::on_slice);
        store
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl GuestNetState for GuestState {
    fn guest_net(&mut self) -> GuestNetView<'_> {
        GuestNetView { net: &mut self.net, table: &mut self.table }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The linker every guest is instantiated with: all of WASI (sockets virtualised) and `wasi:http`.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    switchyard_vnet::wasi::add_sockets_to_linker(&mut linker)?;
    Ok(linker)
}
