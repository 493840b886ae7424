#!/usr/bin/env python3
"""sim_validate.py: the simulation's predictions against the GPU host's measurements (issue 15).

    python3 scripts/sim_validate.py [--measured SUMMARY]... [--out DIR] [--reuse] [NAME...]

For each configuration of scripts/sim_configs.txt with ITERS > 0 (or those named): runs
scripts/simulate.sh MACHINE with its flags and environment, ITERS iterations (--out DIR keeps
each simulation's log and metrics, DIR/NAME.log and DIR/NAME.jsonl; --reuse reads metrics already
there instead of simulating again), and compares the simulated median of iterations 2-ITERS
with the measured one of the same configuration in SUMMARY, the summary.json that
scripts/calibrate_sim.sh wrote on the GPU host (or a sim/models/MACHINE.json written by
`sim_models.py install`, which holds it; default: sim/models/h100-x1.json). --measured again
adds a later call's summary (a call that measured what did not fit in the calibration's): the
first summary gives the machine and its figures, each configuration's measurement comes from the
last summary that has one (its row's measured_in names it).

The machine: scripts/machines/MACHINE.json (MACHINE: the summary's, h100-x1) with the figures
the same GPU-host call measured put in (the disk's read and write rates and, when nvme_tune's
mixed run gave it, its mixed rate, which the swap tasks then use; CPU AdamW's one-core
rate, PCIe rates, GPU memory, cores: the summary's "figures"; the node's CPU AdamW rate from the
calibrated AdamW history, sim_models.adamw_cpu_rate), written to DIR/MACHINE.json and given to
simulate.sh as a file; --as-committed simulates the committed machine file instead. A
configuration whose measured run the call bracketed with two disk probes (its disk_mixed_GBps)
is simulated at their mean mixed rate (DIR/MACHINE.NAME.json), the disk's rate in the minutes
of that run; --call-start-disk keeps the rate measured at the start of the call for all.

Prints a Markdown table (configuration, measured median ms, predicted ms, error %, within the
tolerance) and writes it with every number to --json (default docs/results/sim_validation_h100.json
for h100-x1, sim_validation_MACHINE.json otherwise) and, with --markdown FILE, the table alone.
Exit status: 0 when every compared configuration is within --tolerance (0.15) and none failed,
1 otherwise, 2 for bad input (one line).
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

PROG = "sim_validate.py"
TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(TOP, "scripts"))
import sim_configs  # noqa: E402
import sim_models  # noqa: E402


class ValidateError(Exception):
    pass


def load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValidateError(f"{what} {path} not found")
    except (OSError, ValueError) as e:
        raise ValidateError(f"{what} {path}: {e}")


def load_summary(path):
    """calibrate_sim.sh's summary.json, or the one a sim/models/MACHINE.json holds."""
    doc = load_json(path, "measured summary")
    summary = doc.get("calibration", doc) if isinstance(doc, dict) else None
    if not isinstance(summary, dict) or not isinstance(summary.get("configs"), dict):
        raise ValidateError(f"{path} is not a calibrate_sim.sh summary (no \"configs\")")
    return summary


def median_after_first(path, skip=0):
    """(median of the iterations after the first, first, last iteration) of a metrics file."""
    try:
        with open(path) as f:
            rows = [json.loads(l) for l in f.read().splitlines()[skip:] if l.strip()]
    except (OSError, ValueError):
        return None
    rest = rows[1:]
    if not rest:
        return None
    ms = sorted(r["elapsed_ms"] for r in rest)
    m = len(ms) // 2
    return (ms[m] if len(ms) % 2 else (ms[m - 1] + ms[m]) / 2), rest[0]["iteration"], rest[-1]["iteration"]


def write_json(doc, path):
    """Writes doc to path (indented, a final newline); returns path."""
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return path


# figures a machine file may lack that a calibration measures (runtime/formats/machine.h)
OPTIONAL_FIGURES = ("nvme_mixed_GBps",)


def machine_file(summary, machine, out, as_committed):
    """The machine file to simulate: the committed one, or a copy with the measured figures."""
    committed = os.path.join(TOP, "scripts", "machines", machine + ".json")
    m = load_json(committed, "machine file")
    if as_committed:
        return committed, {}
    used = {}
    for k, v in (summary.get("figures") or {}).items():
        # the machine's figures, and the optional ones a calibration may add
        if (k in m or k in OPTIONAL_FIGURES) and isinstance(v, dict) and v.get("value") is not None:
            m[k] = {"value": v["value"], "kind": "measured",
                    "source": f"{v.get('source', 'calibrate_sim.sh')}, {summary.get('date', '?')}, {summary.get('card', '?')}"}
            used[k] = v["value"]
    workers = m["cpu_cores"]["value"] - m["gpus_per_node"]["value"]  # StarPU's default CPU workers
    rate = sim_models.adamw_cpu_rate(os.path.join(TOP, "sim", "models"), machine, workers)
    if rate:
        m["cpu_adamw_GBps"] = {"value": round(rate[0], 2), "kind": "measured",
                               "source": f"the calibrated AdamW history (sim/models, {rate[1]} CPU entries, "
                                         f"{rate[2]} tasks run with all {workers} CPU workers on AdamW)"}
        used["cpu_adamw_GBps"] = m["cpu_adamw_GBps"]["value"]
    return write_json(m, os.path.join(out, machine + ".json")), used


