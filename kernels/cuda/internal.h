// Host-side helpers shared by the attnpass CUDA translation units (not part of the public C API).
#pragma once
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <type_traits>
#include "attnpass_cuda.h"
#include "flash_fwd.cuh"

namespace ap {

// carves aligned sub-buffers out of one workspace; with base == nullptr it only measures
struct Carver {
  char* base;
  size_t off = 0;
  explicit Carver(void* b) : base(static_cast<char*>(b)) {}
  template <class T> T* take(size_t n) {
    off = (off + 255) & ~size_t(255);
    T* p = base ? reinterpret_cast<T*>(base + off) : nullptr;
    off += n * sizeof(T);
    return p;
  }
};

// an attribute of the current device (fallback if it cannot be read)
inline int device_attr(cudaDeviceAttr attr, int fallback) {
  int dev = 0, v = 0;
  cudaGetDevice(&dev);
  return cudaDeviceGetAttribute(&v, attr, dev) == cudaSuccess && v > 0 ? v : fallback;
}
inline int num_sms() {
  static const int n = device_attr(cudaDevAttrMultiProcessorCount, 132);
  return n;
}
inline int l2_cache_bytes() {
  static const int n = device_attr(cudaDevAttrL2CacheSize, 50 << 20);
  return n;
}

inline float eff_scale(const ApAttn& a) { return a.scale != 0.f ? a.scale : 1.f / sqrtf((float)a.D); }

inline int check_common(const ApAttn& a) {
  if (a.B <= 0 || a.Hq <= 0 || a.Hkv <= 0 || a.S <= 0 || a.T <= 0 || a.D <= 0 || a.Dv <= 0) return AP_ERR_ARGS;
  if (a.Hq % a.Hkv) return AP_ERR_ARGS;
  if (a.dtype < AP_F32 || a.dtype > AP_BF16) return AP_ERR_ARGS;
  return AP_OK;
}

// the tensor-core kernels: 16-bit inputs, D == Dv in {64, 128}
inline bool fast_dims(const ApAttn& a) { return a.dtype != AP_F32 && a.D == a.Dv && (a.D == 64 || a.D == 128); }

inline FwdCommon make_common(const ApAttn& a) {
  FwdCommon c;
  c.q = a.q; c.k = a.k; c.v = a.v; c.o = a.o;
  c.B = a.B; c.Hq = a.Hq; c.Hkv = a.Hkv; c.S = a.S; c.T = a.T; c.G = a.Hq / a.Hkv; c.D = a.D;
  c.scale_log2 = eff_scale(a) * kLog2e;
  c.causal = a.causal;
  c.has_mask = a.mask != nullptr;
  c.mask = make_mask(a);
  return c;
}

inline int cuda_status(cudaError_t e) { return e == cudaSuccess ? AP_OK : AP_ERR_CUDA; }

// The one place the tensor-core kernels are instantiated per element type and head dimension: calls
// f(ElemTag<T>{}, std::integral_constant<int, D>{}) for the call's 16-bit dtype (AP_BF16 or AP_F16) and D (64/128).
template <typename T> struct ElemTag {
  using type = T;
};
template <class F> cudaError_t dispatch_16bit(int dtype, int D, F&& f) {
  using D64 = std::integral_constant<int, 64>;
  using D128 = std::integral_constant<int, 128>;
  if (dtype == AP_BF16) return D == 128 ? f(ElemTag<__nv_bfloat16>{}, D128{}) : f(ElemTag<__nv_bfloat16>{}, D64{});
  return D == 128 ? f(ElemTag<__half>{}, D128{}) : f(ElemTag<__half>{}, D64{});
}
void count_call();

// generic (scalar, any D/Dv <= 256, any dtype) kernel: one warp per query row
struct GenericArgs {
  int mode;  // 0 dense/block-sparse (layout may be null), 1 span, 2 tiled
  const uint8_t* layout;
  int bs, nQB, nKB;
  SpanRef sp;
  int sink, W;
  const void* kc;
  const void* vc;
  const void* meta;  // AttMeta*
  const int* toff;
  int L;
};
int launch_generic(const ApAttn& a, const GenericArgs& g, cudaStream_t st);

// an sm_90 device with the driver's tensor-map encoder: the Hopper forward kernel can run (fwd_sm90.cu)
bool sm90_fwd_available();

}  // namespace ap
