#!/usr/bin/env bash
# Data-efficiency curves on TAPE tasks (issue 15): the test metric of secondary_structure (CB513 Q3)
# and stability (Spearman) predictors trained on n = 100, 1000, 10000 training proteins (seed 1;
# SEEDS="1 2 3" draws more subsamples, the peers' as well),
# with the shipped recipe's mapping (--head-hidden 256), next to the classical peer on the same
# subsample (one-hot window + logistic regression; composition + random forest). Rows go to
# docs/learning_curves_tape.csv; rows already there are skipped, so an interrupted run continues.
# Usage: scripts/learning_curves_tape.sh [R2DL_BINARY] [TASK...] ; SIZES="100 1000" overrides;
# READOUT=0,2,4,6 trains with `--readout 0,2,4,6` into rows labelled r2dl_readout_0_2_4_6.
# CONTEXT=7 (secondary_structure) is the shipped recipe instead: no epochs, the linear mapping of
# each residue with its 7 neighbours on either side fitted in closed form (`--ridge-head
# --context 7`, penalty chosen on the official validation file), rows labelled r2dl_ridge_context_7;
# with READOUT=0,6 as well, r2dl_ridge_context_7_readout_0_6 (the recipe shipped since 2026-12-07).
# RIDGE=1 (stability) fits the linear mapping in closed form the same way, no epochs: with
# READOUT=0,1,2,3,4,5,6 the recipe shipped since 2026-12-07, rows r2dl_ridge_readout_0_1_2_3_4_5_6.
set -euo pipefail
cd "$(dirname "$0")/.."
R2DL=${1:-target/release/r2dl}
shift || true
DATA=${DATA:-../shared/data}
CSV=docs/learning_curves_tape.csv
SIZES=${SIZES:-100 1000 10000}
READOUT=${READOUT:-}
label=r2dl readout=()
if [ -n "$READOUT" ]; then label="r2dl_readout_${READOUT//,/_}" readout=(--readout "$READOUT"); fi
CONTEXT=${CONTEXT:-}
RIDGE=${RIDGE:-${CONTEXT:+1}}
if [ -n "$RIDGE" ]; then label="r2dl_ridge${CONTEXT:+_context_$CONTEXT}${READOUT:+_readout_${READOUT//,/_}}"; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SEEDS=${SEEDS:-1}
[ -s "$CSV" ] || echo "task,n,seed,model,epochs_run,steps,seconds,metric,value" > "$CSV"

for task in ${@:-secondary_structure stability}; do
  case $task in
    secondary_structure) test=test_cb513; metric=accuracy; extra=(--max-length 256 --batch-size 8) ;;
    stability) test=test; metric=spearman; extra=() ;;
    *) echo "no curve recipe for $task" >&2; exit 2 ;;
  esac
  for n in $SIZES; do
    for seed in $SEEDS; do
      if ! grep -q "^$task,$n,$seed,$label," "$CSV"; then
        # the same number of optimiser steps (~300) at every n
        batch=$([ "$task" = secondary_structure ] && echo 8 || echo 32)
        per_epoch=$(( (n * 9 / 10 + batch - 1) / batch ))
        epochs=$(( (300 + per_epoch - 1) / per_epoch ))
        out="$WORK/$task-$n-$seed"
        if [ -n "$RIDGE" ]; then
          context=(--batch-size "$batch")
          [ -z "$CONTEXT" ] || context+=(--context "$CONTEXT")
          "$R2DL" train --name "$task" --train "$DATA/$task/train.csv" --valid "$DATA/$task/valid.csv" \
            --test "$DATA/$task/$test.csv" --out "$out" --seed "$seed" --epochs 0 --ridge-head --ridge-folds 0 \
            "${context[@]}" --limit "$n" "${readout[@]}" 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
        else "$R2DL" train --name "$task" --train "$DATA/$task/train.csv" --test "$DATA/$task/$test.csv" \
          --out "$out" --lr 0.01 --head-lr 0.01 --k 16 --seed "$seed" --epochs "$epochs" --patience 3 \
          --head-hidden 256 --limit "$n" "${extra[@]}" "${readout[@]}" 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
        fi
        python3 - "$out/manifest.json" "$task" "$n" "$seed" "$metric" "$label" >> "$CSV" <<'PY'
import json, sys
path, task, n, seed, metric, label = sys.argv[1:]
m = json.load(open(path))
t = m["training"]
print(f'{task},{n},{seed},{label},{t["epochs_run"]},{t["steps"]},{t["seconds"]:.1f},{metric},{m["metrics"]["test"][metric]:.4f}')
PY
        tail -1 "$CSV"
      fi
      if ! grep -q "^$task,$n,$seed,peer," "$CSV"; then
        if [ "$task" = secondary_structure ]; then
          value=$(python3 scripts/peer_residue_window.py --limit "$n" --seed "$seed" "$DATA/$task" | sed -n 's/^test_cb513: Q3 \([0-9.]*\).*/\1/p')
        else
          value=$(python3 scripts/peer_composition_rf.py --dipeptides --limit "$n" --seed "$seed" "$task" "$DATA" \
            | sed -n 's/.*random forest: spearman \([-0-9.]*\).*/\1/p')
        fi
        echo "$task,$n,$seed,peer,,,,$metric,$value" >> "$CSV"
        tail -1 "$CSV"
      fi
    done
  done
done
