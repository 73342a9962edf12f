//! `GET /metrics`: every tenant's use of the host (guest memory, CPU slices) and every pool's
//! counters in the Prometheus text format, labelled by tenant and pool. Names and label values
//! only; no secret is ever part of them.

use std::fmt::Write;

use switchyard_pooler::pins::PinReason;
use switchyard_pooler::stats::{ErrorKind, Snapshot, WAIT_BUCKETS};

use super::instance_slots::SharedSlots;
use super::live::{Live, LiveTenant, ReloadOutcome};
use super::tenant_usage::Refusal;

/// A per-tenant metric family: name, type, help, and how to read its value.
type TenantFamily = (&'static str, &'static str, &'static str, fn(&LiveTenant) -> u64);

/// What `/metrics` reads: the host's shared slots and the tenants and pools of the config in
/// force (`Live`, replaced by each reload). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    shared_slots: SharedSlots,
    live: Live,
}

impl Metrics {
    /// Metrics of the host's `shared_slots` and of what `live` says runs.
    pub fn new(shared_slots: SharedSlots, live: Live) -> Self {
        Metrics { shared_slots, live }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let view = self.live.view();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP switchyard_config_generation The config in force: 1 at start, one more for each reload that took effect.\n\
             # TYPE switchyard_config_generation gauge\nswitchyard_config_generation {}",
            view.generation
        );
        let name = "switchyard_config_reloads_total";
        let _ = writeln!(
            out,
            "# HELP {name} Config reloads, by outcome (rejected ones changed nothing).\n# TYPE {name} counter"
        );
        for outcome in [ReloadOutcome::Applied, ReloadOutcome::Rejected] {
            let _ = writeln!(out, "{name}{{outcome=\"{}\"}} {}", outcome.label(), self.live.reloads(outcome));
        }
        for (name, help, value) in [
            (
                "switchyard_shared_instance_slots",
                "Instance slots tenants borrow past their reserve, in use now.",
                self.shared_slots.in_use(),
            ),
            (
                "switchyard_shared_instance_slots_limit",
                "Instance slots tenants may borrow past their reserve, together.",
                self.shared_slots.size(),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out.push_str(&render_tenants(&view.tenants));
        out.push_str(&render_pools(&view.tenants));
        out
    }
}

fn render_tenants(tenants: &[LiveTenant]) -> String {
    let mut out = String::new();
    let families: [TenantFamily; 6] = [
        (
            "switchyard_tenant_virtual_connections",
            "gauge",
            "Connections open now on the tenant's virtual network.",
            |t| t.network.usage().connections as u64,
        ),
        (
            "switchyard_tenant_egress_denied_total",
            "counter",
            "Egress attempts of the tenant denied by its policy (connects, lookups, sockets).",
            |t| t.egress.denied_total(),
        ),
        (
            "switchyard_tenant_instances",
            "gauge",
            "Http component instances of the tenant alive now (at most limits.max_instances).",
            |t| t.usage.instances() as u64,
        ),
        (
            "switchyard_tenant_memory_bytes",
            "gauge",
            "Linear memory the tenant's guest instances hold now.",
            |t| t.usage.memory_used() as u64,
        ),
        (
            "switchyard_tenant_memory_limit_bytes",
            "gauge",
            "The most they may hold together (limits.max_memory_mib).",
            |t| t.usage.memory_limit() as u64,
        ),
        (
            "switchyard_tenant_cpu_slices_total",
            "counter",
            "Epoch ticks (every 500 µs) at which one of the tenant's guests was running: sampled guest CPU time.",
            |t| t.usage.cpu_slices(),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for tenant in tenants {
            let _ = writeln!(out, "{name}{{tenant=\"{}\"}} {}", escape(&tenant.name), value(tenant));
        }
    }
    let name = "switchyard_tenant_refusals_total";
    let _ = writeln!(
        out,
        "# HELP {name} The tenant's requests refused or cut short, by the budget (limits key) that did it.\n# TYPE {name} counter"
    );
    for tenant in tenants {
        for budget in Refusal::ALL {
            let _ = writeln!(
                out,
                "{name}{{tenant=\"{}\",budget=\"{}\"}} {}",
                escape(&tenant.name),
                budget.label(),
                tenant.usage.refusals(budget)
            );
        }
    }
    let name = "switchyard_tenant_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} The tenant's requests by the worker shard their instance ran on (limits.shards).\n# TYPE {name} counter"
    );
    for tenant in tenants {
        for (shard, placed) in tenant.usage.placed().into_iter().enumerate() {
            let _ = writeln!(out, "{name}{{tenant=\"{}\",shard=\"{shard}\"}} {placed}", escape(&tenant.name));
        }
    }
    out
}

fn render_pools(tenants: &[LiveTenant]) -> String {
    let snapshots: Vec<(String, Snapshot, usize)> = tenants
        .iter()
        .flat_map(|t| t.pools.iter().map(move |(name, pool)| (t, name, pool)))
        .map(|(tenant, name, pool)| {
            let labels = format!("tenant=\"{}\",pool=\"{}\"", escape(&tenant.name), escape(name));
            (labels, pool.snapshot(), pool.max_connections())
        })
        .collect();
    let mut out = String::new();
    let name = "switchyard_pool_backend_connections_limit";
    let _ = writeln!(
        out,
        "# HELP {name} The pool's cap on backend connections (max_connections, as reloaded).\n# TYPE {name} gauge"
    );
    for (labels, _, max) in &snapshots {
        let _ = writeln!(out, "{name}{{{labels}}} {max}");
    }
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&Snapshot, &str, &mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, snapshot, _) in &snapshots {
            value(snapshot, labels, &mut out);
        }
    };
    let simple = |name: &'static str, get: fn(&Snapshot) -> u64| {
        move |s: &Snapshot, labels: &str, out: &mut String| {
            let _ = writeln!(out, "{name}{{{labels}}} {}", get(s));
        }
    };
    family(
        "switchyard_pool_client_sessions",
        "gauge",
        "Client sessions open now.",
        &simple("switchyard_pool_client_sessions", |s| s.clients),
    );
    family(
        "switchyard_pool_client_sessions_total",
        "counter",
        "Client sessions accepted.",
        &simple("switchyard_pool_client_sessions_total", |s| s.clients_total),
    );
    family(
        "switchyard_pool_backend_connections",
        "gauge",
        "Backend connections by state.",
        &|s, labels, out| {
            let in_use = s.backend_open.saturating_sub(s.backend_idle);
            let _ =
                writeln!(out, "switchyard_pool_backend_connections{{{labels},state=\"in_use\"}} {in_use}");
            let _ = writeln!(
                out,
                "switchyard_pool_backend_connections{{{labels},state=\"idle\"}} {}",
                s.backend_idle
            );
        },
    );
    family(
        "switchyard_pool_waiting_clients",
        "gauge",
        "Clients waiting for a backend connection.",
        &simple("switchyard_pool_waiting_clients", |s| s.waiting),
    );
    family(
        "switchyard_pool_checkouts_total",
        "counter",
        "Backend connections handed to sessions.",
        &simple("switchyard_pool_checkouts_total", |s| s.checkouts),
    );
    family(
        "switchyard_pool_checkout_wait_seconds",
        "histogram",
        "How long sessions waited for a backend connection.",
        &|s, labels, out| {
            let mut cumulative = 0;
            for (bound, count) in WAIT_BUCKETS.iter().zip(s.wait_buckets) {
                cumulative += count;
                let le = if bound.is_infinite() { "+Inf".to_owned() } else { bound.to_string() };
                let _ = writeln!(
                    out,
                    "switchyard_pool_checkout_wait_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "switchyard_pool_checkout_wait_seconds_sum{{{labels}}} {}",
                s.wait_seconds_total
            );
            let _ = writeln!(out, "switchyard_pool_checkout_wait_seconds_count{{{labels}}} {cumulative}");
        },
    );
    family(
        "switchyard_pool_queries_total",
        "counter",
        "Commands relayed to a backend.",
        &simple("switchyard_pool_queries_total", |s| s.queries),
    );
    family(
        "switchyard_pool_backend_connects_total",
        "counter",
        "Backend connections opened.",
        &simple("switchyard_pool_backend_connects_total", |s| s.connects),
    );
    family(
        "switchyard_pool_pins_total",
        "counter",
        "Sessions pinned to a connection, by reason.",
        &|s, labels, out| {
            for reason in PinReason::ALL {
                let _ = writeln!(
                    out,
                    "switchyard_pool_pins_total{{{labels},reason=\"{reason}\"}} {}",
                    s.pins_for(reason)
                );
            }
        },
    );
    family("switchyard_pool_errors_total", "counter", "Errors, by kind.", &|s, labels, out| {
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "switchyard_pool_errors_total{{{labels},kind=\"{}\"}} {}",
                kind.name(),
                s.errors_of(kind)
            );
        }
    });
    let _ = writeln!(
        out,
        "# HELP switchyard_log_lines_dropped_total Log lines dropped because stderr did not keep up.\n\
             # TYPE switchyard_log_lines_dropped_total counter\n\
             switchyard_log_lines_dropped_total {}",
        crate::telemetry::dropped_log_lines()
    );
    out
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
