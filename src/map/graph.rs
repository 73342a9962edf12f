//! `switchyard map --format mermaid|dot|svg`: the config as a graph — per tenant its virtual
//! network, the components on it (http ones behind their ingress), its virtual ports (forwards
//! to their real targets, pools to their backends) and its allowed hosts. Secrets never appear:
//! only names, addresses and references are drawn.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::config::{Backend, ComponentKind, Config};

/// A node: id, label, shape, and its column from left (where requests enter) to right (what
/// lies outside the host): 0 ingress, 1 http components, 2 virtual networks, 3 what listens on
/// them (services, forwards, pools) and the policy, 4 real targets.
pub(super) struct Node {
    pub(super) id: String,
    pub(super) label: String,
    pub(super) shape: Shape,
    pub(super) column: u8,
    /// Lines the live page writes figures on (`live-ID`, then `live-ID-2`, ...).
    pub(super) live_lines: u8,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// A wasm component.
    Component,
    /// A host-side endpoint (ingress, virtual network, forward, pool).
    Endpoint,
    /// Something outside the host (a server, the policy's allowed hosts).
    External,
}

/// An edge: from, to, label; dashed when it leaves the host.
pub(super) struct Edge {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) label: String,
    pub(super) dashed: bool,
}

/// A tenant's part of the graph.
pub(super) struct Cluster {
    pub(super) id: String,
    pub(super) label: String,
    pub(super) tenant: String,
    pub(super) nodes: Vec<Node>,
}

/// The whole graph.
pub(super) struct Graph {
    pub(super) outside: Vec<Node>,
    pub(super) clusters: Vec<Cluster>,
    pub(super) edges: Vec<Edge>,
}

/// A node id from its parts: ASCII letters, digits and `_` only (safe in HTML, SVG and dot).
pub(super) fn id(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>())
        .collect::<Vec<_>>()
        .join("__")
}

/// The graph of `config`.
pub(super) fn graph(config: &Config) -> Graph {
    let mut g = Graph { outside: Vec::new(), clusters: Vec::new(), edges: Vec::new() };
    let mut ingresses: Vec<String> = Vec::new();
    for t in &config.tenants {
        let vnet = id(&[&t.name, "vnet"]);
        let mut nodes = vec![Node {
            id: vnet.clone(),
            label: "virtual network\n127.0.0.0/8, ::1".into(),
            shape: Shape::Endpoint,
            column: 2,
            live_lines: 1,
        }];
        for c in &t.components {
            let node = id(&[&t.name, "component", &c.name]);
            match &c.kind {
                ComponentKind::Http(ing) => {
                    let ingress = id(&["ingress", &ing.listen.to_string()]);
                    if !ingresses.contains(&ingress) {
                        ingresses.push(ingress.clone());
                        g.outside.push(Node {
                            id: ingress.clone(),
                            label: format!("ingress\nhttp://{}", ing.listen),
                            shape: Shape::Endpoint,
                            column: 0,
                            live_lines: 1,
                        });
                    }
                    let route = format!("{}{}", ing.host.as_deref().unwrap_or("*"), ing.path_prefix);
                    g.edges.push(Edge { from: ingress, to: node.clone(), label: route, dashed: false });
                    nodes.push(Node {
                        id: node.clone(),
                        label: format!("{}\nhttp component", c.name),
                        shape: Shape::Component,
                        column: 1,
                        live_lines: 1,
                    });
                    g.edges.push(Edge {
                        from: node,
                        to: vnet.clone(),
                        label: "connects".into(),
                        dashed: false,
                    });
                }
                ComponentKind::Service(_) => {
                    nodes.push(Node {
                        id: node.clone(),
                        label: format!("{}\nservice component", c.name),
                        shape: Shape::Component,
                        column: 3,
                        live_lines: 1,
                    });
                    g.edges.push(Edge {
                        from: vnet.clone(),
                        to: node,
                        label: "listens".into(),
                        dashed: false,
                    });
                }
            }
        }
        for f in &t.forwards {
            let node = id(&[&t.name, "forward", &f.port.to_string()]);
            let target = id(&[&t.name, "target", &format!("{}:{}", f.host, f.to_port)]);
            nodes.push(Node {
                id: node.clone(),
                label: format!(":{} forward", f.port),
                shape: Shape::Endpoint,
                column: 3,
                live_lines: 1,
            });
            g.outside.push(Node {
                id: target.clone(),
                label: format!("{}:{}", f.host, f.to_port),
                shape: Shape::External,
                column: 4,
                live_lines: 1,
            });
            g.edges.push(Edge {
                from: vnet.clone(),
                to: node.clone(),
                label: format!(":{}", f.port),
                dashed: false,
            });
            let how = if f.tls.is_some() { "policy, DNS, TLS" } else { "policy, DNS" };
            g.edges.push(Edge { from: node, to: target, label: how.into(), dashed: true });
        }
        for p in &t.pools {
            let node = id(&[&t.name, "pool", &p.name]);
            nodes.push(Node {
                id: node.clone(),
                label: format!(
                    "pool {} :{}\n{} mode, ≤ {} connections",
                    p.name, p.port, p.mode, p.max_connections
                ),
                shape: Shape::Endpoint,
                column: 3,
                live_lines: 2,
            });
            g.edges.push(Edge {
                from: vnet.clone(),
                to: node.clone(),
                label: format!(":{}", p.port),
                dashed: false,
            });
            let (backend, label, how) = match &p.backend {
                Backend::Embedded => {
                    (id(&["embedded", "mariadb"]), "embedded MariaDB\n(state_dir)".to_owned(), "socket")
                }
                Backend::Server { host, port } => (
                    id(&["server", &format!("{host}:{port}")]),
                    format!("mysql://{host}:{port}"),
                    "policy, DNS",
                ),
                Backend::Socket(path) => {
                    (id(&["socket", path.as_str()]), format!("mysql+unix://{}", path.as_str()), "policy")
                }
            };
            if !g.outside.iter().any(|n| n.id == backend) {
                g.outside.push(Node {
                    id: backend.clone(),
                    label,
                    shape: Shape::External,
                    column: 4,
                    live_lines: 1,
                });
            }
            g.edges.push(Edge {
                from: node,
                to: backend,
                label: format!("{how}; user {}", p.user),
                dashed: true,
            });
        }
        let entries: Vec<String> = t
            .allowed_hosts
            .iter()
            .map(|h| h.to_string())
            .chain(t.allowed_sockets.iter().map(|s| s.to_string()))
            .collect();
        let allowed = if entries.is_empty() {
            "allowed hosts: none".to_owned()
        } else {
            format!("allowed hosts:\n{}", entries.join("\n"))
        };
        nodes.push(Node {
            id: id(&[&t.name, "policy"]),
            label: allowed,
            shape: Shape::External,
            column: 1,
            live_lines: 1,
        });
        g.clusters.push(Cluster {
            id: id(&["tenant", &t.name]),
            label: format!("tenant {}", t.name),
            tenant: t.name.clone(),
            nodes,
        });
    }
    g
}

