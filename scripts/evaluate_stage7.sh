#!/usr/bin/env bash
# Stage 7 (model card, issue #11): the per-domain arms of scripts/train_stage7.sh measured on
# the validation folds they were trained without (training split, never the test split):
# ssTEM stack-1 slices 14-15 (mitochondria under both protocols, 60 cells) and the BRATS-2015
# case brats_2013_pat0005_1 (whole tumour on FLAIR), beside the stage-3 file on the same
# objects. The shipping rule was fixed before any figure: an arm replaces the stage-3 weights
# of its domain when it is no worse than stage 3 on NoC@85 of every row of its fold (and better
# on one). Every row stops an object at IoU 0.90 (NoC@85/90 are the same as without it).
#   bash scripts/evaluate_stage7.sh fold      # the fold rows (skips finished ones)
#   bash scripts/evaluate_stage7.sh stage8    # the stage-8 EM arm's fold rows
#   bash scripts/evaluate_stage7.sh stage9    # the stage-9 EM arm's fold rows, with box starts
#   bash scripts/evaluate_stage7.sh stage10   # the same for the stage-10 arm
#   bash scripts/evaluate_stage7.sh stage11   # and for the stage-11 arm
#   bash scripts/evaluate_stage7.sh soup      # the weight soup of stages 8-11 (model card)
#   bash scripts/evaluate_stage7.sh stage12   # the stage-12 MRI arm beside default-mri
#   bash scripts/evaluate_stage7.sh stage13   # the same for the stage-13 MRI arm
#   bash scripts/evaluate_stage7.sh stage14   # the same for the stage-14 MRI arm (session 17)
#   bash scripts/evaluate_stage7.sh stage15   # the stage-15 EM arm and its mean with stage 3 (session 18)
#   bash scripts/evaluate_stage7.sh stage16   # the stage-16 MRI arm, clicks and boxes, beside stage 13 (session 19)
#   bash scripts/evaluate_stage7.sh mean1316  # the mean of the stage-13 and stage-16 MRI weights (session 19)
#   bash scripts/evaluate_stage7.sh confirm15 # the stage-15 arm's confirmatory rows: fold synapses, 100 other cells
#   bash scripts/evaluate_stage7.sh mean1314  # the mean of the stage-13 and stage-14 MRI weights (session 18)
#   bash scripts/evaluate_stage7.sh flip      # flip test-time augmentation (plugin protocol) on the folds
#   bash scripts/evaluate_stage7.sh zoom      # the zoom-in crop's smallest side (200, 128, 80, 56 px)
#                                             # on the folds and 40 BraTS-2018 training slices (session 14)
#   bash scripts/evaluate_stage7.sh zoom-test # the BraTS test rows at 80 px, measured once (session 14)
#   bash scripts/evaluate_stage7.sh boxprior  # the EM weights' box prior on training rows (session 14)
#   bash scripts/evaluate_stage7.sh test [EM_CHECKPOINT] [MRI_CHECKPOINT]
#       # the test-split rows of the model card for the weights shipped by that rule
#       # (default: the shipped default and default-mri weights); the BraTS box row is s9_* since
#       # session 9 (the box limit), the EM box row s14_* since session 14 (the EM weights' box
#       # prior), the others s7_*
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=. OMP_NUM_THREADS=1
py=${PYTHON:-.venv/bin/python}
data=${ADAPTIVECLICK_DATA:-../shared/data}
ev() {  # OUT CHECKPOINT ARGS...
  local out=$1 ck=$2
  shift 2
  [ -f runs/ev/$out/metrics.json ] && return
  nice -n 2 "$py" -m training.evaluate --data "$data" --checkpoint "$ck" --device cpu \
    --stop-at 0.9 "$@" --out runs/ev/$out > runs/ev/$out.log 2>&1
}
export_arm() {  # ARM -> runs/stage7_ARM.pt
  [ -f runs/stage7_$1.pt ] || "$py" -m training.export --checkpoint runs/stage7_$1/final.pt \
    --out runs/stage7_$1.pt --half
}
mkdir -p runs/ev
em_fold='sstem/stack1/14.tif*|sstem/stack1/15.tif*'
mito=(--dataset sstem --kind mitochondria --split train --only "$em_fold")
cells=(--dataset sstem --kind cells --split train --only "$em_fold" --objects 60 --seed 0)
mri=(--dataset brats2015 --split train --only 'brats2015/brats_2013_pat0005_1/*')
em_rows() {  # TAG CHECKPOINT
  ev fold_$1_mito_plugin "$2" "${mito[@]}"
  ev fold_$1_mito_release "$2" "${mito[@]}" --protocol release
  ev fold_$1_cells_plugin "$2" "${cells[@]}"
}
case ${1:-fold} in
  baseline)
    em_rows s3 runs/stage3.pt
    ev fold_s3_mri_plugin runs/stage3.pt "${mri[@]}"
    ;;
  fold)
    export_arm em
    export_arm mri
    (em_rows s3 runs/stage3.pt; em_rows s7em runs/stage7_em.pt) &
    (ev fold_s3_mri_plugin runs/stage3.pt "${mri[@]}"; ev fold_s7mri_mri_plugin runs/stage7_mri.pt "${mri[@]}") &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_*/
    ;;
  stage8)  # the stage-8 EM arm (scripts/train_stage8.sh) beside stage 3 on the same fold, 2 lanes
    [ -f runs/stage8_em.pt ] || "$py" -m training.export --checkpoint runs/stage8_em/final.pt \
      --out runs/stage8_em.pt --half
    [ -f runs/stage3.pt ] || git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
    (ev fold_s8em_mito_plugin runs/stage8_em.pt "${mito[@]}"; ev fold_s8em_cells_plugin runs/stage8_em.pt "${cells[@]}"
     ev fold_s3_mito_plugin runs/stage3.pt "${mito[@]}") &
    (ev fold_s8em_mito_release runs/stage8_em.pt "${mito[@]}" --protocol release
     ev fold_s3_mito_release runs/stage3.pt "${mito[@]}" --protocol release
     ev fold_s3_cells_plugin runs/stage3.pt "${cells[@]}") &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_*/
    ;;
  stage9|stage10|stage11)  # a later EM arm (scripts/train_STAGE.sh) beside stage 3, box starts too
    arm=$1_em tag=s${1#stage}em
    [ -f runs/$arm.pt ] || "$py" -m training.export --checkpoint runs/$arm/final.pt \
      --out runs/$arm.pt --half
    [ -f runs/stage3.pt ] || git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
    (em_rows $tag runs/$arm.pt; ev fold_${tag}_mito_box runs/$arm.pt "${mito[@]}" --first-prompt box) &
    (em_rows s3 runs/stage3.pt; ev fold_s3_mito_box runs/stage3.pt "${mito[@]}" --first-prompt box) &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_s3_*/ runs/ev/fold_${tag}_*/
    ;;
  soup)  # the uniform weight soup of the EM arms of stages 8-11, same fold rows
    [ -f runs/soup_em.pt ] || "$py" -m training.export --checkpoint runs/stage8_em/final.pt \
      --average runs/stage9_em/final.pt runs/stage10_em/final.pt runs/stage11_em/final.pt \
      --half --out runs/soup_em.pt
    em_rows soup runs/soup_em.pt &
    ev fold_soup_mito_box runs/soup_em.pt "${mito[@]}" --first-prompt box &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_s3_*/ runs/ev/fold_soup_*/
    ;;
  stage12|stage13|stage14)  # a later MRI arm (scripts/train_STAGE.sh) beside the default-mri it starts from
    arm=$1_mri tag=s${1#stage}mri base=dmri  # stage 12 started from the session-8 default-mri
    [ "$1" = stage13 ] && base=mri12  # stage 13 from the stage-12 file, default-mri since session 11
    [ "$1" = stage14 ] && base=mri13  # stage 14 from the stage-13 file, default-mri since session 12
    [ -f runs/$arm.pt ] || "$py" -m training.export --checkpoint runs/$arm/final.pt \
      --out runs/$arm.pt --half
    ev fold_${base}_mri_plugin default-mri "${mri[@]}" &
    ev fold_${tag}_mri_plugin runs/$arm.pt "${mri[@]}" &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_${base}_mri_plugin/ runs/ev/fold_${tag}_mri_plugin/
    ;;
  stage15)  # the stage-15 EM arm and the candidate, its mean with stage 3 (scripts/train_stage15.sh)
    [ -f runs/stage15_em.pt ] || "$py" -m training.export --checkpoint runs/stage15_em/final.pt \
      --out runs/stage15_em.pt --half
    em_rows s3 runs/stage3.pt  # (done first when run beside the training)
    ev fold_s3bp4_mito_box default "${mito[@]}" --first-prompt box  # stage 3, box prior 0.4
    # the candidate first (it decides), then the arm alone (reported)
    (ev fold_s15wise_mito_plugin runs/stage15_wise.pt "${mito[@]}"
     ev fold_s15wise_mito_release runs/stage15_wise.pt "${mito[@]}" --protocol release
     ev fold_s15em_mito_plugin runs/stage15_em.pt "${mito[@]}"
     ev fold_s15em_mito_release runs/stage15_em.pt "${mito[@]}" --protocol release) &
    (ev fold_s15wise_cells_plugin runs/stage15_wise.pt "${cells[@]}"
     ev fold_s15wise_mito_box runs/stage15_wise.pt "${mito[@]}" --first-prompt box
     ev fold_s15em_mito_box runs/stage15_em.pt "${mito[@]}" --first-prompt box
     ev fold_s15em_cells_plugin runs/stage15_em.pt "${cells[@]}") &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_s3_*/ runs/ev/fold_s3bp4_*/ runs/ev/fold_s15*/
    ;;
  stage16)  # the stage-16 MRI arm (boxes in 40 % of samples) beside stage 13 (default-mri), clicks and boxes (runs/decision_I.txt)
    [ -f runs/stage16_mri.pt ] || "$py" -m training.export --checkpoint runs/stage16_mri/final.pt \
      --out runs/stage16_mri.pt --half
    (ev fold_mri13_mri_plugin default-mri "${mri[@]}"; ev fold_mri13_mri_box default-mri "${mri[@]}" --first-prompt box) &
    (ev fold_s16mri_mri_plugin runs/stage16_mri.pt "${mri[@]}"
     ev fold_s16mri_mri_box runs/stage16_mri.pt "${mri[@]}" --first-prompt box) &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_mri13_mri_*/ runs/ev/fold_s16mri_mri_*/
    ;;
  mean1316)  # the uniform mean of the stage-13 (default-mri) and stage-16 MRI weights, second candidate of runs/decision_I.txt
    [ -f runs/mri_mean13_16.pt ] || "$py" -m training.export --checkpoint runs/stage13_mri_shipped.pt \
      --average runs/stage16_mri/final.pt --half --out runs/mri_mean13_16.pt \
      --note "uniform mean of the stage-13 and stage-16 MRI weights (session 19)"
    ev fold_mean1316_mri_plugin runs/mri_mean13_16.pt "${mri[@]}" &
    ev fold_mean1316_mri_box runs/mri_mean13_16.pt "${mri[@]}" --first-prompt box &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_mri13_mri_*/ runs/ev/fold_mean1316_mri_*/
    ;;
  confirm15)  # fold objects measured for neither model before (runs/decision_H.txt), 2 lanes
    syn=(--dataset sstem --kind synapses --split train --only "$em_fold")
    cells1=(--dataset sstem --kind cells --split train --only "$em_fold" --objects 100 --seed 1)
    (ev conf_s3_syn runs/stage3.pt "${syn[@]}"; ev conf_s3_cells runs/stage3.pt "${cells1[@]}") &
    (ev conf_s15em_syn runs/stage15_em.pt "${syn[@]}"; ev conf_s15em_cells runs/stage15_em.pt "${cells1[@]}") &
    wait
    "$py" -m training.evaluate --compare runs/ev/conf_*/
    ;;
  mean1314)  # the uniform mean of the stage-13 (shipped default-mri) and stage-14 MRI weights
    [ -f runs/mri_mean13_14.pt ] || "$py" -m training.export --checkpoint runs/stage13_mri_shipped.pt \
      --average runs/stage14_mri.pt --half --out runs/mri_mean13_14.pt \
      --note "uniform mean of the stage-13 and stage-14 MRI weights (session 18)"
    ev fold_mean1314_mri_plugin runs/mri_mean13_14.pt "${mri[@]}"
    "$py" -m training.evaluate --compare runs/ev/fold_mri13_mri_plugin/ runs/ev/fold_mean1314_mri_plugin/
    ;;
  boxprior)  # the EM weights' box prior (0 = the seed click only, 0.2-0.45) on training rows (session 14)
    [ -f runs/stage3.pt ] || git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
    for bp in 2 3 4 45; do  # the stage-3 weights with box_prior 0.$bp (config only)
      [ -f runs/stage3_bp$bp.pt ] || "$py" -m training.export --checkpoint runs/stage3.pt \
        --out runs/stage3_bp$bp.pt --half --box-prior 0.$bp
    done
    mito2=(--dataset sstem --kind mitochondria --split train
      --only 'sstem/stack1/00.tif*|sstem/stack1/01.tif*|sstem/stack1/02.tif*|sstem/stack1/03.tif*')
    b18=(--dataset brats --split train --objects 40 --seed 1)
    (ev zoom_mitobox_z200 runs/stage3.pt "${mito[@]}" --first-prompt box
     for bp in 2 3 4 45; do ev bp_mitobox_bp$bp runs/stage3_bp$bp.pt "${mito[@]}" --first-prompt box; done
     ev bp_cellsbox_bp0 runs/stage3.pt "${cells[@]}" --first-prompt box
     ev bp_cellsbox_bp4 runs/stage3_bp4.pt "${cells[@]}" --first-prompt box) &
    (ev bp_mito2box_bp0 runs/stage3.pt "${mito2[@]}" --first-prompt box
     for bp in 2 4; do ev bp_mito2box_bp$bp runs/stage3_bp$bp.pt "${mito2[@]}" --first-prompt box; done
     ev bp_b18box_bp0 runs/stage3.pt "${b18[@]}" --first-prompt box
     ev bp_b18box_bp4 runs/stage3_bp4.pt "${b18[@]}" --first-prompt box) &
    wait
    "$py" -m training.evaluate --compare runs/ev/zoom_mitobox_z200/ runs/ev/bp_*/
    ;;
  flip)  # flip test-time augmentation in the plugin protocol, shipped weights, on the folds
    [ -f runs/stage3.pt ] || git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
    (ev fold_mri12_mri_plugin default-mri "${mri[@]}"
     ev fold_mri12flip_mri_plugin default-mri "${mri[@]}" --flip) &
    (em_rows s3 runs/stage3.pt; ev fold_s3_mito_box runs/stage3.pt "${mito[@]}" --first-prompt box
     ev fold_s3flip_mito_plugin runs/stage3.pt "${mito[@]}" --flip
     ev fold_s3flip_cells_plugin runs/stage3.pt "${cells[@]}" --flip
     ev fold_s3flip_mito_box runs/stage3.pt "${mito[@]}" --first-prompt box --flip) &
    wait
    "$py" -m training.evaluate --compare runs/ev/fold_mri12*_mri_plugin/ runs/ev/fold_s3*_mito_plugin/ \
      runs/ev/fold_s3*_cells_plugin/ runs/ev/fold_s3*_mito_box/
    ;;
  zoom)  # --zoom-min-size on the training folds (model card, session 14), 2 lanes; the EM rows
         # use runs/stage3.pt, the stage-3 weights without the box prior of session 14
    [ -f runs/stage3.pt ] || git show 1e11786:src/napari_adaptiveclick/weights/tiny_default.pt > runs/stage3.pt
    b18=(--dataset brats --split train --objects 40 --seed 1)
    (for z in 200 128 80 56; do
       ev zoom_mri_z$z default-mri "${mri[@]}" --zoom-min-size $z
     done
     for z in 200 80; do ev zoom_mribox_z$z default-mri "${mri[@]}" --first-prompt box --zoom-min-size $z; done
     ev zoom_mri_w128_z80 default-mri "${mri[@]}" --zoom-min-size 80 --first-click-window 128) &
    (for z in 200 128 80 56; do ev zoom_b18_z$z default-mri "${b18[@]}" --zoom-min-size $z; done
     for z in 200 80; do ev zoom_b18box_z$z default-mri "${b18[@]}" --first-prompt box --zoom-min-size $z; done
     ev zoom_b18_w128_z80 default-mri "${b18[@]}" --zoom-min-size 80 --first-click-window 128
     for z in 200 128 80; do ev zoom_mito_z$z runs/stage3.pt "${mito[@]}" --zoom-min-size $z; done
     for z in 200 80; do ev zoom_mitobox_z$z runs/stage3.pt "${mito[@]}" --first-prompt box --zoom-min-size $z; done) &
    wait
    "$py" -m training.evaluate --compare runs/ev/zoom_*/
    ;;
  zoom-test)  # the BraTS test rows with the 80 px zoom-in minimum (model card, session 14)
    test_brats=(--dataset brats --split test --zoom-min-size 80)
    ev zoom_test_brats_z80 default-mri "${test_brats[@]}" &
    (ev zoom_test_bratsbox_z80 default-mri "${test_brats[@]}" --first-prompt box
     ev zoom_test_bratsscribble_z80 default-mri "${test_brats[@]}" --first-prompt scribble) &
    wait
    "$py" -m training.evaluate --compare runs/ev/zoom_test_*/
    ;;
  test)
    em_ck=${2:-default}
    mri_ck=${3:-default-mri}
    test_mito=(--dataset sstem --kind mitochondria --split test)
    (
      ev s7_mito_release "$em_ck" "${test_mito[@]}" --protocol release
      ev s7_mito_plugin "$em_ck" "${test_mito[@]}"
      ev s14_mito_box "$em_ck" "${test_mito[@]}" --first-prompt box  # box_prior 0.4 since session 14
      ev s7_mito_scribble "$em_ck" "${test_mito[@]}" --first-prompt scribble
      ev s7_cells_plugin "$em_ck" --dataset sstem --kind cells --split test --objects 100 --seed 0
    ) &
    (
      ev s7_brats_plugin "$mri_ck" --dataset brats --split test
      ev s9_brats_box "$mri_ck" --dataset brats --split test --first-prompt box
      ev s7_brats_scribble "$mri_ck" --dataset brats --split test --first-prompt scribble
    ) &
    wait
    "$py" -m training.evaluate --compare runs/ev/s7_*/ runs/ev/s9_brats_box/ runs/ev/s14_*/
    ;;
  *)
    echo "usage: $0 baseline|fold|stage8|stage9|stage10|stage11|soup|stage12|stage13|stage14|stage15|stage16|mean1316|confirm15|mean1314|flip|zoom|zoom-test|boxprior|test [EM_CHECKPOINT] [MRI_CHECKPOINT]" >&2
    exit 2
    ;;
esac
