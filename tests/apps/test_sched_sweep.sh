#!/usr/bin/env bash
# test_sched_sweep.sh: scripts/sched_sweep.py over two policies, one knob with two values and a
# bogus policy on a tiny model, 3 iterations, with STARPU_HOME in a temp dir so that the
# calibration leaves the user's perf models alone. Checks the calibration step, one table row
# per setting with numeric times, the same rows in the JSON, and a 'not available' row for the
# bogus policy with exit code 0. Usage: test_sched_sweep.sh GPT50B. Exits 0 / 1, 77 without data.
set -u
gpt50b=${1:?usage: test_sched_sweep.sh GPT50B}
top=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }
[ -f "$top/data/brown.bin" ] || { echo "skip: $top/data/brown.bin is missing (scripts/setup.sh)"; exit 77; }
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
export STARPU_HOME=$w/home
mkdir -p "$STARPU_HOME"
python3 "$top/scripts/sched_sweep.py" --gpt50b "$gpt50b" --policies eager,lws,no-such-policy \
    --knobs STARPU_NCPU=1,2 --iters 3 --timeout 120 --out "$w/sweep.json" -- \
    --num-layers 2 --hidden-size 32 --num-attention-heads 2 --seq-length 32 \
    --max-position-embeddings 32 --micro-batch-size 2 --eval-iters 0 \
    --data-path "$top/data/brown.bin" >"$w/out" 2>&1
rc=$?
cat "$w/out"
[ $rc -eq 0 ] || { echo "FAIL - sched_sweep.py exited $rc"; exit 1; }
python3 - "$w/out" "$w/sweep.json" "$STARPU_HOME" <<'PY'
import json, os, shutil, sys
out, js, home = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(out).read()
want = ["eager", "lws", "no-such-policy", "eager + STARPU_NCPU=1", "eager + STARPU_NCPU=2"]
rows = {}
for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.startswith("| ") and cells[0] not in ("setting",):
        rows[cells[0]] = cells
bad = []
if "calibrating performance models:" not in text:
    bad.append("no calibration line")
models = os.path.join(home, ".starpu", "sampling", "codelets")
if not any(f.startswith("gpt50b_") for _, _, fs in os.walk(models) for f in fs):
    bad.append(f"calibration left no gpt50b_* model under {models}")
if sorted(rows) != sorted(want):
    bad.append(f"table rows {sorted(rows)}, want {sorted(want)}")
for s in want[:2] + want[3:]:
    try:
        float(rows[s][2]), float(rows[s][3]), float(rows[s][4])
    except (KeyError, ValueError, IndexError):
        bad.append(f"row {s}: times not numeric: {rows.get(s)}")
for s in want[:2] + want[3:]:
    cells = rows.get(s, [])
    try:
        rss, pinned = float(cells[8]), float(cells[9])
        if rss <= 0 or pinned < 0:
            raise ValueError
    except (ValueError, IndexError):
        bad.append(f"row {s}: peak RSS and pinned pool not numeric: {cells}")
    gpu = cells[7] if len(cells) > 7 else ""
    if (gpu == "n/a") != (shutil.which("nvidia-smi") is None):
        bad.append(f"row {s}: peak GPU memory '{gpu}' with nvidia-smi {shutil.which('nvidia-smi')}")
if "not available" not in " ".join(rows.get("no-such-policy", [])):
    bad.append(f"bogus policy row: {rows.get('no-such-policy')}")
d = json.load(open(js))
runs = {r["setting"]: r for r in d["runs"]}
if sorted(runs) != sorted(want):
    bad.append(f"JSON rows {sorted(runs)}, want {sorted(want)}")
for s in want[:2] + want[3:]:
    r = runs.get(s, {})
    if r.get("status") != "ok" or len(r.get("iteration_ms", [])) != 3 or \
            abs(r.get("mean_ms", -1) - float(rows.get(s, ["", "", "nan"])[2])) > 0.051 or \
            abs(r.get("median_ms", -1) - float(rows.get(s, ["", "", "", "nan"])[3])) > 0.051:
        bad.append(f"JSON row {s} disagrees with the table: {r.get('status')} {r.get('mean_ms')} "
                   f"{r.get('median_ms')}")
if runs.get("eager + STARPU_NCPU=1", {}).get("cpu_workers") != 1:
    bad.append("STARPU_NCPU=1 did not reach StarPU")
if d["calibration"].get("status") != "ok" or d["calibration"]["env"].get("STARPU_CALIBRATE") != "1":
    bad.append(f"calibration run: {d['calibration'].get('status')}")
if not d["machine"].get("cpu") or not d["gpt50b_flags"]:
    bad.append("machine or flags missing from the JSON")
for b in bad:
    print("FAIL -", b)
print("ok - sweep table, JSON, calibration and skipped policy" if not bad else "")
sys.exit(1 if bad else 0)
PY
