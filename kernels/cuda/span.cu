// SpanAttention. Decode (S * G <= 16): split-K flash-decoding over only the K/V tiles that touch
// spans U sinks U local window (tiles of 64 rows, masked exactly per token), each K/V row loaded once for all
// query heads of a GQA group, partials merged by log-sum-exp. Prefill: the tile-list kernel skipping tiles
// outside every span.
#include "internal.h"

namespace ap {

constexpr int kDecThreads = 128, kDecNS = 3, kDecRows = 16;

// per sequence b: the list of tiles (t | full << 31) holding an admitted key for some query row
__global__ void __launch_bounds__(256) span_list_kernel(const __grid_constant__ FwdCommon c, const __grid_constant__ SpanArgs sa,
                                                        int* __restrict__ list, int* __restrict__ counts, int nT,
                                                        int* __restrict__ arrivals) {
  __shared__ int scan[40];
  const int b = blockIdx.x;
  for (int g = threadIdx.x; g < c.Hkv; g += blockDim.x) arrivals[b * c.Hkv + g] = 0;
  int base = 0;
  for (int t0 = 0; t0 < nT; t0 += blockDim.x) {
    const int t = t0 + threadIdx.x;
    bool mem = false, full = false;
    if (t < nT) span_tile_bits(c, sa, b, 0, c.S - 1, t * kBN, mem, full);
    int tot;
    const int off = block_excl_scan(mem ? 1 : 0, &tot, scan);
    if (mem) list[(int64_t)b * nT + base + off] = t | (full ? (int)0x80000000u : 0);
    base += tot;
  }
  if (threadIdx.x == 0) counts[b] = base;
}

constexpr int kDecMaxEnt = 1024;  // list entries a CTA keeps in shared memory (more are read from global memory)
template <int D> struct DecSmem {
  static constexpr int kQ = kDecRows * D * 2;
  static constexpr int kKV = kBN * D * 2;
  static constexpr int kTotal = kQ + 2 * kDecNS * kKV + kDecMaxEnt * 4;
  static_assert(4 * kDecRows * D * 4 + 2 * 4 * kDecRows * 4 <= 2 * kDecNS * kKV, "merge buffer fits");
};

template <typename T, int D>
__global__ void __launch_bounds__(kDecThreads, 2)
    span_decode_kernel(const __grid_constant__ FwdCommon c, const __grid_constant__ SpanArgs sa, const int* __restrict__ list,
                       const int* __restrict__ counts, int nT, float* __restrict__ part_o, float* __restrict__ part_lse,
                       int nsplit, int* __restrict__ arrivals) {
  extern __shared__ __align__(128) uint8_t smem[];
  using SM = DecSmem<D>;
  uint8_t* sQ = smem;
  uint8_t* sK = sQ + SM::kQ;
  uint8_t* sV = sK + kDecNS * SM::kKV;
  int* sEnt = reinterpret_cast<int*>(sV + kDecNS * SM::kKV);
  __shared__ int s_last;
  const int split = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int G = c.G, nr = c.S * G;

  // Q rows r = s * G + hh (query s of head g * G + hh), zero past nr
  for (int idx = tid; idx < kDecRows * (D / 8); idx += kDecThreads) {
    const int r = idx / (D / 8), ch = idx % (D / 8);
    const bool ok = r < nr;
    const int s = ok ? r / G : 0, hh = ok ? r % G : 0;
    const T* src = static_cast<const T*>(c.q) + (((int64_t)b * c.Hq + g * G + hh) * c.S + s) * D + ch * 8;
    cp_async16(smem_u32(sQ) + swz<D>(r, ch), src, ok ? 16 : 0);
  }
  cp_async_commit();

  const int cnt = counts[b];
  const int per = (cnt + nsplit - 1) / nsplit;
  const int lo = min(cnt, split * per), hi = min(cnt, lo + per);
  const int n = hi - lo;
  const int* lstg = list + (int64_t)b * nT + lo;
  for (int e = tid; e < min(n, kDecMaxEnt); e += kDecThreads) sEnt[e] = lstg[e];
  __syncthreads();
  auto lst = [&](int e) { return e < kDecMaxEnt ? sEnt[e] : lstg[e]; };
  const int64_t kvo = ((int64_t)b * c.Hkv + g) * c.T * D;
  const T* kg = static_cast<const T*>(c.k) + kvo;
  const T* vg = static_cast<const T*>(c.v) + kvo;
  const uint32_t sK0 = smem_u32(sK), sV0 = smem_u32(sV);

  auto load = [&](int e, int st) {
    const int r0 = (lst(e) & 0x7fffffff) * kBN;
    const uint32_t dk = sK0 + st * SM::kKV, dv = sV0 + st * SM::kKV;
#pragma unroll
    for (int it = 0; it < kBN * (D / 8) / kDecThreads; ++it) {
      const int idx = tid + it * kDecThreads;
      const int r = idx / (D / 8), ch = idx % (D / 8), gr = r0 + r;
      const bool ok = gr < c.T;
      const int64_t go = (int64_t)(ok ? gr : 0) * D + ch * 8;
      cp_async16(dk + swz<D>(r, ch), kg + go, ok ? 16 : 0);
      cp_async16(dv + swz<D>(r, ch), vg + go, ok ? 16 : 0);
    }
  };
#pragma unroll
  for (int s = 0; s < kDecNS - 1; ++s) {
    if (s < n) load(s, s);
    cp_async_commit();
  }
  cp_async_wait<kDecNS - 1>();  // Q (first group) has landed
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(qf[kk], smem_u32(sQ) + swz<D>(lane & 15, 2 * kk + (lane >> 4)));

  float o[D / 8][4];
#pragma unroll
  for (int d = 0; d < D / 8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float mrow[2] = {kNegInf, kNegInf}, lrow[2] = {0.f, 0.f};
  // the two rows this thread holds
  int ri[2], rh[2];
  bool rv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int rr = (lane >> 2) + 8 * r;
    rv[r] = rr < nr;
    ri[r] = rv[r] ? rr / G : 0;
    rh[r] = g * G + (rv[r] ? rr % G : 0);
  }

  for (int e = 0; e < n; ++e) {
    cp_async_wait<kDecNS - 2>();  // tile e landed (Q too)
    __syncthreads();              // and every warp is done with tile e-1, whose stage the next load reuses
    const int nx = e + kDecNS - 1;
    if (nx < n) load(nx, nx % kDecNS);
    cp_async_commit();
    const int ent = lst(e);
    const bool full = ent < 0;
    const int st = e % kDecNS;
    const uint32_t sk = sK0 + st * SM::kKV, sv = sV0 + st * SM::kKV;
    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t kf[4];
      ldsm_x4(kf, sk + swz<D>(warp * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
      mma16816<T>(s[0], qf[kk], kf);
      mma16816<T>(s[1], qf[kk], kf + 2);
    }
    const int j0 = (ent & 0x7fffffff) * kBN + warp * 16 + (lane & 3) * 2;
    if (full && !c.has_mask) {
#pragma unroll
      for (int nb = 0; nb < 2; ++nb)
#pragma unroll
        for (int q = 0; q < 4; ++q) s[nb][q] *= c.scale_log2;
    } else {
#pragma unroll
      for (int nb = 0; nb < 2; ++nb)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int r = q >> 1, j = j0 + nb * 8 + (q & 1);
          float x = s[nb][q] * c.scale_log2;
          bool ok = rv[r];
          if (ok && !full) {
            const int p = c.T - c.S + ri[r];
            ok = j < c.T && (!c.causal || j <= p) &&
                 (j < sa.sink || abs(p - j) < sa.W || sa.sp.contains(b, ri[r], j));
          }
          if (!ok) x = kNegInf;
          else if (c.has_mask) x += c.mask.at(b, rh[r], ri[r], j) * kLog2e;
          s[nb][q] = x;
        }
    }
    float mx[2] = {mrow[0], mrow[1]}, mu[2], alpha[2], rs[2] = {0.f, 0.f};
#pragma unroll
    for (int nb = 0; nb < 2; ++nb) {
      mx[0] = fmaxf(mx[0], fmaxf(s[nb][0], s[nb][1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[nb][2], s[nb][3]));
    }
    softmax_rows(mx, mrow, mu, alpha);
#pragma unroll
    for (int nb = 0; nb < 2; ++nb) {
      s[nb][0] = exp2f(s[nb][0] - mu[0]);
      s[nb][1] = exp2f(s[nb][1] - mu[0]);
      s[nb][2] = exp2f(s[nb][2] - mu[1]);
      s[nb][3] = exp2f(s[nb][3] - mu[1]);
      rs[0] += s[nb][0] + s[nb][1];
      rs[1] += s[nb][2] + s[nb][3];
    }
    lrow[0] = lrow[0] * alpha[0] + rs[0];
    lrow[1] = lrow[1] * alpha[1] + rs[1];
#pragma unroll
    for (int d = 0; d < D / 8; ++d) {
      o[d][0] *= alpha[0];
      o[d][1] *= alpha[0];
      o[d][2] *= alpha[1];
      o[d][3] *= alpha[1];
    }
    const uint32_t pa4[4] = {pack2<T>(s[0][0], s[0][1]), pack2<T>(s[0][2], s[0][3]), pack2<T>(s[1][0], s[1][1]),
                             pack2<T>(s[1][2], s[1][3])};
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp) {
      uint32_t vf[4];
      ldsm_x4_t(vf, sv + swz<D>(warp * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
      mma16816<T>(o[2 * dp], pa4, vf);
      mma16816<T>(o[2 * dp + 1], pa4, vf + 2);
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  // ---- merge the 4 warps (each saw a quarter of every tile) through shared memory
  float* sO = reinterpret_cast<float*>(sK);               // [4][16][D]
  float* sM = sO + 4 * kDecRows * D;                      // [4][16]
  float* sL = sM + 4 * kDecRows;                          // [4][16]
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float l = row_sum(lrow[r]);
    const int rr = (lane >> 2) + 8 * r;
    if ((lane & 3) == 0) {
      sM[warp * kDecRows + rr] = mrow[r];
      sL[warp * kDecRows + rr] = l;
    }
#pragma unroll
    for (int d = 0; d < D / 8; ++d) {
      const int col = d * 8 + (lane & 3) * 2;
      sO[(warp * kDecRows + rr) * D + col] = o[d][2 * r];
      sO[(warp * kDecRows + rr) * D + col + 1] = o[d][2 * r + 1];
    }
  }
  __syncthreads();
  const int64_t pbase = (((int64_t)b * c.Hkv + g) * nsplit + split) * kDecRows;
  for (int idx = tid; idx < nr * D; idx += kDecThreads) {
    const int r = idx / D, d = idx % D;
    float M = kNegInf;
#pragma unroll
    for (int w = 0; w < 4; ++w) M = fmaxf(M, sM[w * kDecRows + r]);
    float L = 0.f, acc = 0.f;
    if (M != kNegInf) {
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float f = exp2f(sM[w * kDecRows + r] - M);
        L += sL[w * kDecRows + r] * f;
        acc += sO[(w * kDecRows + r) * D + d] * f;
      }
    }
    part_o[(pbase + r) * D + d] = L > 0.f ? acc / L : 0.f;
    if (d == 0) part_lse[pbase + r] = L > 0.f ? M + log2f(L) : kNegInf;
  }
  // the last CTA of this (b, g) to finish merges the nsplit partials (log-sum-exp weights) into O
  __threadfence();
  __syncthreads();
  if (tid == 0) s_last = atomicAdd(&arrivals[b * c.Hkv + g], 1) == nsplit - 1;
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const int64_t gbase = ((int64_t)b * c.Hkv + g) * nsplit * kDecRows;
  for (int idx = tid; idx < nr * D; idx += kDecThreads) {
    const int r = idx / D, d = idx % D;
    float M = kNegInf;
    for (int k = 0; k < nsplit; ++k) M = fmaxf(M, __ldcg(part_lse + gbase + (int64_t)k * kDecRows + r));
    float acc = 0.f, L = 0.f;
    if (M != kNegInf) {
      for (int k = 0; k < nsplit; ++k) {
        const float w = exp2f(__ldcg(part_lse + gbase + (int64_t)k * kDecRows + r) - M);
        L += w;
        acc += w * __ldcg(part_o + (gbase + (int64_t)k * kDecRows + r) * D + d);
      }
    }
    const int sq = r / G, hh = r % G;
    static_cast<T*>(c.o)[(((int64_t)b * c.Hq + g * G + hh) * c.S + sq) * D + d] = from_f<T>(L > 0.f ? acc / L : 0.f);
  }
  if (tid == 0) arrivals[b * c.Hkv + g] = 0;
}

static int check_span(const ApAttn& a, const ApSpanAttrs& at) {
  int e = check_common(a);
  if (e) return e;
  if (at.sink_tokens < 0 || at.local_window < 0 || at.n_spans < 0) return AP_ERR_ARGS;
  if (at.n_spans > 0 && !at.spans) return AP_ERR_ARGS;
  if (at.spans_batch != 1 && at.spans_batch != a.B) return AP_ERR_ARGS;
  return AP_OK;
}

static bool span_decode_ok(const ApAttn& a) { return fast_dims(a) && a.S * (a.Hq / a.Hkv) <= kDecRows; }

static int g_split_waves = 2;  // decode CTAs per SM the split count aims at (ap_set_span_split_waves)

static int span_nsplit(const ApAttn& a) {
  const int nT = (a.T + kBN - 1) / kBN;
  int ns = (g_split_waves * num_sms()) / (a.B * a.Hkv);
  return max(1, min(ns, nT));
}

static size_t carve_span(const ApAttn& a, Carver& cv, int** list, int** counts, float** po, float** pl, int** arr) {
  const int nT = (a.T + kBN - 1) / kBN, ns = span_nsplit(a);
  *list = cv.take<int>((size_t)a.B * nT);
  *counts = cv.take<int>((size_t)a.B);
  *arr = cv.take<int>((size_t)a.B * a.Hkv);
  *po = cv.take<float>((size_t)a.B * a.Hkv * ns * kDecRows * a.D);
  *pl = cv.take<float>((size_t)a.B * a.Hkv * ns * kDecRows);
  return cv.off;
}

static SpanArgs make_span_args(const ApAttn& a, const ApSpanAttrs& at) {
  SpanArgs sa;
  sa.sp.ptr = at.spans;
  sa.sp.Bs = at.spans_batch;
  sa.sp.n = at.n_spans;
  sa.sp.per_query = at.per_query;
  sa.sp.S = a.S;
  sa.sp.T = a.T;
  sa.sink = at.sink_tokens;
  sa.W = at.local_window;
  return sa;
}

template <typename T, int D>
static cudaError_t launch_decode(const FwdCommon& c, const SpanArgs& sa, const int* list, const int* counts, int nT,
                                 float* po, float* pl, int ns, int* arr, cudaStream_t st) {
  const int smem = DecSmem<D>::kTotal;
  auto kern = span_decode_kernel<T, D>;
  cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  dim3 grid(ns, c.Hkv, c.B);
  kern<<<grid, kDecThreads, smem, st>>>(c, sa, list, counts, nT, po, pl, ns, arr);
  return cudaGetLastError();
}

}  // namespace ap

using namespace ap;

extern "C" size_t ap_span_workspace_size(const ApAttn* a, const ApSpanAttrs* at) {
  if (!a || !at || check_span(*a, *at)) return 0;
  if (!span_decode_ok(*a)) return 0;
  Carver cv(nullptr);
  int *l, *c, *arr;
  float *po, *pl;
  return carve_span(*a, cv, &l, &c, &po, &pl, &arr) + 256;
}

extern "C" int ap_span_forward(const ApAttn* ap_, const ApSpanAttrs* at_, void* ws, size_t ws_bytes, void* stream, int path) {
  if (!ap_ || !at_) return AP_ERR_ARGS;
  const ApAttn& a = *ap_;
  const ApSpanAttrs& at = *at_;
  int err = check_span(a, at);
  if (err) return err;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const SpanArgs sa = make_span_args(a, at);
  count_call();
  const bool fast = path == AP_PATH_FAST || (path == AP_PATH_AUTO && fast_dims(a));
  if (fast) {
    if (!fast_dims(a)) return AP_ERR_UNSUPPORTED;
    FwdCommon c = make_common(a);
    if (span_decode_ok(a)) {
      Carver cv(ws);
      int *list, *counts, *arr;
      float *po, *pl;
      if (carve_span(a, cv, &list, &counts, &po, &pl, &arr) > ws_bytes) return AP_ERR_WORKSPACE;
      const int nT = (a.T + kBN - 1) / kBN, ns = span_nsplit(a);
      span_list_kernel<<<a.B, 256, 0, st>>>(c, sa, list, counts, nT, arr);
      if (cudaGetLastError() != cudaSuccess) return AP_ERR_CUDA;
      return cuda_status(dispatch_16bit(a.dtype, a.D, [&](auto t, auto d) {
        return launch_decode<typename decltype(t)::type, decltype(d)::value>(c, sa, list, counts, nT, po, pl, ns, arr, st);
      }));
    }
    return cuda_status(dispatch_16bit(a.dtype, a.D, [&](auto t, auto d) {
      return launch_fwd<typename decltype(t)::type, decltype(d)::value, 2, SpanPolicy>(c, sa, st);
    }));
  }
  GenericArgs g{};
  g.mode = 1;
  g.sp = sa.sp;
  g.sink = sa.sink;
  g.W = sa.W;
  return launch_generic(a, g, st);
}

extern "C" void ap_set_span_split_waves(int w) { g_split_waves = w > 0 ? w : 2; }
