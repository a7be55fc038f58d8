#!/usr/bin/env bash
# The GPU figures in one prepared run (README, "Benchmarks"): the seed model at 64x64 (batch 32, Adadelta)
# and the default U-Net in float32 and mixed_bfloat16, images/s and peak device memory, on the JAX backend.
#   bash bench/gpu_figures.sh                 # on a GPU machine with JAX and Keras installed
#   SIZE=16 STEPS=2 bash bench/gpu_figures.sh # a quick try on a CPU
set -u
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
SIZE=${SIZE:-64} STEPS=${STEPS:-20}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
$PY -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
$PY bench/train_throughput.py --archs seed --size "$SIZE" --batch-size 32 --optimizer adadelta --steps "$STEPS"
for precision in float32 mixed_bfloat16; do
  for batch in 16 256; do
    $PY bench/train_throughput.py --archs unet --size "$SIZE" --batch-size "$batch" --optimizer adam \
      --precision "$precision" --steps "$STEPS"
  done
done
