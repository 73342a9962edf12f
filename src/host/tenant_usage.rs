//! What a tenant's guests use of the host, counted per tenant and enforced where it is a budget
//! (THREATS.md invariant 2):
//!
//! - **memory**: the linear memory of all the tenant's instances together is held within
//!   `limits.max_memory_mib`; an instance whose growth would pass it sees `memory.grow` fail (its
//!   own allocation fails), nobody else's;
//! - **CPU**: the time slices (`engine::TIME_SLICE`) in which one of the tenant's guests was
//!   running when the slice ended, a sampled measure of its CPU time;
//! - **instances**: the tenant's http component instances alive at once are held within
//!   `limits.max_instances` and the host's slots (`instance_slots`): a request beyond gets `503`,
//!   nobody else's.
//!
//! All three are on `/metrics`, with how many of the tenant's requests each budget refused or
//! cut short ([`Refusal`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use wasmtime::ResourceLimiter;

use super::instance_slots::{InstanceSlot, NoSlot, TenantSlots};

/// One tenant's usage, shared by all its instances.
#[derive(Debug, Clone)]
pub struct TenantUsage {
    memory_used: Arc<AtomicUsize>,
    memory_limit: usize,
    cpu_slices: Arc<AtomicU64>,
    slots: TenantSlots,
    refusals: Arc<[AtomicU64; Refusal::ALL.len()]>,
    /// Requests whose instance was placed on each shard.
    placed: Arc<[AtomicU64]>,
}

/// A budget of the tenant's that refused one of its requests, or cut it short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_instances` instances were alive (`503`).
    MaxInstances,
    /// The tenant's reserve was in use and the host's shared slots all taken (`503`).
    SharedSlots,
    /// The body was larger than `limits.max_request_body_mib` (`413`, or a failed read).
    MaxRequestBody,
    /// The body paused longer than `limits.request_body_timeout` (a failed read).
    RequestBodyTimeout,
    /// No response within `limits.request_timeout` (`504`).
    RequestTimeout,
}

impl Refusal {
    /// Every kind, in the order `/metrics` lists them.
    pub const ALL: [Refusal; 5] = [
        Refusal::MaxInstances,
        Refusal::SharedSlots,
        Refusal::MaxRequestBody,
        Refusal::RequestBodyTimeout,
        Refusal::RequestTimeout,
    ];

    /// Its label on `/metrics`: the limit's key, or `shared_slots`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxInstances => "max_instances",
            Refusal::SharedSlots => "shared_slots",
            Refusal::MaxRequestBody => "max_request_body_mib",
            Refusal::RequestBodyTimeout => "request_body_timeout",
            Refusal::RequestTimeout => "request_timeout",
        }
    }
}

impl TenantUsage {
    /// A tenant with no usage yet, whose instances may hold `memory_limit` bytes together and
    /// whose http instances take `slots`, on a host of `shards` shards.
    pub fn new(memory_limit: usize, slots: TenantSlots, shards: usize) -> Self {
        TenantUsage {
            memory_used: Arc::default(),
            memory_limit,
            cpu_slices: Arc::default(),
            slots,
            refusals: Arc::default(),
            placed: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts a request whose instance was placed on `shard`.
    pub fn count_placed(&self, shard: usize) {
        if let Some(counter) = self.placed.get(shard) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests whose instance was placed on each shard, by shard.
    pub fn placed(&self) -> Vec<u64> {
        self.placed.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// A slot for one more http component instance, if the tenant is below its cap and has one
    /// (reserved, or shared) left; the instance counts until the slot drops. A refusal is
    /// counted against the budget that made it.
    pub fn try_instance(&self) -> Result<InstanceSlot, NoSlot> {
        self.slots.try_take().inspect_err(|refusal| {
            self.count_refusal(match refusal {
                NoSlot::TenantCap => Refusal::MaxInstances,
                NoSlot::HostFull => Refusal::SharedSlots,
            })
        })
    }

    /// Http component instances alive now.
    pub fn instances(&self) -> usize {
        self.slots.in_use()
    }

    /// Bytes of linear memory the tenant's instances hold now.
    pub fn memory_used(&self) -> usize {
        self.memory_used.load(Ordering::Relaxed)
    }

    /// The most they may hold together.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Time slices in which one of the tenant's guests was running.
    pub fn cpu_slices(&self) -> u64 {
        self.cpu_slices.load(Ordering::Relaxed)
    }

    /// Counts one request refused or cut short by `budget`.
    pub fn count_refusal(&self, budget: Refusal) {
        self.refusals[budget as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests refused or cut short by `budget` so far.
    pub fn refusals(&self, budget: Refusal) -> u64 {
        self.refusals[budget as usize].load(Ordering::Relaxed)
    }

    /// Counts one slice of running guest code.
    pub fn count_slice(&self) {
        self.cpu_slices.fetch_add(1, Ordering::Relaxed);
    }

    /// The share of one new instance: what it holds is given back when it is dropped.
    pub fn instance(&self) -> InstanceMemory {
        InstanceMemory { tenant: self.clone(), held: 0, last_grant: 0 }
    }
}

/// One instance's linear memory, within its tenant's budget (a `wasmtime` resource limiter).
#[derive(Debug)]
pub struct InstanceMemory {
    tenant: TenantUsage,
    held: usize,
    last_grant: usize,
}

impl InstanceMemory {
    /// The tenant this instance counts against.
    pub fn tenant(&self) -> &TenantUsage {
        &self.tenant
    }
}

impl ResourceLimiter for InstanceMemory {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let delta = desired.saturating_sub(current);
        let limit = self.tenant.memory_limit;
        let granted = self
            .tenant
            .memory_used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(delta).filter(|total| *total <= limit)
            })
            .is_ok();
        if granted {
            self.held += delta;
            self.last_grant = delta;
        } else {
            tracing::debug!(
                desired,
                limit,
                "memory.grow refused: the tenant's instances would pass limits.max_memory_mib"
            );
        }
        Ok(granted)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The growth that was granted did not happen: give it back.
        let grant = std::mem::take(&mut self.last_grant);
        self.held -= grant;
        self.tenant.memory_used.fetch_sub(grant, Ordering::AcqRel);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }
}

impl Drop for InstanceMemory {
    fn drop(&mut self) {
        self.tenant.memory_used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_share_their_tenants_budget_and_give_it_back_when_dropped() {
        use super::super::instance_slots::{SharedSlots, SlotPlan, TenantSlots};
        let slots = TenantSlots::new(1, SharedSlots::new(&SlotPlan { services: 0, reserved: 0, shared: 0 }));
        let tenant = TenantUsage::new(100, slots, 1);
        let mut a = tenant.instance();
        let mut b = tenant.instance();
        assert!(a.memory_growing(0, 60, None).unwrap());
        assert!(!b.memory_growing(0, 60, None).unwrap(), "60 + 60 passes the budget of 100");
        assert!(b.memory_growing(0, 40, None).unwrap());
        assert_eq!(tenant.memory_used(), 100);
        b.memory_grow_failed(wasmtime::Error::msg("the OS said no")).unwrap();
        assert_eq!(tenant.memory_used(), 60, "a failed growth is given back");
        drop(a);
        assert_eq!(tenant.memory_used(), 0);
        assert!(b.memory_growing(0, 100, None).unwrap());
        drop(b);
        assert_eq!(tenant.memory_used(), 0);
    }
}
