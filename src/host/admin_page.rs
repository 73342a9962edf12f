//! The admin endpoint's live page: `GET /` is the map of the config in force (the graph of
//! `switchyard map`, laid out by `map::layout`) and a table of recent denied egress; its script
//! (`GET /live.js`) reads `GET /live.json` every few seconds and writes the figures into the map
//! — sessions and backend connections per pool, connections per virtual network, each service's
//! state, each tenant's instances, memory and denials — and swaps in the new map
//! (`GET /map.svg`) when a reload changed the generation. No page reload, no outside assets.
//!
//! Everything a tenant can influence (names it looked up, targets it tried) reaches the page only
//! as JSON that the script writes with `textContent`, never as markup.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::health::Health;
use super::live::{LiveTenant, LiveView};
use crate::config::ComponentKind;
use crate::map::layout;

/// How often the page asks for figures, in milliseconds.
const REFRESH_MS: u32 = 2000;

/// Denials the page lists at most, newest first, across tenants (each keeps its last 16).
const DENIALS_SHOWN: usize = 50;

/// The page of `view`; `tenant` names the one tenant it shows (`?tenant=`), which its script
/// asks for too. The caller has checked that `tenant` runs (so it is a config name: letters,
/// digits, `_` and `-`).
pub fn page(view: &LiveView, tenant: Option<&str>) -> String {
    let query = tenant.map_or_else(String::new, |name| format!("?tenant={name}"));
    let scope = match tenant {
        Some(name) => format!("tenant {name} · <a href=\"/\">all tenants</a>"),
        None if view.tenants.len() > 20 => {
            format!("{} tenants (one alone: <code>/?tenant=NAME</code>)", view.tenants.len())
        }
        None => format!("{} tenants", view.tenants.len()),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>switchyard: live</title>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #223; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }}
#status {{ color: #556; font-size: 13px; margin-bottom: 10px; }}
#map {{ overflow: auto; border: 1px solid #ccd; padding: 4px; }}
table {{ border-collapse: collapse; font-size: 13px; margin-top: 6px; }}
td, th {{ border: 1px solid #ccd; padding: 3px 8px; text-align: left; }}
th {{ background: #eef; }}
</style></head>
<body data-generation="{generation}" data-refresh="{REFRESH_MS}" data-query="{query}">
<h1>switchyard</h1>
<div id="status">config generation <span id="generation">{generation}</span> · <span id="tenants">{scope}</span> · figures updated <span id="updated">never</span></div>
<div id="map">{map}</div>
<h2 style="font-size:15px">Recent denied egress</h2>
<table><thead><tr><th>when</th><th>tenant</th><th>component</th><th>target</th><th>why</th></tr></thead>
<tbody id="denials"><tr><td colspan="5">none</td></tr></tbody></table>
<script src="/live.js"></script>
</body></html>
"#,
        generation = view.generation,
        map = layout::svg(&view.config),
    )
}

/// The page's script.
pub const SCRIPT: &str = r#"'use strict';
const refresh = Number(document.body.dataset.refresh);
let generation = document.body.dataset.generation;
const query = document.body.dataset.query;
function cell(row, text) { const td = document.createElement('td'); td.textContent = text; row.appendChild(td); }
async function tick() {
  try {
    const live = await (await fetch('/live.json' + query, { cache: 'no-store' })).json();
    if (String(live.generation) !== generation) {
      document.getElementById('map').innerHTML = await (await fetch('/map.svg' + query, { cache: 'no-store' })).text();
      generation = String(live.generation);
      document.getElementById('generation').textContent = generation;
      if (!query) document.getElementById('tenants').textContent = live.tenants + ' tenants';
    }
    for (const [id, text] of Object.entries(live.figures)) {
      const el = document.getElementById(id);
      if (el) el.textContent = text;
    }
    const body = document.getElementById('denials');
    body.replaceChildren();
    for (const d of live.denials) {
      const row = document.createElement('tr');
      for (const text of [d.ago, d.tenant, d.component, d.target, d.reason]) cell(row, text);
      body.appendChild(row);
    }
    if (live.denials.length === 0) {
      const row = document.createElement('tr'); cell(row, 'none'); row.firstChild.colSpan = 5; body.appendChild(row);
    }
    document.getElementById('updated').textContent = new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById('updated').textContent = 'failed: ' + e;
  }
}
tick();
setInterval(tick, refresh);
"#;

/// The figures of `view` for the page: `figures` maps each live element's id to its text,
/// `denials` lists the newest [`DENIALS_SHOWN`] denied egress attempts of all tenants.
pub fn live_json(view: &LiveView, health: &Health) -> String {
    let mut figures = serde_json::Map::new();
    let mut denials = Vec::new();
    let now = SystemTime::now();
    for tenant in &view.tenants {
        let usage = &tenant.usage;
        let net = tenant.network.usage();
        figures.insert(
            layout::tenant_live_id(&tenant.name),
            Value::String(format!(
                "· {} instances · {} of {} MiB guest memory · {} egress denied",
                usage.instances(),
                usage.memory_used() >> 20,
                usage.memory_limit() >> 20,
                tenant.egress.denied_total(),
            )),
        );
        figures.insert(
            layout::node_live_id(&[&tenant.name, "vnet"]),
            Value::String(format!("{} connections · {} sockets", net.connections, net.sockets)),
        );
        for (name, pool) in &tenant.pools {
            let s = pool.snapshot();
            let live = layout::node_live_id(&[&tenant.name, "pool", name]);
            figures.insert(
                format!("{live}-2"),
                Value::String(format!(
                    "backend {} in use, {} idle, max {}",
                    s.backend_open.saturating_sub(s.backend_idle),
                    s.backend_idle,
                    pool.max_connections(),
                )),
            );
            figures.insert(live, Value::String(format!("{} sessions · {} waiting", s.clients, s.waiting)));
        }
        figures.extend(component_figures(view, tenant, health));
        for denied in tenant.egress.recent_denials().into_iter().rev() {
            let ago = now.duration_since(denied.at).unwrap_or_default().as_secs();
            denials.push((
                denied.at,
                json!({
                    "ago": format!("{ago} s ago"),
                    "tenant": tenant.name,
                    "component": denied.component,
                    "target": denied.target,
                    "reason": denied.reason,
                }),
            ));
        }
    }
    denials.sort_by_key(|d| std::cmp::Reverse(d.0));
    denials.truncate(DENIALS_SHOWN);
    json!({
        "generation": view.generation,
        "tenants": view.tenants.len(),
        "figures": figures,
        "denials": denials.into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
    })
    .to_string()
}

/// Each component's figure: a service's state, an http component's instances.
fn component_figures(view: &LiveView, tenant: &LiveTenant, health: &Health) -> Vec<(String, Value)> {
    let Some(config) = view.config.tenants.iter().find(|t| t.name == tenant.name) else {
        return Vec::new();
    };
    config
        .components
        .iter()
        .map(|component| {
            let text = match &component.kind {
                ComponentKind::Service(_) => health
                    .service_state(&tenant.name, &component.name)
                    .map_or_else(|| "not started".to_owned(), |state| state.to_string()),
                ComponentKind::Http(_) => format!("{} instances of the tenant now", tenant.usage.instances()),
            };
            (layout::node_live_id(&[&tenant.name, "component", &component.name]), Value::String(text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use switchyard_policy::Target;
    use switchyard_vnet::dns::Resolver;
    use switchyard_vnet::egress::Egress;
    use switchyard_vnet::{Limits, Network};

    use super::*;
    use crate::host::instance_slots::{SharedSlots, SlotPlan, TenantSlots};
    use crate::host::tenant_usage::TenantUsage;

    fn view() -> LiveView {
        let yaml = "version: 1\ntenants:\n  - name: acme\n    allowed_hosts: []\n    components:\n      - { name: echo, kind: service, wasm: echo.wasm }\n";
        let config = crate::config::load(yaml, &Default::default(), &|_| None).expect("config").config;
        let tenant = &config.tenants[0];
        let resolver = Resolver::hosts_file_only(Duration::from_secs(1)).expect("resolver");
        let shared = SharedSlots::new(&SlotPlan { services: 1, reserved: 0, shared: 0 });
        let live = LiveTenant {
            name: "acme".to_owned(),
            usage: TenantUsage::new(1 << 20, TenantSlots::new(1, shared), 1),
            network: Network::new("acme", Limits::default()),
            egress: Egress::new("acme", tenant.policy(), resolver, Duration::from_secs(1)),
            pools: Vec::new(),
        };
        LiveView { generation: 3, config: Arc::new(config), tenants: vec![live] }
    }

    #[test]
    fn the_figures_name_the_maps_elements_and_list_the_newest_denials_only() {
        let view = view();
        let egress = &view.tenants[0].egress;
        for i in 0..(DENIALS_SHOWN + 10) {
            let target = Target::tcp(SocketAddr::from(([10, 0, 0, (i % 250) as u8], 80)));
            assert!(egress.check("web", &target).is_err());
        }
        let live: serde_json::Value =
            serde_json::from_str(&live_json(&view, &Health::default())).expect("JSON");
        assert_eq!(live["generation"], 3);
        assert_eq!(
            live["figures"]["live-tenant-acme"].as_str().map(|t| t.contains("60 egress denied")),
            Some(true)
        );
        assert_eq!(live["figures"]["live-acme__component__echo"], "not started");
        let denials = live["denials"].as_array().expect("denials");
        // Each tenant keeps its last 16; the page shows at most DENIALS_SHOWN of all of them.
        assert_eq!(denials.len(), switchyard_vnet::denials::RECENT_DENIALS.min(DENIALS_SHOWN));
        assert_eq!(denials[0]["target"], "tcp://10.0.0.59:80", "newest first");
        let all = page(&view, None);
        for id in ["live-tenant-acme", "live-acme__vnet", "live-acme__component__echo"] {
            assert!(all.contains(&format!("id=\"{id}\"")), "the page has no element {id}");
        }
        assert!(all.contains("data-query=\"\""));
        // One tenant alone: its own page asks for its own figures.
        assert!(view.only("nobody").is_none());
        let acme = view.only("acme").expect("acme runs");
        let one = page(&acme, Some("acme"));
        assert!(one.contains("data-query=\"?tenant=acme\"") && one.contains("id=\"live-acme__vnet\""));
    }
}
