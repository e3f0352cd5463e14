#!/usr/bin/env bash
# One device call of the attnpass kernel work: bash kernels/test/device.sh MODE...   (modes: tests bench ort quick
# hopper e2e bench-decode profile-decode read-floor ...; TEST_RUNS="op:variant ..." narrows the tests mode). ort and e2e need ONNX Runtime with its CUDA
# provider in /tmp/ort (../shared/tools/stage-ort-gpu.sh says how to carry it there in parts).
# Expects kernels/build/dev.tar.xz (made here by kernels/test/pack-dev.sh: the CUDA library, the ORT custom-op
# library built with CUDA, the ORT EP check driver); writes logs and JSON under $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT_FINAL=${OUT:-/tmp/out}; OUT=/tmp/apout; mkdir -p "$OUT" "$OUT_FINAL"
# $OUT_FINAL may hold only a few files: everything is written to /tmp/apout and packed at the end
trap 'tar czf "$OUT_FINAL/all.tgz" -C "$OUT" . ; cp "$OUT"/bench*.json "$OUT_FINAL"/ 2>/dev/null' EXIT
mkdir -p kernels/build && tar xJf kernels/build/dev.tar.xz -C kernels/build
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv,noheader | tee "$OUT/gpu.txt"
rc=0
for mode in "$@"; do
  case $mode in
    tests)  # one process per operator and forward variant: a fault in one leaves the others' results
      # variant 0 (default) runs the Hopper kernel for BlockSparseAttention; span and att run variant 1 under it
      for run in ${TEST_RUNS:-bsa:0 bsa:3 bsa:1 span:1 att:1 bsa:2 span:2 att:2}; do op=${run%:*}; v=${run#*:}
        timeout 300 python3 kernels/test/test_kernels.py --only $op --variant $v --json "$OUT/tests-$op-v$v.json" > "$OUT/tests-$op-v$v.log" 2>&1
        rc=$((rc | $?)); grep -v "^ok " "$OUT/tests-$op-v$v.log" | grep -v "^$" | cut -c1-300
      done
      cat "$OUT"/tests-*.json > /dev/null ;;
    debug) python3 kernels/test/debug_bsa.py 2>&1 | tee "$OUT/debug.log" ;;
    radix) timeout 300 python3 kernels/test/test_kernels.py --only bsa --force-radix --json "$OUT/tests-bsa-radix.json" > "$OUT/tests-bsa-radix.log" 2>&1
      rc=$((rc | $?)); grep -v "^ok " "$OUT/tests-bsa-radix.log" | grep -v "^$" | cut -c1-300 ;;
    ortcpu) ATTNPASS_ORT_LIB=kernels/build/ort-cuda/libattnpass_ort.so LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} python3 kernels/test/test_ort.py 2>&1 | tee "$OUT/ort_cpu.log" | tail -2 ;;
    quick) python3 kernels/test/test_kernels.py --quick --json "$OUT/tests.json" 2>&1 | tee "$OUT/tests.log" | grep -v "^ok "; rc=$((rc | ${PIPESTATUS[0]})) ;;
    bench) python3 bench/kernels/run.py --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" | grep -v "^prefill {\|^decode {"; rc=$((rc | ${PIPESTATUS[0]})) ;;
    hopper)  # the Hopper forward alone: BSA tests with it forced, its SASS, one prefill length timed
      cuobjdump -sass kernels/build/cuda/libattnpass_cuda.so 2>/dev/null | grep -o "HGMMA[.A-Z0-9x]*\|UTMALDG[.A-Z0-9]*\|LDL\|STL" | sort | uniq -c | tee "$OUT/sm90-sass.txt"
      timeout 150 python3 kernels/test/test_kernels.py --only bsa --variant 0 --json "$OUT/tests-bsa-v0.json" > "$OUT/tests-bsa-v0.log" 2>&1
      r=$?; rc=$((rc | r)); grep -v "^ok " "$OUT/tests-bsa-v0.log" | grep -v "^$" | cut -c1-300
      [ $r -eq 124 ] && { echo "tests timed out: last line: $(tail -1 "$OUT/tests-bsa-v0.log" | cut -c1-200)"; exit 1; }
      timeout 240 python3 bench/kernels/run.py --only prefill --sizes 16384 --out "$OUT/bench-hopper.json" 2>&1 | tee "$OUT/bench-hopper.log" | grep -v "^prefill {\|^decode {" ;;
    bench-prefill) python3 bench/kernels/run.py --only prefill --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" | grep -v "^prefill {\|^decode {" ;;
    profile-decode)  # SpanAttention decode: graph timings vs a copy, per-CTA traces, then Nsight Compute
      for cfg in ${DECODE_CFGS:-32768:0.1:1 32768:0.1:2 32768:0.25:1 131072:0.1:1}; do IFS=: read -r t cov w <<< "$cfg"
        timeout 120 python3 bench/kernels/decode_profile.py --T $t --cover $cov --waves $w --time --trace \
          --trace-out "$OUT/trace-$t-$cov-w$w.json" 2>&1 | tee -a "$OUT/decode-time.log"; done
      [ "${NCU:-1}" = 0 ] || timeout 180 ncu --clock-control none --kernel-name regex:span --launch-skip 1 --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
        --section WarpStateStats --section SchedulerStats \
        --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" \
        python3 bench/kernels/decode_profile.py --T 32768 --cover 0.1 --calls 2 > "$OUT/ncu-decode-32768-0.1.txt" 2>&1
      grep -E "span_|Duration|DRAM Throughput|Max Active Clusters|Achieved Occupancy|stalled" "$OUT/ncu-decode-32768-0.1.txt" | head -20 ;;
    read-floor) python3 bench/kernels/read_floor.py --out "$OUT/read-floor.json" 2>&1 | tee "$OUT/read-floor.log"; rc=$((rc | ${PIPESTATUS[0]})) ;;
    bench-decode) python3 bench/kernels/run.py --only decode --out "$OUT/bench-decode.json" 2>&1 | tee "$OUT/bench-decode.log" | grep -v "^prefill {\|^decode {" ;;
    e2e)  # whole converted models (out/e2e/*.onnx, converted beforehand with `attnpass convert`) on the CUDA EP
      export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:/usr/local/cuda/lib64:/tmp/ort/lib:${LD_LIBRARY_PATH:-}
      args=(); for m in out/e2e/*.onnx; do args+=("$m" 64); done
      kernels/build/ort_ep_check /tmp/ort/lib/libonnxruntime_providers_cuda.so kernels/build/ort-cuda/libattnpass_ort.so \
        "${args[@]}" 2>&1 | tee "$OUT/e2e.log" | grep "RESULT\|rel err\|failed"
      rc=$((rc | ${PIPESTATUS[0]})) ;;
    ort)
      export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:/usr/local/cuda/lib64:/tmp/ort/lib:${LD_LIBRARY_PATH:-}
      ATTNPASS_ORT_LIB=kernels/build/ort-cuda/libattnpass_ort.so python3 kernels/test/test_ort.py 2>&1 | tee "$OUT/ort_cpu.log" | tail -4
      mkdir -p /tmp/models
      python3 - <<'PY'
import sys; sys.path.insert(0, "kernels/test"); import ort_models as om
om.save(om.model("BlockSparseAttention", "float16", 1, 8, 2, 512, 512, 128, attrs=dict(causal=1, density=0.3), layout=True), "/tmp/models/bsa_f16.onnx")
om.save(om.model("BlockSparseAttention", "bfloat16", 1, 8, 2, 300, 300, 64, attrs=dict(causal=1, density=1.0), empty_layout_slot=True), "/tmp/models/bsa_bf16_dense.onnx")
om.save(om.model("BlockSparseAttention", "float32", 1, 4, 2, 200, 200, 64, attrs=dict(causal=1, density=0.5, block_size=32)), "/tmp/models/bsa_f32.onnx")
om.save(om.model("SpanAttention", "bfloat16", 2, 8, 2, 1, 4096, 128, attrs=dict(causal=1), spans_shape=(2, 8, 2), mask_shape=(2, 1, 1, 4096)), "/tmp/models/span_bf16.onnx")
om.save(om.model("SpanAttention", "float16", 1, 4, 4, 256, 256, 64, attrs=dict(causal=1), spans_shape=(1, 8, 2)), "/tmp/models/span_f16_prefill.onnx")
om.save(om.model("TiledAttention", "float16", 1, 8, 2, 512, 512, 128, attrs=dict(causal=1)), "/tmp/models/att_f16.onnx")
om.save(om.model("TiledAttention", "float32", 1, 4, 2, 200, 200, 64, attrs=dict(causal=0, scorer=1)), "/tmp/models/att_f32.onnx")
PY
      kernels/build/ort_ep_check /tmp/ort/lib/libonnxruntime_providers_cuda.so kernels/build/ort-cuda/libattnpass_ort.so \
        /tmp/models/bsa_f16.onnx 512 /tmp/models/bsa_bf16_dense.onnx 300 /tmp/models/bsa_f32.onnx 200 \
        /tmp/models/span_bf16.onnx 4096 /tmp/models/span_f16_prefill.onnx 256 /tmp/models/att_f16.onnx 512 \
        /tmp/models/att_f32.onnx 200 2>&1 | tee "$OUT/ort_ep.log"
      rc=$((rc | ${PIPESTATUS[0]}))
      ;;
  esac
done
exit $rc
