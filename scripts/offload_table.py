#!/usr/bin/env python3
"""The table of scripts/bench_offload.sh: each run next to the bound of the slowest resource.

    offload_table.py OUTDIR

Reads OUTDIR/NAME.log and NAME.jsonl of each gpt50b run, fsdp2.json (scripts/bench_fsdp2.py),
ceilings.json (scripts/host_ceilings.py) and disk.json (nvme_tune), writes
OUTDIR/bench_offload.json and prints a Markdown table. Per run: the run's own mean after the first
iteration (from the end of the first optimizer step to the end of the last), the median of
iterations 2 to 6, the PCIe bytes per iteration each way (StarPU's bus statistics over the
iterations), the NVMe bytes per iteration (the run's own count, and the plan's without the
resident share), and the bound: the largest of compute (the run's FLOPs at the measured GEMM
rate), PCIe (each direction at its copy rate, the two overlapping), CPU AdamW (28 bytes per parameter with 16-bit gradients and parameters, 16 in
fp32, at the faster of the host memory copy rate and the AdamW kernel's own rate from bench_adam's
adam.json) and the disk (bytes read then written at nvme_tune's rates).
"""
import glob
import json
import os
import re
import statistics
import sys

GIB = 1 << 30


def load(path):
    """A result file's JSON; None when it is missing or, with one line on stderr, unreadable (a
    benchmark killed while writing it leaves it empty)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"offload_table.py: {path} is not readable JSON ({e}): left out of the table",
              file=sys.stderr)
        return None


def bus_bytes(log):
    """Host-to-device and device-to-host bytes of StarPU's bus statistics."""
    h2d = d2h = 0.0
    for src, dst, gib in re.findall(r"^\s*(\S+ \d+) -> (\S+ \d+)\s+([0-9.]+) GB", log, re.M):
        if dst.startswith("CUDA") and not src.startswith("CUDA"):
            h2d += float(gib) * GIB
        elif src.startswith("CUDA") and not dst.startswith("CUDA"):
            d2h += float(gib) * GIB
    return h2d, d2h


def adam_rate(ceil, adam):
    """Bytes per second CPU AdamW can move: the host memory copy rate, or the AdamW kernel's
    best measured rate when that is higher."""
    rates = [ceil["host_memory"]["copy_gb_s"]] if ceil else []
    if adam:
        rates.append(max(x["gb_s"] for x in adam["results"]))
    return max(rates) * 1e9


def run_row(out, name, ceil, disk, adam):
    its = [json.loads(line) for line in open(f"{out}/{name}.jsonl")]
    log = open(f"{out}/{name}.log").read()
    model = re.search(r"model: (\d+) layers.*?, (\d+) parameters, (\w+)", log)
    dev = re.search(r"CUDA workers, device (.+)", log)
    done = re.search(r"([0-9.]+) ms per iteration after the first \| (\d+) tokens/s \| ([0-9.]+) "
                     r"TFLOP/s per (?:GPU|process)", log)
    nv = re.search(r"NVMe optimizer traffic: ([0-9.]+) GB read, ([0-9.]+) GB written per "
                   r"iteration \(plan: ([0-9.]+) GB each way; ([0-9.]+) GB without", log)
    params = int(model.group(2)) if model else 0
    dtype = model.group(3) if model else "?"
    mean_ms = float(done.group(1)) if done else float("nan")
    ms = [x["elapsed_ms"] for x in its]
    median_ms = statistics.median(ms[1:6]) if len(ms) > 1 else float("nan")
    flops = float(done.group(3)) * 1e12 * mean_ms / 1e3 if done else 0.0
    tokens = float(done.group(2)) * mean_ms / 1e3 if done else 0.0
    h2d, d2h = bus_bytes(log)
    n = max(len(its), 1)
    r = {"device": dev.group(1) if dev else "?", "layers": int(model.group(1)) if model else 0,
         "params": params, "dtype": dtype, "iterations_ms": ms, "losses": [x["loss"] for x in its],
         "mean_ms": mean_ms, "median_2_6_ms": median_ms, "flops_per_iteration": flops,
         "pcie_h2d_bytes_per_iteration": h2d / n, "pcie_d2h_bytes_per_iteration": d2h / n,
         "tokens_per_s": tokens / (median_ms / 1e3),
         "tflops_8PT": 8 * params * tokens / (median_ms / 1e3) / 1e12}
    if nv:
        r["nvme_read_bytes_per_iteration"] = float(nv.group(1)) * 1e9
        r["nvme_write_bytes_per_iteration"] = float(nv.group(2)) * 1e9
        r["nvme_plan_bytes_each_way"] = float(nv.group(3)) * 1e9
        r["nvme_plan_bytes_without_resident"] = float(nv.group(4)) * 1e9
    offloaded = "> optimizer state:" in log
    bound = {}
    if ceil:
        bound["compute_s"] = flops / (ceil["gemm"]["tflops"] * 1e12)
        bound["pcie_s"] = max(r["pcie_h2d_bytes_per_iteration"] / (ceil["pcie"]["h2d_gb_s"] * 1e9),
                              r["pcie_d2h_bytes_per_iteration"] / (ceil["pcie"]["d2h_gb_s"] * 1e9))
        per_param = 16 if dtype == "fp32" else 28
        bound["adam_s"] = per_param * params / adam_rate(ceil, adam) if offloaded else 0.0
    if disk and nv:
        best = min((x for x in disk["results"] if x["data_ok"]),
                   key=lambda x: 1 / x["write_gbs"] + 1 / x["read_gbs"])
        bound["disk_s"] = (r["nvme_read_bytes_per_iteration"] / (best["read_gbs"] * 1e9) +
                           r["nvme_write_bytes_per_iteration"] / (best["write_gbs"] * 1e9))
        bound["disk_read_gbps"], bound["disk_write_gbps"] = best["read_gbs"], best["write_gbs"]
    if bound:
        limits = {k: v for k, v in bound.items() if k.endswith("_s")}
        what = max(limits, key=limits.get)
        bound["bound_s"], bound["limit"] = limits[what], what[:-2]
        r["bound"] = bound
    return r


