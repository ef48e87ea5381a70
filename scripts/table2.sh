#!/usr/bin/env bash
# Table 2 on this machine: train (or resume) every run in sequence, evaluate each finished run on the test
# split into results/table2/<run>.json, and rewrite results/table2/README.md (docs/baselines.md).
#
#   scripts/table2.sh                 # every run, in the order below; run it again to resume
#   scripts/table2.sh f2-fc-mlp-1k    # only these runs (names below)
#
# Baselines train in chunks of WINDOW epochs until the validation class error has flattened (the best of
# the last WINDOW epochs is not TOL points below the best before them; scripts/table2.py flattened), at
# least MIN and at most MAX epochs. Tagger's two shortened stages train a fixed number of epochs.
# Environment: VENV (default ~/tagger-runs/venv-table2, a non-editable install of this branch, so later
# edits do not change running code), RUNS (run directories, default ~/tagger-runs/table2), DATA (the
# Freq20 files, default datasets/), RESULTS (default results/table2). One thread, nice 19.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$HOME/tagger-runs/venv-table2}
RUNS=${RUNS:-$HOME/tagger-runs/table2}
DATA=${DATA:-$HERE/datasets}
RESULTS=${RESULTS:-$HERE/results/table2}
TAGGER="nice -n 19 env OMP_NUM_THREADS=1 $VENV/bin/tagger-torch"
HELPER="$VENV/bin/python $HERE/scripts/table2.py"
TOL=${TOL:-0.3}
export TABLE2_COMMIT=${TABLE2_COMMIT:-$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)}
mkdir -p "$RUNS" "$RESULTS"

log() { echo "[$(date '+%F %T')] $*"; }

# run NAME COMMAND...: run a training/evaluation command, recorded in the run's commands.txt
run() {
    local dir=$RUNS/$1; shift
    mkdir -p "$dir"
    echo "$*" | sed "s#$VENV/bin/##; s#$HOME#~#g" >> "$dir/commands.txt"
    log "$*"
    "$@" || { local rc=$?; log "exit status $rc: $*"; exit $rc; }
}

# until_flat NAME PRESET DIGITS WINDOW MIN MAX: train a baseline until its validation error flattens
until_flat() {
    local name=$1 preset=$2 digits=$3 window=$4 min=$5 max=$6 dir=$RUNS/$1
    while :; do
        local status=0 done_epochs next
        $HELPER flattened "$dir" --window "$window" --min-epochs "$min" --max-epochs "$max" --tol "$TOL" || status=$?
        [ "$status" -eq 0 ] && break
        [ "$status" -eq 3 ] || { log "scripts/table2.py flattened failed (exit status $status)"; exit 1; }
        done_epochs=$($HELPER epochs "$dir")
        next=$(( done_epochs < min ? min : done_epochs + window ))
        next=$(( next > max ? max : next ))
        if [ -f "$dir/checkpoint.pt" ]; then
            run "$name" $TAGGER train --resume "$dir" --hdf5 "$DATA/freq20-${digits}mnist.h5" --epochs "$next" --device cpu
        else
            run "$name" $TAGGER train --preset "$preset" --hdf5 "$DATA/freq20-${digits}mnist.h5" --out "$dir" \
                --epochs "$next" --device cpu --precision fp32 --no-compile
        fi
        if [ "$($HELPER epochs "$dir")" -le "$done_epochs" ]; then log "no epoch added to $dir"; exit 1; fi
    done
    evaluate "$name" "$digits"
}

# fixed NAME EPOCHS DATA_FILE TRAIN_ARGS...: train a fixed number of epochs (Tagger's shortened stages)
fixed() {
    local name=$1 epochs=$2 data=$3 dir=$RUNS/$1; shift 3
    if [ -f "$dir/checkpoint.pt" ]; then
        [ "$($HELPER epochs "$dir")" -ge "$epochs" ] ||
            run "$name" $TAGGER train --resume "$dir" --hdf5 "$data" --epochs "$epochs" --device cpu
    else
        run "$name" $TAGGER train "$@" --hdf5 "$data" --out "$dir" --epochs "$epochs" --device cpu --precision fp32
    fi
}

