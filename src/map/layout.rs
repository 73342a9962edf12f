//! The map as SVG laid out here, without Graphviz: the admin endpoint's live page draws it on
//! any host. The graph is the one `switchyard map` draws ([`super::graph`]); each node sits in
//! its column (ingress, http components, virtual network, what listens on it, real targets), each
//! tenant is a band across columns 1–3, and the outside nodes line up with what they connect
//! to. Every node ends with empty lines `<tspan id="live-NODE">` (a pool's has a second,
//! `live-NODE-2`) and every tenant's title with `<tspan id="live-tenant-NAME">`, which the page
//! fills with live figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::graph::{Graph, Node, Shape, graph, id};
use crate::config::Config;

const NODE_WIDTH: f64 = 210.0;
const COLUMN_GAP: f64 = 80.0;
const LINE: f64 = 15.0;
const NODE_PAD: f64 = 8.0;
const ROW_GAP: f64 = 14.0;
const BAND_TITLE: f64 = 26.0;
const BAND_GAP: f64 = 22.0;
const MARGIN: f64 = 16.0;

/// Where a node is drawn.
#[derive(Debug, Clone, Copy)]
struct Placed {
    x: f64,
    y: f64,
    height: f64,
}

impl Placed {
    fn middle(&self) -> f64 {
        self.y + self.height / 2.0
    }
}

/// The gap before the last column is wider: the edges to real targets carry the longest labels.
const OUTSIDE_GAP: f64 = 170.0;

fn column_x(column: u8) -> f64 {
    let wider = if column >= 4 { OUTSIDE_GAP - COLUMN_GAP } else { 0.0 };
    MARGIN + f64::from(column) * (NODE_WIDTH + COLUMN_GAP) + wider
}

/// A node's height: its label lines and its lines for live figures.
fn node_height(node: &Node) -> f64 {
    (node.label.lines().count() + usize::from(node.live_lines)) as f64 * LINE + 2.0 * NODE_PAD
}

/// The live id of tenant `name`'s title (`live-tenant-NAME`, NAME as [`id`] writes it).
pub fn tenant_live_id(name: &str) -> String {
    format!("live-tenant-{}", id(&[name]))
}

/// The live id of a node (`live-` and the node's id), for the page's script.
pub fn node_live_id(parts: &[&str]) -> String {
    format!("live-{}", id(parts))
}

