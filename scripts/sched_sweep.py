#!/usr/bin/env python3
"""sched_sweep.py: runs gpt50b under several StarPU scheduling policies and knob settings and
tabulates iteration time, worker busy share, NVMe bandwidth, peak memory per tier and loss.

    python3 scripts/sched_sweep.py [--gpt50b build/apps/gpt50b] [--policies default,eager,lws]
        [--knobs STARPU_SCHED_BETA=0,1,4] [--knobs STARPU_NCPU=1,2] [--iters 6]
        [--out sweep.json] [--timeout 600] [--] GPT50B_FLAGS...

First one calibration run (STARPU_CALIBRATE=1, STARPU_SCHED=dmda) fills the history-based perf
models gpt50b_<op> under $STARPU_HOME/.starpu/sampling, so that the model-based policies (dm*,
heft, heteroprio) are measured with models rather than with their calibration phase. Then one run
per policy, and one per knob value with the knob varied alone against the first policy
('default': gpt50b's own choice, STARPU_SCHED unset). Each run gets a copy of os.environ without
STARPU_SCHED / STARPU_CALIBRATE, plus its setting, STARPU_SILENT=1, STARPU_PROFILING=1 and
STARPU_WORKER_STATS=1: StarPU then prints each worker's time split at shutdown, from which the
busy share (executing / total) of the compute workers (CUDA ones if any, else CPU ones) comes.
Those totals span the whole process, start-up included, so the share is a lower bound on the
share during the iterations. Peak memory per tier: the GPU's (the largest memory.used that
`nvidia-smi -lms 200` reported during the run, CUDA context included; n/a without nvidia-smi), the
process's peak RSS, the pinned pool and the NVMe swap files (their sizes, from the run's log).
Standard library only. See docs/tuning.md.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_POLICIES = "default,eager,lws,peager,dmda,dmdas,dmdar,heteroprio,modular-eager,modular-heft"
CLEARED = ("STARPU_SCHED", "STARPU_CALIBRATE", "STARPU_WORKER_STATS_FILE")


class Usage(argparse.ArgumentParser):
    def error(self, message):
        print(f"sched_sweep.py: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def usage_fail(message):
    print(f"sched_sweep.py: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    p = Usage(description=__doc__.split("\n\n")[0], allow_abbrev=False,
              formatter_class=argparse.RawDescriptionHelpFormatter,
              epilog="Flags this script does not know, and everything after --, go to gpt50b.")
    p.add_argument("--gpt50b", default="build/apps/gpt50b", help="the program (%(default)s)")
    p.add_argument("--policies", default=DEFAULT_POLICIES,
                   help="comma-separated STARPU_SCHED values; 'default' leaves it unset "
                        "(%(default)s)")
    p.add_argument("--knobs", action="append", default=[], metavar="VAR=V1,V2",
                   help="an environment variable and its values, varied alone against the first "
                        "policy; repeatable")
    p.add_argument("--iters", type=int, default=6, help="iterations per run (%(default)s)")
    p.add_argument("--out", default="sweep.json", help="JSON file (%(default)s)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run (%(default)s)")
    ours, theirs = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    a, unknown = p.parse_known_args(ours)
    a.flags = unknown + theirs
    a.policies = [s.strip() for s in a.policies.split(",") if s.strip()]
    if not a.policies:
        p.error("--policies: name at least one policy")
    knobs = []
    for k in a.knobs:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", k)
        values = [v.strip() for v in m.group(2).split(",")] if m else []
        if not m or not all(values):
            p.error(f"--knobs '{k}': write VAR=V1,V2,... (e.g. STARPU_NCPU=1,2)")
        knobs.append((m.group(1), values))
    a.knobs = knobs
    if a.iters < 2:
        p.error(f"--iters {a.iters}: need at least 2 (the first iteration is not timed)")
    if a.timeout <= 0:
        p.error(f"--timeout {a.timeout}: must be positive")
    if not (os.path.isfile(a.gpt50b) and os.access(a.gpt50b, os.X_OK)):
        p.error(f"--gpt50b {a.gpt50b}: not an executable file; build it (ninja -C build) or "
                "pass its path")
    return a


def base_env():
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(STARPU_SILENT="1", STARPU_PROFILING="1", STARPU_WORKER_STATS="1")
    return env


def available_policies(gpt50b, flags):
    """STARPU_SCHED=help makes StarPU list its policies on stdout at start-up; an empty set means
    the listing could not be read and no policy is skipped. This zero-iteration run also checks
    the flags: gpt50b's exit code 2 ends the sweep before any calibration."""
    env = base_env()
    env["STARPU_SCHED"] = "help"
    try:
        r = subprocess.run([gpt50b] + flags + ["--train-iters", "0"], env=env, timeout=120,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if r.returncode == 2:
        last = [line for line in r.stdout.splitlines() if line.strip()]
        usage_fail(f"gpt50b rejected the flags {' '.join(flags)}: "
                   f"{last[-1] if last else 'exit 2'}")
    listing = r.stdout.split("can be set to one of the following strings:", 1)
    if len(listing) < 2:
        return set()
    return {m.group(1) for m in re.finditer(r"^(\S+)\s+->", listing[1], re.M)}


def gpu_monitor(path):
    """nvidia-smi printing every GPU's memory.used (MiB) every 200 ms into path, or None."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        with open(path, "w") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(["nvidia-smi", "--query-gpu=memory.used",
                                     "--format=csv,noheader,nounits", "-lms", "200"],
                                    stdout=out, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def gpu_peak_mb(mon, path):
    """The largest memory.used sample of one GPU (MiB -> MB), None without samples."""
    if mon is None:
        return None
    mon.terminate()
    mon.wait()
    with open(path) as f:
        samples = [int(x) for x in re.findall(r"^\s*(\d+)", f.read(), re.M)]
    return max(samples) * 1.048576 if samples else None


def run_once(gpt50b, flags, iters, setting, timeout):
    """Runs gpt50b once; returns (returncode or None on timeout, metrics lines, stdout, stderr,
    peak RSS in MB, peak GPU memory in MB or None). os.wait4 gives this child's own rusage,
    unlike RUSAGE_CHILDREN's maximum over every child so far."""
    env = base_env()
    env.update(setting)
    with tempfile.TemporaryDirectory(prefix="sched_sweep.") as tmp:
        metrics = os.path.join(tmp, "metrics.jsonl")
        out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        cmd = [gpt50b] + flags + ["--train-iters", str(iters), "--metrics", metrics]
        mon = gpu_monitor(os.path.join(tmp, "gpu"))
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, start_new_session=True)
            deadline, rc, rss = time.monotonic() + timeout, None, None
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    rc, rss = os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024
                    break
                if time.monotonic() > deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    os.wait4(proc.pid, 0)
                    break
                time.sleep(0.05)
            proc.returncode = rc if rc is not None else -signal.SIGKILL
        gpu = gpu_peak_mb(mon, os.path.join(tmp, "gpu"))
        rows = []
        if os.path.exists(metrics):
            with open(metrics) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        with open(out_path, errors="replace") as f:
            stdout = f.read()
        with open(err_path, errors="replace") as f:
            stderr = f.read()
    return rc, rows, stdout, stderr, rss, gpu


