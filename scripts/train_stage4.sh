#!/usr/bin/env bash
# Stage 4 of the default weights (model card): two arms with the same budget, from the stage-3
# file, one thread each (they share the 2 cores): with and without the synthetic scenes.
#   bash scripts/train_stage4.sh [STAGE3_FILE]      # resumes both arms when they exist
# stage3.pt: git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
set -euo pipefail
init=${1:-runs/stage3.pt}
python=${PYTHON:-.venv/bin/python}
real="sstem:kind=mitochondria:weight=4,sstem:kind=cells:weight=1.5,sstem:kind=synapses:weight=0.5,brats:modality=flair:weight=1,brats:modality=t2:weight=0.5,brats:modality=t1ce:weight=0.5,brats:modality=t1:weight=0.25,brats:modality=t1ce:target=tc:weight=0.5,brats:modality=t1ce:target=et:weight=0.25,brats:modality=flair:objects=components:weight=0.25,brats2015:modality=flair:weight=2,brats2015:modality=flair:objects=components:weight=0.5,brats2015:modality=t1c:target=tc:weight=1,brats2015:modality=t1c:target=et:weight=0.5,brats2015:modality=flair:target=tc:weight=0.5"
common=(--init "$init" --data ${ADAPTIVECLICK_DATA:-../shared/data} --model tiny --loss afl --lr 1e-4
  --warmup-steps 50 --clip-grad 1.0 --batch-size 8 --max-steps 400 --scale-min 0.25 --scale-max 1.6
  --fused-weight 1.0 --domain-randomization 0.5 --zoom-prob 0.15 --zoom-max 4 --save-every 25
  --seed 4 --num-threads 1 --no-eval)
run() {  # NAME DATASETS
  if [ -f "runs/$1/last.pt" ]; then
    OMP_NUM_THREADS=1 nice -n 10 "$python" -m training.finetune --resume "runs/$1" --no-eval
  else
    OMP_NUM_THREADS=1 nice -n 10 "$python" -m training.finetune "${common[@]}" --dataset "$2" --out "runs/$1"
  fi >> "runs/$1.log" 2>&1
}
mkdir -p runs
run stage4_syn "$real,synthetic:kind=mix:weight=3" &
run stage4_real "$real" &
wait
