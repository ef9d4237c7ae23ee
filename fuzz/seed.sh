#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the repository's test files, then (with a target and seconds)
# runs that target for that long: bash fuzz/seed.sh [TARGET SECONDS]
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
corpus=corpus
mkdir -p "$corpus/fasta_reader" "$corpus/model_config" "$corpus/predictor_loader"
# fasta_reader: a mode byte (0 plain, 1 behind a gzip header, 2 byte ranges), then the file
for f in ../tests/data/valid/* ../tests/data/malformed/* ../sample_data/sample.fasta; do
  for mode in 0 1 2; do
    { printf "\\x0$mode"; head -c 65536 "$f"; } > "$corpus/fasta_reader/$mode-$(basename "$f")"
  done
done
# model_config: all-MiniLM-L6-v2's config, and the same with fields dropped or out of range
cat > "$corpus/model_config/minilm" <<'JSON'
{"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false,
 "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
 "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
 "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
 "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522}
JSON
sed 's/"num_hidden_layers": 6/"num_hidden_layers": 18446744073709551615/' "$corpus/model_config/minilm" > "$corpus/model_config/huge"
sed 's/"hidden_size": 384, //' "$corpus/model_config/minilm" > "$corpus/model_config/missing"
# predictor_loader: each shipped predictor, as 2-byte manifest length, manifest, weights (≤ 64 kB)
for d in ../udfs/*/; do
  [ -f "$d/manifest.json" ] && [ -f "$d/predictor.safetensors" ] || continue
  python3 - "$d" "$corpus/predictor_loader/$(basename "$d")" <<'PY'
import pathlib, struct, sys
d = pathlib.Path(sys.argv[1])
manifest = (d / "manifest.json").read_bytes()[:65535]
weights = (d / "predictor.safetensors").read_bytes()[:65536]
pathlib.Path(sys.argv[2]).write_bytes(struct.pack("<H", len(manifest)) + manifest + weights)
PY
done
if [ $# -ge 2 ]; then
  cargo +nightly fuzz run "$1" "$corpus/$1" -- -max_total_time="$2" -rss_limit_mb=4096 -timeout=20
fi
