#!/usr/bin/env bash
# test_dry_run_machine.sh: gpt50b --dry-run --machine, in every build: the memory plan judged
# against a described machine (scripts/machines/NAME.json, or a file) instead of this one.
#
# 1. h100-x1, the 3.642B model in CPU offload (docs/results.md's): fits; the three capacity lines
#    are the machine's GPU memory, RAM and NVMe size, each naming its figure.
# 2. cori-v100-2x8, the seed's run (--preset gpt50b, the SC21 DeepSpeed config, 16 ranks): 8
#    ranks per node from the machine, 16.95 GB per GPU, 372 GB of RAM and 930 GB of NVMe per node;
#    it fits, and its step is timed at the machine's disk and AdamW rates (and at a mixed disk
#    rate when the file gives one). The same model with its optimizer state on the GPU does not:
#    one verdict line naming the machine, exit 2. --nvme-resident-fraction auto keeps the fewest
#    whole sub-groups that reach the balance of the disk and AdamW times (a machine with a fast
#    disk: fewer than the default's), and what RAM holds when that is less (Cori).
# 3. A machine file given by path, with STARPU_LIMIT_CUDA_MEM lowering its GPU memory.
# 4. User errors, exit 2 and one line: an unknown name (listing the machines), invalid JSON, a
#    missing figure (naming it), --machine without --dry-run (this build runs on this machine).
# Exits 0 / 1. The simulation build, which has its own test, does not run this one.
#
#   usage: test_dry_run_machine.sh PATH/TO/gpt50b      (GPT50B_TOP: the source root)
set -u
GPT50B=${1:?usage: test_dry_run_machine.sh PATH/TO/gpt50b}
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
unset STARPU_LIMIT_CUDA_MEM STARPU_LIMIT_CPU_MEM STARPU_NCUDA
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
failures=0
ok() { echo "ok - $1"; }
fail() {
	echo "FAIL - $1: $2"
	failures=$((failures + 1))
}

# plan WHAT WANT_RC ARGS...: a dry run exiting WANT_RC; its stdout in $W/out
plan() {
	local what=$1 want=$2 rc
	shift 2
	"$GPT50B" --dry-run "$@" >"$W/out" 2>"$W/err"
	rc=$?
	[ "$rc" -eq "$want" ] || fail "$what" "exit $rc (want $want): $(tail -n 3 "$W/err" "$W/out" | tr '\n' ' ')"
	[ "$rc" -eq "$want" ]
}
# has WHAT PATTERN: a line of the last plan matches PATTERN (grep -E)
has() {
	if grep -qE -- "$2" "$W/out"; then ok "$1"; else fail "$1" "no line matching '$2' in: $(grep -E 'memory needs|space needs|^plan' "$W/out" | tr '\n' '|')"; fi
}
# one_line WHAT PATTERN ARGS...: exit 2, stderr one "gpt50b: error:" line matching PATTERN
one_line() {
	local what=$1 pat=$2 rc lines
	shift 2
	"$GPT50B" "$@" >"$W/out" 2>"$W/err"
	rc=$?
	lines=$(cat "$W/err")
	if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$lines" | wc -l)" -eq 1 ] &&
		[[ $lines == "gpt50b: error: "* ]] && grep -qE -- "$pat" <<<"$lines"; then
		ok "$what: exit 2, '$lines'"
	else
		fail "$what" "exit $rc, stderr: $(tr '\n' '|' <"$W/err")"
	fi
}

M3B6=(--num-layers 4 --hidden-size 8192 --num-attention-heads 32 --seq-length 1024
	--max-position-embeddings 1024 --micro-batch-size 4 --bf16 --checkpoint-activations)

# --- 1. h100-x1 ---------------------------------------------------------------------------------
if plan "3.642B in CPU offload on h100-x1" 0 --machine h100-x1 "${M3B6[@]}" --offload-param cpu \
	--offload-optimizer cpu; then
	has "h100-x1: GPU memory of the machine" "GPU memory needs .* of +85\.52 GB \(--machine h100-x1: gpu_memory_bytes\): fits"
	has "h100-x1: RAM of the machine" "CPU memory needs .* of +134\.22 GB \(--machine h100-x1: ram_available_bytes\): fits"
	has "h100-x1: NVMe of the machine" "NVMe space needs .* of +68\.72 GB \(--machine h100-x1: nvme_bytes\): fits"
	has "h100-x1: fits" "^plan: fits$"
fi

# --- 2. cori-v100-2x8 ---------------------------------------------------------------------------
SC21=(--preset gpt50b --deepspeed_config "$TOP/tests/fixtures/ds_zero3_sc21.json" --world-size 16)
if plan "the seed's run on cori-v100-2x8" 0 --machine cori-v100-2x8 "${SC21[@]}"; then
	has "cori: 8 ranks per node, from the machine" "^  16 ranks, 8 per node "
	has "cori: GPU memory of a V100" "GPU memory needs .* per GPU +of +16\.95 GB \(--machine cori-v100-2x8: gpu_memory_bytes\): fits"
	has "cori: RAM per node" "CPU memory needs .* per node of +372\.00 GB \(--machine cori-v100-2x8: ram_available_bytes\): fits"
	has "cori: NVMe per node" "NVMe space needs .* per node of +930\.00 GB \(--machine cori-v100-2x8: nvme_bytes\): fits"
	has "cori: fits" "^plan: fits$"
	# 96.9 GB read at 3.0 GB/s and written at 1.5; 25.18B parameters x 28 B at 100 GB/s; with
	# nothing resident 302.1 GB each way: 302.1 s, so 1 - 7.05 / 302.1 balances
	has "cori: a node's step timed at the machine's rates" "^  step time per node at --machine cori-v100-2x8's rates: NVMe 96\.9 s, CPU AdamW 7\.0 s \(100 GB/s\): disk-bound; the two balance with 97\.7% of the state resident \(the plan keeps 67\.9%\)$"
