#!/usr/bin/env bash
# test_simulation.sh: the simulation build end to end (meson test -C build-sim). scripts/simulate.sh
# runs this build's gpt50b over the h100-x1 machine for 4 iterations of --preset gpt2-124m, one of
# scripts/sim_configs.txt's calibrated configurations, twice: each run must exit 0, log the
# simulation's banner, write 4 metrics lines with a positive elapsed_ms and end with
#     simulated h100-x1: X ms per iteration (median of iterations 2-4)
# and the second run must give the first one's elapsed_ms exactly (a simulation is deterministic).
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
[ "$failures" -eq 0 ] || { echo "test_simulation: $failures failures"; exit 1; }
echo "test_simulation: ok"
