#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time (FUZZ_SECONDS each, default 60) on
# the nightly toolchain, starting from the committed seeds (fuzz/seeds/<target>); new inputs go
# to the ignored fuzz/corpus/<target>. A crash fails the run after every target has had its turn;
# the reproducer stays in fuzz/artifacts/<target>/ and its path is printed (a target that fails
# with no reproducer, e.g. one that does not build, is reported as such).
# scripts/test.sh calls this; it can also run alone.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

seconds="${FUZZ_SECONDS:-60}"
ensure_rust
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cd fuzz
say "building the fuzz targets (nightly, sanitizer, debug assertions)"
cargo +nightly fuzz build --debug-assertions
failed=()
for target in $(cargo +nightly fuzz list); do
    say "fuzzing $target for ${seconds}s"
    mkdir -p "corpus/$target" "seeds/$target"
    if ! cargo +nightly fuzz run --debug-assertions "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>"corpus/$target.log"; then
        tail -n 40 "corpus/$target.log" >&2
        failed+=("$target")
    else
        grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' "corpus/$target.log" || true
    fi
done
if [ "${#failed[@]}" -ne 0 ]; then
    for target in "${failed[@]}"; do
        reproducers=$(ls -1 "$PWD/artifacts/$target/" 2>/dev/null | sed "s|^|  $PWD/artifacts/$target/|")
        if [ -n "$reproducers" ]; then
            echo "fuzzing found a crash in $target; reproducers:" >&2
            echo "$reproducers" >&2
        else
            echo "fuzzing $target failed without a reproducer (a build or run error, printed above)" >&2
        fi
    done
    echo "replay a reproducer with: cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>" >&2
    exit 1
fi
