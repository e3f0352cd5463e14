// Plain streaming readers for bench/kernels/read_floor.py: what reading N bytes costs on this GPU when nothing is
// done with them. Each CTA reads a contiguous share of the buffer, chunk by chunk, through a ring of shared-memory
// stages — the way the SpanAttention decode kernel streams its K/V tiles, minus the tile list, the math and the
// merge. Two load paths: cp.async (16 bytes per thread per instruction, what the decode kernel uses) and the
// Hopper bulk copy (one instruction per chunk, completing on an mbarrier).
//
// Build: nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 -shared -Xcompiler -fPIC -cudart static
//        -I kernels/cuda bench/kernels/read_floor.cu -o libread_floor.so
#include "sm90.cuh"

namespace {

constexpr int kThreads = 128;

// optional timeline, 3 slots per CTA: global timer (ns) at entry, when the first chunk landed, at the loop's end
__device__ __forceinline__ void stamp(unsigned long long* trace, int slot) {
  if (trace && threadIdx.x == 0) trace[3 * blockIdx.x + slot] = ap::global_timer_ns();
}

// this CTA's chunks [first, first + count) of nchunks, shared evenly
struct Share {
  int64_t first;
  int count;
};
__device__ Share my_share(int64_t nchunks) {
  const int64_t lo = nchunks * blockIdx.x / gridDim.x, hi = nchunks * (blockIdx.x + 1) / gridDim.x;
  return {lo, (int)(hi - lo)};
}

template <int kStages>
__global__ void __launch_bounds__(kThreads) read_cp_async(const uint8_t* __restrict__ src, int64_t nchunks, int chunk,
                                                          int evict_first, int two_streams, unsigned* __restrict__ sink,
                                                          unsigned long long* trace) {
  extern __shared__ __align__(128) uint8_t smem[];
  stamp(trace, 0);
  const Share sh = my_share(nchunks);
  const uint64_t policy = ap::l2_policy(evict_first != 0);
  const uint32_t s0 = ap::smem_u32(smem);
  // two_streams: the chunk's halves come from the two halves of the buffer (as a decode tile's K and V rows do)
  const int64_t half = two_streams ? nchunks * (chunk / 2) : chunk / 2;
  const int64_t step = two_streams ? chunk / 2 : chunk;
  auto load = [&](int i) {
    const uint8_t* g = src + (sh.first + i) * step;
    const uint32_t s = s0 + (i % kStages) * chunk;
    for (int off = threadIdx.x * 16; off < chunk; off += kThreads * 16)
      ap::cp_async16(s + off, off < chunk / 2 ? g + off : g + half + (off - chunk / 2), 16, policy);
  };
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < sh.count) load(i);
    ap::cp_async_commit();
  }
  unsigned acc = 0;
  for (int i = 0; i < sh.count; ++i) {
    ap::cp_async_wait<kStages - 2>();
    __syncthreads();  // chunk i landed for every thread; every thread is done with chunk i - 1, whose stage is next
    if (i == 0) stamp(trace, 1);
    if (i + kStages - 1 < sh.count) load(i + kStages - 1);
    ap::cp_async_commit();
    acc ^= reinterpret_cast<const unsigned*>(smem + (i % kStages) * chunk)[threadIdx.x];
  }
  stamp(trace, 2);
  sink[blockIdx.x * kThreads + threadIdx.x] = acc;
}

__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, int bytes, uint32_t bar, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\n" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar), "l"(policy)
      : "memory");
}

template <int kStages>
__global__ void __launch_bounds__(kThreads) read_bulk(const uint8_t* __restrict__ src, int64_t nchunks, int chunk,
                                                      int evict_first, int, unsigned* __restrict__ sink,
                                                      unsigned long long* trace) {
  extern __shared__ __align__(128) uint8_t smem[];
  stamp(trace, 0);
  __shared__ __align__(8) uint64_t full[kStages];
  const Share sh = my_share(nchunks);
  const uint64_t policy = ap::l2_policy(evict_first != 0);
  const uint32_t s0 = ap::smem_u32(smem);
  auto load = [&](int i) {  // thread 0 only
    const uint32_t bar = ap::smem_u32(&full[i % kStages]);
    ap::sm90::mbar_expect_tx(bar, chunk);
    bulk_load(s0 + (i % kStages) * chunk, src + (sh.first + i) * chunk, chunk, bar, policy);
  };
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) ap::sm90::mbar_init(ap::smem_u32(&full[s]), 1);
    ap::sm90::mbar_fence_init();
    for (int i = 0; i < kStages && i < sh.count; ++i) load(i);
  }
  __syncthreads();
  unsigned acc = 0;
  for (int i = 0; i < sh.count; ++i) {
    ap::sm90::mbar_wait(ap::smem_u32(&full[i % kStages]), (i / kStages) & 1);
    if (i == 0) stamp(trace, 1);
    acc ^= reinterpret_cast<const unsigned*>(smem + (i % kStages) * chunk)[threadIdx.x];
    __syncthreads();  // every thread is done with stage i % kStages
    if (threadIdx.x == 0 && i + kStages < sh.count) load(i + kStages);
  }
  stamp(trace, 2);
  sink[blockIdx.x * kThreads + threadIdx.x] = acc;
}

using ReadKernel = void (*)(const uint8_t*, int64_t, int, int, int, unsigned*, unsigned long long*);

template <int kStages>
ReadKernel pick(int bulk) {
  return bulk ? read_bulk<kStages> : read_cp_async<kStages>;
}

}  // namespace

// Reads nbytes (a multiple of chunk) from src with ctas CTAs of 128 threads and `stages` shared-memory stages of
// chunk bytes; writes one word per thread to sink (ctas * 128 words). bulk: 0 cp.async, 1 bulk copy. two_streams
// (cp.async only): each chunk reads half from each half of the buffer. trace (or NULL): 3 timer values per CTA, see
// stamp(). Returns a cudaError_t.
extern "C" int rf_read(int bulk, const void* src, long long nbytes, int chunk, int stages, int ctas, int evict_first,
                       int two_streams, unsigned* sink, unsigned long long* trace, void* stream) {
  ReadKernel k = nullptr;
  switch (stages) {
    case 2: k = pick<2>(bulk); break;
    case 3: k = pick<3>(bulk); break;
    case 4: k = pick<4>(bulk); break;
    case 6: k = pick<6>(bulk); break;
    case 8: k = pick<8>(bulk); break;
    default: return (int)cudaErrorInvalidValue;
  }
  if (nbytes % chunk || chunk % (kThreads * 16)) return (int)cudaErrorInvalidValue;
  const int smem = stages * chunk;
  cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return (int)e;
  k<<<ctas, kThreads, smem, static_cast<cudaStream_t>(stream)>>>(static_cast<const uint8_t*>(src), nbytes / chunk, chunk,
                                                                 evict_first, two_streams, sink, trace);
  return (int)cudaGetLastError();
}

extern "C" int rf_sm_count() {
  int dev = 0, n = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
  return n;
}
