#!/usr/bin/env bash
# test_faults.sh: the fault-injection suite. Each fault is injected into the real program on the
# tiny CPU model, then the run is resumed from what the fault left; a fault is survived when the
# resume trains exactly as an uninterrupted run (the metrics, bit for bit), nothing half-written
# is left beside the checkpoint, and the faulty run said what happened in at most one line of
# stderr. Faults: a crash (SIGKILL) before each file-system step of a save, with RENAME_EXCHANGE
# and with the two-rename fallback (fault_shim.so, LD_PRELOAD); kill -9 at random steps of saving
# and at random points of training (seeded); SIGINT and SIGTERM, a second SIGINT; two runs on one
# --save or --nvme-path; a full --save folder, an --nvme-path folder full at start or filled
# mid-run (small tmpfs mounts, root only); a flipped byte and a truncated block in the swap files;
# kill -9 inside the disk probe of --nvme-resident-fraction auto.
# Prints one "ok"/"FAIL" line per fault and a table of faults tried and survived; exits 0, 1 or
# 77 (no data). A few minutes on 2 shared cores.
#
#   usage: test_faults.sh PATH/TO/gpt50b PATH/TO/libfault_shim.so
set -u

GPT50B=${1:?usage: test_faults.sh PATH/TO/gpt50b PATH/TO/libfault_shim.so}
SHIM=${2:?usage: test_faults.sh PATH/TO/gpt50b PATH/TO/libfault_shim.so}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=${GPT50B_TOP:-$(cd "$HERE/../.." && pwd)}
DATA=$TOP/data/brown.bin
CHECK=$TOP/tests/apps/cli_check.py
if [ ! -f "$DATA" ]; then
    echo "skip: $DATA is missing: run scripts/setup.sh"
    exit 77
fi
export STARPU_NCUDA=0 STARPU_SILENT=1
W=$(mktemp -d)
trap 'umount "$W/fs" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W" || exit 1
# shellcheck source=../apps/testlib.sh
. "$TOP/tests/apps/testlib.sh"

declare -A tried survived
order=()
# outcome FAULT OK DETAIL: counts one try of FAULT, survived when OK is 0.
outcome() {
    [ -z "${tried[$1]+x}" ] && order+=("$1") && tried[$1]=0 && survived[$1]=0
    tried[$1]=$((tried[$1] + 1))
    if [ "$2" -eq 0 ]; then survived[$1]=$((survived[$1] + 1)); else fail "$1" "$3"; fi
}

ITERS=6
# A schedule that does not depend on --train-iters, so that runs of any length train alike.
TINY+=(--lr-decay-iters 200 --lr-warmup-iters 4)
# crash ARGS...: a run expected to die by a signal, quietly (no "Killed" line from the shell).
crash() {
    "$@" >/dev/null 2>&1 &
    wait $! 2>/dev/null
}
# The uninterrupted run every resume is compared with.
"$GPT50B" "${TINY[@]}" --train-iters 20 --metrics ref.jsonl >/dev/null 2>&1 || {
    echo "FAIL - the uninterrupted run failed"
    exit 1
}
python3 "$CHECK" fields ref.jsonl >ref.txt

# resume_check CK LAST: trains to LAST from checkpoint CK (from scratch when CK is missing) with
# --save CK; prints why not when the metrics differ from the uninterrupted run's, leftovers remain
# beside CK or stderr has more than one line. Returns 0 when all holds.
resume_check() {
    local ck=$1 last=$2 load=() got want n
    # --load when a complete checkpoint is there or beside it (a crash between the fallback's
    # renames); else (killed in the first save) the resume starts from scratch
    [ -n "$(ls "$ck"/config.json "$ck".tmp.*/config.json "$ck".old.*/config.json 2>/dev/null)" ] &&
        load=(--load "$ck")
    rm -f res.jsonl
    if ! "$GPT50B" "${TINY[@]}" --train-iters "$last" "${load[@]}" --save "$ck" --metrics res.jsonl \
        >res.out 2>res.err; then
        echo "the resume failed: $(tr '\n' ' ' <res.err)"
        return 1
    fi
    got=$(python3 "$CHECK" fields res.jsonl)
    n=$(wc -l <<<"$got")
    want=$(head -n "$last" ref.txt | tail -n "$n")
    if [ "$got" != "$want" ]; then
        echo "the resume differs from the uninterrupted run: $(diff <(echo "$want") <(echo "$got") | head -n 3 | tr '\n' ' ')"
        return 1
    fi
    if [ -n "$(ls -d "$ck".* 2>/dev/null)" ]; then
        echo "left behind: $(ls -d "$ck".* | tr '\n' ' ')"
        return 1
    fi
    if [ "$(wc -l <res.err)" -gt 1 ]; then
        echo "the resume's stderr has $(wc -l <res.err) lines: $(tr '\n' '|' <res.err)"
        return 1
    fi
}

