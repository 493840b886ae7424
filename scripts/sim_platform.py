#!/usr/bin/env python3
"""sim_platform.py: StarPU's bus files for a simulated machine, from scripts/machines/NAME.json.

    python3 scripts/sim_platform.py MACHINE OUTDIR [--hostname NAME] [--half-duplex]

MACHINE is a machine file (scripts/machines/NAME.json, docs/simulation.md section 1) or the NAME
of one. Writes, under OUTDIR/bus/, the four files a StarPU built with SimGrid reads for
STARPU_HOSTNAME=NAME (docs/simulation.md section 3, "Files StarPU needs"):

  NAME.platform.v4.xml  the SimGrid platform: the simulated copies run over its links
  NAME.bandwidth        MB/s and us between memory nodes (0 = RAM, 1.. = CUDA0..): what the
  NAME.latency          schedulers predict a transfer with; the same routes as the platform
  NAME.config           empty: its presence makes StarPU take this folder's bus files

NAME is the machine file's "name" unless --hostname says otherwise. Point STARPU_PERF_MODEL_DIR at
OUTDIR (next to a codelets/ folder of models) and set STARPU_HOSTNAME=NAME; scripts/simulate.sh does.

The machine, N nodes x G GPUs simulated by one StarPU process (StarPU has one RAM memory node, so
the nodes' host memories are one pool; each node keeps its own links):

  hosts   MAIN (the program's main thread), CPU0..CPU{N*cpu_cores-1} (a CUDA worker's driver takes
          one each, the rest are CPU workers), CUDA0..CUDA{N*G-1} (GPU k of node n is
          CUDA{n*G+k}; properties model, memsize = gpu_memory_bytes, of which StarPU uses 90%,
          and memcpy_peer=1 when there are several GPUs), RAM
  links   per GPU, its own PCIe link each way: RAM-CUDAg at pcie_h2d_GBps, CUDAg-RAM at
          pcie_d2h_GBps, latency pcie_latency_us;
          per PCIe switch when pcie_gpus_per_uplink > 1: Switch<n>.<s>-down and -up, one x16
          uplink shared by that many GPUs, at the same rates;
          per node, the host side: Host<n>-down and Host<n>-up, the sum of the node's uplinks
          (never the narrowest on our machines; it is where all of a node's traffic meets);
          per NVLink pair within a node: CUDAa-CUDAb and CUDAb-CUDAa at links x peer_GBps
          (nvlink_pairs; without that list every pair of a node gets peer_GBps when it is > 0),
          latency pcie_latency_us;
          per node when N > 1: Net<n>-out (latency network_latency_us) and Net<n>-in at
          network_GBps
  routes  RAM -> CUDAg: Host-down, Switch-down, RAM-CUDAg; back: CUDAg-RAM, Switch-up, Host-up.
          GPU to GPU in a node: its NVLink; without one, through PCIe (the two GPUs' links, and
          the switch uplinks when they hang off different switches). GPUs of different nodes:
          GPU, switch, network out, network in, switch, GPU (GPUDirect RDMA, no host memory).

PCIe and NVLink are full duplex, so each direction is its own link: an upload and a download run
at once at their full rates (gpt50b's offload modes do both in every iteration). --half-duplex
instead makes each node's host side one link shared by both directions, at the larger of the two
rates (the form of StarPU's own platform file when it does not know the PCIe tree, its
"Interconnect" link).

The matrices hold, for each route, the narrowest link's bandwidth and the sum of the links'
latencies, and one extra `nan` column and row: StarPU's reader drops the last value of every row
and the whole last row (docs/simulation.md, "A trap in the matrices").

Python 3's standard library only. Bad input: one line on stderr and exit status 2.
"""
import argparse
import json
import os
import sys
from xml.sax.saxutils import quoteattr

PROG = "sim_platform.py"
GB = 1e9


class MachineError(Exception):
    pass


def machines_dir():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "machines")


def machine_path(arg):
    """A machine file's path from a path or a name of scripts/machines/."""
    if os.sep in arg or arg.endswith(".json"):
        return arg
    return os.path.join(machines_dir(), arg + ".json")


def load_machine(arg):
    path = machine_path(arg)
    try:
        with open(path) as f:
            m = json.load(f)
    except FileNotFoundError:
        names = sorted(n[:-5] for n in os.listdir(machines_dir()) if n.endswith(".json"))
        raise MachineError(f"unknown machine {arg}: no {path} (machines: {', '.join(names)})")
    except (OSError, ValueError) as e:
        raise MachineError(f"{path}: {e}")
    if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m["name"]:
        raise MachineError(f"{path}: no \"name\"")
    return m


def figure(m, key, default=None, required=True):
    """The value of figure KEY ({"value": ...}); DEFAULT when absent or null unless REQUIRED."""
    x = m.get(key)
    v = x.get("value") if isinstance(x, dict) else x
    if v is None:
        if required and default is None:
            raise MachineError(f"{m['name']}: figure {key} is missing or null")
        return default
    return v


