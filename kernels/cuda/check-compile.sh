#!/usr/bin/env bash
# CI check: every .cu file under kernels/cuda and bench/kernels compiles for sm_90a (needs nvcc, no GPU). Exits
# non-zero on failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NVCC=${NVCC:-nvcc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
for f in "$here"/*.cu "$here"/../../bench/kernels/*.cu; do
  if "$NVCC" -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 -I "$here" -c "$f" -o "$tmp/$(basename "$f").o"; then
    echo "ok   $(basename "$f")"
  else
    echo "FAIL $(basename "$f")"; fail=1
  fi
done
exit $fail
