#!/usr/bin/env python3
"""The classical peer of issue 4: amino-acid composition (20 fractions) + random forest, 500 trees,
trained on a task's train.csv and measured on its test.csv. Needs scikit-learn and numpy.

Usage: scripts/peer_composition_rf.py [--dipeptides|--onehot] [--ridge-only] [--test SPLIT] [--classes] [--limit N [--seed S]] [--novel] TASK [DATA_DIR]
       scripts/peer_composition_rf.py --curve [--dipeptides] TASK   CSV of test AUROC at
       n = 50, 100, 250, 500, 1000 (stratified subsamples, seeds 1-3) and all rows
--novel also reports the metrics on the novel test rows: those sharing under 30 % of their distinct
5-mers with every training row (the subset `r2dl eval` reports, same definition).
--test names the test split (default test; remote_homology: test_fold_holdout); --classes treats numeric
labels as class ids (remote_homology's folds) and reports top-1 and top-5 accuracy of a multinomial
logistic regression (a forest of 1,195-class leaves does not fit in memory); --limit trains on N
random rows (seed 1, or --seed S). Regression tasks also report ridge regression on the same features.
--onehot replaces composition by the residue at each position, one-hot (position × 20; for variants
of one protein such as fluorescence's GFP mutants, where it is the additive model of substitution
effects); --ridge-only skips the forest (regression).
"""
import csv
import sys

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

AA = "ACDEFGHIKLMNPQRSTVWY"


def option(name, default=None):
    """The value after `name` on the command line, removed from it."""
    if name not in sys.argv:
        return default
    at = sys.argv.index(name)
    value = sys.argv[at + 1]
    del sys.argv[at : at + 2]
    return value


TEST_SPLIT = option("--test", "test")
LIMIT = option("--limit")
SEED = int(option("--seed", "1"))
args = [a for a in sys.argv[1:] if a not in ("--dipeptides", "--curve", "--classes", "--novel", "--onehot", "--ridge-only")]
ONEHOT = "--onehot" in sys.argv
RIDGE_ONLY = "--ridge-only" in sys.argv
onehot_length = None  # --onehot: positions encoded, the longest training sequence's length
NOVEL = "--novel" in sys.argv
CURVE = "--curve" in sys.argv
CLASSES = "--classes" in sys.argv
DIPEPTIDE_FEATURES = "--dipeptides" in sys.argv
task = args[0]
data = args[1] if len(args) > 1 else "../shared/data"


DIPEPTIDES = [a + b for a in AA for b in AA]


def features(seq):
    """The 20 residue fractions, then (with --dipeptides) the 400 dipeptide fractions; with
    --onehot the residue at each position instead."""
    if ONEHOT:
        if len(seq) > onehot_length:
            sys.exit(f"--onehot encodes the training set's {onehot_length} positions; a sequence has {len(seq)}")
        x = np.zeros(onehot_length * len(AA), dtype=np.float32)
        for i, a in enumerate(seq):
            if a in AA:
                x[i * len(AA) + AA.index(a)] = 1.0
        return x
    single = [seq.count(a) / max(len(seq), 1) for a in AA]
    if not DIPEPTIDE_FEATURES:
        return single
    pairs = [seq[i : i + 2] for i in range(len(seq) - 1)]
    counts = {p: 0 for p in DIPEPTIDES}
    for p in pairs:
        if p in counts:
            counts[p] += 1
    return single + [counts[p] / max(len(pairs), 1) for p in DIPEPTIDES]


def load(split, limit=None):
    rows = list(csv.DictReader(open(f"{data}/{task}/{split}.csv")))
    if limit is not None and int(limit) < len(rows):
        rows = [rows[i] for i in np.random.default_rng(SEED).choice(len(rows), int(limit), replace=False)]
    global onehot_length
    if onehot_length is None:
        onehot_length = max(len(r["sequence"]) for r in rows)
    x = np.array([features(r["sequence"].upper()) for r in rows])
    return x, [r["label"] for r in rows], [r["sequence"] for r in rows]


def kmers(seq, k=5):
    """Distinct k-mers, upper-cased, a terminal * dropped; the whole sequence when shorter than k."""
    seq = seq.rstrip("*").upper()
    if not seq:
        return set()
    if len(seq) < k:
        return {seq}
    return {seq[i : i + k] for i in range(len(seq) - k + 1)}


