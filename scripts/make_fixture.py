#!/usr/bin/env python3
"""make_fixture.py: the PyTorch reference the C trainer is tested against (tests/fixtures/gpt2-tiny).

Builds a tiny GPT-2 (V=1000, maxT=64, C=64, L=2, NH=4) with Hugging Face transformers, on the CPU
in fp32, single-threaded and deterministic, and records:

  OUT/tokens.bin          the first 65536 tokens of --tokens, ids remapped by frequency rank so
                          that the 999 most frequent become 0..998 (ties: smaller id first) and all
                          others 999; llm.c token file format (256 int32 header, uint16 tokens)
  OUT/model/              model.save_pretrained(): config.json + model.safetensors (initial weights)
  OUT/step1.safetensors   iteration 0: "input_ids", "targets" (int32 [B,T]), "logits" (fp32
                          [B,T,V]), "loss" (fp32 scalar) and "grad.<param>" for every parameter of
                          model.named_parameters() in the HF layout (Conv1D weights are [in, out];
                          lm_head.weight is tied to transformer.wte.weight and not listed)
  OUT/losses.json         10 AdamW steps from the saved weights: loss before each update and the
                          total gradient norm returned by clip_grad_norm_ (before clipping)

Data order "sequential", B=4, T=32: at iteration i, row r reads the window starting at
s = ((i*B + r)*T) mod (N - T - 1), N the number of tokens of tokens.bin; inputs tokens[s:s+T],
targets tokens[s+1:s+T+1]. The loss is the mean cross-entropy over the B*T positions, computed from
the logits (HF's labels= would shift the targets a second time).

Usage (needs torch and transformers; no network):
    python3 scripts/make_fixture.py --tokens data/brown.bin --out tests/fixtures/gpt2-tiny
"""
import argparse
import ctypes
import inspect
import json
import math
import os
import struct
import sys
from array import array

TOKENS_MAGIC = 20240520
TOKENS_VERSION = 1  # uint16 GPT-2 token ids
TOKENS_HEADER_INTS = 256

N_TOKENS = 65536
VOCAB = 1000
KEEP = VOCAB - 1  # the most frequent tokens keep an id of their own; the rest share id KEEP
B, T = 4, 32
STEPS = 10
SEED = 1234
# bos/eos None: GPT-2's 50256 lies outside V=1000, and the fixture has no special tokens.
MODEL = dict(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0.0,
             embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
             activation_function="gelu_new", bos_token_id=None, eos_token_id=None)
OPTIM = dict(lr=1e-3, betas=[0.9, 0.95], eps=1e-8, weight_decay=0.1, grad_clip=1.0)
MAX_OUTPUT_BYTES = 3 << 20


def fail(msg):
    print(f"make_fixture.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


# ---- Token files (stdlib only, so this part runs without torch) ----

def read_tokens(path, limit):
    """The first `limit` tokens (or all, if fewer) of an llm.c token file, as a list of ints."""
    try:
        with open(path, "rb") as f:
            header = f.read(TOKENS_HEADER_INTS * 4)
            if len(header) < TOKENS_HEADER_INTS * 4:
                fail(f"{path}: truncated header ({len(header)} bytes); not an llm.c token file")
            magic, version, count = struct.unpack("<3i", header[:12])
            if magic != TOKENS_MAGIC:
                fail(f"{path}: bad magic {magic} (want {TOKENS_MAGIC}); not an llm.c token file")
            if version != TOKENS_VERSION:
                fail(f"{path}: token file version {version}, this script reads version "
                     f"{TOKENS_VERSION} (uint16 GPT-2 tokens)")
            n = min(count, limit)
            data = f.read(2 * n)
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    if len(data) != 2 * n:
        fail(f"{path}: header says {count} tokens but the file holds only {len(data) // 2}")
    tokens = array("H")
    tokens.frombytes(data)
    if sys.byteorder == "big":
        tokens.byteswap()
    return tokens.tolist()


def remap_by_frequency(tokens, keep):
    """Ids by frequency rank: the `keep` most frequent tokens become 0..keep-1 (ties broken by the
    smaller original id), every other token becomes `keep`."""
    counts = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts, key=lambda t: (-counts[t], t))[:keep]
    new_id = {t: i for i, t in enumerate(ranked)}
    return [new_id.get(t, keep) for t in tokens]


def write_tokens(path, tokens):
    header = struct.pack(f"<{TOKENS_HEADER_INTS}i", TOKENS_MAGIC, TOKENS_VERSION, len(tokens),
                         *([0] * (TOKENS_HEADER_INTS - 3)))
    body = array("H", tokens)
    if sys.byteorder == "big":
        body.byteswap()
    with open(path, "wb") as f:
        f.write(header)
        f.write(body.tobytes())


