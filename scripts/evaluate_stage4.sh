#!/usr/bin/env bash
# The stage-4 comparison of the model card: the with-synthetic arm (shipped), the same budget
# without synthetic scenes, and stage 3, on the test split, in two one-thread lanes.
#   bash scripts/evaluate_stage4.sh      # after scripts/train_stage4.sh; skips finished rows
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=. OMP_NUM_THREADS=1
py=${PYTHON:-.venv/bin/python}
for r in syn real; do
  [ -f runs/stage4_$r.pt ] || "$py" -m training.export --checkpoint runs/stage4_$r/final.pt --out runs/stage4_$r.pt --half
done
ev() {  # OUT CHECKPOINT ARGS...
  local out=$1 ck=$2
  shift 2
  [ -f runs/ev/$out/metrics.json ] && return
  "$py" -m training.evaluate --data "${ADAPTIVECLICK_DATA:-../shared/data}" --split test \
    --checkpoint "$ck" --device cpu "$@" --out runs/ev/$out > runs/ev/$out.log 2>&1
}
mkdir -p runs/ev
mito=(--dataset sstem --kind mitochondria)
cells=(--dataset sstem --kind cells --objects 100 --seed 0)
(
  ev syn_mito_release runs/stage4_syn.pt "${mito[@]}" --protocol release
  ev syn_mito_plugin runs/stage4_syn.pt "${mito[@]}"
  ev s3_mito_release runs/stage3.pt "${mito[@]}" --protocol release
  ev s3_mito_plugin runs/stage3.pt "${mito[@]}"
  ev real_mito_release runs/stage4_real.pt "${mito[@]}" --protocol release
) &
(
  ev syn_brats_plugin runs/stage4_syn.pt --dataset brats
  ev syn_cells_plugin runs/stage4_syn.pt "${cells[@]}"
  ev s3_brats_plugin runs/stage3.pt --dataset brats
  ev real_brats_plugin runs/stage4_real.pt --dataset brats
  ev s3_cells_plugin runs/stage3.pt "${cells[@]}"
) &
wait
"$py" -m training.evaluate --compare runs/ev/*/