def novel_rows(train_seqs, test_seqs, below=0.3):
    """Indices of the test rows whose largest share of 5-mers held by one training row is < below."""
    index = {}
    for row, seq in enumerate(train_seqs):
        for kmer in kmers(seq):
            index.setdefault(kmer, []).append(row)
    picked = []
    for i, seq in enumerate(test_seqs):
        mine = kmers(seq)
        counts = {}
        for kmer in mine:
            for row in index.get(kmer, ()):
                counts[row] = counts.get(row, 0) + 1
        most = max(counts.values(), default=0)
        if not mine or most / len(mine) < below:
            picked.append(i)
    return picked


x_train, y_train, s_train = load("train", LIMIT)
x_test, y_test, s_test = load(TEST_SPLIT)
NOVEL_ROWS = novel_rows(s_train, s_test) if NOVEL else None
if NOVEL:
    print(f"{task}: {len(NOVEL_ROWS)} of {len(s_test)} test rows are novel (< 30 % of 5-mers shared with any training row)")
def is_number(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


if not CLASSES and len(set(y_train)) > 2 and all(map(is_number, y_train)):
    truth = [float(v) for v in y_test]
    models = [
        ("random forest", RandomForestRegressor(n_estimators=500, random_state=0, n_jobs=-1)),
        ("ridge", RidgeCV(alphas=np.logspace(-3, 3, 13))),
    ]
    for name, model in models[1:] if RIDGE_ONLY else models:
        model.fit(x_train, [float(v) for v in y_train])
        predicted = model.predict(x_test)
        rmse = float(np.sqrt(np.mean((np.array(truth) - predicted) ** 2)))
        print(f"{task} {name}: spearman {spearmanr(truth, predicted).statistic:.4f} "
              f"r2 {r2_score(truth, predicted):.4f} rmse {rmse:.4f} ({len(y_train)} train, {len(truth)} test rows)")
        if NOVEL and NOVEL_ROWS:
            t, p = np.array(truth)[NOVEL_ROWS], predicted[NOVEL_ROWS]
            print(f"  novel {name}: spearman {spearmanr(t, p).statistic:.4f} r2 {r2_score(t, p):.4f} ({len(t)} rows)")
elif len(set(y_train)) > 2:
    # Many classes: a forest keeps a class histogram in every leaf (1,195 folds x 500 trees needed
    # more than 24 GB), so the peer is a multinomial logistic regression on the same features.
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    model.fit(x_train, y_train)
    probabilities = model.predict_proba(x_test)
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    classes = np.array(model.classes_)
    top1 = float(np.mean(classes[top5[:, 0]] == np.array(y_test)))
    in_top5 = float(np.mean([t in classes[row] for t, row in zip(y_test, top5)]))
    print(f"{task} logistic regression: top-1 accuracy {top1:.4f} top-5 accuracy {in_top5:.4f} "
          f"({len(classes)} classes, {len(y_train)} train, {len(y_test)} test rows)")
else:
    labels = sorted(set(y_train))
    positive = next((l for l in labels if any(o.lower() in (f"non{l.lower()}", f"in{l.lower()}") for o in labels)), labels[-1])

    def fit_and_score(x, y, rows=None):
        model = RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=-1)
        model.fit(x, y)
        rows = range(len(y_test)) if rows is None else rows
        xt, yt = x_test[list(rows)], [y_test[i] for i in rows]
        p = model.predict_proba(xt)[:, list(model.classes_).index(positive)]
        return accuracy_score(yt, model.predict(xt)), roc_auc_score([t == positive for t in yt], p)

    if CURVE:
        print("task,n,seed,test_auroc,test_accuracy")
        y = np.array(y_train)
        for n in [50, 100, 250, 500, 1000]:
            for seed in [1, 2, 3]:
                rng = np.random.default_rng(seed)
                # stratified: each label keeps its share of the n rows
                picked = []
                for label in labels:
                    rows = np.flatnonzero(y == label)
                    picked.extend(rng.choice(rows, round(n * len(rows) / len(y)), replace=False))
                accuracy, auroc = fit_and_score(x_train[picked], y[picked])
                print(f"{task},{n},{seed},{auroc:.4f},{accuracy:.4f}", flush=True)
        accuracy, auroc = fit_and_score(x_train, y_train)
        print(f"{task},all,0,{auroc:.4f},{accuracy:.4f}")
    else:
        accuracy, auroc = fit_and_score(x_train, y_train)
        print(f"{task}: accuracy {accuracy:.4f} auroc {auroc:.4f} (positive {positive})")
        if NOVEL and NOVEL_ROWS:
            accuracy, auroc = fit_and_score(x_train, y_train, NOVEL_ROWS)
            print(f"  novel: accuracy {accuracy:.4f} auroc {auroc:.4f} ({len(NOVEL_ROWS)} rows)")
