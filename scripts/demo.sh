#!/usr/bin/env bash
# The main command: installs what is missing, builds Switchyard and the example guests, checks and
# draws the example config, then runs it with `switchyard up` — two tenants (acme, globex), each
# with its web page, its counter service and its MySQL pool on a private MariaDB — until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
# The embedded backend runs the system's mariadbd; the client provisions it.
ensure_apt mariadb-server mariadb-client
build_guests

say "building switchyard"
cargo build --locked --bin switchyard

# The example config references its database passwords as ${env:...}; give the demo its own.
# (The embedded server takes each pool's password anew at every start.)
random_secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
export ACME_DB_PASSWORD="${ACME_DB_PASSWORD:-$(random_secret)}"
export GLOBEX_DB_PASSWORD="${GLOBEX_DB_PASSWORD:-$(random_secret)}"

say "switchyard check examples/switchyard.yaml"
target/debug/switchyard check examples/switchyard.yaml

say "switchyard map examples/switchyard.yaml --format text"
target/debug/switchyard map examples/switchyard.yaml --format text

say "switchyard policy check (acme's policy)"
target/debug/switchyard policy check --config examples/switchyard.yaml --tenant acme \
    https://shop.acme.example tcp://reports.acme.example:5432 tcp://169.254.169.254:80 https://api.globex.example \
    || true   # exit 1 means "some target denied", which is the point of this example

say "switchyard up examples/switchyard.yaml"
cat <<'URLS'
    acme's page:    http://acme.localhost:8080/      (JSON: /api/items)
    globex's page:  http://globex.localhost:8080/
    live map:       http://127.0.0.1:9090/      (sessions, connections, denied egress)
    readiness:      http://127.0.0.1:9090/healthz
    metrics:        http://127.0.0.1:9090/metrics
    data:           target/switchyard-state/mariadb (kept across runs)
    (without *.localhost names: curl -H 'Host: acme.localhost' http://127.0.0.1:8080/)
    edit examples/switchyard.yaml, then: target/debug/switchyard reload examples/switchyard.yaml
    Ctrl-C stops everything.
URLS
RUST_LOG="${RUST_LOG:-info}" exec target/debug/switchyard up examples/switchyard.yaml
