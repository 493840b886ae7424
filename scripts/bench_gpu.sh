#!/usr/bin/env bash
# bench_gpu.sh OUTDIR: the foundation's GPU benchmark (docs/results.md), on a GPU host.
#
# 1. bench_gemm: the matmul codelet against a direct cuBLAS call at 8192^3, fp16.
# 2. gpt50b GPU-resident (no offload): hidden 2048, 24 layers, 16 heads, seq 1024, micro-batch 4,
#    fp16, activation checkpointing, AdamW on the GPU; median iteration time of iterations 3..10.
# 3. scripts/bench_pytorch.py: HF GPT2LMHeadModel, same shape, fp16 autocast, fused AdamW,
#    gradient checkpointing; median of 8 after 2 warm-ups. Same call, same card.
# Prints a table and writes OUTDIR/bench_gpu.json. Needs build/ (or ship/build/) and data/brown.bin.
set -euo pipefail
out=${1:?usage: bench_gpu.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/apps
[ -x "$bin/gpt50b" ] || bin=$top/ship/build/apps
mkdir -p "$out"

"$bin/bench_gemm" --size 8192 --iters 20 --dtype fp16 --out "$out/gemm.json"

shape=(--num-layers 24 --hidden-size 2048 --num-attention-heads 16 --seq-length 1024
	--max-position-embeddings 1024 --micro-batch-size 4 --fp16 --checkpoint-activations)
"$bin/gpt50b" "${shape[@]}" --train-iters 10 --eval-iters 0 --log-interval 1 \
	--lr 1e-4 --min-lr 1e-5 --lr-warmup-iters 0 --data-path "$top/data/brown.bin" --metrics "$out/ours.jsonl"

python3 "$top/scripts/bench_pytorch.py" --hidden 2048 --layers 24 --heads 16 --seq 1024 \
	--micro-batch 4 --iters 8 --warmup 2 --dtype fp16 --out "$out/pytorch.json"

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
gemm = json.load(open(f"{out}/gemm.json"))
torch = json.load(open(f"{out}/pytorch.json"))
rows = [json.loads(l) for l in open(f"{out}/ours.jsonl")]
steady = [r["elapsed_ms"] for r in rows if r["iteration"] >= 3]
ms = statistics.median(steady)
tokens = 4 * 1024
params = torch["model"]["params"]
ours = {"median_ms": ms, "tokens_per_s": tokens / (ms / 1e3),
        "tflops_8PT": 8 * params * tokens / (ms / 1e3) / 1e12 if params else None,
        "iterations": [r["elapsed_ms"] for r in rows],
        "losses": [r["loss"] for r in rows], "skipped": sum(r["skipped"] for r in rows)}
res = {"device": gemm["device"], "gemm": gemm, "gpt50b": ours, "pytorch": torch}
json.dump(res, open(f"{out}/bench_gpu.json", "w"), indent=1)
print(f"\n| GPU-resident GPT-2 1.3B, fp16, ckpt, B=4 T=1024 on {gemm['device']} | ms/iter | tokens/s | TFLOP/s (8PT) |")
print("|---|---|---|---|")
print(f"| gpt50b (StarPU tasks) | {ms:.1f} | {ours['tokens_per_s']:.0f} | {ours['tflops_8PT'] or 0:.1f} |")
print(f"| PyTorch eager (HF GPT2LMHeadModel) | {torch['median_ms']:.1f} | {torch['tokens_per_s']:.0f} | {torch['tflops_per_gpu']:.1f} |")
print(f"| GEMM 8192^3 fp16: codelet {gemm['codelet_tflops']:.1f} TFLOP/s, direct cuBLAS {gemm['cublas_tflops']:.1f} TFLOP/s |")
PY
