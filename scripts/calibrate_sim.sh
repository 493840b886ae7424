#!/usr/bin/env bash
# calibrate_sim.sh OUTDIR [CONFIG...]: on the GPU host, in one device call (after scripts/ship.sh
# here), the simulation's calibration and the measurements it is validated against (issue 15,
# docs/simulation.md "How to run"). For each configuration of scripts/sim_configs.txt (or those
# named), in the file's order:
#   a. a calibration run (when its CAL > 0): the real build with STARPU_CALIBRATE=1,
#      STARPU_HOSTNAME=MACHINE (the machine file's name, not the lent host's) and
#      STARPU_PERF_MODEL_DIR=the calibration's models folder, CAL iterations, so that StarPU's
#      history models of the compute codelets get the configuration's shapes (StarPU drops each
#      footprint's first sample: 11 iterations give a once-per-iteration task 10 samples);
#   b. a measured run (when its ITERS > 0): the same configuration, STARPU_CALIBRATE=0, its own
#      models folder (the bus files copied from the calibration, so StarPU does not measure the
#      bus again), STARPU_BUS_STATS=1, --metrics; the median of iterations 2-ITERS is what the
#      simulation must predict. A run that swaps to NVMe (@NVME@ in its flags) is bracketed by
#      two disk probes (nvme_tune's mixed run alone, PROBE_SIZE (4G)), whose rates go to its
#      entry in summary.json (disk_mixed_GBps: before, after) for scripts/sim_validate.py.
# Before them, the figures of the machine file that the simulation's cost functions use, measured
# on this host: the disk (build/apps/nvme_tune at the I/O engine's settings: 1 MiB blocks, queue
# depth 32, 2 threads, DISK_SIZE (8G) in NVME_DIR; its mixed run with 1, 2 and 4 writes and reads
# in flight goes to summary.json's nvme_mixed_streams, which no cost function uses yet), CPU
# AdamW (build/apps/bench_adam, ADAM_PARAMS
# (67108864) parameters, bf16: the best GB/s of the selected ISA), and, from the calibration's bus
# files, StarPU's own pinned copy rates each way; the card, driver and memory from nvidia-smi.
#
# Exit status: 0 when every run was made, 1 when one failed or was skipped (the files are written
# either way), 2 for bad input. OUTDIR receives three files (the device tool brings back 8 at most, 2 folders deep):
#   summary.json             machine, date, card, driver, commit, the measured figures, and per
#                            configuration its flags, environment, whether it was calibrated, the
#                            measured iteration times and their median (or why not)
#   sim_calibration.tar.gz   sim_calibration/: summary.json, models/ (codelets/45/SYMBOL.MACHINE,
#                            bus/: the host's StarPU bus files, for reference), logs/ (every run's
#                            log, nvme_tune's and bench_adam's JSON, the models' summary),
#                            metrics/ (each run's JSON lines)
#   calibrate.log            this script's output
# Here, afterwards: python3 scripts/sim_models.py install OUT/sim_calibration.tar.gz --machine
# h100-x1 --commit SHA, then python3 scripts/sim_validate.py --measured OUT/summary.json.
#
# Time: configurations run while less than BUDGET_S (390) seconds have passed since the start;
# each run is stopped (SIGTERM, then KILL) when it reaches RUN_TIMEOUT_S (240) or the budget,
# and the rest are recorded as skipped. The default list takes about 4-5 minutes on an H100 host,
# about 6-7 with the device call's start. CALIBRATE_PLAN=1 prints the runs and runs nothing.
#
# Environment: MACHINE (h100-x1), SIM_CONFIGS (scripts/sim_configs.txt), NVME_DIR
# (/tmp/gpt50b-nvme: swap folders and nvme_tune's file), DISK_SIZE, PROBE_SIZE, ADAM_PARAMS,
# BUDGET_S, RUN_TIMEOUT_S, GPT50B_COMMIT (the shipped build's commit; else git's, when .git is
# there). The programs: GPT50B_APPS (a build's apps folder) or build/apps, else ship/build/apps
# (with ship/lib on LD_LIBRARY_PATH). Without a GPU (no nvidia-smi) it runs the same way on CPU
# workers: a check of the script, not a calibration (tests/apps/test_calibrate_sim.sh).
#
#   usage (device call, after scripts/ship.sh, carrying ship and data):
#     bash scripts/calibrate_sim.sh $OUT
set -euo pipefail
prog=calibrate_sim.sh
out=${1:?usage: calibrate_sim.sh OUTDIR [CONFIG...]}
shift
top=$(cd "$(dirname "$0")/.." && pwd)
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 2
}
machine=${MACHINE:-h100-x1}
configs=${SIM_CONFIGS:-$top/scripts/sim_configs.txt}
nvdir=${NVME_DIR:-/tmp/gpt50b-nvme}
budget=${BUDGET_S:-390}
run_limit=${RUN_TIMEOUT_S:-240}
data=$top/data/brown.bin
bin=${GPT50B_APPS:-$top/build/apps}
[ -x "$bin/gpt50b" ] || bin=$top/ship/build/apps
[ -d "$top/ship/lib" ] && export LD_LIBRARY_PATH=$top/ship/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -f "$top/scripts/machines/$machine.json" ] || die "unknown machine $machine: no scripts/machines/$machine.json"
list=$(python3 "$top/scripts/sim_configs.py" --file "$configs" shell "$@") || exit 2

