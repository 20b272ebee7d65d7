#!/usr/bin/env bash
# The stage-5 rows of the model card on the test split (stage 3's rows are in the card, measured
# with the same commands), in two one-thread lanes. Skips finished rows.
#   bash scripts/evaluate_stage5.sh      # after scripts/train_stage5.sh
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=. OMP_NUM_THREADS=1
py=${PYTHON:-.venv/bin/python}
[ -f runs/stage5.pt ] || "$py" -m training.export --checkpoint runs/stage5/final.pt --out runs/stage5.pt --half
ev() {  # OUT CHECKPOINT ARGS...
  local out=$1 ck=$2
  shift 2
  [ -f runs/ev/$out/metrics.json ] && return
  nice -n 2 "$py" -m training.evaluate --data "${ADAPTIVECLICK_DATA:-../shared/data}" --split test \
    --checkpoint "$ck" --device cpu "$@" --out runs/ev/$out > runs/ev/$out.log 2>&1
}
mkdir -p runs/ev
mito=(--dataset sstem --kind mitochondria)
cells=(--dataset sstem --kind cells --objects 100 --seed 0)
(
  ev s5_mito_release runs/stage5.pt "${mito[@]}" --protocol release
  ev s5_mito_plugin runs/stage5.pt "${mito[@]}"
) &
(
  ev s5_brats_plugin runs/stage5.pt --dataset brats
  ev s5_cells_plugin runs/stage5.pt "${cells[@]}"
) &
wait
"$py" -m training.evaluate --compare runs/ev/*/
