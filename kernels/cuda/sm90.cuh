// Hopper (sm_90a) primitives: mbarriers, bulk tensor copies (TMA) and warpgroup MMA (wgmma).
//
// Shared-memory operands of wgmma here are tiles of 16-bit elements stored as [rows][64] boxes with the
// 128-byte swizzle (what a TMA copy with CU_TENSOR_MAP_SWIZZLE_128B writes): row r at r * 128 bytes, its
// 16-byte chunk c at chunk c ^ (r % 8). Boxes start on 1024-byte boundaries (the swizzle period).
#pragma once
#include <cuda.h>
#include <type_traits>
#include "common.cuh"

namespace ap {
namespace sm90 {

// ---------------------------------------------------------------------------------------------
// mbarriers
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_fence_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, int bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// waits until the phase with the given parity has completed
__device__ __forceinline__ void mbar_wait(uint32_t bar, int parity) {
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  }
}

// ---------------------------------------------------------------------------------------------
// named barrier over `count` threads (legal where warps reach it from different branches, unlike __syncthreads)
__device__ __forceinline__ void bar_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
// per-warpgroup register budgets (need a register cap at kernel entry: __launch_bounds__(threads, 1))
template <int R> __device__ __forceinline__ void regs_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R)); }
template <int R> __device__ __forceinline__ void regs_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R)); }

// ---------------------------------------------------------------------------------------------
// TMA: one box of a rank-3 tensor map into shared memory, completing on an mbarrier (out-of-range
// elements are written as zeros)
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}

// ---------------------------------------------------------------------------------------------
// wgmma shared-memory descriptors for 128-byte-swizzled boxes (fields in 16-byte units)
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr, uint32_t lead_bytes, uint32_t stride_bytes) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lead_bytes >> 4) & 0x3FFF) << 16) |
         ((uint64_t)((stride_bytes >> 4) & 0x3FFF) << 32) | (1ull << 62);
}
// K-major operand (rows of K contiguous): 8-row groups 1024 bytes apart; the leading offset is unused.
// `addr` moves by 32 bytes per k16 step inside a box.
__device__ __forceinline__ uint64_t desc_kmajor(uint32_t addr) { return desc_sw128(addr, 16, 1024); }
// MN-major B operand (N contiguous, the [keys][d] layout of V): 8 k-rows 1024 bytes apart, 64-wide N
// chunks `box_bytes` apart. `addr` moves by 16 rows (2048 bytes) per k16 step.
__device__ __forceinline__ uint64_t desc_mnmajor(uint32_t addr, uint32_t box_bytes) {
  return desc_sw128(addr, box_bytes, 1024);
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// keeps the compiler from moving accesses of accumulator registers across wgmma issue/wait
template <int N> __device__ __forceinline__ void pin(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

#define AP_ACC8(d, i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define AP_ACC32(d) AP_ACC8(d, 0), AP_ACC8(d, 8), AP_ACC8(d, 16), AP_ACC8(d, 24)
#define AP_ACC64(d) AP_ACC32(d), AP_ACC8(d, 32), AP_ACC8(d, 40), AP_ACC8(d, 48), AP_ACC8(d, 56)
#define AP_REGS32                                                                                              \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define AP_REGS64                                                                                              \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "  \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// D[64 x 128] (+)= A[64 x 16] * B[16 x 128], A and B K-major in shared memory (scale_d 0: D = A * B)
#define AP_WGMMA_SS_N128(TY)                                                                         \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                         \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " " AP_REGS64               \
               ", %64, %65, p, 1, 1, 0, 0;\n}\n"                                                    \
               : AP_ACC64(d)                                                                        \
               : "l"(da), "l"(db), "r"(scale_d))
template <typename T> __device__ __forceinline__ void mma_ss_n128(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  if constexpr (std::is_same<T, __half>::value) AP_WGMMA_SS_N128("f16");
  else AP_WGMMA_SS_N128("bf16");
}

// D[64 x N] += A[64 x 16] (accumulating; registers, the mma.sync A-fragment layout per warp) * B[16 x N], B MN-major
#define AP_WGMMA_RS_N128(TY)                                                                                   \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " " AP_REGS64                         \
               ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                                 \
               : AP_ACC64(d)                                                                                  \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1))
#define AP_WGMMA_RS_N64(TY)                                                                                    \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                                \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " " AP_REGS32                          \
               ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                                                 \
               : AP_ACC32(d)                                                                                  \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1))
template <typename T, int N> __device__ __forceinline__ void mma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t db) {
  static_assert(N == 64 || N == 128, "wgmma P*V: N is the head dimension, 64 or 128");
  constexpr bool f16 = std::is_same<T, __half>::value;
  if constexpr (N == 128) {
    if constexpr (f16) AP_WGMMA_RS_N128("f16");
    else AP_WGMMA_RS_N128("bf16");
  } else {
    if constexpr (f16) AP_WGMMA_RS_N64("f16");
    else AP_WGMMA_RS_N64("bf16");
  }
}

}  // namespace sm90
}  // namespace ap
