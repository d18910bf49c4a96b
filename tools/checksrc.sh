#!/usr/bin/env bash
# tools/checksrc.sh: house-style checks over src/ (STYLE.md §2.14), in the
# spirit of curl's checksrc. Prints one line per violation; exit 1 if any.
#   - banned functions: strcpy strcat sprintf vsprintf gets strtok atoi atol atof
#     alloca system popen rand srand assert
#   - raw malloc/calloc/realloc/free outside src/core/alloc.c
#   - printf-family output outside src/core/log.c, src/cli/ and src/core/util.c's asserts
# Comments and string literals are stripped before matching (a crude but
# adequate C lexer in awk-free sed), so prose may name these functions.
set -u
cd "$(dirname "$0")/.."
fail=0
strip() {
    # remove /* */ comments (multi-line), // comments and string/char literals
    perl -0777 -pe 's{/\*.*?\*/}{" " x 0}gse; s{//[^\n]*}{}g; s{"(\\.|[^"\\])*"}{""}g; s{'"'"'(\\.|[^'"'"'\\])*'"'"'}{0}g' "$1"
}
check() { # file, regex, message
    local out
    out=$(strip "$1" | grep -nE "$2") || return 0
    while IFS= read -r line; do
        echo "$1:${line%%:*}: $3"
        fail=1
    done <<<"$out"
}
for f in $(find src -name '*.c' -o -name '*.h' | sort); do
    check "$f" '(^|[^_a-zA-Z0-9.>])(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|atof|alloca|system|popen|rand|srand|assert)[[:space:]]*\(' "banned function (STYLE.md 2.14)"
    case "$f" in
    src/core/alloc.c) ;;
    *) check "$f" '(^|[^_a-zA-Z0-9.>])(malloc|calloc|realloc|free)[[:space:]]*\(' "raw allocator call: use fl_malloc/fl_free" ;;
    esac
    case "$f" in
    src/core/log.c|src/core/err.c|src/cli/*) ;;
    *) check "$f" '(^|[^_a-zA-Z0-9.>])(printf|fprintf|puts|fputs)[[:space:]]*\(' "output outside log.c/cli: use FL_LOG_*" ;;
    esac
done
exit $fail
