#!/usr/bin/env bash
# The full test suite, as CI runs it (.ci/run calls this). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
# The pooler's tests start a private MariaDB (mariadbd, mariadb-install-db), use its client and sysbench;
# `map --format svg` uses graphviz; the browser test drives chromium through chromedriver; a pooler
# test connects with PyMySQL as Python programs do (Debian's python3-pymysql, run by /usr/bin/python3).
ensure_apt mariadb-server mariadb-client sysbench graphviz chromium chromium-driver python3-pymysql
build_guests

say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo fmt --manifest-path examples/Cargo.toml --all --check
(cd examples && cargo clippy --target wasm32-wasip2 --all-targets --locked --target-dir ../target/guests \
    -- -D warnings)

say "cargo test (unit, property and end-to-end tests; examples/embed-host runs the example guests)"
cargo test --workspace --locked

say "cargo package: the library crates' manifests, license and readmes (not rebuilt: that is cargo test's)"
cargo package -p switchyard-policy -p switchyard-vnet -p switchyard-pooler --no-verify --locked --allow-dirty

say "deploy/kubernetes against the Kubernetes schemas (kubernetes-validate, strict)"
"$(ensure_kubernetes_validate)" --strict --quiet deploy/kubernetes/*.yaml

say "fuzzing every fuzz/ target (nightly, cargo-fuzz; FUZZ_SECONDS each, default 60)"
bash scripts/fuzz.sh
