#!/usr/bin/env bash
# Stage 5 of the default weights (model card): from the stage-3 file (the shipped weights), the
# real-data mix of stage 4 (all labelled EM and MRI structures, BRATS-2015 included) with a small
# share of synthetic scenes (weight 1 of 15.25, a third of stage 4's share, which cost EM quality),
# domain randomisation and zoomed small-object crops, for 950 steps of 8 (planned 1100, cut at step 360 to fit the session): about 2.4 times stage 4.
# One thread under nice, so tests and other work can share the two cores.
#   bash scripts/train_stage5.sh [STAGE3_FILE]      # resumes the run when it exists
# stage3.pt: git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
set -euo pipefail
cd "$(dirname "$0")/.."
init=${1:-runs/stage3.pt}
python=${PYTHON:-.venv/bin/python}
real="sstem:kind=mitochondria:weight=4,sstem:kind=cells:weight=1.5,sstem:kind=synapses:weight=0.5,brats:modality=flair:weight=1,brats:modality=t2:weight=0.5,brats:modality=t1ce:weight=0.5,brats:modality=t1:weight=0.25,brats:modality=t1ce:target=tc:weight=0.5,brats:modality=t1ce:target=et:weight=0.25,brats:modality=flair:objects=components:weight=0.25,brats2015:modality=flair:weight=2,brats2015:modality=flair:objects=components:weight=0.5,brats2015:modality=t1c:target=tc:weight=1,brats2015:modality=t1c:target=et:weight=0.5,brats2015:modality=flair:target=tc:weight=0.5"
mkdir -p runs
export OMP_NUM_THREADS=1
if [ -f runs/stage5/last.pt ]; then
  nice -n 10 "$python" -m training.finetune --resume runs/stage5 --no-eval --max-steps 950
else
  nice -n 10 "$python" -m training.finetune --init "$init" --data "${ADAPTIVECLICK_DATA:-../shared/data}" \
    --model tiny --loss afl --lr 1e-4 --warmup-steps 50 --clip-grad 1.0 --batch-size 8 \
    --max-steps 950 --scale-min 0.25 --scale-max 1.6 --fused-weight 1.0 \
    --domain-randomization 0.5 --zoom-prob 0.15 --zoom-max 4 --save-every 10 --seed 5 \
    --num-threads 1 --no-eval --dataset "$real,synthetic:kind=mix:weight=1" --out runs/stage5
fi >> runs/stage5.log 2>&1
