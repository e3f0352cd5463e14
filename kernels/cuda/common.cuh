// Shared device helpers for the attnpass CUDA kernels (sm_90; mma.sync m16n8k16, ldmatrix, cp.async).
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <math.h>

#include "attnpass_cuda.h"

namespace ap {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegInf = -INFINITY;

// ---------------------------------------------------------------------------------------------
// element types
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename T> __device__ __forceinline__ uint32_t pack2(float a, float b);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float a, float b) {
  __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float a, float b) {
  __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}

// ---------------------------------------------------------------------------------------------
// tensor-core and async-copy primitives
template <typename T> __device__ __forceinline__ void mma16816(float* c, const uint32_t* a, const uint32_t* b);
template <> __device__ __forceinline__ void mma16816<__nv_bfloat16>(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <> __device__ __forceinline__ void mma16816<__half>(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldsm_x4(uint32_t* r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t* r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ unsigned long long global_timer_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ unsigned sm_id() {
  unsigned s;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
  return s;
}
// 16-byte async copy; src_bytes = 0 fills the destination with zeros (rows past the end).
__device__ __forceinline__ void cp_async16(uint32_t saddr, const void* g, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(g), "r"(src_bytes));
}
// An L2 eviction policy for cp_async16: evict-first (for data read once: its lines go first, so the stream neither
// pushes out what other kernels keep in L2 nor forces the write-back of their dirty lines) or the normal one.
__device__ __forceinline__ uint64_t l2_policy(bool evict_first) {
  uint64_t p;
  if (evict_first) asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(p));
  else asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(p));
  return p;
}
__device__ __forceinline__ void cp_async16(uint32_t saddr, const void* g, int src_bytes, uint64_t l2_policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(saddr), "l"(g), "r"(src_bytes),
               "l"(l2_policy));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// A [rows][D] tile of 16-bit elements in shared memory, 16-byte chunks XOR-swizzled by (row & 7) so that
// ldmatrix reads of 8 rows at one chunk column hit 8 different bank groups. Needs D >= 64.
template <int D> __device__ __forceinline__ uint32_t swz(int row, int chunk) {
  return (uint32_t)((row * (D / 8) + (chunk ^ (row & 7))) * 16);
}

// Online softmax for the two rows a thread holds in an m16n8 accumulator (each row spread over 4 lanes): reduces
// the tile's row maxima mx (log2 units) across the row's lanes and gives the value to subtract before exp2 (mu;
// 0 while a row has seen no admitted key) and the factor that rescales running sums (alpha); mrow becomes the
// new running maximum.
__device__ __forceinline__ void softmax_rows(float (&mx)[2], float (&mrow)[2], float (&mu)[2], float (&alpha)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    mu[r] = mx[r] == kNegInf ? 0.f : mx[r];
    alpha[r] = exp2f(mrow[r] - mu[r]);
    mrow[r] = mx[r];
  }
}
// a row's sum over its 4 lanes
__device__ __forceinline__ float row_sum(float l) {
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  return l + __shfl_xor_sync(0xffffffffu, l, 2);
}
// 1 / the row's sum of probabilities, 0 for a row that admitted no key
__device__ __forceinline__ float row_inv_sum(float l) {
  l = row_sum(l);
  return l > 0.f ? 1.f / l : 0.f;
}

// floor division for possibly negative numerators (positive divisor)
__device__ __host__ __forceinline__ int floordiv(int a, int b) {
  int q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// ---------------------------------------------------------------------------------------------
// additive mask, numpy-broadcast to [B, Hq, S, T] through element strides (0 on broadcast axes)
struct MaskRef {
  const void* ptr;
  int64_t sb, sh, ss, st;
  int dtype;
  __device__ __forceinline__ float at(int b, int h, int i, int j) const {
    int64_t off = (int64_t)b * sb + (int64_t)h * sh + (int64_t)i * ss + (int64_t)j * st;
    if (dtype == AP_F32) return static_cast<const float*>(ptr)[off];
    if (dtype == AP_F16) return __half2float(static_cast<const __half*>(ptr)[off]);
    return __bfloat162float(static_cast<const __nv_bfloat16*>(ptr)[off]);
  }
};
inline MaskRef make_mask(const ApAttn& a) {
  MaskRef m;
  m.ptr = a.mask;
  m.sb = a.mask_stride[0];
  m.sh = a.mask_stride[1];
  m.ss = a.mask_stride[2];
  m.st = a.mask_stride[3];
  m.dtype = a.dtype;
  return m;
}

// spans: int64 [Bs, n, 2] or [Bs, S, n, 2], clamped to [0, T)
struct SpanRef {
  const int64_t* ptr;
  int Bs, n, per_query, S, T;
  __device__ __forceinline__ const int64_t* base(int b, int i) const {
    int bb = Bs == 1 ? 0 : b;
    if (per_query) return ptr + ((int64_t)bb * S + i) * n * 2;
    return ptr + (int64_t)bb * n * 2;
  }
  __device__ __forceinline__ void get(const int64_t* s, int k, int& lo, int& hi) const {
    int64_t a = s[2 * k], e = s[2 * k + 1];
    a = a < 0 ? 0 : (a > T ? T : a);
    e = e < 0 ? 0 : (e > T ? T : e);
    lo = (int)a;
    hi = (int)e;
  }
  __device__ __forceinline__ bool contains(int b, int i, int j) const {
    const int64_t* s = base(b, i);
    for (int k = 0; k < n; ++k) {
      int lo, hi;
      get(s, k, lo, hi);
      if (j >= lo && j < hi) return true;
    }
    return false;
  }
};

// block-wide exclusive scan of one int per thread (blockDim.x multiple of 32, <= 1024)
__device__ __forceinline__ int block_excl_scan(int v, int* total, int* scratch /*>= 33 ints*/) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  int x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = lane < nw ? scratch[lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      int y = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += y;
    }
    if (lane < nw) scratch[lane] = w;  // inclusive warp prefix
    if (lane == nw - 1) scratch[32] = w;
  }
  __syncthreads();
  int base = warp > 0 ? scratch[warp - 1] : 0;
  int res = base + x - v;
  *total = scratch[32];
  __syncthreads();
  return res;
}

}  // namespace ap
