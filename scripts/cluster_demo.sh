#!/usr/bin/env bash
# r2dl on a cluster of processes on this machine (Apache DataFusion Ballista): one scheduler and
# two executors on 127.0.0.1, each executor pinned to one core. Annotates a FASTA file with
# predict_toxicity on the cluster and in one local process, checks that every value is
# the same (to float rounding), prints which executor scanned how many rows, times one executor against two, and
# finally kills an executor in the middle of a job (the job must either finish on the other
# executor or fail with an error — never return fewer rows).
#
#   cargo build --release --features cluster
#   scripts/cluster_demo.sh target/release/r2dl [FASTA]
#
# FASTA defaults to the shared proteome (11,027 proteins; ~1 hour in all on 2 cores).
set -euo pipefail

bin=$(realpath "${1:?usage: scripts/cluster_demo.sh R2DL_BINARY [FASTA]}")
fasta=$(realpath "${2:-../shared/data/sequence_db/proteomes_ecoli_k12_yeast_s288c.fasta}")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
url=df://127.0.0.1:$port
query="SELECT id, predict_toxicity(sequence) AS toxicity FROM '$fasta'"
seconds() { date +%s.%N; }

start_scheduler() {
  "$bin" scheduler --bind "127.0.0.1:$port" 2> "$work/scheduler.log" &
  pids+=($!)
  sleep 1
}

# start_executor N CORE: executor N on 127.0.0.1:port+2N (Flight) and +2N+1 (gRPC), on one core.
start_executor() {
  taskset -c "$2" "$bin" executor --scheduler "127.0.0.1:$port" --bind "127.0.0.1:$((port + 2 * $1))" \
    2>> "$work/executor$1.log" &
  pids+=($!)
  eval "executor$1=$!"
}

annotate_on_cluster() { # OUTPUT
  "$bin" sql --cluster "$url" --partitions 8 --format csv "$query" > "$1"
}

# same_values LOCAL CLUSTER: the same ids, and every value equal to float rounding (a sequence's
# batch neighbours differ between one local partition and the cluster's byte ranges, and with
# them the model's matrix shapes and summation orders). Prints how many are bit-identical.
same_values() {
  python3 - "$1" "$2" << 'PY'
import csv, sys
def read(path):
    with open(path) as f:
        return {row["id"]: float(row["toxicity"]) for row in csv.DictReader(f)}
a, b = read(sys.argv[1]), read(sys.argv[2])
if a.keys() != b.keys():
    sys.exit(f"different rows: {len(a)} local, {len(b)} on the cluster, {len(a.keys() ^ b.keys())} ids in one only")
worst = max(abs(a[k] - b[k]) for k in a)
same = sum(a[k] == b[k] for k in a)
print(f"{len(a)} rows, {same} bit-identical, largest difference {worst:.2e}")
sys.exit(0 if worst <= 1e-5 else 1)
PY
}

echo "== local: one process, both cores"
t0=$(seconds)
"$bin" sql --format csv "$query" > "$work/local.csv"
t1=$(seconds)
rows=$(($(wc -l < "$work/local.csv") - 1))
printf 'local: %d rows in %.1f s\n' "$rows" "$(echo "$t1 - $t0" | bc)"

start_scheduler
echo "== cluster: one executor (core 0)"
start_executor 1 0
sleep 2
t0=$(seconds)
annotate_on_cluster "$work/one.csv"
t1=$(seconds)
printf 'one executor: %d rows in %.1f s\n' "$(($(wc -l < "$work/one.csv") - 1))" "$(echo "$t1 - $t0" | bc)"
same_values "$work/local.csv" "$work/one.csv" || { echo "DIFFERENT from the local run"; exit 1; }

echo "== cluster: two executors (cores 0 and 1)"
start_executor 2 1
sleep 2
: > "$work/executor1.log"
t0=$(seconds)
annotate_on_cluster "$work/two.csv"
t1=$(seconds)
printf 'two executors: %d rows in %.1f s\n' "$(($(wc -l < "$work/two.csv") - 1))" "$(echo "$t1 - $t0" | bc)"
same_values "$work/local.csv" "$work/two.csv" || { echo "DIFFERENT from the local run"; exit 1; }
for n in 1 2; do
  scanned=$(grep -ao "scanned [0-9]* rows" "$work/executor$n.log" | awk '{s += $2} END {print s + 0}')
  echo "executor $n scanned $scanned rows"
done

echo "== cluster: executor 2 killed 20 s into a job"
annotate_on_cluster "$work/killed.csv" 2> "$work/killed.err" &
client=$!
sleep 20
kill -9 "$executor2"
if wait "$client"; then
  got=$(($(wc -l < "$work/killed.csv") - 1))
  echo "the job finished on executor 1: $got rows"
  same_values "$work/local.csv" "$work/killed.csv" || { echo "DIFFERENT from the local run"; exit 1; }
else
  echo "the job failed, as it may: $(tail -n 2 "$work/killed.err")"
fi
