#!/usr/bin/env bash
# test_bench_gemm.sh BENCH_GEMM: bench_gemm's arguments and result file. A wrong flag or a round
# count out of range: one line and exit 2. Without a GPU: one line saying so, exit 2. With one
# (the GPU host): a small product in 3 rounds each way, whose JSON file holds 3 positive rates per
# path and the medians of those rounds.
set -u
BENCH=$1
DATA=unused CHECK=unused
. "$(dirname "$0")/testlib.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/test_bench_gemm.XXXXXX")
trap 'rm -rf "$W"' EXIT

one_line_exit2 "unknown flag" --sizes 8
one_line_exit2 "--rounds 0" --rounds 0
one_line_exit2 "--rounds 102" --rounds 102
if ! nvidia-smi -L >/dev/null 2>&1; then
    one_line_exit2 "no GPU" --size 256
    finish
fi
if "$BENCH" --size 512 --iters 4 --rounds 3 --out "$W/g.json" >"$W/out" 2>"$W/err"; then
    python3 - "$W/g.json" <<'PY' && ok "3 rounds each way, medians in the file" || fail "result file" "$(cat "$W/g.json")"
import json, statistics, sys
r = json.load(open(sys.argv[1]))
for path, key in (("codelet_rounds", "codelet_tflops"), ("cublas_rounds", "cublas_tflops")):
    v = r[path]
    assert r["rounds"] == 3 and len(v) == 3 and all(x > 0 for x in v), r
    assert abs(statistics.median(v) - r[key]) <= 0.01, (path, v, r[key])
PY
    grep -q '^| codelet / direct | ' "$W/out" && ok "table printed" || fail "table" "$(cat "$W/out")"
else
    fail "bench_gemm on the GPU" "$(cat "$W/err")"
fi
finish
