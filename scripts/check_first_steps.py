#!/usr/bin/env python3
"""check_first_steps.py: trains a gpt50b checkpoint for a few steps with PyTorch and prints the
losses, to compare with gpt50b's own first iterations from the same weights and data.

Save the initial weights with `gpt50b SHAPE --train-iters 0 --save DIR` (or any --save), then run
gpt50b SHAPE --train-iters K --load DIR ... and this script with the same micro-batch, sequence,
learning rate and clipping: both read the training split of the llm.c token file in the
sequential order (batch j, row r starts at ((j*B + r)*T) mod (N - T - 1)), use AdamW with
betas (0.9, 0.999), eps 1e-8, no weight decay, clipping to --clip, a constant --lr (gpt50b with
--lr-warmup-iters 0 --min-lr equal to --lr), fp32. Losses of the two should agree to about 1e-4.

    python3 scripts/check_first_steps.py --ckpt DIR --tokens data/brown.bin --micro-batch 1 \
        --seq 256 --steps 3 --lr 3e-5
"""
import argparse

import numpy as np

from check_hf_load import read_split


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--micro-batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--split", default="949,50,1")
    a = ap.parse_args()

    import torch
    import torch.nn.functional as F
    import transformers

    train = read_split(a.tokens, a.split, 0)
    B, T, N = a.micro_batch, a.seq, len(train)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    model = transformers.GPT2LMHeadModel.from_pretrained(a.ckpt).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    for j in range(a.steps):
        rows = [train[((j * B + r) * T) % (N - T - 1):][: T + 1] for r in range(B)]
        batch = torch.tensor(np.stack(rows), device=dev)
        logits = model(batch[:, :T]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        print(f"step {j + 1}: loss {loss.item():.6f} grad norm {norm.item():.3f}", flush=True)


if __name__ == "__main__":
    main()
