#!/usr/bin/env bash
# bench_mpi.sh: ZeRO-3 with 2 ranks in 1 process (1x2) against 2 processes of 1 rank (2x1) under
# mpirun, per-iteration time and the time per collective (docs/multinode.md, "Launching").
#
# Each row runs REPS times (default 3) and shows the median of gpt50b's "ms per iteration after
# the first", and, from the median run's last log line "collectives of process 0", the mean time
# per all-gather and reduce-scatter task with the part spent in the MPI or NCCL call (which holds
# the wait for the other process), and the submitting thread's loss all-reduce. A BASELINE binary
# (an older build) adds its rows: builds that do not print the collectives line show "-".
#
#   usage: scripts/bench_mpi.sh [GPT50B [BASELINE]]      (default GPT50B: build/apps/gpt50b)
#   env:   REPS=3  ITERS=20  MODEL="--num-layers 2 --hidden-size 32 ..."  NCUDA=0 (GPUs: unset)
#          ROWS="1x2 2x1 2x1-nosplit 2x1-yield"  (2x1-nosplit: GPT50B_CPU_SPLIT=0; 2x1-yield:
#          also --mca mpi_yield_when_idle 1)
#
# On a GPU host set NCUDA= (empty) to run the NCCL backend, one GPU per rank.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$top/build/apps/gpt50b}
BASE=${2:-}
REPS=${REPS:-3}
ITERS=${ITERS:-20}
MODEL=${MODEL:---num-layers 2 --hidden-size 32 --num-attention-heads 2 --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2}
ROWS=${ROWS:-1x2 2x1 2x1-nosplit 2x1-yield}
NCUDA=${NCUDA-0}
[ -n "$NCUDA" ] && export STARPU_NCUDA=$NCUDA
export STARPU_SILENT=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$top" || exit 1
# shellcheck disable=SC2086
run() { # run BINARY ROW: one run's log on stdout
    local bin=$1 row=$2 args="$MODEL --data-path $top/data/brown.bin --eval-iters 0 --train-iters $ITERS"
    case $row in
    1x2) "$bin" $args --num-gpus 2 2>&1 ;;
    2x1) mpirun -np 2 --bind-to none "$bin" $args --num-gpus 1 2>&1 ;;
    2x1-nosplit) mpirun -np 2 --bind-to none -x GPT50B_CPU_SPLIT=0 "$bin" $args --num-gpus 1 2>&1 ;;
    2x1-yield) mpirun -np 2 --bind-to none -x GPT50B_CPU_SPLIT=0 --mca mpi_yield_when_idle 1 \
        "$bin" $args --num-gpus 1 2>&1 ;;
    esac
}
# field N of the collectives line (the ms values in order), or "-"
coll() { grep -o '[0-9.]* ms each ([0-9.]* in\|[0-9.]* ms each$' "$1" | grep -o '[0-9.]\+' | sed -n "$2p" | grep . || echo -; }

printf '%-10s %-12s %10s %12s %9s %12s %9s %12s\n' binary layout "ms/iter" "all-gather" "in call" \
    "red-scatter" "in call" "loss allred"
for which in new base; do
    bin=$BIN
    [ $which = base ] && { [ -n "$BASE" ] || continue; bin=$BASE; }
    for row in $ROWS; do
        for i in $(seq "$REPS"); do
            run "$bin" "$row" >"$W/$row.$i.log"
            ms=$(grep -o '[0-9.]* ms per iteration after the first' "$W/$row.$i.log" | cut -d' ' -f1)
            echo "${ms:-nan} $W/$row.$i.log"
        done | sort -g >"$W/runs"
        med=$(sed -n "$(((REPS + 1) / 2))p" "$W/runs")
        log=${med#* }
        printf '%-10s %-12s %10s %12s %9s %12s %9s %12s\n' $which "$row" "${med%% *}" \
            "$(coll "$log" 1)" "$(coll "$log" 2)" "$(coll "$log" 3)" "$(coll "$log" 4)" \
            "$(coll "$log" 7)"
    done
done
