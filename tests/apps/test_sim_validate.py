#!/usr/bin/env python3
"""test_sim_validate.py: scripts/sim_validate.py with a stand-in simulation build.

A stand-in gpt50b (GPT50B_SIM_BUILD) writes 1000 ms for iteration 1 and then 100 ms per layer
plus $STUB_EXTRA; a configurations file (two compared lines, one with an environment variable,
one not measured, one calibration-only) and a calibrate_sim.sh summary written here. Checks: the
table (error of each, within 15% or not, the unmeasured line, the calibration-only line left
out), exit 1 when a line is outside, the JSON result (rows, measured and simulated provenance,
the figures used), the machine file given to simulate.sh (h100-x1 with the measured disk rate;
for a run bracketed by disk probes, its own file at their mean mixed rate; --call-start-disk),
--as-committed, --reuse (no simulation run: the stand-in would fail), a second --measured summary
(a later call's: its measurements replace the first's, the first's machine figures stay), a
failing simulation, and
bad input (no summary, unknown configuration: exit 2, one line). Then scripts/sim_configs.py: the
committed scripts/sim_configs.txt loads with at least five compared configurations, each of a
model shape that has a calibration run (layers, width, heads, sequence, micro-batch: the
footprints of the sum, sumsq and zero tasks follow the layer count); malformed lines are refused;
environment words, continued lines and @NVME@.

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
                           "b": {"median_ms": 150.0, "calibrated": False,
                                 "disk_mixed_GBps": {"before": 2.0, "after": 3.0}},
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
          and v["measured"][0]["card"] == "NVIDIA H100 80GB HBM3" and v["simulated"]["figures_used"].get("nvme_read_GBps") == 2.2
          and set(v["simulated"]["figures_used"]) == {"nvme_read_GBps", "cpu_adamw_GBps"},
          "the JSON: rows, provenance, figures used (the measured disk rate; the CPU AdamW rate of the "
          f"committed models' history) {v['simulated']['figures_used']}")
    mfile = os.path.join(w, "out", "h100-x1.json")
    args = open(env["STUB_LOG"]).read().split("\n")
    m = json.load(open(mfile)) if os.path.exists(mfile) else {}
    check(args[:2] == ["--machine", mfile] and m.get("name") == "h100-x1"
          and m.get("nvme_read_GBps", {}).get("value") == 2.2 and m["nvme_read_GBps"]["kind"] == "measured"
          and m.get("nvme_write_GBps", {}).get("value") == 2.99,
          "simulate.sh gets h100-x1 with the measured disk read rate (the rest as committed)")
    bfile = os.path.join(w, "out", "h100-x1.b.json")
    mb = json.load(open(bfile)) if os.path.exists(bfile) else {}
    rb = v["rows"][1]
    check(["--machine", bfile] == args[args.index("--machine", 2):args.index("--machine", 2) + 2]
          and mb.get("nvme_mixed_GBps", {}).get("value") == 2.5 and mb.get("nvme_read_GBps", {}).get("value") == 2.2
          and rb.get("disk_mixed_GBps") == 2.5 and "disk_mixed_GBps" not in ra,
          "b, bracketed by two disk probes: simulated at their mean mixed rate (2.5 GB/s), the rest as a's")
    os.remove(env["STUB_LOG"])
    rc, out, err = run("--call-start-disk", "b")
    args = open(env["STUB_LOG"]).read().split("\n")
    check(args[:2] == ["--machine", mfile], "--call-start-disk: b at the call's start rate (the common file)")
    os.remove(env["STUB_LOG"])
    rc, out, err = run("--as-committed", "a")
    args = open(env["STUB_LOG"]).read().split("\n")
    check(rc == 0 and args[:2] == ["--machine", os.path.join(TOP, "scripts", "machines", "h100-x1.json")],
          f"--as-committed: the committed machine file; one configuration named: exit {rc}")
    rc, out, err = run("--reuse", STUB_FAIL="1")
    check(rc == 1 and "| a | 105.0 | 105.0 | +0.0% | yes |" in out and "reused" in err,
          "--reuse reads the earlier metrics (the stand-in would fail)")
    # a later call's summary: it measured c (stopped in the first) and b again, with other figures
    later = {"machine": "h100-x1", "date": "2026-12-07T11:00Z", "card": "NVIDIA H100 80GB HBM3",
             "figures": {"nvme_read_GBps": {"value": 9.9}},
             "configs": {"b": {"median_ms": 190.0, "calibrated": False}, "c": {"median_ms": 290.0, "calibrated": False},
                         "a": {"status": "skipped: time budget"}}}
    json.dump(later, open(os.path.join(w, "later.json"), "w"))
    json.dump(dict(later, configs={}), open(os.path.join(w, "empty.json"), "w"))
    rc, out, err = run("c", "--measured", os.path.join(w, "empty.json"))
    check(rc == 1 and any(l.startswith("| c | - | - | - | no: not measured (stopped at its time limit)")
                          for l in out.splitlines()),
          f"--measured twice, c in neither: the reason of the summary that has c {out}")
    rc, out, err = run("--measured", os.path.join(w, "later.json"))
    v = json.load(open(os.path.join(w, "v.json")))
    rows = {r["configuration"]: r for r in v["rows"]}
    check(rc == 0 and "| a | 105.0 | 105.0 | +0.0% | yes |" in out and "| b * | 190.0 | 200.0 | +5.3% | yes |" in out
          and "| c | 290.0 | 300.0 | +3.4% | yes |" in out
          and rows["a"]["measured_in"].endswith("summary.json") and rows["c"]["measured_in"].endswith("later.json")
          and rows["c"]["calibrated_on"] is True and v["simulated"]["figures_used"].get("nvme_read_GBps") == 2.2
          and [m["date"] for m in v["measured"]] == ["2026-12-07T10:00Z", "2026-12-07T11:00Z"]
          and len(v["measured_from"]) == 2,
          f"--measured twice: b and c from the later call, a from the first (the later skipped it), the "
          f"machine's figures from the first, c calibrated in the first: exit {rc} {out}")
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
    # the committed configurations: they load, and a line without its own calibration run has the
    # model shape of one that has (the footprints of sum, sumsq and zero follow the layer count)
    sys.path.insert(0, os.path.join(TOP, "scripts"))
    import sim_configs
    shape = ("--preset", "--num-layers", "--hidden-size", "--num-attention-heads", "--seq-length",
             "--micro-batch-size", "--num-gpus", "--tile-size")

    def key(c):
        return tuple((f, c.flags[c.flags.index(f) + 1] if f in c.flags else None) for f in shape)
    try:
        committed = sim_configs.load()
        cal = {key(c) for c in committed if c.cal > 0}
        orphans = [c.name for c in committed if c.cal == 0 and key(c) not in cal]
        check(len([c for c in committed if c.iters > 0]) >= 5 and not orphans,
              f"scripts/sim_configs.txt: at least 5 compared configurations, each of a calibrated shape {orphans}")
    except sim_configs.ConfigError as e:
        check(False, f"scripts/sim_configs.txt loads: {e}")
    for text, msg in (("a 1 2 --x\na 1 2 --y\n", "a twice"), ("a 1 2 --train-iters 3\n", "the scripts add"),
                      ("a 0 0 --x\n", "one of them > 0"), ("a 1 1 --x\n", "ITERS 1"), ("a b\n", "expected NAME"),
                      ("a/b 1 2\n", "letters, digits")):
        p = os.path.join(w, "bad.txt")
        open(p, "w").write(text)
        try:
            sim_configs.load(p)
            check(False, f"sim_configs refuses {text.strip()!r}")
        except sim_configs.ConfigError as e:
            check(msg in str(e), f"sim_configs refuses {text.strip()!r}: {e}")
    c = sim_configs.load(os.path.join(w, "configs.txt"))[0]
    open(os.path.join(w, "cont.txt"), "w").write("# c\nx 1 2 A=1 --f \\\n   @NVME@ --g\n")
    x = sim_configs.load(os.path.join(w, "cont.txt"))[0]
    check(c.env == ["STUB_EXTRA=5"] and x.env == ["A=1"] and x.flags == ["--f", "@NVME@", "--g"]
          and sim_configs.gpt50b_args(x, 2, "m", "d", "/s")[:3] == ["--f", "/s", "--g"],
          "sim_configs: environment words, continued lines, @NVME@")
    shutil.rmtree(w)
    if failures:
        print(f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
