#!/usr/bin/env bash
# test_bench_gpu.sh: scripts/bench_gpu.sh with stand-ins for gpt50b, bench_gemm and
# bench_pytorch.py (GPT50B_APPS, BENCH_PYTORCH), so it runs anywhere: the table and result file
# of one configuration with RUNS=3 and TORCH_RUNS=3 (each side's row is its median run, every
# run's median listed, the runs alternate between the two sides), RUNS=2 (the lower middle run),
# and bad input (RUNS 0, an unknown configuration: one line, exit 2, before any benchmark runs).
set -u
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BENCH=$TOP/scripts/bench_gpu.sh
DATA=unused CHECK=unused
. "$(dirname "$0")/testlib.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/test_bench_gpu.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/apps"
# each stand-in takes its next time from a list (STUB_OURS_MS, STUB_TORCH_MS) by a counter file
cat >"$W/apps/gpt50b" <<'SH'
#!/usr/bin/env bash
n=$(($(cat "$W_STUB/ours.n" 2>/dev/null || echo 0) + 1)); echo "$n" >"$W_STUB/ours.n"
echo "gpt50b $n" >>"$W_STUB/order"
read -ra ms <<<"$STUB_OURS_MS"
while [ $# -gt 0 ]; do [ "$1" = --metrics ] && metrics=$2; shift; done
for i in 1 2 3 4 5 6 7 8 9 10; do
	t=$([ "$i" -le 2 ] && echo 900 || echo "${ms[n - 1]}")
	echo "{\"iteration\": $i, \"elapsed_ms\": $t, \"loss\": 11.0, \"skipped\": false}" >>"$metrics"
done
SH
cat >"$W/apps/bench_gemm" <<'SH'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
echo '{"device": "Stand-in GPU", "codelet_tflops": 700.0, "cublas_tflops": 690.0}' >"$out"
SH
cat >"$W/torch.py" <<'PY'
import json, os, sys
d = os.environ["W_STUB"]
n = int(open(f"{d}/torch.n").read()) + 1 if os.path.exists(f"{d}/torch.n") else 1
open(f"{d}/torch.n", "w").write(str(n))
open(f"{d}/order", "a").write(f"torch {n}\n")
ms = float(os.environ["STUB_TORCH_MS"].split()[n - 1])
out = sys.argv[sys.argv.index("--out") + 1]
json.dump({"micro_batch": 4, "model": {"seq": 1024, "params": 1.3e9}, "gradient_checkpointing": True,
           "median_ms": ms, "tokens_per_s": 4096 / (ms / 1e3), "tflops_per_gpu": 100.0, "compile_s": 40.0 + n},
          open(out, "w"))
PY
chmod +x "$W/apps/gpt50b" "$W/apps/bench_gemm"
export GPT50B_APPS=$W/apps BENCH_PYTORCH=$W/torch.py W_STUB=$W EAGER=0 CONFIGS=1.3b-bf16

bench() { # bench RUNS TORCH_RUNS OURS_MS TORCH_MS: a fresh run into $W/o
	rm -rf "$W/o" "$W/ours.n" "$W/torch.n" "$W/order"
	RUNS=$1 TORCH_RUNS=$2 STUB_OURS_MS=$3 STUB_TORCH_MS=$4 bash "$BENCH" "$W/o" >"$W/out" 2>"$W/err"
}
if bench 3 3 "103 99 98" "112 110 115"; then
	python3 - "$W/o/bench_gpu.json" <<'PY' && ok "RUNS=3 TORCH_RUNS=3: each side's median run, every run's median in the file" || fail "result file" "$(cat "$W/o/bench_gpu.json")"
import json, sys
r = json.load(open(sys.argv[1]))
c = r["configs"]["1.3b-bf16"]
g, t = c["gpt50b"], c["pytorch_compile"]
assert r["runs"] == 3 and r["torch_runs"] == 3, r
assert g["median_ms"] == 99 and g["runs_median_ms"] == [103, 99, 98], g
assert t["median_ms"] == 112 and t["runs_median_ms"] == [112, 110, 115] and t["runs_compile_s"] == [41, 42, 43], t
assert t["compile_s"] == 41 and abs(g["vs_compile"] - 112 / 99) < 1e-9, (t, g)
PY
	grep -q '^| 1.3b-bf16 gpt50b | 99.0 | .* | \*\*1.13x\*\* |' "$W/out" && grep -q '^| 1.3b-bf16 torch.compile | 112.0 | .* | 41.0 |' "$W/out" &&
		grep -q '^1.3b-bf16: gpt50b runs 103.0, 99.0, 98.0 ms; torch.compile runs 112.0, 110.0, 115.0 ms$' "$W/out" &&
		ok "table rows and the runs' line" || fail "table" "$(cat "$W/out")"
	[ "$(tr '\n' ' ' <"$W/order")" = "gpt50b 1 torch 1 gpt50b 2 torch 2 gpt50b 3 torch 3 " ] &&
		ok "the runs alternate" || fail "order of runs" "$(cat "$W/order")"
else
	fail "bench_gpu.sh with stand-ins" "$(cat "$W/err")"
fi
if bench 2 1 "105 100" "110"; then
	python3 -c "import json,sys; c = json.load(open(sys.argv[1]))['configs']['1.3b-bf16']; assert c['gpt50b']['median_ms'] == 100 and c['pytorch_compile']['runs_median_ms'] == [110], c" \
		"$W/o/bench_gpu.json" && ok "RUNS=2: the lower middle run" || fail "RUNS=2" "$(cat "$W/o/bench_gpu.json")"
	grep -q '^1.3b-bf16: gpt50b runs 105.0, 100.0 ms; torch.compile runs 110.0 ms$' "$W/out" &&
		[ "$(tr '\n' ' ' <"$W/order")" = "gpt50b 1 torch 1 gpt50b 2 " ] && ok "RUNS=2 TORCH_RUNS=1: two gpt50b runs, one torch.compile" ||
		fail "RUNS=2 runs" "$(cat "$W/order" "$W/out")"
else
	fail "bench_gpu.sh RUNS=2" "$(cat "$W/err")"
fi
for bad in "RUNS=0" "TORCH_RUNS=x" "CONFIGS=1.3b-fp32"; do
	rm -rf "$W/o" "$W/order"
	env "$bad" STUB_OURS_MS=1 STUB_TORCH_MS=1 bash "$BENCH" "$W/o" >"$W/out" 2>"$W/err"
	rc=$?
	if [ $rc -eq 2 ] && [ "$(wc -l <"$W/err")" -eq 1 ] && grep -q '^bench_gpu.sh: error: ' "$W/err" && [ ! -e "$W/o" ] && [ ! -e "$W/order" ]; then
		ok "$bad: exit 2, $(cat "$W/err")"
	else
		fail "$bad" "exit $rc: $(cat "$W/err")"
	fi
done
finish
