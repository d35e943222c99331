#!/usr/bin/env bash
# Training and GPU benchmarks on a lent GPU machine, one device call per batch of runs.
#
# Here, before a call (see README.md):
#   python benchmarks/gpu/pack_training_data.py ../shared/data .pack/data     (~47 MiB)
#   wheels of segmentation-models-pytorch, nibabel and pynrrd in .whl/
#   bash benchmarks/gpu/tree.sh park       (the bundled weights must not travel: 64 MiB a call)
# There:  bash benchmarks/gpu/session.sh RUN [RUN ...]      (carry .pack and .whl)
# After:  bash benchmarks/gpu/tree.sh restore
#
# RUN, in the order given (one after the other, each with the whole GPU):
#   holdout-CASE   the shipped recipe with CASE held out, --time-limit $MINUTES; scored per case at
#                  native resolution through the engine
#   shipped        the product model on every packed case, with exactly as many steps as the first
#                  holdout run chose (the same recipe), or --time-limit $MINUTES when there was none
#   throughput     benchmarks/training_throughput.py on CUDA (data pipeline and training step)
#   bench          benchmarks/segment_speed_memory.py on CUDA with the shipped model of this call
#                  (else the first holdout model): GPU case and long cases built from packed ircadb_07
# Every result lands in $OUT as soon as its run ends, so a call cut off at its limit still returns
# the runs it finished: session.log, runs.tar.gz (logs, cards, metrics, plots, benchmark JSON) and
# the shipped weights as weights.part-* (join with `cat weights.part-* > model.safetensors`).
set -uo pipefail
OUT=${OUT:-/tmp/out}
RUNS=/tmp/runs
DATA=${DATA:-.pack/data}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-3.5}   # time limit of each holdout (and of a shipped run without one)
EPOCHS=${EPOCHS:-10}
EXTRA=${EXTRA:-}          # more train options, e.g. "--batch-size 2 --crop-size 64" for a CPU dry run
BENCH=${BENCH:-gpu long600}
mkdir -p "$RUNS" "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
if [ -n "$(ls .whl/*.whl 2>/dev/null)" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true

pack_results() {  # everything but caches and weights, rewritten after every run
  tar czf "$OUT/runs.tar.gz.partial" -C "$RUNS" --exclude='*.safetensors' --exclude='cache' \
    --exclude='checkpoint.pt' . && mv "$OUT/runs.tar.gz.partial" "$OUT/runs.tar.gz"
}

card_value() {  # card_value CARD KEY: a value of the card's training record
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['training'][sys.argv[2]])" "$1" "$2"
}

train() {  # train NAME OPTIONS...
  local name=$1; shift
  echo "== $name: $(date +%T)"
  python3 -m LiverTumorSegLib.cli train "$DATA" -o "$RUNS/$name" --device "$DEVICE" $EXTRA "$@" \
    > "$RUNS/$name.log" 2>&1 || echo "run $name failed: see $name.log"
  tail -n 4 "$RUNS/$name.log"
}

first_holdout=""
for run in "$@"; do
  case $run in
    holdout-*)
      train "$run" --validation "${run#holdout-}" --epochs "$EPOCHS" --time-limit "$MINUTES"
      [ -z "$first_holdout" ] && [ -f "$RUNS/$run/model_card.json" ] && first_holdout=$RUNS/$run ;;
    shipped)
      if [ -n "$first_holdout" ]; then
        steps=$(card_value "$first_holdout/model_card.json" steps)
        train shipped --folds 1 --epochs "$EPOCHS" --steps-per-epoch $(( (steps + EPOCHS - 1) / EPOCHS ))
      else
        train shipped --folds 1 --epochs "$EPOCHS" --time-limit "$MINUTES"
      fi
      if [ -f "$RUNS/shipped/model_card.json" ]; then
        python3 -m LiverTumorSegLib.cli evaluate-model Resources/Sample --device "$DEVICE" \
          --model "$RUNS/shipped/model_card.json" -o "$RUNS/shipped/demo_eval" \
          > "$RUNS/shipped_demo_eval.log" 2>&1 || echo "demo evaluation failed"
        split -b 15M "$RUNS/shipped/"*.safetensors "$OUT/weights.part-"
      fi ;;
    throughput)
      echo "== throughput: $(date +%T)"
      python3 benchmarks/training_throughput.py --device "$DEVICE" --data "$DATA" \
        --output "$RUNS/bench" > "$RUNS/throughput.md" 2> "$RUNS/throughput.log" \
        || echo "throughput benchmark failed"
      cat "$RUNS/throughput.md" ;;
    bench)
      echo "== bench: $(date +%T)"
      card=$RUNS/shipped/model_card.json
      [ -f "$card" ] || card=$first_holdout/model_card.json
      if [ -f "$card" ]; then
        python3 benchmarks/segment_speed_memory.py --device "$DEVICE" --data "$DATA" --model "$card" \
          --cases $BENCH --pad-in-plane 512 --output "$RUNS/bench" > "$RUNS/bench.md" \
          2> "$RUNS/bench.log" || echo "segment benchmark failed"
        cat "$RUNS/bench.md"
      else
        echo "bench needs a model trained in this call (the bundled weights stay here)"
      fi ;;
    *) echo "unknown run $run"; exit 2 ;;
  esac
  pack_results
done
ls -la "$OUT"
