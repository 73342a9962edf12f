//! `switchyard policy check`: decide targets against entries (and a tenant's config), printing one
//! `allow`/`deny` line per target.

use std::net::IpAddr;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::bail;
use switchyard_policy::{BlockedNetworks, Decision, HostName, NameBindings, Policy};

use crate::cli::PolicyCheckArgs;
use crate::config::Overrides;

/// `NAME=IP[,IP...]`: what the check should assume DNS answered for NAME.
#[derive(Debug, Clone)]
pub struct Resolved {
    name: HostName,
    addrs: Vec<IpAddr>,
}

impl FromStr for Resolved {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, addrs) = text.split_once('=').ok_or_else(|| format!("`{text}` is not NAME=IP[,IP...]"))?;
        let name = HostName::parse(name).map_err(|e| e.to_string())?;
        let addrs = addrs
            .split(',')
            .map(|a| a.parse::<IpAddr>().map_err(|_| format!("`{a}` in `{text}` is not an IP address")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Resolved { name, addrs })
    }
}

/// Runs the check; exit 0 if every target is allowed, 1 if any is denied.
pub fn run(args: &PolicyCheckArgs) -> anyhow::Result<ExitCode> {
    let mut entries = args.allow.clone();
    let mut blocked = None;
    if let (Some(path), Some(name)) = (&args.config, &args.tenant) {
        let Some(loaded) = crate::config_file::load_reporting(path, &Overrides::default(), false)? else {
            return Ok(ExitCode::from(2));
        };
        let tenants = &loaded.config.tenants;
        let Some(tenant) = tenants.iter().find(|t| t.name == *name) else {
            let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
            bail!("--tenant {name}: no such tenant in {} (tenants: {})", path.display(), names.join(", "));
        };
        let policy = tenant.policy();
        entries.splice(0..0, policy.entries().iter().cloned());
        blocked = Some(policy.blocked().clone());
    }
    if !args.deny_networks.is_empty() {
        blocked = Some(BlockedNetworks::from_specs(&args.deny_networks));
    }
    let policy = Policy::new(entries, blocked.unwrap_or_default());
    let now = Instant::now();
    let mut bindings = NameBindings::default();
    for r in &args.resolved {
        bindings.bind(&r.name, &r.addrs, Duration::from_secs(3600), now);
    }
    let mut all_allowed = true;
    for target in &args.targets {
        match policy.decide_with(target, &bindings, now) {
            Decision::Allow(allowed) => println!("allow {target}: {allowed}"),
            Decision::Deny(denied) => {
                all_allowed = false;
                println!("deny  {target}: {denied}");
            }
        }
    }
    Ok(if all_allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