# --- 1. a crash before each file-system step of a save -------------------------------------------
# The save at iteration 3 of a run resumed from a checkpoint of iteration 2, killed before its
# step N for every N (first counted by a run that is not killed).
"$GPT50B" "${TINY[@]}" --train-iters 2 --save "$W/ck2" >/dev/null 2>&1 || fail "checkpoint at 2" "failed"
for mode in exchange fallback; do
    no_exchange=0
    [ "$mode" = fallback ] && no_exchange=1
    rm -rf ck ck.* steps.log
    cp -a ck2 ck
    FAULT_PATH=$W/ck FAULT_LOG=$W/steps.log FAULT_NO_EXCHANGE=$no_exchange LD_PRELOAD=$SHIM \
        "$GPT50B" "${TINY[@]}" --train-iters 3 --load "$W/ck" --save "$W/ck" >/dev/null 2>&1
    nsteps=$(wc -l <steps.log)
    [ "$nsteps" -ge 10 ] || fail "crash between save steps ($mode)" "only $nsteps steps counted"
    # the steps before the switch are the same in both modes: the fallback's from the switch on
    from=1
    [ "$mode" = fallback ] && from=$(grep -n ' exchange ' steps.log | cut -d: -f1)
    for n in $(seq "$from" "$nsteps"); do
        rm -rf ck ck.*
        cp -a ck2 ck
        FAULT_PATH=$W/ck FAULT_AT=$n FAULT_NO_EXCHANGE=$no_exchange LD_PRELOAD=$SHIM \
            crash "$GPT50B" "${TINY[@]}" --train-iters 3 --load "$W/ck" --save "$W/ck"
        rc=$?
        step=$(sed -n "${n}p" steps.log | cut -d' ' -f2-3)
        if [ "$rc" -ne 137 ]; then
            outcome "crash before each save step ($mode)" 1 "step $n ($step): exit $rc, not killed"
            continue
        fi
        why=$(resume_check "$W/ck" 5)
        outcome "crash before each save step ($mode)" $? "step $n ($step): $why"
    done
done

# --- 2. kill -9 at random steps of saving and random points of training --------------------------
for seed in 1 2 3; do
    RANDOM=$seed
    rm -rf ck ck.*
    n=$((RANDOM % 150 + 1)) # of about 150 steps: six saves
    FAULT_PATH=$W/ck FAULT_AT=$n LD_PRELOAD=$SHIM \
        crash "$GPT50B" "${TINY[@]}" --train-iters $ITERS --save "$W/ck" --save-interval 1
    why=$(resume_check "$W/ck" $((ITERS + 2)))
    outcome "kill -9 at a random save step" $? "seed $seed (step $n): $why"
done
# The kill comes 0-90 ms after a random iteration of the first 15 is logged, not after a random
# time from the start: a fast machine trained past the 20 iterations of the reference run within
# the 0-1.9 s that the test waited before (36 ms an iteration with a save every third).
for seed in 1 2 3; do
    RANDOM=$seed
    rm -rf ck ck.* kill.jsonl
    "$GPT50B" "${TINY[@]}" --train-iters 100000 --save "$W/ck" --save-interval 3 \
        --metrics kill.jsonl >/dev/null 2>&1 &
    pid=$!
    k=$((RANDOM % 15 + 1))
    while kill -0 $pid 2>/dev/null && [ "$(cat kill.jsonl 2>/dev/null | wc -l)" -lt $k ]; do sleep 0.01; done
    sleep "0.0$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    why=$(resume_check "$W/ck" 20)
    outcome "kill -9 at a random point of training" $? "seed $seed (iteration $k): $why"
