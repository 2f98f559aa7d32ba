#!/usr/bin/env bash
# `make test` N times in a row while a training job loads the machine. A test that passes alone but times out when
# the cores are busy is a red CI waiting to happen (#16); this is how the suite is checked for that.
#
#   scripts/loaded_test.sh N LOGDIR -- CMD [ARGS...]
#
# CMD (for example a CPU training run) starts first, in its own process group, and is restarted whenever it ends,
# so the machine stays loaded through all N runs; it is killed on exit. Runs stop at the first failure. Each run's
# output goes to LOGDIR/run-K.log; LOGDIR/summary.tsv gets one line per run: K, exit code, seconds, pytest's last line.
# Environment as in .ci/run (EMBEDLAB_DATA_DIR defaults to ../shared/data beside the checkout).
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] && [ "$3" = "--" ] || { echo "usage: $0 N LOGDIR -- CMD [ARGS...]" >&2; exit 2; }
n=$1 logdir=$2; shift 3
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive integer, got '$n'" >&2; exit 2; }
mkdir -p "$logdir"
export EMBEDLAB_DATA_DIR="${EMBEDLAB_DATA_DIR:-$(cd .. && pwd)/shared/data}" DVC_NO_ANALYTICS=1 HF_HUB_OFFLINE=1

setsid bash -c 'while :; do "$@"; sleep 1; done' load "$@" >"$logdir/load.log" 2>&1 &
load=$!
trap 'kill -- -$load 2>/dev/null' EXIT
printf 'run\trc\tseconds\tsummary\n' >"$logdir/summary.tsv"

for k in $(seq 1 "$n"); do
  start=$(date +%s)
  make test VARIANT=cpu >"$logdir/run-$k.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  printf '%s\t%s\t%s\t%s\n' "$k" "$rc" "$secs" "$(tail -n 1 "$logdir/run-$k.log")" | tee -a "$logdir/summary.tsv"
  [ "$rc" -eq 0 ] || exit "$rc"
done
