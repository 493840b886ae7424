#!/usr/bin/env bash
# test_trace_report.sh: scripts/trace_report.py on a hand-made GPU trace and on a real CPU trace.
#
# 1. A hand-made tasks.rec, activity.data and paje.trace with a CPU and a CUDA worker, two
#    iterations and one RAM -> CUDA copy (no GPU needed): the copy must land on the host-to-device
#    lane with its bytes and rate, with a flow arrow to the matmul that reads it, and the critical
#    path must follow DependsOn.
# 2. gpt50b traced for 2 iterations of a tiny model on the CPU (STARPU_NCUDA=0, NVMe optimizer
#    swap, --metrics), then trace_report.py --fxt: gantt.svg well-formed with a lane per worker and
#    rects for matmul_fwd and adamw, gantt.png when rsvg-convert exists, trace.json with the lanes
#    and task names and per-kind durations within 1% of summary.txt's, metrics.svg, and NVMe bytes
#    equal to the run's own traffic line.
# Exits 0 / 1, or 77 after part 1 when starpu_fxt_tool or data/brown.bin is missing.
#
#   usage: test_trace_report.sh PATH/TO/gpt50b      (GPT50B_TOP: the source root; default ../..)
set -u
GPT50B=${1:?usage: test_trace_report.sh PATH/TO/gpt50b}
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
REPORT=$TOP/scripts/trace_report.py
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# --- 1. hand-made trace -------------------------------------------------------------------------
mkdir -p "$W/rec"
task() { # name job worker so start end handles sizes deps
    printf 'Name: %s\nJobId: %s\nWorkerId: %s\nSubmitOrder: %s\nStartTime: %s\nEndTime: %s\nHandles: %s\nSizes: %s\nDependsOn: %s\n\n' "$@"
}
{
    task encoder_fwd 1 0 1 0 2 aa 100 ""
    task matmul_fwd 2 1 2 5 9 bb 4000 "1"
    task adamw 3 0 3 9 12 bb 4000 "2"
    task encoder_fwd 4 0 4 12 13 aa 100 "3"
    task matmul_fwd 5 1 5 13 20 bb 4000 "4"
    task adamw 6 0 6 20 21 bb 4000 "5"
    printf 'JobId: 7\nDependsOn: 6\n\n'
} >"$W/rec/tasks.rec"
printf 'name\t0\tCPU 0\nname\t1\tCUDA 0\n' >"$W/rec/activity.data"
printf '7\t0.1\tmn0\tMn\tp\tMEMNODE0\n7\t0.1\tmn1\tMn\tp\tMEMNODE1\n7\t0.2\tt11\tT\tmn0\tT0\n7\t0.2\tw0\tW\tt11\tCPU0\n7\t0.3\tt12\tT\tmn1\tT1\n7\t0.3\tw1\tW\tt12\tCUDA0_0\n24\t2.0\tF\tp\t4000000\tmm0\tcom_1\tbb\t"h.0.w"\t0\t0\n19\t4.0\tF\tp\t4000000\tmm1\tcom_1\n' >"$W/rec/paje.trace"
python3 "$REPORT" --rec "$W/rec" --out "$W/o1" >"$W/log1" 2>&1 || { cat "$W/log1"; echo "FAIL - trace_report.py on the hand-made trace"; exit 1; }
python3 - "$W/o1" <<'PY' || exit 1
import json, sys
d = sys.argv[1]
s = open(f"{d}/summary.txt").read()
t = json.load(open(f"{d}/trace.json"))["traceEvents"]
threads = {e["args"]["name"] for e in t if e.get("name") == "thread_name"}
h2d = [e for e in t if e.get("ph") == "X" and e.get("cat") == "host-to-device"]
flows = [e for e in t if e.get("ph") in ("s", "f")]
checks = {
    "two iterations": "iteration 2: wall 9.000 ms" in s and "iteration 3" not in s,
    "lanes": threads == {"CPU 0", "CUDA 0", "host-to-device"},
    "copy on its lane": len(h2d) == 1 and h2d[0]["dur"] == 2000 and h2d[0]["ts"] == 2000,
    "link rate": "RAM -> CUDA 0" in s and "4.00 MB in      2.000 ms busy: 2.00 GB/s" in s,
    "flow to the reader": len(flows) == 2 and flows[1]["tid"] == 2 and flows[1]["ts"] == 5000,
    "critical path": "critical path: 18.000 ms of task time in 6 tasks" in s,
}
bad = [k for k, v in checks.items() if not v]
print("ok - hand-made GPU trace" if not bad else f"FAIL - hand-made GPU trace: {bad}\n{s}")
sys.exit(1 if bad else 0)
PY
python3 "$REPORT" --rec "$W/nowhere" --out "$W/o0" >"$W/log0" 2>&1
rc=$?
if [ $rc -ne 2 ] || [ "$(wc -l <"$W/log0")" -ne 1 ]; then
    echo "FAIL - a missing folder: exit $rc, output:"; cat "$W/log0"; exit 1
fi
echo "ok - a missing folder is one line, exit 2"

