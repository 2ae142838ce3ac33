#!/usr/bin/env bash
# The device check for a session lent a GPU: CUDA tests + the train benchmark (speed, MFU, convergence) in
# one prepared run, every result written under $OUT. Each step has its own timeout (570 s in all), so one
# that hangs or fails costs only its share and the rest still report.
#
# Here, once (dlib makes the faces; the GPU box has no dlib models):
#   .venv/bin/python bench/train.py --make-faces .gpu/faces      (.gpu/ is git-ignored, so it travels by carry)
# Then: device run, carry [".gpu"], command "bash bench/gpu_check.sh", timeout_s 600.
# The GPU box has torch, timm, opencv, safetensors, rich, typer, matplotlib and pytest, but no PyAV,
# cryptography, c2pa or dlib: nothing here needs them (tests/test_train.py checks training without them;
# a dry run with them hidden: a sitecustomize.py raising ModuleNotFoundError, on PYTHONPATH, which this keeps).
# On the CPU for a dry run of the script itself: DEVICE=cpu QUICK=1 OUT=/tmp/gc bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/veriswap_gpu_check}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 VERISWAP_FACES_CACHE=${VERISWAP_FACES_CACHE:-$PWD/.gpu/faces}
if [ ! -f "$VERISWAP_FACES_CACHE/astronaut_256/faces.json" ]; then
  echo "no faces in $VERISWAP_FACES_CACHE: run bench/train.py --make-faces .gpu/faces here first" >&2; exit 2
fi
# QUICK=1: a few iterations only, to check the script (not for figures)
if [ "${QUICK:-0}" = 1 ]; then IT=2; WU=1; REP=1; CONV=6; B=4; else IT=20; WU=3; REP=3; CONV=300; B=64; fi
step() { echo "== $1 ($(date -u +%T))"; }

step "machine"
{ nvidia-smi 2>/dev/null || true; $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } \
  2>&1 | tee "$OUT/machine.txt"

if [ "$DEVICE" = cuda ]; then
  step "CUDA tests"
  timeout 110 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_train.py 2>&1 | tee "$OUT/cuda_tests.txt"
fi

step "train speed: batch $B per identity, eager"
timeout 180 $PY bench/train.py --device "$DEVICE" --batch $B --iters $IT --warmup $WU --repeats $REP 2>&1 \
  | tee "$OUT/train_bench.txt"

if [ "$DEVICE" = cuda ]; then
  # reduce-overhead: CUDA graphs, no per-kernel launch cost (the models are small: launches can dominate)
  for MODE in default reduce-overhead; do
    step "train speed: ours with torch.compile mode $MODE"
    timeout 100 $PY bench/train.py --device cuda --batch $B --iters $IT --warmup $WU --repeats 1 --compile $MODE 2>&1 \
      | tee "$OUT/train_bench_compile_$MODE.txt"
  done
fi

step "convergence: fp32 vs auto precision, $CONV iterations"
timeout 80 $PY bench/train.py --device "$DEVICE" --batch $B --convergence $CONV --json-out "$OUT/train_convergence.json" 2>&1 | tee "$OUT/train_convergence.txt"
step "done"
