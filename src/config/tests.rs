use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "ACME_DB_PASSWORD" => Some("s3cret-acme".to_owned()),
        _ => None,
    }
}

fn load_ok(text: &str) -> Loaded {
    load(text, &Overrides::default(), &env).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn errors(text: &str) -> Vec<(String, Option<usize>, String)> {
    let findings = load(text, &Overrides::default(), &env).expect_err("config should be rejected");
    findings
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.path.as_str().to_owned(), d.line, d.message))
        .collect()
}

const MINIMAL: &str = "tenants:\n  - name: acme\n";

#[test]
fn the_example_config_loads() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/switchyard.yaml")).unwrap();
    let env = |name: &str| Some(format!("value-of-{name}"));
    let loaded = load(&text, &Overrides::default(), &env).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(loaded.config.tenants.len(), 2);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn every_mistake_is_reported_with_its_key_path_and_line() {
    let text = r#"version: 1
profil: dev
tenants:
  - name: acme
    allowed_hosts: ["https://x/path", "*.example.com", "tcp://10.0.0.1/8"]
    components:
      - name: web
        kind: http
        wasm: web.wasm
        ingres: {}
    forwards:
      - "99999:db.internal:5432"
      - port: 5432
        to: db.internal
    pools:
      - name: main
        backend: mysql://db.internal
        user: app
        password: plain-text
        max_conections: 4
  - name: Bad Name
"#;
    let found = errors(text);
    let expect = [
        ("profil", 2, "unknown key `profil`; did you mean `profile`?"),
        ("tenants[0].allowed_hosts[0]", 5, "path"),
        ("tenants[0].allowed_hosts[2]", 5, "did you mean `10.0.0.0/8`?"),
        ("tenants[0].components[0].ingres", 10, "did you mean `ingress`?"),
        ("tenants[0].components[0]", 7, "missing required key `ingress`"),
        ("tenants[0].forwards[0]", 12, "`99999`"),
        ("tenants[0].forwards[1].to", 14, "has no port"),
        ("tenants[0].pools[0].max_conections", 20, "did you mean `max_connections`?"),
        ("tenants[0].pools[0].password", 19, "not a literal"),
        ("tenants[1].name", 21, "not a valid name"),
    ];
    for (path, line, needle) in expect {
        assert!(
            found.iter().any(|(p, l, m)| p == path && *l == Some(line) && m.contains(needle)),
            "expected `{needle}` at {path} line {line}; found {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

#[test]
fn forwards_and_backends_must_pass_the_tenant_policy() {
    let text = r#"tenants:
  - name: acme
    allowed_hosts: ["tcp://db.internal:5432"]
    forwards: ["5432:db.internal:5432", "6379:cache.internal:6379", "80:169.254.169.254:80"]
    pools:
      - {name: main, backend: "mysql://db.internal", user: app, password: "${env:ACME_DB_PASSWORD}"}
"#;
    let found = errors(text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].0 == "tenants[0].forwards[1]" && found[0].2.contains("add `tcp://cache.internal:6379`"));
    assert!(found[1].0 == "tenants[0].forwards[2]" && found[1].2.contains("blocked network 169.254.0.0/16"));
    assert!(
        found[2].0 == "tenants[0].pools[0].backend" && found[2].2.contains("add `mysql://db.internal:3306`")
    );
}

#[test]
fn virtual_ports_and_names_are_unique_per_tenant() {
    let text = r#"tenants:
  - name: acme
    allowed_hosts: ["*"]
    forwards: ["3306:db.internal:3306"]
    pools:
      - {name: main, port: 3306, backend: embedded, user: app, password: "${env:ACME_DB_PASSWORD}"}
      - {name: main, port: 3307, backend: embedded, user: app, password: "${env:ACME_DB_PASSWORD}"}
  - name: acme
"#;
    let found = errors(text);
    let messages: Vec<&str> = found.iter().map(|(_, _, m)| m.as_str()).collect();
    assert!(messages.contains(&"pool name main is already used at tenants[0].pools[0].name"), "{found:#?}");
    assert!(messages.contains(&"virtual port 3306 is already used at tenants[0].forwards[0]"), "{found:#?}");
    assert!(messages.contains(&"tenant name acme is already used at tenants[0].name"), "{found:#?}");
}

#[test]
fn missing_allowed_hosts_depend_on_the_profile_and_an_empty_list_denies_all() {
    let prod = load_ok(MINIMAL);
    assert!(prod.config.tenants[0].allowed_hosts.is_empty());
    assert!(prod.warnings.is_empty());

    let dev = load_ok(&format!("profile: dev\n{MINIMAL}"));
    assert_eq!(dev.config.tenants[0].allowed_hosts, vec![switchyard_policy::AllowedHost::any()]);
    assert_eq!(dev.warnings.len(), 1);
    assert!(
        dev.warnings[0].message.contains("tenant `acme` declares no allowed_hosts"),
        "{:?}",
        dev.warnings
    );

    for profile in ["dev", "prod"] {
        let empty =
            load_ok(&format!("profile: {profile}\ntenants:\n  - name: acme\n    allowed_hosts: []\n"));
        assert!(empty.config.tenants[0].allowed_hosts.is_empty(), "{profile}");
        assert!(empty.warnings.is_empty());
    }

    let overridden =
        load(MINIMAL, &Overrides { profile: Some(Profile::Dev), ..Overrides::default() }, &env).unwrap();
    assert_eq!(overridden.config.profile, Profile::Dev);
    assert_eq!(overridden.config.tenants[0].allowed_hosts.len(), 1);
}

#[test]
fn a_missing_secret_names_the_variable_and_the_key_and_no_value_is_ever_shown() {
    let text = r#"tenants:
  - name: acme
    pools:
      - {name: a, port: 3306, backend: embedded, user: app, password: "${env:ACME_DB_PASSWORD}"}
      - {name: b, port: 3307, backend: embedded, user: app, password: "${env:GLOBEX_DB_PASSWORD}"}
"#;
    let found = errors(text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "tenants[0].pools[1].password");
    assert!(found[0].2.contains("`GLOBEX_DB_PASSWORD` is not set"));
    let ok = load_ok(&text.replace("GLOBEX", "ACME"));
    assert!(!format!("{:?}", ok.config).contains("s3cret-acme"));
    assert_eq!(ok.config.tenants[0].pools[0].password.expose(), "s3cret-acme");
}

#[test]
fn syntax_errors_and_wrong_types_are_reported_not_panicked() {
    let syntax = load("tenants: [\n", &Overrides::default(), &env).unwrap_err();
    assert_eq!(syntax.len(), 1);
    // The parser stops past the end: the finding names the last line of the text.
    assert_eq!(syntax[0].line, Some(1));
    // An empty item at the end of the text is on its last line (the parser places it after).
    let empty = load("version: 1\ntenants:\n  -\n", &Overrides::default(), &env).unwrap_err();
    assert!(empty.iter().all(|f| f.line.is_some_and(|l| l <= 3)), "{empty:?}");
    // A lone carriage return ends a line, as YAML reads it.
    let unknown = load("version: 1\rnope: 1\r", &Overrides::default(), &env).unwrap_err();
    assert_eq!(
        unknown.iter().find(|f| f.message.contains("nope")).and_then(|f| f.line),
        Some(2),
        "{unknown:?}"
    );
    for text in [
        "",
        "[]",
        "tenants: 5",
        "tenants: [5]",
        "version: 2\ntenants: []",
        "tenants:\n  - name: a\n    limits: {max_sockets: -1}\n",
    ] {
        assert!(load(text, &Overrides::default(), &env).is_err(), "{text:?}");
    }
}

#[test]
fn long_and_short_forwards_decode_alike() {
    let text = r#"tenants:
  - name: acme
    allowed_hosts: ["tcp://db.internal", "tcp://[2001:db8::1]:5432"]
    forwards:
      - "5432:db.internal:5432"
      - {port: 5433, to: "[2001:db8::1]:5432", tls: true, connect_timeout: 250ms, max_connections: 2, idle_timeout: 90s}
"#;
    let t = &load_ok(text).config.tenants[0];
    assert_eq!((t.forwards[0].port, t.forwards[0].to_port), (5432, 5432));
    assert_eq!(t.forwards[0].host.to_string(), "db.internal");
    assert_eq!(t.forwards[1].host.to_string(), "[2001:db8::1]");
    assert!(t.forwards[1].tls.is_some());
    assert_eq!(t.forwards[1].connect_timeout, std::time::Duration::from_millis(250));
    assert_eq!(t.forwards[1].idle_timeout, std::time::Duration::from_secs(90));
    assert_eq!(t.forwards[0].idle_timeout, std::time::Duration::from_secs(3600), "the default");
}

#[test]
fn dns_fixed_answers_are_read_and_bad_ones_reported() {
    let loaded = load_ok(
        "dns:\n  timeout: 2s\n  hosts:\n    db.internal: [10.0.0.5, \"fd00::5\"]\ntenants:\n  - name: acme\n",
    );
    assert_eq!(loaded.config.dns.timeout, std::time::Duration::from_secs(2));
    let name = switchyard_policy::HostName::parse("db.internal").unwrap();
    let addrs: Vec<String> = loaded.config.dns.hosts[&name].iter().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.5", "fd00::5"]);
    assert_eq!(load_ok(MINIMAL).config.dns, Dns::default());

    let found = errors(
        "dns:\n  hosts:\n    \"bad..name\": [10.0.0.5]\n    ok.internal: [not-an-ip]\n    empty.internal: []\n  timeot: 1s\ntenants:\n  - name: acme\n",
    );
    let paths: Vec<&str> = found.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["dns.hosts.bad..name", "dns.hosts.ok.internal[0]", "dns.hosts.empty.internal", "dns.timeot"],
        "{found:#?}"
    );
}

#[test]
fn the_sql_admin_interface_needs_a_secret_and_an_address_of_its_own() {
    let text = r#"admin:
  listen: 127.0.0.1:9090
  sql: {listen: 127.0.0.1:9090, user: ops, password: hunter2, extra: 1}
tenants:
  - name: acme
    allowed_hosts: []
"#;
    let found = errors(text);
    let keys: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert!(keys.contains(&"admin.sql.password"), "{found:#?}");
    assert!(keys.contains(&"admin.sql.extra"), "{found:#?}");
    assert!(found.iter().all(|f| !f.2.contains("hunter2")), "the literal password is shown: {found:#?}");

    let same_address = text.replace("password: hunter2, extra: 1", "password: \"${env:ACME_DB_PASSWORD}\"");
    let found = errors(&same_address);
    assert!(
        found.iter().any(|f| f.0.starts_with("admin.") && f.2.contains("9090")),
        "same address twice: {found:#?}"
    );

    let ok = r#"admin:
  sql: {listen: 127.0.0.1:9091, user: ops, password: "${env:ACME_DB_PASSWORD}"}
tenants:
  - name: acme
    allowed_hosts: []
"#;
    let loaded = load_ok(ok);
    let sql = loaded.config.admin.sql.expect("admin.sql");
    assert_eq!((sql.listen.port(), sql.user.as_str()), (9091, "ops"));
    assert_eq!(sql.password.reference(), "${env:ACME_DB_PASSWORD}");
}

#[test]
fn embedded_accounts_are_each_tenants_own_and_never_the_servers() {
    let shared = r#"tenants:
  - name: acme
    pools:
      - {name: main, backend: embedded, database: shop, user: app, password: "${env:ACME_DB_PASSWORD}"}
      - {name: other, port: 3307, backend: embedded, database: shop, user: app, password: "${env:ACME_DB_PASSWORD}"}
  - name: globex
    pools:
      - {name: main, backend: embedded, database: shop, user: app, password: "${env:ACME_DB_PASSWORD}"}
"#;
    let found = errors(shared);
    let at = |found: &[(String, Option<usize>, String)], path: &str, piece: &str| {
        found.iter().any(|(p, _, m)| p == path && m.contains(piece))
    };
    // One tenant's two pools may share an account; another tenant may not.
    assert!(!found.iter().any(|(p, _, _)| p.starts_with("tenants[0]")), "{found:#?}");
    assert!(
        at(&found, "tenants[1].pools[0].user", "embedded user `app` is already tenant `acme`'s"),
        "{found:#?}"
    );
    assert!(
        at(&found, "tenants[1].pools[0].database", "embedded database `shop` is already tenant `acme`'s"),
        "{found:#?}"
    );

    let reserved = r#"tenants:
  - name: acme
    pools:
      - {name: admin, backend: embedded, database: mysql, user: Root, password: "${env:ACME_DB_PASSWORD}"}
"#;
    let found = errors(reserved);
    assert!(
        at(&found, "tenants[0].pools[0].user", "`Root` is reserved on the embedded server"),
        "{found:#?}"
    );
    assert!(
        at(&found, "tenants[0].pools[0].database", "`mysql` is the embedded server's own database"),
        "{found:#?}"
    );
}

#[test]
fn an_empty_secret_is_rejected_with_its_key_path() {
    let text = r#"tenants:
  - name: acme
    pools:
      - {name: main, backend: embedded, user: app, password: "${env:EMPTY_PASSWORD}"}
"#;
    let empty = |name: &str| (name == "EMPTY_PASSWORD").then(String::new);
    let findings = load(text, &Overrides::default(), &empty).expect_err("an empty password is rejected");
    assert!(
        findings.iter().any(|d| d.path.as_str() == "tenants[0].pools[0].password"
            && d.message.contains("environment variable `EMPTY_PASSWORD` is empty")),
        "{findings:#?}"
    );
}

#[test]
fn a_restart_policy_cannot_make_a_busy_loop() {
    let text = r#"tenants:
  - name: acme
    components:
      - name: crashy
        kind: service
        wasm: x.wasm
        restart: {backoff_initial: 0ms, backoff_max: 0ms, max_restarts: 4000000000}
"#;
    let found = errors(text);
    let at = |path: &str, piece: &str| found.iter().any(|(p, _, m)| p == path && m.contains(piece));
    assert!(at("tenants[0].components[0].restart.backoff_initial", "below the floor of 10ms"), "{found:#?}");
    assert!(at("tenants[0].components[0].restart.max_restarts", "more than the 1000 allowed"), "{found:#?}");
}

#[test]
fn a_components_secret_env_value_never_shows_in_the_configs_debug() {
    let text = r#"tenants:
  - name: acme
    components:
      - name: web
        kind: service
        wasm: x.wasm
        env: { DB_PASSWORD: "${env:ACME_DB_PASSWORD}", MODE: fast }
"#;
    let loaded = load_ok(text);
    let env = &loaded.config.tenants[0].components[0].env;
    assert_eq!(env["DB_PASSWORD"].expose(), "s3cret-acme", "the guest gets the value");
    assert_eq!(env["MODE"].expose(), "fast");
    let debug = format!("{:?}", loaded.config);
    assert!(!debug.contains("s3cret-acme"), "the secret is in the config's Debug: {debug}");
    assert!(debug.contains("${env:ACME_DB_PASSWORD}") && debug.contains("fast"), "{debug}");
}
