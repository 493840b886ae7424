#!/usr/bin/env bash
# test_simulate.sh: scripts/simulate.sh's handling of its arguments, environment and output.
#
# 1. Against a stand-in gpt50b (a shell script in a temporary build folder, GPT50B_SIM_BUILD) and
#    a models folder written here (GPT50B_SIM_MODELS): bad input is exit 2 and one line (no
#    arguments, unknown machine, missing machine file, no build, a build that is not a simulation
#    build, no models for the machine, --machine among the flags); a run gets --machine NAME
#    --log=xbt_cfg.thres:warning and its own --metrics, STARPU_HOSTNAME, STARPU_NCUDA (nodes x GPUs),
#    STARPU_PERF_MODEL_HOMOGENEOUS_CUDA=1, STARPU_SILENT=1 and a STARPU_PERF_MODEL_DIR holding the
#    machine's bus files and the models, and the last line is the median of iterations 2-N; the
#    STARPU_ variables a user set stay; a user's --metrics file is read (its earlier lines not);
#    --dry-run needs no models and prints no last line; a machine given as a file; the uncalibrated
#    codelet's death gets a hint and gpt50b's exit status; no iteration is exit 1; no temporary
#    folder is left.
# 2. When the SimGrid StarPU and a C compiler are there: a small StarPU program standing in for
#    gpt50b (one GPU task per iteration, its duration from a history model written here, 64 MiB
#    uploaded in the first iteration) simulated on h100-x1 and cori-v100-2x8 through
#    simulate.sh: the simulated times are the model's, the upload's is at the machine's PCIe rate,
#    and a footprint missing from the model ends with the hint.
# Exits 0 / 1 (77 is not used: part 2 is skipped with a line when its tools are missing).
#
#   usage: test_simulate.sh        (GPT50B_TOP: the source root; default ../..)
set -u
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
SIM=$TOP/scripts/simulate.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export TMPDIR=$W/tmp
mkdir -p "$TMPDIR"
unset STARPU_HOSTNAME STARPU_NCUDA STARPU_NCPU STARPU_SILENT STARPU_PERF_MODEL_DIR STARPU_HOME \
	STARPU_PERF_MODEL_HOMOGENEOUS_CUDA STARPU_FXT_TRACE STARPU_SCHED GPT50B_SIM_KEEP
failures=0
ok() { echo "ok - $1"; }
fail() {
	echo "FAIL - $1: $2"
	failures=$((failures + 1))
}
# one_line WHAT WANT_RC PATTERN CMD...: CMD exits WANT_RC with one line of output matching PATTERN
one_line() {
	local what=$1 want=$2 pat=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ $out == *$pat* ]]; then
		ok "$what: exit $rc, one line"
	else
		fail "$what" "exit $rc (want $want), output: $out"
	fi
}

