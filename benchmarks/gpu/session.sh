#!/usr/bin/env bash
# Training and GPU benchmarks on a lent GPU machine, in one call per batch of runs.
#
# Here, once:   python benchmarks/gpu/pack_training_data.py ../shared/data .pack/data   (~47 MiB)
#               (wheels of segmentation-models-pytorch, nibabel and pynrrd in .whl/, see README.md)
# There:        bash benchmarks/gpu/session.sh RUN [RUN ...]     (carry .pack and .whl)
#
# RUN is one of
#   shipped            the product model: every packed case, no held-out validation
#   holdout-CASE       the shipped recipe with CASE held out (per-case Dice at native resolution)
#   baseline-CASE      plain baseline: one window, no 2.5D, no histogram, no synthetic tumors
#   synth-CASE         baseline + synthetic tumors (ablation)
#   deeplab-CASE       DeepLabV3+ / ResNet101 with the shipped recipe
#   vgg-CASE           U-Net / VGG16 with the shipped recipe
#   bench              GPU inference benchmark of the shipped model (or of a worst-case random one)
# Runs given together train concurrently on the one GPU. EPOCHS and STEPS override the config.
# Results land in $OUT: runs.tar.gz (logs, cards, plots, metrics) and the shipped weights in parts
# of 15 MiB (weights.part-aa, ...), to be joined with `cat weights.part-* > model.safetensors`.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
DATA=.pack/data
RUNS=/tmp/runs
OUT=${OUT:-/tmp/out}
EPOCHS=${EPOCHS:-20}
STEPS=${STEPS:-150}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-4}   # loader processes per run; keep runs x workers <= the machine's cores
EXTRA=${EXTRA:-}   # more train options, e.g. "--batch-size 2 --crop-size 64" for a CPU smoke run
mkdir -p "$RUNS" "$OUT"

train() {
  local name=$1; shift
  python3 -m LiverTumorSegLib.cli train "$DATA" -o "$RUNS/$name" --epochs "$EPOCHS" \
    --steps-per-epoch "$STEPS" --workers "$WORKERS" --device "$DEVICE" $EXTRA "$@" > "$RUNS/$name.log" 2>&1 \
    || echo "run $name failed: see $name.log"
}

for run in "$@"; do
  case $run in
    shipped)     train shipped --folds 1 & ;;
    holdout-*)   train "$run" --validation "${run#holdout-}" & ;;
    baseline-*)  train "$run" --baseline --validation "${run#baseline-}" & ;;
    synth-*)     train "$run" --baseline --synthetic-tumor-rate 0.5 --validation "${run#synth-}" & ;;
    deeplab-*)   train "$run" --arch deeplabv3plus-resnet101 --validation "${run#deeplab-}" & ;;
    vgg-*)       train "$run" --arch unet-vgg16 --validation "${run#vgg-}" & ;;
    bench)       ;;
    *)           echo "unknown run $run"; exit 2 ;;
  esac
done
wait

card=$RUNS/shipped/model_card.json
if [ -f "$card" ]; then
  python3 -m LiverTumorSegLib.cli evaluate-model Resources/Sample --model "$card" --device "$DEVICE" \
    -o "$RUNS/shipped/demo_eval" > "$RUNS/shipped_demo_eval.log" 2>&1 || true
  split -b 15M "$RUNS/shipped/"*.safetensors "$OUT/weights.part-"
fi
if [[ " $* " == *" bench "* ]]; then
  model=(); [ -f "$card" ] && model=(--model "$card")
  python3 benchmarks/segment_speed_memory.py --device "$DEVICE" --data "$DATA" "${model[@]}" \
    --output "$RUNS/bench" > "$RUNS/bench.md" 2> "$RUNS/bench.log" || true
fi
tar czf "$OUT/runs.tar.gz" -C "$RUNS" --exclude='*.safetensors' --exclude='cache' \
  --exclude='predictions' --exclude='validation' --exclude='*.npy' .
ls -la "$OUT"
