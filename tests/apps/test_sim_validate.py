#!/usr/bin/env python3
"""test_sim_validate.py: scripts/sim_validate.py with a stand-in simulation build.

A stand-in gpt50b (GPT50B_SIM_BUILD) writes 1000 ms for iteration 1 and then 100 ms per layer
plus $STUB_EXTRA; a configurations file (two compared lines, one with an environment variable,
one not measured, one calibration-only) and a calibrate_sim.sh summary written here. Checks: the
table (error of each, within 15% or not, the unmeasured line, the calibration-only line left
out), exit 1 when a line is outside, the JSON result (rows, measured and simulated provenance,
the figures used), the machine file given to simulate.sh (h100-x1 with the measured disk rate),
--as-committed, --reuse (no simulation run: the stand-in would fail), a failing simulation, and
bad input (no summary, unknown configuration: exit 2, one line).

Exits 0 (all passed) or 1. GPT50B_TOP: the source root (default ../..).
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

TOP = os.environ.get("GPT50B_TOP") or os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
TOOL = os.path.join(TOP, "scripts", "sim_validate.py")
failures = []


def check(ok, what):
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures.append(what)
    return ok


STUB = r"""#!/usr/bin/env bash
[ -n "${STUB_FAIL:-}" ] && { echo "stand-in failed" >&2; exit 3; }
printf '%s\n' "$@" >>"$STUB_LOG"
layers=1 iters=1 metrics=
while [ $# -gt 0 ]; do
	case $1 in --num-layers) layers=$2; shift ;; --train-iters) iters=$2; shift ;; --metrics) metrics=$2; shift ;; esac
	shift
done
for ((i = 1; i <= iters; i++)); do
	t=$((i == 1 ? 1000 : 100 * layers + ${STUB_EXTRA:-0}))
	echo "{\"iteration\": $i, \"elapsed_ms\": $t}" >>"$metrics"
done
"""

CONFIGS = """# test configurations
a   2  4  STUB_EXTRA=5 --num-layers 1
b   0  3  --num-layers 2
c   3  3  --num-layers 3
d   3  0  --num-layers 4
"""


def main():
    w = tempfile.mkdtemp(prefix="test_sim_validate.")
    build = os.path.join(w, "build-sim")
    os.makedirs(os.path.join(build, "apps"))
    stub = os.path.join(build, "apps", "gpt50b")
    open(stub, "w").write(STUB)
    os.chmod(stub, os.stat(stub).st_mode | stat.S_IEXEC)
    models = os.path.join(w, "models", "codelets", "45")
    os.makedirs(models)
    open(os.path.join(models, "gpt50b_matmul_forward.h100-x1"), "w").write("stand-in\n")
    open(os.path.join(w, "configs.txt"), "w").write(CONFIGS)
    summary = {"machine": "h100-x1", "date": "2026-12-07T10:00Z", "card": "NVIDIA H100 80GB HBM3", "driver": "580",
               "commit": "abc", "figures": {"nvme_read_GBps": {"value": 2.2, "source": "nvme_tune"},
                                            "not_a_field": {"value": 1}},
               "configs": {"a": {"median_ms": 105.0, "calibrated": True, "elapsed_ms": [900, 104, 105, 106]},
                           "b": {"median_ms": 150.0, "calibrated": False},
                           "c": {"status": "stopped at its time limit", "calibrated": True},
                           "d": {"calibrated": True}}}
    json.dump(summary, open(os.path.join(w, "summary.json"), "w"))
    env = dict(os.environ, GPT50B_SIM_BUILD=build, GPT50B_SIM_MODELS=os.path.join(w, "models"),
               STUB_LOG=os.path.join(w, "stub.log"), TMPDIR=w)
    for k in ("STARPU_HOSTNAME", "STARPU_PERF_MODEL_DIR", "STARPU_NCUDA"):
        env.pop(k, None)

    def run(*args, **extra):
        r = subprocess.run([sys.executable, TOOL, "--configs", os.path.join(w, "configs.txt"),
                            "--measured", os.path.join(w, "summary.json"), "--out", os.path.join(w, "out"),
                            "--json", os.path.join(w, "v.json"), *args],
                           env=dict(env, **extra), capture_output=True, text=True)
        return r.returncode, r.stdout, r.stderr

    rc, out, err = run("--markdown", os.path.join(w, "v.md"))
    lines = out.splitlines()
    check(rc == 1, f"exit 1 when a configuration is outside 15% (exit {rc}) {err[-300:]}")
    check("| a | 105.0 | 105.0 | +0.0% | yes |" in lines, f"a: measured 105, predicted 100 + STUB_EXTRA 5: {lines}")
    check("| b * | 150.0 | 200.0 | +33.3% | no |" in lines, "b: +33.3%, not within, * (not calibrated on)")
    check(any(l.startswith("| c | - | - | - | no: not measured (stopped at its time limit)") for l in lines),
          "c: not measured, with the reason")
    check(not any(l.startswith("| d") for l in lines), "d (calibration only) is not compared")
    check(open(os.path.join(w, "v.md")).read() == out, "--markdown writes the table")
    v = json.load(open(os.path.join(w, "v.json")))
    ra = v["rows"][0]
    check(v["machine"] == "h100-x1" and v["all_within"] is False and len(v["rows"]) == 3
          and ra["predicted_of"] == "iterations 2-4" and abs(ra["error"]) < 1e-9 and ra["within"] is True
          and v["measured"]["card"] == "NVIDIA H100 80GB HBM3" and v["simulated"]["figures_used"] == {"nvme_read_GBps": 2.2},
          "the JSON: rows, provenance, figures used")
    mfile = os.path.join(w, "out", "h100-x1.json")
    args = open(env["STUB_LOG"]).read().split("\n")
    m = json.load(open(mfile)) if os.path.exists(mfile) else {}
    check(args[:2] == ["--machine", mfile] and m.get("name") == "h100-x1"
          and m.get("nvme_read_GBps", {}).get("value") == 2.2 and m["nvme_read_GBps"]["kind"] == "measured"
          and m.get("nvme_write_GBps", {}).get("value") == 2.99,
          "simulate.sh gets h100-x1 with the measured disk read rate (the rest as committed)")
    os.remove(env["STUB_LOG"])
    rc, out, err = run("--as-committed", "a")
    args = open(env["STUB_LOG"]).read().split("\n")
    check(rc == 0 and args[:2] == ["--machine", os.path.join(TOP, "scripts", "machines", "h100-x1.json")],
          f"--as-committed: the committed machine file; one configuration named: exit {rc}")
    rc, out, err = run("--reuse", STUB_FAIL="1")
    check(rc == 1 and "| a | 105.0 | 105.0 | +0.0% | yes |" in out and "reused" in err,
          "--reuse reads the earlier metrics (the stand-in would fail)")
    rc, out, err = run("a", STUB_FAIL="1")
    check(rc == 1 and "| a | 105.0 | - | - | no: simulate.sh exit 3" in out, f"a failing simulation: {out}")
    for args, msg in ((["--measured", os.path.join(w, "none.json")], "not found"),
                      (["zz"], "unknown configuration zz"),
                      (["d"], "no configuration with ITERS > 0")):
        r = subprocess.run([sys.executable, TOOL, "--configs", os.path.join(w, "configs.txt"), "--measured",
                            os.path.join(w, "summary.json"), "--out", os.path.join(w, "out"), *args],
                           env=env, capture_output=True, text=True)
        lines = (r.stdout + r.stderr).strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and msg in lines[0], f"{' '.join(args)}: exit 2, one line: {lines}")
    shutil.rmtree(w)
    if failures:
        print(f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