def parse_worker_stats(stderr):
    """StarPU 1.4's STARPU_WORKER_STATS=1 summary (profiling_helpers.c): per worker a name line
    ('CPU 0', 'CUDA 0 (...)'), '\\tN task(s)' and, with STARPU_PROFILING=1, '\\ttime split: total
    T ms = executing: E ms + callback: C ms + waiting: W ms + sleeping: S ms + scheduling: X ms
    + overhead O ms'."""
    block = stderr.split("Worker stats:", 1)
    if len(block) < 2:
        return []
    workers = []
    for line in block[1].split("#---------------------", 1)[0].splitlines():
        if not line.strip() or line.startswith("Global"):
            continue
        if not line.startswith("\t"):
            workers.append({"name": line.strip(), "kind": line.split()[0]})
        elif workers and (m := re.match(r"\t(\d+) task\(s\)", line)):
            workers[-1]["tasks"] = int(m.group(1))
        elif workers and line.startswith("\ttime split:"):
            for key, val in re.findall(r"(total|executing|callback|waiting|sleeping|scheduling|"
                                       r"overhead):? ([\d.]+) ms", line):
                workers[-1][f"{key}_ms"] = float(val)
    return workers


def busy_share(workers):
    """Executing over total time of the compute workers: the CUDA ones when there are any."""
    kind = "CUDA" if any(w["kind"] == "CUDA" for w in workers) else "CPU"
    timed = [w for w in workers if w["kind"] == kind and w.get("total_ms")]
    if not timed:
        return None, kind
    return sum(w["executing_ms"] for w in timed) / sum(w["total_ms"] for w in timed), kind