# evaluate NAME DIGITS [EVALUATE_ARGS...]: the test split, once per finished run
evaluate() {
    local name=$1 digits=$2 dir=$RUNS/$1; shift 2
    if [ ! -f "$RESULTS/$name.json" ] || [ "$dir/params.npz" -nt "$RESULTS/$name.json" ]; then
        run "$name" $TAGGER evaluate --run "$dir" --hdf5 "$DATA/freq20-${digits}mnist.h5" --device cpu \
            --out "$dir/test.json" "$@"
        $HELPER result "$name" "$dir" "$dir/test.json" --results "$RESULTS" ${STAGE1:+--stage1 "$STAGE1"} || exit 1
    fi
    $HELPER collect --results "$RESULTS" --runs "$RUNS" || exit 1
}

# name -> what it runs (WINDOW MIN MAX epochs for the baselines; measured seconds per epoch in docs/baselines.md)
one() {
    case $1 in
        f1-fc-mlp-1k)    until_flat "$1" freq20-1mnist-fc-mlp-1k 1 10 20 300 ;;
        f2-fc-mlp-1k)    until_flat "$1" freq20-2mnist-fc-mlp-1k 2 10 20 300 ;;
        f1-fc-mlp)       until_flat "$1" freq20-1mnist-fc-mlp 1 5 10 60 ;;
        f2-fc-mlp)       until_flat "$1" freq20-2mnist-fc-mlp 2 5 10 60 ;;
        f2-fc-ladder-1k) until_flat "$1" freq20-2mnist-fc-ladder-1k 2 2 6 10 ;;
        f2-fc-ladder)    until_flat "$1" freq20-2mnist-fc-ladder 2 2 6 10 ;;
        f1-fc-ladder-1k) until_flat "$1" freq20-1mnist-fc-ladder-1k 1 2 6 10 ;;
        f1-fc-ladder)    until_flat "$1" freq20-1mnist-fc-ladder 1 2 6 10 ;;
        f1-convnet-1k)   until_flat "$1" freq20-1mnist-convnet-1k 1 10 20 150 ;;
        f2-convnet-1k)   until_flat "$1" freq20-2mnist-convnet-1k 2 10 20 150 ;;
        f1-convnet)      until_flat "$1" freq20-1mnist-convnet 1 2 4 12 ;;
        f2-convnet)      until_flat "$1" freq20-2mnist-convnet 2 2 4 12 ;;
        f1-tagger-stage2-1k)
            # shortened: stage 1 (unsupervised, the release's runner) then stage 2 with the release's own
            # stage-2 settings for 1000 labels (results/table2/configs/), loading stage 1 by name; both train
            # on a Freq20-1MNIST file of TAGGER_N_TRAIN train images (10 000: 100 steps an epoch), and the
            # score is on the standard file's test split
            local n_train=${TAGGER_N_TRAIN:-10000}
            local small=$RUNS/freq20-1mnist-train$n_train.h5
            [ -f "$small" ] || run f1-tagger-stage1 $TAGGER make-dataset freq20-1mnist \
                --n-train "$n_train" --n-valid 2000 --n-test 1000 --out "$small"
            fixed f1-tagger-stage1 "${TAGGER_STAGE1_EPOCHS:-3}" "$small" --preset freq20-1mnist-pretrain
            fixed "$1" "${TAGGER_STAGE2_EPOCHS:-2}" "$small" --preset freq20-1mnist-continue \
                --config "$HERE/results/table2/configs/tagger-stage2-1k.json" \
                --load-from "$RUNS/f1-tagger-stage1" --labeled-samples 1000
            STAGE1=$RUNS/f1-tagger-stage1 evaluate "$1" 1 --iterations 4 ;;
        *) echo "unknown run $1" >&2; exit 2 ;;
    esac
}

ALL="f1-fc-mlp-1k f2-fc-mlp-1k f1-fc-mlp f2-fc-mlp f2-fc-ladder-1k f1-fc-ladder-1k f2-fc-ladder
     f1-tagger-stage2-1k f1-convnet-1k f2-convnet-1k f1-fc-ladder f1-convnet f2-convnet"
# each run in a subshell: a failed run is logged and the next one starts; a signal (exit >= 128) stops all
for name in ${*:-$ALL}; do
    log "== $name"
    status=0
    ( one "$name" ) || status=$?
    if [ "$status" -ge 128 ]; then log "stopped by a signal during $name"; exit "$status"; fi
    [ "$status" -eq 0 ] || log "FAILED: $name (exit status $status); going on with the next run"
done
log "done: $RESULTS/README.md"
