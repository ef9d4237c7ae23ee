#!/usr/bin/env python3
"""Writes a synthetic protein FASTA of about SIZE bytes (default 1 GB) for the scan benchmarks.

UniProt-style headers, 50..1050 residues drawn uniformly from the 20 amino acids, 60-column
lines, Python's random.Random(1): the same bytes on every run.

    python3 benches/make_big_fasta.py big.fasta [SIZE_BYTES]
"""
import random
import sys

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def main() -> None:
    path = sys.argv[1]
    target = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000_000
    rng = random.Random(1)
    written = 0
    i = 0
    with open(path, "w", newline="\n") as out:
        while written < target:
            length = rng.randint(50, 1050)
            residues = "".join(rng.choices(AMINO_ACIDS, k=length))
            lines = [residues[p : p + 60] for p in range(0, length, 60)]
            record = (
                f">sp|Q{i:07d}|SYN{i}_HUMAN Synthetic protein {i} OS=Homo sapiens OX=9606 GN=SYN{i} PE=1 SV=1\n"
                + "\n".join(lines)
                + "\n"
            )
            out.write(record)
            written += len(record)
            i += 1
    print(f"{path}: {written} bytes, {i} records", file=sys.stderr)


if __name__ == "__main__":
    main()
