#!/usr/bin/env bash
# The soak: both load tools at steady load for SOAK_SECONDS (default 600) at once — 10,000
# virtual connections across 100 workloads, and 2,000 sessions on one pooler with 8 backend
# connections against a private MariaDB. Each samples its heap every 30 s and fails (exit 1) on
# any error, on heap growth of 5 % or more after the first sample, or (pooler) if MariaDB ever
# sees more backend connections than the cap. Figures go to target/soak/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
ensure_apt mariadb-server mariadb-client
seconds="${SOAK_SECONDS:-600}"
mkdir -p target/soak
export CARGO_TARGET_DIR=target/bench
say "building the load tools"
cargo bench --locked -p switchyard-vnet --bench load --no-run
cargo bench --locked -p switchyard-pooler --bench sessions_load --no-run
say "soaking for ${seconds}s (logs in target/soak/)"
LOAD_SECONDS="$seconds" cargo bench --locked -p switchyard-vnet --bench load >target/soak/vnet.log 2>&1 &
vnet=$!
LOAD_SECONDS="$seconds" cargo bench --locked -p switchyard-pooler --bench sessions_load >target/soak/pooler.log 2>&1 &
pooler=$!
status=0
wait "$vnet" || status=1
wait "$pooler" || status=1
tail -n 12 target/soak/vnet.log target/soak/pooler.log
[ "$status" -eq 0 ] && say "soak passed" || say "soak FAILED"
exit "$status"
