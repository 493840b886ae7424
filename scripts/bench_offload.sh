#!/usr/bin/env bash
# bench_offload.sh OUTDIR MODE...: the offload engine's benchmark (issue 3), on a GPU host.
#
# The SC21 layer shape on one GPU: hidden 8192, 32 heads, seq 1024, micro-batch 4, fp16,
# activation checkpointing, 4 layers (3,642,146,816 parameters), the GPU capped at 16 GiB
# (STARPU_LIMIT_CUDA_MEM=16384, unless set) like the seed's V100s. MODEs:
#   cpu       fp16 parameters and gradients in pinned CPU memory, optimizer state in RAM, CPU AdamW
#             (--offload-param cpu --offload-optimizer cpu); ITERS iterations (default 6)
#   dpu       the cpu mode with --delayed-param-update (each step's AdamW beside the next
#             iteration, which uses the parameters one step older); ITERS iterations
#   ckpt      the cpu mode with the activation checkpoints in pinned CPU memory too
#             (--checkpoint-in-cpu); its losses must equal cpu's, its PCIe bytes grow by theirs
#   nvme      the same with the optimizer state streamed from NVMe, nothing resident
#             (--nvme-resident-fraction 0) in NVME_DIR (default /tmp/gpt50b-nvme); NVME_ITERS (5)
#             iterations of NVME_LAYERS layers (default 4; 1 layer streams 14.7 GB each way, a
#             third of 4 layers' 43.7, so a call affords the iterations a mean needs; gpt50b's
#             mean after the first iteration runs from the end of the first step's last swap-out
#             to the end of the last's)
#   resident  nvme with a planned share of the optimizer state resident in RAM: NVME_RESIDENT
#             (default 0.5) of it, or auto (the share where disk and CPU AdamW times balance at
#             rates gpt50b measures at start); NVME_ITERS iterations of NVME_LAYERS layers
#   gpu       everything on the GPU, no cap (the same-math reference: its losses must equal cpu's
#             and nvme's; needs about 60 GB of GPU memory)
#   fsdp2     scripts/bench_fsdp2.py: PyTorch FSDP2 CPUOffloadPolicy, same shape, bf16, 16 GiB cap
#   ceilings  scripts/host_ceilings.py: GEMM TFLOP/s, pinned PCIe GB/s each way, host memory GB/s;
#             build/apps/bench_adam --isa selected: our AdamW kernel's own GB/s (its best thread
#             count, on the ISA the runs use)
#   disk      build/apps/nvme_tune at the run's aio settings (1 MiB, queue depth 32, 2 threads,
#             8 GiB) on NVME_DIR: the I/O engine's own read and write GB/s
#   L=N       the cpu mode with N layers; NL=N: the SC21 tiers (parameters and checkpoints in CPU
#             memory, optimizer state on NVMe with the plan's resident share) with N layers, for
#             the largest model search (ITERS, default 4)
#   largest   the largest model search: --dry-run plans of the NL tiers for LMAX (default 24)
#             layers down to 1 on this host (RAM, NVME_DIR's free space, the 16 GiB cap); the first
#             that fits trains ITERS (default 2) iterations as NL=N. OUTDIR/largest.txt keeps the
#             plans' verdicts
#   trace     the cpu mode for 3 iterations, the third traced by FxT into OUTDIR/fxt (a separate
#             run: the trace window waits for all tasks at both ends, which would skew the timing)
#   nvtrace   the nvme mode for 3 iterations, the third traced into OUTDIR/fxt
# DTYPE (fp16, default, or bf16) is gpt50b's precision (fsdp2 always computes in bf16). Extra
# gpt50b flags come from GPT50B_FLAGS. StarPU's bus statistics (STARPU_BUS_STATS=1) end each
# gpt50b log. Each mode leaves OUTDIR/MODE.log (and .jsonl); a table and OUTDIR/bench_offload.json
# close. The table puts each run next to its bound, the slowest resource at the rates `ceilings`
# and `disk` measured in the same call: compute (the run's FLOPs at the GEMM rate), PCIe (its
# bytes each way, from the bus statistics, at the copy rates; the two directions overlap), CPU
# AdamW (28 bytes per parameter at the faster of the host memory copy and bench_adam's rate: the
# AdamW kernel outruns PyTorch's copy) and the disk (NVMe bytes read and written at nvme_tune's
# rates, one after the other).
set -euo pipefail
out=${1:?usage: bench_offload.sh OUTDIR MODE...}
shift
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/apps
[ -x "$bin/gpt50b" ] || bin=$top/ship/build/apps
mkdir -p "$out"
export STARPU_LIMIT_CUDA_MEM=${STARPU_LIMIT_CUDA_MEM:-16384} STARPU_BUS_STATS=${STARPU_BUS_STATS:-1}
# The SC21 schedule's peak lr (1.5e-4, to 1e-5) after a warm-up of 1000 iterations: at width 8192
# AdamW's first steps move every weight by about lr, and with 1 warm-up iteration (lr 3e-6 and up)
# the loss rises, in PyTorch from the same weights as in gpt50b (docs/results.md, "The first
# steps at width 8192"); from 1.5e-7, 3e-7, ... it falls. Speed does not depend on it.
shape=(--hidden-size 8192 --num-attention-heads 32 --seq-length 1024 --max-position-embeddings 1024
	--micro-batch-size 4 "--${DTYPE:-fp16}" --checkpoint-activations --eval-iters 0 --log-interval 1
	--lr 1.5e-4 --min-lr 1e-5 --lr-warmup-iters 1000 --data-path "$top/data/brown.bin")
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

