#!/usr/bin/env python3
"""test_sim_models.py: scripts/sim_models.py on synthetic StarPU model files (format 45).

A models folder with h100-x1 files written here by hand in StarPU's layout: a matmul model with a
CPU (one core) and a CUDA combination, a LayerNorm model on CUDA with one 7-column entry (no
flops), a swap model with a regression line and no entries. Checks: the files parse and dump back
to text that parses to the same numbers; `derive --to cori-v100-2x8` divides CUDA durations by
the GEMM ratio (0.124) for matmul and by the HBM ratio (900/3350) for LayerNorm, keeps CPU
durations, footprints, sizes, flops and sample counts, scales the regression's alpha, starts each
file with the derived mark and writes cori-v100-2x8.json with the ratios; a second derive
replaces its own files, but not a calibrated file without --force (exit 2, one line); `summary`
counts entries and those under the calibration minimum; `install` takes a calibrate_sim.sh output
(folder and tarball) and checks the machine; bad input is exit 2 and one line. When the SimGrid
StarPU is installed, its starpu_perfmodel_display reads the derived CUDA means.

Exits 0 (all passed) or 1. GPT50B_TOP: the source root (default ../..).
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

TOP = os.environ.get("GPT50B_TOP") or os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
TOOL = os.path.join(TOP, "scripts", "sim_models.py")
sys.path.insert(0, os.path.join(TOP, "scripts"))
import sim_models  # noqa: E402

failures = []


def check(ok, what):
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures.append(what)
    return ok


def run(*args):
    r = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip().splitlines()


def comb(devtype, ncores, entries, reg="0.000000e+00\t0.000000e+00\t0.000000e+00\t0.000000e+00\tnan\tnan\t0\t0\t0"):
    s = ("####################\n# COMB_0\n# number of types devices\n1\n"
         f"####################\n# DEV_0\n# device type (CPU - 0, CUDA - 1)\n{devtype}\n"
         "####################\n# DEV_0\n# device id \n0\n"
         f"####################\n# DEV_0\n# number of cores \n{ncores}\n"
         "##########\n# number of implementations\n1\n"
         f"#####\n# Model for x_impl0 (Comb0)\n# number of entries\n{len(entries)}\n"
         f"# sumlnx\tsumlnx2\t\tsumlny\t\tsumlnxlny\talpha\t\tbeta\t\tn\tminx\t\tmaxx\n{reg}\n"
         "# a\t\tb\t\tc\nnan\tnan\tnan\n# not multiple-regression-base\n0\n"
         "# hash\t\tsize\t\tflops\t\tmean (us or J)\tdev (us or J)\tsum\t\tsum2\t\tn\n")
    return s + "".join(e + "\n" for e in entries) + "\n"


def model(*combs):
    return (f"##################\n# Performance Model Version\n45\n\n####################\n# COMBs\n"
            f"# number of combinations\n{len(combs)}\n" + "".join(combs))


MATMUL = model(
    comb(0, 1, ["0000abcd\t1000\t2.000000e+06\t5.000000e+02\t1.000000e+01\t5.000000e+03\t2.500000e+06\t10"]),
    comb(1, 1, ["1234abcd\t8388608\t2.000000e+09\t1.000000e+02\t2.000000e+00\t1.200000e+03\t1.200000e+05\t12",
                "00000001\t4096\t1.000000e+06\t1.000000e+01\t1.000000e+00\t3.000000e+01\t3.000000e+02\t3"]))
LAYERNORM = model(comb(1, 1, ["deadbeef\t65536\t2.690000e+01\t1.000000e+00\t2.690000e+02\t7.236100e+03\t10"]))
SWAP = model(comb(0, 1, [], reg="0.000000e+00\t0.000000e+00\t0.000000e+00\t0.000000e+00\t5.000000e-04\t1.000000e+00\t10\t1\t1125899906842624"))


def entries(m):
    return [[(e.footprint, e.size, e.flops, e.mean, e.dev, e.n) for im in c.impls for e in im.entries]
            for c in m.combs]


def close(a, b):
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))


def main():
    w = tempfile.mkdtemp(prefix="test_sim_models.")
    models = os.path.join(w, "models")
    d45 = os.path.join(models, "codelets", "45")
    os.makedirs(d45)
    src = {"gpt50b_matmul_forward": MATMUL, "gpt50b_layernorm_forward": LAYERNORM, "gpt50b_swap_in": SWAP}
    for sym, text in src.items():
        open(os.path.join(d45, sym + ".h100-x1"), "w").write(text)

    # parse and dump
    ok = True
    for sym, text in src.items():
        m = sim_models.parse(text, sym)
        again = sim_models.parse(sim_models.dump(m), sym)
        ok &= entries(m) == entries(again) and [c.devices for c in m.combs] == [c.devices for c in again.combs]
        ok &= sim_models.dump(again) == sim_models.dump(m)
    m = sim_models.parse(MATMUL)
    check(ok and m.combs[0].devices == [(0, 0, 1)] and m.combs[1].devices == [(1, 0, 1)]
          and entries(m)[1][0] == (0x1234ABCD, 8388608, 2e9, 100.0, 2.0, 12),
          "hand-written files parse (combinations, 8-column entries) and dump back to the same numbers")
    ln = sim_models.parse(LAYERNORM)
    check(entries(ln)[0][0] == (0xDEADBEEF, 65536, 0.0, 26.9, 1.0, 10), "a 7-column entry (no flops) parses")
    for bad, what in ((MATMUL.replace("\n45\n", "\n44\n"), "version 44"),
                      (MATMUL[:-200], "a truncated file"),
                      (MATMUL.replace("\t10\n", "\tx\n", 1), "a bad number")):
        try:
            sim_models.parse(bad, "bad")
            check(False, f"{what} is refused")
        except sim_models.ModelError as e:
            check(True, f"{what} is refused: {e}")

    # derive
    rc, out = run("--models", models, "derive", "--to", "cori-v100-2x8")
    check(rc == 0 and len(out) == 1 and "3 models of h100-x1 -> cori-v100-2x8" in out[0], f"derive: exit {rc}: {out}")
    gemm, hbm = 0.124, 900 / 3350
    dm = sim_models.parse(open(os.path.join(d45, "gpt50b_matmul_forward.cori-v100-2x8")).read())
    cpu, cuda = entries(dm)
    want_cuda = [(fp, size, fl, mean / gemm, dev / gemm, n) for fp, size, fl, mean, dev, n in entries(m)[1]]
    check(cpu == entries(m)[0], "derive: CPU entries kept (--cpu-ratio 1)")
    check(all(a[:3] == b[:3] and a[5] == b[5] and close(a[3], b[3]) and close(a[4], b[4])
              for a, b in zip(cuda, want_cuda)) and len(cuda) == 2,
          f"derive: matmul's CUDA means / 0.124 ({cuda[0][3]:.2f} us from 100 us), footprints, sizes, flops, n kept")
    e = dm.combs[1].impls[0].entries[0]
    check(close(e.sum, 1200 / gemm) and close(e.sum2, 1.2e5 / gemm ** 2), "derive: sums and sums of squares follow")
    dl = sim_models.parse(open(os.path.join(d45, "gpt50b_layernorm_forward.cori-v100-2x8")).read())
    check(close(entries(dl)[0][0][3], 26.9 / hbm), f"derive: LayerNorm's CUDA mean / (900/3350): {entries(dl)[0][0][3]:.3f} us")
    ds = sim_models.parse(open(os.path.join(d45, "gpt50b_swap_in.cori-v100-2x8")).read())
    check(close(ds.combs[0].impls[0].reg[4], 5e-4) and ds.combs[0].impls[0].reg[6] == 10,
          "derive: a CPU regression model kept (alpha 5e-4, n 10)")
    head = open(os.path.join(d45, "gpt50b_matmul_forward.cori-v100-2x8")).read().splitlines()[:2]
    check(head[0].startswith("# derived by scripts/sim_models.py from gpt50b_matmul_forward.h100-x1")
          and "/ 0.124" in head[1], f"derive: the file says how it was made: {head}")
    prov = json.load(open(os.path.join(models, "cori-v100-2x8.json")))
    check(prov["source"] == "derived" and prov["from"] == "h100-x1" and close(prov["ratios"]["gemm"], gemm)
          and close(prov["ratios"]["hbm"], hbm) and prov["files"] == 3, "derive: cori-v100-2x8.json records the ratios")
    rc, out = run("--models", models, "derive", "--to", "cori-v100-2x8", "--cpu-ratio", "2")
    dm2 = sim_models.parse(open(os.path.join(d45, "gpt50b_matmul_forward.cori-v100-2x8")).read())
    check(rc == 0 and close(entries(dm2)[0][0][3], 250.0), "derive again replaces its own files; --cpu-ratio 2 halves CPU means")
    open(os.path.join(d45, "gpt50b_matmul_forward.h200-x1"), "w").write(MATMUL)
    rc, out = run("--models", models, "derive", "--to", "h200-x1", "--from", "h100-x1")
    check(rc == 2 and len(out) == 1 and "were not derived" in out[0], f"derive keeps a calibrated target: exit {rc}: {out}")
    rc, out = run("--models", models, "derive", "--to", "h200-x1", "--from", "h100-x1", "--force")
    dh = sim_models.parse(open(os.path.join(d45, "gpt50b_layernorm_forward.h200-x1")).read())
    check(rc == 0 and close(entries(dh)[0][0][3], 26.9 / (4800 / 3350)), "derive --force: h200-x1 from h100-x1 (HBM 4800/3350)")
    for args, msg in ((["derive", "--to", "h100-x2"], "no codelet_times_from"),
                      (["derive", "--to", "nowhere"], "unknown machine nowhere"),
                      (["derive", "--to", "h100-x2", "--from", "h200-x1x"], "unknown machine h200-x1x")):
        rc, out = run("--models", models, *args)
        check(rc == 2 and len(out) == 1 and msg in out[0], f"{' '.join(args)}: exit 2, one line: {out}")

    # summary
    rc, out = run("--models", models, "summary", "--machine", "h100-x1")
    text = "\n".join(out)
    row = [l for l in out if l.strip().startswith("gpt50b_matmul_forward") and " cuda0 " in l]
    check(rc == 0 and "h100-x1: 3 codelets" in text and row and re.search(r"cuda0\s+2\s+1\s+3\.\.12", row[0])
          and "h100-x1: 4 entries, 1 with fewer than 10 samples" in text,
          f"summary: matmul on cuda0 has 2 entries, 1 under 10 samples; totals\n{text}")
    check("20" in row[0].split()[-1] if row else False, "summary: best rate 20 TFLOP/s (2e9 flops in 100 us)")
    rc, out = run("--models", models, "summary", "--machine", "cori-v100-2x8", "--entries")
    check(rc == 0 and any("derived from h100-x1" in l for l in out) and any("1234abcd" in l for l in out),
          "summary --entries: provenance line and every entry")
    rc, out = run("--models", os.path.join(w, "empty"), "summary")
    check(rc == 2 and len(out) == 1 and "no codelet models" in out[0], f"summary of an empty folder: exit 2, one line: {out}")

    # install
    cal = os.path.join(w, "cal")
    os.makedirs(os.path.join(cal, "models", "codelets", "45"))
    for sym, text in src.items():
        open(os.path.join(cal, "models", "codelets", "45", sym + ".h100-x1"), "w").write(text.replace("1.000000e+02", "1.100000e+02"))
    open(os.path.join(cal, "models", "codelets", "45", "gpt50b_other.someone-else"), "w").write(LAYERNORM)
    json.dump({"machine": "h100-x1", "card": "NVIDIA H100 80GB HBM3", "driver": "580", "date": "2026-12-07",
               "commit": None, "configs": {"a": {"calibrated": True}, "b": {"calibrated": False}}},
              open(os.path.join(cal, "summary.json"), "w"))
    with tarfile.open(os.path.join(w, "cal.tar.gz"), "w:gz") as t:
        t.add(cal, arcname="sim_calibration")
    inst = os.path.join(w, "inst")
    rc, out = run("--models", inst, "install", os.path.join(w, "cal.tar.gz"), "--machine", "h100-x1", "--commit", "abc123")
    got = sorted(os.listdir(os.path.join(inst, "codelets", "45"))) if rc == 0 else []
    prov = json.load(open(os.path.join(inst, "h100-x1.json"))) if rc == 0 else {}
    check(rc == 0 and got == sorted(s + ".h100-x1" for s in src) and prov.get("commit") == "abc123"
          and prov.get("card") == "NVIDIA H100 80GB HBM3" and prov.get("configs") == ["a"],
          f"install from the tarball: the machine's files only, provenance with card and commit: {out}")
    im = sim_models.parse(open(os.path.join(inst, "codelets", "45", "gpt50b_matmul_forward.h100-x1")).read())
    check(entries(im)[1][0][3] == 110.0, "install copies the calibration's numbers")
    rc, out = run("--models", inst, "install", cal, "--machine", "h200-x1")
    check(rc == 2 and len(out) == 1 and "calibrated h100-x1, not h200-x1" in out[0], f"install checks the machine: {out}")
    summ = json.load(open(os.path.join(cal, "summary.json")))
    summ["card"] = "none"
    json.dump(summ, open(os.path.join(cal, "summary.json"), "w"))
    rc, out = run("--models", inst, "install", cal)
    check(rc == 2 and len(out) == 1 and "without a GPU" in out[0], f"install refuses a run without a GPU: {out}")
    rc, out = run("--models", inst, "install", os.path.join(w, "nothing"))
    check(rc == 2 and len(out) == 1, f"install of a missing folder: exit 2, one line: {out}")

    # the CPU AdamW rate from an AdamW history: CPU entries of >= 1 MB and >= 10 samples only
    open(os.path.join(d45, "gpt50b_adamw.h100-x1"), "w").write(model(
        comb(0, 1, ["0000aaaa\t134217728\t1.200000e+08\t2.800000e+04\t1.0e+00\t2.8e+05\t7.84e+10\t10",
                    "0000bbbb\t134217728\t1.200000e+08\t1.400000e+04\t1.0e+00\t4.2e+05\t5.88e+09\t30",
                    "0000cccc\t131072\t1.200000e+05\t1.000000e+00\t1.0e+00\t1.0e+02\t1.0e+02\t100",
                    "0000dddd\t134217728\t1.200000e+08\t1.000000e+00\t1.0e+00\t9.0e+00\t9.0e+00\t9"]),
        comb(1, 1, ["0000eeee\t134217728\t1.200000e+08\t1.000000e+00\t1.0e+00\t1.0e+01\t1.0e+01\t10"])))
    rate = sim_models.adamw_cpu_rate(models, "h100-x1", 15)
    # 1e7 parameters x 28 B: 10 tasks of 28 ms and 30 of 14 ms: 40 x 280 MB / (0.28 + 0.42) s per worker
    check(rate is not None and close(rate[0], 40 * 280e6 / 0.70 / 1e9 * 15) and rate[1:] == (2, 40),
          f"adamw_cpu_rate: the weighted per-worker rate of the large calibrated CPU entries x 15 workers: {rate}")
    check(sim_models.adamw_cpu_rate(models, "h200-x1", 15) is None, "adamw_cpu_rate: None without a history")

    # StarPU reads the derived files
    prefix = os.environ.get("STARPU_SIM_PREFIX") or os.path.expanduser("~/.cache/gpt50b/starpu-1.4.10-simgrid")
    tool = os.path.join(prefix, "bin", "starpu_perfmodel_display")
    if not os.access(tool, os.X_OK):
        print(f"skip - StarPU with SimGrid not found ({tool}): the files were not loaded by StarPU")
    else:
        subprocess.run([sys.executable, os.path.join(TOP, "scripts", "sim_platform.py"), "cori-v100-2x8", models],
                       capture_output=True, check=True)
        env = dict(os.environ, STARPU_PERF_MODEL_DIR=models, STARPU_HOSTNAME="cori-v100-2x8", STARPU_HOME=w)
        r = subprocess.run([tool, "-s", "gpt50b_matmul_forward", "--log=xbt_cfg.thres:warning"], env=env,
                           capture_output=True, text=True, timeout=120)
        rows = re.findall(r"^1234abcd\s+8388608\s+\S+\s+(\S+)", r.stdout, re.M)
        check(r.returncode == 0 and rows and close(float(rows[0]), 100 / gemm),
              f"StarPU's starpu_perfmodel_display reads the derived CUDA mean {rows[:1]} (exit {r.returncode})")
    shutil.rmtree(w)
    if failures:
        print(f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
