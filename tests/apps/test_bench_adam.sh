#!/usr/bin/env bash
# test_bench_adam.sh BENCH_ADAM: bench_adam's flags and result file. A wrong flag or --isa value:
# one line and exit 2. --isa selected measures the ISA the kernels use and no other (the CPU's
# best, or GPT50B_CPU_ISA's cap: scalar here, which every CPU runs), at 1, 2, ... threads up to
# OpenMP's count; --isa scalar the same ISA by name; --isa all (the default) every ISA this CPU
# runs, up to the best, which is the one selected without GPT50B_CPU_ISA.
set -u
BENCH=$1
DATA=unused CHECK=unused
. "$(dirname "$0")/testlib.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/test_bench_adam.XXXXXX")
trap 'rm -rf "$W"' EXIT
small=(--params 65536 --iters 1)

one_line_exit2 "unknown flag" --sizes 8
one_line_exit2 "--isa sse" --isa sse
one_line_exit2 "--isa without a value" "${small[@]}" --isa

# isas WHAT EXPECTED FILE: the ISAs of FILE's results, in order of first appearance, are
# EXPECTED (space-separated), each at threads 1 and 2 (OMP_NUM_THREADS) with a positive rate.
isas() {
    local got
    got=$(python3 - "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = list(dict.fromkeys(r["isa"] for r in d["results"]))
bad = []
for n in names:
    t = [r["threads"] for r in d["results"] if r["isa"] == n]
    if t != [1, 2] or not all(r["gb_s"] > 0 for r in d["results"] if r["isa"] == n):
        bad.append(f"({n}: threads {t} or a rate of 0)")
print(" ".join(names + bad))
PY
)
    if [ "$got" = "$2" ]; then ok "$1: $got"; else fail "$1" "ISAs '$got', expected '$2'"; fi
}
export OMP_NUM_THREADS=2
if GPT50B_CPU_ISA=scalar "$BENCH" "${small[@]}" --isa selected --out "$W/sel.json" >"$W/out" 2>&1; then
    isas "--isa selected under GPT50B_CPU_ISA=scalar" "scalar" "$W/sel.json"
else
    fail "--isa selected" "exit $?: $(tail -n 2 "$W/out")"
fi
if "$BENCH" "${small[@]}" --isa scalar --out "$W/scalar.json" >"$W/out" 2>&1; then
    isas "--isa scalar" "scalar" "$W/scalar.json"
else
    fail "--isa scalar" "exit $?: $(tail -n 2 "$W/out")"
fi
if env -u GPT50B_CPU_ISA "$BENCH" "${small[@]}" --out "$W/all.json" >"$W/out" 2>&1; then
    want=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['selected_isa'])" "$W/all.json")
    case $want in
    scalar) want="scalar" ;;
    avx2) want="scalar avx2" ;;
    *) want="scalar avx2 avx512" ;;
    esac
    isas "--isa all (the default)" "$want" "$W/all.json"
else
    fail "--isa all" "exit $?: $(tail -n 2 "$W/out")"
fi
finish
