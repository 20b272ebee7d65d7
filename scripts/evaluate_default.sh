#!/usr/bin/env bash
# The model card's evaluation table: NoC of a checkpoint (default: the shipped weights) on the
# test split of ../shared/data, in the plugin's protocol and in the release's, as two lanes of
# one-thread evaluations (2-core machines). NICE=19 runs them at low priority.
#
#   bash scripts/evaluate_default.sh [OUT_DIR] [CHECKPOINT]
#
# The random-walker baseline rows do not depend on the weights; add them with
#   python -m training.evaluate --dataset sstem --kind mitochondria --split test --model random_walker --out OUT/rw_sstem_mito
set -euo pipefail
out=${1:-runs/eval}
checkpoint=${2:-default}
data=${ADAPTIVECLICK_DATA:-../shared/data}
python=${PYTHON:-.venv/bin/python}
export PYTHONPATH=. OMP_NUM_THREADS=1
evaluate() {  # NAME ARGS...
  local name=$1
  shift
  nice -n "${NICE:-0}" "$python" -m training.evaluate --data "$data" --split test \
    --checkpoint "$checkpoint" --device cpu "$@" --out "$out/$name" > "$out/$name.log" 2>&1
}
mkdir -p "$out"
cells=(--dataset sstem --kind cells --objects 100 --seed 0)
mito=(--dataset sstem --kind mitochondria)
(
  evaluate sstem_mito_plugin "${mito[@]}" --protocol plugin
  evaluate sstem_mito_release "${mito[@]}" --protocol release
  evaluate brats_wt_plugin --dataset brats --protocol plugin
) &
first=$!
(
  evaluate brats_wt_release --dataset brats --protocol release
  evaluate sstem_cells_plugin "${cells[@]}" --protocol plugin
  evaluate sstem_cells_release "${cells[@]}" --protocol release
) &
second=$!
wait "$first" && wait "$second" || { echo "an evaluation failed: see $out/*.log" >&2; exit 1; }
"$python" -m training.evaluate --compare "$out"/sstem_mito_plugin "$out"/sstem_mito_release \
  "$out"/brats_wt_plugin "$out"/brats_wt_release "$out"/sstem_cells_plugin "$out"/sstem_cells_release
