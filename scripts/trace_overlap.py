#!/usr/bin/env python3
"""trace_overlap.py: how much the kinds of tasks of a StarPU trace overlap in time.

Reads the tasks.rec that StarPU's starpu_fxt_tool writes from an FxT trace (run gpt50b with
STARPU_FXT_TRACE=1 STARPU_FXT_PREFIX=DIR/, then `starpu_fxt_tool -i DIR/prof_file_*`), sorts the
executed tasks into groups (swap-in, AdamW, swap-out, compute: every other codelet of the model)
and prints, for each group, its busy time (the union of its tasks' intervals) and, for each pair
of groups, how long both were busy at once. Evidence that NVMe swap-in, the CPU AdamW, swap-out
and the model's kernels run concurrently rather than one after the other. Writes a JSON file
with --out.

    python3 scripts/trace_overlap.py tasks.rec [--out overlap.json]
"""
import argparse
import itertools
import json
import sys

from starpu_trace import intersect, length, read_tasks, union

GROUPS = {"swap_in": "swap-in", "adamw": "AdamW", "swap_out": "swap-out"}
IGNORED = ("_starpu", "starpu_data_unregister", "zero", "sumsq")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tasks_rec")
    ap.add_argument("--out")
    a = ap.parse_args()
    try:
        tasks = read_tasks(a.tasks_rec)
    except OSError as e:
        print(f"trace_overlap.py: error: {a.tasks_rec}: {e.strerror}: run starpu_fxt_tool first",
              file=sys.stderr)
        sys.exit(2)
    groups = {}
    for t in tasks:
        name = t["Name"]
        if name.startswith(IGNORED):
            continue
        g = GROUPS.get(name, "compute")
        groups.setdefault(g, []).append((float(t["StartTime"]), float(t["EndTime"])))
    if not groups:
        print(f"trace_overlap.py: error: {a.tasks_rec}: no executed model tasks", file=sys.stderr)
        sys.exit(2)
    busy = {g: union(v) for g, v in groups.items()}
    span = max(e for v in busy.values() for _, e in v) - min(s for v in busy.values() for s, _ in v)
    result = {"span_ms": span, "groups": {}, "overlap_ms": {}}
    print(f"| group | tasks | busy ms | share of the {span:.1f} ms span |")
    print("|---|---|---|---|")
    for g in sorted(busy):
        ms = length(busy[g])
        result["groups"][g] = {"tasks": len(groups[g]), "busy_ms": ms}
        print(f"| {g} | {len(groups[g])} | {ms:.1f} | {100 * ms / span:.0f}% |")
    print("\n| groups busy at once | ms | share of the first group's busy time |")
    print("|---|---|---|")
    for g, h in itertools.combinations(sorted(busy), 2):
        ms = length(intersect(busy[g], busy[h]))
        result["overlap_ms"][f"{g} & {h}"] = ms
        print(f"| {g} & {h} | {ms:.1f} | {100 * ms / max(length(busy[g]), 1e-9):.0f}% |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
