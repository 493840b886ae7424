#!/usr/bin/env bash
# simulate.sh MACHINE [GPT50B_FLAGS...]: runs gpt50b's task graph on a simulated MACHINE (StarPU on
# SimGrid, docs/simulation.md) on any machine, no GPU needed, and prints gpt50b's usual log lines
# with simulated times, then as its last line
#     simulated MACHINE: X ms per iteration (median of iterations 2-N)
# from the --metrics JSON lines gpt50b writes (its own file, or yours when FLAGS has --metrics).
#
# MACHINE: a name of scripts/machines/ (h100-x1, h100-x2, h200-x1, cori-v100-2x8) or a machine
# file's path. What it does:
#   1. writes the machine's bus files (scripts/sim_platform.py) into a temporary folder next to a
#      link to the codelet models (sim/models/codelets: SYMBOL.MACHINE files, scripts/sim_models.py);
#   2. sets, unless you set them (a STARPU_ variable you set is never changed):
#        STARPU_PERF_MODEL_DIR=that folder   (set it yourself and its bus/ and codelets/ are used
#                                             as they are: nothing is generated)
#        STARPU_HOSTNAME=the machine's name  STARPU_PERF_MODEL_HOMOGENEOUS_CUDA=1
#        STARPU_NCUDA=nodes x GPUs per node  STARPU_SILENT=1 (0 shows StarPU's warnings)
#        STARPU_HOME=that folder (StarPU writes nothing under ~/.starpu)
#        STARPU_MALLOC_SIMULATION_FOLD=256   (MiB: folded host buffers of up to 16 TB stay under
#                                             vm.max_map_count's 65530 mappings; the seed's 16
#                                             ranks in one process fold more than 1 TB)
#        STARPU_SIMGRID_CUDA_QUEUE_COST=0    (StarPU's simulated 10 us of queueing per GPU task
#                                             and copy: the real CUDA worker keeps 2 tasks in
#                                             flight and times a queued task from the end of the
#                                             one before it, so the calibrated durations already
#                                             hold the launch gaps; docs/simulation.md)
#   3. runs build-sim/apps/gpt50b --machine MACHINE --log=xbt_cfg.thres:warning FLAGS... (and
#      --metrics FILE when FLAGS has none), its output passed through.
# Tracing: --trace FIRST:LAST (or STARPU_FXT_TRACE=1) records the simulated run in
# STARPU_FXT_PREFIX (default /tmp/); a line before the last says how scripts/trace_report.py
# draws it (with the SimGrid StarPU's starpu_fxt_tool).
#
# Environment: GPT50B_SIM_BUILD (default build-sim), GPT50B_SIM_MODELS (a folder holding
# codelets/45/, default sim/models), GPT50B_SIM_HALF_DUPLEX=1 (sim_platform.py --half-duplex),
# GPT50B_SIM_KEEP=1 (keep the temporary folder and say where), STARPU_SIM_PREFIX (the SimGrid
# StarPU, default ~/.cache/gpt50b/starpu-1.4.10-simgrid; only to name its starpu_fxt_tool).
# Exit status: gpt50b's; 2 with one line for bad input (unknown machine, no simulation build, no
# models for the machine, --machine among the flags); 1 when gpt50b wrote no iteration.
set -euo pipefail
prog=simulate.sh
top=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '%s: %s\n' "$prog" "$*"; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 2
}
machines() {
	local f names=()
	for f in "$top"/scripts/machines/*.json; do names+=("$(basename "$f" .json)"); done
	(IFS=,; printf '%s' "${names[*]}" | sed 's/,/, /g')
}

[ $# -ge 1 ] || die "usage: scripts/simulate.sh MACHINE [GPT50B_FLAGS...]; MACHINE: $(machines), or a machine file"
case $1 in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac
machine=$1
shift
if [[ $machine == */* || $machine == *.json ]]; then
	mfile=$machine
	[ -f "$mfile" ] || die "machine file $mfile not found"
	machine_arg=$(cd "$(dirname "$mfile")" && pwd)/$(basename "$mfile")
else
	mfile=$top/scripts/machines/$machine.json
	[ -f "$mfile" ] || die "unknown machine $machine: choose one of $(machines), or give a machine file"
	machine_arg=$machine
fi
info=$(python3 - "$top/scripts" "$mfile" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import sim_platform as s
try:
    m = s.load_machine(sys.argv[2])
    print(m["name"], s.Platform(m).ngpu)
except s.MachineError as e:
    print(f"simulate.sh: error: {e}", file=sys.stderr)
    sys.exit(2)
PY
) || exit 2
read -r name ngpu <<<"$info"

# the flags: what the script must know of them
metrics='' user_metrics='' dry=0 trace=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	case ${args[i]} in
	--machine | --machine=*) die "--machine among the flags: give the machine as simulate.sh's first argument" ;;
	--metrics) metrics=${args[i + 1]:-} user_metrics=$metrics ;;
	--metrics=*) metrics=${args[i]#--metrics=} user_metrics=$metrics ;;
	--dry-run | --help) dry=1 ;;
	--trace | --trace=*) trace=1 ;;
	esac
done
[ "${STARPU_FXT_TRACE:-0}" = 1 ] && trace=1

