#!/usr/bin/env bash
# The main job: set-up if needed, then RILS pre-training on MNIST captions and zero-shot accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run demo -- "$@"
