#!/usr/bin/env bash
# tools/check_headers.sh: the layers' dependency direction (DESIGN.md §2,
# STYLE.md §2.2). Each module may include only the modules listed for it.
# Prints one line per upward include; exit 1 if any.
set -u
cd "$(dirname "$0")/.."
declare -A allowed=(
    [core]="core"
    [img]="core img"
    [nn]="core nn"
    [index]="core index"
    [store]="core store"
    [face]="core nn img face"
    [api]="core img nn face index store api"
    [server]="core server"
    [cli]=""
)
fail=0
for dir in src/*/; do
    mod=$(basename "$dir")
    [ -n "${allowed[$mod]+x}" ] || { echo "$dir: unknown module (add it to tools/check_headers.sh)"; fail=1; continue; }
    while IFS=: read -r file line inc; do
        target=$(sed -E 's/.*#include[[:space:]]*"([^/"]+)\/.*/\1/' <<<"$inc")
        [ "$target" = "$inc" ] && continue # not a module include ("x.h" or <x.h>)
        case " ${allowed[$mod]} " in
        *" $target "*) ;;
        *) echo "$file:$line: $mod may not include $target (${inc#*#include })"; fail=1 ;;
        esac
    done < <(grep -nE '#include[[:space:]]*"[a-z_]+/' "$dir"*.c "$dir"*.h 2>/dev/null)
done
exit $fail
