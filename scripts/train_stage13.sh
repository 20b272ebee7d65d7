#!/usr/bin/env bash
# Stage 13 of the default weights (issues #11 and #13): the stage-12 recipe
# (scripts/train_stage12.sh: same MRI mix, lr 5e-5, lr / 10 from two thirds of the steps,
# BRATS-2015 brats_2013_pat0005_1 held out as the fold) continued from the shipped stage-12
# `default-mri` file (sha256 d77f1444..., pinned to its commit), 1,500 steps of 8, seed 13, one
# thread under nice, and with propagation samples: a quarter of the slices whose tumour is also
# on an adjacent slice are prompted as propagation prompts them (that slice's mask as the
# previous mask and the click derived from it; TrainConfig.neighbour_prob). Settings fixed
# before any figure of it. (A first start without propagation samples was stopped at step
# 448 when they were added; it was never evaluated.) Shipping rule, fixed in advance and
# the same as stage 12's: it replaces `default-mri` when its NoC@85 on the fold is lower than
# default-mri's and its NoC@90 no higher (bash scripts/evaluate_stage7.sh stage13).
#   bash scripts/train_stage13.sh      # resumes when runs/stage13_mri exists
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
init=runs/stage12_mri_shipped.pt
[ -f "$init" ] || git show 7f65db2:src/napari_adaptiveclick/weights/tiny_mri.pt > "$init"
STAGE=13 SEED=13 STEPS=${STEPS:-1500} NEIGHBOUR_PROB=0.25 exec bash scripts/train_stage12.sh "$init"
