#!/usr/bin/env bash
# run.sh: sets the machine up (scripts/setup.sh, idempotent), then runs build/apps/gpt50b with the
# given flags. Without flags: the tiny preset, 100 iterations on the Brown corpus, CPU or GPU.
# GPT50B_BUILD picks the build folder (default build/), as for setup.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
cd "$top"
exec "${GPT50B_BUILD:-build}/apps/gpt50b" "$@"