fi
# The same at a mixed rate (a write and a read together) of 6 GB/s: (96.9 + 96.9) / 6 = 32.3 s.
python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m["nvme_mixed_GBps"] = {"value": 6.0, "kind": "assumed", "source": "test"}; json.dump(m, open(sys.argv[2], "w"))' \
	"$TOP/scripts/machines/cori-v100-2x8.json" "$W/cori-mixed.json"
if plan "the seed's run on a Cori with a mixed disk rate" 0 --machine "$W/cori-mixed.json" "${SC21[@]}"; then
	has "cori, mixed rate: both directions at it" "^  step time per node at --machine cori-v100-2x8's rates: NVMe 32\.3 s, CPU AdamW 7\.0 s"
fi
if plan "3.642B with its optimizer on a V100" 2 --machine cori-v100-2x8 "${M3B6[@]}"; then
	has "cori: the GPU verdict names the machine's card" "^plan: GPU memory: the plan needs .* the cap is 16\.9 GB \(--machine cori-v100-2x8: gpu_memory_bytes\)"
fi

# --nvme-resident-fraction auto on a machine whose disk keeps up (60 GB/s each way, no mixed rate):
# nothing resident 43.7 GB each way is 1.46 s against 0.70 s of AdamW, so 52.3% balances; the
# fewest whole sub-groups (tensors of 412M elements, 9) that reach it are 5 (56.6%), where the
# default keeps all 9 (RAM has room), and 4 would leave the disk the slower
python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m["name"] = "fast-disk"; m.pop("nvme_mixed_GBps", None); m["nvme_read_GBps"]["value"] = m["nvme_write_GBps"]["value"] = 60.0; json.dump(m, open(sys.argv[2], "w"))' \
	"$TOP/scripts/machines/h100-x1.json" "$W/fast-disk.json"
NV3B6=("${M3B6[@]}" --offload-param cpu --offload-optimizer nvme --nvme-path "$W")
if plan "3.642B on NVMe, the plan's default share" 0 --machine "$W/fast-disk.json" "${NV3B6[@]}"; then
	has "default: all that RAM holds" "^  step time per node at --machine fast-disk's rates: NVMe 0\.0 s, CPU AdamW 0\.7 s \(147 GB/s\): AdamW-bound; the two balance with 52\.3% of the state resident \(the plan keeps 100\.0%\)$"
fi
if plan "3.642B on NVMe, --nvme-resident-fraction auto" 0 --machine "$W/fast-disk.json" "${NV3B6[@]}" \
	--nvme-resident-fraction auto; then
	has "auto: the sub-groups that reach the balance" "^  step time per node at --machine fast-disk's rates: NVMe 0\.6 s, CPU AdamW 0\.7 s \(147 GB/s\): AdamW-bound; the two balance with 52\.3% of the state resident \(the plan keeps 56\.6%\)$"
	has "auto: 5 of 9 sub-groups" "optimizer state kept in RAM \(5 of 9 sub-groups\)"
fi
# where RAM is short of the balance, auto keeps what RAM holds: the seed's run on Cori as above
if plan "the seed's run on cori-v100-2x8, auto" 0 --machine cori-v100-2x8 "${SC21[@]}" \
	--nvme-resident-fraction auto; then
	has "cori, auto: RAM caps the balance" "the two balance with 97\.7% of the state resident \(the plan keeps 67\.9%\)$"
fi

# --- 3. a machine file, and a GPU limit ---------------------------------------------------------
sed 's/"name": "h100-x1"/"name": "my-host"/' "$TOP/scripts/machines/h100-x1.json" >"$W/my-host.json"
if STARPU_LIMIT_CUDA_MEM=16384 plan "a machine file by path, under STARPU_LIMIT_CUDA_MEM" 0 \
	--machine "$W/my-host.json" "${M3B6[@]}" --offload-param cpu --offload-optimizer cpu; then
	has "the limit lowers the machine's GPU" "GPU memory needs .* of +17\.18 GB \(STARPU_LIMIT_CUDA_MEM\): fits"
	has "the file's machine" "CPU memory needs .* \(--machine my-host: ram_available_bytes\)"
fi

# --- 4. user errors -----------------------------------------------------------------------------
one_line "an unknown machine" "unknown machine h100-x9: no .*h100-x9\.json \(machines: cori-v100-2x8, h100-2x8, h100-x1, h100-x2, h200-x1; or give a file's path\)" \
	--dry-run --machine h100-x9
printf '{"name": "broken",\n "nodes": {"value": 1,}}\n' >"$W/broken.json"
one_line "invalid JSON" "machine file $W/broken.json: line 2, column 23: " --dry-run --machine "$W/broken.json"
grep -v '"nvme_write_GBps"' "$TOP/scripts/machines/h100-x1.json" >"$W/short.json"
one_line "a missing figure" "machine file $W/short.json: figure nvme_write_GBps is missing or null" \
	--dry-run --machine "$W/short.json"
one_line "--machine without --dry-run" "--machine h100-x1: this build runs on this machine" \
	--machine h100-x1 --preset tiny --train-iters 1

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
