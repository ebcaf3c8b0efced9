#!/usr/bin/env bash
# Every experiment of the paper at the quick budget (trainer=quick: one epoch of two
# batches), then model selection for Palu and Luding and the report, all in a separate
# MLflow store so the smoke runs never mix with real ones. Prints the wall time of each step.
# The numbers it produces say nothing about the networks: this checks that every table and
# figure can be made from MLflow in one go, and how long each step takes.
#   bash experiments/paper_tables_quick.sh [store folder, default mlruns/quick]
set -euo pipefail
cd "$(dirname "$0")/.."
store="$(realpath -m "${1:-mlruns/quick}")"
mkdir -p "$store"
paths="paths.mlruns_dir=$store"

step() {
    local name="$1"
    shift
    local start=$SECONDS
    "$@" > "$store/$name.log" 2>&1 || { echo "$name failed: see $store/$name.log" >&2; exit 1; }
    printf '%-28s %5d s\n' "$name" $((SECONDS - start))
}

for experiment in table6 mixes table10 extreme_ratios ratio_sweep; do
    step "$experiment" uv run python train.py -m "experiment=$experiment" trainer=quick "$paths"
done
step select_model_palu uv run python select_model.py scene_name=palu \
    scene=data/default_world/palu "$paths"
step select_model_luding uv run python select_model.py scene_name=luding \
    scene=data/default_world/luding "$paths"
step report uv run python report.py "$paths" "out_dir=$store/report"
