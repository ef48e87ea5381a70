#!/usr/bin/env bash
# The CUDA path on a machine with a GPU, sized for at most 8 minutes on one (not yet run on a GPU;
# docs/speed.md, "On a GPU"). Each part runs under its own time limit and goes on after a failure:
#   pytest   the parity suite's CUDA cases and tests/test_cuda.py (pytest -m cuda)
#   bench    the Shapes preset's training step, compiled (CUDA graphs on one GPU), in each precision
#   train    EPOCHS epochs on a Shapes set of N_TRAIN images, stopped after MAX_STEPS steps, resumed
#   torchrun the same under 2 processes, stopped and resumed, where 2 GPUs are present (or DDP=1)
# Figures go to OUT (argument 1, else $OUT, else runs/device-check): summary.json (every part's
# status and seconds, the machine, each bench's JSON, each run's metrics lines) and device_check.log
# (everything printed). Run directories and the data set go to WORK (default: a new temporary folder).
#
#   scripts/device_check.sh [OUT]
#
# Sizes, set in the environment (defaults for a GPU; tests/test_device_check.py runs the script on
# the CPU with small ones): DEVICE=cuda PRECISIONS="fp32 tf32 bf16" COMPILE=--compile
# BENCH="--preset shapes50k20x20 --steps 20 --warmup 3" TRAIN="--preset shapes50k20x20" N_TRAIN=10000
# EPOCHS=2 MAX_STEPS=150 DDP=auto PART_TIMEOUT=240 PYTEST="-m cuda parity_tests tests/test_cuda.py".
# PYTHON: the interpreter that imports tagger_torch and tagger_reference (default .venv/bin/python,
# else python3; `pip install -e .` installs both). Exit status: 0 when every part passed, else 1.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-runs/device-check}}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/tagger-device-check.XXXXXX")}
DEVICE=${DEVICE:-cuda}
PRECISIONS=${PRECISIONS:-"fp32 tf32 bf16"}
COMPILE=${COMPILE:---compile}
BENCH=${BENCH:-"--preset shapes50k20x20 --steps 20 --warmup 3"}
TRAIN=${TRAIN:-"--preset shapes50k20x20"}
N_TRAIN=${N_TRAIN:-10000}
EPOCHS=${EPOCHS:-2}
MAX_STEPS=${MAX_STEPS:-150}
DDP=${DDP:-auto}
PART_TIMEOUT=${PART_TIMEOUT:-240}
PYTEST=${PYTEST:-"-m cuda parity_tests tests/test_cuda.py"}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
LOG="$OUT/device_check.log"
PARTS="$WORK/parts.tsv"
: >"$LOG"
: >"$PARTS"
"$PYTHON" -c "import tagger_torch, tagger_reference" 2>>"$LOG" ||
  { echo "$PYTHON cannot import tagger_torch and tagger_reference: run 'pip install -e .' first" >&2; exit 2; }
TT=("$PYTHON" -m tagger_torch)

# part NAME STDOUT COMMAND...: COMMAND under PART_TIMEOUT seconds, its output appended to STDOUT (its
# errors to the log), and a line to PARTS: the part's name, exit status (124: out of time) and seconds
part() {
  local name=$1 stdout=$2 started status
  shift 2
  echo "== $name: $*" | tee -a "$LOG"
  started=$(date +%s%N)
  timeout "$PART_TIMEOUT" "$@" >>"$stdout" 2>>"$LOG"
  status=$?
  printf '%s\t%s\t%s\n' "$name" "$status" "$(( ($(date +%s%N) - started) / 1000000 ))e-3" >>"$PARTS"
  echo "   status $status" | tee -a "$LOG"
}

# shellcheck disable=SC2086  # the size variables hold several words on purpose
part pytest "$LOG" "$PYTHON" -m pytest -q -p no:cacheprovider -rs $PYTEST

for precision in $PRECISIONS; do
  rm -f "$WORK/bench-$precision.json"
  # shellcheck disable=SC2086
  part "bench-$precision" "$WORK/bench-$precision.json" "${TT[@]}" bench $BENCH --device "$DEVICE" \
    --precision "$precision" $COMPILE --json
