#!/usr/bin/env bash
# Runs the tests against an AddressSanitizer + LeakSanitizer build of the addon (issue 7). Not part
# of CI: the sanitized build takes a few minutes and the suite runs several times slower.
#   bash scripts/asan.sh                       # the whole suite, then the leak probe
#   bash scripts/asan.sh test/errors.test.ts   # some test files, then the leak probe
# Node and LibTorch are not instrumented, so libasan is preloaded. ASan reports memory errors from
# any process; leaks are reported only at a normal exit, which ava's workers never reach (ava kills
# them), so test/sanitizer/leak-probe.ts exercises every native entry point in a plain process.
# Node/V8 keep some allocations to the end on purpose: only direct leaks with a rils.node frame
# count (an indirect leak is memory held by a directly leaked block, e.g. V8's class templates).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-asan
node scripts/build-native.mjs --out "$out" \
  --CDCMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
  --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address"
npx tsc -p tsconfig.json
export RILS_ADDON="$PWD/$out/Release/rils.node"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
export ASAN_OPTIONS="detect_leaks=1:alloc_dealloc_mismatch=0:new_delete_type_mismatch=0:detect_odr_violation=0:log_path=$PWD/$out/asan"
# Leaks are read from the logs below; LSan's own exit status (23) would break the tests that check
# a child's exit status.
export LSAN_OPTIONS="exitcode=0"
rm -f "$out"/asan.*
status=0
npx ava --timeout=30m "$@" || status=$?
node --import tsx test/sanitizer/leak-probe.ts || status=$?
unset LD_PRELOAD

errors=$(cat "$out"/asan.* 2>/dev/null | grep -E '^==[0-9]+==ERROR: AddressSanitizer' | wc -l || true)
# One paragraph per leak record; keep those whose stack passes through the addon.
ours=$(cat "$out"/asan.* 2>/dev/null | awk 'BEGIN { RS = ""; n = 0 } /Direct leak/ && /rils\.node/ { n++; print > "/dev/stderr" } END { print n }')
echo "AddressSanitizer: $errors memory error report(s); LeakSanitizer: $ours leak record(s) through rils.node (logs: $out/asan.*)"
[ "$errors" -eq 0 ] && [ "$ours" -eq 0 ] && exit "$status"
exit 1
