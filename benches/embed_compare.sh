#!/usr/bin/env bash
# Embed throughput, r2dl against PyTorch + transformers, on the same 2,000 sequences, one run:
# PyTorch, r2dl (criterion, packed CPU encoder), PyTorch again.
#   PYTHON=/path/to/venv/bin/python benches/embed_compare.sh
# PYTHON must have torch and transformers; the model is the default one ($R2DL_HOME).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
MODEL="${R2DL_MODEL:-${R2DL_HOME:-$HOME/.cache/r2dl}/models/all-MiniLM-L6-v2}"
SET=benches/data/embed_2000.fasta
peer() { "$PYTHON" benches/embed_pytorch.py "$MODEL" "$SET" --batch "${BATCH:-32}" --threads 2 --repeats 3; }
peer
cargo bench --bench embed -- packed_cpu 2>&1 | grep -E "time:|thrpt:"
peer
