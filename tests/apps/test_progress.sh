#!/usr/bin/env bash
# test_progress.sh: the progress lines of long phases (runtime/base/progress.h).
#
# A small model with the optimizer state on NVMe (nothing resident) and a save, then a load:
# in a log (stdout a file) each phase prints one line at its end with bytes, time and rate and
# no carriage return; on a terminal (a pty from script(1)) the phase's line updates in place
# ("\r> writing model.safetensors: ... of ...") before the same end line. The Megatron-style
# iteration lines are there either way. Exits 0 (pass), 1 (fail) or 77 (skip: no data, or no
# script(1)).
#   usage: test_progress.sh PATH/TO/gpt50b
set -u
GPT50B=${1:?usage: test_progress.sh PATH/TO/gpt50b}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=${GPT50B_TOP:-$(cd "$HERE/../.." && pwd)}
DATA=$TOP/data/brown.bin
[ -f "$DATA" ] || { echo "skip: no $DATA (scripts/setup.sh makes it)"; exit 77; }
command -v script >/dev/null || { echo "skip: no script(1) for a terminal"; exit 77; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# shellcheck source=testlib.sh
. "$HERE/testlib.sh"
ARGS=(--num-layers 2 --hidden-size 64 --num-attention-heads 2 --seq-length 32
    --max-position-embeddings 32 --micro-batch-size 2 --eval-iters 0 --data-path "$DATA"
    --train-iters 2 --offload-optimizer nvme --nvme-resident-fraction 0)
PHASES=("touched the pinned host pool" "preallocated the swap files"
    "initialised the fp32 master weights" "wrote model.safetensors" "wrote optimizer.safetensors")

# end_lines FILE WHAT PHASE...: each phase's end line exactly once, with bytes, seconds and rate
end_lines() {
    local file=$1 what=$2 phase n bad=""
    shift 2
    for phase in "$@"; do
        n=$(grep -c "> $phase: [0-9.]* [MGk]*B in [0-9.]* s ([0-9.]* GB/s)" "$file")
        [ "$n" -eq 1 ] || bad="$bad '$phase' x$n;"
    done
    if [ -z "$bad" ] && grep -q '^ iteration        2/' "$file"; then
        ok "$what: one end line per phase ($*), and the iteration lines"
    else
        fail "$what" "end lines:$bad $(tr '\r' '|' <"$file" | grep -a '^>' | head -n 12 | tr '\n' ';')"
    fi
}

mkdir -p "$W/nv1"
"$GPT50B" "${ARGS[@]}" --nvme-path "$W/nv1" --save "$W/ck" >"$W/log" 2>"$W/err" ||
    fail "a run in a log" "exit $?: $(tail -n 2 "$W/err")"
end_lines "$W/log" "in a log" "${PHASES[@]}"
if grep -q $'\r' "$W/log"; then fail "in a log" "carriage returns in a log"; else ok "in a log: no carriage return"; fi

mkdir -p "$W/nv2"
cmd=$(printf '%q ' "$GPT50B" "${ARGS[@]}" --nvme-path "$W/nv2" --save "$W/ck2")
script -qefc "$cmd" /dev/null >"$W/tty" 2>&1 || fail "a run on a terminal" "exit $?: $(tail -n 2 "$W/tty")"
end_lines "$W/tty" "on a terminal" "${PHASES[@]}"
if grep -aq $'\r> writing model.safetensors: [0-9.]* [MGk]*B of [0-9.]* [MGk]*B' "$W/tty"; then
    ok "on a terminal: the phase's line updates in place (\\r> writing model.safetensors: ... of ...)"
else
    fail "on a terminal" "no in-place line: $(tr '\r' '|' <"$W/tty" | grep -a 'writing' | head -n 2)"
fi

"$GPT50B" "${ARGS[@]}" --nvme-path "$W/nv1" --load "$W/ck" --train-iters 3 >"$W/load" 2>&1 ||
    fail "a run that loads" "exit $?: $(tail -n 2 "$W/load")"
if grep -q "> read model.safetensors: [0-9.]* [MGk]*B in [0-9.]* s ([0-9.]* GB/s)" "$W/load"; then
    ok "--load: one end line for reading model.safetensors"
else
    fail "--load" "no read line: $(grep -a '^>' "$W/load" | head -n 8 | tr '\n' ';')"
fi

finish
