//! The host's instance slots, divided so that no tenant can take another's (THREATS.md
//! invariant 2).
//!
//! The engine's pooling allocator holds a fixed number of instance slots. They are sized from the
//! config, as three parts:
//!
//! - one slot per declared service (a service's instance is always alive, restarts into its own
//!   slot);
//! - each tenant with http components keeps a **reserve** of `min(limits.max_instances,
//!   RESERVED_SLOTS)` slots that only its own requests use;
//! - [`SHARED_SLOTS`] more that any tenant borrows past its reserve, up to its own
//!   `limits.max_instances` (none when no tenant has http components).
//!
//! A request takes its tenant's cap permit first, then a reserved slot, then a shared one; with
//! none left it is refused with `503` — its own, never a neighbour's. Operators choose the caps,
//! so several tenants' `limits.max_instances` may add up past the shared slots: tenants that fill
//! them still leave every other tenant its reserve.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ComponentKind, Config};

/// Slots any tenant may borrow past its reserve (up to its own `limits.max_instances`).
pub const SHARED_SLOTS: u32 = 1000;

/// Slots kept for each tenant's own http instances (fewer if its `limits.max_instances` is).
pub const RESERVED_SLOTS: u32 = 4;

/// The most slots one host holds. Each slot reserves about 8 GiB of virtual address space (two
/// linear memories of 4 GiB plus guards, so that wasm bounds checks are elided); 10,000 of them
/// use 80 of the 128 TiB a Linux process may address.
pub const MAX_SLOTS: u32 = 10_000;

/// How many slots a config needs, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPlan {
    /// One per declared service.
    pub services: u32,
    /// The tenants' reserves together.
    pub reserved: u32,
    /// [`SHARED_SLOTS`] when any tenant has http components, else none.
    pub shared: u32,
}

/// The config needs more slots than one host holds.
#[derive(Debug, thiserror::Error)]
#[error(
    "the tenants need {needed} instance slots ({services} services, {reserved} reserved for http \
     components: min(limits.max_instances, {RESERVED_SLOTS}) per tenant, {shared} shared), \
     more than the {MAX_SLOTS} one host holds; run fewer tenants on this host"
)]
pub struct TooManySlots {
    needed: u64,
    services: u32,
    reserved: u32,
    shared: u32,
}

impl SlotPlan {
    /// The slots `config` needs.
    pub fn for_config(config: &Config) -> Result<Self, TooManySlots> {
        let (mut services, mut reserved, mut shared) = (0u64, 0u64, 0u32);
        for tenant in &config.tenants {
            let mut has_http = false;
            for component in &tenant.components {
                match component.kind {
                    ComponentKind::Service(_) => services += 1,
                    ComponentKind::Http(_) => has_http = true,
                }
            }
            if has_http {
                reserved += u64::from(tenant.limits.max_instances.min(RESERVED_SLOTS));
                shared = SHARED_SLOTS;
            }
        }
        let needed = services + reserved + u64::from(shared);
        let to_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        if needed > u64::from(MAX_SLOTS) {
            return Err(TooManySlots {
                needed,
                services: to_u32(services),
                reserved: to_u32(reserved),
                shared,
            });
        }
        Ok(SlotPlan { services: to_u32(services), reserved: to_u32(reserved), shared })
    }

    /// Every slot: services, reserves and the shared ones (at most [`MAX_SLOTS`]).
    pub fn total(&self) -> u32 {
        self.services + self.reserved + self.shared
    }
}

/// The host's shared slots, borrowed by tenants past their reserve. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedSlots {
    permits: Arc<Semaphore>,
    size: usize,
}

impl SharedSlots {
    /// The shared slots of `plan`.
    pub fn new(plan: &SlotPlan) -> Self {
        let size = plan.shared as usize;
        SharedSlots { permits: Arc::new(Semaphore::new(size)), size }
    }

    /// Shared slots held now.
    pub fn in_use(&self) -> usize {
        self.size - self.permits.available_permits()
    }

