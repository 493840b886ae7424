#!/usr/bin/env bash
# gpu_check.sh OUTDIR: the GPU-host checks of a change, in one call (run after scripts/ship.sh):
# the gpu test suite's programs, the fixture on CPU and GPU, and the same-math check of the
# optimizer tiers on the GPU (5 iterations of a small model with the optimizer state on the GPU,
# in CPU memory and on NVMe, and with the parameters offloaded, also under a memory cap that
# forces eviction, fp32 and fp16: metrics must be identical), and a tiled LM head against the
# untiled one (fp32 and fp16). Writes OUTDIR/tiers.txt.
set -u
out=${1:?usage: gpu_check.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
b=$top/ship/build
[ -d "$b" ] || b=$top/build
export GPT50B_TOP=$top STARPU_SILENT=1
mkdir -p "$out"
rc=0
for t in test_cuda_vs_cpu test_comm_nccl; do
	"$b/tests/codelets/cuda/$t" >"$out/$t.log" 2>&1 || rc=1
	echo "$t: $(tail -n 1 "$out/$t.log")"
done
for dev in cpu cuda; do
	"$b/tests/graph/test_fixture" $([ $dev = cuda ] && echo cuda) >"$out/fixture_$dev.log" 2>&1 || rc=1
	echo "fixture $dev: $(tail -n 1 "$out/fixture_$dev.log")"
done
nv=$(mktemp -d)
small=(--num-layers 2 --hidden-size 256 --num-attention-heads 4 --seq-length 128
	--max-position-embeddings 128 --micro-batch-size 4 --train-iters 5 --eval-iters 0
	--data-path "$top/data/brown.bin")
# name:flags; param* offload the parameters (prefetch, eviction), ckpt* checkpoint the activations
# (ckpt-cpu* in pinned CPU memory: written back after the forward, fetched before the recompute);
# *-cap run under a cap (160 MiB in fp16, 320 MiB in fp32) that forces StarPU to evict and fetch
# again
variants=("none:" "cpu:--offload-optimizer cpu" "nvme:--offload-optimizer nvme --nvme-path $nv"
	"param:--offload-param cpu"
	"param-cpu-pieces:--offload-param cpu --offload-optimizer cpu --optimizer-chunk-size 20000"
	"param-cpu-cap:--offload-param cpu --offload-optimizer cpu"
	"ckpt:--checkpoint-activations" "ckpt-cpu:--checkpoint-activations --checkpoint-in-cpu"
	"ckpt-cpu-cap:--checkpoint-activations --checkpoint-in-cpu --offload-param cpu --offload-optimizer cpu")
for prec in fp32 fp16; do
	p=(); [ $prec = fp16 ] && p=(--fp16)
	for v in "${variants[@]}"; do
		name=${v%%:*}
		# shellcheck disable=SC2206
		flags=(${v#*:})
		cap=()
		[[ $name == *-cap ]] && cap=(env STARPU_LIMIT_CUDA_MEM=$([ $prec = fp16 ] && echo 160 || echo 320))
		"${cap[@]}" "$b/apps/gpt50b" "${small[@]}" "${p[@]}" "${flags[@]}" \
			--metrics "$out/$prec-$name.jsonl" >"$out/$prec-$name.log" 2>&1 || rc=1
		grep '^> done' "$out/$prec-$name.log" | cut -c1-160 ||
			echo "$prec $name: $(grep -m1 error "$out/$prec-$name.log")"
	done
	python3 - "$out" "$prec" "${variants[@]%%:*}" <<'PY' | tee -a "$out/tiers.txt" || rc=1
import json, sys
out, prec, names = sys.argv[1], sys.argv[2], sys.argv[3:]
def load(t):
    try:
        return [(r["loss"], r["grad_norm"]) for r in map(json.loads, open(f"{out}/{prec}-{t}.jsonl"))]
    except OSError:
        return []
runs = {t: load(t) for t in names}
ref = runs["none"]
bad = [t for t in names if runs[t] != ref or len(runs[t]) != 5]
print(f"{prec}: {' / '.join(names)}: {'identical' if not bad else 'DIFFERENT: ' + ' '.join(bad)}: "
      f"losses {[l for l, _ in ref]}")
for t in bad:
    print(f"  {t}: {[l for l, _ in runs[t]]}")
sys.exit(0 if not bad else 1)
PY
done
# tiled LM head (3 tiles) against untiled: fp32, and fp16 whose tiles sum in an fp32 accumulator
for prec in fp32:1e-5 fp16:2e-4; do
	p=${prec%%:*} pf=()
	[ "$p" = fp16 ] && pf=(--fp16)
	for tile in 0 20000; do
		"$b/apps/gpt50b" "${small[@]}" "${pf[@]}" --tile-size $tile \
			--metrics "$out/$p-tile$tile.jsonl" >"$out/$p-tile$tile.log" 2>&1 || rc=1
	done
	python3 - "$out" "$p" "${prec#*:}" <<'PY' | tee -a "$out/tiers.txt" || rc=1
import json, sys
out, p, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
a, b = ([json.loads(l)["loss"] for l in open(f"{out}/{p}-tile{t}.jsonl")] for t in (0, 20000))
worst = max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) == 5 else float("inf")
print(f"{p}: LM head in 3 tiles against untiled on the GPU: max |loss difference| {worst:.2e}")
sys.exit(0 if worst <= tol else 1)
PY
done
rm -rf "$nv"
exit $rc
