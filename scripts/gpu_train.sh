#!/usr/bin/env bash
# The one prepared device run (a lent H100/H200, no network, ~10 minutes): `a3gan train` run A alone on the GPU
# (run B beside it with RUN_B=1), then bring back what fits through the device's return channel (8 files, 16 MiB
# each, 64 MiB in all).
#   A: the shipped model's line continued at a GPU batch: --config A_CONFIG (default: the config in A_INIT's
#      metadata), init_from A_INIT (a checkpoint with G_ema and D; default the shipped model), batch BATCH_A
#      (default 512), MIN_A minutes.
#      Back: the EMA generators of two intermediate checkpoints and of the last one (float16), the last one's D
#      (the last checkpoint comes as two parts: merge them with `ckpt_transfer.py merge`), metrics and last samples.
#   B: the `paper` preset (128 px) from scratch with the recipe of MODEL_CARD.md "What would make it good",
#      batch BATCH_B, MIN_B minutes. Its weights (135 MB in float16) cannot come back: metrics and samples only.
# Needs in the carried folder .devcarry/: celeba.tgz (CelebA in the official layout, packed) and dlib.safetensors
# (dlib's weights converted, float16): `bash scripts/prepare_devcarry.sh` builds both and checks the 64 MiB carry limit.
# A starts from the shipped model (A_INIT) with the config in its metadata (A_CONFIG); point both elsewhere to
# continue another checkpoint (`ship_model.py --with-d --half` makes one with G_ema + D; on 2026-11-29 such a file
# replaced the package's model file for the duration of the call to stay under the limit; `git checkout` it after).
# Usage on the device:
#   export OUT; bash scripts/gpu_train.sh     (DEVICE=cpu MIN_A=0.2 BATCH_A=8 ... for a smoke run anywhere)
# Run one job per card if you can: A ran 2.5x faster alone than beside B (docs/performance.md). B runs only with
# RUN_B=1. Since a3gan.filters.resize_bilinear (2026-11-30) A's config trains at 6,038 images/s at batch 512 on an
# H200 (0.34 s per G step, measured by benchmarks/train_profile.py), 4.4x the 1,361 before it.
# If A runs out of GPU memory before its first checkpoint, it is started once more at half the batch.
# PROFILE_B=1 first profiles B's recipe (benchmarks/train_profile.py, ~1 min; $OUT/profile_B.md); A's limits count
# from after it, so shorten A to stay inside one 600 s call: PROFILE_B=1 MIN_A=6.5 HARD_A=430.
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 A3GAN_CACHE_DIR=/tmp/a3cache A3GAN_CACHE=/tmp/a3cache OMP_NUM_THREADS=4
OUT=${OUT:-/tmp/out}; C=${C:-.devcarry}; DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
A_INIT=${A_INIT:-src/a3gan/assets/a3gan-small-celeba.safetensors}; A_CONFIG=${A_CONFIG:-$A_INIT}  # its metadata's config
MIN_A=${MIN_A:-8}; MIN_B=${MIN_B:-7.5}; BATCH_A=${BATCH_A:-512}; BATCH_B=${BATCH_B:-32}
HARD_A=${HARD_A:-555}; HARD_B=${HARD_B:-535}; CKPT_A=${CKPT_A:-250}; B_PRESET=${B_PRESET:-paper}
RUN_B=${RUN_B:-0}; PROFILE_B=${PROFILE_B:-0}; WORKERS=${WORKERS:-6}   # B off by default: one job per card (A ran 2.5x faster alone)
RA=/tmp/runA; RB=/tmp/runB
rm -rf "$RA" "$RB"; mkdir -p "$OUT"
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
$PY -c "import torch, accelerate, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'accelerate', accelerate.__version__, 'numpy', numpy.__version__, 'gpu', torch.cuda.is_available())"
DATA=$C/celeba
if [[ -f $C/celeba.tgz ]]; then  # carried packed: 10,000 small files take more room one by one
  mkdir -p /tmp/data && tar -xzf "$C/celeba.tgz" -C /tmp/data && DATA=/tmp/data/celeba
fi
common=(--data "$DATA" --device "$DEVICE" --identity dlib --identity-weights "$C/dlib.safetensors" --no-progress)

# A_SET: extra key=value settings for run A, space-separated; A_WARMUP: D (and Dp) steps before its first G step.
# The eleventh session's CPU runs suggest (docs/eval/selection.md):
#   A_SET="loss.lambda_proj=1 loss.proj_net=onet loss.deid_margin=0.76" A_WARMUP=200
#   with the FaceRes guard (prepare_devcarry.sh carried it): add "train.guard=faceres
#   train.guard_weights=.devcarry/faceres.safetensors loss.lambda_guard=3" to A_SET
a_set=(); for kv in ${A_SET:-}; do a_set+=(--set "$kv"); done
# run A: batch, minutes of training, hard limit in seconds (the loop stops itself after the minutes)
run_a() {
  timeout -s INT "$3" $PY -m a3gan.cli train --config "$A_CONFIG" --out "$RA" "${common[@]}" "${a_set[@]}" \
    --set train.init_from="$A_INIT" --set train.d_warmup_steps="${A_WARMUP:-0}" --set train.batch_size="$1" \
    --set train.max_minutes="$2" --set train.log_every=50 --set train.sample_every=250 \
    --set train.ckpt_every="$CKPT_A" --set train.keep_ckpts=100 --set train.num_workers="$WORKERS" > /tmp/A.log 2>&1
}
# B's recipe: the `paper` preset with MODEL_CARD.md's "What would make it good" settings
b_recipe=(--set model.upsample=bilinear --set model.upsample_last=resize --set model.chroma_blur=1.0
  --set loss.att2_form=target --set loss.lambda_div=10 --set loss.div_pool=4 --set loss.deid_lowpass=2
  --set loss.deid_margin=0.85 --set loss.deid_jitter=2 --set loss.lambda_deid=30 --set loss.lambda_att2=2
  --set loss.lambda_spectral=0.5 --set train.n_critic=2 --set train.batch_size="$BATCH_B")
