#!/usr/bin/env python3
"""bench_pytorch.py: the PyTorch baseline for a GPU-resident GPT-2 training step, on one GPU.

Hugging Face GPT2LMHeadModel (default: C=2048, L=24, NH=16, V=50304, T=1024, about 1.3B
parameters), dropout 0, fp32 master weights under fp16 autocast with torch.amp.GradScaler (or bf16
autocast, no scaler), gradient checkpointing of every block (--no-checkpointing: none), SDPA
attention (the transformers default), fused AdamW, gradient clipping to norm 1. Batches are random
tokens from a fixed seed: timing does not depend on the data.

--compile runs the model under torch.compile(model) (TorchInductor, default mode): the first
iterations compile the forward and the backward, so their time is reported apart
(`warmup_iter_ms`, `compile_s`: the first iteration's time, whose compile dominates it) and the
median covers only iterations after --warmup; give at least 2 warm-ups so that none of the timed
ones compiles.

One iteration = zero grad, forward, cross-entropy from the logits, backward, unscale, clip,
optimizer step, timed between two torch.cuda.synchronize(). Reports the median over --iters after
--warmup untimed iterations.

FLOP count, as Megatron-LM counts a step with activation recomputation: 8 * P * tokens per
iteration (2 forward + 4 backward + 2 recomputed forward per parameter and token), P the number
of parameters (tied embedding counted once), tokens = micro-batch * seq; 6 * P * tokens without
checkpointing. Attention score FLOPs (which grow with T^2) are not counted, so the figure is a
lower bound of the work done.

Usage (GPU host, no network needed):
    python3 scripts/bench_pytorch.py --out bench_pytorch.json
"""
import argparse
import json
import os
import statistics
import sys
import time


