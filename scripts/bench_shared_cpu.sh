#!/usr/bin/env bash
# Training speed on a CPU alone and beside one busy process, under each OpenMP wait policy, in one
# run (docs/speed.md, "Shared CPUs"). Start it on an otherwise idle machine.
#
#   scripts/bench_shared_cpu.sh [STEPS=20] [more `tagger-torch bench` options]
#
# Six fp32 `tagger-torch bench --preset shapes50k20x20 --device cpu --steps STEPS --json` runs:
# {alone, beside `python -c 'while True: pass'`} x OMP_WAIT_POLICY {unset, ACTIVE, PASSIVE}.
# "unset" is what the command line did before it set PASSIVE itself: torch imported before
# tagger_torch.cli, so the OpenMP runtime (libgomp) never sees a policy and spins ~300 000 rounds
# before it sleeps. ACTIVE spins (almost) forever, PASSIVE sleeps at once (the default now).
# Prints a markdown table: images/s, beside/alone, and each policy alone against unset alone.
# A quick check of the script itself: scripts/bench_shared_cpu.sh 1 --warmup 1
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-20}
shift $(( $# > 0 ? 1 : 0 ))
PY=${PYTHON:-.venv/bin/python}
OUT=$(mktemp -d)
BUSY=
cleanup() {
    if [ -n "$BUSY" ]; then kill "$BUSY" 2>/dev/null || true; fi
    rm -rf "$OUT"
}
trap cleanup EXIT

bench() {  # bench POLICY FILE: one bench run under POLICY (unset|ACTIVE|PASSIVE), its JSON into FILE
    local args=(bench --preset shapes50k20x20 --device cpu --precision fp32 --steps "$STEPS" --json ${EXTRA[@]+"${EXTRA[@]}"})
    if [ "$1" = unset ]; then
        env -u OMP_WAIT_POLICY "$PY" -c 'import torch; from tagger_torch.cli import main; main()' "${args[@]}" > "$2"
    else
        OMP_WAIT_POLICY=$1 "$PY" -c 'from tagger_torch.cli import main; main()' "${args[@]}" > "$2"
    fi
}

EXTRA=("$@")
POLICIES=(unset ACTIVE PASSIVE)
LOAD=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if awk "BEGIN { exit !($LOAD > 0.5) }"; then
    echo "warning: load average $LOAD before the start: the CPU is not idle, the figures will not compare" >&2
fi
for p in "${POLICIES[@]}"; do
    echo "alone, OMP_WAIT_POLICY=$p ..." >&2
    bench "$p" "$OUT/alone-$p.json"
done
"$PY" -c 'while True: pass' &
BUSY=$!
for p in "${POLICIES[@]}"; do
    echo "beside a busy process, OMP_WAIT_POLICY=$p ..." >&2
    bench "$p" "$OUT/busy-$p.json"
done
kill "$BUSY"
BUSY=

"$PY" - "$OUT" "$STEPS" "${EXTRA[*]:-}" "${POLICIES[@]}" <<'EOF'
import json, os, platform, subprocess, sys

out, steps, extra, policies = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
r = {(where, p): json.load(open(os.path.join(out, f"{where}-{p}.json"))) for where in ("alone", "busy") for p in policies}
try:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
except (OSError, StopIteration):
    model = platform.processor() or platform.machine()
flags = set()
try:
    flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith(("flags", "Features"))).split(":")[1].split())
except (OSError, StopIteration):
    pass
first = r["alone", policies[0]]
import torch
print(f"CPU: {model}, {os.cpu_count()} logical CPUs, torch {torch.__version__} on {first['threads']} threads; "
      f"flags: {' '.join(f for f in ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_bf16', 'asimd', 'sve', 'bf16') if f in flags) or '?'}; "
      f"cpu_capability {first['cpu_capability']}, cpu_bf16_native {first['cpu_bf16_native']}")
print(f"command: scripts/bench_shared_cpu.sh {steps} {extra}".rstrip()
      + f"  (tagger-torch bench --preset shapes50k20x20 --device cpu --precision fp32 --steps {steps} --json)")
print()
print("| OMP_WAIT_POLICY | alone, images/s | beside a busy process, images/s | beside / alone | alone / unset alone |")
print("|---|---|---|---|---|")
base = r["alone", "unset"]["images_per_s"] if "unset" in policies else None
for p in policies:
    a, b = r["alone", p]["images_per_s"], r["busy", p]["images_per_s"]
    print(f"| {p} | {a:.0f} | {b:.0f} | {b / a:.2f} | {a / base:.2f} |" if base else f"| {p} | {a:.0f} | {b:.0f} | {b / a:.2f} | |")
print()
print("load average (1 min) at the end of each run: " + ", ".join(
    f"{where} {p} {r[where, p]['load_avg_1min']:.2f}" for where in ("alone", "busy") for p in policies))
EOF
