#!/usr/bin/env bash
# test_sim.sh: the simulation variant's set-up and test (issue 15): StarPU on SimGrid
# (scripts/setup_sim.sh, idempotent: 8-10 min on 2 cores the first time), the build in
# GPT50B_SIM_BUILD (default build-sim/; configured here when absent), then its test suite: a few
# seconds of simulated gpt2-124m on h100-x1, checked against the GPU host's measured median (15%).
# Extra arguments go to `meson test`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GPT50B_SIM_BUILD:-$top/build-sim}
prefix=${STARPU_SIM_PREFIX:-${GPT50B_CACHE:-$HOME/.cache/gpt50b}/starpu-1.4.10-simgrid}
"$top/scripts/setup_sim.sh"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
[ -f "$build/build.ninja" ] ||
	meson setup "$build" "$top" -Dbuildtype=release -Dcuda=disabled -Dsimulation=true
ninja -C "$build"
exec meson test -C "$build" --print-errorlogs "$@"
