#!/usr/bin/env bash
# The main job: builds ember and runs the `ember` command's default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target ember_cli
./build/cli/ember info
