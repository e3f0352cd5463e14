#!/usr/bin/env bash
# Fetches the ONNX Runtime 1.29 C/C++ headers and the Linux x64 CPU core library (libonnxruntime.so)
# from the npm package com.github.asus4.onnxruntime@0.4.9 into kernels/ort/third_party/onnxruntime
# (ignored by git). Separate from `npm ci` on purpose: the project's install stays light.
#   usage: bash kernels/ort/fetch-ort.sh [DEST]      (default: kernels/ort/third_party/onnxruntime)
# Result: DEST/include/*.h and DEST/lib/libonnxruntime.so(.1). The CMake build finds DEST by default.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dst=${1:-$here/third_party/onnxruntime}
pkg=com.github.asus4.onnxruntime@0.4.9
if [ -f "$dst/include/onnxruntime_c_api.h" ] && [ -f "$dst/lib/libonnxruntime.so" ]; then
  echo "fetch-ort: already present in $dst"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tgz=$(ls "$tmp"/*.tgz | head -n1)
hdr='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-simulator/onnxruntime.framework/Headers'
tar xzf "$tgz" -C "$tmp" --wildcards "$hdr/*" 'package/Plugins/Linux/x64/*' 'package/LICENSE'
mkdir -p "$dst/include" "$dst/lib"
cp "$tmp/$hdr"/*.h "$dst/include/"
for f in "$tmp"/package/Plugins/Linux/x64/*.so; do cp "$f" "$dst/lib/"; done
[ -e "$dst/lib/libonnxruntime.so.1" ] || ln -sf libonnxruntime.so "$dst/lib/libonnxruntime.so.1"
cp "$tmp/package/LICENSE" "$dst/LICENSE"
echo "fetch-ort: headers in $dst/include, library in $dst/lib"
ls "$dst/include" "$dst/lib"
