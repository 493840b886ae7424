"""cli_check.py: the Python half of test_cli.sh (standard library only).

Reads gpt50b's --metrics files and checkpoint directories, and damages checkpoints on purpose. Each
subcommand prints what it found; one that checks something exits 1 with a line naming the worst
case. Values are compared as the strings gpt50b wrote (json's parse_float=str): "equal" means
equal to the 7 significant digits of its %.7g, finer than any real divergence shows.

    metrics FILE N FIRST       N lines, every key, iterations FIRST.., finite losses, nothing skipped
    fields FILE                iteration loss lr loss_scale grad_norm skipped, one line each
    precision FP32 FP16 BF16 ATOL16 ATOL_BF16 RTOL16 RTOL_BF16
                               losses fall; fp16/bf16 losses and grad norms follow fp32
    config DIR                 DIR/config.json is a GPT-2 config with n_embd etc.
    close A B RTOL             the same iterations, losses and grad norms within RTOL (relative)
    drop FILE NAME             rewrites a .safetensors file without tensor NAME
    transpose FILE NAME        rewrites it with NAME's 2-D shape reversed (same bytes)
    halve FILE NAME            rewrites it with 1-D tensor NAME cut to its first half
    rewrite FILE               rewrites it unchanged: the control that the rewriting is sound
"""
import json
import math
import struct
import sys

KEYS = ["iteration", "loss", "lr", "loss_scale", "grad_norm", "skipped", "elapsed_ms",
        "tokens_per_s", "tflops"]


def die(msg):
    print(msg)
    sys.exit(1)


def read_metrics(path, raw=False):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line, parse_float=str) if raw else json.loads(line))
            except ValueError as e:
                die(f"{path}:{n}: not JSON ({e}): {line.strip()!r}")
    return rows


def cmd_metrics(path, n, first):
    rows = read_metrics(path)
    if len(rows) != int(n):
        die(f"{path}: {len(rows)} lines, expected {n}")
    for k, r in enumerate(rows):
        missing = [key for key in KEYS if key not in r]
        if missing:
            die(f"{path}:{k + 1}: keys {missing} missing")
        if r["iteration"] != int(first) + k:
            die(f"{path}:{k + 1}: iteration {r['iteration']}, expected {int(first) + k}")
        if not isinstance(r["loss"], float) or not math.isfinite(r["loss"]):
            die(f"{path}:{k + 1}: loss {r['loss']!r} is not finite")
        if r["skipped"] is not False:
            die(f"{path}:{k + 1}: skipped is {r['skipped']!r}, expected false")


def cmd_fields(path):
    for r in read_metrics(path, raw=True):
        print(r["iteration"], r["loss"], r["lr"], r["loss_scale"], r["grad_norm"],
              json.dumps(r["skipped"]))


def cmd_precision(p32, p16, pbf, atol16, atolbf, rtol16, rtolbf):
    runs = {"fp32": read_metrics(p32), "fp16": read_metrics(p16), "bf16": read_metrics(pbf)}
    for name, rows in runs.items():
        losses = [r["loss"] for r in rows]
        if len(losses) < 10 or len(losses) != len(runs["fp32"]):
            die(f"{name}: {len(losses)} iterations, expected {len(runs['fp32'])} (at least 10)")
        last = sum(losses[-5:]) / 5
        print(f"{name}: loss {losses[0]:.5f} -> mean of the last 5 {last:.5f}")
        if not last < losses[0]:
            die(f"{name}: the loss does not fall: first {losses[0]}, mean of the last 5 {last}")
        if any(r["skipped"] for r in rows):
            die(f"{name}: skipped iterations at {[r['iteration'] for r in rows if r['skipped']]}")
    for name, atol, rtol in (("fp16", float(atol16), float(rtol16)),
                             ("bf16", float(atolbf), float(rtolbf))):
        ref, got = runs["fp32"], runs[name]
        dl = max(range(len(ref)), key=lambda i: abs(got[i]["loss"] - ref[i]["loss"]))
        dg = max(range(len(ref)), key=lambda i: abs(got[i]["grad_norm"] - ref[i]["grad_norm"]) /
                 ref[i]["grad_norm"])
        loss_diff = abs(got[dl]["loss"] - ref[dl]["loss"])
        gn_rel = abs(got[dg]["grad_norm"] - ref[dg]["grad_norm"]) / ref[dg]["grad_norm"]
        print(f"{name}: max |loss - fp32| {loss_diff:.3g} at iteration {dl + 1} (atol {atol}), "
              f"max grad norm rel. diff {gn_rel:.3g} at iteration {dg + 1} (rtol {rtol})")
        if loss_diff > atol:
            die(f"{name}: iteration {dl + 1}: loss {got[dl]['loss']}, fp32 {ref[dl]['loss']}, "
                f"|diff| {loss_diff:.3g} > {atol}")
        if gn_rel > rtol:
            die(f"{name}: iteration {dg + 1}: grad norm {got[dg]['grad_norm']}, fp32 "
                f"{ref[dg]['grad_norm']}, rel. diff {gn_rel:.3g} > {rtol}")


