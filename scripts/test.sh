#!/usr/bin/env bash
# The test suite: set-up if needed, then ava (extra arguments go to ava, e.g. --tap).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test -- "$@"
