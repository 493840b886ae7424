#!/usr/bin/env python3
"""The GPU host's ceilings that bound an offloaded iteration, measured with PyTorch.

    host_ceilings.py [--out ceilings.json] [--gemm 8192] [--copy-gib 1] [--dtype bf16|fp16]

- GEMM: TFLOP/s of an n x n x n product (cuBLAS) after warm-up, the compute bound's rate;
- PCIe: GB/s of pinned host->device and device->host copies of --copy-gib GiB;
- host memory: GB/s of a copy between two --copy-gib GiB host tensors on every core, counting
  the bytes read and the bytes written (the CPU AdamW's traffic is counted the same way).
Each figure is the median of several repetitions. Prints a table and writes the JSON file.
"""
import argparse
import json
import statistics
import time

import torch


def timed(fn, reps, sync):
    times = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="ceilings.json")
    ap.add_argument("--gemm", type=int, default=8192)
    ap.add_argument("--copy-gib", type=float, default=1.0)
    ap.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("host_ceilings.py: no CUDA device: run it on the GPU host")
    dt = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    sync = torch.cuda.synchronize
    n = args.gemm
    a = torch.randn(n, n, device="cuda", dtype=dt)
    b = torch.randn(n, n, device="cuda", dtype=dt)
    for _ in range(3):
        a @ b
    gemm_s = timed(lambda: [a @ b for _ in range(10)], 5, sync) / 10
    del a, b
    nbytes = int(args.copy_gib * (1 << 30))
    host = torch.empty(nbytes, dtype=torch.uint8).pin_memory()
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    h2d = timed(lambda: dev.copy_(host, non_blocking=True), 5, sync)
    d2h = timed(lambda: host.copy_(dev, non_blocking=True), 5, sync)
    src = torch.ones(nbytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    mem = timed(lambda: dst.copy_(src), 5, lambda: None)
    res = {
        "device": torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "gemm": {"n": n, "dtype": args.dtype, "tflops": 2 * n**3 / gemm_s / 1e12},
        "pcie": {"bytes": nbytes, "h2d_gb_s": nbytes / h2d / 1e9, "d2h_gb_s": nbytes / d2h / 1e9},
        "host_memory": {"bytes": nbytes, "copy_gb_s": 2 * nbytes / mem / 1e9},
    }
    print(f"| ceiling ({res['device']}) | measured |")
    print("|---|---|")
    print(f"| {args.dtype} GEMM {n}^3 | {res['gemm']['tflops']:.0f} TFLOP/s |")
    print(f"| PCIe host->device, pinned | {res['pcie']['h2d_gb_s']:.1f} GB/s |")
    print(f"| PCIe device->host, pinned | {res['pcie']['d2h_gb_s']:.1f} GB/s |")
    print(f"| host memory copy ({res['threads']} threads, read + write) | "
          f"{res['host_memory']['copy_gb_s']:.1f} GB/s |")
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
