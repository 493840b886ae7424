#!/usr/bin/env bash
# bench_offload.sh OUTDIR MODE...: the offload engine's benchmark (issue 3), on a GPU host.
#
# The SC21 layer shape on one GPU: hidden 8192, 32 heads, seq 1024, micro-batch 4, fp16,
# activation checkpointing, 4 layers (3,642,146,816 parameters), the GPU capped at 16 GiB
# (STARPU_LIMIT_CUDA_MEM=16384, unless set) like the seed's V100s. MODEs:
#   cpu     fp16 parameters and gradients in pinned CPU memory, optimizer state in RAM, CPU AdamW
#           (--offload-param cpu --offload-optimizer cpu); ITERS iterations (default 6)
#   nvme    the same with the optimizer state streamed from NVMe, nothing resident
#           (--nvme-resident-fraction 0) in NVME_DIR (default /tmp/gpt50b-nvme); NVME_ITERS (3)
#   gpu     everything on the GPU, no cap (the same-math reference: its losses must equal cpu's
#           and nvme's; needs about 60 GB of GPU memory)
#   fsdp2   scripts/bench_fsdp2.py: PyTorch FSDP2 CPUOffloadPolicy, same shape, bf16, 16 GiB cap
#   L=N     the `cpu` mode with N layers (the largest model search)
#   trace   the cpu mode for 3 iterations, the third traced by FxT into OUTDIR/fxt (a separate
#           run: the trace window waits for all tasks at both ends, which would skew the timing)
# Extra gpt50b flags come from GPT50B_FLAGS. StarPU's bus statistics (STARPU_BUS_STATS=1) end each gpt50b log.
# Each mode leaves OUTDIR/MODE.log (and .jsonl); a table and OUTDIR/bench_offload.json close.
set -euo pipefail
out=${1:?usage: bench_offload.sh OUTDIR MODE...}
shift
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/apps
[ -x "$bin/gpt50b" ] || bin=$top/ship/build/apps
mkdir -p "$out"
export STARPU_LIMIT_CUDA_MEM=${STARPU_LIMIT_CUDA_MEM:-16384} STARPU_BUS_STATS=${STARPU_BUS_STATS:-1}
shape=(--hidden-size 8192 --num-attention-heads 32 --seq-length 1024 --max-position-embeddings 1024
	--micro-batch-size 4 --fp16 --checkpoint-activations --eval-iters 0 --log-interval 1
	--lr 3e-5 --min-lr 3e-6 --lr-warmup-iters 1 --data-path "$top/data/brown.bin")
# shellcheck disable=SC2206
extra=(${GPT50B_FLAGS:-})

timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -v) # the peak RSS at the end of each log
run() { # NAME LAYERS ITERS FLAGS...
	local name=$1 layers=$2 iters=$3
	shift 3
	echo "== $name: $layers layers, $iters iterations, $*"
	"${timer[@]}" "$bin/gpt50b" "${shape[@]}" --num-layers "$layers" --train-iters "$iters" \
		--metrics "$out/$name.jsonl" "$@" "${extra[@]}" >"$out/$name.log" 2>&1 ||
		echo "$name: exit $? (see $name.log)"
	grep -E "^ iteration|error|CUDA|fits|pinned host pool|optimizer state:" "$out/$name.log" | tail -n 12
}

for mode in "$@"; do
	case $mode in
	cpu)
		run cpu 4 "${ITERS:-6}" --offload-param cpu --offload-optimizer cpu
		;;
	trace)
		mkdir -p "$out/fxt"
		STARPU_FXT_PREFIX=$out/fxt/ run trace 4 3 --offload-param cpu --offload-optimizer cpu \
			--trace 3:3
		;;
	nvme)
		dir=${NVME_DIR:-/tmp/gpt50b-nvme}
		mkdir -p "$dir"
		run nvme 4 "${NVME_ITERS:-3}" --offload-param cpu --offload-optimizer nvme --nvme-path "$dir" \
			--nvme-resident-fraction 0
		;;
	gpu)
		(
			unset STARPU_LIMIT_CUDA_MEM
			run gpu 4 "${ITERS:-6}"
		)
		;;
	fsdp2)
		python3 "$top/scripts/bench_fsdp2.py" --gpu-mem-gib 16 --iters 3 --warmup 1 \
			--out "$out/fsdp2.json" >"$out/fsdp2.log" 2>&1 || echo "fsdp2: exit $?"
		tail -n 4 "$out/fsdp2.log"
		;;
	L=*)
		run "layers${mode#L=}" "${mode#L=}" "${ITERS:-4}" --offload-param cpu --offload-optimizer cpu
		;;
	*) echo "bench_offload.sh: unknown mode $mode: use cpu, trace, nvme, gpu, fsdp2 or L=N" >&2 && exit 2 ;;
	esac
done

python3 - "$out" <<'PY'
import glob, json, os, re, sys
out = sys.argv[1]
res, rows = {}, []
for path in sorted(glob.glob(f"{out}/*.jsonl")):
    name = os.path.basename(path)[:-6]
    its = [json.loads(l) for l in open(path)]
    log = open(f"{out}/{name}.log").read()
    m = re.search(r"model: (\d+) layers.*?, (\d+) parameters", log)
    dev = re.search(r"CUDA workers, device (.+)", log)
    # the run's own average after the first iteration, the last optimizer step's tail included
    # (an iteration's elapsed_ms ends at its loss, before its CPU AdamW is done)
    done = re.search(r"([0-9.]+) ms per iteration after the first", log)
    ms = float(done.group(1)) if done else float("nan")
    params = int(m.group(2)) if m else 0
    r = {"device": dev.group(1) if dev else "?", "layers": int(m.group(1)) if m else 0,
         "params": params, "iterations_ms": [x["elapsed_ms"] for x in its],
         "losses": [x["loss"] for x in its], "median_ms": ms,
         "tokens_per_s": 4096 / (ms / 1e3), "tflops_8PT": 8 * params * 4096 / (ms / 1e3) / 1e12}
    res[name] = r
    rows.append((name, r))
if os.path.exists(f"{out}/fsdp2.json"):
    f = json.load(open(f"{out}/fsdp2.json"))
    res["fsdp2"] = f
    rows.append(("fsdp2", {"device": f["device"], "params": f["model"]["params"],
                           "median_ms": f["median_s"] * 1e3, "tokens_per_s": f["tokens_per_s"],
                           "tflops_8PT": f["tflops_per_gpu"], "losses": f["losses"]}))
json.dump(res, open(f"{out}/bench_offload.json", "w"), indent=1)
print("\n| run | card | params | s/iter (mean after the first) | tokens/s | TFLOP/s (8PT) | losses |")
print("|---|---|---|---|---|---|---|")
for name, r in rows:
    print(f"| {name} | {r['device']} | {r['params'] / 1e9:.3f}B | {r['median_ms'] / 1e3:.2f} | "
          f"{r['tokens_per_s']:.0f} | {r['tflops_8PT']:.1f} | "
          f"{' '.join(f'{x:.3f}' for x in r['losses'])} |")
PY
