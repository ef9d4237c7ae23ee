#!/usr/bin/env python3
"""The classical per-residue peer of issue 15: each residue's one-hot window of +-7 residues (15 x 21
features: 20 amino acids + other, nothing past the ends) into a multinomial logistic regression,
trained on the labelled residues of train.csv, scored by Q3 (accuracy over labelled residues, `-`
unlabelled) on each test file. Needs scikit-learn, scipy and numpy.

Usage: scripts/peer_residue_window.py [--limit N] [--seed S] [DATA_DIR]
       DATA_DIR defaults to ../shared/data/secondary_structure; --limit trains on N random proteins.
"""
import argparse
import csv
import random
import time

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

AA = "ACDEFGHIKLMNPQRSTVWY"
INDEX = {a: i for i, a in enumerate(AA)}
HALF = 7
WIDTH = 2 * HALF + 1
ALPHABET = len(AA) + 1  # the last column: any other letter


def read(path):
    with open(path) as f:
        return [(r["sequence"], r["label"]) for r in csv.DictReader(f)]


def windows(rows):
    """Sparse one-hot windows and labels of every labelled residue."""
    indices, labels = [], []
    for seq, label in rows:
        codes = [INDEX.get(c, len(AA)) for c in seq.upper()]
        for i, y in enumerate(label):
            if y == "-":
                continue
            cols = []
            for offset in range(-HALF, HALF + 1):
                j = i + offset
                if 0 <= j < len(codes):
                    cols.append((offset + HALF) * ALPHABET + codes[j])
            indices.append(cols)
            labels.append(y)
    indptr = np.cumsum([0] + [len(c) for c in indices])
    data = np.ones(indptr[-1], dtype=np.float32)
    matrix = csr_matrix((data, np.concatenate(indices), indptr), shape=(len(indices), WIDTH * ALPHABET))
    return matrix, np.array(labels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default="../shared/data/secondary_structure")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    train = read(f"{args.data}/train.csv")
    if args.limit and args.limit < len(train):
        train = random.Random(args.seed).sample(train, args.limit)
    started = time.time()
    x, y = windows(train)
    model = LogisticRegression(max_iter=300, C=1.0)
    model.fit(x, y)
    print(f"trained on {len(train)} proteins, {len(y)} residues, {time.time() - started:.0f} s")
    for name in ("valid", "test_cb513", "test_new364"):
        xt, yt = windows(read(f"{args.data}/{name}.csv"))
        predicted = model.predict(xt)
        q3 = float(np.mean(predicted == yt))
        print(f"{name}: Q3 {q3:.4f} over {len(yt)} residues")


if __name__ == "__main__":
    main()
