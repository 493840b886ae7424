#!/usr/bin/env python3
"""sim_models.py: the simulation's codelet models (StarPU perfmodel files, format 45).

    python3 scripts/sim_models.py summary [--models DIR] [--machine NAME] [--entries]
    python3 scripts/sim_models.py derive --to MACHINE [--from MACHINE] [--cpu-ratio X] [--force]
    python3 scripts/sim_models.py install CALIBRATION [--machine NAME] [--commit SHA]

The models live in sim/models/ (--models DIR; a folder with StarPU's layout, so that
STARPU_PERF_MODEL_DIR can point at a copy of it):

    sim/models/codelets/45/SYMBOL.MACHINE   one history model per codelet and machine, as StarPU
                                            writes it (SYMBOL is gpt50b_<codelet>, MACHINE is the
                                            machine file's name, used as STARPU_HOSTNAME)
    sim/models/MACHINE.json                 where that machine's files came from: the card, date,
                                            commit and configurations of the calibration, or the
                                            machine and ratios they were derived from

Only the compute codelets need files: the simulation build gives the collectives, the NVMe swap
tasks and CPU AdamW cost functions computed from the machine file (docs/simulation.md, section 5).

summary: per machine and codelet, each architecture's entries (one per footprint: a shape), how
many have fewer than STARPU_CALIBRATE_MINIMUM samples (--minimum, default the variable or 10:
StarPU's "calibrated"; a simulation uses such entries anyway, with a warning), the samples, the
range of mean durations and the best rate (the task's flops over its mean: TFLOP/s for GPU
codelets; for swap tasks the flops are bytes). --entries lists every entry.

derive: writes MACHINE's files from another machine's calibrated ones (default: the target's
"codelet_times_from"). The method, for each entry of each file:
  - CUDA entries: durations divided by a speed ratio of the target card over the source card,
      GEMM-bound codelets (symbols matching --gemm-symbols, default matmul and attention, whose
      flash kernels are matrix products too): gpu_gemm_rate_vs_h100 of the target over the
      source's (Cori's V100: 0.124 / 1.0, so 8.06x longer);
      every other codelet (LayerNorm, GELU, softmax-cross-entropy, casts, additions, sums of
      squares, GPU AdamW: memory-bound): gpu_hbm_GBps of the target over the source's
      (900 / 3350 = 0.269, 3.72x longer);
  - CPU entries: divided by --cpu-ratio (default 1: kept as calibrated; the CPU tasks that weigh,
      AdamW and the swap, have cost functions from the machine file instead).
  Durations are the entries' means and deviations (sums and sums of squares follow); footprints,
  sizes, flops and sample counts stay, so the target's tasks find the entries of the same shapes.
  Regression parameters, where a file has them, scale the same way (alpha, a and c, the
  coefficients, and the log sums). Each derived file starts with a comment saying so, and
  MACHINE.json records the ratios. A target file that was not derived is kept unless --force.

install: copies the codelet files of a calibration made by scripts/calibrate_sim.sh on the GPU
host (its OUTDIR, or the sim_calibration.tar.gz it leaves there) into the models folder, for the
machine it calibrated (--machine to check it), and writes MACHINE.json from its summary: card,
driver, date, commit (--commit when the calibration did not know it), configurations, the
figures it measured. Previous files of that machine are replaced. A calibrate_sim.sh run without
a GPU (card "none": a check of the script on CPU workers) is refused unless --force.

Python 3's standard library only. Bad input: one line on stderr and exit status 2.
"""
import argparse
import datetime
import io
import json
import math
import os
import re
import shutil
import sys
import tarfile
import tempfile

PROG = "sim_models.py"
VERSION = 45
TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_MODELS = os.path.join(TOP, "sim", "models")
GEMM_SYMBOLS = r"^gpt50b_(matmul|attention|flash_attention)_"
ARCH = {0: "cpu", 1: "cuda"}
DERIVED_MARK = "# derived by scripts/sim_models.py"


class ModelError(Exception):
    pass


# --- the file format (StarPU 1.4, src/core/perfmodel/perfmodel_history.c) --------------------

