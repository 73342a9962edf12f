//! The egress a workload was refused lately, for an operator's live view: a bounded ring of the
//! last [`RECENT_DENIALS`] denials (what, by which component, when, why) and a count of all of
//! them. Kept apart from the log, whose budget may hold lines back: the ring always has the
//! newest ones, and a tenant denied in a loop only ever replaces its own oldest entries.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Denials kept per workload.
pub const RECENT_DENIALS: usize = 16;

/// One refused egress attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedEgress {
    /// When it was refused.
    pub at: SystemTime,
    /// The component (or host part, such as `pool main`) that tried.
    pub component: String,
    /// What it tried to reach: a target (`tcp://10.0.0.1:5432`), a name looked up, or a socket.
    pub target: String,
    /// Why: the rule that refused it.
    pub reason: String,
}

/// The last [`RECENT_DENIALS`] denials of one workload, newest last, and how many there were.
#[derive(Debug, Default)]
pub struct RecentDenials {
    ring: Mutex<VecDeque<DeniedEgress>>,
    total: AtomicU64,
}

impl RecentDenials {
    /// Records one denial, dropping the oldest kept when the ring is full.
    pub fn record(&self, component: &str, target: String, reason: String) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let denied = DeniedEgress { at: SystemTime::now(), component: component.to_owned(), target, reason };
        let mut ring = self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if ring.len() == RECENT_DENIALS {
            ring.pop_front();
        }
        ring.push_back(denied);
    }

    /// The kept denials, oldest first.
    pub fn recent(&self) -> Vec<DeniedEgress> {
        self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned().collect()
    }

    /// Every denial recorded so far.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_counts_them_all() {
        let denials = RecentDenials::default();
        for i in 0..(RECENT_DENIALS + 5) {
            denials.record("web", format!("tcp://10.0.0.{i}:80"), "not allowed".to_owned());
        }
        let recent = denials.recent();
        assert_eq!(recent.len(), RECENT_DENIALS);
        assert_eq!(recent[0].target, "tcp://10.0.0.5:80");
        assert_eq!(recent.last().map(|d| d.target.as_str()), Some("tcp://10.0.0.20:80"));
        assert_eq!(denials.total(), (RECENT_DENIALS + 5) as u64);
    }
}
