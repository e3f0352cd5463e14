// Host side of the Hopper forward kernel (flash_fwd_sm90.cuh): tensor maps and the launch.
#include <cudaTypedefs.h>
#include <atomic>
#include "internal.h"
#include "flash_fwd_sm90.cuh"

namespace ap {

// cuTensorMapEncodeTiled through the runtime's driver entry point (no link-time dependency on libcuda)
static PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static bool tried = false;
  if (!tried) {
    tried = true;
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }
  return fn;
}

bool sm90_fwd_available() {
  static int ok = -1;
  if (ok < 0) {
    int dev = 0, major = 0, minor = 0;
    ok = cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 &&
         minor == 0 && encode_tiled() != nullptr;
  }
  return ok == 1;
}

// [heads][rows][D] 16-bit tensor as a rank-3 map with [128 rows][64 elements] boxes, 128-byte swizzle
template <typename T> static bool head_map(CUtensorMap* m, const void* p, int D, int rows, int64_t heads) {
  const CUtensorMapDataType dt =
      std::is_same<T, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  const cuuint64_t dims[3] = {(cuuint64_t)D, (cuuint64_t)rows, (cuuint64_t)heads};
  const cuuint64_t strides[2] = {(cuuint64_t)D * 2, (cuuint64_t)rows * D * 2};
  const cuuint32_t box[3] = {64, (cuuint32_t)sm90::kKeys, 1};
  const cuuint32_t unit[3] = {1, 1, 1};
  return encode_tiled()(m, dt, 3, const_cast<void*>(p), dims, strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

static std::atomic<long long> g_sm90_launches{0};

template <typename T, int D>
cudaError_t launch_bsa_fwd_sm90(const FwdCommon& c, const BsaArgs& a, int* next_item, cudaStream_t st) {
  if (!sm90_fwd_available() || !next_item || a.bs % 64 != 0 ||
      (c.T + sm90::kKeys - 1) / sm90::kKeys > sm90::kMaxTiles)
    return cudaErrorNotSupported;
  if ((reinterpret_cast<uintptr_t>(c.q) | reinterpret_cast<uintptr_t>(c.k) | reinterpret_cast<uintptr_t>(c.v)) & 15)
    return cudaErrorNotSupported;
  CUtensorMap tq, tk, tv;
  if (!head_map<T>(&tq, c.q, D, c.S, (int64_t)c.B * c.Hq) || !head_map<T>(&tk, c.k, D, c.T, (int64_t)c.B * c.Hkv) ||
      !head_map<T>(&tv, c.v, D, c.T, (int64_t)c.B * c.Hkv))
    return cudaErrorNotSupported;
  const int smem = sm90::FwdLayout<D>::kBytes;
  auto kern = sm90::bsa_fwd_kernel<T, D>;
  cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  const int64_t items = (int64_t)c.B * c.Hq * ((c.S + sm90::kRows - 1) / sm90::kRows);
  // persistent (one CTA per SM, items taken from next_item) unless the forward variant asks for one CTA per item
  const int grid = (int)(fwd_variant() == 3 || items < num_sms() ? items : num_sms());
  if ((e = cudaMemsetAsync(next_item, 0, sizeof(int), st)) != cudaSuccess) return e;
  kern<<<grid, sm90::kThreadsFwd, smem, st>>>(c, a, tq, tk, tv, next_item);
  e = cudaGetLastError();
  if (e == cudaSuccess) g_sm90_launches.fetch_add(1, std::memory_order_relaxed);
  return e;
}

template cudaError_t launch_bsa_fwd_sm90<__nv_bfloat16, 64>(const FwdCommon&, const BsaArgs&, int*, cudaStream_t);
template cudaError_t launch_bsa_fwd_sm90<__nv_bfloat16, 128>(const FwdCommon&, const BsaArgs&, int*, cudaStream_t);
template cudaError_t launch_bsa_fwd_sm90<__half, 64>(const FwdCommon&, const BsaArgs&, int*, cudaStream_t);
template cudaError_t launch_bsa_fwd_sm90<__half, 128>(const FwdCommon&, const BsaArgs&, int*, cudaStream_t);

}  // namespace ap

extern "C" long long ap_sm90_launches(void) { return ap::g_sm90_launches.load(); }
