#!/usr/bin/env bash
# test_no_cuda.sh GPT50B: in the CPU-only build, asking for CUDA workers (STARPU_NCUDA > 0, the
# only request for a GPU: every flag and DeepSpeed key also runs on CPU workers) ends with one
# "gpt50b: error:" line saying the build has no CUDA, and exit code 2; STARPU_NCUDA=0 still runs.
set -u
GPT50B=$1
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA=$TOP/data/brown.bin
if [ ! -f "$DATA" ]; then
    echo "skip: $DATA is missing: run scripts/setup.sh"
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
failures=0
TINY=(--num-layers 2 --hidden-size 32 --num-attention-heads 2 --seq-length 32
    --max-position-embeddings 32 --micro-batch-size 2 --eval-iters 0 --data-path "$DATA"
    --train-iters 1)
for args in "" "--dry-run" "--num-gpus 2"; do
    # shellcheck disable=SC2086
    STARPU_NCUDA=1 "$GPT50B" "${TINY[@]}" $args >"$W/out" 2>"$W/err"
    rc=$?
    if [ "$rc" -ne 2 ] || [ "$(wc -l <"$W/err")" -ne 1 ] ||
        ! grep -q '^gpt50b: error: STARPU_NCUDA=1 asks for GPUs, but this build has no CUDA' "$W/err"; then
        echo "FAIL - STARPU_NCUDA=1 $args: exit $rc, stderr: $(tr '\n' '|' <"$W/err")"
        failures=$((failures + 1))
    else
        echo "ok - STARPU_NCUDA=1 $args: exit 2, '$(cat "$W/err")'"
    fi
done
if STARPU_NCUDA=0 "$GPT50B" "${TINY[@]}" >"$W/out" 2>"$W/err"; then
    echo "ok - STARPU_NCUDA=0 trains"
else
    echo "FAIL - STARPU_NCUDA=0: $(tail -n 3 "$W/err" | tr '\n' ' ')"
    failures=$((failures + 1))
fi
[ "$failures" -eq 0 ]