nvdir=${NVME_DIR:-/tmp/gpt50b-nvme}
offload=(--offload-param cpu --offload-optimizer cpu)
nvme=(--offload-param cpu --offload-optimizer nvme --nvme-path "$nvdir")
for mode in "$@"; do
	case $mode in
	cpu) run cpu 4 "${ITERS:-6}" "${offload[@]}" ;;
	dpu) run dpu 4 "${ITERS:-6}" "${offload[@]}" --delayed-param-update ;;
	ckpt) run ckpt 4 "${ITERS:-6}" "${offload[@]}" --checkpoint-in-cpu ;;
	trace)
		mkdir -p "$out/fxt"
		STARPU_FXT_PREFIX=$out/fxt/ run trace 4 3 "${offload[@]}" --trace 3:3
		;;
	nvtrace)
		mkdir -p "$out/fxt" "$nvdir"
		STARPU_FXT_PREFIX=$out/fxt/ run nvtrace 4 3 "${nvme[@]}" --nvme-resident-fraction 0 --trace 3:3
		;;
	nvme)
		mkdir -p "$nvdir"
		run nvme "${NVME_LAYERS:-4}" "${NVME_ITERS:-5}" "${nvme[@]}" --nvme-resident-fraction 0
		;;
	resident)
		mkdir -p "$nvdir"
		run resident "${NVME_LAYERS:-4}" "${NVME_ITERS:-5}" "${nvme[@]}" --nvme-resident-fraction "${NVME_RESIDENT:-0.5}"
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
	ceilings)
		python3 "$top/scripts/host_ceilings.py" --out "$out/ceilings.json" || echo "ceilings: exit $?"
		"$bin/bench_adam" --params 268435456 --iters 3 --dtype bf16 --isa selected --out "$out/adam.json" |
			tail -n 3 || echo "bench_adam: exit $?"
		;;
	disk)
		mkdir -p "$nvdir"
		"$bin/nvme_tune" --path "$nvdir" --size 8G --block-sizes 1M --queue-depths 32 --threads 2 \
			--out "$out/disk.json" | tail -n 4 || echo "disk: exit $?"
		;;
	L=*) run "layers${mode#L=}" "${mode#L=}" "${ITERS:-4}" "${offload[@]}" ;;
	NL=*)
		mkdir -p "$nvdir"
		run "nvlayers${mode#NL=}" "${mode#NL=}" "${ITERS:-4}" "${nvme[@]}" --checkpoint-in-cpu
		;;
	largest)
		mkdir -p "$nvdir"
		for ((layers = ${LMAX:-24}; layers > 0; layers--)); do
			verdict=$("$bin/gpt50b" "${shape[@]}" --num-layers "$layers" "${nvme[@]}" --checkpoint-in-cpu \
				"${extra[@]}" --dry-run 2>&1 | grep '^plan: ' | tail -n 1 || true)
			echo "$layers layers: $verdict" | tee -a "$out/largest.txt"
			[ "$verdict" = "plan: fits" ] && break
		done
		[ "$layers" -gt 0 ] && ITERS=${ITERS:-2} run "nvlayers$layers" "$layers" "${ITERS:-2}" "${nvme[@]}" \
			--checkpoint-in-cpu
		;;
	*) echo "bench_offload.sh: unknown mode $mode: use cpu, dpu, ckpt, nvme, resident, gpu, fsdp2, ceilings, disk, largest, trace, nvtrace, L=N or NL=N" >&2 && exit 2 ;;
	esac
done

python3 "$top/scripts/offload_table.py" "$out"
