#!/usr/bin/env bash
# Builds kernels/build/cuda/libattnpass_cuda.so (the C API of attnpass_cuda.h, static cudart) for sm_90a.
# Used by the device tests and benchmarks through ctypes. Usage: bash kernels/cuda/build-lib.sh [-j N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../build/cuda"
mkdir -p "$out"
NVCC=${NVCC:-nvcc}
flags=(-gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --use_fast_math -lineinfo -Xcompiler -fPIC)
pids=()
for f in "$here"/*.cu; do
  b=$(basename "$f" .cu)
  "$NVCC" "${flags[@]}" -Xptxas -v -c "$f" -o "$out/$b.o" > "$out/$b.ptxas.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
if [ $rc -ne 0 ]; then cat "$out"/*.ptxas.log | grep -i -B2 -A2 error; exit 1; fi
"$NVCC" -shared -cudart static -o "$out/libattnpass_cuda.so" "$out"/*.o
echo "built $out/libattnpass_cuda.so"
