"""Rebuilds sample.fasta from ../shared/data (run from the repository root).

Takes, in file order: the first 80 AMP and 80 nonAMP peptides of amp/test.csv, the first
60 toxic and 60 nontoxic peptides of toxicity/test.csv, and 40 whole proteins of the E. coli
K-12 / yeast proteomes (every 100th record, plus the first 3 records that contain U or X).
Labels go into the description as `label=… task=…`; proteome headers are kept as UniProt wrote them.
"""
import csv
import sys
from pathlib import Path

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")


def wrap(seq, width=60):
    return "\n".join(seq[i : i + width] for i in range(0, len(seq), width))


def labelled(task, per_class):
    taken = {}
    with open(DATA / task / "test.csv", newline="") as f:
        for row in csv.DictReader(f):
            if taken.get(row["label"], 0) < per_class:
                taken[row["label"]] = taken.get(row["label"], 0) + 1
                yield f">{row['id']} label={row['label']} task={task}", row["sequence"]


def proteome():
    records, header, seq = [], None, []
    for line in open(DATA / "sequence_db" / "proteomes_ecoli_k12_yeast_s288c.fasta"):
        line = line.rstrip("\n")
        if line.startswith(">"):
            if header:
                records.append((header, "".join(seq)))
            header, seq = line, []
        else:
            seq.append(line)
    records.append((header, "".join(seq)))
    odd = [r for r in records if set(r[1]) & set("UX")][:3]
    return records[::300] + odd


with open("sample_data/sample.fasta", "w") as out:
    for header, seq in [*labelled("amp", 80), *labelled("toxicity", 60), *proteome()]:
        out.write(f"{header}\n{wrap(seq)}\n")
