#!/usr/bin/env bash
# test_simulation.sh: the simulation build end to end (meson test -C build-sim). scripts/simulate.sh
# runs this build's gpt50b over the h100-x1 machine for 4 iterations of --preset gpt2-124m, one of
# scripts/sim_configs.txt's calibrated configurations, twice: each run must exit 0, log the
# simulation's banner, write 4 metrics lines with a positive elapsed_ms and end with
#     simulated h100-x1: X ms per iteration (median of iterations 2-4)
# and the second run must give the first one's elapsed_ms exactly (a simulation is deterministic);
# that prediction must lie within 15% of the median the GPU host measured for the same
# configuration in the calibration call of the committed models (sim/models/h100-x1.json), so
# models or code that drift from the measurement fail here. Then a shape no calibration run had
# (6 layers instead of 12, so the gradient-norm and zero-fill tasks' footprints are new) must
# simulate too, through the nearest calibrated shapes (codelets/machine_cost.c), and take less
# time than the 12 layers and more than half of it. Last, scripts/sim_sweep.py over gpt2-124m with
# its optimizer state on NVMe: the slower disk must give the slower iteration, each scheduler
# point must run, the JSON must hold every point, and a bad --iters must be one line, exit 2.
# Last, the delayed update's PCIe traffic under a GPU memory cap (see the section).
# Exits 77 when the models folder (sim/models, or GPT50B_SIM_MODELS) has no h100-x1 codelet
# models: they are calibrated on the GPU host (sim/models/README.md).
#
#   usage: test_simulation.sh BUILD_SIM/apps/gpt50b      (GPT50B_TOP: the source root)
set -u
bin=$1
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
models=${GPT50B_SIM_MODELS:-$TOP/sim/models}
shopt -s nullglob
found=("$models"/codelets/45/*.h100-x1)
shopt -u nullglob
if [ ${#found[@]} -eq 0 ]; then
	echo "skip: no h100-x1 codelet models in $models/codelets/45 (calibrated on the GPU host, sim/models/README.md)"
	exit 77
fi
GPT50B_SIM_BUILD=$(cd "$(dirname "$bin")/.." && pwd)
export GPT50B_SIM_BUILD
unset STARPU_PERF_MODEL_DIR STARPU_HOSTNAME STARPU_NCUDA STARPU_NCPU STARPU_SCHED STARPU_FXT_TRACE
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
failures=0
fail() {
	echo "FAIL - $1"
	failures=$((failures + 1))
}

for run in 1 2; do
	out=$("$TOP/scripts/simulate.sh" h100-x1 --preset gpt2-124m --train-iters 4 --data-path "$TOP/data/brown.bin" \
		--metrics "$W/m$run.jsonl" 2>&1)
	rc=$?
	last=$(printf '%s\n' "$out" | tail -n 1)
	if [ "$rc" -ne 0 ]; then
		fail "run $run: exit $rc: $(printf '%s\n' "$out" | tail -n 5)"
		continue
	fi
	[[ $out == *"> simulation of h100-x1 ("* ]] || fail "run $run: no simulation banner"
	if [[ $last =~ ^simulated\ h100-x1:\ [0-9]+\.[0-9]\ ms\ per\ iteration\ \(median\ of\ iterations\ 2-4\)$ ]]; then
		echo "ok - run $run: $last"
	else
		fail "run $run: last line: $last"
	fi
	python3 - "$W/m$run.jsonl" <<'PY' || fail "run $run: metrics $W/m$run.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [r["iteration"] for r in rows] == [1, 2, 3, 4], rows
assert all(r["elapsed_ms"] > 0 for r in rows), rows
PY
done
if cmp -s <(python3 -c 'import json,sys; [print(json.loads(l)["elapsed_ms"]) for l in open(sys.argv[1])]' "$W/m1.jsonl") \
	<(python3 -c 'import json,sys; [print(json.loads(l)["elapsed_ms"]) for l in open(sys.argv[1])]' "$W/m2.jsonl"); then
	echo "ok - the two runs' elapsed_ms are identical"
else
	fail "the two runs' elapsed_ms differ: $(paste "$W/m1.jsonl" "$W/m2.jsonl" | head -4)"
fi
predicted=$(python3 -c 'import json,sys; r=[json.loads(l)["elapsed_ms"] for l in open(sys.argv[1])][1:]; r.sort(); print(r[len(r)//2])' "$W/m1.jsonl" 2>/dev/null)
check=$(python3 - "$models/h100-x1.json" "$predicted" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
cal = doc.get("calibration", doc)
measured = cal["configs"]["gpt2-124m"]["median_ms"]
predicted = float(sys.argv[2])
err = (predicted - measured) / measured
print(f"{'ok' if abs(err) <= 0.15 else 'FAIL'} predicted {predicted:.1f} ms, measured {measured:.1f} ms "
      f"on {cal.get('card', '?')} ({err * 100:+.1f}%, tolerance 15%)")
PY
)
case $check in
ok*) echo "ok - gpt2-124m: $check" ;;
*) fail "gpt2-124m against the GPU host: ${check:-no prediction or no measurement}" ;;
esac
out=$("$TOP/scripts/simulate.sh" h100-x1 --preset gpt2-124m --num-layers 6 --train-iters 5 \
	--data-path "$TOP/data/brown.bin" --metrics "$W/m6.jsonl" 2>&1)
rc=$?
six=$(python3 -c 'import json,sys; r=[json.loads(l)["elapsed_ms"] for l in open(sys.argv[1])][1:]; r.sort(); print(r[len(r)//2])' "$W/m6.jsonl" 2>/dev/null)
if [ "$rc" -eq 0 ] && [ -n "$six" ] && python3 -c "import sys; s, t = map(float, sys.argv[1:]); sys.exit(not (t / 2 < s < t))" "$six" "$predicted"; then
	echo "ok - 6 layers (an uncalibrated shape): $six ms, between half of and the 12 layers' $predicted ms"
else
	fail "6 layers: exit $rc, $six ms against the 12 layers' $predicted ms: $(printf '%s\n' "$out" | tail -n 3)"
fi
sweep_out=$(python3 "$TOP/scripts/sim_sweep.py" --machine h100-x1 --nvme 1,8 --scheds lws,dmdas --iters 3 \
	--out "$W/sweep" -- --preset gpt2-124m --num-layers 2 --offload-optimizer nvme --nvme-path "$W/swap" \
	--nvme-resident-fraction 0 --data-path "$TOP/data/brown.bin" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && python3 - "$W/sweep/sweep.json" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
n = {r["nvme_GBps"]: r for r in d["nvme"]}
s = {r["sched"]: r for r in d["schedulers"]}
assert set(n) == {1.0, 8.0} and set(s) == {"lws", "dmdas"}, d
assert n[1.0]["median_ms"] > n[8.0]["median_ms"], n
assert n[1.0]["nvme_read_GB"] > 0 and s["dmdas"]["scheduler"] == "dmdas", (n, s)
PY
	echo "ok - sim_sweep.py: the 1 GB/s disk is slower than the 8 GB/s one; lws and dmdas ran"
else
	fail "sim_sweep.py: exit $rc: $(printf '%s\n' "$sweep_out" | tail -n 8)"
fi
bad=$(python3 "$TOP/scripts/sim_sweep.py" --iters 2 -- --preset gpt2-124m 2>&1)
rc=$?
if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$bad" | wc -l)" -eq 1 ]; then
	echo "ok - sim_sweep.py --iters 2: exit 2, one line"
else
	fail "sim_sweep.py --iters 2: exit $rc: $bad"
fi
# --delayed-param-update under a GPU memory cap that holds one set of compute copies and gradients
# but not two (cpu-3b6's shape): it must not move more parameters to the GPU than the exact step.
# Before its last iteration's copies were evicted at the step's start, StarPU evicted by age and
# took the current iteration's parameters between its forward and its backward (1.7x the bytes).
for mode in exact delayed; do
	flags=(--num-layers 4 --hidden-size 8192 --num-attention-heads 32 --seq-length 1024
		--max-position-embeddings 1024 --micro-batch-size 4 --bf16 --checkpoint-activations
		--offload-param cpu --offload-optimizer cpu --train-iters 4 --data-path "$TOP/data/brown.bin"
		--metrics "$W/$mode.jsonl")
	[ "$mode" = delayed ] && flags+=(--delayed-param-update)
	STARPU_LIMIT_CUDA_MEM=16384 STARPU_BUS_STATS=1 "$TOP/scripts/simulate.sh" h100-x1 "${flags[@]}" \
		>"$W/$mode.log" 2>&1 || fail "$mode 3.6B run under a 16 GiB cap: $(tail -n 3 "$W/$mode.log")"
done
up() { awk '$1 == "NUMA" && $2 == "0" && $3 == "->" && $4 == "CUDA" {print $7 == "GB" ? $6 : ($7 == "MB" ? $6 / 1000 : -1)}' "$1"; }
exact=$(up "$W/exact.log")
delayed=$(up "$W/delayed.log")
if [ -n "$exact" ] && [ -n "$delayed" ] && python3 -c "import sys; e, d = map(float, sys.argv[1:]); sys.exit(not (0 < e and 0 < d <= 1.02 * e))" "$exact" "$delayed"; then
	echo "ok - under a 16 GiB cap the delayed update moves $delayed GB to the GPU, the exact step $exact GB"
else
	fail "parameters to the GPU under a 16 GiB cap: delayed update '${delayed}' GB, exact step '${exact}' GB (at most 1.02x)"
fi
[ "$failures" -eq 0 ] || { echo "test_simulation: $failures failures"; exit 1; }
echo "test_simulation: ok"
