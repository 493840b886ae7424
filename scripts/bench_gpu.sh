#!/usr/bin/env bash
# bench_gpu.sh OUTDIR: the GPU benchmark of issues 2 and 16 (docs/results.md), on a GPU host.
#
# 1. bench_gemm: the matmul codelet against a direct cuBLAS call at 8192^3, fp16, in turns (7
#    rounds of 20 products each; the median round of each).
# 2. gpt50b GPU-resident (no offload, AdamW on the GPU), 10 iterations, median of iterations
#    3..10, on three configurations:
#      1.3b-fp16  hidden 2048, 24 layers, 16 heads, seq 1024, micro-batch 4, fp16, activation
#                 checkpointing (the foundation's benchmark)
#      1.3b-bf16  the same in bf16
#      1536-fp16  hidden 1536, 12 layers, 12 heads, seq 1024, micro-batch 8, fp16, no
#                 checkpointing
# 3. scripts/bench_pytorch.py, HF GPT2LMHeadModel on the same configurations, fused AdamW:
#    eager on 1.3b-fp16 (median of 8 after 2 warm-ups), and under torch.compile on all three
#    (median of 8 after 3 warm-ups; the first warm-up's time, which the compile dominates, is
#    reported apart as compile_s). Same call, same card.
# Prints a table and writes OUTDIR/bench_gpu.json. Needs build/ (or ship/build/) and
# data/brown.bin. CONFIGS (default all three) picks configurations, EAGER=0 skips the eager row.
set -euo pipefail
out=${1:?usage: bench_gpu.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/apps
[ -x "$bin/gpt50b" ] || bin=$top/ship/build/apps
mkdir -p "$out"
configs=${CONFIGS:-1.3b-fp16 1.3b-bf16 1536-fp16}

"$bin/bench_gemm" --size 8192 --iters 20 --rounds 7 --dtype fp16 --out "$out/gemm.json"

for cfg in $configs; do
	case $cfg in
	1.3b-fp16) shape=(2048 24 16 4 fp16 ckpt) ;;
	1.3b-bf16) shape=(2048 24 16 4 bf16 ckpt) ;;
	1536-fp16) shape=(1536 12 12 8 fp16 none) ;;
	*) echo "bench_gpu.sh: unknown configuration $cfg" >&2 && exit 2 ;;
	esac
	ours=(--num-layers "${shape[1]}" --hidden-size "${shape[0]}" --num-attention-heads "${shape[2]}"
		--seq-length 1024 --max-position-embeddings 1024 --micro-batch-size "${shape[3]}"
		--"${shape[4]}")
	torch=(--hidden "${shape[0]}" --layers "${shape[1]}" --heads "${shape[2]}" --seq 1024
		--micro-batch "${shape[3]}" --dtype "${shape[4]}")
	if [ "${shape[5]}" = ckpt ]; then
		ours+=(--checkpoint-activations)
	else
		torch+=(--no-checkpointing)
	fi
	"$bin/gpt50b" "${ours[@]}" --train-iters 10 --eval-iters 0 --log-interval 1 --lr 1e-4 \
		--min-lr 1e-5 --lr-warmup-iters 0 --data-path "$top/data/brown.bin" \
		--metrics "$out/ours-$cfg.jsonl" >"$out/ours-$cfg.log" 2>&1 ||
		{ echo "gpt50b $cfg failed: $(grep -m1 error "$out/ours-$cfg.log")" >&2 && exit 1; }
	if [ "$cfg" = 1.3b-fp16 ] && [ "${EAGER:-1}" = 1 ]; then
		python3 "$top/scripts/bench_pytorch.py" "${torch[@]}" --iters 8 --warmup 2 \
			--out "$out/eager-$cfg.json" >"$out/eager-$cfg.log" 2>&1
	fi
	python3 "$top/scripts/bench_pytorch.py" "${torch[@]}" --compile --iters 8 --warmup 3 \
		--out "$out/compile-$cfg.json" >"$out/compile-$cfg.log" 2>&1
done

python3 - "$out" $configs <<'PY'
import json, os, statistics, sys
out, configs = sys.argv[1], sys.argv[2:]
gemm = json.load(open(f"{out}/gemm.json"))
def load(path):
    return json.load(open(path)) if os.path.exists(path) else None
res = {"device": gemm["device"], "gemm": gemm, "configs": {}}
print(f"\n| {gemm['device']} | ms/iter | tokens/s | TFLOP/s | vs torch.compile (tokens/s) "
      "| torch.compile first iteration s |")
print("|---|---|---|---|---|---|")
for cfg in configs:
    rows = [json.loads(l) for l in open(f"{out}/ours-{cfg}.jsonl")]
    ms = statistics.median(r["elapsed_ms"] for r in rows if r["iteration"] >= 3)
    eager, comp = load(f"{out}/eager-{cfg}.json"), load(f"{out}/compile-{cfg}.json")
    tokens = comp["micro_batch"] * comp["model"]["seq"]
    per_token = 8 if comp["gradient_checkpointing"] else 6
    ours = {"median_ms": ms, "tokens_per_s": tokens / (ms / 1e3),
            "tflops": per_token * comp["model"]["params"] * tokens / (ms / 1e3) / 1e12,
            "iterations": [r["elapsed_ms"] for r in rows], "losses": [r["loss"] for r in rows],
            "skipped": sum(r["skipped"] for r in rows)}
    ours["vs_compile"] = ours["tokens_per_s"] / comp["tokens_per_s"]
    res["configs"][cfg] = {"gpt50b": ours, "pytorch_compile": comp, "pytorch_eager": eager}
    print(f"| {cfg} gpt50b | {ms:.1f} | {ours['tokens_per_s']:.0f} | {ours['tflops']:.1f} "
          f"| **{ours['vs_compile']:.2f}x** | |")
    print(f"| {cfg} torch.compile | {comp['median_ms']:.1f} | {comp['tokens_per_s']:.0f} "
          f"| {comp['tflops_per_gpu']:.1f} | 1.00x | {comp['compile_s']:.1f} |")
    if eager:
        print(f"| {cfg} PyTorch eager | {eager['median_ms']:.1f} | {eager['tokens_per_s']:.0f} "
              f"| {eager['tflops_per_gpu']:.1f} | "
              f"{eager['tokens_per_s'] / comp['tokens_per_s']:.2f}x | |")
print(f"\nGEMM 8192^3 fp16: codelet {gemm['codelet_tflops']:.1f} TFLOP/s, direct cuBLAS "
      f"{gemm['cublas_tflops']:.1f} TFLOP/s ({gemm['codelet_tflops'] / gemm['cublas_tflops']:.3f})")
json.dump(res, open(f"{out}/bench_gpu.json", "w"), indent=1)
PY
