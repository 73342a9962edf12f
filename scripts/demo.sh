#!/usr/bin/env bash
# The main command: builds switchyard, validates the example config and draws it.
# (The full two-tenant demo with `switchyard up` arrives with the vnet, pooler and demo issues.)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust

say "building switchyard"
cargo build --locked --bin switchyard

# The example config references its database passwords as ${env:...}; give the demo its own.
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
