#!/usr/bin/env bash
# Stage 8 of the default weights (model card, issue #11): a second EM arm. The stage-7 EM arm
# (lr 5e-5, cells weight 1.5) failed its fold rule on plugin mitochondria (+0.06) and cells
# (+0.30) while gaining 0.55 clicks under the release protocol. This arm changes two settings
# against forgetting, chosen before any figure of it: a lower learning rate (3e-5, 0.6x stage
# 7's 5e-5; lr / 10 from step 800) and cells weighted 2.5 instead of 1.5; everything else as
# stage 7 (boxes and strokes, domain randomisation 0.5, 15 % zoomed crops), 1,200 steps of 8
# (the session's time), seed 8, one thread under nice. Validation fold and shipping rule as in stage 7
# (bash scripts/evaluate_stage7.sh stage8; the fold is held out of training).
#   bash scripts/train_stage8.sh [STAGE3_FILE]      # resumes when runs/stage8_em exists
# Later arms change settings through ARM (the run's name), LR, BOX_PROB, CELLS (the cells'
# weight) and SEED (train_stage9.sh, train_stage10.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
init=${1:-src/napari_adaptiveclick/weights/tiny_default.pt}
python=${PYTHON:-.venv/bin/python}
data=${ADAPTIVECLICK_DATA:-../shared/data}
em_fold='sstem/stack1/14.tif*|sstem/stack1/15.tif*'
em="sstem:kind=mitochondria:exclude=$em_fold:weight=6,sstem:kind=cells:exclude=$em_fold:weight=${CELLS:-2.5},sstem:kind=synapses:exclude=$em_fold:weight=0.5"
out=runs/${ARM:-stage8_em}
mkdir -p runs
export OMP_NUM_THREADS=1
steps=${STEPS:-1200}
if [ -f $out/last.pt ]; then
  nice -n 10 "$python" -m training.finetune --resume $out --max-steps "$steps" --no-eval
else
  nice -n 10 "$python" -m training.finetune --init "$init" --data "$data" \
    --model tiny --loss afl --lr "${LR:-3e-5}" --warmup-steps 50 --clip-grad 1.0 --batch-size 8 \
    --max-steps "$steps" --scale-min 0.25 --scale-max 1.6 --fused-weight 1.0 \
    --domain-randomization 0.5 --zoom-prob 0.15 --zoom-max 4 --box-prob "${BOX_PROB:-0.2}" --stroke-prob 0.15 \
    --box-prior 0.4 --save-every 10 --seed "${SEED:-8}" --num-threads 1 --no-eval --dataset "$em" \
    --out $out
fi >> $out.log 2>&1