def main():
    out = sys.argv[1]
    ceil, disk, adam = (load(f"{out}/{f}.json") for f in ("ceilings", "disk", "adam"))
    res = {"ceilings": ceil, "disk": disk, "adam": adam}
    rows = []
    for path in sorted(glob.glob(f"{out}/*.jsonl")):
        name = os.path.basename(path)[:-6]
        res[name] = run_row(out, name, ceil, disk, adam)
        rows.append((name, res[name]))
    fsdp2 = load(f"{out}/fsdp2.json")
    if fsdp2:
        res["fsdp2"] = fsdp2
    json.dump(res, open(f"{out}/bench_offload.json", "w"), indent=1)

    if ceil:
        print(f"\nceilings ({ceil['device']}): {ceil['gemm']['dtype']} GEMM "
              f"{ceil['gemm']['tflops']:.0f} TFLOP/s, PCIe {ceil['pcie']['h2d_gb_s']:.1f} GB/s "
              f"up and {ceil['pcie']['d2h_gb_s']:.1f} GB/s down, host memory "
              f"{ceil['host_memory']['copy_gb_s']:.1f} GB/s; CPU AdamW bound at "
              f"{adam_rate(ceil, adam) / 1e9:.1f} GB/s")
    if disk:
        best = min(disk["results"], key=lambda x: 1 / x["write_gbs"] + 1 / x["read_gbs"])
        print(f"disk (nvme_tune, {best['block_size'] >> 10} KiB, queue depth "
              f"{best['queue_depth']}, {best['threads']} threads): read {best['read_gbs']:.2f} "
              f"GB/s, write {best['write_gbs']:.2f} GB/s")
    print("\n| run | card | params | s/it mean after 1st | s/it median 2-6 | tokens/s | "
          "PCIe GB/it up/down | NVMe GB/it read/write | compute s | PCIe s | AdamW s | disk s | "
          "bound s (limit) | median/bound | mean/bound | losses |")
    print("|" + "---|" * 16)
    for name, r in rows:
        b = r.get("bound", {})
        nv = (f"{r['nvme_read_bytes_per_iteration'] / 1e9:.1f}/"
              f"{r['nvme_write_bytes_per_iteration'] / 1e9:.1f}"
              if "nvme_read_bytes_per_iteration" in r else "-")

        def sec(k):
            return f"{b[k]:.2f}" if k in b else "-"
        bs = b.get("bound_s")
        print(f"| {name} | {r['device']} | {r['params'] / 1e9:.3f}B | {r['mean_ms'] / 1e3:.2f} | "
              f"{r['median_2_6_ms'] / 1e3:.2f} | {r['tokens_per_s']:.0f} | "
              f"{r['pcie_h2d_bytes_per_iteration'] / 1e9:.1f}/"
              f"{r['pcie_d2h_bytes_per_iteration'] / 1e9:.1f} | {nv} | {sec('compute_s')} | "
              f"{sec('pcie_s')} | {sec('adam_s')} | {sec('disk_s')} | "
              + (f"{bs:.2f} ({b['limit']}) | {r['median_2_6_ms'] / 1e3 / bs:.2f} | "
                 f"{r['mean_ms'] / 1e3 / bs:.2f} | " if bs else "- | - | - | ")
              + " ".join(f"{x:.3f}" for x in r["losses"]) + " |")
    if fsdp2:
        print(f"| fsdp2 | {fsdp2['device']} | {fsdp2['model']['params'] / 1e9:.3f}B | - | "
              f"{fsdp2['median_s']:.2f} (median) | {fsdp2['tokens_per_s']:.0f} | - | - | - | - | "
              f"- | - | - | - | - | {' '.join(f'{x:.3f}' for x in fsdp2['losses'])} |")
        for name, r in rows:
            if r["layers"] == 4 and "bound" in r and r["bound"].get("adam_s"):
                print(f"{name}: {fsdp2['median_s'] * 1e3 / r['median_2_6_ms']:.2f}x FSDP2 "
                      f"(median 2-6), {fsdp2['median_s'] * 1e3 / r['mean_ms']:.2f}x (mean)")


if __name__ == "__main__":
    main()
