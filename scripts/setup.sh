#!/usr/bin/env bash
# Installs ember's build dependencies from Debian's packages. Idempotent: a no-op when all are present.
set -euo pipefail
packages=(build-essential cmake pkg-config libeigen3-dev libopenblas-openmp-dev libopenblas-dev
          doctest-dev libfmt-dev nlohmann-json3-dev libcli11-dev libbenchmark-dev
          doxygen graphviz libjs-mathjax ccache)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
