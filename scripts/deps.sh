#!/usr/bin/env bash
# Installs the build and test dependencies on Debian 12 (idempotent, quiet when done).
# --fuzz: also clang with libFuzzer and its OpenMP runtime (`make fuzz`).
set -euo pipefail
pkgs=(gcc make libdnnl-dev libopenblas0-openmp libjansson-dev libpcre2-dev libutf8proc-dev
      python3 python3-venv python3-numpy python3-regex python3-sentencepiece)
[ "${1:-}" = "--fuzz" ] && pkgs=(clang libclang-rt-dev libomp-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
