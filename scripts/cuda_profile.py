#!/usr/bin/env python3
"""cuda_profile.py: the per-kernel table of one iteration from gpt50b's CUDA task timeline.

gpt50b run with GPT50B_CUDA_EVENTS=FILE writes FILE at the end: one CSV line per CUDA task
(worker, device, task name, start and end in ms on the GPU's clock, from timing events recorded
on the worker's stream just before and after the task's kernels). This script cuts the timeline
into iterations (one starts at each `encoder_fwd`) and prints, for one iteration of one CUDA
worker:

- per task name: count, GPU time (the stream from the task's first to its last kernel), mean,
  share of the iteration's wall time;
- the gaps: time the stream sat idle between the end of one task and the start of the next,
  in total and by size, with the task kinds that waited most and the largest gaps.

A gap is what the task after it cost beyond its kernels: StarPU noticing the previous task's end,
releasing its successors, scheduling, fetching and launching the next one (or the host not having
submitted it yet). The events themselves add a few microseconds of host time per task.

Usage:
    python3 scripts/cuda_profile.py events.csv [--iteration K] [--worker W] [--json out.json]
K counts from 1; the default is the last iteration that another follows (its window ends at the
next `encoder_fwd`, so its optimizer tail is in it), or the only one.
"""
import argparse
import csv
import json
import statistics
import sys

GAP_BINS = [(0, 5e-3), (5e-3, 20e-3), (20e-3, 100e-3), (100e-3, float("inf"))]  # ms


def fail(msg):
    print(f"cuda_profile.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def load(path, worker):
    try:
        with open(path) as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    if not rows:
        fail(f"{path} holds no task")
    workers = sorted({int(r["worker"]) for r in rows})
    w = workers[0] if worker is None else worker
    if w not in workers:
        fail(f"no CUDA worker {w} in {path} (workers: {workers})")
    tasks = [(r["name"], float(r["start_ms"]), float(r["end_ms"])) for r in rows
             if int(r["worker"]) == w]
    tasks.sort(key=lambda t: t[1])
    return w, tasks


def iterations(tasks):
    """(first, last) task indexes of each iteration: from one encoder_fwd to before the next."""
    starts = [i for i, t in enumerate(tasks) if t[0] == "encoder_fwd"]
    if not starts:
        fail("no encoder_fwd in the timeline: not a training run's")
    bounds = starts + [len(tasks)]
    return [(bounds[k], bounds[k + 1]) for k in range(len(starts))]


def profile(tasks, lo, hi):
    seg = tasks[lo:hi]
    end = tasks[hi][1] if hi < len(tasks) else max(t[2] for t in seg)
    wall = end - seg[0][1]
    kinds = {}
    for name, s, e in seg:
        k = kinds.setdefault(name, {"count": 0, "ms": 0.0, "gap_before_ms": 0.0})
        k["count"] += 1
        k["ms"] += e - s
    gaps = []
    nxt = seg[1:] + ([tasks[hi]] if hi < len(tasks) else [])
    for (n0, s0, e0), (n1, s1, e1) in zip(seg, nxt):
        g = s1 - e0
        if g > 0:
            gaps.append((g, n0, n1))
            if n1 in kinds:  # the next iteration's first task counts as its own name here
                kinds[n1]["gap_before_ms"] += g
    busy = sum(k["ms"] for k in kinds.values())
    idle = sum(g for g, _, _ in gaps)
    bins = []
    for a, b in GAP_BINS:
        sel = [g for g, _, _ in gaps if a <= g < b]
        bins.append({"from_us": a * 1e3, "to_us": b * 1e3 if b != float("inf") else None,
                     "count": len(sel), "ms": sum(sel)})
    return {
        "wall_ms": wall, "tasks": len(seg), "busy_ms": busy, "idle_ms": idle,
        "gaps": len(gaps), "median_gap_us": statistics.median([g for g, _, _ in gaps]) * 1e3
        if gaps else 0.0,
        "kinds": kinds, "gap_bins": bins,
        "largest_gaps": [{"ms": g, "after": a, "before": b}
                         for g, a, b in sorted(gaps, reverse=True)[:8]],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("events", help="the CSV file of GPT50B_CUDA_EVENTS")
    ap.add_argument("--iteration", type=int, help="iteration to report, from 1 (default: the last "
                    "complete one)")
    ap.add_argument("--worker", type=int, help="CUDA worker (default: the first in the file)")
    ap.add_argument("--json", help="write the report here too")
    a = ap.parse_args()
    w, tasks = load(a.events, a.worker)
    its = iterations(tasks)
    k = a.iteration if a.iteration else max(1, len(its) - 1)
    if not 1 <= k <= len(its):
        fail(f"--iteration {k}: the timeline has {len(its)} iteration(s)")
    p = profile(tasks, *its[k - 1])
    walls = [profile(tasks, *b)["wall_ms"] for b in its[:-1]] if len(its) > 1 else []
    p.update({"worker": w, "iteration": k, "iterations": len(its), "iteration_walls_ms": walls})

    print(f"CUDA worker {w}, iteration {k} of {len(its)}: wall {p['wall_ms']:.2f} ms, "
          f"{p['tasks']} tasks, GPU busy {p['busy_ms']:.2f} ms "
          f"({100 * p['busy_ms'] / p['wall_ms']:.1f}%), idle between tasks {p['idle_ms']:.2f} ms "
          f"in {p['gaps']} gaps (median {p['median_gap_us']:.1f} us)")
    print()
    print("| task | count | GPU ms | mean us | % of wall | idle before it, ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, v in sorted(p["kinds"].items(), key=lambda kv: -kv[1]["ms"]):
        print(f"| {name} | {v['count']} | {v['ms']:.2f} | {1e3 * v['ms'] / v['count']:.1f} | "
              f"{100 * v['ms'] / p['wall_ms']:.1f} | {v['gap_before_ms']:.2f} |")
    print(f"| all | {p['tasks']} | {p['busy_ms']:.2f} | | {100 * p['busy_ms'] / p['wall_ms']:.1f} "
          f"| {p['idle_ms']:.2f} |")
    print()
    print("| gap | count | ms |")
    print("|---|---:|---:|")
    for b in p["gap_bins"]:
        span = (f"{b['from_us']:.0f} to {b['to_us']:.0f} us" if b["to_us"] is not None else
                f"{b['from_us']:.0f} us and more")
        print(f"| {span} | {b['count']} | {b['ms']:.2f} |")
    print()
    print("largest gaps: " + ", ".join(f"{g['ms'] * 1e3:.0f} us ({g['after']} -> {g['before']})"
                                       for g in p["largest_gaps"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(p, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
