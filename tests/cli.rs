//! The `switchyard` command line, run as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn switchyard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(args).env_remove("ACME_DB_PASSWORD").env_remove("GLOBEX_DB_PASSWORD").env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("switchyard runs")
}

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SECRETS: &[(&str, &str)] =
    &[("ACME_DB_PASSWORD", "pw-acme-7f3a9c"), ("GLOBEX_DB_PASSWORD", "pw-globex-1b2d4e")];

#[test]
fn policy_check_prints_one_line_per_target_and_exits_by_the_outcome() {
    let out = switchyard(
        &[
            "policy",
            "check",
            "--allow",
            "https://*.example.com",
            "--allow",
            "tcp://10.0.0.0/8",
            "https://api.example.com",
            "tcp://10.1.2.3:5432",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("allow https://api.example.com:443")
            && lines[0].contains("https://*.example.com")
    );
    assert!(lines[1].starts_with("allow tcp://10.1.2.3:5432") && lines[1].contains("tcp://10.0.0.0/8"));

    let out = switchyard(
        &["policy", "check", "--allow", "*", "tcp://10.1.2.3:5432", "tcp://169.254.169.254:80"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.lines().nth(1).is_some_and(|l| l.starts_with("deny") && l.contains("169.254.0.0/16")),
        "{text}"
    );

    let out = switchyard(&["policy", "check", "mysql://db.internal"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("deny"));
}

#[test]
fn policy_check_rejects_invalid_entries_targets_and_usage_with_exit_2() {
    for args in [
        &["policy", "check", "--allow", "https://x/path", "https://x"][..],
        &["policy", "check", "--allow", "10.0.0.1/8", "tcp://10.0.0.1:1"],
        &["policy", "check", "tcp://db.internal"],
        &["policy", "check", "db.internal:5432"],
        &["policy", "check"],
        &["policy", "check", "--resolved", "x.example=not-an-ip", "tcp://1.2.3.4:1"],
        &["policy", "check", "--tenant", "acme", "tcp://1.2.3.4:1"],
    ] {
        let out = switchyard(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    let out = switchyard(&["policy", "check", "--allow", "10.0.0.1/8", "tcp://10.0.0.1:1"], &[]);
    assert!(stderr(&out).contains("did you mean `10.0.0.0/8`"), "{}", stderr(&out));
    let out = switchyard(&["policy", "check", "tcp://db.internal"], &[]);
    assert!(stderr(&out).contains("no default port"), "{}", stderr(&out));
}

#[test]
fn policy_check_uses_resolved_names_and_a_tenants_config() {
    let out = switchyard(
        &[
            "policy",
            "check",
            "--allow",
            "tcp://*.example.com:443",
            "--resolved",
            "api.example.com=192.0.2.7",
            "tcp://192.0.2.7:443",
            "tcp://192.0.2.8:443",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.lines().next().is_some_and(|l| l.starts_with("allow") && l.contains("api.example.com")),
        "{text}"
    );
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("deny")), "{text}");

    let config = repo("examples/switchyard.yaml");
    let args = [
        "policy",
        "check",
        "--config",
        &config,
        "--tenant",
        "acme",
        "https://www.acme.example",
        "https://api.globex.example",
    ];
    let out = switchyard(&args, SECRETS);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("allow https://www.acme.example:443"), "{text}");
    assert!(
        text.lines().nth(1).is_some_and(|l| l.starts_with("deny  https://api.globex.example:443")),
        "{text}"
    );

    let args = ["policy", "check", "--config", &config, "--tenant", "initech", "https://x.example"];
    let out = switchyard(&args, SECRETS);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no such tenant") && stderr(&out).contains("acme, globex"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_lists_every_error_with_its_key_path_and_line() {
    let out = switchyard(&["check", &repo("tests/configs/broken.yaml")], &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    for expected in [
        "broken.yaml:2: error: profil: unknown key `profil`; did you mean `profile`?",
        "broken.yaml:5: error: tenants[0].allowed_hosts[0]:",
        "broken.yaml:5: error: tenants[0].allowed_hosts[2]:",
        "broken.yaml:10: error: tenants[0].components[0].ingres: unknown key `ingres`; did you mean `ingress`?",
        "broken.yaml:12: error: tenants[0].forwards[0]:",
        "broken.yaml:14: error: tenants[0].forwards[1].to:",
        "broken.yaml:19: error: tenants[0].pools[0].password:",
        "broken.yaml:20: error: tenants[0].pools[0].max_conections:",
        "broken.yaml:21: error: tenants[1].name:",
        "10 errors found",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn check_reports_secrets_policy_and_wasm_files_in_one_pass() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("check-one-pass");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    // A core module, not a component; and a text file.
    std::fs::write(dir.join("module.wasm"), b"\0asm\x01\x00\x00\x00").expect("module");
    std::fs::write(dir.join("notes.wasm"), b"hello").expect("text");
    let config = dir.join("switchyard.yaml");
    std::fs::write(
        &config,
        r#"version: 1
tenants:
  - name: acme
    allowed_hosts: ["mysql://db.internal:3306"]
    components:
      - name: gone
        kind: service
        wasm: missing.wasm
      - name: core
        kind: service
        wasm: module.wasm
      - name: text
        kind: service
        wasm: notes.wasm
    forwards:
      - { port: 5432, to: "pg.internal:5432" }
    pools:
      - name: main
        backend: "mysql://other.internal:3306"
        user: app
        password: ${env:SWITCHYARD_SURELY_UNSET_VARIABLE}
"#,
    )
    .expect("config");
    let out = switchyard(&["check", &config.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    for expected in [
        ":8: error: tenants[0].components[0].wasm: cannot read",
        ":11: error: tenants[0].components[1].wasm: not a component:",
        ":14: error: tenants[0].components[2].wasm: not a component:",
        ":16: error: tenants[0].forwards[0]: forward to pg.internal:5432 is not allowed",
        ":19: error: tenants[0].pools[0].backend: pool backend mysql://other.internal:3306 is not allowed",
        ":21: error: tenants[0].pools[0].password: environment variable `SWITCHYARD_SURELY_UNSET_VARIABLE` is not set",
        "6 errors found",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn check_accepts_the_example_and_names_a_missing_secret() {
    let config = repo("examples/switchyard.yaml");
    let out = switchyard(&["check", &config], SECRETS);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok:"));

    let out = switchyard(&["check", &config], &SECRETS[..1]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("tenants[1].pools[0].password: environment variable `GLOBEX_DB_PASSWORD` is not set"),
        "{text}"
    );
}

#[test]
fn a_dev_profile_without_allowed_hosts_warns_naming_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.yaml");
    std::fs::write(&path, "profile: dev\ntenants:\n  - name: sandbox\n").unwrap();
    let out = switchyard(&["check", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("warning")
            && stderr(&out).contains("tenant `sandbox` declares no allowed_hosts")
    );
    let out = switchyard(&["check", "--profile", "prod", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).is_empty(), "prod gets deny-all silently: {}", stderr(&out));
}

#[test]
fn map_draws_every_part_and_never_a_secret() {
    let out = switchyard(&["map", &repo("examples/switchyard.yaml"), "--format", "text"], SECRETS);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "tenant acme",
        "tenant globex",
        "https://*.acme.example",
        "web (http",
        "counter (service",
        ":3306 -> pool main -> embedded MariaDB",
        ":5432 -> forward -> reports.acme.example:5432, tls",
        ":6379 -> forward -> cache.globex.example:6379",
        "password ${env:ACME_DB_PASSWORD}",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    for (_, secret) in SECRETS {
        assert!(!text.contains(secret) && !stderr(&out).contains(secret));
    }
}

#[test]
fn map_draws_graphs_as_mermaid_dot_and_svg_without_secrets() {
    let config = repo("examples/switchyard.yaml");
    let out = switchyard(&["map", &config, "--format", "mermaid"], SECRETS);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mermaid = stdout(&out);
    for expected in [
        "flowchart LR",
        "subgraph tenant__acme[\"tenant acme\"]",
        "ingress__127_0_0_1_8080 -->|\"acme.localhost/\"| acme__component__web",
        "acme__vnet -->|\":3306\"| acme__pool__main",
        "acme__pool__main -.->|\"socket; user acme_app\"| embedded__mariadb",
        "acme__forward__5432 -.->|\"policy, DNS, TLS\"| acme__target__reports_acme_example_5432",
    ] {
        assert!(mermaid.contains(expected), "missing `{expected}` in:\n{mermaid}");
    }
    let out = switchyard(&["map", &config, "--format", "dot"], SECRETS);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dot = stdout(&out);
    assert!(
        dot.starts_with("digraph switchyard {") && dot.contains("subgraph cluster_tenant__globex"),
        "{dot}"
    );
    let out = switchyard(&["map", &config, "--format", "svg"], SECRETS);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let svg = stdout(&out);
    assert!(svg.contains("<svg") && svg.contains("tenant acme"), "{svg}");
    for (_, secret) in SECRETS {
        for text in [&mermaid, &dot, &svg] {
            assert!(!text.contains(secret));
        }
    }
}

#[test]
fn check_refuses_more_tenants_than_one_hosts_instance_slots() {
    // 2,300 tenants with an http component each reserve 4 slots: 9,200 + 1,000 shared.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("too_many_slots");
    std::fs::create_dir_all(&dir).expect("test dir");
    // `check` reads a component's header only; `up` compiles it.
    std::fs::write(dir.join("web.wasm"), b"\0asm\x0d\x00\x01\x00").expect("wasm file");
    let tenants = |count: usize| {
        let mut yaml = String::from("version: 1\ntenants:\n");
        for i in 0..count {
            yaml.push_str(&format!(
                "  - name: t{i}\n    allowed_hosts: []\n    components:\n      - name: web\n        kind: http\n        wasm: web.wasm\n        ingress: {{ listen: \"127.0.0.1:8080\", host: t{i}.localhost }}\n"
            ));
        }
        yaml
    };
    let path = dir.join("switchyard.yaml");
    std::fs::write(&path, tenants(2_300)).expect("config");
    let out = switchyard(&["check", &path.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stderr(&out);
    assert!(
        text.contains("the tenants need 10200 instance slots (0 services, 9200 reserved")
            && text.contains("more than the 10000 one host holds"),
        "{text}"
    );
    std::fs::write(&path, tenants(2_000)).expect("config");
    let out = switchyard(&["check", &path.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_kubernetes_manifests_carry_configs_that_load() {
    use serde::Deserialize;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("k8s-configs");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("folder");
    let mut configs = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("manifest");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(document).expect("YAML");
            let Some(config) =
                value.get("data").and_then(|d| d.get("switchyard.yaml")).and_then(|c| c.as_str())
            else {
                continue;
            };
            let file = out_dir.join(format!("config-{configs}.yaml"));
            std::fs::write(&file, config).expect("write");
            // `map` loads and checks the config (keys, policy, secrets) without the wasm files.
            let out = switchyard(
                &["map", &file.display().to_string()],
                &[("ACME_DB_PASSWORD", "x"), ("SHOP_DB_PASSWORD", "x")],
            );
            assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), stderr(&out));
            configs += 1;
        }
    }
    assert_eq!(configs, 2, "the DaemonSet's and the sidecar's configs");
}
