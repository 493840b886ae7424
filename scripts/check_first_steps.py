#!/usr/bin/env python3
"""check_first_steps.py: gpt50b's first AdamW steps against PyTorch's, from the same initial
weights on the same data (issue 20: at width 8192, gpt50b's loss rose after its first step).

The A/B (scripts/gpu_check.sh firststep runs all of it on a GPU host):

    gpt50b SHAPE --train-iters 0 --save INIT --no-save-optim               # initial weights
    gpt50b SHAPE --load INIT --train-iters 1 --save AFTER1 --no-save-optim # masters after step 1
    gpt50b SHAPE --load INIT --train-iters 3 --metrics M.jsonl             # losses, norms, lrs
    python3 scripts/check_first_steps.py --init INIT --after1 AFTER1 --metrics M.jsonl \\
        --tokens data/brown.bin --micro-batch 4 --seq 1024 --dtype bf16 --out ab.json

What this script does with INIT, in PyTorch:
- the model: transformers' GPT2LMHeadModel when importable, else a plain-torch GPT-2 below with
  its exact math (Conv1D [in, out] weights, gelu_new, LayerNorm eps 1e-5, causal softmax
  attention, position embeddings, lm_head tied to wte); parameters in --dtype on the GPU (the CPU
  without one), activation checkpointing per block;
- the data: gpt50b's --data-order sequential on the training split (--split): step j, row r reads
  the window starting at (((j-1)*B + r)*T) mod (N - T - 1) of the split's N tokens (one rank,
  no gradient accumulation);
- the loss: fp32 cross-entropy of the logits over all B*T positions, mean, as gpt50b logs it;
- the step, as gpt50b's (codelets/kernels/cpu/adamw.c): fp32 master weights (INIT's values) kept apart
  from the --dtype parameters, the fp32 gradients scaled by clip/(norm + 1e-6) when the global
  norm of all gradients exceeds --clip (torch.nn.utils.clip_grad_norm_, the norm in fp32), then
  torch.optim.AdamW (foreach=False) itself on the master, one tensor at a time on the GPU (master,
  m and v copied up, stepped, copied back), weight decay on 2-D tensors only (gpt50b's mask,
  graph/gpt.c; wte and wpe included), the parameter the master rounded to --dtype. fp16 scales
  the loss by gpt50b's logged loss scale and skips a step whose gradients overflow, as gpt50b;
- the learning rate of step j: the "lr" gpt50b logged for iteration j in --metrics (its own
  schedule, warm-up included), or --lr X in every step.

It prints each step's loss and gradient norm beside gpt50b's from --metrics. With --after1 it
compares, tensor by tensor right after step 1 (streamed from the files, one tensor in memory at a
time), PyTorch's new fp32 master with gpt50b's: the relative L2 error of the update
||(new_pt - init) - (new_g - init)|| / ||new_pt - init||, the same weighted element by element
by |g| (PyTorch's clipped gradient), the share of elements whose update has the other sign, the
largest absolute difference, the share of elements whose values in gpt50b's precision differ,
and ||new_g - init|| / ||new_pt - init||; a table of the worst 15 and a verdict: "first AdamW
step agrees" (exit 0) when every tensor's error is under --rtol, else exit 1.

fp32 on both sides judges the update's relative error (under 1e-2). 16-bit on either side judges
the gradient-weighted one (under 0.1): AdamW's first update is about -lr * sign(g) whatever |g|,
and where g is near zero 16-bit rounding decides its sign, differently in two implementations,
which puts the plain error at 0.2 to 0.6 for a correct step; a wrong layout, sign, learning rate
or bias correction gives errors of order 1 or an update norm ratio away from 1. The reference's
own 16-bit noise counts too: on a tiny model, torch 1.13's CPU bf16 flips 14% of ln_f.weight's
update signs against its fp32 gradients, gpt50b's bf16 0.4%. --dtype fp32 --gpt50b-dtype bf16
takes the exact step as the reference instead (8 bytes per parameter of GPU memory, 55 GB at
6.9B; the losses then differ by bf16's rounding).

Memory: the --dtype parameters and gradients on the GPU (a 6.9B model in bf16: 28 GB), and only
when a step beyond 2 is asked for, the fp32 master, m and v of every tensor in RAM (12 bytes per
parameter, 83 GB for 6.9B; 8 in fp32, whose master is the GPU parameter). Step 2's loss needs
step 1's update only, whose master comes from INIT and whose m and v start at zero, so steps 1
and 2 keep nothing. --loss-only (no --after1: at 12 layers two checkpoints need not fit the disk)
stops at step 2 when the state does not fit MemAvailable; with --after1 that is an error.

Tested with torch 1.13 (CPU, the plain model) and meant for torch 2.x with transformers 5: it uses
no newer API where the plain model runs. PYTHONUNBUFFERED is not needed: every line is flushed.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np

from check_hf_load import read_split


def log(*a):
    print(*a, flush=True)


class SafeTensors:
    """A safetensors file read one fp32 tensor at a time: 8-byte little-endian header length N,
    N bytes of JSON header, then the raw little-endian data at the header's offsets."""

    def __init__(self, path):
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            self.header = json.loads(f.read(n))
        self.header.pop("__metadata__", None)
        self.path, self.base = path, 8 + n

    def get(self, name, shape=None):
        """Tensor `name` as a CPU fp32 torch tensor (a copy in RAM), transposed to `shape` when
        that is its transpose (a model that keeps Conv1D weights as nn.Linear's [out, in])."""
        import torch

        h = self.header.get(name)
        if h is None or h["dtype"] != "F32":
            sys.exit(f"{self.path}: no F32 tensor {name}: give checkpoints saved by gpt50b --save")
        begin, end = h["data_offsets"]
        a = np.fromfile(self.path, dtype="<f4", count=(end - begin) // 4, offset=self.base + begin)
        t = torch.from_numpy(a).view(h["shape"])
        if shape is None or tuple(shape) == tuple(t.shape):
            return t
        if t.dim() != 2 or tuple(shape) != tuple(t.shape)[::-1]:
            sys.exit(f"{self.path}: {name} has shape {list(t.shape)}, the model {list(shape)}")
        return t.t().contiguous()


def plain_gpt2(cfg, checkpointing):
    """GPT-2 in plain torch with the names and math of transformers' GPT2LMHeadModel (eager
    attention): for hosts without transformers."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.utils.checkpoint

    C, NH, eps = cfg["n_embd"], cfg["n_head"], cfg.get("layer_norm_epsilon", 1e-5)

    class Conv1D(nn.Module):  # transformers.pytorch_utils.Conv1D: weight [in, out]
        def __init__(self, nin, nout):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(nin, nout))
            self.bias = nn.Parameter(torch.zeros(nout))

        def forward(self, x):
            y = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
            return y.view(x.size()[:-1] + (self.weight.size(1),))

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = Conv1D(C, 3 * C), Conv1D(C, C)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = (t.view(B, T, NH, C // NH).transpose(1, 2)
                       for t in self.c_attn(x).split(C, dim=2))
            w = torch.matmul(q, k.transpose(-1, -2))
            w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype, device=w.device)
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype,
                                                    device=w.device))
            y = torch.matmul(F.softmax(w, dim=-1).type(v.dtype), v)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc, self.c_proj = Conv1D(C, 4 * C), Conv1D(4 * C, C)

        def forward(self, x):
            h = self.c_fc(x)  # gelu_new (transformers' NewGELUActivation)
            h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) *
                                            (h + 0.044715 * torch.pow(h, 3.0))))
            return self.c_proj(h)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(C, eps=eps), Attention()
            self.ln_2, self.mlp = nn.LayerNorm(C, eps=eps), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class Transformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg["vocab_size"], C)
            self.wpe = nn.Embedding(cfg["n_positions"], C)
            self.h = nn.ModuleList(Block() for _ in range(cfg["n_layer"]))
            self.ln_f = nn.LayerNorm(C, eps=eps)

    class GPT2(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = Transformer()

        def forward(self, idx):
            t = self.transformer
            pos = torch.arange(idx.size(1), device=idx.device)
            x = t.wte(idx) + t.wpe(pos)
            for block in t.h:
                x = (torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
                     if checkpointing and self.training else block(x))
            return F.linear(t.ln_f(x), t.wte.weight)  # lm_head, tied

    return GPT2()


def build_model(a, dt, dev):
    """(model, forward(idx) -> logits, description) holding INIT's weights in dt on dev."""
    import torch

    try:
        if a.plain:
            raise ImportError
        import transformers
    except ImportError:
        cfg = json.load(open(os.path.join(a.init, "config.json")))
        model = plain_gpt2(cfg, not a.no_checkpointing)
        init = SafeTensors(os.path.join(a.init, "model.safetensors"))
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(init.get(name, p.shape))
        model = model.to(device=dev, dtype=dt).train()
        return model, model, f"plain torch GPT-2 (torch {torch.__version__})"
    major = int(transformers.__version__.split(".")[0])
    kw = {"dtype": dt} if major >= 5 else {"torch_dtype": dt}
    model = transformers.GPT2LMHeadModel.from_pretrained(a.init, **kw).to(dev).train()
    model.config.use_cache = False
    if not a.no_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    attn = getattr(model.config, "_attn_implementation", "eager")
    return (model, lambda idx: model(input_ids=idx, use_cache=False).logits,
            f"transformers {transformers.__version__} GPT2LMHeadModel ({attn} attention, "
            f"torch {torch.__version__})")


def mem_available():
    """MemAvailable of /proc/meminfo in bytes, or None."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def compare_update(name, init, new_pt, new_g, grad, dt):
    """The measures of one tensor's step-1 update, PyTorch's (new_pt) against gpt50b's (new_g);
    all four fp32 on one device, grad PyTorch's clipped gradient. init, new_g and grad are
    overwritten: at wte's 412M elements of width 8192 each copy is 1.6 GB of GPU memory."""
    import torch

    n = init.numel()
    out = {"name": name, "numel": n,
           "max_abs_diff": (new_pt - new_g).abs().max().item(),
           "cast_diff_frac": torch.count_nonzero(new_pt.to(dt) != new_g.to(dt)).item() / n}
    du_g = new_g.sub_(init)
    du_pt = init.sub_(new_pt).neg_()
    flips = torch.count_nonzero(torch.sign(du_pt).ne_(torch.sign(du_g))).item()
    def norm(t):
        return torch.linalg.vector_norm(t, dtype=torch.float64).item()

    n_pt, n_g = norm(du_pt), norm(du_g)
    d = du_g.sub_(du_pt)  # the update difference (negated)
    n_d = norm(d)
    wg = grad.abs_()
    n_wd, n_wpt = norm(d.mul_(wg)), norm(du_pt.mul_(wg))
    out.update({
        "update_rel_err": n_d / n_pt if n_pt > 0 else (0.0 if n_d == 0 else math.inf),
        "weighted_rel_err": n_wd / n_wpt if n_wpt > 0 else (0.0 if n_wd == 0 else math.inf),
        "sign_flip_frac": flips / n,
        "update_norm_pt": n_pt,
        "update_norm_ratio": n_g / n_pt if n_pt > 0 else math.nan,
    })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", required=True, help="gpt50b checkpoint of iteration 0")
    ap.add_argument("--after1", help="gpt50b checkpoint after iteration 1, from --load INIT")
    ap.add_argument("--loss-only", action="store_true",
                    help="no --after1: losses and grad norms only")
    ap.add_argument("--metrics", help="gpt50b's --metrics JSONL of its run from --load INIT")
    ap.add_argument("--tokens", required=True, help="the llm.c token file gpt50b read")
    ap.add_argument("--split", default="949,50,1")
    ap.add_argument("--micro-batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr", type=float, help="lr of every step (default: gpt50b's from --metrics)")
    ap.add_argument("--clip", type=float, default=1.0, help="gpt50b's --clip-grad (0: off)")
    ap.add_argument("--weight-decay", type=float, default=0.1, help="gpt50b's --weight-decay")
    ap.add_argument("--adam-beta1", type=float, default=0.9)
    ap.add_argument("--adam-beta2", type=float, default=0.999)
    ap.add_argument("--adam-eps", type=float, default=1e-8)
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="fp32",
                    help="PyTorch's compute precision")
    ap.add_argument("--gpt50b-dtype", choices=["bf16", "fp16", "fp32"],
                    help="gpt50b's (default: --dtype); fp32 with gpt50b's bf16 or fp16 judges it "
                    "against the exact step")
    ap.add_argument("--rtol", type=float,
                    help="an agreeing step's largest update relative error (fp32, default 1e-2) "
                    "or gradient-weighted one (fp16, bf16, default 0.1)")
    ap.add_argument("--plain", action="store_true", help="the plain-torch model even with "
                    "transformers installed")
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument("--out", help="JSON file of everything printed")
    a = ap.parse_args()
    if not a.after1 and not a.loss_only:
        ap.error("give --after1 DIR, or --loss-only for the losses alone")
    if a.lr is None and not a.metrics:
        ap.error("give --metrics (gpt50b's lr of each step) or --lr")
    if a.steps < 1:
        ap.error("--steps must be at least 1")

    import torch
    import torch.nn.functional as F

    t_start = time.time()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":  # the reference: fp32 GEMMs in fp32, 16-bit GEMMs accumulating in fp32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    a.gpt50b_dtype = a.gpt50b_dtype or a.dtype
    dt, gdt = dtypes[a.dtype], dtypes[a.gpt50b_dtype]
    metrics = {}
    if a.metrics:
        for line in open(a.metrics):
            r = json.loads(line)
            metrics[r["iteration"]] = r  # a file appended to by several runs: the last one wins

    model, forward, what = build_model(a, dt, dev)
    params = list(model.named_parameters())  # the tied lm_head appears once, as wte
    nparams = sum(p.numel() for _, p in params)
    V = model.transformer.wte.weight.size(0)
    log(f"model: {what}, {nparams} parameters in {a.dtype} on "
        f"{torch.cuda.get_device_name() if dev.type == 'cuda' else 'the CPU'}, loaded in "
        f"{time.time() - t_start:.0f} s")

    steps = a.steps
    state_bytes = (8 if dt == torch.float32 else 12) * nparams if steps > 2 else 0
    avail = mem_available()
    if state_bytes and avail is not None and state_bytes > 0.9 * avail:
        msg = (f"steps beyond 2 keep the fp32 master, m and v of {nparams} parameters in RAM: "
               f"{state_bytes / 1e9:.1f} GB, and {avail / 1e9:.1f} GB is available")
        if not a.loss_only:
            sys.exit(f"check_first_steps.py: {msg}: give --steps 2")
        log(f"note: {msg}: stopping at step 2")
        steps, state_bytes = 2, 0
    keep_state = state_bytes > 0
    state = {}  # name -> [master or None (fp32: the parameter), m, v] on the CPU

    train = read_split(a.tokens, a.split, 0)
    B, T, N = a.micro_batch, a.seq, len(train)
    init = SafeTensors(os.path.join(a.init, "model.safetensors"))
    after1 = SafeTensors(os.path.join(a.after1, "model.safetensors")) if a.after1 else None
    out = {"init": a.init, "after1": a.after1, "metrics": a.metrics, "model": what,
           "dtype": a.dtype, "gpt50b_dtype": a.gpt50b_dtype, "micro_batch": B, "seq": T,
           "clip": a.clip, "weight_decay": a.weight_decay, "betas": [a.adam_beta1, a.adam_beta2],
           "eps": a.adam_eps, "steps": [], "tensors": [], "verdict": None, "agrees": None}

    def save_out():
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=1)

    adam_step = 0
    for j in range(1, steps + 1):
        t0 = time.time()
        rows = [train[(((j - 1) * B + r) * T) % (N - T - 1):][:T + 1] for r in range(B)]
        batch = torch.tensor(np.stack(rows), device=dev)
        g = metrics.get(j, {})
        scale = float(g.get("loss_scale", 1.0)) if dt == torch.float16 else 1.0
        for _, p in params:
            p.grad = None
        logits = forward(batch[:, :T])
        loss = F.cross_entropy(logits.float().reshape(-1, V), batch[:, 1:].reshape(-1))
        (loss * scale).backward()
        del logits
        with torch.no_grad():
            norms = [torch.linalg.vector_norm(p.grad, dtype=torch.float32) for _, p in params]
            norm = torch.linalg.vector_norm(torch.stack(norms)) / scale
        lr = a.lr if a.lr is not None else g.get("lr")
        if lr is None:
            sys.exit(f"{a.metrics}: no iteration {j}: run gpt50b for --steps iterations or give "
                     "--lr")
        if a.lr is not None and "lr" in g and abs(g["lr"] - a.lr) > 1e-6 * a.lr:
            log(f"warning: step {j}: --lr {a.lr:g}, but gpt50b's lr was {g['lr']:g}")
        row = {"step": j, "lr": lr, "loss_scale": scale, "loss": loss.item(),
               "grad_norm": norm.item(), "gpt50b_loss": g.get("loss"),
               "gpt50b_grad_norm": g.get("grad_norm"), "gpt50b_skipped": g.get("skipped")}
        if row["gpt50b_loss"] is not None:
            row["loss_diff"] = row["gpt50b_loss"] - row["loss"]
        out["steps"].append(row)
        gl = f"{row['gpt50b_loss']:.6f}" if g else "-"
        gn = f"{row['gpt50b_grad_norm']:.4f}" if g else "-"
        log(f"step {j}: lr {lr:.4e} | PyTorch loss {row['loss']:.6f} grad norm "
            f"{row['grad_norm']:.4f} | gpt50b loss {gl} grad norm {gn}"
            + (f" | loss diff {row['loss_diff']:+.2e}" if g else "")
            + f" | {time.time() - t0:.0f} s")
        save_out()
        if j == steps and not (j == 1 and after1 is not None):
            break
        if not math.isfinite(row["grad_norm"]):
            log(f"step {j}: the gradients overflow: the step is skipped (gpt50b skipped: "
                f"{g.get('skipped')})")
            continue
        adam_step += 1
        t0 = time.time()
        with torch.no_grad():
            # torch.nn.utils.clip_grad_norm_'s coefficient, clamped to 1, and the loss scale's
            # removal in one fp32 factor, as gpt50b's AdamW applies them to the fp32 gradient
            coef = (torch.clamp(a.clip / (norm + 1e-6), max=1.0) if a.clip > 0
                    else torch.ones((), device=dev))
            gscale = coef / scale
            for name, p in params:
                s = state.get(name, [None, None, None])
                if dt == torch.float32:
                    if adam_step == 1 and not torch.equal(p, init.get(name, p.shape).to(dev)):
                        sys.exit(f"the model's {name} is not {a.init}'s")
                    w = p
                    w.grad.mul_(gscale)
                else:
                    master = s[0] if s[0] is not None else init.get(name, p.shape)
                    w = master.to(dev)
                    if adam_step == 1 and not torch.equal(p, w.to(dt)):
                        sys.exit(f"the model's {name} is not {a.init}'s rounded to {a.dtype}")
                    w.grad = p.grad.float().mul_(gscale)
                    p.grad = None  # GPU memory: each 16-bit gradient goes once it is used
                opt = torch.optim.AdamW([w], lr=lr, betas=(a.adam_beta1, a.adam_beta2),
                                        eps=a.adam_eps, foreach=False,
                                        weight_decay=a.weight_decay if w.dim() == 2 else 0.0)
                if adam_step > 1:
                    opt.state[w] = {"step": torch.tensor(float(adam_step - 1)),
                                    "exp_avg": s[1].to(dev), "exp_avg_sq": s[2].to(dev)}
                grad = w.grad.clone() if after1 is not None and j == 1 else None
                opt.step()
                if dt != torch.float32:
                    p.copy_(w)
                if after1 is not None and j == 1:
                    out["tensors"].append(compare_update(
                        name, init.get(name, p.shape).to(dev), w,
                        after1.get(name, p.shape).to(dev), grad, gdt))
                if keep_state:
                    st = opt.state[w]
                    state[name] = [None if dt == torch.float32 else w.cpu(),
                                   st["exp_avg"].cpu(), st["exp_avg_sq"].cpu()]
                w.grad = None
                del opt, w
        log(f"step {j}: AdamW step {adam_step} of {len(params)} tensors in "
            f"{time.time() - t0:.0f} s")
        if out["tensors"] and j == 1:
            report(out, a)
        save_out()
    out["seconds"] = time.time() - t_start
    save_out()
    if out["agrees"] is not None:
        sys.exit(0 if out["agrees"] else 1)


