#!/usr/bin/env bash
# ship.sh [DIR [BUILD...]]: gathers what a GPU host without our -dev packages needs to run the
# programs built here: the programs and test programs of each BUILD folder (default build; e.g.
# `ship.sh ship build build-sm80` for gpu_check.sh's arch check; same paths under DIR), the
# shared libraries the host lacks (StarPU, jansson, FxT, libaio) and StarPU's trace and perf-model
# tools, into DIR (default ship/, git-ignored). On the host:
#     export LD_LIBRARY_PATH=$PWD/ship/lib:$LD_LIBRARY_PATH PATH=$PWD/ship/bin:$PATH
# Libraries the host has (CUDA, cuBLAS, NCCL, hwloc, OpenBLAS, libgomp) are not copied.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/ship}
builds=(build)
[ $# -lt 2 ] || builds=("${@:2}")
prefix=${STARPU_PREFIX:-${GPT50B_CACHE:-$HOME/.cache/gpt50b}/starpu-1.4.10}
mkdir -p "$out/lib" "$out/bin"
for lib in libstarpu-1.4.so.9 libstarpumpi-1.4.so.3 libjansson.so.4 libfxt.so.2 libaio.so.1; do
	# awk reads to the end: an early exit would kill ldconfig with SIGPIPE, failing under pipefail
	path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !p {p = $NF} END {print p}')
	[ -n "$path" ] || path=$prefix/lib/$lib
	[ -e "$path" ] && cp -L "$path" "$out/lib/$lib"
done
for tool in starpu_fxt_tool starpu_perfmodel_display starpu_machine_display; do
	cp "$prefix/bin/$tool" "$out/bin/"
done
(cd "$top" && for b in "${builds[@]}"; do
	find "$b/apps" "$b/tests" -type f -executable ! -path '*.p/*' -print0
done | xargs -0 -I{} install -D {} "$out/{}")
du -sh "$out"
