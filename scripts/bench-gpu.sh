#!/usr/bin/env bash
# One command for a machine with a GPU and its Vulkan driver: builds, checks that Dawn opens the
# real GPU (MEDSEG_ADAPTER=gpu refuses a software fallback), re-measures the tuned variant table
# for matmul, conv and attention (--tune) and then runs the whole suite (every family at the
# models' shapes, --full: nothing skipped) with the tuned table, in Node (Dawn), and the comparison
# with TF.js and ONNX Runtime Web in Chromium on the same GPU (--compare).
# Writes, under OUT (default bench-results/<date>, git-ignored):
#   tuned-<adapter>.json    the tuned table (also copy it to kernels-bench/tuned/ to ship it)
#   bench-<adapter>.json / .md / .svg   the table, its Markdown and the roofline chart
#   bench-<adapter>-compare.json / .md  medseg against TF.js and ONNX Runtime Web (Chromium)
#   models-<adapter>.json / .md   each model's forward and forward+backward (--models --full)
#   tune.log, bench.log, models.log   the runs' output
# Usage: scripts/bench-gpu.sh [OUT] [FAMILY ...]   (e.g. scripts/bench-gpu.sh /tmp/b matmul conv)
# Environment: MEDSEG_BENCH_BUDGET seconds of warm timing per row (default 0.2);
# MEDSEG_BENCH_COMPARE=0 skips the browser comparison (Node only, no Chromium needed);
# MEDSEG_BENCH_MODELS=0 skips the model benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}"
shift || true
FAMILIES=("$@")
BUDGET="${MEDSEG_BENCH_BUDGET:-0.2}"
mkdir -p "$OUT"
export MEDSEG_ADAPTER="${MEDSEG_ADAPTER:-gpu}"

[ -d node_modules ] || npm ci
node scripts/build.mjs --bench
KEY=$(node -e "import('medseg/gpu').then(async (g) => { await g.init(); console.log(g.adapterKey()); process.exit(0); }).catch((e) => { console.error(e.message); process.exit(1); })")
echo "adapter: $KEY; results in $OUT"
export MEDSEG_TUNE_FILE="$OUT/tuned-$KEY.json"

# 1. the tuner: every variant of matmul, conv and attention at the models' shapes
TUNE_FAMILIES=()
for f in matmul conv attention; do
  if [ ${#FAMILIES[@]} -eq 0 ] || [[ " ${FAMILIES[*]} " == *" $f "* ]]; then TUNE_FAMILIES+=("$f"); fi
done
if [ ${#TUNE_FAMILIES[@]} -gt 0 ]; then
  node dist-bench/main.js --tune --full --budget "$BUDGET" "${TUNE_FAMILIES[@]}" --json "$OUT/tune-$KEY.json" 2>&1 | tee "$OUT/tune.log"
fi

# 2. the whole suite with the tuned table (rows mark the tuned picks), then the peers
#    (--compare: TF.js and ONNX Runtime Web in Chromium on the GPU; MEDSEG_BENCH_COMPARE=0 skips it)
COMPARE=()
if [ "${MEDSEG_BENCH_COMPARE:-1}" != 0 ]; then COMPARE=(--compare); export MEDSEG_BROWSER_GPU="${MEDSEG_BROWSER_GPU:-1}"; fi
node dist-bench/main.js --full --budget "$BUDGET" "${COMPARE[@]}" "${FAMILIES[@]}" --json "$OUT/bench-$KEY.json" 2>&1 | tee "$OUT/bench.log"

# 3. the models: each one's forward and forward+backward at full size with random weights (V-Net
#    paper 128x128x64, TransUNet 224x224, MedSAM vit_b encoder 1024x1024 and decoder per box):
#    cold and warm time, GFLOP, share of the FMA peak, peak GPU memory. MEDSEG_BENCH_MODELS=0 skips it.
if [ "${MEDSEG_BENCH_MODELS:-1}" != 0 ]; then
  node dist-bench/main.js --models --full --budget "$BUDGET" --json "$OUT/models-$KEY.json" 2>&1 | tee "$OUT/models.log"
fi

echo
echo "written: $OUT/bench-$KEY.{json,md,svg}"
if [ -f "$OUT/models-$KEY.json" ]; then echo "models: $OUT/models-$KEY.{json,md}"; fi
if [ -f "$OUT/tuned-$KEY.json" ]; then
  echo "tuned table: $OUT/tuned-$KEY.json; to ship it: cp $OUT/tuned-$KEY.json kernels-bench/tuned/$KEY.json"
fi
