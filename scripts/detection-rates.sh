#!/usr/bin/env bash
# How fast each planted bug is found: for each scenario file given, runs
# seeds 0..299 and prints the failing seeds out of the first 100, and the
# median (and worst) number of seeds to the first seed that meets the
# file's expectation, counted from every starting seed in 0..99.
# Usage: scripts/detection-rates.sh scenarios/election/vote-not-persisted.toml ...
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/faultline
for file in "$@"; do
  hits=()
  for seed in $(seq 0 299); do
    # Exit 0: this seed meets the expectation (a failure as expected).
    if "$bin" run "$file" --seed "$seed" --json >/dev/null 2>&1; then hits+=(1); else hits+=(0); fi
  done
  failing=0
  for s in $(seq 0 99); do failing=$((failing + hits[s])); done
  # Seeds to the first hit, from every starting seed in 0..99.
  waits=$(for s in $(seq 0 99); do
    f=$s
    while [ "$f" -lt 300 ] && [ "${hits[$f]}" -eq 0 ]; do f=$((f + 1)); done
    if [ "$f" -lt 300 ]; then echo $((f - s + 1)); fi
  done | sort -n)
  if [ -z "$waits" ]; then
    echo "$file: 0 of 100 seeds fail; none of 300 does"
    continue
  fi
  echo "$waits" | awk -v file="$file" -v failing="$failing" '
    { d[NR] = $1 }
    END {
      median = (NR % 2) ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2
      printf "%s: %d of 100 seeds fail; median %s seeds to find (worst %d)\n", file, failing, median, d[NR]
    }'
done