done

# --- 3. SIGINT, SIGTERM, a second SIGINT -------------------------------------------------------
# signal_run SIG: a long run with an NVMe folder, signalled once its third iteration is logged.
signal_run() {
    rm -rf ck ck.* nvme sig.jsonl
    mkdir nvme
    "$GPT50B" "${TINY[@]}" --train-iters 100000 --save "$W/ck" --save-interval 100000 \
        --offload-optimizer nvme --nvme-path "$W/nvme" --metrics sig.jsonl >sig.out 2>sig.err &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ "$(cat sig.jsonl 2>/dev/null | wc -l)" -lt 3 ]; do sleep 0.05; done
    kill "-$1" $pid
}
for sig in INT TERM; do
    signal_run $sig
    wait $pid
    rc=$?
    want=$((128 + $(kill -l $sig)))
    at=$(grep -c . sig.jsonl)
    if [ "$rc" -ne "$want" ]; then
        outcome "SIG$sig" 1 "exit $rc, expected $want: $(tr '\n' ' ' <sig.err)"
    elif [ "$(wc -l <sig.err)" -ne 1 ] || ! grep -q "stopped by SIG$sig after iteration $at: the checkpoint $W/ck holds iteration $at; swap folder removed" sig.err; then
        outcome "SIG$sig" 1 "stderr: $(tr '\n' '|' <sig.err)"
    elif [ -n "$(ls -A nvme)" ]; then
        outcome "SIG$sig" 1 "left in the NVMe folder: $(ls -A nvme | tr '\n' ' ')"
    else
        why=$(resume_check "$W/ck" $((at + 2)))
        outcome "SIG$sig" $? "$why"
    fi
done
signal_run INT
sleep 0.02
kill -INT $pid
wait $pid
rc=$?
why=$(resume_check "$W/ck" 20)
[ "$rc" -eq 130 ] || why="exit $rc, expected 130; $why"
[ "$rc" -eq 130 ] && [ -z "$why" ]
outcome "a second SIGINT" $? "$why"

# --- 4. two runs on one folder -----------------------------------------------------------------
# (nvme-list: the second run lists a free folder first, then the busy one; it stops at the busy one
# and leaves nothing in the free one; nvme-auto: the second run's --nvme-resident-fraction auto
# stops before its probe writes and reads the busy folder)
for what in save nvme nvme-list nvme-auto; do
    rm -rf ck ck.* nvme nvme-free sig.jsonl
    mkdir nvme nvme-free
    "$GPT50B" "${TINY[@]}" --train-iters 100000 --save "$W/ck" --save-interval 100000 \
        --offload-optimizer nvme --nvme-path "$W/nvme" --metrics sig.jsonl >/dev/null 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ "$(cat sig.jsonl 2>/dev/null | wc -l)" -lt 1 ]; do sleep 0.05; done
    if [ $what = save ]; then
        second=(--save "$W/ck")
        msg="--save $W/ck: run $pid is using this checkpoint folder"
    elif [ $what = nvme ]; then
        second=(--save "$W/ck-other" --offload-optimizer nvme --nvme-path "$W/nvme")
        msg="--nvme-path $W/nvme: run $pid is using this folder"
    elif [ $what = nvme-list ]; then
        second=(--save "$W/ck-other" --offload-optimizer nvme --nvme-path "$W/nvme-free,$W/nvme")
        msg="--nvme-path $W/nvme: run $pid is using this folder"
    else
        second=(--save "$W/ck-other" --offload-optimizer nvme --nvme-path "$W/nvme"
            --nvme-resident-fraction auto)
        msg="--nvme-path $W/nvme: run $pid is using this folder"
    fi
    "$GPT50B" "${TINY[@]}" --train-iters 2 "${second[@]}" >two.out 2>two.err
    rc=$?
    kill -TERM $pid
    wait $pid
    if [ "$rc" -ne 2 ] || [ "$(wc -l <two.err)" -ne 1 ] || ! grep -qF -- "$msg" two.err ||
        [ -n "$(ls -A nvme-free)" ] || grep -q "^> measured for" two.out; then
        outcome "two runs on one --$what folder" 1 "exit $rc: $(tr '\n' '|' <two.err) left: $(ls -A nvme-free)"
    else
        outcome "two runs on one --$what folder" 0 ""
    fi
