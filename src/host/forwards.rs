//! Mounting a tenant's declared forwards on its virtual network, from the config.

use std::path::Path;

use anyhow::Context;
use switchyard_policy::TargetHost;
use switchyard_vnet::forward::{Forward, ForwardSpec, ForwardTls};
use switchyard_vnet::tls::TlsClient;

use super::guest::Workload;
use crate::config::Tenant;

/// Mounts every forward of `tenant` on its network (CA files are relative to `base`). The
/// returned forwards hold their virtual ports; each still has to be served.
pub fn mount(tenant: &Tenant, workload: &Workload, base: &Path) -> anyhow::Result<Vec<Forward>> {
    let mut mounted = Vec::with_capacity(tenant.forwards.len());
    for (index, forward) in tenant.forwards.iter().enumerate() {
        let key = format!("tenants[{}].forwards[{index}]", tenant.name);
        let tls = match &forward.tls {
            None => None,
            Some(tls) => {
                let client = match &tls.ca {
                    Some(ca) => TlsClient::with_ca_file(&base.join(ca)),
                    None => TlsClient::webpki(),
                }
                .with_context(|| format!("tenant {}: {key}.tls", tenant.name))?;
                let server_name = tls.server_name.clone().unwrap_or_else(|| match &forward.host {
                    TargetHost::Name(name) => name.to_string(),
                    TargetHost::Addr(ip) => ip.to_string(),
                });
                Some(ForwardTls { client, server_name })
            }
        };
        let spec = ForwardSpec {
            port: forward.port,
            host: forward.host.clone(),
            to_port: forward.to_port,
            tls,
            connect_timeout: forward.connect_timeout,
            max_connections: forward.max_connections as usize,
            idle_timeout: Some(forward.idle_timeout),
        };
        let forward = Forward::mount(&workload.network, workload.egress.clone(), spec)
            .with_context(|| format!("tenant {}: {key}", tenant.name))?;
        tracing::info!(
            tenant = tenant.name,
            port = forward.spec().port,
            to = format!("{}:{}", forward.spec().host, forward.spec().to_port),
            tls = forward.spec().tls.is_some(),
            "forward mounted",
        );
        mounted.push(forward);
    }
    Ok(mounted)
}
