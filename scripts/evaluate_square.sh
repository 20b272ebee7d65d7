#!/usr/bin/env bash
# The shipped weights on the test split with square crops (the plugin's session since
# session 6), in two one-thread lanes; the rows of the model card's "square crops" table.
#   bash scripts/evaluate_square.sh      # skips finished rows
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=. OMP_NUM_THREADS=1
py=${PYTHON:-.venv/bin/python}
ev() {  # OUT ARGS...
  local out=$1
  shift
  [ -f runs/ev/$out/metrics.json ] && return
  "$py" -m training.evaluate --data "${ADAPTIVECLICK_DATA:-../shared/data}" --split test \
    --checkpoint default --device cpu --stop-at 0.9 "$@" --out runs/ev/$out > runs/ev/$out.log 2>&1
}
mkdir -p runs/ev
mito=(--dataset sstem --kind mitochondria)
cells=(--dataset sstem --kind cells --objects 100 --seed 0)
(
  ev sq_brats_plugin --dataset brats
  ev sq_mito_box "${mito[@]}" --first-prompt box
  ev sq_mito_scribble "${mito[@]}" --first-prompt scribble
) &
(
  ev sq_mito_plugin "${mito[@]}"
  ev sq_cells_plugin "${cells[@]}"
  ev sq_brats_box --dataset brats --first-prompt box
) &
wait
"$py" -m training.evaluate --compare runs/ev/sq_*/
