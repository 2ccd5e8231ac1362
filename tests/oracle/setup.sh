#!/usr/bin/env bash
# Builds (once) the pinned Hugging Face oracle venv used by the interop tests.
# Cached outside the clone; rebuilt when requirements.txt changes.
# Prints the venv's python path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${ANTIBODY_CACHE:-$HOME/.cache/antibody}
req="$here/requirements.txt"
sum=$(sha256sum "$req" | cut -c1-16)
venv="$root/oracle-$sum"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  mkdir -p "$root"
  rm -rf "$venv"
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=$(command -v python3)
  "$PY" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
