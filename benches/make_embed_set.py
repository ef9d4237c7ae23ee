"""Writes benches/data/embed_2000.fasta: the fixed 2,000 sequences both embed benchmarks run.

1,000 antimicrobial peptides, 800 toxicity peptides and 200 proteins of at most 510 residues (one
window of the default model), drawn with a fixed seed from ../shared/data train splits.

    python3 benches/make_embed_set.py [SHARED_DATA_DIR]
"""
import csv
import random
import sys
from pathlib import Path

root = Path(__file__).resolve().parent
data = Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent.parent / "shared" / "data"
rng = random.Random(2301)
picked = []
for task, count, max_len in [("amp", 1000, 510), ("toxicity", 800, 510), ("solubility", 200, 510)]:
    rows = [r for r in csv.DictReader(open(data / task / "train.csv")) if len(r["sequence"]) <= max_len]
    picked += [(f"{task}:{r['id']}", r["sequence"]) for r in rng.sample(rows, count)]
out = root / "data" / "embed_2000.fasta"
with open(out, "w") as f:
    for name, seq in picked:
        f.write(f">{name}\n")
        for i in range(0, len(seq), 60):
            f.write(seq[i : i + 60] + "\n")
tokens = sum(len(s) + 2 for _, s in picked)
print(f"wrote {len(picked)} sequences, {tokens} tokens with [CLS]/[SEP], to {out}")
