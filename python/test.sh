#!/usr/bin/env bash
# The Python package's tests: builds the wheel, installs it with datafusion 55, pyarrow, pandas and
# polars into a throwaway venv, and runs python/tests against the CLI `cargo test` built.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/r2dl/target}"
[ -x "$CARGO_TARGET_DIR/debug/r2dl" ] || (cd "$root" && cargo build --bin r2dl)
wheel="$(bash "$root/python/build.sh")"
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$wheel[test]"
cd "$root"
R2DL_BIN="$CARGO_TARGET_DIR/debug/r2dl" "$venv/bin/python" -m pytest -q python/tests "$@"