fn mermaid_label(label: &str) -> String {
    label.replace('"', "#quot;").replace('\n', "<br/>")
}

/// The config as a Mermaid flowchart.
pub fn mermaid(config: &Config) -> String {
    let g = graph(config);
    let mut out = String::from("flowchart LR\n");
    let node = |n: &Node, out: &mut String, indent: &str| {
        let label = mermaid_label(&n.label);
        let _ = match n.shape {
            Shape::Component => writeln!(out, "{indent}{}[[\"{label}\"]]", n.id),
            Shape::Endpoint => writeln!(out, "{indent}{}[\"{label}\"]", n.id),
            Shape::External => writeln!(out, "{indent}{}([\"{label}\"])", n.id),
        };
    };
    for n in &g.outside {
        node(n, &mut out, "  ");
    }
    for c in &g.clusters {
        let _ = writeln!(out, "  subgraph {}[\"{}\"]", c.id, mermaid_label(&c.label));
        for n in &c.nodes {
            node(n, &mut out, "    ");
        }
        let _ = writeln!(out, "  end");
    }
    for e in &g.edges {
        let arrow = if e.dashed { "-.->" } else { "-->" };
        let _ = writeln!(out, "  {} {arrow}|\"{}\"| {}", e.from, mermaid_label(&e.label), e.to);
    }
    out
}

fn dot_label(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The config as a Graphviz `dot` graph.
pub fn dot(config: &Config) -> String {
    let g = graph(config);
    let mut out = String::from(
        "digraph switchyard {\n  rankdir=LR;\n  node [fontname=\"sans-serif\", fontsize=10];\n  edge [fontname=\"sans-serif\", fontsize=9];\n",
    );
    let node = |n: &Node, out: &mut String, indent: &str| {
        let shape = match n.shape {
            Shape::Component => "component",
            Shape::Endpoint => "box",
            Shape::External => "ellipse",
        };
        let _ = writeln!(out, "{indent}{} [label=\"{}\", shape={shape}];", n.id, dot_label(&n.label));
    };
    for n in &g.outside {
        node(n, &mut out, "  ");
    }
    for c in &g.clusters {
        let _ = writeln!(out, "  subgraph cluster_{} {{\n    label=\"{}\";", c.id, dot_label(&c.label));
        for n in &c.nodes {
            node(n, &mut out, "    ");
        }
        let _ = writeln!(out, "  }}");
    }
    for e in &g.edges {
        let style = if e.dashed { ", style=dashed" } else { "" };
        let _ = writeln!(out, "  {} -> {} [label=\"{}\"{style}];", e.from, e.to, dot_label(&e.label));
    }
    out.push_str("}\n");
    out
}

/// The config as SVG, drawn by Graphviz's `dot` (which must be installed).
pub fn svg(config: &Config) -> anyhow::Result<String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("--format svg needs Graphviz's `dot` (apt-get install graphviz): {e}")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot(config).as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!("dot failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
