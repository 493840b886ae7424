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

# A model that trains in a fraction of a second on the CPU.
TINY=(--num-layers 2 --hidden-size 32 --num-attention-heads 2 --seq-length 32
    --max-position-embeddings 32 --micro-batch-size 2 --eval-iters 0 --data-path "$DATA")

# close WHAT A B RTOL: the losses and grad norms of metrics files A and B within RTOL (relative;
# 0: equal as written).
close() {
    local msg
    if msg=$(python3 "$CHECK" close "$2" "$3" "$4"); then ok "$1 ($msg)"; else fail "$1" "$msg"; fi
}
