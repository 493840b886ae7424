# shellcheck shell=bash
# starpu_source.sh: where StarPU's source tarball comes from, for setup.sh and setup_sim.sh (sourced;
# needs $starpu_version, $cache and a die function).
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
