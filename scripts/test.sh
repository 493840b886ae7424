#!/usr/bin/env bash
# test.sh: sets the machine up (scripts/setup.sh, idempotent), then runs the test suites. Tests
# that need a GPU skip (exit 77) on machines without one. Extra arguments go to `meson test`
# (e.g. --suite cpu). The variant is setup.sh's (CUDA when a toolkit is found, else CPU-only;
# GPT50B_CUDA=off forces CPU-only), in GPT50B_BUILD (default build/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
exec meson test -C "${GPT50B_BUILD:-$top/build}" --print-errorlogs "$@"
