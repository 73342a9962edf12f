//! One of a pool's `max_connections`, as a value.
//!
//! A [`Slot`] exists exactly while it is counted in the pool's `open`: it is made where the count
//! goes up, travels with the connection being opened and then inside it (idle, checked out,
//! handed to a waiter), and gives itself back when dropped — to an open of its own for the head
//! waiter if one waits, else to the pool. Whatever drops a connection (a release, a discard, a
//! broken ping, a session task cancelled with its connection in hand) therefore frees its slot,
//! once, and no path has to remember to.

use std::sync::{Arc, Weak};

use super::{Pool, Shared};

/// One counted place under a pool's `max_connections`.
pub(crate) struct Slot {
    pool: Weak<Shared>,
}

impl Slot {
    /// A slot the caller has just counted in `open` (under the pool's lock).
    pub(super) fn counted(pool: &Arc<Shared>) -> Self {
        Slot { pool: Arc::downgrade(pool) }
    }

    /// Uncounts nothing: the caller takes the slot's place in `open` over (to give it back its
    /// own way, under the lock).
    pub(super) fn into_counted(self) {
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