def report(out, a):
    """The table of the worst 15 tensors of step 1 and the verdict, into out too. fp32 on both
    sides judges the update's relative error; 16-bit on either its gradient-weighted relative
    error, since rounding then decides the sign of near-zero gradients and so of their +-lr
    updates (see --rtol)."""
    exact = a.dtype == a.gpt50b_dtype == "fp32"
    key = "update_rel_err" if exact else "weighted_rel_err"
    rtol = a.rtol if a.rtol is not None else 1e-2 if exact else 0.1
    ts = sorted(out["tensors"], key=lambda t: -t[key])
    log(f"step 1, PyTorch's update against gpt50b's ({a.after1}), the worst 15 of {len(ts)} "
        f"tensors by {key}:")
    log(f"{'tensor':<36} {'elements':>11} {'upd rel err':>11} {'grad-wtd err':>12} "
        f"{'sign flips':>10} {'max |diff|':>10} {a.gpt50b_dtype + ' differ':>11} "
        f"{'|upd g|/|upd pt|':>16}")
    for t in ts[:15]:
        log(f"{t['name'][:36]:<36} {t['numel']:>11} {t['update_rel_err']:>11.3e} "
            f"{t['weighted_rel_err']:>12.3e} {t['sign_flip_frac']:>10.3e} "
            f"{t['max_abs_diff']:>10.3e} {t['cast_diff_frac']:>11.3e} "
            f"{t['update_norm_ratio']:>16.4f}")
    bad = [t for t in ts if not t[key] < rtol]
    worst = ts[0]
    out["agrees"] = not bad
    out["verdict"] = (
        f"first AdamW step agrees: all {len(ts)} tensors' {key} < {rtol:g} "
        f"(worst {worst[key]:.2e}, {worst['name']})" if not bad else
        f"first AdamW step DIFFERS: {len(bad)} of {len(ts)} tensors' {key} >= {rtol:g} "
        f"(worst {worst[key]:.2e}, {worst['name']}, gpt50b's update "
        f"{worst['update_norm_ratio']:.3f} x PyTorch's in norm)")
    log(out["verdict"])


if __name__ == "__main__":
    main()
