#!/usr/bin/env bash
# gpu_check.sh OUTDIR: the GPU-host checks of a change, in one call (run after scripts/ship.sh):
# the gpu test suite's programs, the fixture on CPU and GPU, and the same-math check of the
# optimizer tiers on the GPU (5 iterations of a small model with the optimizer state on the GPU,
# in CPU memory and on NVMe, fp32 and fp16: metrics must be identical), and a tiled LM head
# against the untiled one. Writes OUTDIR/tiers.txt.
set -u
out=${1:?usage: gpu_check.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
b=$top/ship/build
[ -d "$b" ] || b=$top/build
export GPT50B_TOP=$top STARPU_SILENT=1
mkdir -p "$out"
rc=0
"$b/tests/codelets/cuda/test_cuda_vs_cpu" >"$out/cuda_vs_cpu.log" 2>&1 || rc=1
tail -n 1 "$out/cuda_vs_cpu.log"
for dev in cpu cuda; do
	"$b/tests/graph/test_fixture" $([ $dev = cuda ] && echo cuda) >"$out/fixture_$dev.log" 2>&1 || rc=1
	echo "fixture $dev: $(tail -n 1 "$out/fixture_$dev.log")"
done
nv=$(mktemp -d)
small=(--num-layers 2 --hidden-size 256 --num-attention-heads 4 --seq-length 128
	--max-position-embeddings 128 --micro-batch-size 4 --train-iters 5 --eval-iters 0
	--data-path "$top/data/brown.bin")
for prec in fp32 fp16; do
	p=(); [ $prec = fp16 ] && p=(--fp16)
	for tier in none cpu nvme; do
		"$b/apps/gpt50b" "${small[@]}" "${p[@]}" --offload-optimizer $tier --nvme-path "$nv" \
			--metrics "$out/$prec-$tier.jsonl" >"$out/$prec-$tier.log" 2>&1 || rc=1
		grep '^> done' "$out/$prec-$tier.log" | cut -c1-160
	done
	python3 - "$out" "$prec" <<'PY' | tee -a "$out/tiers.txt" || rc=1
import json, sys
out, prec = sys.argv[1:]
runs = {t: [(r["loss"], r["grad_norm"]) for r in map(json.loads, open(f"{out}/{prec}-{t}.jsonl"))]
        for t in ("none", "cpu", "nvme")}
same = runs["none"] == runs["cpu"] == runs["nvme"] and len(runs["none"]) == 5
print(f"{prec}: optimizer on GPU / CPU / NVMe: {'identical' if same else 'DIFFERENT'}: "
      f"losses {[l for l, _ in runs['none']]}")
sys.exit(0 if same else 1)
PY
done
for tile in 0 20000; do
	"$b/apps/gpt50b" "${small[@]}" --tile-size $tile --metrics "$out/tile$tile.jsonl" \
		>"$out/tile$tile.log" 2>&1 || rc=1
done
python3 - "$out" <<'PY' | tee -a "$out/tiers.txt" || rc=1
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(f"{sys.argv[1]}/tile{t}.jsonl")] for t in (0, 20000))
worst = max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) == 5 else float("inf")
print(f"fp32: LM head in 3 tiles against untiled on the GPU: max |loss difference| {worst:.2e}")
sys.exit(0 if worst <= 1e-5 else 1)
PY
rm -rf "$nv"
exit $rc
