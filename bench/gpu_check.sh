#!/usr/bin/env bash
# The device check for a session lent a GPU: CUDA tests + the train benchmark (speed, MFU, convergence) in
# one prepared run, every result written under $OUT.
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

# Most important first (the issue's figures), each step under its own timeout (540 s in all), so a step
# that hangs or overruns costs only its share and the rest still report.
step "train speed: batch $B per identity, eager"
timeout 230 $PY bench/train.py --device "$DEVICE" --batch $B --iters $IT --warmup $WU --repeats $REP 2>&1 \
  | tee "$OUT/train_bench.txt"

if [ "$DEVICE" = cuda ]; then
  # reduce-overhead: CUDA graphs, no per-kernel launch cost (the models are small: launches can dominate)
  step "train speed: ours with torch.compile mode reduce-overhead"
  timeout 110 $PY bench/train.py --device cuda --batch $B --iters $IT --warmup $WU --repeats 1 \
    --compile reduce-overhead 2>&1 | tee "$OUT/train_bench_compile_reduce-overhead.txt"
  # the compiled variants of these tests compile again (minutes): the compile bench above covers that path
  step "CUDA tests (eager)"
  timeout 70 $PY -m pytest -q -p no:cacheprovider -m cuda -k "not default and not reduce" tests/test_train.py 2>&1 \
    | tee "$OUT/cuda_tests.txt"
fi

step "convergence: fp32 vs auto precision, $CONV iterations"
timeout 60 $PY bench/train.py --device "$DEVICE" --batch $B --convergence $CONV --json-out "$OUT/train_convergence.json" 2>&1 | tee "$OUT/train_convergence.txt"

if [ "$DEVICE" = cuda ]; then
  step "train speed: ours with torch.compile mode default"
  timeout 70 $PY bench/train.py --device cuda --batch $B --iters $IT --warmup $WU --repeats 1 --compile default 2>&1 \
    | tee "$OUT/train_bench_compile_default.txt"
fi

step "done"
