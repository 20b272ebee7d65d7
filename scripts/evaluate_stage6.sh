#!/usr/bin/env bash
# The stage-6 rows of the model card on the test split (issues #11 and #16): the #11 table
# (BraTS and EM under the plugin protocol, mitochondria under the release protocol) and the
# first prompts of #16 (box, scribble) beside the click, in two one-thread lanes. Every row
# stops an object at IoU 0.90 (NoC@85/90 are the same as without it). Skips finished rows.
#   bash scripts/evaluate_stage6.sh [CHECKPOINT] [PREFIX]   # after scripts/train_stage6.sh
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=. OMP_NUM_THREADS=1
py=${PYTHON:-.venv/bin/python}
ck=${1:-runs/stage6.pt}
tag=${2:-s6}
[ -f "$ck" ] || "$py" -m training.export --checkpoint runs/stage6/final.pt --out "$ck" --half
ev() {  # OUT ARGS...
  local out=$1
  shift
  [ -f runs/ev/$out/metrics.json ] && return
  nice -n 2 "$py" -m training.evaluate --data "${ADAPTIVECLICK_DATA:-../shared/data}" --split test \
    --checkpoint "$ck" --device cpu --stop-at 0.9 "$@" --out runs/ev/$out > runs/ev/$out.log 2>&1
}
mkdir -p runs/ev
mito=(--dataset sstem --kind mitochondria)
cells=(--dataset sstem --kind cells --objects 100 --seed 0)
(
  ev ${tag}_mito_release "${mito[@]}" --protocol release
  ev ${tag}_mito_plugin "${mito[@]}"
  ev ${tag}_mito_box "${mito[@]}" --first-prompt box
  ev ${tag}_mito_scribble "${mito[@]}" --first-prompt scribble
  ev ${tag}_cells_plugin "${cells[@]}"
) &
(
  ev ${tag}_brats_plugin --dataset brats
  ev ${tag}_brats_box --dataset brats --first-prompt box
  ev ${tag}_brats_scribble --dataset brats --first-prompt scribble
) &
wait
"$py" -m training.evaluate --compare runs/ev/${tag}_*/