class Entry:
    """One history entry: a footprint (shape) and its measured durations in microseconds."""
    __slots__ = ("footprint", "size", "flops", "mean", "dev", "sum", "sum2", "n")

    def __init__(self, footprint, size, flops, mean, dev, sum_, sum2, n):
        self.footprint, self.size, self.flops = footprint, size, flops
        self.mean, self.dev, self.sum, self.sum2, self.n = mean, dev, sum_, sum2, n


class Impl:
    def __init__(self):
        self.reg = [0.0, 0.0, 0.0, 0.0, math.nan, math.nan, 0, 0, 0]  # sumlnx..beta, n, minx, maxx
        self.nl = [math.nan, math.nan, math.nan]  # a, b, c
        self.coeff = []  # multiple regression
        self.entries = []


class Comb:
    def __init__(self, devices):
        self.devices = devices  # [(type, devid, ncores)]
        self.impls = []

    def name(self):
        return "+".join(("cpu" + (f"*{c}" if c > 1 else "")) if t == 0 else f"{ARCH.get(t, 'type%d-' % t)}{d}"
                        for t, d, c in self.devices)


class Model:
    def __init__(self, comments=None):
        self.comments = comments or []  # lines before the version, kept by dump
        self.combs = []


def _num(s):
    return float(s)  # accepts nan, inf


def parse(text, path="model"):
    """A Model from a perfmodel file's text (format 45)."""
    lines = text.splitlines()
    comments = []
    for line in lines:
        if line.startswith("#") or not line.strip():
            comments.append(line)
        else:
            break
    # StarPU's own header is comments too; keep only what precedes its "####" banner
    keep = []
    for line in comments:
        if line.startswith("##################"):
            break
        keep.append(line)
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    pos = 0

    def take(what):
        nonlocal pos
        if pos >= len(body):
            raise ModelError(f"{path}: ends early, expected {what}")
        pos += 1
        return body[pos - 1]

    def take_int(what):
        s = take(what).split()
        try:
            return int(s[0])
        except (ValueError, IndexError):
            raise ModelError(f"{path}: expected {what}, got {' '.join(s)!r}")

    try:
        version = take_int("the version")
        if version != VERSION:
            raise ModelError(f"{path}: format version {version}, not {VERSION}")
        m = Model(keep)
        for _ in range(take_int("the number of combinations")):
            devices = [(take_int("a device type"), take_int("a device id"), take_int("a core count"))
                       for _ in range(take_int("the number of devices"))]
            c = Comb(devices)
            for _ in range(take_int("the number of implementations")):
                im = Impl()
                nentries = take_int("the number of entries")
                r = take("the regression line").split()
                if len(r) != 9:
                    raise ModelError(f"{path}: regression line has {len(r)} fields, not 9")
                im.reg = [_num(x) for x in r[:6]] + [int(r[6]), int(r[7]), int(r[8])]
                im.nl = [_num(x) for x in take("the non-linear line").split()]
                if len(im.nl) != 3:
                    raise ModelError(f"{path}: non-linear line has {len(im.nl)} fields, not 3")
                words = take("the coefficient count").split()
                ncoeff = int(words[0])
                coeff = words[1:]
                while len(coeff) < ncoeff:
                    coeff += take("coefficients").split()
                im.coeff = [_num(x) for x in coeff[:ncoeff]]
                for _ in range(nentries):
                    f = take("a history entry").split()
                    if len(f) == 8:
                        fp, size, flops, mean, dev, s, s2, n = f
                    elif len(f) == 7:
                        (fp, size, mean, dev, s, s2, n), flops = f, "0"
                    else:
                        raise ModelError(f"{path}: history entry with {len(f)} fields")
                    im.entries.append(Entry(int(fp, 16), int(size), _num(flops), _num(mean), _num(dev),
                                            _num(s), _num(s2), int(n)))
                c.impls.append(im)
            m.combs.append(c)
    except ValueError as e:
        raise ModelError(f"{path}: {e}")
    if pos != len(body):
        raise ModelError(f"{path}: {len(body) - pos} line(s) after the last combination")
    return m


def _e(x):
    return "nan" if isinstance(x, float) and math.isnan(x) else f"{x:e}"


