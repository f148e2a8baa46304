#!/usr/bin/env bash
# The one prepared device run (lent H100/H200, no network): train the `small` preset with the project's own
# `a3gan train` for MIN minutes of wall time, then bring back the EMA generator (split in <16 MiB parts), the
# metrics and the last sample grid. Needs, in the carried folder .devcarry/: celeba/ (official layout) and dlib's
# dlib_face_recognition_resnet_model_v1.dat. Usage on the device: MIN=4 bash scripts/gpu_train_small.sh
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 A3GAN_CACHE_DIR=/tmp/a3cache
OUT=${OUT:-/tmp/out}; MIN=${MIN:-4}; BATCH=${BATCH:-64}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/env.txt"
python3 -c "import torch, accelerate; print('torch', torch.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/env.txt"
python3 -m a3gan.cli train --config small --data .devcarry/celeba --out /tmp/run --device cuda \
  --identity dlib --identity-weights .devcarry/dlib_face_recognition_resnet_model_v1.dat --steps 100000 \
  --set train.batch_size="$BATCH" --set train.max_minutes="$MIN" --set train.log_every=50 \
  --set train.sample_every=1000 --set train.ckpt_every=2000 --set train.num_workers=4 --no-progress 2>&1 | tail -5
cp /tmp/run/metrics.jsonl /tmp/run/config.yaml "$OUT/"
cp "$(ls /tmp/run/samples/*.png | tail -1)" "$OUT/last_sample.png"
python3 scripts/ckpt_transfer.py split /tmp/run "$OUT"
tail -1 /tmp/run/metrics.jsonl
