//! The demo's config for end-to-end tests (two tenants on an embedded MariaDB).

use std::net::SocketAddr;
use std::path::Path;

use super::guest;

/// The demo's shape: tenants `acme` and `globex`, each with the tenant-crud page on `ingress`
/// (host `<tenant>.localhost`), a counter service, and a pool of 2 on the `embedded` backend
/// whose passwords come from [`DEMO_ENV`]; state under `state`.
pub fn demo_config(admin: SocketAddr, ingress: SocketAddr, state: &Path) -> String {
    let crud = guest("tenant_crud.wasm");
    let counter = guest("counter-service.wasm");
    let tenant = |name: &str| {
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
            upper = name.to_uppercase()
        )
    };
    format!(
        "version: 1\nstate_dir: {state}\nadmin: {{ listen: \"{admin}\" }}\ntenants:{}{}",
        tenant("acme"),
        tenant("globex"),
        state = state.display()
    )
}

/// The secrets [`demo_config`] references.
pub const DEMO_ENV: [(&str, &str); 2] =
    [("ACME_DB_PASSWORD", "acme-pw"), ("GLOBEX_DB_PASSWORD", "globex-pw")];