    /// Shared slots in all.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Why a request got no instance slot; either way it is the tenant's own `503`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    /// The tenant has `limits.max_instances` instances alive.
    #[error("too many requests in flight for this tenant (limits.max_instances)")]
    TenantCap,
    /// The tenant's reserve is in use and the host's shared slots are all borrowed.
    #[error(
        "this tenant's reserved instance slots are in use and the host's shared instance slots are all taken"
    )]
    HostFull,
}

/// One tenant's http instance slots: at most `max_instances` alive, from its reserve first, then
/// from the host's shared slots. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TenantSlots {
    cap: Arc<Semaphore>,
    max_instances: usize,
    reserve: Arc<Semaphore>,
    shared: SharedSlots,
}

impl TenantSlots {
    /// The slots of a tenant with `limits.max_instances` = `max_instances` (its reserve as
    /// [`SlotPlan`] counts it), borrowing from `shared`.
    pub fn new(max_instances: u32, shared: SharedSlots) -> Self {
        TenantSlots {
            cap: Arc::new(Semaphore::new(max_instances as usize)),
            max_instances: max_instances as usize,
            reserve: Arc::new(Semaphore::new(max_instances.min(RESERVED_SLOTS) as usize)),
            shared,
        }
    }

    /// A slot for one more instance, held until the returned value drops.
    pub fn try_take(&self) -> Result<InstanceSlot, NoSlot> {
        let cap = self.cap.clone().try_acquire_owned().map_err(|_| NoSlot::TenantCap)?;
        let slot = self
            .reserve
            .clone()
            .try_acquire_owned()
            .or_else(|_| self.shared.permits.clone().try_acquire_owned())
            .map_err(|_| NoSlot::HostFull)?;
        Ok(InstanceSlot { _slot: slot, _cap: cap })
    }

    /// Instances alive now.
    pub fn in_use(&self) -> usize {
        self.max_instances - self.cap.available_permits()
    }
}

/// One http instance's slot (from its tenant's reserve or the shared ones) and its place under
/// the tenant's cap; both are given back when it drops. Drop it after the instance's store, so
/// that the engine's slot is free before anyone may take it again.
#[derive(Debug)]
pub struct InstanceSlot {
    _slot: OwnedSemaphorePermit,
    _cap: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_past_its_reserve_borrows_shared_slots_and_others_keep_their_reserve() {
        let shared = SharedSlots::new(&SlotPlan { services: 0, reserved: 0, shared: SHARED_SLOTS });
        let greedy = TenantSlots::new(5_000, shared.clone());
        let neighbour = TenantSlots::new(100, shared.clone());
        let held: Vec<_> = std::iter::from_fn(|| greedy.try_take().ok()).take(5_000).collect();
        assert_eq!(held.len(), (RESERVED_SLOTS + SHARED_SLOTS) as usize);
        assert_eq!(greedy.try_take().err(), Some(NoSlot::HostFull));
        assert_eq!(shared.in_use(), SHARED_SLOTS as usize);
        let reserve: Vec<_> = (0..RESERVED_SLOTS).map(|_| neighbour.try_take().expect("reserved")).collect();
        assert_eq!(neighbour.try_take().err(), Some(NoSlot::HostFull), "past its reserve, none shared left");
        drop(held);
        assert_eq!(shared.in_use(), 0);
        assert_eq!(neighbour.in_use(), reserve.len());
    }

    #[test]
    fn the_cap_comes_before_any_slot() {
        let shared = SharedSlots::new(&SlotPlan { services: 0, reserved: 0, shared: SHARED_SLOTS });
        let small = TenantSlots::new(2, shared.clone());
        let (_a, _b) = (small.try_take().unwrap(), small.try_take().unwrap());
        assert_eq!(small.try_take().err(), Some(NoSlot::TenantCap));
        assert_eq!(shared.in_use(), 0, "a cap of 2 is all reserve");
    }
}
