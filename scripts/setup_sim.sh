#!/usr/bin/env bash
# setup_sim.sh: prepares a Debian 12 machine for the simulation build of gpt50b (issue 15): StarPU
# 1.4.10 built on SimGrid, which runs the real schedulers over a simulated machine with task
# durations from performance models and no kernels (docs/simulation.md).
#
# 1. Installs the distro packages the StarPU build needs, SimGrid's libsimgrid-dev among them
#    (skipped when all are present).
# 2. Finds StarPU 1.4 built with SimGrid in its own cache prefix; when there is none, builds StarPU
#    1.4.10 from the same source as scripts/setup.sh (Debian's source package, a tarball that
#    setup.sh already fetched into the cache, or $STARPU_TARBALL, a path or URL of the release
#    tarball) with SimGrid and FxT into that prefix.
#
# The SimGrid build needs no CUDA toolkit and takes no CUDA option: StarPU's configure turns CUDA
# off in simulation mode and simulates CUDA workers itself (STARPU_USE_CUDA is not defined, so
# setup.sh's one-line CUDA 13 fix has nothing to patch). MPI is off: StarPU-MPI on SimGrid needs
# a static-only StarPU, smpicc and smpirun; the simulated ZeRO-3 runs as one process with as
# many simulated GPUs as the machine has (up to 16, as the CUDA build), so one collective task
# holds 2 buffers per simulated GPU and a token: 33 for the seed's 16 GPUs, hence 64 task buffers
# (STARPU_NMAXBUFS; setup.sh's 32 allow 15 local ranks, runtime/comm.h's COMM_MAX_LOCAL).
# Simulation forces the blocking drivers that setup.sh asks for. scripts/patches/starpu-*-simgrid-*
# are applied to the source (each says why; the progress patch makes a simulated task about 5
# times cheaper in real time) and listed in $prefix/share/gpt50b-patches, which a build must hold
# to be used.
#
# Environment: GPT50B_CACHE (default ~/.cache/gpt50b), STARPU_TARBALL, STARPU_SIM_PREFIX (use or
# build StarPU there; default $GPT50B_CACHE/starpu-1.4.10-simgrid). Idempotent: a second run finds
# the build and stops.
set -euo pipefail

cache=${GPT50B_CACHE:-$HOME/.cache/gpt50b}
starpu_version=1.4.10
prefix=${STARPU_SIM_PREFIX:-$cache/starpu-$starpu_version-simgrid}
mkdir -p "$cache"

say() { printf 'setup_sim: %s\n' "$*"; }
die() {
	printf 'setup_sim: error: %s\n' "$*" >&2
	exit 2
}
# StarPU's source: $STARPU_TARBALL, a tarball left in the cache, or Debian's source package
# shellcheck source=scripts/starpu_source.sh
. "$(dirname "$0")/starpu_source.sh"

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run as root to install packages"
	sudo_cmd=(sudo)
fi

# --- 1. distro packages ------------------------------------------------------------------------
# libsimgrid-dev: SimGrid 3.32 (Debian 12), which StarPU 1.4.10 supports (3.18 to 3.36 tested
# upstream); dpkg-dev: apt-get source; libfxt-dev: traces of simulated runs in virtual time. No
# hwloc: StarPU's configure turns it off in simulation mode (CPUs come from the platform file).
packages=(build-essential pkg-config dpkg-dev libfxt-dev libsimgrid-dev patch xz-utils)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi
pkg-config --exists simgrid || die "libsimgrid-dev is installed but pkg-config finds no simgrid.pc"

# --- 2. StarPU on SimGrid ----------------------------------------------------------------------
# A StarPU this build can use: 1.4, simulation mode, FxT, no real CUDA, room for 16 simulated GPUs
# (the Cori node pair; StarPU's docs ask for the same --enable-maxcudadev as the calibrating build)
# and for a 16-rank collective's 33 buffers.
starpu_sim_suitable() {
	local conf=$prefix/include/starpu/1.4/starpu_config.h
	PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --atleast-version=1.4 starpu-1.4 2>/dev/null || return 1
	grep -qs '#define STARPU_SIMGRID 1' "$conf" &&
		grep -qs '#define STARPU_USE_FXT 1' "$conf" &&
		! grep -qs '#define STARPU_USE_CUDA 1' "$conf" &&
		grep -qs '#define STARPU_MAXCUDADEVS 16' "$conf" &&
		grep -qs '#define STARPU_NMAXBUFS 64' "$conf" &&
		starpu_patched simgrid "$prefix"
}

build_starpu_sim() {
	local work=$prefix.build src
	src=$(starpu_unpack "$work")
	starpu_apply_patches simgrid "$src" "$work"
	say "building StarPU $starpu_version with SimGrid $(pkg-config --modversion simgrid) into $prefix (a few minutes)"
	(cd "$src" && nice ./configure --prefix="$prefix" --enable-simgrid --disable-cuda --enable-maxcudadev=16 \
		--with-fxt --disable-mpi --enable-maxcpus=256 --enable-maxbuffers=64 \
		--disable-opencl --disable-build-tests --disable-build-examples --disable-fortran \
		--disable-socl --disable-starpupy --disable-starpufft --disable-build-doc --disable-hdf5 \
		>"$work/configure.log" 2>&1) || die "StarPU configure failed: see $work/configure.log"
	(cd "$src" && nice make -j"$(nproc)" >"$work/make.log" 2>&1 && make install >>"$work/make.log" 2>&1) ||
		die "StarPU build failed: see $work/make.log"
	starpu_record_patches simgrid "$prefix"
	rm -rf "$src"
}

if starpu_sim_suitable; then
	say "using StarPU with SimGrid from $prefix"
else
	start=$(date +%s)
	build_starpu_sim
	starpu_sim_suitable || die "StarPU at $prefix is not a SimGrid build with FxT, 16 simulated GPUs, 64 task buffers and scripts/patches applied: see $prefix.build/configure.log"
	say "built StarPU with SimGrid in $(($(date +%s) - start)) s"
fi
say "ready: PKG_CONFIG_PATH=$prefix/lib/pkgconfig (starpu-1.4, simulation mode)"
