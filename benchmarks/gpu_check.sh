#!/usr/bin/env bash
# GPU readiness check: what the CPU test suite cannot exercise (CUDA soft-NMS, AMP training with
# 16-chip batches and plain BN, the training/inference benchmarks on CUDA). Prints every figure.
# Budget: at most about 8 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root; uses .venv or $PYTHON
#
# Exits with status 3 and a message when no CUDA device is visible (e.g. on the CPU machines).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-output}/gpu_check"
mkdir -p "$OUT"

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)" 2>/dev/null; then
  echo "gpu_check: no CUDA device visible to $PY (torch.cuda.is_available() is False): nothing to check here." >&2
  exit 3
fi
"$PY" -c "import torch; print('gpu_check:', torch.cuda.get_device_name(0), 'torch', torch.__version__, 'CUDA', torch.version.cuda)"
status=0
step() {  # step NAME TIMEOUT_S COMMAND...: run with a time limit, report its exit status and time
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo; echo "=== $name (limit ${limit}s) ==="
  timeout "$limit" "$@"
  local rc=$?
  echo "=== $name: exit $rc, $((SECONDS - start)) s ==="
  [ $rc -eq 0 ] || status=1
}

# 1. The CUDA-only tests (skipped on CPU machines).
step "CUDA tests" 60 "$PY" -m pytest -q -rs tests/inference/test_soft_nms.py

# 2. 200 iterations of the R-50 FPN SNIPER config with AMP on the built-in dataset (random init:
#    no ImageNet weights here), 16 chips of 512 px per iteration; loss finite, chips/s.
step "R-50 FPN SNIPER, AMP, 200 iterations" 240 "$PY" train_net.py \
  --config-file configs/sniper_R_50_FPN_1x.yaml \
  MODEL.WEIGHTS "" MODEL.ROI_HEADS.NUM_CLASSES 3 \
  DATASETS.TRAIN "('sniper_shapes_train',)" DATASETS.TEST "()" \
  SOLVER.IMS_PER_BATCH 16 SOLVER.BASE_LR 0.01 SOLVER.WARMUP_ITERS 50 SOLVER.MAX_ITER 200 SOLVER.STEPS "(150,)" \
  SOLVER.CHECKPOINT_PERIOD 100000 SOLVER.AMP.ENABLED True DATALOADER.NUM_WORKERS 4 \
  OUTPUT_DIR "$OUT/r50_amp"
"$PY" - "$OUT/r50_amp/metrics.json" <<'EOF' || status=1
import json, math, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
losses = [r["total_loss"] for r in rows if "total_loss" in r]
times = [r["time"] for r in rows if "time" in r]
ok = bool(losses) and all(math.isfinite(v) for v in losses)
print(f"gpu_check: {len(losses)} logged losses, first {losses[0]:.3f}, last {losses[-1]:.3f}, all finite: {ok}")
if times:
    s = sorted(times)[len(times) // 2]
    print(f"gpu_check: median {s:.3f} s/iteration = {16 / s:.1f} chips/s (16 chips of 512 px)")
sys.exit(0 if ok else 1)
EOF

# 3. Training cost per image (SNIPER chips vs single-scale vs pyramid) and inference on CUDA.
step "bench_train --device cuda" 150 "$PY" benchmarks/bench_train.py --device cuda --depth 50 --images 8
step "bench_inference --device cuda" 90 "$PY" benchmarks/bench_inference.py --device cuda --model r50

echo
if [ $status -eq 0 ]; then echo "gpu_check: all steps passed"; else echo "gpu_check: some steps FAILED (see above)"; fi
exit $status