def dump(m):
    """The file text, laid out as StarPU's dump_model_file writes it."""
    o = io.StringIO()
    for line in m.comments:
        o.write(line + "\n")
    o.write(f"##################\n# Performance Model Version\n{VERSION}\n\n")
    o.write(f"####################\n# COMBs\n# number of combinations\n{len(m.combs)}\n")
    for i, c in enumerate(m.combs):
        o.write(f"####################\n# COMB_{i}\n# number of types devices\n{len(c.devices)}\n")
        for d, (t, devid, ncores) in enumerate(c.devices):
            o.write(f"####################\n# DEV_{d}\n# device type (CPU - 0, CUDA - 1, OPENCL - 2, "
                    f"MPI_MS - 5, TCPIP_MS - 6)\n{t}\n")
            o.write(f"####################\n# DEV_{d}\n# device id \n{devid}\n")
            o.write(f"####################\n# DEV_{d}\n# number of cores \n{ncores}\n")
        o.write(f"##########\n# number of implementations\n{len(c.impls)}\n")
        for k, im in enumerate(c.impls):
            o.write(f"#####\n# Model for {c.name()}_impl{k} (Comb{i})\n# number of entries\n{len(im.entries)}\n")
            o.write("# sumlnx\tsumlnx2\t\tsumlny\t\tsumlnxlny\talpha\t\tbeta\t\tn\tminx\t\tmaxx\n")
            o.write("\t".join(f"{_e(x):<15}" for x in im.reg[:6]) + f"\t{im.reg[6]}\t{im.reg[7]:<15}\t{im.reg[8]:<15}\n")
            o.write("# a\t\tb\t\tc\n" + "\t".join(f"{_e(x):<15}" for x in im.nl) + "\n")
            if im.coeff:
                o.write("# multiple-regression-base\n" + f"{len(im.coeff)}\n"
                        + "\t".join(_e(x) for x in im.coeff) + "\n")
            else:
                o.write("# not multiple-regression-base\n0\n")
            o.write("# hash\t\tsize\t\tflops\t\tmean (us or J)\tdev (us or J)\tsum\t\tsum2\t\tn\n")
            for e in im.entries:
                o.write(f"{e.footprint:08x}\t{e.size:<15}\t" + "\t".join(
                    f"{_e(x):<15}" for x in (e.flops, e.mean, e.dev, e.sum, e.sum2)) + f"\t{e.n}\n")
            o.write("\n")
    return o.getvalue()


def scale_impl(im, f):
    """Multiplies every duration of an implementation by f."""
    for e in im.entries:
        e.mean *= f
        e.dev *= f
        e.sum *= f
        e.sum2 *= f * f
    sumlnx, sumlnx2, sumlny, sumlnxlny, alpha, beta, n = im.reg[:7]
    if n > 0:  # log-space sums of the linear regression ln y = ln alpha + beta ln x
        im.reg[2] = sumlny + n * math.log(f)
        im.reg[3] = sumlnxlny + sumlnx * math.log(f)
    im.reg[4] = alpha * f
    im.nl[0] *= f
    im.nl[2] *= f
    im.coeff = [c * f for c in im.coeff]


# --- the models folder -------------------------------------------------------------------------

def codelet_dir(models):
    return os.path.join(models, "codelets", str(VERSION))


def model_files(models, machine=None):
    """{machine: {symbol: path}} of a models folder."""
    d = codelet_dir(models)
    out = {}
    if not os.path.isdir(d):
        return out
    for f in sorted(os.listdir(d)):
        sym, dot, host = f.partition(".")
        if not dot or not sym or f.endswith("~") or (machine and host != machine):
            continue
        out.setdefault(host, {})[sym] = os.path.join(d, f)
    return out


def read_model(path):
    try:
        with open(path) as f:
            return parse(f.read(), path)
    except OSError as e:
        raise ModelError(str(e))


