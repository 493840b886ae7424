#!/usr/bin/env python3
"""check_hf_load.py: loads a gpt50b --save directory with transformers and recomputes its
validation loss, to show that the checkpoint is a genuine Hugging Face GPT-2 model.

gpt50b prints "validation loss at the end of training" over --eval-iters batches of the
validation split (split weights 949,50,1 by default), in the sequential order: batch j, row r
reads the window starting at ((j*B + r)*T) mod (N - T - 1) of the split's N tokens. This script
does the same with GPT2LMHeadModel.from_pretrained(DIR) in fp32 and prints the loss, so the two
can be compared.

    python3 scripts/check_hf_load.py --ckpt DIR --tokens data/brown.bin --micro-batch 4 \
        --seq 128 --eval-iters 5 [--expect LOSS --atol 1e-3]
"""
import argparse
import struct
import sys

import numpy as np


def read_split(path, split, which):
    """Tokens of split `which` (0 training, 1 validation) of an llm.c token file, cut by the
    split weights "A,B,C" as gpt50b cuts them."""
    with open(path, "rb") as f:
        header = struct.unpack("<256i", f.read(1024))
        if header[0] != 20240520 or header[1] != 1:
            sys.exit(f"{path}: not an llm.c token file")
        tokens = np.frombuffer(f.read(2 * header[2]), dtype=np.uint16).astype(np.int64)
    w = [float(x) for x in split.split(",")]
    cuts = [0, int(len(tokens) * (w[0] / sum(w))), int(len(tokens) * ((w[0] + w[1]) / sum(w)))]
    return tokens[cuts[which]:cuts[which + 1]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--micro-batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--eval-iters", type=int, required=True)
    ap.add_argument("--split", default="949,50,1")
    ap.add_argument("--expect", type=float)
    ap.add_argument("--atol", type=float, default=1e-3)
    a = ap.parse_args()

    import torch
    import torch.nn.functional as F
    import transformers

    val = read_split(a.tokens, a.split, 1)
    B, T, N = a.micro_batch, a.seq, len(val)

    model = transformers.GPT2LMHeadModel.from_pretrained(a.ckpt).eval()
    losses = []
    with torch.no_grad():
        for j in range(a.eval_iters):
            rows = [val[((j * B + r) * T) % (N - T - 1):][: T + 1] for r in range(B)]
            batch = torch.tensor(np.stack(rows))
            logits = model(batch[:, :T]).logits
            losses.append(F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                          batch[:, 1:].reshape(-1)).item())
    loss = sum(losses) / len(losses)
    print(f"transformers {transformers.__version__}: {a.ckpt} validation loss {loss:.6f}")
    if a.expect is not None:
        ok = abs(loss - a.expect) <= a.atol
        print(f"gpt50b printed {a.expect:.6f}: {'match' if ok else 'MISMATCH'} (atol {a.atol})")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