build=${GPT50B_SIM_BUILD:-$top/build-sim}
bin=$build/apps/gpt50b
sim_prefix=${STARPU_SIM_PREFIX:-${GPT50B_CACHE:-$HOME/.cache/gpt50b}/starpu-1.4.10-simgrid}
[ -x "$bin" ] || die "no simulation build: $bin is missing; scripts/setup_sim.sh, then PKG_CONFIG_PATH=$sim_prefix/lib/pkgconfig meson setup ${build#"$top"/} -Dcuda=disabled -Dsimulation=true && ninja -C ${build#"$top"/}"
opts=$build/meson-info/intro-buildoptions.json
if [ -f "$opts" ] && ! python3 -c 'import json, sys; sys.exit(0 if any(o["name"] == "simulation" and o["value"] is True for o in json.load(open(sys.argv[1]))) else 1)' "$opts"; then
	die "$build is not a simulation build (meson option simulation is not true): meson configure ${build#"$top"/} -Dsimulation=true, or set GPT50B_SIM_BUILD"
fi

host=${STARPU_HOSTNAME:-$name}
work=$(mktemp -d "${TMPDIR:-/tmp}/gpt50b-sim.XXXXXX")
cleanup() { if [ "${GPT50B_SIM_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
if [ -n "${STARPU_PERF_MODEL_DIR:-}" ]; then
	dir=$STARPU_PERF_MODEL_DIR
	[ -f "$dir/bus/$host.platform.v4.xml" ] || die "STARPU_PERF_MODEL_DIR=$dir has no bus/$host.platform.v4.xml: unset it to have one written from $mfile"
	models=$dir
else
	dir=$work
	models=${GPT50B_SIM_MODELS:-$top/sim/models}
	duplex=()
	[ "${GPT50B_SIM_HALF_DUPLEX:-0}" = 1 ] && duplex=(--half-duplex)
	python3 "$top/scripts/sim_platform.py" "$mfile" "$work" --hostname "$host" "${duplex[@]}" >/dev/null || exit 2
	if [ -d "$models/codelets" ]; then
		ln -s "$(cd "$models/codelets" && pwd)" "$work/codelets"
	fi
fi
if [ "$dry" = 0 ]; then
	shopt -s nullglob
	found=("$models/codelets/45/"*."$host")
	shopt -u nullglob
	[ ${#found[@]} -gt 0 ] || die "no codelet models for $host in $models/codelets/45: calibrate it on the GPU host (scripts/calibrate_sim.sh, then scripts/sim_models.py install) or derive them (scripts/sim_models.py derive --to $host)"
fi

export STARPU_PERF_MODEL_DIR=$dir STARPU_HOSTNAME=$host
export STARPU_PERF_MODEL_HOMOGENEOUS_CUDA=${STARPU_PERF_MODEL_HOMOGENEOUS_CUDA:-1}
export STARPU_NCUDA=${STARPU_NCUDA:-$ngpu} STARPU_SILENT=${STARPU_SILENT:-1}
export STARPU_HOME=${STARPU_HOME:-$work}
export STARPU_MALLOC_SIMULATION_FOLD=${STARPU_MALLOC_SIMULATION_FOLD:-256}
export STARPU_SIMGRID_CUDA_QUEUE_COST=${STARPU_SIMGRID_CUDA_QUEUE_COST:-0}

extra=()
before=0
if [ -z "$metrics" ]; then
	metrics=$work/metrics.jsonl
	[ "$dry" = 1 ] || extra=(--metrics "$metrics")
elif [ -f "$metrics" ]; then
	before=$(wc -l <"$metrics") # gpt50b appends: only this run's lines count
fi

# stdout straight through; stderr through tee (kept to recognise StarPU's uncalibrated-model line)
set +e
{ "$bin" --machine "$machine_arg" --log=xbt_cfg.thres:warning "$@" "${extra[@]}" 2>&1 1>&3 3>&- |
	tee "$work/stderr" >&2; } 3>&1
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
	if grep -q 'does not have a perfmodel, or is not calibrated enough' "$work/stderr" 2>/dev/null; then
		say "the models of $host in $models/codelets/45 have no entry for a task of this run (the codelet named above, at a shape not calibrated): calibrate this configuration on the GPU host (add it to scripts/sim_configs.txt, scripts/calibrate_sim.sh) or check STARPU_HOSTNAME; scripts/sim_models.py summary lists what there is" >&2
	else
		hint=''
		[ "$STARPU_SILENT" = 1 ] && hint=" (STARPU_SILENT=0 shows StarPU's warnings)"
		say "gpt50b exited with status $rc$hint" >&2
	fi
	exit "$rc"
fi
[ "$dry" = 0 ] || exit 0

if [ "$trace" = 1 ]; then
	fxt=${STARPU_FXT_PREFIX:-/tmp/}
	tool=$sim_prefix/bin/starpu_fxt_tool
	say "trace of the simulated run in ${fxt}: STARPU_FXT_TOOL=$tool python3 scripts/trace_report.py --fxt $fxt${user_metrics:+ --metrics $user_metrics} --out DIR"
fi
python3 - "$metrics" "$before" "$name" <<'PY'
import json, sys
path, before, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    with open(path) as f:
        lines = f.read().splitlines()[before:]
    its = [(r["iteration"], r["elapsed_ms"]) for r in map(json.loads, filter(str.strip, lines))]
except FileNotFoundError:
    its = []
except (OSError, ValueError, KeyError, TypeError) as e:
    print(f"simulate.sh: error: metrics {path}: {e}", file=sys.stderr)
    sys.exit(1)
if not its:
    print(f"simulate.sh: error: gpt50b wrote no iteration to {path}", file=sys.stderr)
    sys.exit(1)
rest = its[1:] or its
ms = sorted(t for _, t in rest)
mid = len(ms) // 2
median = ms[mid] if len(ms) % 2 else (ms[mid - 1] + ms[mid]) / 2
print(f"simulated {name}: {median:.1f} ms per iteration (median of iterations {rest[0][0]}-{rest[-1][0]})")
PY
