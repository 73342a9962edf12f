//! A budget of log lines for something a tenant controls (its denied egress, its guests' output),
//! so that a tenant cannot flood the host's log (THREATS.md invariants 2 and 6): a token bucket
//! of [`LogBudget::burst`] lines refilled at [`LogBudget::per_second`], with a count of the lines
//! it held back, to be reported in one summary line when lines are allowed again.
//!
//! Time is passed in, so the budget is tested without sleeping.

use std::time::Instant;

/// A token bucket of log lines, with the number held back since the last allowed line.
#[derive(Debug, Clone)]
pub struct LogBudget {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
    held_back: u64,
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
        LogBudget { per_second: f64::from(per_second), burst, tokens: burst, last: None, held_back: 0 }
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
