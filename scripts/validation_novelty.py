#!/usr/bin/env python3
"""How many validation rows are new to the training rows (< 30 % of their 5-mers shared with any
training row) under a random 10 % hold-out and under the homology-aware one r2dl train uses (a Python
re-implementation of src/train/novelty.rs and grouped_split, unstratified).

    scripts/validation_novelty.py amp toxicity
"""
import csv
import random
import sys

def kmers(seq, k=5):
    seq = seq.rstrip("*").upper()
    if not seq: return set()
    if len(seq) < k: return {seq}
    return {seq[i:i+k] for i in range(len(seq)-k+1)}
def novel_count(train, valid):
    index = {}
    for r, s in enumerate(train):
        for km in kmers(s): index.setdefault(km, []).append(r)
    n = 0
    for s in valid:
        mine = kmers(s); counts = {}
        for km in mine:
            for r in index.get(km, ()): counts[r] = counts.get(r, 0) + 1
        if not mine or max(counts.values(), default=0) / len(mine) < 0.3: n += 1
    return n
def groups(seqs):
    index = {}
    ks = [kmers(s) for s in seqs]
    for r, m in enumerate(ks):
        for km in m: index.setdefault(km, []).append(r)
    parent = list(range(len(seqs)))
    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]; x = parent[x]
        return x
    for r, m in enumerate(ks):
        counts = {}
        for km in m:
            rows = index[km]
            if len(rows) <= 1000:
                for o in rows: counts[o] = counts.get(o, 0) + 1
        for o, c in counts.items():
            if c >= 0.3 * len(m):
                a, b = find(r), find(o); parent[max(a, b)] = min(a, b)
    return [find(r) for r in range(len(seqs))]
for task in sys.argv[1:]:
    rows = list(csv.DictReader(open(f"../shared/data/{task}/train.csv")))
    seqs = [r["sequence"] for r in rows]
    n_valid = round(len(rows) * 0.1)
    rnd = random.Random(1); idx = list(range(len(rows))); rnd.shuffle(idx)
    v, t = idx[:n_valid], idx[n_valid:]
    rand_novel = novel_count([seqs[i] for i in t], [seqs[i] for i in v])
    g = groups(seqs)
    members = {}
    for r, gid in enumerate(g): members.setdefault(gid, []).append(r)
    gl = list(members.values()); rnd.shuffle(gl)
    taken = []
    for grp in gl:
        if len(taken) + len(grp) <= n_valid: taken += grp
    ts = set(taken); rest = [i for i in range(len(rows)) if i not in ts]
    grp_novel = novel_count([seqs[i] for i in rest], [seqs[i] for i in taken])
    print(f"{task}: {len(rows)} rows, {len(members)} groups (largest {max(map(len, members.values()))}); "
          f"random 10 %: {rand_novel}/{n_valid} validation rows novel; grouped: {grp_novel}/{len(taken)}")