def adamw_cpu_rate(models, machine, workers):
    """cpu_adamw_GBps read from MACHINE's calibrated AdamW history: its CPU entries of at least 1 MB
    and 10 samples come from the CPU-offload calibration runs, whose update keeps all WORKERS CPU
    workers on AdamW at once; each gives 28 bytes per parameter (flops / 12 parameters, as
    adamw_insert counts them) over its mean, and the node's rate is the samples' weighted
    per-worker rate times WORKERS. (rate, entries, samples), or None without such entries."""
    path = model_files(models, machine).get(machine, {}).get("gpt50b_adamw")
    if not path:
        return None
    num = den = 0.0
    used = samples = 0
    for comb in read_model(path).combs:
        if any(t != 0 for t, _, _ in comb.devices):
            continue
        for im in comb.impls:
            for e in im.entries:
                if e.size >= 1 << 20 and e.n >= 10 and e.flops > 0 and e.mean > 0:
                    num += 28.0 * e.flops / 12.0 * e.n
                    den += e.mean * e.n
                    used += 1
                    samples += e.n
    if not den:
        return None
    return num / den / 1e3 * workers, used, samples


def provenance(models, machine):
    p = os.path.join(models, machine + ".json")
    try:
        with open(p) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ModelError(f"{p}: {e}")


def calibrate_minimum(arg):
    if arg is not None:
        return arg
    try:
        return int(os.environ.get("STARPU_CALIBRATE_MINIMUM", "10"))
    except ValueError:
        return 10


def describe(prov):
    if not prov:
        return "no provenance file"
    if prov.get("source") == "derived":
        r = prov.get("ratios", {})
        g = lambda k: f"{r[k]:.4g}" if isinstance(r.get(k), (int, float)) else "?"
        return (f"derived from {prov.get('from')} on {prov.get('date', '?')}: GEMM-bound CUDA durations "
                f"/ {g('gemm')}, other CUDA / {g('hbm')}, CPU / {g('cpu')}")
    return (f"calibrated on {prov.get('card', '?')} on {prov.get('date', '?')}, commit "
            f"{prov.get('commit', '?')}, configurations {', '.join(prov.get('configs', [])) or '?'}")


def cmd_summary(a):
    files = model_files(a.models, a.machine)
    if not files:
        raise ModelError(f"no codelet models{' for ' + a.machine if a.machine else ''} in "
                         f"{codelet_dir(a.models)}")
    minimum = calibrate_minimum(a.minimum)
    print(f"models in {codelet_dir(a.models)}; calibrated: at least {minimum} samples per entry")
    for host, syms in files.items():
        print(f"\n{host}: {len(syms)} codelets; {describe(provenance(a.models, host))}")
        print(f"  {'codelet':<30} {'arch':<8} {'entries':>7} {'<' + str(minimum):>5} {'samples':>11} "
              f"{'mean us, min..max':>23} {'TFLOP/s':>8}")
        tot = below = 0
        for sym, path in syms.items():
            m = read_model(path)
            for c in m.combs:
                for k, im in enumerate(c.impls):
                    es = im.entries
                    tot += len(es)
                    low = sum(e.n < minimum for e in es)
                    below += low
                    if not es:
                        print(f"  {sym:<30} {c.name():<8} {0:>7} {'':>5} {'':>11} "
                              f"{'(regression)' if not math.isnan(im.reg[4]) else '(empty)':>23}")
                        continue
                    rates = [e.flops / e.mean / 1e6 for e in es if e.mean > 0 and e.flops > 0]
                    ns = [e.n for e in es]
                    means = [e.mean for e in es]
                    rate = f"{max(rates):8.3g}" if rates else f"{'':>8}"
                    print(f"  {sym:<30} {c.name() + ('/%d' % k if k else ''):<8} {len(es):>7} {low:>5} "
                          f"{min(ns):>5}..{max(ns):<5} {min(means):>11.1f}..{max(means):<10.1f} {rate}")
                    if a.entries:
                        for e in es:
                            print(f"      {e.footprint:08x} size {e.size:>13} flops {e.flops:10.4g} "
                                  f"mean {e.mean:12.2f} us  dev {e.dev:10.2f}  n {e.n}")
        print(f"  {host}: {tot} entries, {below} with fewer than {minimum} samples")
    return 0


