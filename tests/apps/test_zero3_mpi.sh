#!/usr/bin/env bash
# test_zero3_mpi.sh: ZeRO-3 across 2 MPI processes against the same ranks in one process, on CPU.
#
# `mpirun -np 2 gpt50b` trains 2 ranks (host buffers, MPI between the processes), 1 per process;
# it must give bit for bit the losses and grad norms of `gpt50b --num-gpus 2` (2 ranks in one
# process): the host backend sums gradients in fp32 in global-rank order and rounds once, and the
# logged loss adds per-rank sums in rank order, whatever the split into processes. Against one
# rank accumulating the same 2 micro-batches (--gradient-accumulation-steps 2) the tolerance is
# test_cli.sh's 1e-5 relative (section 12 says why). With SC21's tiers (--offload-param cpu
# --offload-optimizer nvme, a swap folder per process) the bits stay those of 2 ranks in one
# process, in fp32 and fp16. A checkpoint saved by the 2 processes must be the one that 1 process
# with 2 ranks saves, byte for byte (also from the NVMe tier), and continue identically in 1
# process (2 ranks, or 1 rank accumulating 2) and in 2 processes. Gathered parameters of 2 layers at a time
# (the default) must take less of a process's memory than all layers' (a DeepSpeed config's
# stage3_max_live_parameters, the old behaviour) and give the same losses. Wrong configurations
# end with one "gpt50b: error:" line and exit code 2.
#
# Open MPI, allowed to run as root as CI does; one CPU worker per process so that 2 shared cores
# suffice. Exits 0 (pass), 1 (fail) or 77 (skip: no mpirun, no python3 or no data/brown.bin).
# About 55 s on 2 shared cores.
#
#   usage: test_zero3_mpi.sh PATH/TO/gpt50b      (GPT50B_TOP: the source root; default ../..)
set -u

GPT50B=${1:?usage: test_zero3_mpi.sh PATH/TO/gpt50b}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=${GPT50B_TOP:-$(cd "$HERE/../.." && pwd)}
DATA=$TOP/data/brown.bin
CHECK=$HERE/cli_check.py
for tool in mpirun python3; do
    if ! command -v $tool >/dev/null; then
        echo "skip: $tool is missing"
        exit 77
    fi
done
if [ ! -f "$DATA" ]; then
    echo "skip: $DATA is missing: run scripts/setup.sh"
    exit 77
fi
export STARPU_NCUDA=0 STARPU_SILENT=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1

# shellcheck source=testlib.sh
. "$HERE/testlib.sh"
TINY+=(--lr-decay-iters 5 --lr-warmup-iters 1)

# one WHAT ARGS... / two WHAT ARGS...: gpt50b in 1 process, or in 2 under mpirun; output in
# $W/WHAT.log; a FAIL line and status 1 when it does not succeed.
one() {
    local what=$1
    shift
    if ! "$GPT50B" "$@" >"$W/$what.log" 2>&1; then
        fail "$what" "gpt50b $* failed: $(tail -n 3 "$W/$what.log" | tr '\n' ' ')"
        return 1
    fi
}
two() {
    local what=$1
    shift
    if ! STARPU_NCPU=1 mpirun -np 2 --oversubscribe --bind-to none "$GPT50B" "$@" \
        >"$W/$what.log" 2>&1; then
        fail "$what" "mpirun -np 2 gpt50b $* failed: $(grep -m 3 error "$W/$what.log" | tr '\n' ' ')"
        return 1
    fi
}


