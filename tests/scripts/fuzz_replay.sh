#!/usr/bin/env bash
# fuzz_replay.sh: every fuzz target replays its committed corpus (built by
# `make tests` against tests/fuzz/standalone_main.c). Each input is a test.
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
p=0 f=0
for t in tests/fuzz/fuzz_*.c; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .c); corpus=tests/fuzz/corpus/${name#fuzz_}
    bin=$B/fuzz-replay/$name
    if [ ! -x "$bin" ]; then echo "not ok - $name not built"; f=$((f + 1)); continue; fi
    [ -d "$corpus" ] || { echo "ok - $name # SKIP no corpus"; continue; }
    out=$("$bin" "$corpus"/* 2>&1); rc=$?
    line=$(grep -E '^tests: ' <<<"$out" | tail -n 1)
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "not ok - $name"; printf '%s\n' "$out" | grep -v '^ok' | sed 's/^/# /' | tail -20; f=$((f + 1))
    else
        echo "ok - $name: ${line#tests: }"; p=$((p + 1))
    fi
done
echo "tests: $p passed, $f failed, 0 skipped"
[ "$f" -eq 0 ]
