#!/usr/bin/env bash
# Issue #6 item 4: the paper's loss claim (Table VI) on our data. Fine-tunes the same initial
# weights on ssTEM mitochondria (training split) with each mask loss for the same budget (same
# seed, so the same crops and initial clicks), then measures NoC on the ssTEM test split (release
# protocol). Resumable: re-running skips finished parts and resumes a stopped run.
#
#   bash scripts/loss_comparison.sh [OUT_DIR] [STEPS] [INIT] [SEED] [LOSSES]
#
# Defaults: runs/losscmp, 150 steps x 8 crops, the shipped default weights, seed 0, and the
# losses "afl fl nfl bce". Uses one thread
# per process so it can share a 2-core machine with another job.
set -euo pipefail
out=${1:-runs/losscmp}
steps=${2:-150}
init=${3:-src/napari_adaptiveclick/weights/tiny_default.pt}
seed=${4:-0}
losses=${5:-afl fl nfl bce}
data=${ADAPTIVECLICK_DATA:-../shared/data}
python=${PYTHON:-.venv/bin/python}
export PYTHONPATH=. OMP_NUM_THREADS=1
for loss in $losses; do
  run=$out/$loss
  if [ ! -f "$run/final.pt" ]; then
    if [ -f "$run/last.pt" ]; then
      "$python" -m training.finetune --resume "$run" --no-eval
    else
      "$python" -m training.finetune --init "$init" --dataset sstem:kind=mitochondria \
        --data "$data" --model tiny --loss "$loss" --lr 1e-4 --warmup-steps 20 --clip-grad 1.0 \
        --batch-size 8 --max-steps "$steps" --scale-min 0.3 --scale-max 1.6 --fused-weight 1.0 \
        --save-every 50 --seed "$seed" --num-threads 1 --no-eval --out "$run"
    fi
  fi
  if [ ! -f "$out/eval_$loss/metrics.json" ]; then
    "$python" -m training.evaluate --dataset sstem --kind mitochondria --data "$data" \
      --split test --checkpoint "$run/final.pt" --device cpu --out "$out/eval_$loss"
  fi
done
runs=()
for loss in $losses; do runs+=("$out/eval_$loss"); done
"$python" -m training.evaluate --compare "${runs[@]}"
