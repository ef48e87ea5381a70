#!/usr/bin/env bash
# fp32 vs bf16 quality check (issue 6, docs/speed.md): train the Shapes preset (BN, 2000-1000-500,
# K=4, T=3) for EPOCHS epochs on a 10000-image train subset with two seeds in each precision, then
# score every run on the full Shapes test split at T=5 (AMI, ARI and denoising cost per iteration)
# and print the means, the seed-to-seed spread and the fp32 - bf16 difference.
#
#   scripts/compare_precision.sh [EPOCHS=10] [OUT=runs/compare-precision] [SEEDS="1 2"]
#
# Needs datasets/shapes50k_20x20.h5 (`make data`); makes datasets/shapes-10k.h5 when missing.
# Runs are resumable: run the script again after an interruption. ~5-10 min per run on 2 CPU cores.
set -euo pipefail
EPOCHS=${1:-10}
OUT=${2:-runs/compare-precision}
SEEDS=${3:-"1 2"}
TT=${TAGGER_TORCH:-.venv/bin/tagger-torch}
FULL=datasets/shapes50k_20x20.h5
SUBSET=datasets/shapes-10k.h5

[ -f "$FULL" ] || { echo "missing $FULL: run 'make data' first" >&2; exit 2; }
[ -f "$SUBSET" ] || $TT make-dataset shapes --out "$SUBSET" --n-train 10000 --n-valid 1000 --n-test 1000 --n-single 100
mkdir -p "$OUT"
for precision in fp32 bf16; do
  for seed in $SEEDS; do
    run="$OUT/$precision-seed$seed"
    if [ -f "$run/checkpoint.pt" ]; then
      $TT train --resume "$run" --epochs "$EPOCHS" --device cpu --precision "$precision"
    else
      $TT train --hdf5 "$SUBSET" --preset shapes50k20x20 --epochs "$EPOCHS" --seed "$seed" --out "$run" \
        --device cpu --precision "$precision" --no-compile
    fi
    # every run is scored the same way (fp32 evaluation, fixed noise seed): only training differs
    [ -f "$run/test-T5.json" ] || $TT evaluate --run "$run" --hdf5 "$FULL" --iterations 5 --device cpu \
      --precision fp32 --seed 0 --out "$run/test-T5.json"
  done
done

"${PYTHON:-.venv/bin/python}" - "$OUT" $SEEDS <<'PY'
import json, sys
import numpy as np
out, seeds = sys.argv[1], sys.argv[2:]
scores = {p: [json.load(open(f"{out}/{p}-seed{s}/test-T5.json")) for s in seeds] for p in ("fp32", "bf16")}
for key, fmt in (("ami", "{:.3f}"), ("ari", "{:.3f}"), ("denoising_cost", "{:.4f}")):
    print(f"\n{key} per iteration (test split, T=5), mean +- sd over seeds {' '.join(seeds)}")
    per = {p: np.array([r[key] for r in rs]) for p, rs in scores.items()}
    for p, a in per.items():
        print(f"  {p:5s}" + "".join(f"  {fmt.format(m)} +- {fmt.format(s)}" for m, s in zip(a.mean(0), a.std(0, ddof=1))))
    diff = per["fp32"].mean(0) - per["bf16"].mean(0)
    spread = np.sqrt((per["fp32"].var(0, ddof=1) + per["bf16"].var(0, ddof=1)) / 2)
    print("  fp32 - bf16" + "".join(f"  {fmt.format(d)}" for d in diff))
    print("  seed sd   " + "".join(f"  {fmt.format(s)}" for s in spread))
PY