# --- 1. stand-in gpt50b ------------------------------------------------------------------------
B=$W/build-sim
mkdir -p "$B/apps" "$W/models/codelets/45"
for m in h100-x1 cori-v100-2x8; do echo "stand-in" >"$W/models/codelets/45/gpt50b_matmul_forward.$m"; done
cat >"$B/apps/gpt50b" <<'EOF'
#!/usr/bin/env bash
# stand-in: records its arguments and environment, writes STUB_TIMES as metrics lines
printf '%s\n' "$@" >"$STUB_LOG.args"
env | grep -E '^STARPU_' | sort >"$STUB_LOG.env"
[ -n "$STARPU_PERF_MODEL_DIR" ] && ls -RL "$STARPU_PERF_MODEL_DIR/" >"$STUB_LOG.dir" 2>&1
metrics=
while [ $# -gt 0 ]; do
	case $1 in --metrics) metrics=$2; shift ;; --metrics=*) metrics=${1#--metrics=} ;; --dry-run) echo "plan: stand-in"; exit 0 ;; esac
	shift
done
if [ -n "${STUB_DIE:-}" ]; then
	echo "Codelet gpt50b_matmul_forward does not have a perfmodel, or is not calibrated enough, please re-run in non-simgrid mode until it is calibrated, or fix the STARPU_HOSTNAME and STARPU_PERF_MODEL_DIR environment variables" >&2
	exit 1
fi
i=${STUB_FIRST:-1}
for t in ${STUB_TIMES:-}; do
	echo " iteration $i | elapsed time per iteration (ms): $t"
	echo "{\"iteration\": $i, \"loss\": 1, \"elapsed_ms\": $t}" >>"$metrics"
	i=$((i + 1))
done
EOF
chmod +x "$B/apps/gpt50b"
export GPT50B_SIM_BUILD=$B GPT50B_SIM_MODELS=$W/models STUB_LOG=$W/stub

one_line "no arguments" 2 "usage: scripts/simulate.sh MACHINE" "$SIM"
one_line "unknown machine" 2 "unknown machine nope: choose one of cori-v100-2x8, h100-2x8, h100-x1" "$SIM" nope --train-iters 3
one_line "missing machine file" 2 "machine file $W/none.json not found" "$SIM" "$W/none.json"
one_line "no build" 2 "no simulation build: $W/nowhere/apps/gpt50b is missing" env GPT50B_SIM_BUILD="$W/nowhere" "$SIM" h100-x1
mkdir -p "$W/notsim/apps" "$W/notsim/meson-info"
cp "$B/apps/gpt50b" "$W/notsim/apps/"
echo '[{"name": "simulation", "value": false}]' >"$W/notsim/meson-info/intro-buildoptions.json"
one_line "not a simulation build" 2 "is not a simulation build" env GPT50B_SIM_BUILD="$W/notsim" "$SIM" h100-x1
one_line "no models for the machine" 2 "no codelet models for h200-x1 in $W/models/codelets/45" "$SIM" h200-x1 --train-iters 3
one_line "--machine among the flags" 2 "give the machine as simulate.sh's first argument" "$SIM" h100-x1 --machine h200-x1

out=$(STUB_TIMES="100 50 40 60" "$SIM" h100-x1 --train-iters 4 --bf16 2>&1)
rc=$?
last=$(printf '%s\n' "$out" | tail -n 1)
if [ $rc -eq 0 ] && [ "$last" = "simulated h100-x1: 50.0 ms per iteration (median of iterations 2-4)" ] &&
	[[ $out == *" iteration 1 | elapsed time per iteration (ms): 100"* ]]; then
	ok "a run: gpt50b's lines passed through, last line the median of iterations 2-4"
else
	fail "a run" "exit $rc: $out"
fi
args=$(cat "$W/stub.args")
if [ "$(sed -n 1,3p "$W/stub.args" | paste -sd' ')" = "--machine h100-x1 --log=xbt_cfg.thres:warning" ] &&
	grep -qx -- --bf16 "$W/stub.args" && grep -qx -- --metrics "$W/stub.args"; then
	ok "gpt50b gets --machine h100-x1 --log=xbt_cfg.thres:warning, the flags and --metrics"
else
	fail "gpt50b's arguments" "$args"
fi
envs=$(cat "$W/stub.env")
want=("STARPU_HOSTNAME=h100-x1" "STARPU_NCUDA=1" "STARPU_PERF_MODEL_HOMOGENEOUS_CUDA=1" "STARPU_SILENT=1"
	"STARPU_MALLOC_SIMULATION_FOLD=256")
missing=()
for v in "${want[@]}"; do grep -qx "$v" "$W/stub.env" || missing+=("$v"); done
if [ ${#missing[@]} -eq 0 ] && grep -q '^STARPU_PERF_MODEL_DIR=' "$W/stub.env" &&
	grep -q 'h100-x1.platform.v4.xml' "$W/stub.dir" && grep -q 'h100-x1.bandwidth' "$W/stub.dir" &&
	grep -q 'gpt50b_matmul_forward.h100-x1' "$W/stub.dir"; then
	ok "environment: hostname, one CUDA worker, homogeneous CUDA models, silent; bus files and models in STARPU_PERF_MODEL_DIR"
else
	fail "environment" "missing ${missing[*]}; $envs; $(cat "$W/stub.dir")"
fi
if [ -z "$(ls -A "$TMPDIR")" ]; then ok "no temporary folder left"; else fail "temporary folder" "$(ls "$TMPDIR")"; fi

STUB_TIMES="900 700 710" "$SIM" cori-v100-2x8 --train-iters 3 >"$W/out" 2>&1
if grep -qx "STARPU_NCUDA=16" "$W/stub.env" && grep -qx "STARPU_HOSTNAME=cori-v100-2x8" "$W/stub.env" &&
	[ "$(tail -n 1 "$W/out")" = "simulated cori-v100-2x8: 705.0 ms per iteration (median of iterations 2-3)" ]; then
	ok "cori-v100-2x8: 16 CUDA workers, median of two"
else
	fail "cori-v100-2x8" "$(cat "$W/out" "$W/stub.env")"
fi

STUB_TIMES="10 20 30" STARPU_NCUDA=3 STARPU_SILENT=0 STARPU_HOME=$W/home "$SIM" h100-x1 --train-iters 3 >"$W/out" 2>&1
if grep -qx "STARPU_NCUDA=3" "$W/stub.env" && grep -qx "STARPU_SILENT=0" "$W/stub.env" &&
	grep -qx "STARPU_HOME=$W/home" "$W/stub.env"; then
	ok "STARPU_ variables the user set are kept"
else
	fail "user's STARPU_ variables" "$(cat "$W/stub.env")"
fi

printf '{"iteration": 1, "elapsed_ms": 1}\n{"iteration": 2, "elapsed_ms": 1}\n' >"$W/mine.jsonl"
STUB_FIRST=3 STUB_TIMES="300 200 100 400" "$SIM" h100-x1 --train-iters 6 --metrics "$W/mine.jsonl" >"$W/out" 2>&1
if [ "$(grep -c -- --metrics "$W/stub.args")" -eq 1 ] && [ "$(wc -l <"$W/mine.jsonl")" -eq 6 ] &&
	[ "$(tail -n 1 "$W/out")" = "simulated h100-x1: 200.0 ms per iteration (median of iterations 4-6)" ]; then
	ok "the user's --metrics: appended to, only this run's lines read"
else
	fail "the user's --metrics" "$(cat "$W/out")"
fi

out=$(GPT50B_SIM_MODELS=$W/empty "$SIM" h200-x1 --dry-run 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "plan: stand-in" ]; then
	ok "--dry-run: no models needed, gpt50b's output only"
else
	fail "--dry-run" "exit $rc: $out"
fi

cp "$TOP/scripts/machines/h100-x1.json" "$W/mine.json"
STUB_TIMES="5 6 7" "$SIM" "$W/mine.json" --train-iters 3 >"$W/out" 2>&1
if [ "$(sed -n 2p "$W/stub.args")" = "$W/mine.json" ] && [ "$(tail -n 1 "$W/out")" = "simulated h100-x1: 6.5 ms per iteration (median of iterations 2-3)" ]; then
	ok "a machine file by path: --machine gets the path, the name comes from the file"
else
	fail "machine by path" "$(cat "$W/out" "$W/stub.args")"
fi

STUB_DIE=1 "$SIM" h100-x1 --train-iters 3 >"$W/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "have no entry for a task of this run" "$W/out"; then
	ok "an uncalibrated codelet: gpt50b's exit status and a hint"
else
	fail "uncalibrated codelet" "exit $rc: $(cat "$W/out")"
fi
one_line "no iteration written" 1 "gpt50b wrote no iteration" env STUB_TIMES= "$SIM" h100-x1 --train-iters 0

# --- 2. a real simulation through the SimGrid StarPU ------------------------------------------
P=${STARPU_SIM_PREFIX:-$HOME/.cache/gpt50b/starpu-1.4.10-simgrid}
if ! PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --exists starpu-1.4 2>/dev/null || ! command -v cc >/dev/null; then
	echo "skip - part 2: no SimGrid StarPU at $P (scripts/setup_sim.sh) or no C compiler"
else
	R=$W/real
	mkdir -p "$R/apps" "$R/models/codelets/45"
	cat >"$R/fake.c" <<'EOF'
/* A stand-in for gpt50b in the simulation build: one GPU task per iteration on a 64 MiB vector
 * (uploaded in the first iteration), its duration from the history model "gpt50b_simtest"
 * (footprint: the vector's size in KiB, or FAKE_FOOTPRINT), iteration times from StarPU's
 * simulated clock, one metrics line per iteration. */
#include <starpu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void stub(void *b[], void *arg) { abort(); }
static uint32_t fp(struct starpu_task *t)
{
    const char *f = getenv("FAKE_FOOTPRINT");
    return f ? (uint32_t)atoi(f) : (uint32_t)(starpu_vector_get_nx(STARPU_TASK_GET_HANDLE(t, 0)) >> 10);
}
static struct starpu_perfmodel model = {.type = STARPU_HISTORY_BASED, .symbol = "gpt50b_simtest", .footprint = fp};
static struct starpu_codelet cl = {.cuda_funcs = {stub}, .cuda_flags = {STARPU_CUDA_ASYNC}, .nbuffers = 1,
                                   .modes = {STARPU_R}, .model = &model, .name = "simtest"};
int main(int argc, char **argv)
{
    int iters = 3;
    const char *metrics = NULL, *machine = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--train-iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--metrics") && i + 1 < argc) metrics = argv[++i];
        else if (!strcmp(argv[i], "--machine") && i + 1 < argc) machine = argv[++i];
    }
    if (!machine || !metrics) return 2;
    if (starpu_init(NULL) != 0) return 1;
    size_t n = 64 << 20;
    char *x = malloc(n);
    starpu_data_handle_t h;
    starpu_vector_data_register(&h, STARPU_MAIN_RAM, (uintptr_t)x, n, 1);
    FILE *f = fopen(metrics, "a");
    printf("fake: %u CUDA workers\n", starpu_cuda_worker_get_count());
    for (int it = 1; it <= iters; it++) {
        double t0 = starpu_timing_now();
        if (starpu_task_insert(&cl, STARPU_R, h, 0) != 0) return 1;
        starpu_task_wait_for_all();
        double ms = (starpu_timing_now() - t0) / 1e3;
        printf(" iteration %d | elapsed time per iteration (ms): %.3f\n", it, ms);
        fprintf(f, "{\"iteration\": %d, \"elapsed_ms\": %.3f}\n", it, ms);
    }
    fclose(f);
    starpu_data_unregister(h);
    starpu_shutdown();
    free(x);
    return 0;
}
EOF
	# shellcheck disable=SC2046
	if ! cc -O1 -o "$R/apps/gpt50b" "$R/fake.c" $(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags --libs starpu-1.4) \
		-Wl,-rpath,"$P/lib" >"$R/cc.log" 2>&1; then
		fail "part 2: compiling the stand-in" "$(cat "$R/cc.log")"
	else
		# 5 ms a task on CUDA at the 64 MiB footprint (65536 KiB), 10 samples: written as StarPU does
		python3 - "$TOP/scripts" "$R/models/codelets/45" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import sim_models as s
m = s.Model()
c = s.Comb([(1, 0, 1)])
im = s.Impl()
im.entries = [s.Entry(65536, 64 << 20, 0.0, 5000.0, 0.0, 50000.0, 2.5e8, 10)]
c.impls = [im]
m.combs = [c]
for host in ("h100-x1", "cori-v100-2x8"):
    open(f"{sys.argv[2]}/gpt50b_simtest.{host}", "w").write(s.dump(m))
PY
		for m in h100-x1 cori-v100-2x8; do
			# dmda keeps the task on the GPU that holds the data (lws would move it between GPUs)
			GPT50B_SIM_BUILD=$R GPT50B_SIM_MODELS=$R/models STARPU_NCPU=1 STARPU_SCHED=dmda "$SIM" $m --train-iters 4 >"$R/$m.out" 2>&1
			rc=$?
			it1=$(sed -n 's/^ iteration 1 | elapsed time per iteration (ms): //p' "$R/$m.out")
			med=$(tail -n 1 "$R/$m.out" | sed -n "s/^simulated $m: \([0-9.]*\) ms per iteration (median of iterations 2-4)$/\1/p")
			# iteration 1: 64 MiB at the machine's host-to-device rate, then the 5 ms task
			gbps=$([ $m = h100-x1 ] && echo 55.2 || echo 12.0)
			if [ $rc -eq 0 ] && [ -n "$med" ] && python3 - "$med" "$it1" "$gbps" <<'PY'; then
import sys
med, it1, gbps = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
upload = (64 << 20) / (gbps * 1e9) * 1e3
# the rest of iteration 1: StarPU's simulated allocation on the GPU and queueing costs
sys.exit(0 if 5.0 <= med <= 5.1 and upload <= it1 - med <= upload + 0.5 else 1)
PY
				ok "$m through StarPU on SimGrid: iterations 2-4 take the model's 5 ms ($med), iteration 1 adds the 64 MiB upload at $gbps GB/s ($it1 ms)"
			else
				fail "$m through StarPU on SimGrid" "exit $rc: $(cat "$R/$m.out")"
			fi
		done
		# a traced simulation drawn by trace_report.py with the SimGrid StarPU's starpu_fxt_tool
		mkdir -p "$R/fxt"
		GPT50B_SIM_BUILD=$R GPT50B_SIM_MODELS=$R/models STARPU_NCPU=1 STARPU_FXT_TRACE=1 STARPU_FXT_PREFIX=$R/fxt/ \
			"$SIM" h100-x1 --train-iters 2 --metrics "$R/fxt/m.jsonl" >"$R/trace.out" 2>&1
		hint=$(grep -o 'STARPU_FXT_TOOL=.*--out DIR' "$R/trace.out")
		if [ -n "$hint" ] && (cd "$TOP" && eval "${hint% DIR} $R/report") >"$R/report.log" 2>&1 &&
			grep -q 'RAM -> CUDA 0 *67.11 MB' "$R/report/summary.txt" && grep -q 'gpt50b_simtest' "$R/report/summary.txt"; then
			ok "--trace: the printed trace_report.py command draws the simulated run (the 64 MiB upload, the task)"
		else
			fail "a traced simulation" "$(cat "$R/trace.out" "$R/report.log")"
		fi
		GPT50B_SIM_BUILD=$R GPT50B_SIM_MODELS=$R/models FAKE_FOOTPRINT=7 STARPU_NCPU=1 "$SIM" h100-x1 --train-iters 2 >"$R/uncal.out" 2>&1
		rc=$?
		if [ $rc -ne 0 ] && grep -q "Codelet gpt50b_simtest does not have a perfmodel" "$R/uncal.out" &&
			grep -q "have no entry for a task of this run" "$R/uncal.out"; then
			ok "a footprint the models lack: StarPU's line, the hint, exit $rc"
		else
			fail "a footprint the models lack" "exit $rc: $(cat "$R/uncal.out")"
		fi
	fi
fi

if [ "$failures" -gt 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
exit 0
