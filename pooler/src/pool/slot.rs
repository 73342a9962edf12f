//! One of a pool's `max_connections`, as a value.
//!
//! A [`Slot`] exists exactly while it is counted in the pool's `open`: it is made where the count
//! goes up, travels with the connection being opened and then inside it (idle, checked out,
//! handed to a waiter), and gives itself back when dropped — to an open of its own for the head
//! waiter if one waits, else to the pool. Whatever drops a connection (a release, a discard, a
//! broken ping, a session task cancelled with its connection in hand) therefore frees its slot,
//! once, and no path has to remember to.

use std::sync::{Arc, Weak};

use super::{Pool, PoolState, Shared};

/// One counted place under a pool's `max_connections`.
pub(crate) struct Slot {
    pool: Weak<Shared>,
}

impl Slot {
    /// A new place under `max_connections`, counted in `state` (under the pool's lock; the caller
    /// has checked there is room).
    pub(super) fn take(state: &mut PoolState, shared: &Arc<Shared>) -> Self {
        state.open += 1;
        Slot::counted(shared)
    }

    /// The value of a place already counted in `open` (a freed one passed on).
    pub(super) fn counted(shared: &Arc<Shared>) -> Self {
        Slot { pool: Arc::downgrade(shared) }
    }

    /// Gives the place back under the pool's lock (`state`), without the `Drop` that would take
    /// the lock again.
    pub(super) fn uncount(self, state: &mut PoolState) {
        state.open -= 1;
        std::mem::forget(self);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Not while the pool's lock is held: no caller drops a connection under it.
        if let Some(shared) = self.pool.upgrade() {
            Pool { shared }.slot_freed();
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}
