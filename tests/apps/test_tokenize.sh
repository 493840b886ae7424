#!/usr/bin/env bash
# test_tokenize.sh: the tokenize program's defaults and user errors.
#
# --vocab and --merges default to GPT-2's files in the cache scripts/setup.sh fills
# ($GPT50B_CACHE/gpt2/, else ~/.cache/gpt50b/gpt2/): the defaults give the bytes the explicit
# paths give, -o is --output, and a missing cache or output is one "tokenize: error:" line with
# exit 2 and no file. Exits 0 (pass), 1 (fail) or 77 (skip: no cache, run scripts/setup.sh).
#   usage: test_tokenize.sh PATH/TO/tokenize
set -u
TOKENIZE=${1:?usage: test_tokenize.sh PATH/TO/tokenize}
gpt2=${GPT50B_CACHE:-$HOME/.cache/gpt50b}/gpt2
[ -s "$gpt2/encoder.json" ] && [ -s "$gpt2/vocab.bpe" ] ||
    { echo "skip: no $gpt2/encoder.json (scripts/setup.sh fetches it)"; exit 77; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
HERE=$(cd "$(dirname "$0")" && pwd)
DATA="" # testlib.sh's tiny model reads no token file here
# shellcheck source=testlib.sh
. "$HERE/testlib.sh"
printf 'The quick brown fox jumps over the lazy dog.\nHello, world!\n' >"$W/in.txt"

"$TOKENIZE" --vocab "$gpt2/encoder.json" --merges "$gpt2/vocab.bpe" --output "$W/explicit.bin" \
    "$W/in.txt" >/dev/null || fail "explicit paths" "exit $?"
if "$TOKENIZE" -o "$W/default.bin" "$W/in.txt" >/dev/null && cmp -s "$W/explicit.bin" "$W/default.bin"; then
    ok "-o with the cache's BPE files by default gives the explicit paths' bytes"
else
    fail "defaults" "-o with default BPE files did not give the same token file"
fi

# expect_error WHAT KEYWORD ARGS...: exit 2, one "tokenize: error:" line naming KEYWORD, no output.
expect_error() {
    local what=$1 key=$2 rc
    shift 2
    env "$@" >"$W/out" 2>"$W/err"
    rc=$?
    if [ "$rc" -eq 2 ] && [ "$(wc -l <"$W/err")" -eq 1 ] && grep -q "^tokenize: error:.*$key" "$W/err" &&
        [ ! -e "$W/none.bin" ] && [ ! -e "$W/none.bin.tmp" ]; then
        ok "$what: exit 2, '$(cat "$W/err")'"
    else
        fail "$what" "exit $rc, stderr '$(cat "$W/err")'"
    fi
}
expect_error "missing cache" "scripts/setup.sh" GPT50B_CACHE="$W/nocache" "$TOKENIZE" -o "$W/none.bin" "$W/in.txt"
expect_error "no output" "-o/--output" "$TOKENIZE" "$W/in.txt"
expect_error "-o without a value" "needs a value" "$TOKENIZE" "$W/in.txt" -o

finish