def load_machine_file(name):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sim_platform
    try:
        return sim_platform.load_machine(name), sim_platform.figure
    except sim_platform.MachineError as e:
        raise ModelError(str(e))


def cmd_derive(a):
    to, figure = load_machine_file(a.to)
    src_name = a.src or (to.get("codelet_times_from") or {}).get("value")
    if not src_name:
        raise ModelError(f"{to['name']} has no codelet_times_from: name the source with --from")
    src, _ = load_machine_file(src_name)
    try:
        gemm = figure(to, "gpu_gemm_rate_vs_h100") / figure(src, "gpu_gemm_rate_vs_h100")
        hbm = figure(to, "gpu_hbm_GBps") / figure(src, "gpu_hbm_GBps")
    except Exception as e:  # MachineError, or a zero figure
        raise ModelError(f"ratios of {to['name']} over {src['name']}: {e}")
    if not (gemm > 0 and hbm > 0 and a.cpu_ratio > 0):
        raise ModelError("ratios must be positive")
    files = model_files(a.models, src["name"]).get(src["name"], {})
    if not files:
        raise ModelError(f"no codelet models for {src['name']} in {codelet_dir(a.models)}: calibrate "
                         f"it first (scripts/calibrate_sim.sh, then {PROG} install)")
    gemm_re = re.compile(a.gemm_symbols)
    dest = codelet_dir(a.models)
    targets = {sym: os.path.join(dest, f"{sym}.{to['name']}") for sym in files}
    kept = [p for p in targets.values() if os.path.exists(p) and DERIVED_MARK not in open(p).read(4096)]
    if kept and not a.force:
        raise ModelError(f"{len(kept)} file(s) of {to['name']} were not derived (calibrated?), e.g. "
                         f"{kept[0]}: --force replaces them")
    counts = {"gemm": 0, "other": 0}
    for sym, path in files.items():
        m = read_model(path)
        kind = "gemm" if gemm_re.search(sym) else "other"
        counts[kind] += 1
        r = gemm if kind == "gemm" else hbm
        for c in m.combs:
            cuda = all(t == 1 for t, _, _ in c.devices)
            cpu = all(t == 0 for t, _, _ in c.devices)
            if not (cuda or cpu):
                raise ModelError(f"{path}: combination {c.name()} mixes architectures")
            for im in c.impls:
                scale_impl(im, 1.0 / (r if cuda else a.cpu_ratio))
        m.comments = [f"{DERIVED_MARK} from {os.path.basename(path)} for {to['name']}:",
                      f"# CUDA durations / {r:.6g} ({'GEMM-bound: gpu_gemm_rate_vs_h100' if kind == 'gemm' else 'memory-bound: gpu_hbm_GBps'}"
                      f" of {to['name']} over {src['name']}), CPU durations / {a.cpu_ratio:.6g}"]
        with open(targets[sym] + ".tmp", "w") as f:
            f.write(dump(m))
        os.replace(targets[sym] + ".tmp", targets[sym])
    prov = {"machine": to["name"], "source": "derived", "from": src["name"],
            "date": datetime.date.today().isoformat(),
            "ratios": {"gemm": gemm, "hbm": hbm, "cpu": a.cpu_ratio},
            "gemm_symbols": a.gemm_symbols,
            "method": "CUDA entries' durations divided by the GEMM ratio (gpu_gemm_rate_vs_h100, target over "
                      "source) for codelets matching gemm_symbols and by the HBM ratio (gpu_hbm_GBps, target "
                      "over source) for the others; CPU entries divided by the cpu ratio; footprints, sizes, "
                      "flops and sample counts kept (scripts/sim_models.py)",
            "files": len(files), "from_provenance": provenance(a.models, src["name"])}
    with open(os.path.join(a.models, to["name"] + ".json"), "w") as f:
        json.dump(prov, f, indent=1)
        f.write("\n")
    print(f"{PROG}: {len(files)} models of {src['name']} -> {to['name']} in {dest}: {counts['gemm']} GEMM-bound "
          f"(CUDA / {gemm:.4g}), {counts['other']} other (CUDA / {hbm:.4g}), CPU / {a.cpu_ratio:.4g}")
    return 0


