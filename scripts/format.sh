#!/usr/bin/env bash
# The code's format and lint: Prettier (TypeScript, scripts, JSON), ESLint (typescript-eslint's
# recommended rules) and clang-format (native/, Debian's clang-format 14). With --check (CI) nothing
# is rewritten: each tool says what is off and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t native < <(git ls-files 'native/*.cpp' 'native/*.h' 'native/*.cu' 'native/*.cuh')
if [ "${1:-}" = --check ]; then
  npx prettier --check --log-level warn .
  npx eslint .
  clang-format --dry-run --Werror "${native[@]}"
else
  npx eslint --fix .  # before Prettier, which has the last word on the layout
  npx prettier --write --log-level warn .
  clang-format -i "${native[@]}"
fi