if (( PROFILE_B )); then  # about a minute: where B's step time goes, before anything trains
  cabs=$(cd "$C" && pwd)
  (cd benchmarks && timeout 150 $PY train_profile.py --config "$B_PRESET" "${b_recipe[@]}" --device "$DEVICE" \
    --identity-weights "$cabs/dlib.safetensors" --steps 3 --top 10 --out "$OUT/profile_B.md" > /tmp/profile_B.log 2>&1) \
    || echo "profile of B failed: $(tail -1 /tmp/profile_B.log)"
fi

ta=$(date +%s)
run_a "$BATCH_A" "$MIN_A" "$HARD_A" &
pa=$!
pb=
(( RUN_B )) && { timeout -s INT "$HARD_B" $PY -m a3gan.cli train --config "$B_PRESET" --out "$RB" "${common[@]}" \
  "${b_recipe[@]}" --set train.max_minutes="$MIN_B" --set train.log_every=20 --set train.sample_every=250 \
  --set train.ckpt_every=1000000 --set train.num_workers="$WORKERS" > /tmp/B.log 2>&1 &
pb=$!; }
# GPU load at 1, 5 and 9 minutes (utilisation %, memory MiB)
(for m in 1 3 5; do sleep 120; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null \
   | sed "s/^/gpu at $((2*m-1))+ min: /"; done) &
pm=$!
wait $pa; ra=$?
# Out of memory before the first checkpoint: once more at half the batch, in the time that is left.
if (( ra != 0 )) && grep -qi "out of memory" /tmp/A.log && ! ls "$RA"/checkpoints/step_*.safetensors >/dev/null 2>&1; then
  left=$(( HARD_A - ($(date +%s) - ta) )); BATCH_A=$(( BATCH_A / 2 ))
  echo "A ran out of memory; again at batch $BATCH_A for $left s"; mv /tmp/A.log /tmp/A_oom.log; rm -rf "$RA"
  run_a "$BATCH_A" "$(( (left - 45) / 60 )).$(( ((left - 45) % 60) * 10 / 60 ))" "$left"
  ra=$?
fi
rb=skipped; [[ -n $pb ]] && { wait $pb; rb=$?; }
kids=$(pgrep -P $pm); kill $pm $kids 2>/dev/null
echo "A exit $ra, B exit $rb, $(( $(date +%s) - t0 )) s"
tail -3 /tmp/A.log; [[ -n $pb ]] && tail -3 /tmp/B.log

# ---- what comes back -----------------------------------------------------------------------------------------
mapfile -t ck < <(ls "$RA"/checkpoints/step_*.safetensors 2>/dev/null | sort)
n=${#ck[@]}
if (( n > 0 )); then
  picks=()
  (( n >= 3 )) && picks+=("${ck[n/3]}")
  (( n >= 2 )) && picks+=("${ck[(2*n)/3]}")
  for c in $(printf '%s\n' "${picks[@]}" | sort -u); do
    [[ $c == "${ck[n-1]}" ]] && continue
    $PY scripts/ship_model.py "$c" "$OUT/A_$(basename "$c")" --half --note "GPU run A, EMA generator" > /dev/null
  done
  last=${ck[n-1]}
  $PY scripts/ship_model.py "$last" "/tmp/A_last_$(basename "$last")" --with-d --half \
    --note "GPU run A, last checkpoint, EMA generator and D" > /dev/null
  $PY scripts/ckpt_transfer.py split "/tmp/A_last_$(basename "$last")" "$OUT" --max-mb 15
else
  echo "A wrote no checkpoint"
fi
for r in A B; do
  d=/tmp/run$r
  [[ -f $d/metrics.jsonl ]] && cp "$d/metrics.jsonl" "$OUT/${r}_metrics.jsonl"
  s=$(ls "$d"/samples/*.png 2>/dev/null | sort | tail -1)
  [[ -n $s ]] && cp "$s" "$OUT/${r}_$(basename "$s")"
  $PY - "$d" "$r" <<'EOF'
import json, statistics, sys
from pathlib import Path
d, r = Path(sys.argv[1]), sys.argv[2]
rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] if (d / "metrics.jsonl").is_file() else []
rows = [x for x in rows if "perf/img_per_s" in x]
if not rows:
    sys.exit(print(f"{r}: no metrics"))
ips = [x["perf/img_per_s"] for x in rows[1:] or rows]
last = rows[-1]
keys = ("g/deid_cos", "d/wdist", "g/adv", "g/att2", "d/att1")
print(f"{r}: step {last['step']}, img/s median {statistics.median(ips):.0f} (min {min(ips):.0f}, max {max(ips):.0f}),"
      f" s/G step {statistics.median(x['perf/s_per_g_step'] for x in rows[1:] or rows):.3f}, "
      + ", ".join(f"{k} {last[k]:.3f}" for k in keys if k in last))
EOF
done
ls -la "$OUT"
echo "total $(( $(date +%s) - t0 )) s"