done

DATA="$WORK/shapes.h5"
N_SMALL=$(( N_TRAIN / 10 ))
part data "$LOG" "${TT[@]}" make-dataset shapes --out "$DATA" --n-train "$N_TRAIN" --n-valid "$N_SMALL" \
  --n-test "$N_SMALL" --n-single 100
# shellcheck disable=SC2086
part train-stop "$LOG" "${TT[@]}" train --hdf5 "$DATA" $TRAIN --epochs "$EPOCHS" --out "$WORK/train" --device "$DEVICE" \
  $COMPILE --max-steps "$MAX_STEPS"
part train-resume "$LOG" "${TT[@]}" train --resume "$WORK/train" --device "$DEVICE"

GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())" 2>>"$LOG")
if [ "$DDP" = 1 ] || { [ "$DDP" = auto ] && [ "${GPUS:-0}" -ge 2 ]; }; then
  printf 'from tagger_torch.cli import main\nmain()\n' >"$WORK/cli.py"
  RUN2=("$PYTHON" -m torch.distributed.run --standalone --nproc-per-node 2 "$WORK/cli.py")
  # shellcheck disable=SC2086
  part torchrun-stop "$LOG" "${RUN2[@]}" train --hdf5 "$DATA" $TRAIN --epochs 1 --out "$WORK/ddp" --device "$DEVICE" \
    $COMPILE --max-steps $(( MAX_STEPS / 4 + 1 ))
  part torchrun-resume "$LOG" "${RUN2[@]}" train --resume "$WORK/ddp" --device "$DEVICE"
else
  printf 'torchrun\tskipped: %s GPU(s)\t0\n' "${GPUS:-0}" >>"$PARTS"
fi

"$PYTHON" - "$OUT" "$WORK" "$DEVICE" <<'PY'
import glob, json, os, platform, subprocess, sys
import torch
out, work, device = sys.argv[1:]
parts = []
for line in open(os.path.join(work, "parts.tsv")):
    name, status, seconds = line.rstrip("\n").split("\t")
    parts.append({"part": name, "status": int(status) if status.lstrip("-").isdigit() else status,
                  "seconds": float(seconds)})
def rows(path):
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []
bench = {}
for path in sorted(glob.glob(os.path.join(work, "bench-*.json"))):
    with open(path) as f:
        text = f.read().strip()
    bench[os.path.basename(path)[6:-5]] = json.loads(text) if text else None
machine = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
try:
    machine["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                            "--format=csv,noheader"], capture_output=True, text=True,
                                           timeout=30).stdout.strip()
except (OSError, subprocess.SubprocessError):
    pass
summary = {"device": device, "machine": machine, "parts": parts, "bench": bench,
           "train_metrics": rows(os.path.join(work, "train", "metrics.jsonl")),
           "torchrun_metrics": rows(os.path.join(work, "ddp", "metrics.jsonl"))}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
for p in parts:
    print(f"{p['part']:16s} {p['status']!s:24s} {p['seconds']:7.1f} s")
for precision, r in bench.items():
    if r:
        print(f"bench {precision}: {r['images_per_s']:.0f} images/s, {r['ms_per_step']:.2f} ms/step, "
              f"{r['achieved_gflops']:.0f} GFLOP/s ({100 * r['fraction_of_peak']:.0f}% of peak, "
              f"{100 * r['fraction_of_floor']:.0f}% of floor), Adam {r['optimizer_ms']:.2f} ms, "
              f"CUDA graphs {r['cuda_graphs']}, first step {r['first_step_s']:.1f} s")
for row in summary["train_metrics"]:
    print(f"train epoch {row['epoch']}: {row.get('samples_per_s')} samples/s, valid "
          f"{[round(c, 4) for c in row.get('valid_denoising_cost', [])]}")
sys.exit(0 if all(p["status"] == 0 or str(p["status"]).startswith("skipped") for p in parts) else 1)
PY
