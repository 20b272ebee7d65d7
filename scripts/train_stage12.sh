#!/usr/bin/env bash
# Stage 12 of the default weights (model card, issue #11): more training for the MRI weights.
# Continues the shipped `default-mri` file (the stage-7 MRI arm, 1,600 steps) on the same MRI
# mix and validation fold as scripts/train_stage7.sh (BRATS-2015 brats_2013_pat0005_1 held
# out), with half of stage 7's learning rate (5e-5: it starts from fine-tuned weights), 1,000
# steps of 8 (lr / 10 from step 667), seed 12, one thread under nice; settings fixed before
# any figure of it. Shipping rule, fixed in advance: it replaces `default-mri` when its
# NoC@85 on the fold is lower than default-mri's and its NoC@90 no higher
# (bash scripts/evaluate_stage7.sh stage12).
#   bash scripts/train_stage12.sh [DEFAULT_MRI_FILE]   # resumes when runs/stage12_mri exists
# Stage 13 is this recipe again from the stage-12 file (scripts/train_stage13.sh sets STAGE,
# SEED, STEPS, NEIGHBOUR_PROB and the start file; everything else is the same; stage 14 also
# EXTRA_MIX, more datasets appended to the mix).
# The start is the default-mri file of session 8 (sha256 6a76f580...), pinned to its commit so
# that the recipe stays the same after stage 12 is installed in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
init=${1:-runs/stage7_mri.pt}
[ -f "$init" ] || git show 5ea3e00703c390972b4ad3daa763c1cc3dd527a1:src/napari_adaptiveclick/weights/tiny_mri.pt > "$init"
python=${PYTHON:-.venv/bin/python}
data=${ADAPTIVECLICK_DATA:-../shared/data}
mri_fold='brats2015/brats_2013_pat0005_1/*'
b15="brats2015:exclude=$mri_fold"
mri="brats:modality=flair:weight=1,brats:modality=t2:weight=0.5,brats:modality=t1ce:weight=0.5,brats:modality=t1:weight=0.25,brats:modality=t1ce:target=tc:weight=0.5,brats:modality=t1ce:target=et:weight=0.25,brats:modality=flair:objects=components:weight=0.25,$b15:modality=flair:weight=2,$b15:modality=flair:objects=components:weight=0.5,$b15:modality=t1c:target=tc:weight=1,$b15:modality=t1c:target=et:weight=0.5,$b15:modality=flair:target=tc:weight=0.5${EXTRA_MIX:-}"
stage=${STAGE:-12}
out=runs/stage${stage}_mri
export OMP_NUM_THREADS=1
steps=${STEPS:-1000}
extra=()  # stage 12 trained without propagation samples
[ -n "${NEIGHBOUR_PROB:-}" ] && extra=(--neighbour-prob "$NEIGHBOUR_PROB")
if [ -f $out/last.pt ]; then
  nice -n 10 "$python" -m training.finetune --resume $out --max-steps "$steps" --no-eval
else
  nice -n 10 "$python" -m training.finetune --init "$init" --data "$data" \
    --model tiny --loss afl --lr 5e-5 --warmup-steps 50 --clip-grad 1.0 --batch-size 8 \
    --max-steps "$steps" --scale-min 0.25 --scale-max 1.6 --fused-weight 1.0 \
    --domain-randomization 0.5 --zoom-prob 0.15 --zoom-max 4 --box-prob "${BOX_PROB:-0.2}" --stroke-prob 0.15 \
    --box-prior 0.4 --save-every 10 --seed "${SEED:-12}" --num-threads 1 --no-eval --dataset "$mri" \
    --out $out "${extra[@]}"
fi >> $out.log 2>&1
