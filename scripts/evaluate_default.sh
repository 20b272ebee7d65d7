#!/usr/bin/env bash
# The model card's evaluation table: NoC of a checkpoint (default: the shipped weights) on the
# test split of ../shared/data, as two lanes of one-thread evaluations (2-core machines).
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
  "$python" -m training.evaluate --data "$data" --split test --checkpoint "$checkpoint" \
    --device cpu "$@" --out "$out/$name" > "$out/$name.log" 2>&1
}
mkdir -p "$out"
cells=(--dataset sstem --kind cells --objects 100 --seed 0)
mito=(--dataset sstem --kind mitochondria)
(
  evaluate tiny_sstem_mito_plugin "${mito[@]}" --first-click-window auto
  evaluate tiny_sstem_mito "${mito[@]}"
  evaluate tiny_brats_wt --dataset brats
) &
first=$!
(
  evaluate tiny_sstem_cells_plugin "${cells[@]}" --first-click-window auto
  evaluate tiny_sstem_cells "${cells[@]}"
) &
second=$!
wait "$first" && wait "$second" || { echo "an evaluation failed: see $out/*.log" >&2; exit 1; }
"$python" -m training.evaluate --compare "$out"/tiny_sstem_mito_plugin "$out"/tiny_sstem_mito \
  "$out"/tiny_brats_wt "$out"/tiny_sstem_cells_plugin "$out"/tiny_sstem_cells
