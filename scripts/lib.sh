# Shared helpers of the set-up commands: install what is missing, say what is done.
# Sourced by scripts/demo.sh and scripts/test.sh; not meant to be run alone.

say() { printf '\n==> %s\n' "$*"; }

# Runs a command as root (directly when already root, else through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs Debian packages that are not installed yet; `apt-get update` first, once.
ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# Makes sure cargo, rustfmt and clippy are there (through rustup).
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v rustup >/dev/null 2>&1; then
        ensure_apt rustup || {
            echo "Rust is missing and Debian has no rustup package here: install it from https://rustup.rs" >&2
            exit 1
        }
    fi
    rustup toolchain list | grep -q . || rustup default stable
    for component in rustfmt clippy; do
        rustup component list --installed | grep -q "^$component" || rustup component add "$component"
    done
}

# Makes sure the wasm32-wasip2 target is installed and builds the example guests
# (examples/, a workspace of its own) into target/guests/wasm32-wasip2/release/.
build_guests() {
    rustup target list --installed | grep -q '^wasm32-wasip2$' || rustup target add wasm32-wasip2
    say "building the example guests (wasm32-wasip2)"
    # From inside examples/, so that examples/.cargo/config.toml (guest-only rustflags) applies.
    (cd examples && cargo build --target wasm32-wasip2 --release --locked --target-dir ../target/guests)
}

# Makes `kubernetes-validate` (PyPI; it ships the Kubernetes schemas, so it checks offline) runnable
# from target/tools/k8s, a virtual environment of its own; prints the command's path.
ensure_kubernetes_validate() {
    local venv=target/tools/k8s
    if [ ! -x "$venv/bin/kubernetes-validate" ]; then
        python3 -m venv "$venv" >/dev/null 2>&1 || { ensure_apt python3-venv >&2; rm -rf "$venv"; python3 -m venv "$venv"; }
        "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" >&2
    fi
    echo "$venv/bin/kubernetes-validate"
}
