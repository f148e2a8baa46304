#!/usr/bin/env bash
# Build .devcarry/, the folder scripts/gpu_train.sh reads on the lent GPU machine, and check that it travels.
#   bash scripts/prepare_devcarry.sh [CELEBA_DIR]      (default ../shared/data/celeba)
# Writes .devcarry/celeba.tgz (the dataset packed: 10,000 loose files cost the carry more than their bytes) and
# .devcarry/dlib.safetensors (dlib's ResNet converted, float16), .devcarry/faceres.safetensors when $FACERES exists,
# adds /.devcarry/ to .git/info/exclude, and prints
# the size of what would travel (tracked + untracked-not-ignored files + .devcarry/; the device tool's limit is
# 64 MiB). Run A's config and init checkpoint default to the shipped model, so nothing else is needed. Then:
#   device run, carry [".devcarry"], timeout_s 590:  export OUT; bash scripts/gpu_train.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
DATA=${1:-../shared/data/celeba}
PY=${PY:-.venv/bin/python}
LIMIT_MB=64
if [[ ! -d $DATA/img_align_celeba ]]; then
  echo "error: $DATA is not a CelebA folder (no img_align_celeba/)" >&2; exit 2
fi
[[ -x $PY ]] || { echo "error: $PY not found (run make venv, or set PY)" >&2; exit 2; }
grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || echo '/.devcarry/' >> .git/info/exclude
mkdir -p .devcarry
parent=$(cd "$(dirname "$DATA")" && pwd); base=$(basename "$DATA")
tar -czf .devcarry/celeba.tgz.tmp -C "$parent" --transform "s,^$base,celeba," "$base"
mv .devcarry/celeba.tgz.tmp .devcarry/celeba.tgz
"$PY" -c "from a3gan.identity.dlib_resnet import export_converted as e; e(None, '.devcarry/dlib.safetensors', half=True)"
# the guard recognizer (train.guard=faceres), when it has been converted here (scripts/convert_faceres.py; 7 MB)
FACERES=${FACERES:-$HOME/.cache/a3gan/faceres.safetensors}
if [[ -f $FACERES ]]; then
  cp "$FACERES" .devcarry/faceres.safetensors
  echo "carrying $FACERES as .devcarry/faceres.safetensors (A_SET=\"train.guard=faceres train.guard_weights=.devcarry/faceres.safetensors\")"
else
  rm -f .devcarry/faceres.safetensors
fi
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
carry=$(du -sb .devcarry | cut -f1)
total=$(( (tree + carry) / 1048576 ))
echo "travels: working tree $(( tree / 1048576 )) MiB + .devcarry $(( carry / 1048576 )) MiB = $total MiB (limit $LIMIT_MB)"
if (( total >= LIMIT_MB )); then
  echo "error: over the device tool's $LIMIT_MB MiB carry limit" >&2; exit 1
fi
