#!/usr/bin/env bash
# Times `r2dl sql QUERY` for each r2dl binary given, next to `cat FILE > /dev/null`, runs
# interleaved (so that a slow spell of the machine hits every command alike), and prints the
# median and minimum wall, user and system times of each.
#
#   benches/scan_compare.sh FILE RUNS PARTITIONS QUERY R2DL_BIN...
#   benches/scan_compare.sh big.fasta 20 1 "SELECT count(*) FROM 'big.fasta'" target/release/r2dl
#
# PATH@R2DL_BIN runs R2DL_BIN with R2DL_FASTA_SCAN=PATH (avx512, avx2, sse2, swar, bytewise):
#   benches/scan_compare.sh big.fasta 15 1 "…" avx512@target/release/r2dl avx2@target/release/r2dl
set -euo pipefail
file=$1 runs=$2 partitions=$3 query=$4
shift 4
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cat "$file" > /dev/null # into the page cache
for _ in $(seq "$runs"); do
    for bin in "$@"; do
        if [[ $bin == *@* ]]; then
            run=(env "R2DL_FASTA_SCAN=${bin%%@*}" "${bin#*@}")
        else
            run=("$bin")
        fi
        /usr/bin/time -f "$bin %e %U %S" -a -o "$log" "${run[@]}" sql "$query" --partitions "$partitions" > /dev/null
    done
    /usr/bin/time -f "cat %e %U %S" -a -o "$log" cat "$file" > /dev/null
done
python3 - "$log" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, *times = line.split()
    runs[name].append([float(t) for t in times])
for name, rows in runs.items():
    wall, user, system = zip(*rows)
    print(f"{name}: wall median {statistics.median(wall):.3f} s (min {min(wall):.3f}), "
          f"user {statistics.median(user):.3f} s, sys {statistics.median(system):.3f} s, n={len(rows)}")
PY