def bracketed_disk(meas):
    """The mean of the disk probes around a measured run (its disk_mixed_GBps), or None."""
    rates = [r for r in (meas.get("disk_mixed_GBps") or {}).values() if isinstance(r, (int, float)) and r > 0]
    return sum(rates) / len(rates) if len(rates) == 2 else None


def with_disk(mfile, rate, meas, out, name):
    """A copy of the machine file mfile with the disk's mixed rate of one configuration's run."""
    m = load_json(mfile, "machine file")
    b = meas["disk_mixed_GBps"]
    m["nvme_mixed_GBps"] = {"value": round(rate, 3), "kind": "measured",
                            "source": f"the mean of the disk probes (nvme_tune's mixed run) just before and "
                                      f"after the measured run of {name}: {b['before']} and {b['after']} GB/s"}
    return write_json(m, os.path.join(out, f"{os.path.splitext(os.path.basename(mfile))[0]}.{name}.json"))


def git_head():
    try:
        return subprocess.run(["git", "-C", TOP, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def simulate(c, mfile, out, data, reuse, simulate_sh):
    """Runs (or, with reuse, reads) one configuration's simulation; returns (result, note)."""
    metrics = os.path.join(out, c.name + ".jsonl")
    log = os.path.join(out, c.name + ".log")
    if reuse:
        got = median_after_first(metrics)
        if got and got[2] - got[1] + 2 == c.iters:
            return got, "reused"
    if os.path.exists(metrics):
        os.remove(metrics)
    swap = tempfile.mkdtemp(prefix=f"sim-{c.name}.", dir=out)
    env = dict(os.environ)
    env.update(dict(e.split("=", 1) for e in c.env))
    args = [simulate_sh, mfile] + sim_configs.gpt50b_args(c, c.iters, metrics, data, swap)
    t0 = datetime.datetime.now()
    with open(log, "w") as f:
        f.write("$ " + " ".join(c.env + args) + "\n")
        f.flush()
        rc = subprocess.run(args, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=TOP).returncode
    shutil.rmtree(swap, ignore_errors=True)
    secs = (datetime.datetime.now() - t0).total_seconds()
    if rc != 0:
        with open(log) as f:
            tail = [l.strip() for l in f if l.strip()][-1:]
        return None, f"simulate.sh exit {rc}: {tail[0] if tail else ''}"[:300]
    got = median_after_first(metrics)
    if not got:
        return None, "no iteration after the first in the simulation's metrics"
    return got, f"simulated in {secs:.0f} s of real time"


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="configurations (default: all with ITERS > 0)")
    ap.add_argument("--measured", action="append",
                    help="calibrate_sim.sh's summary.json or sim/models/MACHINE.json (default "
                    "sim/models/h100-x1.json); again for a later call's: the first gives the machine "
                    "and its figures, each configuration's measurement comes from the last that has one")
    ap.add_argument("--configs", default=sim_configs.DEFAULT, help="configurations file")
    ap.add_argument("--out", help="simulations' logs and metrics (default build-sim/sim/validate)")
    ap.add_argument("--reuse", action="store_true", help="read the metrics already in --out")
    ap.add_argument("--as-committed", action="store_true",
                    help="simulate the committed machine file, not the measured figures")
    ap.add_argument("--call-start-disk", action="store_true",
                    help="simulate every configuration at the disk rate of the call's start, "
                    "not at its own run's bracketing probes")
    ap.add_argument("--json", help="result file (default docs/results/sim_validation_h100.json)")
    ap.add_argument("--markdown", help="also write the table here")
    ap.add_argument("--tolerance", type=float, default=0.15, help="relative error allowed (0.15)")
    a = ap.parse_args(argv)
    try:
        mpaths = a.measured or [os.path.join(TOP, "sim", "models", "h100-x1.json")]
        summaries = [load_summary(p) for p in mpaths]
        summary = summaries[0]
        machine = summary.get("machine") or "h100-x1"
        configs = [c for c in sim_configs.select(sim_configs.load(a.configs), a.names) if c.iters > 0]
        if not configs:
            raise ValidateError("no configuration with ITERS > 0 to compare")
        out = os.path.abspath(a.out or os.path.join(TOP, "build-sim", "sim", "validate"))
        os.makedirs(out, exist_ok=True)
        mfile, used = machine_file(summary, machine, out, a.as_committed)
    except (ValidateError, sim_configs.ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    data = os.path.join(TOP, "data", "brown.bin")
    simulate_sh = os.path.join(TOP, "scripts", "simulate.sh")
    rows, bad = [], 0
    for c in configs:
        entries = [(p, s["configs"].get(c.name) or {}) for p, s in zip(mpaths, summaries)]
        mpath, meas = ([e for e in entries if e[1].get("median_ms") is not None] or [e for e in entries if e[1]]
                       or entries)[-1]
        row = {"configuration": c.name, "iters": c.iters, "env": c.env, "flags": c.flags,
               "measured_ms": meas.get("median_ms"), "measured_iterations": meas.get("elapsed_ms"),
               "measured_in": os.path.relpath(os.path.abspath(mpath), TOP),
               "calibrated_on": any(e.get("calibrated") for _, e in entries)}
        if row["measured_ms"] is None:
            row["note"] = f"not measured ({meas.get('status') or 'not in the summary'})"
            bad += 1
            rows.append(row)
            print(f"{PROG}: {c.name}: {row['note']}", file=sys.stderr)
            continue
        cfile = mfile
        rate = None if a.as_committed or a.call_start_disk else bracketed_disk(meas)
        if rate:
            cfile = with_disk(mfile, rate, meas, out, c.name)
            row["disk_mixed_GBps"] = round(rate, 3)
        print(f"{PROG}: {c.name}: simulating {c.iters} iterations{f' (disk {rate:.2f} GB/s)' if rate else ''} ...",
              file=sys.stderr, flush=True)
        got, note = simulate(c, cfile, out, data, a.reuse, simulate_sh)
        row["note"] = note
        if got:
            row["predicted_ms"], first, last = got
            row["predicted_of"] = f"iterations {first}-{last}"
            row["error"] = (row["predicted_ms"] - row["measured_ms"]) / row["measured_ms"]
            row["within"] = abs(row["error"]) <= a.tolerance
            bad += not row["within"]
        else:
            bad += 1
        print(f"{PROG}: {c.name}: {note}", file=sys.stderr)
        rows.append(row)

    pct = f"{a.tolerance * 100:g}%"
    table = [f"| configuration | measured ms | predicted ms | error | within {pct} |", "|---|---|---|---|---|"]
    for r in rows:
        name = r["configuration"] + ("" if r["calibrated_on"] else " *")
        if "predicted_ms" in r:
            table.append(f"| {name} | {r['measured_ms']:.1f} | {r['predicted_ms']:.1f} | {r['error'] * 100:+.1f}% | "
                         f"{'yes' if r['within'] else 'no'} |")
        else:
            meas = f"{r['measured_ms']:.1f}" if r["measured_ms"] is not None else "-"
            table.append(f"| {name} | {meas} | - | - | no: {r['note']} |")
    legend = ("Medians of iterations 2-N; * = not itself a calibration run (its codelet shapes come from "
              "another configuration's).")
    probed = [f"{r['configuration']} {r['disk_mixed_GBps']:.2f}" for r in rows if r.get("disk_mixed_GBps")]
    if probed:
        start = used.get("nvme_mixed_GBps")
        legend += (" Disk rates (GB/s, the mean of the probes just before and after the run): " + ", ".join(probed)
                   + (f"; at the call's start {start:.2f}." if start else "."))
    text = "\n".join(table) + "\n\n" + legend + "\n"
    print(text, end="")
    result = {"machine": machine, "tolerance": a.tolerance,
              "measured": [{k: m.get(k) for k in ("date", "card", "driver", "commit", "host")} for m in summaries],
              "measured_from": [os.path.relpath(os.path.abspath(p), TOP) for p in mpaths],
              "simulated": {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
                            "commit": git_head(), "machine_file": "committed" if a.as_committed else
                            f"scripts/machines/{machine}.json with the measured figures",
                            "figures_used": used},
              "all_within": bad == 0, "rows": rows, "table": text}
    jpath = a.json or os.path.join(TOP, "docs", "results",
                                   "sim_validation_h100.json" if machine == "h100-x1" else f"sim_validation_{machine}.json")
    os.makedirs(os.path.dirname(os.path.abspath(jpath)), exist_ok=True)
    write_json(result, jpath)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    print(f"{PROG}: {sum(1 for r in rows if r.get('within'))} of {len(rows)} within {pct}; {jpath}", file=sys.stderr)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
