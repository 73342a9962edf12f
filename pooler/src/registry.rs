//! Live lists of a pool's client sessions and backend connections, for `SHOW CLIENTS` and
//! `SHOW SERVERS`. Each row lives exactly as long as the [`Entry`] guard its owner holds (a
//! session, a backend connection): dropping the guard removes the row, so the lists never keep
//! anything that is gone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A list of rows keyed by a registry-assigned id.
#[derive(Debug)]
pub struct Registry<T> {
    rows: Arc<Mutex<BTreeMap<u64, T>>>,
    next: Arc<AtomicU64>,
}

impl<T> Clone for Registry<T> {
    fn clone(&self) -> Self {
        Registry { rows: self.rows.clone(), next: self.next.clone() }
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry { rows: Arc::default(), next: Arc::new(AtomicU64::new(1)) }
    }
}

fn lock<T>(rows: &Mutex<BTreeMap<u64, T>>) -> MutexGuard<'_, BTreeMap<u64, T>> {
    rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Clone> Registry<T> {
    /// Adds `row`; it stays until the returned guard drops.
    pub fn insert(&self, row: T) -> Entry<T> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.rows).insert(id, row);
        Entry { id, rows: self.rows.clone() }
    }

    /// A copy of every row, in insertion order.
    pub fn rows(&self) -> Vec<T> {
        lock(&self.rows).values().cloned().collect()
    }

    /// Rows now.
    pub fn len(&self) -> usize {
        lock(&self.rows).len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A row's lifetime: removes the row when dropped.
#[derive(Debug)]
pub struct Entry<T> {
    id: u64,
    rows: Arc<Mutex<BTreeMap<u64, T>>>,
}

impl<T> Entry<T> {
    /// Changes the row.
    pub fn update(&self, change: impl FnOnce(&mut T)) {
        if let Some(row) = lock(&self.rows).get_mut(&self.id) {
            change(row);
        }
    }
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        lock(&self.rows).remove(&self.id);
    }
}

/// A client session, as `SHOW CLIENTS` lists it.
#[derive(Debug, Clone)]
pub struct ClientRow {
    /// The pooler's id of the session.
    pub id: u32,
    /// Where it came from.
    pub peer: String,
    /// Its user.
    pub user: String,
    /// When it logged in.
    pub since: Instant,
    /// The backend connection it holds now (its server id), if any.
    pub holding: Option<u32>,
    /// Why it is pinned, if it is (comma-separated reasons).
    pub pinned: String,
    /// Since when it has been idle inside a transaction, if it is.
    pub idle_in_transaction_since: Option<Instant>,
}

/// A backend connection, as `SHOW SERVERS` lists it.
#[derive(Debug, Clone)]
pub struct ServerRow {
    /// The server's id of the connection.
    pub connection_id: u32,
    /// The backend's address.
    pub backend: String,
    /// When it was opened.
    pub since: Instant,
    /// Whether a session holds it now.
    pub in_use: bool,
    /// When it last changed hands.
    pub changed: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_live_as_long_as_their_entry() {
        let registry = Registry::<u32>::default();
        let a = registry.insert(1);
        let b = registry.insert(2);
        b.update(|v| *v = 20);
        assert_eq!(registry.rows(), [1, 20]);
        drop(a);
        assert_eq!(registry.rows(), [20]);
        drop(b);
        assert!(registry.is_empty());
    }
}