# --- 2. real CPU trace --------------------------------------------------------------------------
tool=${STARPU_FXT_TOOL:-$(command -v starpu_fxt_tool || true)}
[ -n "$tool" ] || tool=${STARPU_PREFIX:+$STARPU_PREFIX/bin/starpu_fxt_tool}
[ -x "${tool:-}" ] || tool=$HOME/.cache/gpt50b/starpu-1.4.10/bin/starpu_fxt_tool
[ -x "$tool" ] || { echo "skip: starpu_fxt_tool is missing"; exit 77; }
[ -f "$TOP/data/brown.bin" ] || { echo "skip: data/brown.bin is missing: run scripts/setup.sh"; exit 77; }
mkdir -p "$W/fxt" "$W/nvme"
(cd "$TOP" && STARPU_NCUDA=0 STARPU_FXT_TRACE=1 STARPU_FXT_PREFIX="$W/fxt/" STARPU_SCHED=lws \
    "$GPT50B" --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 64 \
    --max-position-embeddings 64 --train-iters 2 --eval-iters 0 --offload-optimizer nvme \
    --nvme-path "$W/nvme" --nvme-resident-fraction 0 --metrics "$W/m.jsonl") >"$W/run.log" 2>&1 ||
    { tail -5 "$W/run.log"; echo "FAIL - the traced gpt50b run"; exit 1; }
STARPU_FXT_TOOL=$tool python3 "$REPORT" --fxt "$W/fxt" --metrics "$W/m.jsonl" --out "$W/o2" >"$W/log2" 2>&1 ||
    { cat "$W/log2"; echo "FAIL - trace_report.py on the CPU trace"; exit 1; }
python3 - "$W/o2" "$(command -v rsvg-convert || true)" "$W/run.log" <<'PY'
import json, os, re, sys
import xml.etree.ElementTree as ET
d, rsvg, runlog = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
fails = []
def check(ok, what):
    print(("ok - " if ok else "FAIL - ") + what)
    ok or fails.append(what)
try:
    svg = ET.parse(f"{d}/gantt.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = {e.text for e in svg.iter(ns + "text")}
    titles = [e.text or "" for e in svg.iter(ns + "title")]
    check({"CPU 0", "CPU 1", "NVMe read", "NVMe write"} <= texts, f"gantt.svg lanes: {sorted(t for t in texts if t and not t[0].isdigit())}")
    check(any(t.startswith("matmul_fwd ") for t in titles) and any(t.startswith("adamw ") for t in titles),
          "gantt.svg has matmul_fwd and adamw rectangles")
except ET.ParseError as e:
    check(False, f"gantt.svg is well-formed XML: {e}")
check(not rsvg or os.path.getsize(f"{d}/gantt.png") > 1000, "gantt.png (rsvg-convert present)" if rsvg else "no rsvg-convert: gantt.png not expected")
check(os.path.isfile(f"{d}/metrics.svg") and ET.parse(f"{d}/metrics.svg") is not None, "metrics.svg")
ev = json.load(open(f"{d}/trace.json"))["traceEvents"]
threads = {e["args"]["name"] for e in ev if e.get("name") == "thread_name"}
check({"CPU 0", "CPU 1", "NVMe read", "NVMe write"} <= threads, f"trace.json lanes: {sorted(threads)}")
names = {e["name"] for e in ev if e.get("ph") == "X" and e["pid"] == 1}
want = {"encoder_fwd", "matmul_fwd", "matmul_bwd", "attention_fwd", "crossentropy_fwd", "adamw", "swap_in", "swap_out"}
check(want <= names, f"trace.json task names: missing {sorted(want - names)}")
dur = {}
for e in ev:
    if e.get("ph") == "X" and e["pid"] == 1:
        dur[e["cat"]] = dur.get(e["cat"], 0.0) + e["dur"] / 1000.0
s = open(f"{d}/summary.txt").read()
block = s.split("whole trace: time per task kind")[1]
ref = {m.group(1): float(m.group(2)) for m in re.finditer(r"^  (\S+)\s+\d+\s+([\d.]+)\s+[\d.]+%$", block, re.M)}
worst = max(ref, key=lambda k: abs(dur.get(k, 0) - ref[k]) / max(ref[k], 1e-9), default=None)
ok = bool(ref) and set(ref) == set(dur) and all(abs(dur[k] - ref[k]) <= 1e-3 + 0.01 * ref[k] for k in ref)
check(ok, f"per-kind durations agree within 1% (worst {worst}: trace.json {dur.get(worst)} ms, summary {ref.get(worst)} ms)")
check(s.count("\niteration ") == 2 and "critical path:" in s, "summary.txt: 2 iterations and a critical path")
# the NVMe lanes count each swap task's own bytes: the run's traffic over its 2 iterations
run = re.search(r"NVMe optimizer traffic: ([\d.]+) GB read, ([\d.]+) GB written", runlog)
whole = s.split("whole trace: bytes per link")[1]
got = {m.group(1): float(m.group(2)) for m in re.finditer(r"^  NVMe (read|write)\s+([\d.]+) MB", whole, re.M)}
want_mb = {"read": 2 * float(run.group(1)) * 1e3, "write": 2 * float(run.group(2)) * 1e3} if run else {}
check(run and set(got) == {"read", "write"} and all(abs(got[k] - want_mb[k]) <= 0.0006 * 2e3 + 0.01 * want_mb[k] for k in got),
      f"NVMe bytes of the trace {got} MB match the run's traffic line {want_mb} MB")
sys.exit(1 if fails else 0)
PY