if [ "${CALIBRATE_PLAN:-0}" = 1 ]; then
	while IFS='|' read -r name cal iters env flags; do
		flags=${flags//@NVME@/$nvdir/$name}
		[ "$cal" -gt 0 ] && echo "calibrate $name: env $env STARPU_CALIBRATE=1 STARPU_HOSTNAME=$machine $bin/gpt50b $flags --train-iters $cal"
		[ "$iters" -gt 0 ] && echo "measure   $name: env $env STARPU_HOSTNAME=$machine STARPU_BUS_STATS=1 $bin/gpt50b $flags --train-iters $iters"
	done <<<"$list"
	exit 0
fi
[ -x "$bin/gpt50b" ] || die "no gpt50b in build/apps or ship/build/apps: build, then scripts/ship.sh (and carry ship)"
[ -f "$data" ] || die "no $data: carry data/ (scripts/setup.sh makes it)"

mkdir -p "$out"
start=$(date +%s)
main() {
W=$(mktemp -d "${TMPDIR:-/tmp}/gpt50b-calib.XXXXXX")
trap 'rm -rf "$W"' EXIT
C=$W/sim_calibration
models=$C/models
measured=$W/measured-models
mkdir -p "$models" "$measured" "$C/logs" "$C/metrics" "$W/home" "$nvdir"
elapsed() { echo $(($(date +%s) - start)); }
say() { printf '[%4ds] %s\n' "$(elapsed)" "$*"; }

# --- the host ----------------------------------------------------------------------------------
card=none driver='' gpu_mib=''
if command -v nvidia-smi >/dev/null 2>&1; then
	IFS=',' read -r card driver gpu_mib < <(nvidia-smi --query-gpu=name,driver_version,memory.total \
		--format=csv,noheader,nounits | head -n 1) || true
	card=$(echo "$card" | xargs) driver=$(echo "$driver" | xargs) gpu_mib=$(echo "$gpu_mib" | xargs)
fi
commit=${GPT50B_COMMIT:-}
[ -n "$commit" ] || commit=$(git -C "$top" rev-parse HEAD 2>/dev/null || true)
say "$prog: machine $machine on $(hostname): card ${card}${driver:+, driver $driver}, $(nproc) cores, commit ${commit:-unknown}"
[ "$card" = none ] && say "no nvidia-smi: CPU workers only; this checks the script, it calibrates nothing for $machine"

# --- the machine file's figures, measured here --------------------------------------------------
say "disk: nvme_tune ${DISK_SIZE:-8G}, 1 MiB blocks, queue depth 32, 2 threads, 1/2/4 streams mixed, in $nvdir"
"$bin/nvme_tune" --path "$nvdir" --size "${DISK_SIZE:-8G}" --block-sizes 1M --queue-depths 32 --threads 2 \
	--streams 1,2,4 --out "$C/logs/disk.json" >"$C/logs/disk.log" 2>&1 || say "nvme_tune failed: $(tail -n 1 "$C/logs/disk.log")"
say "CPU AdamW: bench_adam ${ADAM_PARAMS:-67108864} parameters, bf16"
"$bin/bench_adam" --params "${ADAM_PARAMS:-67108864}" --iters 3 --dtype bf16 --isa selected --out "$C/logs/adam.json" \
	>"$C/logs/adam.log" 2>&1 || say "bench_adam failed: $(tail -n 1 "$C/logs/adam.log")"

# --- the configurations --------------------------------------------------------------------------
# run KIND NAME ITERS ENV FLAGS: one gpt50b run within the budget; KIND cal or measure. Its exit
# status goes to logs/KIND-NAME.rc (124/137: stopped at its time limit; "skipped": not started).
run() {
	local kind=$1 name=$2 iters=$3 envw=$4 flags=$5 left limit rc
	local log=$C/logs/$kind-$name.log rcf=$C/logs/$kind-$name.rc
	left=$((budget - $(elapsed)))
	limit=$((left < run_limit ? left : run_limit))
	if [ "$limit" -lt 20 ]; then
		say "$kind $name: skipped, ${left}s of the ${budget}s budget left"
		echo skipped >"$rcf"
		return
	fi
	local swap=$nvdir/$name
	flags=${flags//@NVME@/$swap}
	[[ $flags == *"$swap"* ]] && mkdir -p "$swap"
	local envs=(STARPU_HOSTNAME="$machine" STARPU_HOME="$W/home")
	if [ "$kind" = cal ]; then
		envs+=(STARPU_CALIBRATE=1 STARPU_PERF_MODEL_DIR="$models")
	else
		envs+=(STARPU_CALIBRATE=0 STARPU_PERF_MODEL_DIR="$measured" STARPU_BUS_STATS=1)
		[ -d "$models/bus" ] && [ ! -d "$measured/bus" ] && cp -r "$models/bus" "$measured/bus"
	fi
	# shellcheck disable=SC2206
	envs+=($envw)
	# shellcheck disable=SC2206
	local args=($flags --train-iters "$iters" --eval-iters 0 --log-interval 1 --data-path "$data"
		--metrics "$C/metrics/$kind-$name.jsonl")
	say "$kind $name: $iters iterations (limit ${limit}s): ${envw:+$envw }${args[*]}"
	local t0
	t0=$(date +%s)
	set +e
	(cd "$top" && env "${envs[@]}" timeout --kill-after=20 "$limit" "$bin/gpt50b" "${args[@]}") >"$log" 2>&1
	rc=$?
	set -e
	echo "$rc $(($(date +%s) - t0))" >"$rcf"
	rm -rf "$swap"
	if [ "$rc" -eq 0 ]; then
		say "$kind $name: done in $(($(date +%s) - t0))s: $(grep '^> done' "$log" | cut -c1-150)"
	else
		say "$kind $name: exit $rc after $(($(date +%s) - t0))s: $(grep -m1 -iE 'error|abort|does not' "$log" | cut -c1-200)"
	fi
}
# probe TAG: the disk's mixed rate now (nvme_tune's mixed run alone, PROBE_SIZE (4G)) into
# logs/probe-TAG.json. A measured run that swaps to NVMe has one just before and one just after
# (two such runs in a row share the one between them): the GPU host's disk has been seen to drift
# by 20% within a call, so the simulation of that run uses the rate of its own minutes.
last_probe=''
probe() {
	say "disk probe $1: nvme_tune ${PROBE_SIZE:-4G} mixed"
	"$bin/nvme_tune" --path "$nvdir" --size "${PROBE_SIZE:-4G}" --block-sizes 1M --queue-depths 32 --threads 2 \
		--streams 1 --out "$C/logs/probe-$1.json" >"$C/logs/probe-$1.log" 2>&1 ||
		say "disk probe $1 failed: $(tail -n 1 "$C/logs/probe-$1.log")"
	last_probe=$1
}
while IFS='|' read -r name cal iters envw flags; do
	[ "$cal" -gt 0 ] && run cal "$name" "$cal" "$envw" "$flags" && last_probe=''
	if [ "$iters" -gt 0 ]; then
		if [[ $flags == *@NVME@* ]]; then
			[ -n "$last_probe" ] && cp "$C/logs/probe-$last_probe.json" "$C/logs/probe-before-$name.json" ||
				probe "before-$name"
			run measure "$name" "$iters" "$envw" "$flags"
			probe "after-$name"
		else
			run measure "$name" "$iters" "$envw" "$flags"
			last_probe=''
		fi
	fi
done <<<"$list"

# --- summary -------------------------------------------------------------------------------------
python3 "$top/scripts/sim_models.py" --models "$models" summary --machine "$machine" >"$C/logs/models_summary.txt" 2>&1 || true
tail -n 1 "$C/logs/models_summary.txt" | sed "s/^ */[$(printf '%4d' "$(elapsed)")s] models: /"
(python3 - "$C" "$machine" "$configs" "$card" "$driver" "$gpu_mib" "$commit" "$(nproc)" "$nvdir" "$top/scripts" \
	"$@" <<'PY'
import datetime, json, os, shutil, sys
C, machine, cfgfile, card, driver, gpu_mib, commit, ncores, nvdir, scripts = sys.argv[1:11]
names = sys.argv[11:]
sys.path.insert(0, scripts)
import sim_configs

def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def fig(value, how):
    return {"value": value, "kind": "measured", "source": how}

figures = {}
disk = load(f"{C}/logs/disk.json")
if disk:
    r = [x for x in disk.get("results", []) if x.get("block_size") == 1 << 20 and x.get("queue_depth") == 32
         and x.get("threads") == 2] or disk.get("results", [])[:1]
    if r:
        how = "nvme_tune, 1 MiB blocks, queue depth 32, 2 threads, calibrate_sim.sh"
        figures["nvme_read_GBps"] = fig(r[0]["read_gbs"], how)
        figures["nvme_write_GBps"] = fig(r[0]["write_gbs"], how)
        if disk.get("best", {}).get("mixed_gbs"):
            figures["nvme_mixed_GBps"] = fig(disk["best"]["mixed_gbs"], "nvme_tune's mixed run (a write and a "
                                             "read of equal size queued at once), 1 MiB blocks, queue depth 32, "
                                             "2 threads, calibrate_sim.sh")
        figures["nvme_queue_depth"] = fig(32, how)
        figures["nvme_block_bytes"] = fig(1 << 20, how)
adam = load(f"{C}/logs/adam.json")
if adam and adam.get("results"):
    sel = [x for x in adam["results"] if x["isa"] == adam.get("selected_isa")] or adam["results"]
    best = max(sel, key=lambda x: x["gb_s"])
    figures["cpu_adamw_GBps"] = fig(best["gb_s"], f"bench_adam {adam['params']} {adam['dtype']} parameters, "
                                    f"{best['isa']}, {best['threads']} thread(s), 28 bytes per parameter, calibrate_sim.sh")
    one = [x for x in sel if x["threads"] == 1]
    if one:
        figures["cpu_adamw_core_GBps"] = fig(one[0]["gb_s"], f"bench_adam {adam['params']} {adam['dtype']} parameters, "
                                             f"{one[0]['isa']}, 1 thread, 28 bytes per parameter, calibrate_sim.sh")
bw = f"{C}/models/bus/{machine}.bandwidth"
if os.path.exists(bw):
    # StarPU's matrix: header "# to NUMA 0<TAB>to CUDA 0...", rows in the same order (MB/s)
    lines = open(bw).read().splitlines()
    cols = [c.strip()[3:] for c in lines[0].lstrip("# ").split("\t") if c.strip()] if lines else []
    rows = [l.split() for l in lines if not l.startswith("#")]
    try:
        g = cols.index("CUDA 0")
        h2d, d2h = float(rows[0][g]), float(rows[g][0])
        if h2d == h2d and d2h == d2h:  # not nan: a GPU was there
            how = "StarPU's bus calibration (pinned copies) in calibrate_sim.sh's first calibration run"
            figures["pcie_h2d_GBps"] = fig(round(h2d / 1e3, 2), how)
            figures["pcie_d2h_GBps"] = fig(round(d2h / 1e3, 2), how)
    except (IndexError, ValueError):
        pass
if gpu_mib:
    figures["gpu_memory_bytes"] = fig(int(float(gpu_mib)) << 20, "nvidia-smi memory.total, calibrate_sim.sh")
figures["cpu_cores"] = fig(int(ncores), "nproc on the GPU host, calibrate_sim.sh")

def status(kind, name):
    try:
        words = open(f"{C}/logs/{kind}-{name}.rc").read().split()
    except OSError:
        return None, None
    if words[0] == "skipped":
        return "skipped: time budget", None
    rc, secs = int(words[0]), int(words[1])
    return ("ok" if rc == 0 else f"stopped at its time limit" if rc in (124, 137) else f"exit {rc}"), secs

configs = {}
for c in sim_configs.select(sim_configs.load(cfgfile), names):
    e = {"cal_iters": c.cal, "iters": c.iters, "env": c.env, "flags": c.flags}
    if c.cal:
        e["calibration"], e["calibration_s"] = status("cal", c.name)
        e["calibrated"] = e["calibration"] == "ok"
    else:
        e["calibrated"] = False
    if c.iters:
        e["status"], e["wall_s"] = status("measure", c.name)
        try:
            rows = [json.loads(l) for l in open(f"{C}/metrics/measure-{c.name}.jsonl") if l.strip()]
        except (OSError, ValueError):
            rows = []
        e["elapsed_ms"] = [r["elapsed_ms"] for r in rows]
        e["loss"] = [r["loss"] for r in rows]
        probes = [load(f"{C}/logs/probe-{w}-{c.name}.json") for w in ("before", "after")]
        rates = [(p or {}).get("best", {}).get("mixed_gbs") for p in probes]
        if any(rates):
            e["disk_mixed_GBps"] = {"before": rates[0], "after": rates[1]}
        rest = sorted(e["elapsed_ms"][1:])
        if e["status"] == "ok" and len(rows) == c.iters and rest:
            m = len(rest) // 2
            e["median_ms"] = rest[m] if len(rest) % 2 else (rest[m - 1] + rest[m]) / 2
            e["median_of"] = f"iterations 2-{c.iters}"
    configs[c.name] = e

summary = {"machine": machine, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
           "card": card, "driver": driver or None, "commit": commit or None, "host": os.uname().nodename,
           "calibrate_minimum": int(os.environ.get("STARPU_CALIBRATE_MINIMUM", "10")),
           "starpu_sched": os.environ.get("STARPU_SCHED") or "gpt50b's default",
           "nvme_dir": nvdir, "figures": figures, "configs": configs}
if disk and disk.get("best", {}).get("mixed_streams"):
    summary["nvme_mixed_streams"] = disk["best"]["mixed_streams"]
with open(f"{C}/summary.json", "w") as f:
    json.dump(summary, f, indent=1)
    f.write("\n")
print(f"\n{'configuration':<18} {'calibration':<22} {'measured':<26} {'median ms (2-N)':>16}")
for n, e in configs.items():
    cal = e.get("calibration") or "-"
    med = f"{e['median_ms']:.1f}" if "median_ms" in e else "-"
    print(f"{n:<18} {cal:<22} {e.get('status') or '-':<26} {med:>16}")
print("figures: " + ", ".join(f"{k} {v['value']}" for k, v in figures.items()))
failed = [n for n, e in configs.items() if e.get("calibration", "ok") != "ok" or e.get("status", "ok") != "ok"]
if failed:
    print(f"not all runs made: {', '.join(failed)}")
sys.exit(1 if failed else 0)
PY
) && all=0 || all=1
cp "$C/summary.json" "$out/summary.json"
tar -czf "$out/sim_calibration.tar.gz" -C "$W" sim_calibration
say "$prog: $out/summary.json, $out/sim_calibration.tar.gz ($(du -h "$out/sim_calibration.tar.gz" | cut -f1)), $out/calibrate.log"
return "$all"
}
# the script's output also goes to OUTDIR/calibrate.log (a pipeline: tee has finished when it
# ends; with pipefail its status is main's)
main "$@" 2>&1 | tee -a "$out/calibrate.log"
