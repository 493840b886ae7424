#!/usr/bin/env bash
# test_trace_overlap.sh: scripts/trace_overlap.py on a hand-made tasks.rec whose overlaps are
# known: swap-in [0,10] and [20,30], AdamW [5,25], a matmul [8,22]; internal StarPU tasks and an
# unexecuted task (no times) are ignored. Exits 0 / 1, 77 without python3.
set -u
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }
top=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
task() { printf 'Name: %s\nJobId: %s\nStartTime: %s\nEndTime: %s\n\n' "$@"; }
{
    task swap_in 1 0 10
    task swap_in 2 20 30
    task adamw 3 5 25
    task matmul_fwd 4 8 22
    task _starpu_data_acquire_post 5 0 100
    printf 'Name: swap_out\nJobId: 6\n\n'
} >"$w/tasks.rec"
python3 "$top/scripts/trace_overlap.py" "$w/tasks.rec" --out "$w/o.json" || exit 1
python3 - "$w/o.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want = {"AdamW & compute": 14, "AdamW & swap-in": 10, "compute & swap-in": 4}
ok = abs(r["span_ms"] - 30) < 1e-9 and r["groups"]["swap-in"]["busy_ms"] == 20 and \
    "swap-out" not in r["groups"] and all(abs(r["overlap_ms"][k] - v) < 1e-9 for k, v in want.items())
print("ok - overlaps of a known trace" if ok else f"FAIL - overlaps: {r}")
sys.exit(0 if ok else 1)
PY
