"""starpu_trace.py: reading what StarPU's starpu_fxt_tool writes from an FxT trace, and interval math.

Shared by trace_overlap.py and trace_report.py. tasks.rec holds one record per task (Name, JobId,
WorkerId, StartTime and EndTime in ms, DependsOn, Handles, Sizes, ...); activity.data names the
workers ("CPU 0", "CUDA 0"); paje.trace holds the data transfers between memory nodes as Paje
links: event 24 starts one (time, prefetch kind, container, bytes, source memory manager "mmN",
key "com_N", handle, data name, ...) and event 19 ends it (time, kind, container, bytes,
destination "mmN", key); its containers tell which memory node each worker's thread sits on.
trace.rec only holds worker states (no transfers) in StarPU 1.4, so it is not read here.
Standard library only.
"""
import re


def read_records(path):
    """Every record of tasks.rec as a dict of its fields, run or not: the synchronisation tasks
    without times carry DependsOn edges too."""
    recs, cur = [], {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if cur:
                    recs.append(cur)
                cur = {}
                continue
            key, _, value = line.partition(": ")
            cur[key] = value
    if cur:
        recs.append(cur)
    return recs


def read_tasks(path):
    """The records of tasks.rec that ran: those with a Name, a StartTime and an EndTime."""
    return [r for r in read_records(path) if "StartTime" in r and "EndTime" in r and "Name" in r]


def read_worker_names(path):
    """{worker id: "CPU 0" | "CUDA 0" | ...} from activity.data's name lines."""
    names = {}
    with open(path) as f:
        for line in f:
            if line.startswith("name\t"):
                _, wid, name = line.rstrip("\n").split("\t", 2)
                names[int(wid)] = name
    return names


_MM = re.compile(r"mm(\d+)$")


def read_paje(path):
    """Transfers and the memory node of each worker from paje.trace.

    Returns (transfers, worker_node): transfers are dicts src, dst (memory nodes), bytes, start, end
    (ms), handle (hex string as in tasks.rec's Handles), name (the data's name), kind (StarPU's F,
    TF, PF or IF: fetch, task prefetch, prefetch, idle fetch); worker_node maps worker id to memory
    node."""
    starts, transfers = {}, []
    thread_node, worker_node = {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            if line[:2] not in ("7\t", "24", "19"):
                continue
            p = line.rstrip("\n").split("\t")
            if p[0] == "7" and len(p) >= 6:
                m = re.search(r"mn(\d+)$", p[4])
                if p[3] == "T" and m:
                    thread_node[p[2]] = int(m.group(1))
                elif p[3] == "W" and p[4] in thread_node:
                    wm = re.search(r"w(\d+)$", p[2])
                    if wm:
                        worker_node[int(wm.group(1))] = thread_node[p[4]]
            elif p[0] == "24" and len(p) >= 7:
                m = _MM.search(p[5])
                if m:
                    starts[(p[3], p[6])] = (float(p[1]), int(m.group(1)), int(p[4]), p[2],
                                            p[7] if len(p) > 7 else "",
                                            p[8].strip('"') if len(p) > 8 else "")
            elif p[0] == "19" and len(p) >= 7:
                m = _MM.search(p[5])
                s = starts.pop((p[3], p[6]), None)
                if m and s:
                    transfers.append({"start": s[0], "end": float(p[1]), "src": s[1],
                                      "dst": int(m.group(1)), "bytes": s[2], "kind": s[3],
                                      "handle": s[4], "name": s[5]})
    return transfers, worker_node


def union(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def length(intervals):
    return sum(e - s for s, e in intervals)


def intersect(a, b):
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append([s, e])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def clip(intervals, lo, hi):
    """The parts of sorted disjoint intervals inside [lo, hi]."""
    return [[max(s, lo), min(e, hi)] for s, e in intervals if e > lo and s < hi]
