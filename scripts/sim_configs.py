#!/usr/bin/env python3
"""sim_configs.py: reads scripts/sim_configs.txt, the simulation's validation configurations.

    python3 scripts/sim_configs.py [--file F] list            NAME CAL ITERS, one a line
    python3 scripts/sim_configs.py [--file F] shell [NAME...]  for scripts/calibrate_sim.sh

The file's format is in its header. `shell` prints one line per configuration (all, or those
named, in the file's order): NAME, CAL, ITERS, the environment words and the gpt50b flags,
separated by '|' (not a blank: `read` would merge an empty field with the next), the words within
a field by spaces. As a module: load(path) gives the
configurations, gpt50b_args(config, iters, metrics, data, nvme) the full argument list.
Bad input: one line on stderr and exit status 2.
"""
import argparse
import os
import re
import sys

PROG = "sim_configs.py"
DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim_configs.txt")
ADDED = ("--train-iters", "--metrics", "--data-path", "--eval-iters", "--log-interval")
NVME = "@NVME@"


class ConfigError(Exception):
    pass


class Config:
    def __init__(self, name, cal, iters, env, flags, line):
        self.name, self.cal, self.iters, self.env, self.flags, self.line = name, cal, iters, env, flags, line

    def uses_nvme(self):
        return NVME in self.flags


def load(path=None):
    path = path or DEFAULT
    try:
        with open(path) as f:
            raw = f.read().splitlines()
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}")
    lines, cur, start = [], "", 0
    for i, line in enumerate(raw, 1):
        if not cur and (line.lstrip().startswith("#") or not line.strip()):
            continue
        if not cur:
            start = i
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        lines.append((start, cur + line))
        cur = ""
    if cur:
        lines.append((start, cur))
    out, seen = [], set()
    for n, line in lines:
        words = line.split()
        where = f"{path}:{n}"
        if len(words) < 3:
            raise ConfigError(f"{where}: expected NAME CAL ITERS [VAR=value ...] flags")
        name, cal, iters = words[:3]
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ConfigError(f"{where}: name {name!r}: letters, digits, '.', '_' and '-' only")
        if name in seen:
            raise ConfigError(f"{where}: {name} twice")
        seen.add(name)
        try:
            cal, iters = int(cal), int(iters)
        except ValueError:
            raise ConfigError(f"{where}: CAL and ITERS must be whole numbers, not {cal} {iters}")
        if cal < 0 or iters < 0 or cal + iters == 0:
            raise ConfigError(f"{where}: CAL and ITERS must be >= 0, one of them > 0")
        if iters == 1:
            raise ConfigError(f"{where}: ITERS 1 leaves no iteration after the first to compare")
        env, flags = [], []
        if "|" in line:
            raise ConfigError(f"{where}: '|' is not allowed")
        for w in words[3:]:
            if not flags and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", w):
                env.append(w)
            else:
                flags.append(w)
        bad = [f for f in flags if f.split("=")[0] in ADDED]
        if bad:
            raise ConfigError(f"{where}: {bad[0]}: the scripts add {', '.join(ADDED)}")
        out.append(Config(name, cal, iters, env, flags, n))
    if not out:
        raise ConfigError(f"{path}: no configuration")
    return out


def select(configs, names):
    if not names:
        return configs
    known = {c.name: c for c in configs}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(f"unknown configuration {missing[0]}: {', '.join(known)}")
    return [c for c in configs if c.name in names]


def gpt50b_args(c, iters, metrics, data, nvme=None):
    if c.uses_nvme() and not nvme:
        raise ConfigError(f"{c.name}: needs a swap folder for {NVME}")
    flags = [nvme if f == NVME else f for f in c.flags]
    return flags + ["--train-iters", str(iters), "--eval-iters", "0", "--log-interval", "1",
                    "--data-path", data, "--metrics", metrics]


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--file", default=DEFAULT)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    s = sub.add_parser("shell")
    s.add_argument("names", nargs="*")
    a = ap.parse_args(argv)
    try:
        configs = load(a.file)
        if a.cmd == "list":
            for c in configs:
                print(f"{c.name}\t{c.cal}\t{c.iters}")
        else:
            for c in select(configs, a.names):
                print("|".join([c.name, str(c.cal), str(c.iters), " ".join(c.env), " ".join(c.flags)]))
    except ConfigError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