/// `config`'s map as an SVG document.
pub fn svg(config: &Config) -> String {
    let g = graph(config);
    let Layout { nodes: placed, bands, height } = place(&g);
    let width = column_x(4) + NODE_WIDTH + MARGIN;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="map" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    out.push_str(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#667"/></marker></defs>
"##,
    );
    for (tenant, y, band_height) in &bands {
        let x = column_x(1) - 12.0;
        let w = column_x(3) + NODE_WIDTH + 12.0 - x;
        let _ = writeln!(
            out,
            r##"<g class="tenant"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{band_height:.1}" rx="8" fill="#f4f6fb" stroke="#aab"/><text x="{tx:.1}" y="{ty:.1}" font-weight="bold">tenant {name} <tspan id="{live}" class="live" font-weight="normal" fill="#247"></tspan></text></g>"##,
            tx = x + 10.0,
            ty = y + 17.0,
            name = escape(tenant),
            live = tenant_live_id(tenant),
        );
    }
    for edge in &g.edges {
        let (Some(from), Some(to)) = (placed.get(&edge.from), placed.get(&edge.to)) else { continue };
        let (x1, y1) = (from.x + NODE_WIDTH, from.middle());
        let (x2, y2) = (to.x, to.middle());
        let bend = (x2 - x1).abs().max(40.0) / 2.0;
        let dash = if edge.dashed { r#" stroke-dasharray="5 4""# } else { "" };
        let _ = writeln!(
            out,
            r##"<path d="M {x1:.1} {y1:.1} C {c1:.1} {y1:.1}, {c2:.1} {y2:.1}, {x2:.1} {y2:.1}" fill="none" stroke="#667"{dash} marker-end="url(#arrow)"/><text x="{lx:.1}" y="{ly:.1}" font-size="10" fill="#556" text-anchor="middle">{label}</text>"##,
            c1 = x1 + bend,
            c2 = x2 - bend,
            lx = (x1 + x2) / 2.0,
            ly = (y1 + y2) / 2.0 - 3.0,
            label = escape(&edge.label),
        );
    }
    let nodes = g.outside.iter().chain(g.clusters.iter().flat_map(|c| c.nodes.iter()));
    for node in nodes {
        let Some(at) = placed.get(&node.id) else { continue };
        let (fill, radius) = match node.shape {
            Shape::Component => ("#fff7e0", 2.0),
            Shape::Endpoint => ("#ffffff", 4.0),
            Shape::External => ("#eef7ee", 14.0),
        };
        let _ = write!(
            out,
            r##"<g class="node" id="node-{id}"><rect x="{x:.1}" y="{y:.1}" width="{NODE_WIDTH}" height="{h:.1}" rx="{radius}" fill="{fill}" stroke="#445"/><text x="{tx:.1}" y="{ty:.1}">"##,
            id = node.id,
            x = at.x,
            y = at.y,
            h = at.height,
            tx = at.x + NODE_PAD,
            ty = at.y + NODE_PAD + LINE - 3.0,
        );
        for (i, line) in node.label.lines().enumerate() {
            let dy = if i == 0 { 0.0 } else { LINE };
            let weight = if i == 0 { r#" font-weight="bold""# } else { "" };
            let _ = write!(
                out,
                r#"<tspan x="{:.1}" dy="{dy}"{weight}>{}</tspan>"#,
                at.x + NODE_PAD,
                escape(line)
            );
        }
        for line in 1..=node.live_lines {
            let suffix = if line == 1 { String::new() } else { format!("-{line}") };
            let _ = write!(
                out,
                r##"<tspan x="{:.1}" dy="{LINE}" id="live-{}{suffix}" class="live" fill="#247"></tspan>"##,
                at.x + NODE_PAD,
                node.id
            );
        }
        out.push_str("</text></g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// Where everything is drawn.
struct Layout {
    /// Each node's place, by id.
    nodes: BTreeMap<String, Placed>,
    /// Each tenant's band: name, top, height.
    bands: Vec<(String, f64, f64)>,
    /// The drawing's height.
    height: f64,
}

/// Places every node: each tenant's nodes in a band, the outside ones beside what they connect
/// to.
fn place(g: &Graph) -> Layout {
    let mut placed = BTreeMap::new();
    let mut bands = Vec::new();
    let mut top = MARGIN;
    for cluster in &g.clusters {
        let mut bottom = top + BAND_TITLE;
        for column in 1..=3u8 {
            let mut y = top + BAND_TITLE;
            for node in cluster.nodes.iter().filter(|n| n.column == column) {
                let height = node_height(node);
                placed.insert(node.id.clone(), Placed { x: column_x(column), y, height });
                y += height + ROW_GAP;
            }
            bottom = bottom.max(y);
        }
        bands.push((cluster.tenant.clone(), top, bottom - top));
        top = bottom + BAND_GAP;
    }
    let mut height = top;
    for column in [0u8, 4] {
        // Each where the middle of what it connects to is, in that order, without overlaps.
        let mut wanted: Vec<(f64, &Node)> = g
            .outside
            .iter()
            .filter(|n| n.column == column)
            .map(|node| {
                let ends: Vec<f64> = g
                    .edges
                    .iter()
                    .filter_map(|e| {
                        let other = if e.from == node.id {
                            &e.to
                        } else if e.to == node.id {
                            &e.from
                        } else {
                            return None;
                        };
                        placed.get(other).map(Placed::middle)
                    })
                    .collect();
                let middle =
                    if ends.is_empty() { MARGIN } else { ends.iter().sum::<f64>() / ends.len() as f64 };
                (middle - node_height(node) / 2.0, node)
            })
            .collect();
        wanted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut next = MARGIN;
        for (y, node) in wanted {
            let y = y.max(next);
            let h = node_height(node);
            placed.insert(node.id.clone(), Placed { x: column_x(column), y, height: h });
            next = y + h + ROW_GAP;
            height = height.max(next);
        }
    }
    Layout { nodes: placed, bands, height: height + MARGIN }
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        crate::config::load(yaml, &Default::default(), &|_| Some("pw".to_owned())).expect("config").config
    }

    #[test]
    fn every_node_has_its_place_and_live_line_and_nothing_overlaps() {
        let c = config(
            r#"
version: 1
tenants:
  - name: acme
    allowed_hosts: ["mysql://db.example.com:3306", "tcp://api.example.com:443"]
    forwards: ["8443:api.example.com:443"]
    pools:
      - { name: main, backend: "mysql://db.example.com:3306", user: app, password: "${env:PW}" }
    components:
      - { name: web, kind: http, wasm: web.wasm, ingress: { listen: "127.0.0.1:8080" } }
      - { name: echo, kind: service, wasm: echo.wasm }
  - name: globex
    allowed_hosts: []
    components:
      - { name: web, kind: http, wasm: web.wasm, ingress: { listen: "127.0.0.1:8080", host: globex.test } }
"#,
        );
        let drawn = svg(&c);
        for live in [
            "live-acme__pool__main",
            "live-acme__pool__main-2",
            "live-acme__vnet",
            "live-acme__component__web",
            "live-globex__vnet",
            "live-tenant-acme",
            "live-tenant-globex",
        ] {
            assert!(drawn.contains(&format!("id=\"{live}\"")), "{live} missing from\n{drawn}");
        }
        assert_eq!(node_live_id(&["acme", "pool", "main"]), "live-acme__pool__main");
        let g = graph(&c);
        let placed = place(&g).nodes;
        let count = g.outside.len() + g.clusters.iter().map(|c| c.nodes.len()).sum::<usize>();
        assert_eq!(placed.len(), count, "a node was not placed");
        let all: Vec<&Placed> = placed.values().collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                let same_column = (a.x - b.x).abs() < 1.0;
                let apart = a.y + a.height <= b.y || b.y + b.height <= a.y;
                assert!(!same_column || apart, "two nodes overlap: {a:?} {b:?}");
            }
        }
    }
}