def window_starts(i, n):
    """Start of row r's window at iteration i, for r in 0..B-1 (data order "sequential")."""
    return [((i * B + r) * T) % (n - T - 1) for r in range(B)]


# ---- safetensors output ----

def save_safetensors(tensors, path, metadata):
    """safetensors.torch.save_file when installed, else the same format written by hand."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        save_file(tensors, path, metadata=metadata)
        return
    import torch
    names = {torch.float32: "F32", torch.int32: "I32"}
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        blobs.append(ctypes.string_at(t.data_ptr(), nbytes))
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


# ---- Model ----

def setup_torch():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        import transformers
    except ImportError as e:
        fail(f"{e}; this script needs torch and transformers (run it on the GPU host)")
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.set_default_dtype(torch.float32)
    # One thread, so that CPU reductions sum in one fixed order whatever the host.
    torch.set_num_threads(1)
    return torch, transformers


def make_batch(torch, tokens, i):
    starts = window_starts(i, tokens.numel())
    x = torch.stack([tokens[s:s + T] for s in starts])
    y = torch.stack([tokens[s + 1:s + T + 1] for s in starts])
    return x, y


def forward_loss(model, x, y):
    import torch.nn.functional as F
    logits = model(input_ids=x, use_cache=False).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
    return logits, loss


def named_params(model):
    """(name, parameter) pairs of the model, without the tied lm_head.weight."""
    return [(n, p) for n, p in model.named_parameters() if n != "lm_head.weight"]


def check_tied(model, where):
    if model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr():
        fail(f"{where}: lm_head.weight is not tied to transformer.wte.weight; the C model assumes "
             "it is (check the transformers version)")


def check_eager(model, where):
    impl = getattr(model.config, "_attn_implementation", None)
    if impl != "eager":
        fail(f"{where}: attention implementation is {impl!r}, not 'eager'")


def build_model(torch, transformers):
    torch.manual_seed(SEED)
    config = transformers.GPT2Config(**MODEL, attn_implementation="eager")
    model = transformers.GPT2LMHeadModel(config).float()
    model.train()  # dropout is 0, so train and eval agree; train mode is what training runs
    check_eager(model, "new model")
    check_tied(model, "new model")
    return model


def save_model(model, path):
    kwargs = {}
    # transformers 4 needs safe_serialization=True; 5 always writes safetensors and dropped it.
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True
    model.save_pretrained(path, **kwargs)
    weights = os.path.join(path, "model.safetensors")
    if not os.path.isfile(weights):
        fail(f"save_pretrained wrote no {weights} (sharded or another format?)")
    return weights


def reload_model(torch, transformers, path, initial):
    """The saved model, checked bit for bit against the in-memory initial weights."""
    model = transformers.GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager").float()
    model.train()
    check_eager(model, path)
    check_tied(model, path)
    got = dict(named_params(model))
    if sorted(got) != sorted(initial):
        fail(f"{path}: reloaded parameters differ in names from the initial model")
    for n, p in got.items():
        if not torch.equal(p.detach(), initial[n]):
            fail(f"{path}: reloaded {n} differs from the initial weights")
    return model


def step1(torch, model, tokens, path):
    """Records iteration 0's batch, logits, loss and gradients. Returns the loss."""
    x, y = make_batch(torch, tokens, 0)
    model.zero_grad(set_to_none=True)
    logits, loss = forward_loss(model, x, y)
    loss.backward()
    out = {
        "input_ids": x.to(torch.int32).contiguous(),
        "targets": y.to(torch.int32).contiguous(),
        "logits": logits.detach().float().contiguous(),
        "loss": loss.detach().float().reshape(()).contiguous(),
    }
    for n, p in named_params(model):
        if p.grad is None:
            fail(f"parameter {n} received no gradient")
        out["grad." + n] = p.grad.detach().float().clone().contiguous()
    save_safetensors(out, path, {"format": "pt", "what": "gpt2-tiny iteration 0 (make_fixture.py)"})
    model.zero_grad(set_to_none=True)
    return loss.item()


def train(torch, model, tokens):
    params = [p for _, p in named_params(model)]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": OPTIM["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=OPTIM["lr"], betas=tuple(OPTIM["betas"]), eps=OPTIM["eps"], foreach=False)
    losses, norms = [], []
    for i in range(STEPS):
        x, y = make_batch(torch, tokens, i)
        opt.zero_grad(set_to_none=True)
        _, loss = forward_loss(model, x, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, OPTIM["grad_clip"], foreach=False)
        opt.step()
        losses.append(loss.item())
        norms.append(norm.item())
    return losses, norms