done

# --- 5. full disks -------------------------------------------------------------------------------
mkdir -p fs
if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=30m tmpfs "$W/fs" 2>/dev/null; then
    echo "skip - full disks: mounting a small tmpfs needs root"
else
    # 30 MiB holds one checkpoint (19.9 MB) but not a second beside it: the save at iteration 2
    # fails, the one of iteration 1 stays whole.
    "$GPT50B" "${TINY[@]}" --train-iters 4 --save "$W/fs/ck" --save-interval 1 >full.out 2>full.err
    rc=$?
    if [ "$rc" -ne 2 ] || [ "$(wc -l <full.err)" -ne 1 ]; then
        outcome "ENOSPC on the --save folder" 1 "exit $rc: $(tr '\n' '|' <full.err)"
    else
        # no room for the resume's saves there: it continues from a copy
        left=$(ls -A "$W/fs")
        why=$(cp -a "$W/fs/ck" "$W/ckfull" && resume_check "$W/ckfull" 4)
        [ "$left" = ck ] || why="left in the folder: $(echo $left) $why"
        [ "$left" = ck ] && [ -z "$why" ]
        outcome "ENOSPC on the --save folder" $? "$why"
    fi
    umount "$W/fs"
    # Swap files are preallocated at start: filling the disk mid-run changes nothing.
    mount -t tmpfs -o size=64m tmpfs "$W/fs"
    rm -f mid.jsonl
    "$GPT50B" "${TINY[@]}" --train-iters 8 --offload-optimizer nvme --nvme-path "$W/fs" \
        --metrics mid.jsonl >full.out 2>full.err &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ "$(cat mid.jsonl 2>/dev/null | wc -l)" -lt 1 ]; do sleep 0.02; done
    dd if=/dev/zero of="$W/fs/filler" bs=1M 2>/dev/null
    wait $pid
    rc=$?
    rm -f "$W/fs/filler"
    if [ "$rc" -ne 0 ] || [ "$(python3 "$CHECK" fields mid.jsonl)" != "$(head -n 8 ref.txt)" ] ||
        [ -n "$(ls -A "$W/fs")" ]; then
        outcome "ENOSPC on the --nvme-path folder mid-run" 1 "exit $rc: $(tr '\n' '|' <full.err) left: $(ls -A "$W/fs")"
    else
        outcome "ENOSPC on the --nvme-path folder mid-run" 0 ""
    fi
    umount "$W/fs"
    mount -t tmpfs -o size=1m tmpfs "$W/fs"
    "$GPT50B" "${TINY[@]}" --train-iters 2 --offload-optimizer nvme --nvme-path "$W/fs" \
        --nvme-resident-fraction 0 >full.out 2>full.err
    rc=$?
    if [ "$rc" -ne 2 ] || [ "$(wc -l <full.err)" -ne 1 ] || [ -n "$(ls -A "$W/fs")" ]; then
        outcome "ENOSPC on the --nvme-path folder at start" 1 "exit $rc: $(tr '\n' '|' <full.err) left: $(ls -A "$W/fs")"
    else
        outcome "ENOSPC on the --nvme-path folder at start" 0 ""
    fi
    umount "$W/fs"
fi

