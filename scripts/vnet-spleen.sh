#!/usr/bin/env bash
# The real-data V-Net run (issue 6, item 6), outside `npm test`: trains the tiny preset on the MSD
# spleen crop with its manual label for at most MINUTES minutes on a CPU adapter, segments the scan with
# the result and prints the Dice of the written mask against the manual label.
#   MEDSEG_ADAPTER=llvmpipe MINUTES=30 scripts/vnet-spleen.sh [out-dir]
# The default patch (32x48x48 at 3.2 x 3.2 x 5 mm) holds the whole 26x41x41 resampled crop, so every
# step sees the whole spleen (smaller patches with flips stayed near an all-foreground prediction, in
# runs made before the batch-norm fix of daff6e1).
# Training writes the weights every 10 steps (a usable file when the time limit stops it) and, with
# --keep-best, those after the 10-step window of best mean training Dice; both are segmented.
# Overrides: STEPS, LR, PATCH (D,H,W), BATCH, DEFORM_SIGMA, KEEP_BEST, NO_FLIP=1.
# Recorded run (NO_FLIP=1, llvmpipe, 2 cores, commit f921a27): training Dice 0.95, mask Dice 0.941 in 28
# minutes (its log was not committed: *.log is ignored).
# Needs `npm run build` first (runs dist/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${MEDSEG_DATA:-$root/data}"
out="${1:-$root/vnet-spleen-run}"
mkdir -p "$out"
img="$data/ct_spleen_msd09_crop.nii.gz"
lbl="$data/ct_spleen_msd09_crop_label.nii.gz"
w="$out/vnet-tiny-spleen.safetensors"
# --save-every keeps a usable checkpoint when the time limit stops training
timeout "$(( ${MINUTES:-30} * 60 ))" node "$root/dist/cli/main.js" train --model vnet --config tiny \
  --spacing 3.2,3.2,5 --patch "${PATCH:-32,48,48}" --batch-size "${BATCH:-1}" --steps "${STEPS:-240}" --save-every 10 --keep-best "${KEEP_BEST:-10}" --lr "${LR:-3e-3}" --lr-schedule poly --seed 7 --deform-sigma "${DEFORM_SIGMA:-1}" ${NO_FLIP:+--no-flip} \
  --image "$img" --label "$lbl" -o "$w" 2>&1 | tee "$out/train.log" || true
# the final weights and those of the best 10-step window of training Dice (--keep-best)
node "$root/dist/cli/main.js" segment --model vnet --weights "$w" "$img" -o "$out/mask.nii.gz" --json | tee "$out/segment.json"
node "$root/scripts/dice.mjs" "$out/mask.nii.gz" "$lbl" | tee "$out/dice.json"
node "$root/dist/cli/main.js" segment --model vnet --weights "${w%.safetensors}.best.safetensors" "$img" -o "$out/mask-best.nii.gz" --json | tee "$out/segment-best.json"
node "$root/scripts/dice.mjs" "$out/mask-best.nii.gz" "$lbl" | tee "$out/dice-best.json"