def fixture_config(torch, transformers, model, n_tokens, distinct):
    hf_config = json.loads(model.config.to_json_string(use_diff=False))
    hf_config.pop("_name_or_path", None)  # the output path of this run, not a setting
    return {
        "model": dict(MODEL, attn_implementation="eager", tied_lm_head=True),
        "hf_config": hf_config,
        "seed": SEED,
        "dtype": "fp32",
        "device": "cpu",
        "B": B,
        "T": T,
        "data_order": "sequential",
        "window_start": "((i*B + r)*T) mod (N - T - 1); inputs tokens[s:s+T], targets "
                        "tokens[s+1:s+T+1]",
        "n_tokens": n_tokens,
        "token_remap": f"the {KEEP} most frequent tokens of the first {N_TOKENS} -> 0..{KEEP - 1} "
                       f"by frequency rank (ties: smaller id), all others -> {KEEP}",
        "distinct_source_tokens": distinct,
        "loss": "mean cross-entropy over all B*T positions, from the logits",
        "optimizer": "torch.optim.AdamW, foreach=False, constant lr",
        "lr": OPTIM["lr"],
        "betas": OPTIM["betas"],
        "eps": OPTIM["eps"],
        "weight_decay": OPTIM["weight_decay"],
        "weight_decay_applies_to": "parameters with ndim >= 2 (wte, wpe, every weight matrix); "
                                   "0 for biases and LayerNorm",
        "grad_clip": OPTIM["grad_clip"],
        "grad_norm": "total L2 norm returned by clip_grad_norm_, before clipping",
        "steps": STEPS,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", required=True, help="llm.c token file (version 1, uint16)")
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    args = ap.parse_args()

    source = read_tokens(args.tokens, N_TOKENS)
    if len(source) < B * T + T + 2:
        fail(f"{args.tokens}: only {len(source)} tokens; the fixture needs at least {B * T + T + 2}")
    if len(source) < N_TOKENS:
        print(f"note: {args.tokens} holds {len(source)} tokens, fewer than {N_TOKENS}; using all")
    remapped = remap_by_frequency(source, KEEP)
    try:
        os.makedirs(os.path.join(args.out, "model"), exist_ok=True)
    except OSError as e:
        fail(f"cannot create {args.out}: {e.strerror}")
    tokens_path = os.path.join(args.out, "tokens.bin")
    write_tokens(tokens_path, remapped)
    reread = read_tokens(tokens_path, len(remapped))
    if reread != remapped:
        fail(f"{tokens_path}: reads back different tokens")

    torch, transformers = setup_torch()
    tokens = torch.tensor(remapped, dtype=torch.long)

    model = build_model(torch, transformers)
    initial = {n: p.detach().clone() for n, p in named_params(model)}
    model_dir = os.path.join(args.out, "model")
    weights_path = save_model(model, model_dir)
    step1_path = os.path.join(args.out, "step1.safetensors")
    loss0 = step1(torch, model, tokens, step1_path)

    model = reload_model(torch, transformers, model_dir, initial)
    losses, norms = train(torch, model, tokens)
    # Same weights, same batch, one deterministic thread: iteration 0 must reproduce step 1.
    if abs(losses[0] - loss0) > 1e-6 * max(1.0, abs(loss0)):
        fail(f"training iteration 0 loss {losses[0]!r} differs from step 1 loss {loss0!r}")

    losses_path = os.path.join(args.out, "losses.json")
    distinct = len(set(source))
    result = {"config": fixture_config(torch, transformers, model, len(remapped), distinct),
              "losses": losses, "grad_norms": norms}
    with open(losses_path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")

    paths = [tokens_path, os.path.join(model_dir, "config.json"), weights_path, step1_path,
             losses_path]
    total = sum(os.path.getsize(p) for p in paths)
    n_params = sum(p.numel() for _, p in named_params(model))
    other = sum(1 for t in remapped if t == KEEP)
    print(f"tokens: {len(remapped)} ({distinct} distinct in the source; "
          f"{100.0 * other / len(remapped):.1f}% mapped to {KEEP})")
    print(f"model: {n_params} parameters, torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    print(f"step 1 loss {loss0:.6f} (ln V = {math.log(VOCAB):.6f})")
    for i, (l, g) in enumerate(zip(losses, norms)):
        print(f"step {i + 1:2d}  loss {l:.6f}  grad norm {g:.6f}")
    for p in paths:
        print(f"wrote {p} ({os.path.getsize(p)} bytes)")
    print(f"total {total} bytes")
    if total > MAX_OUTPUT_BYTES:
        fail(f"the fixture is {total} bytes, over the {MAX_OUTPUT_BYTES}-byte budget")


if __name__ == "__main__":
    main()
