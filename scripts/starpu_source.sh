# shellcheck shell=bash
# starpu_source.sh: where StarPU's source tarball comes from and the project's patches to it, for
# setup.sh and setup_sim.sh (sourced; needs $starpu_version, $cache and a die function).
# shellcheck disable=SC2154 # starpu_version and cache are the caller's

# Debian's starpu source package into $1, without touching apt's configuration, from the first
# non-security mirror apt has.
apt_source_dir() {
	local dir=$1 uri
	uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] || die "no Debian mirror in the apt configuration: set STARPU_TARBALL to StarPU's release tarball"
	mkdir -p "$dir/lists/partial"
	echo "deb-src $uri sid main" >"$dir/sources.list"
	local o=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$dir/lists" -o APT::Sandbox::User=root)
	apt-get "${o[@]}" update -qq || die "apt-get update of the deb-src list failed (mirror $uri)"
	(cd "$dir" && apt-get "${o[@]}" source --download-only "starpu=$starpu_version+dfsg-2" >/dev/null 2>&1 ||
		apt-get "${o[@]}" source --download-only starpu >/dev/null) || die "apt-get source starpu failed (mirror $uri)"
	ls "$dir"/starpu_"$starpu_version"*.orig.tar.* | head -n 1
}

# The source tarball: $STARPU_TARBALL, else one that setup.sh left in the cache, else Debian's.
starpu_source() {
	local work=$1 found
	if [ -n "${STARPU_TARBALL:-}" ]; then
		case $STARPU_TARBALL in
		http://* | https://*)
			curl -fsSL -o "$work/starpu.tar.gz" "$STARPU_TARBALL" || die "could not download $STARPU_TARBALL"
			echo "$work/starpu.tar.gz"
			;;
		*) echo "$STARPU_TARBALL" ;;
		esac
		return
	fi
	found=$(find "$cache" -maxdepth 2 -name "starpu_$starpu_version*.orig.tar.*" -not -path "$work/*" 2>/dev/null | head -n 1)
	if [ -n "$found" ]; then
		echo "$found"
	else
		apt_source_dir "$work"
	fi
}

# Unpacks StarPU's source into a fresh $1 and prints the source folder.
starpu_unpack() {
	local work=$1 tarball src
	rm -rf "$work"
	mkdir -p "$work"
	tarball=$(starpu_source "$work")
	[ -f "$tarball" ] || die "StarPU source $tarball not found"
	tar -xf "$tarball" -C "$work"
	src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'starpu-*' | head -n 1)
	[ -n "$src" ] || die "no starpu-* folder in $tarball"
	echo "$src"
}

# The patches of scripts/patches/ a build of kind $1 (cuda, simgrid) gets, by file name:
# starpu-<version>-<kind>-*.patch, each saying why in its header. A build lists them in
# <prefix>/share/gpt50b-patches, so that a StarPU without them is built again.
starpu_patch_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/patches
starpu_patches() {
	local p
	for p in "$starpu_patch_dir"/starpu-"$starpu_version"-"$1"-*.patch; do
		[ -f "$p" ] && basename "$p"
	done
	return 0
}

# Applies the patches of kind $1 to the source folder $2 (the log in $3/patch.log).
starpu_apply_patches() {
	local p
	for p in $(starpu_patches "$1"); do
		patch -p1 -s -d "$2" <"$starpu_patch_dir/$p" >"$3/patch.log" 2>&1 || die "patch $p failed: see $3/patch.log"
	done
}

# Whether the StarPU installed under prefix $2 holds exactly the patches of kind $1.
starpu_patched() {
	diff -q <(starpu_patches "$1") "$2/share/gpt50b-patches" >/dev/null 2>&1
}

# Records in prefix $2 that its StarPU holds the patches of kind $1.
starpu_record_patches() {
	mkdir -p "$2/share"
	starpu_patches "$1" >"$2/share/gpt50b-patches"
}
