#!/usr/bin/env bash
# Stage 7 of the default weights (model card, issue #11): per-domain weights. Stages 4-6 showed
# that one 7 M-parameter model fine-tuned on the EM + MRI mix trades one modality against the
# other, so this stage trains two specialists from the stage-3 file (the shipped weights), side
# by side, one thread each under nice:
#   em:  the stage-3 EM mix (mitochondria 6, cells 1.5, synapses 0.5), lr 5e-5;
#   mri: every labelled MRI structure of stages 4-6 (BraTS 2018 and BRATS 2015), lr 1e-4.
# Both: domain randomisation 0.5, 15 % zoomed crops, boxes and strokes as in stage 6 (issue #16),
# 1,600 steps of 8 (lr / 10 from step 1067), seed 7. A validation fold of the training split is
# held out of each (never the test split): ssTEM stack-1 slices 14-15 and the BRATS-2015 case
# brats_2013_pat0005_1; scripts/evaluate_stage7.sh measures the arms on them.
#   bash scripts/train_stage7.sh [STAGE3_FILE]      # resumes each arm when it exists
# stage3.pt: git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
set -euo pipefail
cd "$(dirname "$0")/.."
init=${1:-runs/stage3.pt}
python=${PYTHON:-.venv/bin/python}
data=${ADAPTIVECLICK_DATA:-../shared/data}
em_fold='sstem/stack1/14.tif*|sstem/stack1/15.tif*'
mri_fold='brats2015/brats_2013_pat0005_1/*'
em="sstem:kind=mitochondria:exclude=$em_fold:weight=6,sstem:kind=cells:exclude=$em_fold:weight=1.5,sstem:kind=synapses:exclude=$em_fold:weight=0.5"
b15="brats2015:exclude=$mri_fold"
mri="brats:modality=flair:weight=1,brats:modality=t2:weight=0.5,brats:modality=t1ce:weight=0.5,brats:modality=t1:weight=0.25,brats:modality=t1ce:target=tc:weight=0.5,brats:modality=t1ce:target=et:weight=0.25,brats:modality=flair:objects=components:weight=0.25,$b15:modality=flair:weight=2,$b15:modality=flair:objects=components:weight=0.5,$b15:modality=t1c:target=tc:weight=1,$b15:modality=t1c:target=et:weight=0.5,$b15:modality=flair:target=tc:weight=0.5"
mkdir -p runs
export OMP_NUM_THREADS=1
steps=${STEPS:-1600}
arm() {  # NAME LR DATASETS
  local out=runs/stage7_$1
  if [ -f $out/last.pt ]; then
    nice -n 10 "$python" -m training.finetune --resume $out --max-steps "$steps" --no-eval
  else
    nice -n 10 "$python" -m training.finetune --init "$init" --data "$data" \
      --model tiny --loss afl --lr "$2" --warmup-steps 50 --clip-grad 1.0 --batch-size 8 \
      --max-steps "$steps" --scale-min 0.25 --scale-max 1.6 --fused-weight 1.0 \
      --domain-randomization 0.5 --zoom-prob 0.15 --zoom-max 4 --box-prob 0.2 --stroke-prob 0.15 \
      --box-prior 0.4 --save-every 10 --seed 7 --num-threads 1 --no-eval --dataset "$3" \
      --out $out
  fi >> $out.log 2>&1
}
arm em 5e-5 "$em" &
arm mri 1e-4 "$mri" &
wait
