#!/usr/bin/env bash
# test_gpu_code.sh GPT50B BUILT: the CUDA build's program holds exactly the GPU code meson asked
# for (BUILT, runtime/gpu.h's format: "sm_75,...,sm_90,compute_90"): SASS for every listed card
# and PTX for the newest. Reads the binary (scripts/fatbin_archs.py), so it runs without a GPU.
# Skips (77) for -Dgpu_arch=native, whose code depends on the building machine's card.
set -u
GPT50B=$1 BUILT=$2
TOP=${GPT50B_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ "$BUILT" = native ]; then
    echo "skip: -Dgpu_arch=native builds for the building machine's card"
    exit 77
fi
want=$(tr ',' '\n' <<<"$BUILT" | sort)
got=$(python3 "$TOP/scripts/fatbin_archs.py" "$GPT50B" | sort)
if [ "$got" != "$want" ]; then
    echo "FAIL - $GPT50B holds: $(echo $got); expected: $(echo $want)"
    exit 1
fi
echo "ok - $GPT50B holds $(echo $got)"
