#!/usr/bin/env python3
"""trace_report.py: from a gpt50b run's StarPU FxT trace to a Gantt chart, a Perfetto trace and a summary.

Runs StarPU's starpu_fxt_tool on the trace (gpt50b run with STARPU_FXT_TRACE=1
STARPU_FXT_PREFIX=DIR/, or with --trace FIRST:LAST) in a temporary folder, or reads a folder where
it already ran (--rec), and writes into OUTDIR:
  gantt.svg (+ gantt.png through rsvg-convert): one lane per worker, tasks colored by kind, lanes
    for data transfers (host-to-device, device-to-host, device-to-device from paje.trace) and NVMe
    I/O (the swap_in and swap_out tasks), iteration boundaries, legend, time axis in ms;
  trace.json: the same in Chrome's trace-event format (Perfetto, chrome://tracing), with flow
    arrows from each transfer or NVMe read to the task that consumes it and from the task that
    last wrote a swap buffer to the NVMe write;
  summary.txt (also printed): per iteration the wall time, time per task kind, busy share per
    worker, the I/O time that overlapped compute, bytes and GB/s per link, the critical path;
  metrics.svg (+ .png) with --metrics: loss and iteration time over the iterations;
  paje.trace, for ViTE.
An iteration starts at the first encoder_fwd submitted after an adamw (or the trace's first
encoder_fwd): with gradient accumulation the micro-batches' encoder_fwd stay in one iteration, and an
evaluation's forward passes join the iteration that follows them. A task belongs to the iteration in
which it was submitted (SubmitOrder); busy shares and overlaps use the time window from one
iteration's first encoder_fwd start to the next one's. Standard library only.

    python3 scripts/trace_report.py --fxt DIR_OR_PROF_FILE [--metrics m.jsonl] --out OUTDIR
    python3 scripts/trace_report.py --rec DIR_WITH_TASKS_REC [--metrics m.jsonl] --out OUTDIR
"""
import argparse
import bisect
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from xml.sax.saxutils import escape

from starpu_trace import clip, intersect, length, read_paje, read_records, read_worker_names, union

PROG = "trace_report.py"

# Task kinds in legend order: (kind, color, name prefixes). gather, reduce-scatter and offload are
# reserved for the ZeRO-3 collectives and parameter offload tasks to come.
KINDS = [
    ("GEMM", "#4e79a7", ("matmul",)),
    ("attention", "#f28e2b", ("attention",)),
    ("norm", "#59a14f", ("layernorm",)),
    ("elementwise", "#b6992d", ("gelu", "add_", "accumulate", "cast", "zero")),
    ("loss", "#e15759", ("crossentropy",)),
    ("embedding", "#76b7b2", ("encoder",)),
    ("Adam", "#b07aa1", ("adamw", "sumsq")),
    ("swap-in", "#9c755f", ("swap_in",)),
    ("swap-out", "#ff9da7", ("swap_out",)),
    ("gather", "#86bcb6", ("gather", "all_gather", "allgather")),
    ("reduce-scatter", "#d37295", ("reduce_scatter",)),
    ("offload", "#a0cbe8", ("offload",)),
    ("other", "#bab0ac", ("",)),
]
KIND_COLOR = {k: c for k, c, _ in KINDS}
IO_LANES = [("host-to-device", "#1f77b4"), ("device-to-host", "#d62728"),
            ("device-to-device", "#9467bd"), ("RAM-to-RAM", "#7f7f7f"),
            ("NVMe read", "#8c564b"), ("NVMe write", "#e377c2")]
IO_COLOR = dict(IO_LANES)