def fail(msg):
    print(f"bench_pytorch.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=2048, help="channels C (default 2048)")
    ap.add_argument("--layers", type=int, default=24, help="layers L (default 24)")
    ap.add_argument("--heads", type=int, default=16, help="attention heads NH (default 16)")
    ap.add_argument("--vocab", type=int, default=50304, help="vocabulary V (default 50304)")
    ap.add_argument("--seq", type=int, default=1024, help="sequence length T (default 1024)")
    ap.add_argument("--micro-batch", type=int, default=4, help="micro-batch B (default 4)")
    ap.add_argument("--iters", type=int, default=6, help="timed iterations (default 6)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    ap.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16",
                    help="autocast type (default fp16, with a GradScaler)")
    ap.add_argument("--seed", type=int, default=1234, help="seed of weights and tokens")
    ap.add_argument("--compile", action="store_true", help="torch.compile(model)")
    ap.add_argument("--no-checkpointing", action="store_true",
                    help="keep every activation (no gradient checkpointing)")
    ap.add_argument("--warm-only", action="store_true",
                    help="with --compile: one forward and backward, no optimizer (its state is not "
                    "allocated), timed, then exit: fills TorchInductor's caches, so that a later "
                    "run of the same configuration compiles from them")
    ap.add_argument("--out", help="JSON result file")
    a = ap.parse_args()
    for name in ("hidden", "layers", "heads", "vocab", "seq", "micro_batch", "iters"):
        if getattr(a, name) < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1")
    if a.warmup < 0:
        fail("--warmup must be at least 0")
    if a.hidden % a.heads:
        fail(f"--hidden {a.hidden} is not a multiple of --heads {a.heads}")
    return a


def main():
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        import torch.nn.functional as F
        import transformers
    except ImportError as e:
        fail(f"{e}; this script needs torch and transformers")
    if not torch.cuda.is_available():
        fail("no CUDA device visible; run this on the GPU host")

    device = torch.device("cuda")
    amp_dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    torch.manual_seed(args.seed)
    config = transformers.GPT2Config(
        vocab_size=args.vocab, n_positions=max(1024, args.seq), n_embd=args.hidden,
        n_layer=args.layers, n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, activation_function="gelu_new", use_cache=False)
    try:
        model = transformers.GPT2LMHeadModel(config).to(device)
        if not args.no_checkpointing:
            # Non-reentrant checkpointing: the form PyTorch recommends, no requires_grad tricks.
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        params = list(model.parameters())  # tied lm_head/wte listed once
        run = torch.compile(model) if args.compile else model
        n_params = sum(p.numel() for p in params)
        opt = torch.optim.AdamW(params, lr=6e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                                fused=True)
        scaler = torch.amp.GradScaler("cuda", enabled=args.dtype == "fp16")

        B, T = args.micro_batch, args.seq
        gen = torch.Generator(device=device)
        gen.manual_seed(args.seed)
        n_steps = args.warmup + args.iters
        batches = torch.randint(0, args.vocab, (n_steps, B, T + 1), generator=gen, device=device)

        def step(i):
            x, y = batches[i, :, :T], batches[i, :, 1:]
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type="cuda", dtype=amp_dtype):
                logits = run(input_ids=x, use_cache=False).logits
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(opt)
            scaler.update()
            return loss

        warm = []
        if args.warm_only:
            x, y = batches[0, :, :T], batches[0, :, 1:]
            t0 = time.perf_counter()
            with torch.autocast(device_type="cuda", dtype=amp_dtype):
                logits = run(input_ids=x, use_cache=False).logits
            F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1)).backward()
            torch.cuda.synchronize()
            t = time.perf_counter() - t0
            print(f"{'first forward+backward':<26}{t:.1f} s (compile included)")
            if args.out:
                with open(args.out, "w") as f:
                    json.dump({"warm_only": True, "compiled": args.compile, "first_iter_s": t,
                               "device": torch.cuda.get_device_name()}, f)
            return
        for i in range(args.warmup):
            t0 = time.perf_counter()
            step(i)
            torch.cuda.synchronize()
            warm.append(time.perf_counter() - t0)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times, losses, skipped = [], [], 0
        for i in range(args.warmup, n_steps):
            # A step whose fp16 gradients overflowed skips the update (and is faster): count them.
            scale = scaler.get_scale()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = step(i)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            losses.append(loss.item())
            skipped += scaler.get_scale() < scale
    except torch.cuda.OutOfMemoryError:
        fail(f"out of GPU memory on {torch.cuda.get_device_name()}; lower --micro-batch, --seq "
             "or the model size")

    ms = statistics.median(times) * 1e3
    tokens = B * T
    flops_per_token = 6 if args.no_checkpointing else 8
    result = {
        "framework": "pytorch",
        "model": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                  "vocab": args.vocab, "seq": T, "params": n_params},
        "micro_batch": B,
        "dtype": args.dtype,
        "grad_scaler": args.dtype == "fp16",
        "skipped_steps": skipped,
        "gradient_checkpointing": not args.no_checkpointing,
        "compiled": args.compile,
        "warmup_iter_ms": [t * 1e3 for t in warm],
        "compile_s": warm[0] if args.compile and warm else None,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "optimizer": "torch.optim.AdamW(fused=True), clip_grad_norm_ 1.0",
        "warmup": args.warmup,
        "iters": args.iters,
        "iter_ms": [t * 1e3 for t in times],
        "median_ms": ms,
        "tokens_per_s": tokens / (ms / 1e3),
        "flops_per_iter": flops_per_token * n_params * tokens,
        "flops_formula": f"{flops_per_token} * params * tokens (fwd 2 + bwd 4"
                         f"{' + recompute 2' if flops_per_token == 8 else ''}; attention scores "
                         "not counted)",
        "tflops_per_gpu": flops_per_token * n_params * tokens / (ms / 1e3) / 1e12,
        "peak_mem_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_mem_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        "losses": losses,
        "device": torch.cuda.get_device_name(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "transformers_version": transformers.__version__,
    }

    print(f"{'device':<26}{result['device']}")
    print(f"{'torch / transformers':<26}{torch.__version__} / {transformers.__version__}")
    print(f"{'model':<26}C={args.hidden} L={args.layers} NH={args.heads} V={args.vocab} T={T} "
          f"({n_params / 1e9:.3f}B params)")
    print(f"{'micro-batch / dtype':<26}{B} / {args.dtype} autocast, "
          f"{result['attn_implementation']} attention, "
          f"{'no checkpointing' if args.no_checkpointing else 'checkpointing'}"
          f"{', torch.compile' if args.compile else ''}")
    if warm:
        print(f"{'warm-up iterations':<26}" + ", ".join(f"{t * 1e3:.0f} ms" for t in warm))
    print(f"{'iteration (median)':<26}{ms:.1f} ms over {args.iters} "
          f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})")
    print(f"{'tokens/s':<26}{result['tokens_per_s']:.0f}")
    print(f"{'TFLOP/s per GPU':<26}{result['tflops_per_gpu']:.1f}  "
          f"({flops_per_token} * params * tokens)")
    print(f"{'peak GPU memory':<26}{result['peak_mem_allocated_gib']:.2f} GiB allocated, "
          f"{result['peak_mem_reserved_gib']:.2f} GiB reserved")
    print(f"{'loss (last)':<26}{losses[-1]:.4f}")
    if skipped:
        print(f"note: {skipped} of {args.iters} timed steps skipped the update (fp16 overflow); "
              "more --warmup gives steadier timings")
    if args.out:
        try:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)
                f.write("\n")
        except OSError as e:
            fail(f"cannot write {args.out}: {e.strerror}")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
