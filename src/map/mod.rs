//! `switchyard map`: a config drawn as a tree a person can read (`--format text`), or as a graph
//! ([`graph`]: Mermaid, Graphviz dot, SVG).

pub mod graph;
pub mod layout;

use std::fmt::Write as _;
use std::path::Path;

use crate::config::{Backend, ComponentKind, Config, Tenant};

/// One node of the drawn tree.
struct Node {
    label: String,
    children: Vec<Node>,
}

impl Node {
    fn leaf(label: impl Into<String>) -> Self {
        Node { label: label.into(), children: Vec::new() }
    }

    fn branch(label: impl Into<String>, children: Vec<Node>) -> Self {
        Node { label: label.into(), children }
    }

    fn render(&self, prefix: &str, out: &mut String) {
        for (i, child) in self.children.iter().enumerate() {
            let last = i + 1 == self.children.len();
            let _ = writeln!(out, "{prefix}{}{}", if last { "└── " } else { "├── " }, child.label);
            child.render(&format!("{prefix}{}", if last { "    " } else { "│   " }), out);
        }
    }
}

/// The whole config as text: one tree per tenant.
pub fn text(file: &Path, config: &Config) -> String {
    let mut out = String::new();
    let admin = config.admin.listen.map_or("off".to_owned(), |a| format!("http://{a}"));
    let _ = writeln!(
        out,
        "switchyard config {} (profile {}, state {}, admin {admin})",
        file.display(),
        config.profile,
        config.state_dir.display()
    );
    for tenant in &config.tenants {
        let _ = writeln!(out, "tenant {}", tenant.name);
        tenant_tree(tenant).render("", &mut out);
    }
    out
}

fn human(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn tenant_tree(t: &Tenant) -> Node {
    let entries: Vec<String> = t
        .allowed_hosts
        .iter()
        .map(|e| e.to_string())
        .chain(t.allowed_sockets.iter().map(|s| s.to_string()))
        .collect();
    let hosts = if entries.is_empty() {
        vec![Node::leaf("(none: every destination is denied)")]
    } else {
        entries.into_iter().map(Node::leaf).collect()
    };
    let hosts_label = if t.allowed_hosts_declared {
        "allowed hosts".to_owned()
    } else {
        "allowed hosts (not declared; from profile)".to_owned()
    };
    let blocked = t.deny_networks.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
    let components = t
        .components
        .iter()
        .map(|c| match &c.kind {
            ComponentKind::Http(ing) => Node::leaf(format!(
                "{} (http, {}) <- http://{}{}{}",
                c.name,
                c.wasm.display(),
                ing.listen,
                ing.path_prefix,
                ing.host.as_ref().map_or(String::new(), |h| format!(" for Host {h}")),
            )),
            ComponentKind::Service(r) => Node::leaf(format!(
                "{} (service, {}), restarts up to {} with backoff {}..{}",
                c.name,
                c.wasm.display(),
                r.max_restarts,
                human(r.backoff_initial),
                human(r.backoff_max)
            )),
        })
        .collect();
    let mut ports: Vec<(u16, Node)> = t
        .forwards
        .iter()
        .map(|f| {
            let tls = match &f.tls {
                Some(tls) => format!(
                    ", tls (verify {})",
                    tls.server_name.clone().unwrap_or_else(|| f.host.to_string())
                ),
                None => String::new(),
            };
            let label = format!(
                ":{} -> forward -> {}:{}{tls}, connect timeout {}, at most {} connections",
                f.port,
                f.host,
                f.to_port,
                human(f.connect_timeout),
                f.max_connections
            );
            (f.port, Node::leaf(label))
        })
        .chain(t.pools.iter().map(|p| {
            let backend = match &p.backend {
                Backend::Embedded => "embedded MariaDB".to_owned(),
                Backend::Server { host, port } => {
                    format!("mysql://{host}:{port}{}", if p.tls { " (tls)" } else { "" })
                }
                Backend::Socket(path) => format!("mysql+unix://{}", path.as_str()),
            };
            let details = vec![
                Node::leaf(format!(
                    "user {}, password {}, database {}",
                    p.user,
                    p.password,
                    p.database.as_deref().unwrap_or("(none)")
                )),
                Node::leaf(format!(
                    "mode {}, at most {} backend connections ({} kept idle), at most {} client sessions",
                    p.mode, p.max_connections, p.min_idle, p.max_client_sessions
                )),
                Node::leaf(format!(
                    "checkout timeout {}, idle timeout {}, max lifetime {}",
                    human(p.checkout_timeout),
                    human(p.idle_timeout),
                    human(p.max_lifetime)
                )),
            ];
            let published: Vec<String> = p.publish.iter().map(|a| a.to_string()).collect();
            let publish = if published.is_empty() {
                String::new()
            } else {
                format!(", also published on {}", published.join(", "))
            };
            (p.port, Node::branch(format!(":{} -> pool {} -> {backend}{publish}", p.port, p.name), details))
        }))
        .collect();
    ports.sort_by_key(|(port, _)| *port);
    Node::branch(
        "",
        vec![
            Node::branch(hosts_label, hosts),
            Node::leaf(format!("blocked networks: {blocked}")),
            Node::leaf(format!(
                "limits: {} sockets, {} virtual connections",
                t.limits.max_sockets, t.limits.max_connections
            )),
            Node::branch("components", components),
            Node::branch(
                "virtual ports (127.0.0.0/8 and ::1 of this tenant only)",
                ports.into_iter().map(|(_, n)| n).collect(),
            ),
        ],
    )
}