def cmd_close(pa, pb, rtol):
    a, b, rtol = read_metrics(pa), read_metrics(pb), float(rtol)
    if [r["iteration"] for r in a] != [r["iteration"] for r in b]:
        die(f"different iterations: {[r['iteration'] for r in a]} vs {[r['iteration'] for r in b]}")
    worst = (0.0, None)
    for ra, rb in zip(a, b):
        for key in ("loss", "grad_norm"):
            x, y = ra[key], rb[key]
            rel = abs(x - y) / max(abs(x), abs(y), 1e-30)
            if rel > worst[0] or not math.isfinite(rel):
                worst = (rel, f"iteration {ra['iteration']} {key}: {x!r} vs {y!r}")
    if not worst[0] <= rtol:
        die(f"relative difference {worst[0]:.3g} > {rtol:g} at {worst[1]}")
    print(f"close: largest relative difference {worst[0]:.3g} <= {rtol:g}")


def cmd_config(d):
    with open(f"{d}/config.json") as f:
        c = json.load(f)
    want = {"model_type": "gpt2", "vocab_size": 50257}
    for k, v in want.items():
        if c.get(k) != v:
            die(f"{d}/config.json: {k} is {c.get(k)!r}, expected {v!r}")
    for k in ("n_embd", "n_layer", "n_head", "n_positions"):
        if not isinstance(c.get(k), int):
            die(f"{d}/config.json: {k} is {c.get(k)!r}, expected an integer")
    print(f"n_embd {c['n_embd']}, n_layer {c['n_layer']}, n_head {c['n_head']}, "
          f"n_positions {c['n_positions']}")


def rewrite(path, drop=None, transpose=None, halve=None):
    """Rewrites a .safetensors file (8-byte little-endian header length, JSON header, data),
    dropping, reshaping or halving one tensor and packing the data offsets again."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out, chunks, offset = {}, [], 0
    if "__metadata__" in header:
        out["__metadata__"] = header.pop("__metadata__")
    for name in (drop, transpose, halve):
        if name is not None and name not in header:
            die(f"{path}: no tensor {name}")
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if name == drop:
            continue
        begin, end = t["data_offsets"]
        shape = t["shape"][::-1] if name == transpose else t["shape"]
        if name == halve:
            shape = [shape[0] // 2]
            end = begin + (end - begin) // 2
        out[name] = {"dtype": t["dtype"], "shape": shape,
                     "data_offsets": [offset, offset + end - begin]}
        chunks.append(data[begin:end])
        offset += end - begin
    text = json.dumps(out).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "metrics":
        cmd_metrics(*args)
    elif cmd == "fields":
        cmd_fields(*args)
    elif cmd == "precision":
        cmd_precision(*args)
    elif cmd == "close":
        cmd_close(*args)
    elif cmd == "config":
        cmd_config(*args)
    elif cmd == "drop":
        rewrite(args[0], drop=args[1])
    elif cmd == "transpose":
        rewrite(args[0], transpose=args[1])
    elif cmd == "halve":
        rewrite(args[0], halve=args[1])
    elif cmd == "rewrite":
        rewrite(args[0])
    else:
        die(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
