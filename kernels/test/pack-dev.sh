#!/usr/bin/env bash
# Builds here (nvcc, no GPU needed) what the device calls run, and packs it into kernels/build/dev.tar.xz:
# cuda/libattnpass_cuda.so, ort-cuda/libattnpass_ort.so (CUDA), ort_ep_check. Carry kernels/build/dev.tar.xz.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash kernels/cuda/build-lib.sh
[ -f kernels/ort/third_party/onnxruntime/include/onnxruntime_c_api.h ] || bash kernels/ort/fetch-ort.sh
cmake -S kernels/ort -B kernels/build/ort-cuda -G Ninja -DATTNPASS_CUDA=ON > /dev/null
cmake --build kernels/build/ort-cuda
ORT=kernels/ort/third_party/onnxruntime
g++ -std=c++17 -O2 -o kernels/build/ort_ep_check kernels/test/ort_ep_check.cc -I$ORT/include -L$ORT/lib -lonnxruntime -ldl
strip kernels/build/ort_ep_check
tar cJf kernels/build/dev.tar.xz -C kernels/build cuda/libattnpass_cuda.so ort-cuda/libattnpass_ort.so ort_ep_check
ls -la kernels/build/dev.tar.xz
