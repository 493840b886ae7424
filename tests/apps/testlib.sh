# testlib.sh: what the shell tests of apps/ share, sourced after DATA (the token file) and CHECK
# (cli_check.py) are set: one "ok - ..." or "FAIL - ...: details" line per check, the count of
# failures and the exit status, the tiny model's flags, and the comparison of metrics files.

failures=0
ok() { echo "ok - $1"; }
fail() {
    echo "FAIL - $1: $2"
    failures=$((failures + 1))
}

# finish: exits 1 after a line counting the failures, or 0 when there were none.
finish() {
    if [ "$failures" -gt 0 ]; then
        echo "$failures check(s) failed"
        exit 1
    fi
    exit 0
}

# one_line_exit2 WHAT ARGS...: "$BENCH" ARGS exits 2 with one line on stderr (StarPU's own
# "[starpu..." warnings aside) that starts with "NAME: error: ", NAME being $BENCH's file name.
# Uses the caller's scratch folder $W.
one_line_exit2() {
    local what=$1 name lines rc
    shift
    name=$(basename "$BENCH")
    "$BENCH" "$@" >"$W/out" 2>"$W/err"
    rc=$?
    lines=$(grep -cv '^\[starpu' "$W/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -q "^$name: error: " "$W/err"; then
        ok "$what: exit 2, $(grep -v '^\[starpu' "$W/err")"
    else
        fail "$what" "exit $rc, $lines lines: $(cat "$W/err")"
    fi
}

# A model that trains in a fraction of a second on the CPU.
TINY=(--num-layers 2 --hidden-size 32 --num-attention-heads 2 --seq-length 32
    --max-position-embeddings 32 --micro-batch-size 2 --eval-iters 0 --data-path "$DATA")

# close WHAT A B RTOL: the losses and grad norms of metrics files A and B within RTOL (relative;
# 0: equal as written).
close() {
    local msg
    if msg=$(python3 "$CHECK" close "$2" "$3" "$4"); then ok "$1 ($msg)"; else fail "$1" "$msg"; fi
}