def fail(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def kind_of(name):
    for kind, _, prefixes in KINDS:
        if name.startswith(prefixes):
            return kind
    return "other"


def find_fxt_tool():
    cands = [os.environ.get("STARPU_FXT_TOOL"), shutil.which("starpu_fxt_tool")]
    if os.environ.get("STARPU_PREFIX"):
        cands.append(os.path.join(os.environ["STARPU_PREFIX"], "bin", "starpu_fxt_tool"))
    cands.append(os.path.expanduser("~/.cache/gpt50b/starpu-1.4.10/bin/starpu_fxt_tool"))
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def convert_fxt(path, workdir):
    """Runs starpu_fxt_tool on the prof_file at path (or the one in folder path) inside workdir."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "prof_file_*")))
        if not files:
            fail(f"{path}: no prof_file_* in this folder: run gpt50b with STARPU_FXT_TRACE=1 "
                 f"STARPU_FXT_PREFIX={path.rstrip('/')}/")
        if len(files) > 1:
            fail(f"{path}: {len(files)} prof_file_* (one per rank): name one of them with --fxt")
        path = files[0]
    elif not os.path.isfile(path):
        fail(f"{path}: no such file or folder: give an FxT prof_file or the folder holding it")
    tool = find_fxt_tool()
    if not tool:
        fail("starpu_fxt_tool not found: set STARPU_FXT_TOOL, put StarPU's bin on PATH or set "
             "STARPU_PREFIX (scripts/setup.sh builds StarPU into ~/.cache/gpt50b/starpu-1.4.10)")
    r = subprocess.run([tool, "-i", os.path.abspath(path)], cwd=workdir, capture_output=True,
                       text=True)
    if r.returncode != 0 or not os.path.isfile(os.path.join(workdir, "tasks.rec")):
        why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        fail(f"{path}: starpu_fxt_tool could not read it ({why}): is it a complete FxT trace?")
    return workdir


# --- reading -------------------------------------------------------------------------------------
class Trace:
    pass


def load(recdir):
    tr = Trace()
    tasks_rec = os.path.join(recdir, "tasks.rec")
    if not os.path.isfile(tasks_rec):
        fail(f"{recdir}: no tasks.rec: run starpu_fxt_tool -i prof_file_... there, or use --fxt")
    try:
        recs = read_records(tasks_rec)
        tr.tasks, tr.deps, tr.weight = [], {}, {}
        for r in recs:
            job = r.get("JobId")
            if job is None:
                continue
            tr.deps[job] = r.get("DependsOn", "").split()
            name = r.get("Name", "")
            if "StartTime" not in r or "EndTime" not in r or not name or \
                    name.startswith(("_starpu", "starpu_")):
                continue
            t = {"name": name, "kind": kind_of(name), "job": job, "worker": int(r["WorkerId"]),
                 "start": float(r["StartTime"]), "end": float(r["EndTime"]),
                 "so": int(r["SubmitOrder"]) if "SubmitOrder" in r else None,
                 "handles": r.get("Handles", "").split(),
                 "sizes": [int(s) for s in r.get("Sizes", "").split()],
                 "gflop": float(r.get("GFlop", 0))}
            if t["end"] < t["start"]:
                raise ValueError(f"JobId {job} ends before it starts")
            tr.weight[job] = t["end"] - t["start"]
            tr.tasks.append(t)
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        fail(f"{tasks_rec}: not a tasks.rec of starpu_fxt_tool ({e.__class__.__name__}: {e})")
    if not tr.tasks:
        fail(f"{tasks_rec}: no executed tasks (was the trace recorded while tasks ran?)")
    tr.tasks.sort(key=lambda t: (t["start"], t["worker"]))
    act = os.path.join(recdir, "activity.data")
    paje = os.path.join(recdir, "paje.trace")
    try:
        tr.worker_names = read_worker_names(act) if os.path.isfile(act) else {}
        tr.transfers, tr.worker_node = read_paje(paje) if os.path.isfile(paje) else ([], {})
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{recdir}: activity.data or paje.trace is not starpu_fxt_tool's ({e})")
    for t in tr.tasks:
        tr.worker_names.setdefault(t["worker"], f"worker {t['worker']}")
    tr.paje = paje if os.path.isfile(paje) else None
    return tr


def node_names(tr):
    """Memory node -> "RAM" or the GPU's name, from which workers run on it."""
    names = {}
    for w, n in tr.worker_node.items():
        wn = tr.worker_names.get(w, "")
        if not wn.startswith("CPU"):
            names[n] = wn.split("_")[0]
    for n in {x for t in tr.transfers for x in (t["src"], t["dst"])}:
        names.setdefault(n, "RAM" if n == 0 else f"RAM{n}")
    return names


def io_items(tr):
    """Transfers and NVMe I/O as lane items: group, start, end, bytes, link, label, handles, task."""
    nn = node_names(tr)
    items = []
    for x in tr.transfers:
        sg, dg = not nn[x["src"]].startswith("RAM"), not nn[x["dst"]].startswith("RAM")
        group = ("device-to-device" if sg and dg else "device-to-host" if sg else
                 "host-to-device" if dg else "RAM-to-RAM")
        link = f"{nn[x['src']]} -> {nn[x['dst']]}"
        items.append({"group": group, "start": x["start"], "end": x["end"], "bytes": x["bytes"],
                      "link": link, "label": f"{x['name'] or x['handle']} ({x['kind']})",
                      "handles": [x["handle"]], "dst": x["dst"], "task": None})
    for t in tr.tasks:
        if t["name"] in ("swap_in", "swap_out"):
            group = "NVMe read" if t["name"] == "swap_in" else "NVMe write"
            items.append({"group": group, "start": t["start"], "end": t["end"],
                          "bytes": t["gflop"] * 1e9 if t["gflop"] else sum(t["sizes"]),
                          "link": group, "label": t["name"],
                          "handles": t["handles"], "dst": None, "task": t})
    items.sort(key=lambda i: i["start"])
    return items


def pack_rows(items):
    """Places each item on the first row of its group free at its start, so that no row overlaps."""
    rows = []  # (group, index within group, end of last item)
    for it in items:
        for k, (g, i, end) in enumerate(rows):
            if g == it["group"] and end <= it["start"]:
                rows[k] = (g, i, it["end"])
                it["row"] = (g, i)
                break
        else:
            i = sum(1 for g, _, _ in rows if g == it["group"])
            rows.append((it["group"], i, it["end"]))
            it["row"] = (it["group"], i)
    order = {g: n for n, (g, _) in enumerate(IO_LANES)}
    return sorted({r[:2] for r in rows}, key=lambda r: (order[r[0]], r[1]))


def row_name(row):
    return row[0] if row[1] == 0 else f"{row[0]} {row[1] + 1}"


def iterations(tr):
    """Boundary tasks: the first encoder_fwd after each adamw (see the module's docstring)."""
    bounds, seen_adam = [], True
    for t in sorted((t for t in tr.tasks if t["so"] is not None), key=lambda t: t["so"]):
        if t["name"] == "adamw":
            seen_adam = True
        elif t["name"] == "encoder_fwd" and seen_adam:
            bounds.append(t)
            seen_adam = False
    return bounds


# --- analysis ------------------------------------------------------------------------------------
def critical_path(tr, allowed):
    """Longest chain by DependsOn among allowed JobIds, weighted by run time: (ms, [JobIds])."""
    best, pred = {}, {}
    for root in allowed:
        if root in best:
            continue
        stack = [(root, False)]
        while stack:
            v, done = stack.pop()
            if v in best:
                continue
            ds = [d for d in tr.deps.get(v, ()) if d in allowed]
            if not done:
                stack.append((v, True))
                stack.extend((d, False) for d in ds if d not in best)
                continue
            p = max(ds, key=lambda d: best.get(d, 0.0), default=None)
            best[v] = tr.weight.get(v, 0.0) + (best.get(p, 0.0) if p else 0.0)
            pred[v] = p
    if not best:
        return 0.0, []
    v = max(best, key=best.get)
    chain, total = [], best[v]
    while v is not None:
        chain.append(v)
        v = pred[v]
    return total, [j for j in reversed(chain) if j in tr.weight]


def fmt_bytes(b):
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= f:
            return f"{b / f:.2f} {unit}"
    return f"{b} B"


def summarize(tr, items, bounds):
    by_job = {t["job"]: t for t in tr.tasks}
    t0 = min(t["start"] for t in tr.tasks)
    tend = max([t["end"] for t in tr.tasks] + [i["end"] for i in items])
    bso = [b["so"] for b in bounds]
    starts = [b["start"] for b in bounds] or [t0]
    starts[0] = min(starts[0], t0)
    windows = [(s, e) for s, e in zip(starts, starts[1:] + [tend])]
    nit = len(windows)

    def iteration_of(t):
        if t["so"] is None or not bso:
            return max(0, bisect.bisect_right(starts, t["start"]) - 1)
        return max(0, bisect.bisect_right(bso, t["so"]) - 1)

    for t in tr.tasks:
        t["iter"] = iteration_of(t)
    for it in items:
        it["iter"] = it["task"]["iter"] if it["task"] else \
            max(0, bisect.bisect_right(starts, it["start"]) - 1)
    unattributed = {j for j in tr.deps if j not in by_job}
    workers = sorted(tr.worker_names)
    worker_busy = {w: union([(t["start"], t["end"]) for t in tr.tasks if t["worker"] == w])
                   for w in workers}
    compute = union([(t["start"], t["end"]) for t in tr.tasks
                     if t["name"] not in ("swap_in", "swap_out")])
    io = union([(i["start"], i["end"]) for i in items])
    out = [f"StarPU trace: {len(tr.tasks)} tasks on {len(workers)} workers "
           f"({', '.join(tr.worker_names[w] for w in workers)}), {len(tr.transfers)} data "
           f"transfers, {nit} iteration(s), {tend - t0:.3f} ms in all"]

    def kind_table(tasks, wall):
        per = {}
        for t in tasks:
            c = per.setdefault(t["kind"], [0, 0.0])
            c[0] += 1
            c[1] += t["end"] - t["start"]
        rows = [f"  {'kind':<15} {'tasks':>6} {'ms':>12} {'% of wall':>10}"]
        for k, _, _ in KINDS:
            if k in per:
                rows.append(f"  {k:<15} {per[k][0]:>6} {per[k][1]:>12.3f} "
                            f"{100 * per[k][1] / max(wall, 1e-12):>9.1f}%")
        return rows

    def links(sel):
        per = {}
        for i in sel:
            p = per.setdefault(i["link"], [0, []])
            p[0] += i["bytes"]
            p[1].append((i["start"], i["end"]))
        rows = []
        for link in sorted(per):
            b, busy = per[link][0], length(union(per[link][1]))
            rate = f"{b / busy / 1e6:.2f} GB/s" if busy > 0 else "-"
            rows.append(f"  {link:<24} {fmt_bytes(b):>12} in {busy:10.3f} ms busy: {rate}")
        return rows

    def crit(allowed):
        ms, chain = critical_path(tr, allowed)
        names = [f"{by_job[j]['name']}#{j}" for j in chain]
        shown = " -> ".join(names) if len(names) <= 8 else \
            " -> ".join(names[:4]) + " -> ... -> " + " -> ".join(names[-4:])
        span = by_job[chain[-1]]["end"] - by_job[chain[0]]["start"] if chain else 0.0
        return [f"  critical path: {ms:.3f} ms of task time in {len(chain)} tasks "
                f"(first start to last end {span:.3f} ms): {shown}"]

    for k, (lo, hi) in enumerate(windows):
        wall = hi - lo
        tasks = [t for t in tr.tasks if t["iter"] == k]
        out += ["", f"iteration {k + 1}: wall {wall:.3f} ms "
                    f"({lo - t0:.3f} .. {hi - t0:.3f} ms from the trace's start)"]
        out += ["  time per task kind (tasks submitted in this iteration):"] + kind_table(tasks, wall)
        out.append("  workers (busy share of the iteration's window):")
        for w in workers:
            b = length(clip(worker_busy[w], lo, hi))
            out.append(f"  {tr.worker_names[w]:<15} busy {b:10.3f} ms {100 * b / wall:5.1f}%  "
                       f"idle {100 - 100 * b / wall:5.1f}%")
        iow = clip(io, lo, hi)
        ov = length(intersect(iow, clip(compute, lo, hi)))
        out.append(f"  transfers and NVMe I/O busy {length(iow):.3f} ms, of which {ov:.3f} ms "
                   f"({100 * ov / max(length(iow), 1e-12):.1f}%) overlapped compute")
        sel = [i for i in items if i["iter"] == k]
        if sel:
            out.append("  bytes per link (NVMe: the bytes each swap task reads or writes):")
            out += links(sel)
        out += crit({t["job"] for t in tasks} | unattributed)
    out += ["", "whole trace: time per task kind"] + kind_table(tr.tasks, tend - t0)
    if items:
        out.append("whole trace: bytes per link")
        out += links(items)
    out += crit(set(tr.deps))
    return "\n".join(out) + "\n", windows, t0, tend


# --- SVG -----------------------------------------------------------------------------------------
def nice_step(span, target=10):
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def svg_doc(w, h, body):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" '
            f'font-size="11">\n<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


def gantt_svg(tr, items, rows, windows, t0, tend, title):
    left, width, lane_h, top = 150, 1400, 18, 40
    span = max(tend - t0, 1e-9)
    x = lambda t: left + (t - t0) / span * width  # noqa: E731
    lanes = [tr.worker_names[w] for w in sorted(tr.worker_names)] + [row_name(r) for r in rows]
    lane_y = {name: top + i * (lane_h + 4) for i, name in enumerate(lanes)}
    bottom = top + len(lanes) * (lane_h + 4)
    body = [f'<text x="{left}" y="20" font-size="14">{escape(title)}</text>']
    for name, y in lane_y.items():
        body.append(f'<text x="{left - 6}" y="{y + lane_h - 5}" text-anchor="end">{escape(name)}</text>')
        body.append(f'<rect x="{left}" y="{y}" width="{width}" height="{lane_h}" fill="#f4f4f4"/>')
    for t in tr.tasks:
        y = lane_y[tr.worker_names[t["worker"]]]
        d = t["end"] - t["start"]
        body.append(f'<rect x="{x(t["start"]):.2f}" y="{y}" width="{max(d / span * width, 0.5):.2f}" '
                    f'height="{lane_h}" fill="{KIND_COLOR[t["kind"]]}"><title>{escape(t["name"])} '
                    f'({t["kind"]}) on {escape(tr.worker_names[t["worker"]])}: start '
                    f'{t["start"] - t0:.3f} ms, duration {d:.3f} ms, JobId {t["job"]}</title></rect>')
    for it in items:
        y = lane_y[row_name(it["row"])]
        d = it["end"] - it["start"]
        body.append(f'<rect x="{x(it["start"]):.2f}" y="{y}" width="{max(d / span * width, 0.5):.2f}" '
                    f'height="{lane_h}" fill="{IO_COLOR[it["group"]]}"><title>{escape(it["label"])} '
                    f'on {escape(it["link"])}: {fmt_bytes(it["bytes"])}, start '
                    f'{it["start"] - t0:.3f} ms, duration {d:.3f} ms</title></rect>')
    for k, (lo, _) in enumerate(windows):
        body.append(f'<line x1="{x(lo):.2f}" y1="{top - 6}" x2="{x(lo):.2f}" y2="{bottom}" '
                    f'stroke="black" stroke-dasharray="4,3"/>')
        body.append(f'<text x="{x(lo) + 3:.2f}" y="{top - 8}">iteration {k + 1}</text>')
    step = nice_step(span)
    body.append(f'<line x1="{left}" y1="{bottom + 2}" x2="{left + width}" y2="{bottom + 2}" stroke="black"/>')
    t = 0.0
    while t <= span + 1e-9:
        xx = left + t / span * width
        body.append(f'<line x1="{xx:.2f}" y1="{bottom + 2}" x2="{xx:.2f}" y2="{bottom + 7}" stroke="black"/>')
        body.append(f'<text x="{xx:.2f}" y="{bottom + 19}" text-anchor="middle">{t:g}</text>')
        t += step
    body.append(f'<text x="{left + width / 2}" y="{bottom + 34}" text-anchor="middle">time (ms)</text>')
    used = {t["kind"] for t in tr.tasks}
    legend = [(k, c) for k, c, _ in KINDS if k in used or k in ("gather", "reduce-scatter", "offload")]
    legend += [(g, c) for g, c in IO_LANES if any(r[0] == g for r in rows)]
    ly = bottom + 50
    for i, (k, c) in enumerate(legend):
        lx = left + (i % 8) * 170
        yy = ly + (i // 8) * 18
        body.append(f'<rect x="{lx}" y="{yy}" width="12" height="12" fill="{c}"/>')
        body.append(f'<text x="{lx + 16}" y="{yy + 10}">{escape(k)}</text>')
    h = ly + ((len(legend) + 7) // 8) * 18 + 10
    return svg_doc(left + width + 20, h, body)


def metrics_svg(recs):
    panels = [("loss", "lm loss"), ("elapsed_ms", "iteration time (ms)")]
    left, width, ph, top, gap = 80, 700, 220, 30, 70
    body = ['<text x="80" y="18" font-size="14">training metrics</text>']
    for p, (key, label) in enumerate(panels):
        pts = [(r["iteration"], r[key]) for r in recs if isinstance(r.get(key), (int, float))
               and math.isfinite(r[key])]
        y0 = top + p * (ph + gap)
        body.append(f'<rect x="{left}" y="{y0}" width="{width}" height="{ph}" fill="none" stroke="black"/>')
        body.append(f'<text x="{left - 55}" y="{y0 + ph / 2}" transform="rotate(-90 {left - 55} '
                    f'{y0 + ph / 2})" text-anchor="middle">{label}</text>')
        body.append(f'<text x="{left + width / 2}" y="{y0 + ph + 34}" text-anchor="middle">iteration</text>')
        if not pts:
            body.append(f'<text x="{left + 10}" y="{y0 + 20}">no {key} in the metrics</text>')
            continue
        xs, ys = [a for a, _ in pts], [b for _, b in pts]
        xlo, xhi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        ylo, yhi = min(ys), max(ys)
        pad = (yhi - ylo) * 0.05 or abs(yhi) * 0.05 or 1
        ylo, yhi = ylo - pad, yhi + pad
        px = lambda v: left + (v - xlo) / (xhi - xlo) * width  # noqa: E731
        py = lambda v: y0 + ph - (v - ylo) / (yhi - ylo) * ph  # noqa: E731
        for axis_lo, axis_hi, horizontal in ((xlo, xhi, True), (ylo, yhi, False)):
            step = nice_step(axis_hi - axis_lo, 6)
            if horizontal:
                step = max(step, 1)  # iterations are whole numbers
            v = math.ceil(axis_lo / step) * step
            while v <= axis_hi + 1e-12:
                if horizontal:
                    body.append(f'<line x1="{px(v):.1f}" y1="{y0 + ph}" x2="{px(v):.1f}" y2="{y0 + ph + 5}" stroke="black"/>')
                    body.append(f'<text x="{px(v):.1f}" y="{y0 + ph + 17}" text-anchor="middle">{v:g}</text>')
                else:
                    body.append(f'<line x1="{left - 5}" y1="{py(v):.1f}" x2="{left}" y2="{py(v):.1f}" stroke="black"/>')
                    body.append(f'<text x="{left - 8}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.4g}</text>')
                v += step
        body.append('<polyline fill="none" stroke="#4e79a7" stroke-width="1.5" points="'
                    + " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in pts) + '"/>')
        if len(pts) <= 200:
            body += [f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.5" fill="#4e79a7"/>' for a, b in pts]
    return svg_doc(left + width + 30, top + 2 * (ph + gap), body)


# --- Chrome trace --------------------------------------------------------------------------------
def chrome_trace(tr, items, rows, windows, t0):
    us = lambda t: round((t - t0) * 1000.0, 3)  # noqa: E731
    ev = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "StarPU workers"}},
          {"ph": "M", "name": "process_name", "pid": 2, "args": {"name": "transfers and NVMe I/O"}},
          {"ph": "M", "name": "process_sort_index", "pid": 1, "args": {"sort_index": 1}},
          {"ph": "M", "name": "process_sort_index", "pid": 2, "args": {"sort_index": 2}}]
    for w in sorted(tr.worker_names):
        ev.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": w + 1,
                   "args": {"name": tr.worker_names[w]}})
        ev.append({"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": w + 1, "args": {"sort_index": w}})
    row_tid = {r: i + 1 for i, r in enumerate(rows)}
    for r, tid in row_tid.items():
        ev.append({"ph": "M", "name": "thread_name", "pid": 2, "tid": tid, "args": {"name": row_name(r)}})
        ev.append({"ph": "M", "name": "thread_sort_index", "pid": 2, "tid": tid, "args": {"sort_index": tid}})
    for t in tr.tasks:
        ev.append({"ph": "X", "name": t["name"], "cat": t["kind"], "pid": 1, "tid": t["worker"] + 1,
                   "ts": us(t["start"]), "dur": round((t["end"] - t["start"]) * 1000.0, 3),
                   "args": {"JobId": t["job"], "iteration": t["iter"] + 1, "bytes": sum(t["sizes"])}})
    for it in items:
        ev.append({"ph": "X", "name": it["label"], "cat": it["group"], "pid": 2, "tid": row_tid[it["row"]],
                   "ts": us(it["start"]), "dur": round((it["end"] - it["start"]) * 1000.0, 3),
                   "args": {"link": it["link"], "bytes": it["bytes"]}})
    for k, (lo, _) in enumerate(windows):
        ev.append({"ph": "i", "s": "g", "name": f"iteration {k + 1}", "pid": 1, "tid": 1, "ts": us(lo)})
    # Flow arrows: transfer or NVMe read -> first task after it that uses the data (on the
    # destination node for transfers); last task that used a buffer before an NVMe write -> write.
    users = {}
    for t in tr.tasks:
        if t["name"] not in ("swap_in", "swap_out"):
            for h in t["handles"]:
                users.setdefault(h, []).append(t)
    fid = 0
    for it in items:
        src = dst = None
        if it["group"] == "NVMe write":
            cands = [t for h in it["handles"] for t in users.get(h, ()) if t["end"] <= it["start"]]
            src = max(cands, key=lambda t: t["end"], default=None)
        else:
            cands = [t for h in it["handles"] for t in users.get(h, ()) if t["start"] >= it["end"] and
                     (it["dst"] is None or tr.worker_node.get(t["worker"], it["dst"]) == it["dst"])]
            dst = min(cands, key=lambda t: t["start"], default=None)
        if not (src or dst):
            continue
        fid += 1
        io_end = {"pid": 2, "tid": row_tid[it["row"]]}
        if dst:
            a = dict(io_end, ts=us(it["start"]))
            b = {"pid": 1, "tid": dst["worker"] + 1, "ts": us(dst["start"])}
        else:
            a = {"pid": 1, "tid": src["worker"] + 1, "ts": us(src["start"])}
            b = dict(io_end, ts=us(it["start"]))
        ev.append(dict(a, ph="s", id=fid, name="data", cat="flow"))
        ev.append(dict(b, ph="f", bp="e", id=fid, name="data", cat="flow"))
    return {"traceEvents": ev, "displayTimeUnit": "ms"}