# --- the same training split three ways ---------------------------------------------------------
if one accum "${TINY[@]}" --train-iters 5 --gradient-accumulation-steps 2 --metrics accum.jsonl &&
    one ranks "${TINY[@]}" --train-iters 5 --num-gpus 2 --metrics ranks.jsonl &&
    two procs "${TINY[@]}" --train-iters 5 --metrics procs.jsonl; then
    close "2 processes x 1 rank equal 1 process x 2 ranks, bit for bit" ranks.jsonl procs.jsonl 0
    close "2 processes x 1 rank equal 1 rank accumulating 2 micro-batches" accum.jsonl procs.jsonl 1e-5
    if ! grep -q "global batch size:     4" procs.log || ! grep -q "ZeRO-3 over 2 ranks: 2 processes x 1" procs.log; then
        fail "2 processes' log" "$(grep -m 1 -o 'ZeRO-3.*' procs.log); $(grep -m 1 -o 'global batch size: *[0-9]*' procs.log)"
    elif [ "$(grep -c '^ iteration' procs.log)" -ne 5 ] || [ "$(wc -l <procs.jsonl)" -ne 5 ]; then
        fail "2 processes log once" "$(grep -c '^ iteration' procs.log) log lines, $(wc -l <procs.jsonl) metrics lines for 5 iterations"
    else
        ok "2 processes log once, from process 0 (global batch size 4)"
    fi
    # the processes split the node's cores (docs/multinode.md): on a shared core every collective
    # waited a time slice for the other process (728 ms per iteration against 42 on 2 cores)
    if grep -q "> CPUs: 2 processes on this node share" procs.log &&
        grep -q "> collectives of process 0, per iteration: [0-9.]* all-gather, [0-9.]* ms each" procs.log; then
        ok "2 processes split the cores; the collectives line is there"
    else
        fail "2 processes split the cores" "$(grep -m 1 -e '> CPUs' -e '> collectives' procs.log)"
    fi
fi

# --- SC21's tiers across processes -------------------------------------------------------------
# Each process streams its rank's optimizer-state shard through its own swap folder under the one
# --nvme-path (half of it resident), with the parameter and gradient shards homed in pinned memory
# (--offload-param cpu): bit for bit the 1 process x 2 ranks run on the device tier, fp32 and fp16.
mkdir -p nvme
NVT=(--offload-param cpu --offload-optimizer nvme --nvme-path "$W/nvme" --nvme-resident-fraction 0.5)
if [ -s ranks.jsonl ] && two procs-nvme "${TINY[@]}" --train-iters 5 "${NVT[@]}" --metrics procs-nvme.jsonl; then
    close "2 processes with NVMe and parameter offload equal 1 process x 2 ranks, bit for bit" \
        ranks.jsonl procs-nvme.jsonl 0
fi
if one ranks-fp16 "${TINY[@]}" --train-iters 5 --num-gpus 2 --fp16 --metrics ranks-fp16.jsonl &&
    two procs-nvme-fp16 "${TINY[@]}" --train-iters 5 --fp16 "${NVT[@]}" --metrics procs-nvme-fp16.jsonl; then
    close "2 processes with NVMe and parameter offload equal 1 process x 2 ranks in fp16, bit for bit" \
        ranks-fp16.jsonl procs-nvme-fp16.jsonl 0
fi

# --- checkpoints ---------------------------------------------------------------------------------
tail -n 2 procs.jsonl >procs-tail.jsonl
if two save2 "${TINY[@]}" --train-iters 3 --save ck2 && one save1 "${TINY[@]}" --train-iters 3 --num-gpus 2 --save ck1; then
    if cmp -s ck1/model.safetensors ck2/model.safetensors && cmp -s ck1/optimizer.safetensors ck2/optimizer.safetensors; then
        ok "the 2 processes' checkpoint is the 1 process's, byte for byte"
    else
        fail "checkpoints" "the 2 processes' checkpoint differs from 1 process x 2 ranks'"
    fi
    if one load-ranks "${TINY[@]}" --train-iters 5 --num-gpus 2 --load ck2 --metrics load-ranks.jsonl &&
        one load-accum "${TINY[@]}" --train-iters 5 --gradient-accumulation-steps 2 --load ck2 --metrics load-accum.jsonl &&
        two load-procs "${TINY[@]}" --train-iters 5 --load ck2 --metrics load-procs.jsonl; then
        close "2 processes' checkpoint continues in 1 process x 2 ranks, bit for bit" procs-tail.jsonl load-ranks.jsonl 0
        close "2 processes' checkpoint continues in 2 processes, bit for bit" procs-tail.jsonl load-procs.jsonl 0
        close "2 processes' checkpoint continues in 1 rank accumulating 2" procs-tail.jsonl load-accum.jsonl 1e-5
    fi
fi
# The NVMe tier's checkpoint: process 0 gathers the other's shards from its swap files.
if [ -d ck2 ] && two save2-nvme "${TINY[@]}" --train-iters 3 "${NVT[@]}" --save ck2nv; then
    if cmp -s ck2/model.safetensors ck2nv/model.safetensors && cmp -s ck2/optimizer.safetensors ck2nv/optimizer.safetensors; then
        ok "the 2 processes' NVMe checkpoint is the device tier's, byte for byte"
    else
        fail "NVMe checkpoints" "the 2 processes' NVMe checkpoint differs from the device tier's"
    fi
