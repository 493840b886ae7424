#!/usr/bin/env python3
"""sim_sweep.py: a simulated run swept over the disk's bandwidth and over StarPU's schedulers (issue 15).

    python3 scripts/sim_sweep.py [--machine cori-v100-2x8] [--nvme 2,4,8,16,25]
        [--scheds lws,eager,dmda,dmdas,dmdar,heteroprio] [--iters 4] [--out DIR]
        [--json FILE] [--svg FILE] -- GPT50B_FLAGS...

Runs scripts/simulate.sh MACHINE with GPT50B_FLAGS (plus --train-iters ITERS) once per point:
  - the NVMe sweep: the machine file with nvme_read_GBps and nvme_write_GBps both set to each
    value of --nvme (GB/s per node), under the scheduler gpt50b picks (or STARPU_SCHED if set);
  - the scheduler sweep: the machine as it is, with STARPU_SCHED set to each of --scheds.
Each point's result is the simulated median of iterations 2-ITERS, TFLOP/s per GPU (gpt50b's
metrics), the NVMe bytes per iteration (gpt50b's last lines) and the real seconds it took. A
point that fails is kept with its reason. Prints a Markdown table per sweep, writes every number
to --json (default OUT/sweep.json) and a plot of both sweeps to --svg (default OUT/sweep.svg; a
PNG beside it when rsvg-convert is installed). Exit status: 0 when every point ran, 1 otherwise,
2 for bad input (one line).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = "sim_sweep.py"
sys.path.insert(0, os.path.join(TOP, "scripts"))
from sim_validate import median_after_first  # noqa: E402


def fail(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def numbers(arg, what):
    try:
        vals = [float(x) for x in arg.split(",") if x.strip()]
    except ValueError:
        fail(f"--{what} {arg}: expected numbers separated by commas")
    if not vals or any(v <= 0 for v in vals):
        fail(f"--{what} {arg}: expected positive numbers")
    return vals


def run_point(label, machine, env, flags, iters, out):
    metrics = os.path.join(out, label + ".jsonl")
    log = os.path.join(out, label + ".log")
    if os.path.exists(metrics):
        os.remove(metrics)
    t0 = time.time()
    with open(log, "w") as f:
        rc = subprocess.run([os.path.join(TOP, "scripts", "simulate.sh"), machine, *flags,
                             "--train-iters", str(iters), "--metrics", metrics],
                            env=dict(os.environ, **env), stdout=f, stderr=subprocess.STDOUT).returncode
    row = {"point": label, "env": env, "real_s": round(time.time() - t0, 1), "exit": rc}
    text = open(log, errors="replace").read()
    med = median_after_first(metrics)
    if rc != 0 or med is None:
        last = [l for l in text.splitlines() if l.strip()][-1:] or ["no output"]
        row["note"] = f"exit {rc}: {last[0][:200]}"
        return row
    rows = [json.loads(l) for l in open(metrics) if l.strip()]
    row["iterations_ms"] = [r["elapsed_ms"] for r in rows]
    row["median_ms"] = med[0]
    row["tflops_per_gpu"] = statistics.median(r["tflops"] for r in rows[1:])
    m = re.search(r"NVMe optimizer traffic: ([0-9.]+) GB read, ([0-9.]+) GB written per iteration", text)
    if m:
        row["nvme_read_GB"], row["nvme_written_GB"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"scheduler (\S+),", text)
    if m:
        row["scheduler"] = m.group(1)
    return row


def table(title, key, rows):
    lines = [f"| {title} | ms per iteration | TFLOP/s per GPU | NVMe GB read / written per iteration | real s |",
             "|---|---|---|---|---|"]
    for r in rows:
        if "median_ms" in r:
            io = (f"{r['nvme_read_GB']:.1f} / {r['nvme_written_GB']:.1f}" if "nvme_read_GB" in r else "-")
            lines.append(f"| {r[key]} | {r['median_ms']:.1f} | {r['tflops_per_gpu']:.2f} | {io} | {r['real_s']:.0f} |")
        else:
            lines.append(f"| {r[key]} | - | - | - | {r['real_s']:.0f} (failed: {r['note']}) |")
    return "\n".join(lines)


def svg(nvme_rows, sched_rows, title):
    """Two panels: ms per iteration against the disk's GB/s, and per scheduler."""
    W, H, pad = 900, 360, 60
    pw = (W - 3 * pad) / 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 40}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H + 40}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="{14 if len(title) < 100 else 11}">{title}</text>']
    ok_n = [r for r in nvme_rows if "median_ms" in r]
    ok_s = [r for r in sched_rows if "median_ms" in r]
    ymax = max([r["median_ms"] for r in ok_n + ok_s] or [1]) * 1.1 / 1e3

    def axes(x0, label):
        out.append(f'<line x1="{x0}" y1="{H}" x2="{x0 + pw}" y2="{H}" stroke="black"/>')
        out.append(f'<line x1="{x0}" y1="{H}" x2="{x0}" y2="{pad}" stroke="black"/>')
        out.append(f'<text x="{x0 + pw / 2}" y="{H + 32}" text-anchor="middle">{label}</text>')
        for k in range(5):
            v = ymax * k / 4
            y = H - (H - pad) * k / 4
            out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{v:.1f}</text>')
            out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + pw}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 45}" y="{(H + pad) / 2}" transform="rotate(-90 {x0 - 45} {(H + pad) / 2})" '
                   f'text-anchor="middle">s per iteration</text>')

    def y_of(ms):
        return H - (H - pad) * (ms / 1e3) / ymax

    x0 = pad
    axes(x0, "NVMe GB/s per node (read = write)")
    if ok_n:
        xs = [r["nvme_GBps"] for r in ok_n]
        xmax = max(xs) * 1.05
        pts = [(x0 + pw * r["nvme_GBps"] / xmax, y_of(r["median_ms"])) for r in ok_n]
        out.append('<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="' +
                   " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        for (x, y), r in zip(pts, ok_n):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1f77b4"/>')
            out.append(f'<text x="{x:.1f}" y="{H + 16}" text-anchor="middle">{r["nvme_GBps"]:g}</text>')
    x0 = 2 * pad + pw
    axes(x0, "STARPU_SCHED")
    n = max(len(sched_rows), 1)
    bw = pw / n * 0.6
    for i, r in enumerate(sched_rows):
        cx = x0 + pw * (i + 0.5) / n
        out.append(f'<text x="{cx:.1f}" y="{H + 16}" text-anchor="middle">{r["sched"]}</text>')
        if "median_ms" in r:
            y = y_of(r["median_ms"])
            out.append(f'<rect x="{cx - bw / 2:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{H - y:.1f}" fill="#ff7f0e"/>')
        else:
            out.append(f'<text x="{cx:.1f}" y="{H - 6}" text-anchor="middle">failed</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--machine", default="cori-v100-2x8")
    ap.add_argument("--nvme", default="2,4,8,16,25", help="GB/s per node; empty: no NVMe sweep")
    ap.add_argument("--scheds", default="lws,eager,dmda,dmdas,dmdar,heteroprio", help="empty: no scheduler sweep")
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    ap.add_argument("--title", default="")
    ap.add_argument("flags", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    flags = a.flags[1:] if a.flags[:1] == ["--"] else a.flags
    if a.iters < 3:
        fail(f"--iters {a.iters}: at least 3 (the median of iterations 2-N; the second is still warming up)")
    if any(f.startswith("--train-iters") or f.startswith("--metrics") for f in flags):
        fail("--train-iters and --metrics are the sweep's own; give --iters")
    mpath = a.machine if a.machine.endswith(".json") or "/" in a.machine else \
        os.path.join(TOP, "scripts", "machines", a.machine + ".json")
    try:
        machine = json.load(open(mpath))
    except (OSError, ValueError) as e:
        fail(f"machine {a.machine}: {e}")
    nvme = numbers(a.nvme, "nvme") if a.nvme.strip() else []
    scheds = [s for s in a.scheds.split(",") if s.strip()]
    out = os.path.abspath(a.out or tempfile.mkdtemp(prefix="sim_sweep."))
    os.makedirs(out, exist_ok=True)

    nvme_rows, sched_rows = [], []
    for g in nvme:
        m = json.loads(json.dumps(machine))
        for k in ("nvme_read_GBps", "nvme_write_GBps"):
            m[k] = {"value": g, "kind": "assumed", "source": f"sim_sweep.py --nvme {g:g}"}
        path = os.path.join(out, f"{machine['name']}-nvme{g:g}.json")
        with open(path, "w") as f:
            json.dump(m, f, indent=1)
        print(f"{PROG}: NVMe {g:g} GB/s ...", file=sys.stderr, flush=True)
        r = run_point(f"nvme{g:g}", path, {}, flags, a.iters, out)
        r["nvme_GBps"] = g
        nvme_rows.append(r)
    for s in scheds:
        print(f"{PROG}: STARPU_SCHED={s} ...", file=sys.stderr, flush=True)
        r = run_point(f"sched-{s}", mpath, {"STARPU_SCHED": s}, flags, a.iters, out)
        r["sched"] = s
        sched_rows.append(r)

    text = []
    if nvme_rows:
        text.append(table("NVMe GB/s per node", "nvme_GBps", nvme_rows))
    if sched_rows:
        text.append(table("STARPU_SCHED", "sched", sched_rows))
    print("\n\n".join(text))
    result = {"machine": machine.get("name"), "flags": flags, "iters": a.iters,
              "median_of": f"iterations 2-{a.iters}", "nvme": nvme_rows, "schedulers": sched_rows,
              "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}
    jpath = a.json or os.path.join(out, "sweep.json")
    with open(jpath, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    spath = a.svg or os.path.join(out, "sweep.svg")
    with open(spath, "w") as f:
        f.write(svg(nvme_rows, sched_rows, a.title or f"simulated {machine.get('name')}: " + " ".join(flags)))
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-o", spath[:-4] + ".png", spath], check=False)
    print(f"{PROG}: {jpath}, {spath}", file=sys.stderr)
    return 0 if all("median_ms" in r for r in nvme_rows + sched_rows) else 1


if __name__ == "__main__":
    sys.exit(main())
