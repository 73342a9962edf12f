//! A service's CPU budget (`limits.service_cpu_percent` of one core): counted in time slices over
//! one-second windows; a service that has used its share of the current window waits out the rest
//! of it at its next slice, so it cannot take more than its share of its shard however it loops.
//! How often that happened is counted per component, for `/healthz` (a notice, not a readiness
//! failure: a tenant must not be able to make the host look unhealthy) and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::UpdateDeadline;

use super::engine::TIME_SLICE;

/// The window a budget is counted over.
const WINDOW: Duration = Duration::from_secs(1);

/// How often one component was throttled (shared by its instances, read by `/healthz`).
#[derive(Debug, Clone, Default)]
pub struct Throttled(Arc<AtomicU64>);

impl Throttled {
    /// Times the component waited out a window.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One instance's budget.
#[derive(Debug)]
pub struct CpuBudget {
    slices_per_window: u32,
    window_start: Option<Instant>,
    used: u32,
    throttled: Throttled,
}

impl CpuBudget {
    /// A budget of `percent` of one core, counting its throttles into `throttled`.
    pub fn new(percent: u32, throttled: Throttled) -> Self {
        let window_slices = (WINDOW.as_micros() / TIME_SLICE.as_micros().max(1)) as u32;
        let slices_per_window = (window_slices.saturating_mul(percent) / 100).max(1);
        CpuBudget { slices_per_window, window_start: None, used: 0, throttled }
    }

    /// Accounts one slice of running code: `None` within the budget, or the wait to the end of
    /// the window.
    pub fn on_slice(&mut self) -> Option<UpdateDeadline> {
        let now = Instant::now();
        let start = match self.window_start {
            Some(start) if now.duration_since(start) < WINDOW => start,
            _ => {
                self.window_start = Some(now);
                self.used = 0;
                now
            }
        };
        self.used += 1;
        if self.used <= self.slices_per_window {
            return None;
        }
        self.throttled.0.fetch_add(1, Ordering::Relaxed);
        Some(UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep_until(start + WINDOW))))
    }
}
