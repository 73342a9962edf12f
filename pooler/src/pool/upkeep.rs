//! A pool's size over time: its upkeep (idle connections closed past `idle_timeout` or
//! `max_lifetime`, `min_idle` kept open), a change of its cap while it serves ([`Pool::resize`],
//! a reload), and its closing.

use super::{BackendConn, Idle, Pool, Slot};

impl Pool {
    /// Closes idle connections past `idle_timeout` (above `min_idle`) or `max_lifetime`, and
    /// opens connections up to `min_idle` (and one while the backend is unreachable, to notice
    /// when it is back). Run it every second or so.
    pub async fn maintain(&self) {
        let config = &self.shared.config;
        let expired: Vec<BackendConn> = {
            let mut pool = self.lock();
            let mut keep = Vec::with_capacity(pool.idle.len());
            let mut expired = Vec::new();
            let idle = std::mem::take(&mut pool.idle);
            let mut surplus = idle.len().saturating_sub(config.min_idle);
            for entry in idle {
                let too_old = entry.conn.created().elapsed() >= config.max_lifetime;
                let idle_long = entry.since.elapsed() >= config.idle_timeout && surplus > 0;
                if too_old || idle_long {
                    surplus = surplus.saturating_sub(1);
                    expired.push(entry.conn);
                } else {
                    keep.push(entry);
                }
            }
            pool.idle = keep;
            expired
        };
        for conn in expired {
            conn.quit().await;
        }
        loop {
            let unreachable = self.backend_problem().is_some();
            let slot = {
                let mut pool = self.lock();
                // Up to min_idle; and one while the backend is known unreachable, so that the
                // pool's readiness recovers by itself when the backend comes back, traffic or not.
                let wanted = pool.idle.len() < config.min_idle || (pool.idle.is_empty() && unreachable);
                let room = wanted && pool.open < pool.max && !pool.closed;
                room.then(|| Slot::take(&mut pool, &self.shared))
            };
            let Some(slot) = slot else {
                return;
            };
            match self.open(false, slot).await {
                Ok(conn) => self.hand_over(conn).await,
                Err(_) => return,
            }
        }
    }

    /// The cap on backend connections in force.
    pub fn max_connections(&self) -> usize {
        self.lock().max
    }

    /// Changes the cap on backend connections to `max` (at least 1) without ending any session.
    /// Growing serves waiting sessions at once with new connections; shrinking closes idle
    /// connections over the new cap now, and connections in use as they come back, so that
    /// `open` comes down to `max` and never goes up past it again.
    pub async fn resize(&self, max: usize) {
        let max = max.max(1);
        let (surplus, opens) = {
            let mut pool = self.lock();
            pool.max = max;
            let mut surplus = Vec::new();
            while pool.open - surplus.len() > max
                && let Some(idle) = pool.idle.pop()
            {
                surplus.push(idle.conn);
            }
            let mut opens = Vec::new();
            if !pool.closed {
                // One open per waiter the new room allows (each hands its connection to the head).
                let room = max.saturating_sub(pool.open).min(pool.waiters.len());
                for waiter in pool.waiters.iter().take(room).map(|w| w.found_rows).collect::<Vec<_>>() {
                    opens.push((waiter, Slot::take(&mut pool, &self.shared)));
                }
            }
            (surplus, opens)
        };
        for (found_rows, slot) in opens {
            self.open_for_waiter(found_rows, slot);
        }
        for conn in surplus {
            conn.quit().await; // its slot is given back
        }
    }

    /// Closes every idle connection and refuses to keep more; waiters are failed as they time out.
    pub async fn close(&self) {
        let idle: Vec<Idle> = {
            let mut pool = self.lock();
            pool.closed = true;
            std::mem::take(&mut pool.idle)
        };
        for entry in idle {
            entry.conn.quit().await;
        }
    }
}
