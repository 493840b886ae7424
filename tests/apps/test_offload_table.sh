#!/usr/bin/env bash
# test_offload_table.sh: scripts/offload_table.py on a tiny NVMe-tier run (nothing resident, so
# the swap traffic is real), nvme_tune's rates of the same folder and made-up ceilings. Checks
# that the table has the run's row, that the NVMe bytes are the run's own count, and that the
# bound is the largest of its parts, with the disk part = read bytes / read rate + write bytes /
# write rate; that nvme_tune's mixed runs (1 and 2 writes and reads queued at once) gave rates; and
# that an empty result file (a benchmark killed while writing it) is one line on stderr, not a crash.
# Usage: test_offload_table.sh GPT50B NVME_TUNE. Exits 0 / 1, 77 without data.
set -u
gpt50b=${1:?usage: test_offload_table.sh GPT50B NVME_TUNE}
tune=${2:?usage: test_offload_table.sh GPT50B NVME_TUNE}
top=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }
[ -f "$top/data/brown.bin" ] || { echo "skip: $top/data/brown.bin is missing (scripts/setup.sh)"; exit 77; }
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/out" "$w/nvme"
STARPU_BUS_STATS=1 "$gpt50b" --num-layers 2 --hidden-size 64 --num-attention-heads 2 \
    --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --eval-iters 0 \
    --data-path "$top/data/brown.bin" --train-iters 4 --offload-param cpu \
    --offload-optimizer nvme --nvme-path "$w/nvme" --nvme-resident-fraction 0 \
    --metrics "$w/out/nvme.jsonl" >"$w/out/nvme.log" 2>&1 ||
    { echo "FAIL - gpt50b exited $?: $(tail -n 3 "$w/out/nvme.log")"; exit 1; }
"$tune" --path "$w/nvme" --size 16M --block-sizes 1M --queue-depths 8 --threads 1 --streams 1,2 \
    --out "$w/out/disk.json" >/dev/null || { echo "FAIL - nvme_tune exited $?"; exit 1; }
python3 -c 'import json, sys; b = json.load(open(sys.argv[1]))["best"]; s = b["mixed_streams"]
sys.exit(0 if b["mixed_gbs"] > 0 and [x["streams"] for x in s] == [1, 2] and all(x["gbs"] > 0 for x in s)
         and b["mixed_gbs"] == s[0]["gbs"] else 1)' \
    "$w/out/disk.json" || { echo "FAIL - nvme_tune's mixed runs (1 and 2 streams) gave no rate: $(tail -c 300 "$w/out/disk.json")"; exit 1; }
cat >"$w/out/ceilings.json" <<'JSON'
{"device": "test", "threads": 2, "gemm": {"n": 8192, "dtype": "bf16", "tflops": 0.001},
 "pcie": {"bytes": 1, "h2d_gb_s": 1, "d2h_gb_s": 1}, "host_memory": {"bytes": 1, "copy_gb_s": 1}}
JSON
python3 "$top/scripts/offload_table.py" "$w/out" >"$w/table" || { echo "FAIL - offload_table.py exited $?"; exit 1; }
cat "$w/table"
python3 - "$w/out" "$w/table" <<'PY'
import json, re, sys
out, table = sys.argv[1], open(sys.argv[2]).read()
res = json.load(open(f"{out}/bench_offload.json"))
r, disk = res["nvme"], res["disk"]["results"][0]
log = open(f"{out}/nvme.log").read()
m = re.search(r"NVMe optimizer traffic: ([0-9.]+) GB read, ([0-9.]+) GB written", log)
b = r["bound"]
bad = []
if not re.search(r"^\| nvme \| .* \| 0\.\d{3}B \|", table, re.M):
    bad.append("no table row for the run")
if r["nvme_read_bytes_per_iteration"] != float(m.group(1)) * 1e9 or r["nvme_read_bytes_per_iteration"] <= 0:
    bad.append(f"NVMe read bytes {r['nvme_read_bytes_per_iteration']} against the log's {m.group(1)} GB")
disk_s = (r["nvme_read_bytes_per_iteration"] / (disk["read_gbs"] * 1e9) +
          r["nvme_write_bytes_per_iteration"] / (disk["write_gbs"] * 1e9))
if abs(b["disk_s"] - disk_s) > 1e-9 * max(disk_s, 1):
    bad.append(f"disk part {b['disk_s']} != {disk_s}")
adam = 16 * r["params"] / 1e9  # fp32 run, 1 GB/s
if abs(b["adam_s"] - adam) > 1e-9 * adam:
    bad.append(f"AdamW part {b['adam_s']} != {adam}")
parts = {k: v for k, v in b.items() if k in ("compute_s", "pcie_s", "adam_s", "disk_s")}
if b["bound_s"] != max(parts.values()) or b["limit"] + "_s" != max(parts, key=parts.get):
    bad.append(f"bound {b['bound_s']} ({b['limit']}) is not the largest of {parts}")
if len(r["losses"]) != 4 or r["median_2_6_ms"] <= 0:
    bad.append("losses or median missing")
for x in bad:
    print("FAIL -", x)
if not bad:
    print(f"ok - offload table: bound {b['bound_s']:.4f} s ({b['limit']}) from {parts}")
sys.exit(1 if bad else 0)
PY
rc=$?
# a result file cut short (a benchmark killed while writing it): one line, the table without it
: >"$w/out/adam.json"
if python3 "$top/scripts/offload_table.py" "$w/out" >"$w/table2" 2>"$w/err" &&
    [ "$(wc -l <"$w/err")" -eq 1 ] && grep -q "adam.json is not readable JSON" "$w/err" &&
    grep -q "^| nvme |" "$w/table2"; then
    echo "ok - an empty adam.json: one line on stderr, the table without it"
else
    echo "FAIL - an empty adam.json: exit or output wrong: $(cat "$w/err")"
    rc=1
fi
exit "$rc"
