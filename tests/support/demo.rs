//! The demo's config for end-to-end tests (two tenants on an embedded MariaDB).

use std::net::SocketAddr;
use std::path::Path;

use super::guest;

/// The demo's shape: tenants `acme` and `globex` ([`demo_tenant`]), with the admin endpoint on
/// `admin` and state under `state`.
pub fn demo_config(admin: SocketAddr, ingress: SocketAddr, state: &Path) -> String {
    format!(
        "version: 1\nstate_dir: {state}\nadmin: {{ listen: \"{admin}\" }}\ntenants:{}{}",
        demo_tenant("acme", ingress),
        demo_tenant("globex", ingress),
        state = state.display()
    )
}

/// One demo tenant (a tenants-list item): the tenant-crud page on `ingress` (host
/// `<name>.localhost`), a counter service, and a pool of 2 on the `embedded` backend whose
/// password is `${env:<NAME>_DB_PASSWORD}`.
pub fn demo_tenant(name: &str, ingress: SocketAddr) -> String {
    format!(
        r#"
  - name: {name}
    allowed_hosts: []
    components:
      - name: web
        kind: http
        wasm: {crud}
        ingress: {{ listen: "{ingress}", host: {name}.localhost }}
        env: {{ TENANT: {name}, DB_USER: {name}_app, DB_PASSWORD: "${{env:{upper}_DB_PASSWORD}}", DB_NAME: {name} }}
      - name: counter
        kind: service
        wasm: {counter}
    pools:
      - name: main
        backend: embedded
        database: {name}
        user: {name}_app
        password: ${{env:{upper}_DB_PASSWORD}}
        max_connections: 2
"#,
        crud = guest("tenant_crud.wasm"),
        counter = guest("counter-service.wasm"),
        upper = name.to_uppercase()
    )
}

/// The secrets [`demo_config`] references.
pub const DEMO_ENV: [(&str, &str); 2] =
    [("ACME_DB_PASSWORD", "acme-pw"), ("GLOBEX_DB_PASSWORD", "globex-pw")];
