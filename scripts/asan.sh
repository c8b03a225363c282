#!/usr/bin/env bash
# Runs the tests against an AddressSanitizer + LeakSanitizer build of the addon (issue 7). Not part
# of CI: the sanitized build takes a few minutes and the suite runs several times slower.
#   bash scripts/asan.sh                       # the whole suite, then the leak probe
#   bash scripts/asan.sh test/errors.test.ts   # some test files, then the leak probe
# Node and LibTorch are not instrumented, so libasan is preloaded. ASan reports memory errors from
# any process; leaks are reported only at a normal exit, which ava's workers never reach (ava kills
# them), so test/sanitizer/leak-probe.ts exercises every native entry point in a plain process.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-asan
node scripts/build-native.mjs --out "$out" \
  --CDCMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
  --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address"
npx tsc -p tsconfig.json
export RILS_ADDON="$PWD/$out/Release/rils.node"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
common="alloc_dealloc_mismatch=0:new_delete_type_mismatch=0:detect_odr_violation=0:log_path=$PWD/$out/asan"
rm -f "$out"/asan.*
status=0
# The suite: memory errors only. LeakSanitizer replaces a leaking process's exit status with its
# own, which would break the tests that check a child's exit status.
# LibTorch's own allocator for the suite: with the addon's cache, a block freed or overrun (within
# its rounding) is still mapped, so ASan would not see it. The leak probe keeps the cache.
RILS_CPU_ALLOCATOR=libtorch ASAN_OPTIONS="detect_leaks=0:$common" npx ava --timeout=30m "$@" || status=$?
# Leaks: a plain process that calls every native entry point and exits normally.
ASAN_OPTIONS="detect_leaks=1:$common" node --import tsx test/sanitizer/leak-probe.ts || status=$?
unset LD_PRELOAD

logs=$(cat "$out"/asan.* 2>/dev/null || true)  # none at all when nothing was found
errors=$(printf '%s\n' "$logs" | grep -cE '^==[0-9]+==ERROR: AddressSanitizer' || true)
# A leak is ours when the allocating frame (#1, after the allocator) is in rils or LibTorch. JS
# objects alive at exit are V8's allocations (#1 in node) even when a napi call of ours made them.
ours=$(printf '%s\n' "$logs" | awk 'BEGIN { RS = ""; n = 0 }
  /Direct leak/ { if (match($0, /#1 [^\n]*/) && substr($0, RSTART, RLENGTH) ~ /rils\.node|libtorch|libc10/) { n++; print > "/dev/stderr" } }
  END { print n }')
echo "AddressSanitizer: $errors memory error report(s); LeakSanitizer: $ours leak(s) allocated by rils or LibTorch (logs: $out/asan.*)"
[ "$errors" -eq 0 ] && [ "$ours" -eq 0 ] && exit "$status"
exit 1