def positive(m, key, default=None, required=True):
    v = figure(m, key, default, required)
    if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0):
        raise MachineError(f"{m['name']}: figure {key} must be a positive number, not {v!r}")
    return v


class Platform:
    """Hosts, links and routes of one machine; links are {id: (bytes/s, latency s)}."""

    def __init__(self, m, half_duplex=False):
        self.name = m["name"]
        self.nodes = int(positive(m, "nodes"))
        self.gpn = int(positive(m, "gpus_per_node"))
        self.cores = int(positive(m, "cpu_cores"))
        self.ngpu = self.nodes * self.gpn
        self.ncpu = self.nodes * self.cores
        self.gpu_model = str(figure(m, "gpu_model"))
        self.gpu_memory = int(positive(m, "gpu_memory_bytes"))
        h2d = positive(m, "pcie_h2d_GBps") * GB
        d2h = positive(m, "pcie_d2h_GBps") * GB
        lat = figure(m, "pcie_latency_us", 0.0, required=False) / 1e6
        per_up = int(positive(m, "pcie_gpus_per_uplink", 1, required=False))
        if self.gpn % per_up:
            raise MachineError(f"{self.name}: pcie_gpus_per_uplink {per_up} does not divide "
                               f"gpus_per_node {self.gpn}")
        peer = figure(m, "peer_GBps", 0, required=False) * GB
        pairs = figure(m, "nvlink_pairs", [], required=False)
        self.links, self.routes = {}, {}

        nvl = {}
        for p in pairs:
            if (not isinstance(p, list) or len(p) != 3 or not all(isinstance(x, int) for x in p)
                    or not (0 <= p[0] < self.gpn and 0 <= p[1] < self.gpn) or p[0] == p[1]
                    or p[2] < 1):
                raise MachineError(f"{self.name}: nvlink_pairs entry {p!r} is not "
                                   f"[gpu, gpu, links] of GPUs 0..{self.gpn - 1}")
            nvl[(p[0], p[1])] = nvl[(p[1], p[0])] = p[2]
        if pairs and not peer:
            raise MachineError(f"{self.name}: nvlink_pairs given but peer_GBps is 0")
        if not pairs and peer:
            nvl = {(a, b): 1 for a in range(self.gpn) for b in range(self.gpn) if a != b}

        switches = self.gpn // per_up if per_up > 1 else 0
        for n in range(self.nodes):
            host_bw = (switches or self.gpn) * max(h2d, d2h)
            if half_duplex:
                self.links[f"Host{n}"] = (host_bw, 0.0)
            else:
                self.links[f"Host{n}-down"] = (host_bw, 0.0)
                self.links[f"Host{n}-up"] = (host_bw, 0.0)
            for s in range(switches):
                self.links[f"Switch{n}.{s}-down"] = (h2d, 0.0)
                self.links[f"Switch{n}.{s}-up"] = (d2h, 0.0)
            if self.nodes > 1:
                net = positive(m, "network_GBps") * GB
                netlat = figure(m, "network_latency_us", 0.0, required=False) / 1e6
                self.links[f"Net{n}-out"] = (net, netlat)
                self.links[f"Net{n}-in"] = (net, 0.0)
        for g in range(self.ngpu):
            self.links[f"RAM-CUDA{g}"] = (h2d, lat)
            self.links[f"CUDA{g}-RAM"] = (d2h, lat)

        def node(g):
            return g // self.gpn

        def switch_id(g):
            return f"Switch{node(g)}.{(g % self.gpn) // per_up}"

        def switch(g, way):  # the switch uplink of GPU g, or nothing
            return [f"{switch_id(g)}-{way}"] if switches else []

        def host(g, way):
            return [f"Host{node(g)}" if half_duplex else f"Host{node(g)}-{way}"]

        for g in range(self.ngpu):
            self.routes[("RAM", f"CUDA{g}")] = host(g, "down") + switch(g, "down") + [f"RAM-CUDA{g}"]
            self.routes[(f"CUDA{g}", "RAM")] = [f"CUDA{g}-RAM"] + switch(g, "up") + host(g, "up")
        for a in range(self.ngpu):
            for b in range(self.ngpu):
                if a == b:
                    continue
                ends = [f"CUDA{a}-RAM"], [f"RAM-CUDA{b}"]
                if node(a) != node(b):
                    path = (ends[0] + switch(a, "up") + [f"Net{node(a)}-out", f"Net{node(b)}-in"]
                            + switch(b, "down") + ends[1])
                elif (a % self.gpn, b % self.gpn) in nvl:
                    link = f"CUDA{a}-CUDA{b}"
                    self.links[link] = (nvl[(a % self.gpn, b % self.gpn)] * peer, lat)
                    path = [link]
                elif switches and switch_id(a) == switch_id(b):
                    path = ends[0] + ends[1]  # peer to peer under one switch
                else:
                    path = ends[0] + switch(a, "up") + switch(b, "down") + ends[1]
                self.routes[(f"CUDA{a}", f"CUDA{b}")] = path

    def memory_nodes(self):
        return ["RAM"] + [f"CUDA{g}" for g in range(self.ngpu)]

    def route_bandwidth(self, src, dst):
        """Bytes/s of the route's narrowest link."""
        return min(self.links[i][0] for i in self.routes[(src, dst)])

    def route_latency(self, src, dst):
        """Seconds: the route's latencies summed."""
        return sum(self.links[i][1] for i in self.routes[(src, dst)])

    def xml(self, source=""):
        x = ["<?xml version='1.0'?>",
             '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">',
             '<platform version="4.1">',
             f" <!-- {self.name}: {self.nodes} node(s) x {self.gpn} GPU(s), {self.ncpu} CPU "
             f"cores; written by scripts/sim_platform.py{' from ' + source if source else ''} -->",
             # StarPU's own platform files carry these: plain bandwidth sharing, no TCP model
             ' <config id="General">',
             '   <prop id="network/TCP-gamma" value="-1"></prop>',
             '   <prop id="network/latency-factor" value="1"></prop>',
             '   <prop id="network/bandwidth-factor" value="1"></prop>',
             '   <prop id="network/crosstraffic" value="0"></prop>',
             '   <prop id="network/weight-S" value="0.0"></prop>',
             ' </config>',
             ' <zone id="AS0" routing="Full">',
             '   <host id="MAIN" speed="1f"/>']
        # host speeds do not matter: a task's duration is turned into flops and back
        x += [f'   <host id="CPU{i}" speed="2000000000f"/>' for i in range(self.ncpu)]
        for g in range(self.ngpu):
            x += [f'   <host id="CUDA{g}" speed="2000000000f">',
                  f'     <prop id="model" value={quoteattr(self.gpu_model)}/>',
                  f'     <prop id="memsize" value="{self.gpu_memory}"/>',
                  f'     <prop id="memcpy_peer" value="{1 if self.ngpu > 1 else 0}"/>',
                  '   </host>']
        x.append('   <host id="RAM" speed="1f"/>')
        x += [f'   <link id="{i}" bandwidth="{bw:.0f}Bps" latency="{la:.9g}s"/>'
              for i, (bw, la) in self.links.items()]
        for (s, d), path in self.routes.items():
            x.append(f'   <route src="{s}" dst="{d}" symmetrical="NO">'
                     + "".join(f'<link_ctn id="{i}"/>' for i in path) + "</route>")
        x += [" </zone>", "</platform>", ""]
        return "\n".join(x)

    def matrix(self, what):
        """StarPU's bandwidth (MB/s) or latency (us) file: rows are sources, columns
        destinations, with the extra nan column and row its reader needs."""
        nodes = self.memory_nodes()
        n = len(nodes)
        rows = ["# " + "".join(f"to {d}\t\t" for d in range(n + 1)).rstrip()]
        for s in nodes:
            vals = []
            for d in nodes:
                if s == d:
                    v = 0.0
                elif what == "bandwidth":
                    v = self.route_bandwidth(s, d) / 1e6
                else:
                    v = self.route_latency(s, d) * 1e6
                vals.append(f"{v:e}")
            rows.append("\t".join(vals + ["nan"]))
        rows.append("\t".join(["nan"] * (n + 1)))
        return "\n".join(rows) + "\n"


