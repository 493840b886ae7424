#!/usr/bin/env python3
"""bench_fsdp2.py: the PyTorch FSDP2 CPU-offload baseline for the offload engine (issue 3).

Hugging Face GPT2LMHeadModel with hidden 8192, 4 layers, 32 heads, vocabulary 50304, sequence
1024 (3.642B parameters), micro-batch 4, on ONE GPU: every block and the root wrapped by FSDP2's
fully_shard with CPUOffloadPolicy(pin_memory=True) (parameters, gradients and the AdamW state in
CPU memory, the optimizer step on the CPU) and MixedPrecisionPolicy (bf16 compute, fp32 master),
activation checkpointing, dropout 0, random token batches from a fixed seed. The GPU can be capped
like the SC21 V100s (--gpu-mem-gib 16, torch.cuda.set_per_process_memory_fraction).

One iteration = zero grad, forward, cross-entropy from the logits, backward, clip to norm 1,
AdamW step; timed between torch.cuda.synchronize() calls. Reports the median over --iters after
--warmup untimed iterations, tokens/s, TFLOP/s (8 x params x tokens), peak GPU memory, the card.
Reference: on an H100 on 2026-11-25 this configuration took 6.25 s per iteration.

    python3 scripts/bench_fsdp2.py --gpu-mem-gib 16 --out fsdp2.json
"""
import argparse
import json
import os
import statistics
import sys
import time


def fail(msg):
    print(f"bench_fsdp2.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--gpu-mem-gib", type=float, default=0, help="cap GPU memory (0: none)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.hidden % a.heads:
        fail(f"--hidden {a.hidden} is not a multiple of --heads {a.heads}")
    if min(a.hidden, a.layers, a.heads, a.vocab, a.seq, a.micro_batch, a.iters) < 1:
        fail("sizes and --iters must be at least 1")
    return a


def main():
    a = parse_args()
    try:
        import torch
        import torch.distributed as dist
        import transformers
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard
    except ImportError as e:
        fail(f"{e}: this needs torch >= 2.6 (FSDP2) and transformers")
    if not torch.cuda.is_available():
        fail("no GPU: FSDP2's CPU offload is measured against a GPU run")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    dist.init_process_group("nccl", rank=0, world_size=1)
    torch.cuda.set_device(0)
    if a.gpu_mem_gib > 0:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, a.gpu_mem_gib * 2**30 / total))
    torch.manual_seed(a.seed)
    config = transformers.GPT2Config(vocab_size=a.vocab, n_positions=a.seq, n_embd=a.hidden,
                                     n_layer=a.layers, n_head=a.heads, resid_pdrop=0.0,
                                     embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
    model = transformers.GPT2LMHeadModel(config)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    n_params = sum(p.numel() for p in model.parameters())
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    offload = CPUOffloadPolicy(pin_memory=True)
    for block in model.transformer.h:
        fully_shard(block, mp_policy=mp, offload_policy=offload)
    fully_shard(model, mp_policy=mp, offload_policy=offload)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.01)
    B, T = a.micro_batch, a.seq
    gen = torch.Generator().manual_seed(a.seed)
    times, losses = [], []
    for it in range(a.warmup + a.iters):
        tokens = torch.randint(0, a.vocab, (B, T + 1), generator=gen).cuda()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(tokens[:, :T]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, a.vocab),
                                                 tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if it >= a.warmup:
            times.append(dt)
        print(f"iteration {it + 1}: {dt * 1e3:.1f} ms, loss {losses[-1]:.4f}", flush=True)
    s = statistics.median(times)
    tokens_it = B * T
    result = {
        "framework": "pytorch-fsdp2-cpu-offload",
        "device": torch.cuda.get_device_name(),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "model": {"hidden": a.hidden, "layers": a.layers, "heads": a.heads, "vocab": a.vocab,
                  "seq": T, "params": n_params},
        "micro_batch": B,
        "gpu_mem_cap_gib": a.gpu_mem_gib,
        "iter_s": times,
        "median_s": s,
        "tokens_per_s": tokens_it / s,
        "tflops_per_gpu": 8 * n_params * tokens_it / s / 1e12,
        "peak_mem_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "losses": losses,
    }
    print(f"| FSDP2 CPU offload, {n_params / 1e9:.3f}B params, {result['device']} | s/iter | "
          f"tokens/s | TFLOP/s | peak GiB |")
    print("|---|---|---|---|---|")
    print(f"| median of {a.iters} after {a.warmup} warm-up | {s:.2f} | "
          f"{result['tokens_per_s']:.0f} | {result['tflops_per_gpu']:.1f} | "
          f"{result['peak_mem_allocated_gib']:.1f} |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
