#!/usr/bin/env bash
# lint.sh: the house-style checks as tests (banned functions, layering).
cd "$(dirname "$0")/../.."
p=0 f=0
for t in tools/checksrc.sh tools/check_headers.sh; do
    if out=$($t 2>&1); then
        echo "ok - $t"; p=$((p + 1))
    else
        echo "not ok - $t"; printf '%s\n' "$out" | sed 's/^/# /' | head -40; f=$((f + 1))
    fi
done
echo "tests: $p passed, $f failed, 0 skipped"
[ "$f" -eq 0 ]
