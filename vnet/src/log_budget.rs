//! A budget of log lines for something a tenant controls (its denied egress, its guests' output),
//! so that a tenant cannot flood the host's log (THREATS.md invariants 2 and 6): a token bucket
//! of [`LogBudget::burst`] lines refilled at [`LogBudget::per_second`], with a count of the lines
//! it held back, to be reported in one summary line when lines are allowed again.
//!
//! Time is passed in, so the budget is tested without sleeping. [`LogGate`] is the budget as the
//! host uses it: shared by everything that logs for one tenant or component, and sure to write
//! the summary of held-back lines even when no line comes after them.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A token bucket of log lines, with the number held back since the last allowed line.
#[derive(Debug, Clone)]
pub struct LogBudget {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
    held_back: u64,
    summary_due: bool,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogVerdict {
    /// Write it; `held_back` lines were suppressed before it (write a summary first when > 0).
    Write {
        /// Lines suppressed since the last written one.
        held_back: u64,
    },
    /// Drop it (counted).
    Suppress,
}

impl LogBudget {
    /// A budget of `burst` lines at once, refilled at `per_second` lines a second.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        LogBudget {
            per_second: f64::from(per_second),
            burst,
            tokens: burst,
            last: None,
            held_back: 0,
            summary_due: false,
        }
    }

    /// Lines a second, in the long run.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Lines at once.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Decides one line at `now`.
    pub fn take(&mut self, now: Instant) -> LogVerdict {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            let held_back = std::mem::take(&mut self.held_back);
            LogVerdict::Write { held_back }
        } else {
            self.held_back += 1;
            LogVerdict::Suppress
        }
    }

    /// Whether the caller should queue this budget for a later summary of its held-back lines:
    /// true once until [`LogBudget::take_held_back`] (a queued budget is summarised then,
    /// whatever it held back in the meantime).
    fn summary_needed(&mut self) -> bool {
        !std::mem::replace(&mut self.summary_due, true)
    }

    /// The lines held back since the last written one, now reported (the count starts again).
    fn take_held_back(&mut self) -> u64 {
        self.summary_due = false;
        std::mem::take(&mut self.held_back)
    }
}

/// How long after lines begin to be held back their summary is written, if no line written in
/// the meantime carried it: at most one such summary a second.
pub const SUMMARY_AFTER: Duration = Duration::from_secs(1);

/// A [`LogBudget`] shared by everything that logs for one tenant or component, with the line that
/// reports what it held back. Every held-back line is reported: in the summary written before the
/// next allowed line, or — when none comes — about [`SUMMARY_AFTER`] after the first of them, by
/// one background thread of the process (so that a shard, busy with the guest being held back,
/// never runs a timer for it). Cheap to clone.
#[derive(Clone)]
pub struct LogGate(Arc<GateInner>);

struct GateInner {
    budget: Mutex<LogBudget>,
    summary: Box<dyn Fn(u64) + Send + Sync>,
}

impl GateInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogBudget> {
        self.budget.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the summary of what is held back now, if anything.
    fn summarise(&self) {
        let held_back = self.lock().take_held_back();
        if held_back > 0 {
            (self.summary)(held_back);
        }
    }
}

impl std::fmt::Debug for LogGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGate").field("budget", &*self.0.lock()).finish_non_exhaustive()
    }
}

/// Gates with held-back lines and no summary written yet: each at most once (its `summary_due`).
static DUE: Mutex<Vec<Weak<GateInner>>> = Mutex::new(Vec::new());

/// Writes the summary of every gate in [`DUE`].
fn summarise_due() {
    let due = std::mem::take(&mut *DUE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    for gate in due.iter().filter_map(Weak::upgrade) {
        gate.summarise();
    }
}

/// Starts, once per process, the thread that writes due summaries every [`SUMMARY_AFTER`].
fn start_summary_thread() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let started = std::thread::Builder::new().name("switchyard-log-summaries".to_owned()).spawn(|| {
            loop {
                std::thread::sleep(SUMMARY_AFTER);
                summarise_due();
            }
        });
        if let Err(e) = started {
            tracing::error!("cannot start the log summary thread ({e}); held-back lines are reported with the next line written");
        }
    });
}

impl LogGate {
    /// A gate of `per_second` lines a second and `burst` at once; `summary` writes the line that
    /// says how many were held back.
    pub fn new(per_second: u32, burst: u32, summary: impl Fn(u64) + Send + Sync + 'static) -> Self {
        LogGate(Arc::new(GateInner {
            budget: Mutex::new(LogBudget::new(per_second, burst)),
            summary: Box::new(summary),
        }))
    }

    /// Whether one line may be written now. When it may and lines were held back before it, their
    /// summary has been written first.
    pub fn allows(&self) -> bool {
        let (verdict, due) = {
            let mut budget = self.0.lock();
            let verdict = budget.take(Instant::now());
            let due = verdict == LogVerdict::Suppress && budget.summary_needed();
            (verdict, due)
        };
        match verdict {
            LogVerdict::Write { held_back } => {
                if held_back > 0 {
                    (self.0.summary)(held_back);
                }
                true
            }
            LogVerdict::Suppress => {
                if due {
                    DUE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Arc::downgrade(&self.0));
                    start_summary_thread();
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn held_back_lines_are_summarised_when_no_line_follows_them() {
        let reported = Arc::new(AtomicU64::new(0));
        let summaries = Arc::new(AtomicU64::new(0));
        let gate = {
            let (reported, summaries) = (reported.clone(), summaries.clone());
            LogGate::new(1, 2, move |n| {
                reported.fetch_add(n, Ordering::SeqCst);
                summaries.fetch_add(1, Ordering::SeqCst);
            })
        };
        let allowed = (0..1000).filter(|_| gate.allows()).count() as u64;
        assert_eq!(allowed, 2);
        summarise_due();
        assert_eq!(reported.load(Ordering::SeqCst), 998, "every held-back line reported");
        assert_eq!(summaries.load(Ordering::SeqCst), 1);
        summarise_due();
        assert_eq!(summaries.load(Ordering::SeqCst), 1, "nothing held back since: no summary");
        // Held back again: reported once, never twice.
        let allowed_later = (0..500).filter(|_| gate.allows()).count() as u64;
        summarise_due();
        summarise_due();
        assert_eq!(reported.load(Ordering::SeqCst) + allowed + allowed_later, 1500);
    }

    #[test]
    fn a_burst_passes_then_lines_are_held_back_and_counted_until_the_budget_refills() {
        let mut budget = LogBudget::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.take(t0), LogVerdict::Write { held_back: 0 });
        }
        for _ in 0..1000 {
            assert_eq!(budget.take(t0), LogVerdict::Suppress);
        }
        // 100 ms later, one line's worth is back: it is written, with the count of the held-back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(budget.take(t1), LogVerdict::Write { held_back: 1000 });
        assert_eq!(budget.take(t1), LogVerdict::Suppress);
        // A long pause refills the burst, never more.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(matches!(budget.take(t2), LogVerdict::Write { .. }));
        }
        assert_eq!(budget.take(t2), LogVerdict::Suppress);
    }
}