def measure(args, label, policy, knob, setting, calibrating=False):
    rc, rows, stdout, stderr, rss, gpu = run_once(args.gpt50b, args.flags, args.iters, setting,
                                                  args.timeout)
    run = {"setting": label, "policy": policy, "knob": knob, "env": setting, "returncode": rc,
           "peak_rss_mb": rss, "peak_gpu_mb": gpu}
    pool = re.search(r"> pinned host pool: ([\d.]+) GB", stdout)
    run["pinned_mb"] = float(pool.group(1)) * 1e3 if pool else None
    nv = re.search(r"> optimizer state: .*?, \d+ tensors \(([\d.]+) GB\) on NVMe", stdout)
    run["nvme_gb"] = float(nv.group(1)) if nv else None
    m = re.search(r"> StarPU [\d.]+, scheduler (\S+), (\d+) CPU workers, (\d+) CUDA workers, "
                  r"device (.*)", stdout)
    if m:
        run.update(scheduler=m.group(1).rstrip(","), cpu_workers=int(m.group(2)),
                   cuda_workers=int(m.group(3)), device=m.group(4).strip())
    if rc is None:
        run["status"] = f"timed out after {args.timeout:g} s"
    elif rc != 0:
        last = [line for line in stderr.splitlines() if line.strip()]
        run["status"] = f"failed (exit {rc}): {last[-1][:160] if last else 'no message'}"
    elif len(rows) < args.iters:
        run["status"] = f"only {len(rows)} of {args.iters} iterations in --metrics"
    else:
        run["status"] = "ok"
    times = [r["elapsed_ms"] for r in rows[1:]]
    run["iteration_ms"] = [r["elapsed_ms"] for r in rows]
    run["losses"] = [r["loss"] for r in rows]
    run["median_ms"] = statistics.median(times) if times else None
    run["min_ms"] = min(times) if times else None
    # the run's own mean after the first iteration, from the end of the first optimizer step to
    # the end of the last: with the optimizer on CPU workers an iteration's elapsed_ms ends before
    # its AdamW does
    d = re.search(r"([\d.]+) ms per iteration after the first", stdout)
    run["mean_ms"] = float(d.group(1)) if d else None
    run["final_loss"] = rows[-1]["loss"] if rows else None
    run["workers"] = parse_worker_stats(stderr)
    run["busy_share"], run["busy_kind"] = busy_share(run["workers"])
    n = re.search(r"> NVMe optimizer traffic: ([\d.]+) GB read, ([\d.]+) GB written", stdout)
    run["nvme_gb_per_iter"] = float(n.group(1)) + float(n.group(2)) if n else None
    run["nvme_gb_s"] = run["nvme_gb_per_iter"] / (run["mean_ms"] / 1e3) \
        if n and run["mean_ms"] else None
    if not calibrating and run["status"] == "ok" and m and policy not in ("default", None) \
            and run.get("scheduler") != policy:
        run["status"] = f"ok, but StarPU ran {run['scheduler']}"
    return run


def machine():
    info = {"hostname": platform.node(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "gpu": None}
    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        if names:
            info["cpu"] = names[0]
    except OSError:
        pass
    if shutil.which("nvidia-smi"):
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               timeout=30)
            info["gpu"] = ", ".join(l.strip() for l in r.stdout.splitlines() if l.strip()) or None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return info


def fmt(v, spec, missing="n/a"):
    return missing if v is None else format(v, spec)