def to_png(svg):
    png = svg[:-4] + ".png"
    tool = shutil.which("rsvg-convert")
    if not tool:
        print(f"{os.path.basename(png)} skipped: rsvg-convert not found (Debian package librsvg2-bin)")
        return
    r = subprocess.run([tool, "-o", png, svg], capture_output=True, text=True)
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        print(f"{os.path.basename(png)} skipped: rsvg-convert failed: {why}")


def read_metrics(path):
    recs, n = [], 0
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    r = json.loads(line)
                    if isinstance(r, dict) and "iteration" in r:
                        recs.append(r)
    except OSError as e:
        fail(f"{path}: {e.strerror}: give the file gpt50b --metrics wrote")
    except ValueError as e:
        fail(f"{path}: line {n} is not JSON ({e}): give the file gpt50b --metrics wrote")
    if not recs:
        fail(f"{path}: no iteration records: give the file gpt50b --metrics wrote")
    return recs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--fxt", help="FxT prof_file, or the folder (STARPU_FXT_PREFIX) holding one")
    src.add_argument("--rec", help="folder where starpu_fxt_tool already wrote tasks.rec etc.")
    ap.add_argument("--metrics", help="gpt50b --metrics file (JSON lines): adds metrics.svg")
    ap.add_argument("--out", required=True, help="folder for the outputs (made if missing)")
    a = ap.parse_args()
    metrics = read_metrics(a.metrics) if a.metrics else None
    with tempfile.TemporaryDirectory(prefix="trace_report.") as tmp:
        if a.rec:
            if not os.path.isdir(a.rec):
                fail(f"{a.rec}: no such folder: give the folder where starpu_fxt_tool ran")
            recdir = a.rec
        else:
            recdir = convert_fxt(a.fxt, tmp)
        tr = load(recdir)
        try:
            os.makedirs(a.out, exist_ok=True)
        except OSError as e:
            fail(f"{a.out}: cannot make this folder: {e.strerror}")
        if tr.paje and os.path.abspath(tr.paje) != os.path.abspath(os.path.join(a.out, "paje.trace")):
            shutil.copy(tr.paje, os.path.join(a.out, "paje.trace"))
    items = io_items(tr)
    rows = pack_rows(items)
    bounds = iterations(tr)
    text, windows, t0, tend = summarize(tr, items, bounds)
    title = f"StarPU trace of {a.fxt or a.rec}: {len(tr.tasks)} tasks, {len(windows)} iteration(s)"
    with open(os.path.join(a.out, "gantt.svg"), "w") as f:
        f.write(gantt_svg(tr, items, rows, windows, t0, tend, title))
    to_png(os.path.join(a.out, "gantt.svg"))
    with open(os.path.join(a.out, "trace.json"), "w") as f:
        json.dump(chrome_trace(tr, items, rows, windows, t0), f)
    with open(os.path.join(a.out, "summary.txt"), "w") as f:
        f.write(text)
    if metrics:
        with open(os.path.join(a.out, "metrics.svg"), "w") as f:
            f.write(metrics_svg(metrics))
        to_png(os.path.join(a.out, "metrics.svg"))
    print(text, end="")


if __name__ == "__main__":
    main()