fi
if [ -n "$(ls -A nvme)" ]; then
    fail "swap folders removed at the end of the runs" "left: $(ls nvme)"
else
    ok "each process's swap folder is removed at the end of its run"
fi

# --- memory: gathered parameters of 2 layers at a time ------------------------------------------
# 8 layers of 256 channels over 16 tokens: parameters outweigh activations. Keeping every layer's
# gathered parameters and gradients (stage3_max_live_parameters above the model: 8 buffers of
# each per rank) against the default of 2 layers' must save 6 layers' fp32 parameters and
# gradients, 6 x 2 x 788,736 x 4 bytes = 37.9 MB, of StarPU's buffers in process 0's RAM (exact:
# what StarPU allocated; the peak resident set is printed, it moves with the allocator).
BIG=(--num-layers 8 --hidden-size 256 --num-attention-heads 4 --seq-length 16
    --max-position-embeddings 16 --micro-batch-size 1 --eval-iters 0 --data-path "$DATA" --train-iters 2)
echo '{"zero_optimization": {"stage": 3, "stage3_max_live_parameters": 1000000000000}}' >keep.json
# memory LOG: "STARPU_MB RSS_MB" of the log's memory line
memory() { sed -n 's/^> memory of process 0.*peak resident set \([0-9.]*\) MB; StarPU.s buffers: \([0-9.]*\) MB in RAM.*/\2 \1/p' "$1"; }
if two mem-2 "${BIG[@]}" --metrics mem-2.jsonl && two mem-all "${BIG[@]}" --deepspeed_config keep.json --metrics mem-all.jsonl; then
    close "2 layers' gathered buffers leave the losses as with all layers'" mem-all.jsonl mem-2.jsonl 0
    read -r two_sp two_rss <<<"$(memory mem-2.log)"
    read -r all_sp all_rss <<<"$(memory mem-all.log)"
    if [ -n "${two_sp:-}" ] && [ -n "${all_sp:-}" ] &&
        python3 -c "import sys; d = $all_sp - $two_sp; sys.exit(not 37.5 <= d <= 38.5)"; then
        ok "process 0's StarPU buffers: $two_sp MB with 2 layers' gathered, $all_sp MB with all 8 (peak resident set $two_rss MB against $all_rss MB)"
    else
        fail "memory" "process 0's StarPU buffers: ${two_sp:-?} MB with 2 layers, ${all_sp:-?} MB with 8: expected 37.9 MB less"
    fi
fi

# --- wrong configurations ------------------------------------------------------------------------
# expect_error WHAT KEYWORD [mpirun -np 2 ARGS | ARGS]: exit 2 and one "gpt50b: error:" line naming
# KEYWORD among what both processes and mpirun printed on stderr.
expect_error() {
    local what=$1 keyword=$2 rc lines
    shift 2
    # stderr apart: mpirun forwards the ranks' stdout and stderr as they come, and in one file
    # another rank's "> StarPU" line could land inside the error line
    STARPU_NCPU=1 mpirun -np 2 --oversubscribe --bind-to none "$@" >"$W/out.log" 2>"$W/err.log"
    rc=$?
    lines=$(grep '^gpt50b: error:' "$W/err.log")
    if [ "$rc" -ne 2 ]; then
        fail "$what" "exit code $rc, expected 2: $(tr '\n' ' ' <"$W/err.log")"
    elif [ "$(printf '%s\n' "$lines" | wc -l)" -ne 1 ] || [ -z "$lines" ]; then
        fail "$what" "expected one error line, got: $(printf '%s' "$lines" | tr '\n' '|')"
    elif ! grep -qiF -- "$keyword" <<<"$lines"; then
        fail "$what" "the error does not name '$keyword': $lines"
    else
        ok "$what: exit 2, '$lines'"
    fi
}
expect_error "world size not dividing the global batch" "--global-batch-size 6" \
    "$GPT50B" "${TINY[@]}" --train-iters 1 --global-batch-size 6
expect_error "--world-size other than the launch's ranks" "mpirun -np 3" \
    "$GPT50B" "${TINY[@]}" --train-iters 1 --world-size 3
expect_error "processes with different flags" "different flags" \
    sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then set -- "$@" --seed 5; fi; exec "$@"' sh \
    "$GPT50B" "${TINY[@]}" --train-iters 1

finish
