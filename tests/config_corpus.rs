//! A corpus of broken configs (`tests/configs/broken/`): `switchyard check` rejects each one
//! (exit 2) without panicking, and reports every error with the key path it concerns (or
//! `(document)` for the document as a whole), its line when known, and a message that says
//! what is wrong. Every file of the corpus must have its expectation here.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// File → a piece of its report that names the key path and the problem.
const EXPECTED: &[(&str, &str)] = &[
    ("admin_bad.yaml", ":2: error: admin.listen: `not an address` is not an address"),
    ("anchors_bomb.yaml", "error: (document): repetition limit exceeded"),
    ("bad_allowed_host.yaml", ":4: error: tenants[0].allowed_hosts[1]: invalid allowed-hosts entry"),
    ("binary_garbage.yaml", "cannot read config"),
    ("component_bad_kind.yaml", ":6: error: tenants[0].components[0].kind: unknown component kind `lambda`"),
    ("component_no_wasm.yaml", ":5: error: tenants[0].components[0]: missing required key `wasm`"),
    ("deep_nesting.yaml", "error: (document): recursion limit exceeded"),
    ("duplicate_key.yaml", ":1: error: (document): duplicate entry with key \"version\""),
    (
        "duplicate_tenant.yaml",
        ":4: error: tenants[1].name: tenant name acme is already used at tenants[0].name",
    ),
    ("empty.yaml", "error: (document): expected a mapping"),
    (
        "forward_bad_port.yaml",
        ":5: error: tenants[0].forwards[0].port: expected a port number from 1 to 65535",
    ),
    ("forward_string_garbage.yaml", ":4: error: tenants[0].forwards[0]:"),
    (
        "huge_number.yaml",
        ":9: error: tenants[0].pools[0].max_connections: the number 99999999999999999999999999 is too large",
    ),
    (
        "ingress_bad_listen.yaml",
        ":8: error: tenants[0].components[0].ingress.listen: `localhost:99999` is not an address",
    ),
    ("not_a_map.yaml", "error: (document): expected a mapping"),
    ("pool_bad_duration.yaml", ":9: error: tenants[0].pools[0].checkout_timeout: `soon` is not a duration"),
    (
        "pool_bad_last_insert_id.yaml",
        ":9: error: tenants[0].pools[0].last_insert_id: unknown last_insert_id setting `guessed`: expected `exact` or `reported`",
    ),
    ("pool_bad_mode.yaml", ":9: error: tenants[0].pools[0].mode: unknown pool mode `statement`"),
    (
        "pool_missing_secret.yaml",
        ":8: error: tenants[0].pools[0].password: environment variable `SWITCHYARD_SURELY_UNSET_VARIABLE` is not set",
    ),
    ("pool_missing_user.yaml", ":5: error: tenants[0].pools[0]: missing required key `user`"),
    ("pool_negative_max.yaml", ":9: error: tenants[0].pools[0].max_connections: expected a count, found -4"),
    ("pool_plain_password.yaml", ":8: error: tenants[0].pools[0].password: a secret must be a reference"),
    ("pool_url_with_credentials.yaml", ":7: error: tenants[0].pools[0].backend:"),
    ("pool_zero_max.yaml", ":9: error: tenants[0].pools[0].max_connections: expected a count of at least 1"),
    (
        "port_clash.yaml",
        ":6: error: tenants[0].forwards[1]: virtual port 5432 is already used at tenants[0].forwards[0]",
    ),
    ("syntax_error.yaml", ":4: error: (document): did not find expected ','"),
    ("tab_indent.yaml", ":3: error: (document): found character that cannot start any token"),
    ("tenant_no_name.yaml", ":3: error: tenants[0]: missing required key `name`"),
    ("tenants_not_list.yaml", ":2: error: tenants: expected a list, found a string"),
    ("unknown_top_key.yaml", ":2: error: tennants: unknown key `tennants`; did you mean `tenants`?"),
    ("version_string.yaml", ":1: error: version: this Switchyard reads config `version: 1` only"),
    ("wrong_version.yaml", ":1: error: version: this Switchyard reads config `version: 1` only"),
];

/// Whether an error line has the shape `FILE[:LINE]: error: KEY.PATH: message`.
fn well_formed(line: &str, file: &str) -> bool {
    let Some(rest) = line.strip_prefix(file) else { return false };
    let rest = rest.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix(" error: ") else { return false };
    let Some((path, message)) = rest.split_once(": ") else { return false };
    let is_path = path == "(document)"
        || path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    is_path && !message.trim().is_empty()
}

#[test]
fn every_broken_config_is_rejected_with_its_key_path_and_none_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/broken");
    let expected: BTreeMap<&str, &str> = EXPECTED.iter().copied().collect();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("the corpus folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), expected.len(), "every corpus file needs an expectation here: {files:?}");
    for name in &files {
        let want = expected.get(name.as_str()).unwrap_or_else(|| panic!("no expectation for {name}"));
        let path = dir.join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("check")
            .arg(&path)
            .env("SWITCHYARD_TEST_PW", "x")
            .env_remove("SWITCHYARD_SURELY_UNSET_VARIABLE")
            .output()
            .expect("run switchyard check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} was not rejected:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name} panicked:\n{stderr}");
        assert!(stderr.contains(want), "{name}: missing `{want}` in:\n{stderr}");
        let file = path.display().to_string();
        for line in stderr.lines().filter(|l| l.contains(" error: ") && l.starts_with(&file)) {
            assert!(well_formed(line, &file), "{name}: an error without its key path: {line}");
        }
    }
}
