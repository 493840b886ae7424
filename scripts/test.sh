#!/usr/bin/env bash
# test.sh: sets the machine up (scripts/setup.sh, idempotent), then runs the test suites. Tests
# that need a GPU skip (exit 77) on machines without one. Extra arguments go to `meson test`
# (e.g. --suite cpu).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
exec meson test -C "$top/build" --print-errorlogs "$@"
