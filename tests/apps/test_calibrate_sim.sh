#!/usr/bin/env bash
# test_calibrate_sim.sh: scripts/calibrate_sim.sh on this machine's CPU workers, with a
# configurations file of three tiny models (a check of the script; the GPU host runs the real one).
#
# The calibrated and measured line, and two measured NVMe lines in a row: summary.json holds the
# three medians, the disk's figures (read, write, the mixed rate and its 1/2/4-stream runs), and
# for each NVMe line the disk probes just before and after its run (disk_mixed_GBps), the second
# line's "before" being the first's "after" (one probe between them); the non-NVMe line has none;
# the tarball holds the calibrated models and the probes' logs; no swap folder is left behind.
# Exits 0 / 1 (77 without python3 or data/brown.bin).
#
#   usage: test_calibrate_sim.sh PATH/TO/gpt50b      (GPT50B_TOP: the source root; nvme_tune and
#          bench_adam beside gpt50b)
set -u
APPS=$(dirname "${1:?usage: test_calibrate_sim.sh PATH/TO/gpt50b}")
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }
[ -f "$TOP/data/brown.bin" ] || { echo "skip: $TOP/data/brown.bin is missing (scripts/setup.sh)"; exit 77; }
unset STARPU_LIMIT_CUDA_MEM STARPU_LIMIT_CPU_MEM STARPU_NCUDA STARPU_HOSTNAME STARPU_PERF_MODEL_DIR
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
shape="--num-layers 1 --hidden-size 64 --num-attention-heads 2 --seq-length 64 --max-position-embeddings 64 --micro-batch-size 2"
cat >"$W/configs.txt" <<CFG
tiny   3  3  $shape
nv1    0  3  $shape --offload-optimizer nvme --nvme-path @NVME@
nv2    0  3  $shape --offload-optimizer nvme --nvme-path @NVME@ --nvme-resident-fraction 0.5
CFG
GPT50B_APPS=$APPS SIM_CONFIGS=$W/configs.txt DISK_SIZE=32M PROBE_SIZE=8M ADAM_PARAMS=262144 \
	NVME_DIR=$W/nvme TMPDIR=$W bash "$TOP/scripts/calibrate_sim.sh" "$W/out" >"$W/log" 2>&1
rc=$?
python3 - "$W" "$rc" <<'PY'
import json, os, sys, tarfile
w, rc = sys.argv[1], int(sys.argv[2])
failures = []

def check(ok, what):
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures.append(what)

check(rc == 0, f"calibrate_sim.sh exits 0 (exit {rc})" + (f": {open(w + '/log').read()[-600:]}" if rc else ""))
try:
    s = json.load(open(f"{w}/out/summary.json"))
except (OSError, ValueError) as e:
    check(False, f"summary.json: {e}")
    sys.exit(1)
c = s.get("configs", {})
check(all(c.get(n, {}).get("median_ms", 0) > 0 for n in ("tiny", "nv1", "nv2"))
      and c["tiny"].get("calibrated") is True and c["nv1"].get("calibrated") is False,
      "the three medians, tiny calibrated, nv1 not")
f = s.get("figures", {})
check(all(f.get(k, {}).get("value", 0) > 0 for k in ("nvme_read_GBps", "nvme_write_GBps", "nvme_mixed_GBps"))
      and [x["streams"] for x in s.get("nvme_mixed_streams", [])] == [1, 2, 4],
      "the disk's figures and the 1/2/4-stream mixed runs")
d1, d2 = c.get("nv1", {}).get("disk_mixed_GBps") or {}, c.get("nv2", {}).get("disk_mixed_GBps") or {}
check(all(isinstance(d.get(k), (int, float)) and d[k] > 0 for d in (d1, d2) for k in ("before", "after"))
      and d2.get("before") == d1.get("after") and "disk_mixed_GBps" not in c.get("tiny", {}),
      f"probes around each NVMe run, one shared between them, none for tiny: {d1} {d2}")
names = tarfile.open(f"{w}/out/sim_calibration.tar.gz").getnames()
check(any(n.startswith("sim_calibration/models/codelets/") for n in names)
      and {"sim_calibration/logs/probe-before-nv1.json", "sim_calibration/logs/probe-after-nv1.json",
           "sim_calibration/logs/probe-after-nv2.json"} <= set(names),
      "the tarball: calibrated models and the probes' logs")
left = os.listdir(f"{w}/nvme") if os.path.isdir(f"{w}/nvme") else []
check(not [x for x in left if x in ("nv1", "nv2")], f"no swap folder left: {left}")
sys.exit(1 if failures else 0)
PY