def write(platform, outdir, hostname, source=""):
    bus = os.path.join(outdir, "bus")
    os.makedirs(bus, exist_ok=True)
    files = {f"{hostname}.platform.v4.xml": platform.xml(source),
             f"{hostname}.bandwidth": platform.matrix("bandwidth"),
             f"{hostname}.latency": platform.matrix("latency"),
             f"{hostname}.config": ""}
    for name, text in files.items():
        with open(os.path.join(bus, name), "w") as f:
            f.write(text)
    return [os.path.join(bus, name) for name in files]


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("machine", help="machine file or name (scripts/machines/NAME.json)")
    ap.add_argument("outdir", help="writes OUTDIR/bus/NAME.*")
    ap.add_argument("--hostname", help="file names (STARPU_HOSTNAME); default: the machine's name")
    ap.add_argument("--half-duplex", action="store_true",
                    help="one host link per node shared by both directions")
    a = ap.parse_args(argv)
    try:
        m = load_machine(a.machine)
        p = Platform(m, a.half_duplex)
        files = write(p, a.outdir, a.hostname or m["name"], os.path.basename(machine_path(a.machine)))
    except MachineError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    print(f"{PROG}: {p.name}: {p.ncpu} CPU hosts, {p.ngpu} CUDA hosts, {len(p.links)} links, "
          f"{len(p.routes)} routes -> {os.path.dirname(files[0])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
