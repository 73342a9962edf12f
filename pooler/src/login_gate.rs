//! The logins in progress on one pooler: at most a fixed number at once, and when one more
//! arrives at a full gate the oldest is told to give up. A client that connects and never
//! finishes its login (or sends it a byte at a time) therefore holds no session slot and at
//! most one handshake-sized buffer, and cannot keep a client that logs in promptly out: to
//! crowd it out, an attacker would have to open connections faster than a login completes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Logins in progress at once on one pooler.
pub const MAX_LOGINS_IN_PROGRESS: usize = 256;

/// The gate.
#[derive(Debug, Clone)]
pub struct LoginGate {
    inner: Arc<Mutex<Logins>>,
    max: usize,
}

#[derive(Debug, Default)]
struct Logins {
    next_id: u64,
    /// Oldest first.
    waiting: VecDeque<(u64, Arc<Notify>)>,
    evicted: u64,
}

/// One login in progress; it leaves the gate when dropped.
#[derive(Debug)]
pub struct LoginTicket {
    gate: LoginGate,
    id: u64,
    evict: Arc<Notify>,
}

impl LoginGate {
    /// A gate for `max` logins at once (at least one).
    pub fn new(max: usize) -> Self {
        LoginGate { inner: Arc::default(), max: max.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, Logins> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets one more login in, telling the oldest to give up if the gate is full.
    pub fn enter(&self) -> LoginTicket {
        let evict = Arc::new(Notify::new());
        let mut logins = self.lock();
        let id = logins.next_id;
        logins.next_id += 1;
        while logins.waiting.len() >= self.max {
            match logins.waiting.pop_front() {
                Some((_, oldest)) => {
                    oldest.notify_one();
                    logins.evicted += 1;
                }
                None => break,
            }
        }
        logins.waiting.push_back((id, evict.clone()));
        LoginTicket { gate: self.clone(), id, evict }
    }

    /// Logins in progress now.
    pub fn in_progress(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Logins told to give up so far.
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }
}

impl LoginTicket {
    /// Completes when a newer login needs this one's place.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for LoginTicket {
    fn drop(&mut self) {
        let mut logins = self.gate.lock();
        if let Some(at) = logins.waiting.iter().position(|(id, _)| *id == self.id) {
            logins.waiting.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_evicts_the_oldest_login() {
        let gate = LoginGate::new(2);
        let first = gate.enter();
        let second = gate.enter();
        assert_eq!(gate.in_progress(), 2);
        let third = gate.enter();
        assert_eq!((gate.in_progress(), gate.evicted()), (2, 1));
        tokio::time::timeout(std::time::Duration::from_secs(5), first.evicted()).await.expect("oldest told");
        let told = tokio::time::timeout(std::time::Duration::from_millis(20), second.evicted()).await;
        assert!(told.is_err(), "only the oldest is evicted");
        drop((first, second));
        assert_eq!(gate.in_progress(), 1, "an evicted ticket dropping does not remove another");
        drop(third);
        assert_eq!(gate.in_progress(), 0);
    }
}
