#!/usr/bin/env bash
# Data-efficiency curves of R2DL (issue 4): test AUROC of amp and toxicity predictors trained on
# n = 50, 100, 250, 500, 1000 and all training rows, 3 seeds each, appended to docs/learning_curves.csv
# (rows already there are skipped, so an interrupted run continues). Then draw the plot with
# scripts/plot_learning_curves.py.
# Usage: scripts/learning_curves.sh [R2DL_BINARY] [TASK...] ; SIZES="50 100" SEEDS="1 2" override.
# PROTOCOL=small (n ≤ 1000 only): the small-data protocol — no hold-out, the whole step budget,
# a cosine learning-rate decay and the weights averaged over its second half — into
# docs/learning_curves_small_n.csv. HEAD="--k 64 --head-hidden 256" adds settings to every run.
# ENSEMBLE=N (with PROTOCOL=small): N members per run (`--ensemble N`) into
# docs/learning_curves_ensemble.csv, with the members' own test AUROCs beside the ensemble's.
# PROTOCOL=ridge: no epochs — the linear mapping of every layer's mean-pooled states fitted in
# closed form on all n rows (none held out), its penalty by 5-fold cross-validation over them
# (`--ridge-head --ridge-folds 5 --holdout 0`), into docs/learning_curves_ridge.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
R2DL=${1:-target/release/r2dl}
shift || true
DATA=${DATA:-../shared/data}
PROTOCOL=${PROTOCOL:-early-stopping}
ENSEMBLE=${ENSEMBLE:-1}
case "$PROTOCOL" in
  early-stopping) CSV=${CSV:-docs/learning_curves.csv} ;;
  small) [ "$ENSEMBLE" = 1 ] && CSV=${CSV:-docs/learning_curves_small_n.csv} || CSV=${CSV:-docs/learning_curves_ensemble.csv} ;;
  ridge) CSV=${CSV:-docs/learning_curves_ridge.csv} ;;
  *) echo "PROTOCOL must be early-stopping, small or ridge, not '$PROTOCOL'" >&2; exit 2 ;;
esac
read -r -a extra <<< "${HEAD:-}"
header="task,n,seed,train_rows,epochs,epochs_run,steps,seconds,test_auroc,test_accuracy"
if [ "$ENSEMBLE" != 1 ]; then
  extra+=(--ensemble "$ENSEMBLE")
  header="$header,members,member_test_aurocs"
fi
if [ "$PROTOCOL" = small ]; then SIZES=${SIZES:-50 100 250 500 1000}; else SIZES=${SIZES:-50 100 250 500 1000 all}; fi
SEEDS=${SEEDS:-1 2 3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ -s "$CSV" ] || echo "$header" > "$CSV"

for task in ${@:-amp toxicity}; do
  for n in $SIZES; do
    for seed in $SEEDS; do
      grep -q "^$task,$n,$seed," "$CSV" && continue
      if [ "$PROTOCOL" = ridge ]; then
        limit=(--holdout 0 --ridge-head --ridge-folds 5 --readout 0,1,2,3,4,5,6)
        [ "$n" = all ] || limit+=(--limit "$n")
        epochs=0; patience=1
      elif [ "$n" = all ]; then
        # The settings the shipped amp/toxicity had when the curves were measured: 6 epochs,
        # patience 3, a linear output mapping (the curves are of that mapping).
        limit=(); epochs=6; patience=3
      elif [ "$PROTOCOL" = small ]; then
        # ~240 optimiser steps of 32 over all n rows (none held out), no early stopping.
        limit=(--limit "$n" --holdout 0 --schedule cosine --average-last 0.5)
        per_epoch=$(( (n + 31) / 32 ))
        epochs=$(( (240 + per_epoch - 1) / per_epoch ))
        patience=$epochs
      else
        # The same step budget (~240 optimiser steps of 32) at every n, so small n trains
        # long enough; early stopping patience a third of the epochs.
        limit=(--limit "$n")
        per_epoch=$(( (n * 9 / 10 + 31) / 32 ))
        epochs=$(( (240 + per_epoch - 1) / per_epoch ))
        patience=$(( (epochs + 2) / 3 ))
      fi
      out="$WORK/$task-$n-$seed"
      "$R2DL" train --name "$task" --train "$DATA/$task/train.csv" --test "$DATA/$task/test.csv" \
        --out "$out" --lr 0.01 --head-lr 0.01 --k 16 --seed "$seed" --epochs "$epochs" \
        --patience "$patience" "${limit[@]}" "${extra[@]}" 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
      python3 - "$out" "$task" "$n" "$seed" "$epochs" >> "$CSV" <<'PY'
import json, os, sys
out, task, n, seed, epochs = sys.argv[1:]
m = json.load(open(os.path.join(out, "manifest.json")))
t, test = m["training"], m["metrics"]["test"]
row = (f'{task},{n},{seed},{m["training_data"]["train_rows"]},{epochs},{t["epochs_run"]},'
       f'{t["steps"]},{t["seconds"]:.1f},{test["auroc"]:.4f},{test["accuracy"]:.4f}')
if m.get("members"):
    # an ensemble: each member's own test AUROC (the first member's is kept in the ensemble's)
    own = [m["metrics"]["test (member 1)"]["auroc"]]
    for member in m["members"]:
        own.append(json.load(open(os.path.join(out, member["dir"], "manifest.json")))["metrics"]["test"]["auroc"])
    row += f',{len(own)},{" ".join(f"{a:.4f}" for a in own)}'
print(row)
PY
      tail -1 "$CSV"
    done
  done
done
