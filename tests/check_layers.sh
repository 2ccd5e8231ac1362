#!/usr/bin/env bash
# The folder layering of docs/engine.md ("Folders, in include order"): a file in src/X/
# includes only headers of X and of folders listed before X, and kernels' private headers
# (every header of src/kernels/ except kernels.h) only from src/kernels/.
#   check_layers.sh [SRC]   prints each violation; exit 1 if there is one.
#   check_layers.sh --self-test   plants violations in a copy of src/ and expects them found.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --self-test ]; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    cp -r "$root/src" "$tmp/src"
    bash "$0" "$tmp/src" > /dev/null || { echo "check_layers: the tree itself fails"; exit 1; }
    for plant in 'model/x.c:#include "io/peft.h"' 'data/x.c:#include "eval/judge.h"' 'eval/x.c:#include "kernels/vmath.h"'; do
        f=${plant%%:*}; echo "${plant#*:}" > "$tmp/src/$f"
        if bash "$0" "$tmp/src" > /dev/null; then echo "check_layers: missed ${plant}"; exit 1; fi
        rm "$tmp/src/$f"
    done
    exit 0
fi
src=${1:-$root/src}
order=$(sed -n 's/^Include order (lowest first): *//p' "$root/docs/engine.md" | tr -d '`. ' | tr ',' ' ')
[ -n "$order" ] || { echo "check_layers: no \"Include order (lowest first):\" line in docs/engine.md"; exit 1; }
rank() { local i=0 d; for d in $order; do [ "$d" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo -1; }
bad=0
for dir in "$src"/*/; do
    d=$(basename "$dir"); rd=$(rank "$d")
    [ "$rd" -ge 0 ] || { echo "src/$d/: folder missing from the include order in docs/engine.md"; bad=1; continue; }
    for f in "$dir"*.[ch]; do
        [ -e "$f" ] || continue
        while IFS= read -r inc; do
            to=${inc%%/*}
            [ -d "$src/$to" ] || continue  # a generated header (gen/ in the build folder), not a source folder
            if [ "$to" = kernels ] && [ "$inc" != kernels/kernels.h ] && [ "$d" != kernels ]; then
                echo "src/$d/$(basename "$f"): includes $inc, private to src/kernels/ (use kernels/kernels.h)"; bad=1
            fi
            [ "$to" = "$d" ] && continue
            rt=$(rank "$to")
            if [ "$rt" -lt 0 ] || [ "$rt" -gt "$rd" ]; then
                echo "src/$d/$(basename "$f"): includes $inc, a folder above $d"; bad=1
            fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_0-9]*\/[^"]*\)".*/\1/p' "$f")
    done
done
exit $bad