def loss_note(run, ref):
    """Compares the whole loss curve with the reference run's: a schedule may only change the
    summation order of commutative accumulations, so differences are reported, not failed."""
    if run["final_loss"] is None or ref is None:
        return "n/a"
    if run is ref:
        return "reference"
    a, b = run["losses"], ref["losses"]
    diff = max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) else float("inf")
    run["loss_max_abs_diff"] = diff
    return "same" if diff == 0 else f"DIFFERS (max {diff:.3g})"


def table(runs):
    ok = [r for r in runs if r["status"].startswith("ok")]
    ref = ok[0] if ok else None
    lines = ["| setting | scheduler | mean ms | median ms | min ms | busy share | NVMe GB/s "
             "| peak GPU MB | peak RSS MB | pinned MB | NVMe GB | final loss | loss vs first "
             "| status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        r["loss_vs_first"] = loss_note(r, ref)
        busy = "n/a" if r["busy_share"] is None else f"{100 * r['busy_share']:.0f}% {r['busy_kind']}"
        lines.append(f"| {r['setting']} | {r.get('scheduler', '-')} | {fmt(r['mean_ms'], '.1f')} "
                     f"| {fmt(r['median_ms'], '.1f')} "
                     f"| {fmt(r['min_ms'], '.1f')} | {busy} | {fmt(r['nvme_gb_s'], '.2f')} "
                     f"| {fmt(r['peak_gpu_mb'], '.0f')} | {fmt(r['peak_rss_mb'], '.0f')} "
                     f"| {fmt(r['pinned_mb'], '.0f')} | {fmt(r['nvme_gb'], '.3f')} "
                     f"| {fmt(r['final_loss'], '.6f')} "
                     f"| {r['loss_vs_first']} | {r['status']} |")
    return "\n".join(lines)


def main(argv):
    args = parse_args(argv)
    known = available_policies(args.gpt50b, args.flags)
    print(f"calibrating performance models: STARPU_SCHED=dmda STARPU_CALIBRATE=1, {args.iters} "
          f"iterations, models gpt50b_<op> in "
          f"{os.path.join(os.environ.get('STARPU_HOME', os.path.expanduser('~')), '.starpu', 'sampling')}",
          flush=True)
    cal = measure(args, "calibration (dmda)", "dmda", None,
                  {"STARPU_SCHED": "dmda", "STARPU_CALIBRATE": "1"}, calibrating=True)
    print(f"calibration: {cal['status']}", flush=True)

    plan = [(p, p, None, {} if p == "default" else {"STARPU_SCHED": p}) for p in args.policies]
    base = args.policies[0]
    for var, values in args.knobs:
        for v in values:
            setting = dict(plan[0][3], **{var: v})
            plan.append((f"{base} + {var}={v}", base, var, setting))
    runs = []
    for label, policy, knob, setting in plan:
        if known and policy != "default" and policy not in known:
            print(f"note: {policy}: not available on this StarPU (STARPU_SCHED=help does not "
                  "list it), skipped", flush=True)
            runs.append({"setting": label, "policy": policy, "knob": knob, "env": setting,
                         "status": "not available on this StarPU", "returncode": None,
                         "iteration_ms": [], "losses": [], "median_ms": None, "min_ms": None, "mean_ms": None,
                         "final_loss": None, "workers": [], "busy_share": None,
                         "busy_kind": None, "nvme_gb_per_iter": None, "nvme_gb_s": None,
                         "peak_rss_mb": None, "peak_gpu_mb": None, "pinned_mb": None,
                         "nvme_gb": None})
            continue
        print(f"running {label} ...", flush=True)
        runs.append(measure(args, label, policy, knob, setting))
    print()
    print(table(runs))
    result = {"machine": machine(), "gpt50b": os.path.abspath(args.gpt50b),
              "gpt50b_flags": args.flags, "iters": args.iters, "timeout_s": args.timeout,
              "starpu_home": os.environ.get("STARPU_HOME", os.path.expanduser("~")),
              "inherited_starpu_env": {k: v for k, v in base_env().items()
                                       if k.startswith("STARPU_")},
              "available_policies": sorted(known), "calibration": cal, "runs": runs}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
