#!/usr/bin/env python3
"""test_sim_platform.py: scripts/sim_platform.py on every machine file, and on broken ones.

For each scripts/machines/*.json: the four bus files exist (config empty); the platform XML is
well-formed with MAIN, N*cores CPU hosts, N*G CUDA hosts (memsize, model, memcpy_peer) and RAM;
every route names declared links and every ordered pair of memory nodes has one; the bandwidth and
latency matrices have one row and column per memory node plus the nan row and column StarPU's
reader drops, a zero diagonal, and each route's narrowest link (bandwidth) and summed latencies,
recomputed here from the XML. Then figures of the machines: PCIe rates, Cori's NVLink pairs (one
and two links), a pair without NVLink through PCIe, a pair across nodes through the network, two
GPUs sharing a switch uplink, duplex and --half-duplex host links. Bad input (unknown machine,
missing figure, bad NVLink pair): exit 2 and one line. When the SimGrid StarPU is installed
(STARPU_SIM_PREFIX, default ~/.cache/gpt50b/starpu-1.4.10-simgrid), its starpu_machine_display
must read the files as written: the worker counts and the first bandwidth row.

Exits 0 (all passed) or 1. GPT50B_TOP: the source root (default ../..).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

TOP = os.environ.get("GPT50B_TOP") or os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
GEN = os.path.join(TOP, "scripts", "sim_platform.py")
MACHINES = os.path.join(TOP, "scripts", "machines")
failures = []


def check(ok, what):
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures.append(what)
    return ok


def gen(machine, out, *extra):
    return subprocess.run([sys.executable, GEN, machine, out, *extra], capture_output=True, text=True)


def read_matrix(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path) if not line.startswith("#")]
    return [[float(v) for v in r] for r in rows]


def value(m, k, default=None):
    x = m.get(k)
    return default if not isinstance(x, dict) or x.get("value") is None else x["value"]


def check_machine(path, out):
    m = json.load(open(path))
    name = m["name"]
    r = gen(path, out)
    if not check(r.returncode == 0, f"{name}: generated (exit {r.returncode}) {r.stderr.strip()}"):
        return None
    bus = os.path.join(out, "bus")
    files = {s: os.path.join(bus, f"{name}.{s}") for s in ("platform.v4.xml", "bandwidth", "latency", "config")}
    check(all(os.path.isfile(f) for f in files.values()), f"{name}: four bus files")
    check(os.path.getsize(files["config"]) == 0, f"{name}: config is empty")
    try:
        root = ET.parse(files["platform.v4.xml"]).getroot()
    except ET.ParseError as e:
        check(False, f"{name}: platform XML well-formed: {e}")
        return None
    nodes, gpn, cores = value(m, "nodes"), value(m, "gpus_per_node"), value(m, "cpu_cores")
    ngpu = nodes * gpn
    zone = root.find("zone")
    hosts = [h.get("id") for h in zone.findall("host")]
    want = ["MAIN"] + [f"CPU{i}" for i in range(nodes * cores)] + [f"CUDA{g}" for g in range(ngpu)] + ["RAM"]
    check(hosts == want, f"{name}: hosts MAIN, {nodes * cores} CPU, {ngpu} CUDA, RAM (got {len(hosts)})")
    props = {h.get("id"): {p.get("id"): p.get("value") for p in h.findall("prop")} for h in zone.findall("host")}
    check(all(props[f"CUDA{g}"] == {"model": value(m, "gpu_model"), "memsize": str(value(m, "gpu_memory_bytes")),
                                    "memcpy_peer": "1" if ngpu > 1 else "0"} for g in range(ngpu)),
          f"{name}: CUDA hosts' model, memsize, memcpy_peer")
    links = {}
    for link in zone.findall("link"):
        bw = re.fullmatch(r"([0-9.e+]+)Bps", link.get("bandwidth"))
        la = re.fullmatch(r"([0-9.e+-]+)s", link.get("latency"))
        links[link.get("id")] = (float(bw.group(1)), float(la.group(1)))
    routes = {(r.get("src"), r.get("dst")): [c.get("id") for c in r.findall("link_ctn")]
              for r in zone.findall("route")}
    mem = ["RAM"] + [f"CUDA{g}" for g in range(ngpu)]
    pairs = [(s, d) for s in mem for d in mem if s != d]
    check(set(routes) == set(pairs), f"{name}: a route for each of the {len(pairs)} ordered pairs of memory nodes")
    undeclared = sorted({i for p in routes.values() for i in p} - set(links))
    check(not undeclared, f"{name}: routes name declared links only {undeclared[:3]}")
    if undeclared or set(routes) != set(pairs):
        return None
    bwm, latm = read_matrix(files["bandwidth"]), read_matrix(files["latency"])
    n = len(mem)
    for what, mat in (("bandwidth", bwm), ("latency", latm)):
        shape = len(mat) == n + 1 and all(len(r) == n + 1 for r in mat)
        check(shape, f"{name}: {what} matrix is {n + 1} x {n + 1} ({n} memory nodes and the nan padding)")
        if not shape:
            return None
        pad = all(v != v for v in mat[n]) and all(mat[i][n] != mat[i][n] for i in range(n))
        check(pad, f"{name}: {what}: last row and last column are nan")
        check(all(mat[i][i] == 0 for i in range(n)), f"{name}: {what}: zero diagonal")
    bad = []
    for i, s in enumerate(mem):
        for j, d in enumerate(mem):
            if i == j:
                continue
            path = routes[(s, d)]
            bw = min(links[x][0] for x in path) / 1e6
            la = sum(links[x][1] for x in path) * 1e6
            if abs(bwm[i][j] - bw) > 1e-6 * bw or abs(latm[i][j] - la) > 1e-6 * max(la, 1):
                bad.append(f"{s}->{d}: {bwm[i][j]} MB/s {latm[i][j]} us, route {bw} {la}")
    check(not bad, f"{name}: every matrix cell is its route's narrowest link and summed latency {bad[:2]}")
    return {"links": links, "routes": routes, "bw": bwm, "mem": mem}


def bw(p, s, d):
    return p["bw"][p["mem"].index(s)][p["mem"].index(d)]


def main():
    w = tempfile.mkdtemp(prefix="test_sim_platform.")
    plats = {}
    for f in sorted(os.listdir(MACHINES)):
        if f.endswith(".json"):
            plats[f[:-5]] = check_machine(os.path.join(MACHINES, f), w)

    h1, h2, cori = plats.get("h100-x1"), plats.get("h100-x2"), plats.get("cori-v100-2x8")
    if h1:
        check(bw(h1, "RAM", "CUDA0") == 55200 and bw(h1, "CUDA0", "RAM") == 55100,
              "h100-x1: RAM->CUDA0 55200 MB/s, CUDA0->RAM 55100 MB/s (the machine file's PCIe rates)")
        check(h1["routes"][("RAM", "CUDA0")] == ["Host0-down", "RAM-CUDA0"]
              and h1["routes"][("CUDA0", "RAM")] == ["CUDA0-RAM", "Host0-up"],
              "h100-x1: duplex: uploads and downloads on separate host links")
    if h2:
        check(h2["routes"][("CUDA0", "CUDA1")] == ["CUDA0-CUDA1"] and bw(h2, "CUDA0", "CUDA1") == 270000,
              "h100-x2: CUDA0->CUDA1 over its own link at peer_GBps (270 GB/s)")
    if cori:
        r = cori["routes"]
        check(bw(cori, "CUDA0", "CUDA1") == 25000 and bw(cori, "CUDA0", "CUDA3") == 50000
              and bw(cori, "CUDA11", "CUDA8") == 50000,
              "cori: NVLink pairs of one link 25 GB/s (0-1), of two 50 GB/s (0-3; node 1's 3-0)")
        check("CUDA0-CUDA5" not in cori["links"] and r[("CUDA0", "CUDA5")] ==
              ["CUDA0-RAM", "Switch0.0-up", "Switch0.2-down", "RAM-CUDA5"] and bw(cori, "CUDA0", "CUDA5") == 12000,
              "cori: 0->5 (no NVLink) through PCIe and both switch uplinks at 12 GB/s")
        check(r[("RAM", "CUDA0")] == ["Host0-down", "Switch0.0-down", "RAM-CUDA0"]
              and r[("RAM", "CUDA1")] == ["Host0-down", "Switch0.0-down", "RAM-CUDA1"]
              and r[("RAM", "CUDA2")][1] == "Switch0.1-down",
              "cori: GPUs 0 and 1 share switch 0's uplink, GPU 2 is on switch 1")
        check(r[("CUDA0", "CUDA8")] == ["CUDA0-RAM", "Switch0.0-up", "Net0-out", "Net1-in", "Switch1.0-down", "RAM-CUDA8"]
              and cori["links"]["Net0-out"][0] == 40e9,
              "cori: GPU 0 -> GPU 8 (node 1) over both nodes' network links (40 GB/s)")
        check(r[("RAM", "CUDA9")][0] == "Host1-down", "cori: node 1's GPUs behind node 1's host link")

    # --half-duplex: one host link per node, both directions
    r = gen("h100-x2", os.path.join(w, "half"), "--half-duplex", "--hostname", "hd")
    xml = open(os.path.join(w, "half", "bus", "hd.platform.v4.xml")).read() if r.returncode == 0 else ""
    check('<link id="Host0" bandwidth="110400000000Bps"' in xml and "Host0-up" not in xml
          and '<route src="CUDA1" dst="RAM" symmetrical="NO"><link_ctn id="CUDA1-RAM"/><link_ctn id="Host0"/>' in xml,
          "--half-duplex: one Host0 link shared by both directions; --hostname names the files")

    # bad input: one line, exit 2
    base = json.load(open(os.path.join(MACHINES, "h100-x1.json")))
    def broken(name, change):
        m = json.loads(json.dumps(base))
        change(m)
        p = os.path.join(w, name + ".json")
        json.dump(m, open(p, "w"))
        return p
    cases = [("unknown machine", "no-such-machine", "unknown machine no-such-machine"),
             ("missing figure", broken("nopcie", lambda m: m["pcie_h2d_GBps"].update(value=None)),
              "pcie_h2d_GBps is missing"),
             ("bad NVLink pair", broken("badpair", lambda m: (m["gpus_per_node"].update(value=2),
                                                             m["peer_GBps"].update(value=25),
                                                             m.update(nvlink_pairs={"value": [[0, 2, 1]]}))),
              "nvlink_pairs entry [0, 2, 1]"),
             ("not JSON", os.path.join(TOP, "scripts", "sim_platform.py"), "sim_platform.py:")]
    for what, arg, msg in cases:
        r = gen(arg, os.path.join(w, "bad"))
        lines = (r.stdout + r.stderr).strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and msg in lines[0],
              f"{what}: exit 2 and one line (exit {r.returncode}: {lines})")

    # StarPU itself reads the files
    prefix = os.environ.get("STARPU_SIM_PREFIX") or os.path.expanduser("~/.cache/gpt50b/starpu-1.4.10-simgrid")
    tool = os.path.join(prefix, "bin", "starpu_machine_display")
    if not os.access(tool, os.X_OK):
        print(f"skip - StarPU with SimGrid not found ({tool}): the files were not loaded by StarPU")
    else:
        for name, p in plats.items():
            if not p:
                continue
            env = dict(os.environ, STARPU_PERF_MODEL_DIR=w, STARPU_HOSTNAME=name, STARPU_HOME=w, STARPU_SILENT="1")
            for k in ("STARPU_NCPU", "STARPU_NCUDA", "STARPU_NOPENCL"):
                env.pop(k, None)
            r = subprocess.run([tool, "--log=xbt_cfg.thres:warning"], env=env, capture_output=True, text=True, timeout=300)
            m = json.load(open(os.path.join(MACHINES, name + ".json")))
            ngpu = value(m, "nodes") * value(m, "gpus_per_node")
            ncpu = value(m, "nodes") * value(m, "cpu_cores") - ngpu
            cpus = re.search(r"^(\d+) CPU workers?:", r.stdout, re.M)
            gpus = re.search(r"^(\d+) CUDA workers?:", r.stdout, re.M)
            row = re.search(r"^NUMA 0\t(.*)$", r.stdout.split("bandwidth (MB/s)")[-1], re.M)
            got = [float(v) for v in row.group(1).split()] if row else []
            check(r.returncode == 0 and cpus and int(cpus.group(1)) == ncpu and gpus and int(gpus.group(1)) == ngpu
                  and got == p["bw"][0][:len(p["mem"])],
                  f"{name}: StarPU reads {ncpu} CPU and {ngpu} CUDA workers and RAM's bandwidth row "
                  f"{got[:3]}{'...' if len(got) > 3 else ''} (exit {r.returncode})")
    subprocess.run(["rm", "-rf", w])
    if failures:
        print(f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
