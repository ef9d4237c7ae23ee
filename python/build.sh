#!/usr/bin/env bash
# Builds the r2dl Python wheel from this checkout and prints its path:
#   pip install "$(bash python/build.sh)"
# Dependencies build as in `cargo test` (optimised, shared with it through CARGO_TARGET_DIR), r2dl
# itself at opt-level 3. maturin comes from PATH or is installed once into the target directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/r2dl/target}"
maturin="$(command -v maturin || true)"
if [ -z "$maturin" ]; then
    tools="$CARGO_TARGET_DIR/python-build-tools"
    [ -x "$tools/bin/maturin" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q 'maturin>=1.6,<2'; } >&2
    maturin="$tools/bin/maturin"
fi
# the shipped predictors travel inside the package (r2dl/udfs), searched after every other folder
bundled="$root/python/pysrc/r2dl/udfs"
rm -rf "$bundled" && cp -r "$root/udfs" "$bundled"
out="$CARGO_TARGET_DIR/wheels"
rm -f "$out"/r2dl-*.whl
CARGO_PROFILE_DEV_OPT_LEVEL=3 "$maturin" build --manifest-path "$root/python/Cargo.toml" --profile dev \
    --strip --interpreter python3 --out "$out" >&2
ls "$out"/r2dl-*.whl