# --- 6. a flipped byte and a truncated block in the swap files ----------------------------------
# A run with its whole optimizer state on NVMe is stopped (SIGSTOP) after its second iteration;
# every swap file is damaged, then the run continues: the next swap-in finds the damage, and the
# run stops with one line and exit 2 rather than train on it. The resume continues from its last
# checkpoint like an uninterrupted run.
for damage in flip truncate; do
    rm -rf ck ck.* nvme sig.jsonl
    mkdir nvme
    "$GPT50B" "${TINY[@]}" --train-iters 100000 --save "$W/ck" --save-interval 1 \
        --offload-optimizer nvme --nvme-path "$W/nvme" --nvme-resident-fraction 0 \
        --metrics sig.jsonl >dmg.out 2>dmg.err &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ "$(cat sig.jsonl 2>/dev/null | wc -l)" -lt 2 ]; do sleep 0.02; done
    kill -STOP $pid
    for f in nvme/gpt50b-swap-*/*.swp; do
        python3 - "$f" "$damage" <<'PY'
import os, struct, sys
path, damage = sys.argv[1], sys.argv[2]
with open(path, "r+b") as f:
    (header_bytes,) = struct.unpack("<I", f.read(16)[12:16])
    if damage == "flip":
        f.seek(header_bytes + 100)
        b = f.read(1)
        f.seek(header_bytes + 100)
        f.write(bytes([b[0] ^ 0x10]))
    else:
        f.truncate(header_bytes + 4096)
PY
    done
    kill -CONT $pid
    wait $pid
    rc=$?
    if [ "$rc" -ne 2 ] || [ "$(wc -l <dmg.err)" -ne 1 ]; then
        outcome "a swap file with a $damage" 1 "exit $rc: $(tr '\n' '|' <dmg.err)"
    else
        why=$(resume_check "$W/ck" 20)
        [ -n "$(ls -A nvme)" ] && why="left in the NVMe folder: $(ls -A nvme | tr '\n' ' ') $why"
        [ -z "$why" ]
        outcome "a swap file with a $damage" $? "$why"
    fi
done

# --- 7. kill -9 inside the disk probe of --nvme-resident-fraction auto ----------------------------
# The run locks the folder, then the probe writes, syncs and reads back a file there before the run
# starts: a crash at its sync (the folder's second file-system step, the write done) leaves nothing
# in the folder but the dead run's lock file, and the next run with the folder trains.
rm -rf nvme
mkdir nvme
FAULT_PATH=$W/nvme FAULT_AT=2 FAULT_LOG=$W/probe.log LD_PRELOAD=$SHIM \
    crash "$GPT50B" "${TINY[@]}" --train-iters 2 --offload-optimizer nvme --nvme-path "$W/nvme" \
    --nvme-resident-fraction auto
first=$(sed -n 1p probe.log 2>/dev/null)
step=$(sed -n 2p probe.log 2>/dev/null)
if [[ $first != "1 create $W/nvme/gpt50b.lock" || $step != "2 f"*"sync $W/nvme/"*" CRASH" ]]; then
    outcome "kill -9 in the auto share's disk probe" 1 "the steps were not the lock, then the probe's sync: '$first' '$step'"
elif [ -n "$(ls -A nvme | grep -vx gpt50b.lock)" ]; then
    outcome "kill -9 in the auto share's disk probe" 1 "left in the NVMe folder: $(ls -A nvme | tr '\n' ' ')"
elif ! "$GPT50B" "${TINY[@]}" --train-iters 2 --offload-optimizer nvme --nvme-path "$W/nvme" \
    --nvme-resident-fraction auto >probe.out 2>&1; then
    outcome "kill -9 in the auto share's disk probe" 1 "the next run failed: $(tail -n 2 probe.out | tr '\n' '|')"
else
    outcome "kill -9 in the auto share's disk probe" 0 ""
fi

printf '\n%-48s %6s %9s\n' "fault" "tried" "survived"
total=0
total_ok=0
for f in "${order[@]}"; do
    printf '%-48s %6d %9d\n' "$f" "${tried[$f]}" "${survived[$f]}"
    total=$((total + tried[$f]))
    total_ok=$((total_ok + survived[$f]))
done
printf '%-48s %6d %9d\n' "all" "$total" "$total_ok"
finish