def cmd_install(a):
    work = None
    src = a.calibration
    try:
        if os.path.isfile(src):
            work = tempfile.mkdtemp(prefix="sim_models.")
            try:
                with tarfile.open(src) as t:
                    members = [m for m in t.getmembers() if m.isfile() and not m.name.startswith("/")
                               and ".." not in m.name.split("/")]
                    t.extractall(work, members=members)
            except (tarfile.TarError, OSError) as e:
                raise ModelError(f"{src}: {e}")
            roots = [r for r, _, fs in os.walk(work) if "summary.json" in fs]
            if not roots:
                raise ModelError(f"{src}: no summary.json inside: not a calibrate_sim.sh output")
            src = roots[0]
        summ_path = os.path.join(src, "summary.json")
        try:
            with open(summ_path) as f:
                summ = json.load(f)
        except (OSError, ValueError) as e:
            raise ModelError(f"{summ_path}: {e}: not a calibrate_sim.sh output")
        machine = summ.get("machine")
        if summ.get("card") in (None, "", "none") and not a.force:
            raise ModelError(f"{src} was made without a GPU (card {summ.get('card')!r}): a check of the "
                             f"script, not a calibration of {machine}; --force installs it anyway")
        if a.machine and machine != a.machine:
            raise ModelError(f"{src} calibrated {machine}, not {a.machine}")
        files = model_files(os.path.join(src, "models"), machine).get(machine, {})
        if not files:
            raise ModelError(f"no codelet models for {machine} in {codelet_dir(os.path.join(src, 'models'))}")
        for path in files.values():
            read_model(path)  # parses, or says which file is broken
        dest = codelet_dir(a.models)
        os.makedirs(dest, exist_ok=True)
        for f in os.listdir(dest):
            if f.endswith("." + machine):
                os.remove(os.path.join(dest, f))
        for sym, path in files.items():
            shutil.copyfile(path, os.path.join(dest, f"{sym}.{machine}"))
        prov = {"machine": machine, "source": "calibrated", "card": summ.get("card"),
                "driver": summ.get("driver"), "date": summ.get("date"),
                "commit": a.commit or summ.get("commit"),
                "configs": [c for c, v in summ.get("configs", {}).items() if v.get("calibrated")],
                "calibrate_minimum": summ.get("calibrate_minimum"),
                "files": len(files), "calibration": summ}
        with open(os.path.join(a.models, machine + ".json"), "w") as f:
            json.dump(prov, f, indent=1)
            f.write("\n")
        print(f"{PROG}: {len(files)} models of {machine} ({describe(prov)}) -> {dest}")
        return 0
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help="models folder (default sim/models)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary", help="codelets, footprints, entries, calibrated or not")
    s.add_argument("--machine", help="only this machine's files")
    s.add_argument("--minimum", type=int, help="samples that make an entry calibrated "
                   "(default $STARPU_CALIBRATE_MINIMUM or 10)")
    s.add_argument("--entries", action="store_true", help="every entry")
    d = sub.add_parser("derive", help="a machine's files from another's")
    d.add_argument("--to", required=True, help="target machine (name or file)")
    d.add_argument("--from", dest="src", help="source machine (default: the target's codelet_times_from)")
    d.add_argument("--cpu-ratio", type=float, default=1.0, help="CPU speed of the target over the source")
    d.add_argument("--gemm-symbols", default=GEMM_SYMBOLS, help="regular expression of GEMM-bound codelets")
    d.add_argument("--force", action="store_true", help="replace the target's files even if not derived")
    i = sub.add_parser("install", help="a calibrate_sim.sh calibration into the models folder")
    i.add_argument("calibration", help="calibrate_sim.sh's OUTDIR or its sim_calibration.tar.gz")
    i.add_argument("--machine", help="expected machine name (check)")
    i.add_argument("--commit", help="the calibrated build's commit, if the calibration did not record it")
    i.add_argument("--force", action="store_true", help="install a calibration made without a GPU too")
    a = ap.parse_args(argv)
    try:
        return {"summary": cmd_summary, "derive": cmd_derive, "install": cmd_install}[a.cmd](a)
    except ModelError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # a reader such as head went away
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
