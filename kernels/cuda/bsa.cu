// BlockSparseAttention: GPU layout builder (pooled means, block scores, top-k / cumulative-mass selection
// with sinks and local blocks) and the attention over the kept blocks. No host synchronisation.
#include "internal.h"
#include "flash_fwd_sm90.cuh"

namespace ap {

// ---------------------------------------------------------------------------------------------
// mean over blocks of rows: X [BH, L, D] -> out [BH, nBlk, D] (fp32)
template <typename T>
__global__ void __launch_bounds__(256) pool_kernel(const T* __restrict__ x, float* __restrict__ out, int L, int D, int bs,
                                                   int nBlk) {
  __shared__ float red[2048];
  const int blk = blockIdx.x;
  const int64_t bh = blockIdx.y;
  const int r0 = blk * bs, len = min(bs, L - r0);
  const T* xb = x + (bh * L + r0) * (int64_t)D;
  // lanes over dims (2 elements each when D is even), row lanes over the rest
  const int dl = (D + 1) / 2;                 // dim pairs
  const int DL = dl < 256 ? dl : 256;         // dim lanes
  const int RL = min(256 / DL, 2048 / (2 * DL) > 0 ? 2048 / (2 * DL) : 1);  // row lanes
  const int tid = threadIdx.x, tl = tid % DL, rl = tid / DL;
  for (int dp0 = 0; dp0 < dl; dp0 += DL) {
    const int dp = dp0 + tl;
    float s0 = 0.f, s1 = 0.f;
    if (rl < RL && dp < dl) {
      const int d = 2 * dp;
      for (int r = rl; r < len; r += RL) {
        const T* xr = xb + (int64_t)r * D;
        s0 += to_f(xr[d]);
        if (d + 1 < D) s1 += to_f(xr[d + 1]);
      }
      red[rl * 2 * DL + 2 * tl] = s0;
      red[rl * 2 * DL + 2 * tl + 1] = s1;
    }
    __syncthreads();
    for (int e = tid; e < 2 * DL; e += blockDim.x) {
      const int d = 2 * dp0 + e;
      if (d < D) {
        float s = 0.f;
        for (int k = 0; k < RL; ++k) s += red[k * 2 * DL + e];
        out[(bh * nBlk + blk) * (int64_t)D + d] = s / (float)len;
      }
    }
    __syncthreads();
  }
}

template <typename T>
static void launch_pool(const void* x, float* out, int BH, int L, int D, int bs, int nBlk, cudaStream_t st) {
  dim3 grid(nBlk, BH);
  pool_kernel<T><<<grid, 256, 0, st>>>(static_cast<const T*>(x), out, L, D, bs, nBlk);
}

// ---------------------------------------------------------------------------------------------
// block scores: sc[b,h,qb,kb] = scale * qp[b,h,qb,:] . kp[b,g,kb,:]  (64x64 tiles, 4x4 per thread)
__global__ void __launch_bounds__(256) score_kernel(const float* __restrict__ qp, const float* __restrict__ kp,
                                                    float* __restrict__ sc, int Hq, int G, int nQB, int nKB, int D,
                                                    float scale, int causal, int S, int T, int bs) {
  __shared__ float As[16][68];
  __shared__ float Bs[16][68];
  const int bh = blockIdx.z;
  const int h = bh % Hq, b = bh / Hq;
  const int Hkv = Hq / G;
  const int q0 = blockIdx.y * 64, k0 = blockIdx.x * 64;
  if (causal) {
    const int qlast = min(q0 + 63, nQB - 1);
    const int pl = T - S + min((qlast + 1) * bs, S) - 1;
    if (pl < 0 || k0 * bs > pl) return;  // no candidate in this tile
  }
  const float* A = qp + (int64_t)bh * nQB * D;
  const float* Bm = kp + ((int64_t)b * Hkv + h / G) * nKB * D;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  float acc[4][4] = {};
  for (int d0 = 0; d0 < D; d0 += 16) {
    for (int e = tid; e < 64 * 16; e += 256) {
      const int r = e / 16, dd = e % 16, d = d0 + dd;
      As[dd][r] = (q0 + r < nQB && d < D) ? A[(int64_t)(q0 + r) * D + d] : 0.f;
      Bs[dd][r] = (k0 + r < nKB && d < D) ? Bm[(int64_t)(k0 + r) * D + d] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int dd = 0; dd < 16; ++dd) {
      float av[4], bv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        av[u] = As[dd][ty + 16 * u];
        bv[u] = Bs[dd][tx + 16 * u];
      }
#pragma unroll
      for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 4; ++v) acc[u][v] = fmaf(av[u], bv[v], acc[u][v]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const int qb = q0 + ty + 16 * u;
    if (qb >= nQB) continue;
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int kb = k0 + tx + 16 * v;
      if (kb < nKB) sc[((int64_t)bh * nQB + qb) * nKB + kb] = acc[u][v] * scale;
    }
  }
}

// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ uint32_t ordered_key(float f) {
  if (f == 0.f) f = 0.f;  // -0 ties with +0
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ float block_sum(float v, float* red) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (l == 0) red[w] = v;
  __syncthreads();
  float s = 0.f;
  for (int k = 0; k < nw; ++k) s += red[k];
  __syncthreads();
  return s;
}
__device__ float block_max(float v, float* red) {
  for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (l == 0) red[w] = v;
  __syncthreads();
  float s = kNegInf;
  for (int k = 0; k < nw; ++k) s = fmaxf(s, red[k]);
  __syncthreads();
  return s;
}

struct SelectArgs {
  int Hq, nQB, nKB, S, T, bs, causal, sink, L;
  float density, mass;
};

// one CTA (128 threads) per (b, h, qb): writes layout row [nKB] (1 = kept)
__global__ void __launch_bounds__(128) select_kernel(const float* __restrict__ scores, uint8_t* __restrict__ layout,
                                                     const SelectArgs A, int* __restrict__ dbg) {
  __shared__ int hist[256];
  __shared__ float hmass[256];
  __shared__ float red[32];
  __shared__ int scan[40];
  __shared__ int s_digit, s_cut;
  __shared__ float s_trem;
  const int64_t row = blockIdx.x;
  const int qb = (int)(row % A.nQB);
  const float* sc = scores + row * A.nKB;
  uint8_t* lay = layout + row * A.nKB;
  const int tid = threadIdx.x;
  const int plast = A.T - A.S + min((qb + 1) * A.bs, A.S) - 1;
  const int nC = A.causal ? (plast < 0 ? 0 : min(A.nKB, plast / A.bs + 1)) : A.nKB;
  const int kd = min(floordiv(plast, A.bs), A.nKB - 1);
  auto forced = [&](int kb) { return kb < nC && (kb < A.sink || (kb > kd - A.L && kb <= kd)); };
  auto active = [&](int kb) { return kb < nC && !forced(kb); };
  int nF = 0;
  for (int kb = tid; kb < nC; kb += blockDim.x) nF += forced(kb);
  nF = (int)block_sum((float)nF, red);
  const int M = nC - nF;

  const bool massmode = A.mass > 0.f;
  int n = 0;  // density mode: how many non-forced to keep
  // int flags: a bool keep_all read back as 1 for n < M on the H100 (ptxas 13.0, PTX was right), see NOTES.md
  int keep_all = 0, keep_none = 0;
  float smax = 0.f, trem = 0.f;
  if (!massmode) {
    n = (int)ceil((double)A.density * (double)nC) - nF;
    n = max(0, min(n, M));
    keep_none = n == 0 ? 1 : 0;
    keep_all = (n == M && n > 0) ? 1 : 0;
  } else {
    float mx = kNegInf;
    for (int kb = tid; kb < nC; kb += blockDim.x) mx = fmaxf(mx, sc[kb]);
    smax = block_max(mx, red);
    float z = 0.f, fm = 0.f;
    for (int kb = tid; kb < nC; kb += blockDim.x) {
      const float e = expf(sc[kb] - smax) * (float)min(A.bs, A.T - kb * A.bs);
      z += e;
      if (forced(kb)) fm += e;
    }
    z = block_sum(z, red);
    fm = block_sum(fm, red);
    trem = A.mass * z - fm;
    keep_none = (!(trem > 0.f) || M == 0) ? 1 : 0;
  }

  uint32_t U = 0;
  int rem_ties = 0;  // density mode: ties at U to keep (first in kb order)
  if (!keep_none && !keep_all) {
    uint32_t prefix = 0;
    int rem = n;
    for (int pass = 0; pass < 4; ++pass) {
      const int shift = 24 - 8 * pass;
      const uint32_t hmask = pass == 0 ? 0u : (0xffffffffu << (shift + 8));
      for (int d = tid; d < 256; d += blockDim.x) {
        hist[d] = 0;
        hmass[d] = 0.f;
      }
      __syncthreads();
      for (int kb = tid; kb < nC; kb += blockDim.x) {
        if (!active(kb)) continue;
        const float s = sc[kb];
        const uint32_t key = ordered_key(s);
        if ((key & hmask) != prefix) continue;
        const int dgt = (key >> shift) & 255;
        atomicAdd(&hist[dgt], 1);
        if (massmode) atomicAdd(&hmass[dgt], expf(s - smax) * (float)min(A.bs, A.T - kb * A.bs));
      }
      __syncthreads();
      if (tid == 0) {
        int dsel = -1;
        if (!massmode) {
          int cum = 0;
          for (int d = 255; d >= 0; --d) {
            if (cum + hist[d] >= rem) { dsel = d; rem -= cum; break; }
            cum += hist[d];
          }
          s_digit = dsel;
          scan[0] = rem;
        } else {
          float cum = 0.f;
          for (int d = 255; d >= 0; --d) {
            if (!hist[d]) continue;
            if (cum + hmass[d] >= trem) { dsel = d; trem -= cum; break; }
            cum += hmass[d];
          }
          if (dsel < 0) {  // never reached within this bucket: keep all of it
            for (int d = 0; d < 256; ++d)
              if (hist[d]) { dsel = d; break; }
            trem = INFINITY;
          }
          s_digit = dsel;
          s_trem = trem;
        }
      }
      __syncthreads();
      prefix |= (uint32_t)s_digit << shift;
      if (!massmode) rem = scan[0];
      else trem = s_trem;
      __syncthreads();
    }
    U = prefix;
    rem_ties = rem;
    if (massmode) {
      // ties at U in kb order until the remaining mass is reached (ties are rare: serial)
      if (tid == 0) {
        float acc = 0.f;
        int cut = nC;  // keep ties with kb < cut
        for (int kb = 0; kb < nC; ++kb) {
          if (!active(kb) || ordered_key(sc[kb]) != U) continue;
          acc += expf(sc[kb] - smax) * (float)min(A.bs, A.T - kb * A.bs);
          if (acc >= trem) { cut = kb + 1; break; }
        }
        s_cut = cut;
      }
      __syncthreads();
    }
  }
  if (dbg && tid == 0) {  // debugging aid (ap_bsa_debug_buffer): per row nC, nF, M, n, flags, U, ties to keep
    int* d = dbg + row * 8;
    d[0] = nC; d[1] = nF; d[2] = M; d[3] = n; d[4] = keep_none; d[5] = keep_all; d[6] = (int)U; d[7] = rem_ties;
  }

  // write the layout row; density-mode ties at U go to the lowest kb first
  int tie_base = 0;
  for (int k0 = 0; k0 < A.nKB; k0 += blockDim.x) {
    const int kb = k0 + tid;
    bool keep = false, tie = false;
    if (kb < A.nKB) {
      if (forced(kb)) keep = true;
      else if (active(kb) && !keep_none) {
        if (keep_all) keep = true;
        else {
          const uint32_t key = ordered_key(sc[kb]);
          if (key > U) keep = true;
          else if (key == U) {
            if (massmode) keep = kb < s_cut;
            else tie = true;
          }
        }
      }
    }
    if (!massmode && !keep_none && !keep_all) {
      int tot;
      const int r = block_excl_scan(tie ? 1 : 0, &tot, scan);
      if (tie) keep = tie_base + r < rem_ties;
      tie_base += tot;
    }
    if (kb < A.nKB) lay[kb] = keep ? 1 : 0;
  }
}

// one CTA (128 threads) per (b, h, qb), nKB <= kSortMax: bitonic sort of (score desc, kb asc) in shared memory,
// then the first n of the order (density) or the shortest prefix reaching the mass threshold.
constexpr int kSortMax = 4096;
__global__ void __launch_bounds__(128) select_sort_kernel(const float* __restrict__ scores, uint8_t* __restrict__ layout,
                                                          const SelectArgs A, int P) {
  extern __shared__ unsigned long long skey[];  // [P]
  __shared__ float red[32];
  __shared__ float carry_s;
  __shared__ int cut_s;
  const int64_t row = blockIdx.x;
  const int qb = (int)(row % A.nQB);
  const float* sc = scores + row * A.nKB;
  uint8_t* lay = layout + row * A.nKB;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int plast = A.T - A.S + min((qb + 1) * A.bs, A.S) - 1;
  const int nC = A.causal ? (plast < 0 ? 0 : min(A.nKB, plast / A.bs + 1)) : A.nKB;
  const int kd = min(floordiv(plast, A.bs), A.nKB - 1);
  auto forced = [&](int kb) { return kb < nC && (kb < A.sink || (kb > kd - A.L && kb <= kd)); };
  auto active = [&](int kb) { return kb < nC && !forced(kb); };
  int nF = 0;
  for (int kb = tid; kb < nC; kb += nt) nF += forced(kb);
  nF = (int)block_sum((float)nF, red);
  const int M = nC - nF;
  for (int i = tid; i < P; i += nt) {
    unsigned long long key = ~0ull;
    if (i < A.nKB && active(i)) key = ((unsigned long long)(~ordered_key(sc[i])) << 32) | (unsigned)i;
    skey[i] = key;
  }
  __syncthreads();
  for (int kk = 2; kk <= P; kk <<= 1) {
    for (int j = kk >> 1; j > 0; j >>= 1) {
      for (int i = tid; i < P; i += nt) {
        const int ixj = i ^ j;
        if (ixj > i) {
          const unsigned long long a = skey[i], b = skey[ixj];
          const bool up = (i & kk) == 0;
          if ((a > b) == up) { skey[i] = b; skey[ixj] = a; }
        }
      }
      __syncthreads();
    }
  }
  // n: how many of the sorted non-forced blocks to keep
  int n;
  if (A.mass <= 0.f) {
    n = (int)ceil((double)A.density * (double)nC) - nF;
    n = max(0, min(n, M));
  } else {
    float mx = kNegInf;
    for (int kb = tid; kb < nC; kb += nt) mx = fmaxf(mx, sc[kb]);
    const float smax = block_max(mx, red);
    float z = 0.f, fm = 0.f;
    for (int kb = tid; kb < nC; kb += nt) {
      const float e = expf(sc[kb] - smax) * (float)min(A.bs, A.T - kb * A.bs);
      z += e;
      if (forced(kb)) fm += e;
    }
    z = block_sum(z, red);
    fm = block_sum(fm, red);
    const float target = A.mass * z;  // keep sorted position k while fm + (mass before k) < target
    if (tid == 0) { carry_s = fm; cut_s = M; }
    __syncthreads();
    for (int k0 = 0; k0 < M; k0 += nt) {
      const int k = k0 + tid;
      float e = 0.f;
      if (k < M) {
        const int kb = (int)(skey[k] & 0xffffffffu);
        e = expf(sc[kb] - smax) * (float)min(A.bs, A.T - kb * A.bs);
      }
      // inclusive scan of e over the CTA
      float x = e;
      const int lane = tid & 31, w = tid >> 5;
      for (int o = 1; o < 32; o <<= 1) {
        const float y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
      }
      if (lane == 31) red[w] = x;
      __syncthreads();
      float wb = 0.f;
      for (int u = 0; u < w; ++u) wb += red[u];
      const float before = carry_s + wb + x - e;  // mass of forced + sorted positions < k
      const bool stop = k < M && !(before < target);
      if (stop) atomicMin(&cut_s, k);
      float tot = 0.f;
      for (int u = 0; u < (nt >> 5); ++u) tot += red[u];
      __syncthreads();
      if (tid == 0) carry_s += tot;
      __syncthreads();
      if (cut_s < M) break;
    }
    n = cut_s;
  }
  for (int kb = tid; kb < A.nKB; kb += nt) lay[kb] = forced(kb) ? 1 : 0;
  __syncthreads();
  for (int k = tid; k < n; k += nt) lay[(int)(skey[k] & 0xffffffffu)] = 1;
}

// dense: every candidate kept
__global__ void dense_layout_kernel(uint8_t* layout, int nQB, int nKB, int S, int T, int bs, int causal, int64_t rows) {
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= rows * nKB) return;
  const int kb = (int)(idx % nKB);
  const int qb = (int)((idx / nKB) % nQB);
  const int plast = T - S + min((qb + 1) * bs, S) - 1;
  const int nC = causal ? (plast < 0 ? 0 : min(nKB, plast / bs + 1)) : nKB;
  layout[idx] = kb < nC ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
static int* g_debug = nullptr;
static int g_force_radix = 0;

static bool is_dense(const ApBsaAttrs& at) { return at.mass_threshold <= 0.f && at.density >= 1.f; }

static int check_bsa(const ApAttn& a, const ApBsaAttrs& at) {
  int e = check_common(a);
  if (e) return e;
  const int bs = at.block_size;
  if (bs < 16 || bs > 256 || (bs & (bs - 1))) return AP_ERR_ARGS;
  if (!(at.density > 0.f && at.density <= 1.f)) return AP_ERR_ARGS;
  if (!(at.mass_threshold >= 0.f && at.mass_threshold <= 1.f)) return AP_ERR_ARGS;
  if (at.sink_blocks < 0 || at.local_blocks < 0) return AP_ERR_ARGS;
  return AP_OK;
}

static size_t carve_bsa(const ApAttn& a, const ApBsaAttrs& at, Carver& cv, float** qp, float** kp, float** sc,
                        uint8_t** lay, int** next_item, bool need_layout) {
  const int bs = at.block_size;
  const int nQB = (a.S + bs - 1) / bs, nKB = (a.T + bs - 1) / bs;
  const bool dense = is_dense(at);
  *qp = *kp = *sc = nullptr;
  *lay = nullptr;
  if (!dense) {
    *qp = cv.take<float>((size_t)a.B * a.Hq * nQB * a.D);
    *kp = cv.take<float>((size_t)a.B * a.Hkv * nKB * a.D);
    *sc = cv.take<float>((size_t)a.B * a.Hq * nQB * nKB);
  }
  if (need_layout) *lay = cv.take<uint8_t>((size_t)a.B * a.Hq * nQB * nKB);
  *next_item = cv.take<int>(1);  // the Hopper kernel's work counter
  return cv.off;
}

static bool bsa_fast_ok(const ApAttn& a, const ApBsaAttrs& at) { return fast_dims(a) && at.block_size >= 64; }

// The tensor-core forward over a layout: the Hopper kernel (wgmma + TMA) where it can run and the forward
// variant is the default, else the mma.sync kernel.
template <typename T, int D>
static cudaError_t launch_bsa_typed(const FwdCommon& c, const BsaArgs& ba, int* next_item, cudaStream_t st) {
  if (fwd_variant() == 0 || fwd_variant() == 3) {
    const cudaError_t e = launch_bsa_fwd_sm90<T, D>(c, ba, next_item, st);
    if (e != cudaErrorNotSupported) return e;
  }
  return launch_fwd<T, D, 2, BsaPolicy>(c, ba, st);
}
// Attention over a layout (nullptr: every candidate block kept) on the requested path.
static int attend(const ApAttn& a, const ApBsaAttrs& at, const uint8_t* layout, int* next_item, int path,
                  cudaStream_t st) {
  const int bs = at.block_size;
  const int nQB = (a.S + bs - 1) / bs, nKB = (a.T + bs - 1) / bs;
  const bool fast = path == AP_PATH_FAST || (path == AP_PATH_AUTO && bsa_fast_ok(a, at));
  if (fast) {
    if (!bsa_fast_ok(a, at)) return AP_ERR_UNSUPPORTED;
    const FwdCommon c = make_common(a);
    const BsaArgs ba{layout, bs, nQB, nKB, layout ? 0 : 1};
    return cuda_status(dispatch_16bit(a.dtype, a.D, [&](auto t, auto d) {
      return launch_bsa_typed<typename decltype(t)::type, decltype(d)::value>(c, ba, next_item, st);
    }));
  }
  GenericArgs g{};
  g.mode = 0;
  g.layout = layout;
  g.bs = bs;
  g.nQB = nQB;
  g.nKB = nKB;
  return launch_generic(a, g, st);
}

}  // namespace ap

using namespace ap;

extern "C" size_t ap_bsa_workspace_size(const ApAttn* a, const ApBsaAttrs* at) {
  if (!a || !at || check_bsa(*a, *at)) return 0;
  Carver cv(nullptr);
  float *qp, *kp, *sc;
  uint8_t* lay;
  int* next_item;
  // the layout lives in the workspace unless the caller asks for it (then it is the caller's buffer)
  return carve_bsa(*a, *at, cv, &qp, &kp, &sc, &lay, &next_item, !is_dense(*at)) + 256;
}

extern "C" int ap_bsa_forward(const ApAttn* ap_, const ApBsaAttrs* at_, uint8_t* layout_out, void* ws, size_t ws_bytes,
                              void* stream, int path) {
  if (!ap_ || !at_) return AP_ERR_ARGS;
  const ApAttn& a = *ap_;
  const ApBsaAttrs& at = *at_;
  int err = check_bsa(a, at);
  if (err) return err;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int bs = at.block_size;
  const int nQB = (a.S + bs - 1) / bs, nKB = (a.T + bs - 1) / bs;
  const bool dense = is_dense(at);
  Carver cv(ws);
  float *qp, *kp, *sc;
  uint8_t* lay;
  int* next_item;
  const size_t need = carve_bsa(a, at, cv, &qp, &kp, &sc, &lay, &next_item, !dense && !layout_out);
  if (need > ws_bytes && (need > 0)) return AP_ERR_WORKSPACE;
  if (layout_out) lay = layout_out;
  const float scale = eff_scale(a);
  count_call();

  if (dense) {
    if (layout_out) {
      const int64_t rows = (int64_t)a.B * a.Hq * nQB;
      const int64_t tot = rows * nKB;
      dense_layout_kernel<<<(unsigned)((tot + 255) / 256), 256, 0, st>>>(layout_out, nQB, nKB, a.S, a.T, bs, a.causal, rows);
      if ((err = cuda_status(cudaGetLastError()))) return err;
    }
  } else {
    // pooled means of Q and K
    if (a.dtype == AP_F32) {
      launch_pool<float>(a.q, qp, a.B * a.Hq, a.S, a.D, bs, nQB, st);
      launch_pool<float>(a.k, kp, a.B * a.Hkv, a.T, a.D, bs, nKB, st);
    } else if (a.dtype == AP_F16) {
      launch_pool<__half>(a.q, qp, a.B * a.Hq, a.S, a.D, bs, nQB, st);
      launch_pool<__half>(a.k, kp, a.B * a.Hkv, a.T, a.D, bs, nKB, st);
    } else {
      launch_pool<__nv_bfloat16>(a.q, qp, a.B * a.Hq, a.S, a.D, bs, nQB, st);
      launch_pool<__nv_bfloat16>(a.k, kp, a.B * a.Hkv, a.T, a.D, bs, nKB, st);
    }
    if ((err = cuda_status(cudaGetLastError()))) return err;
    dim3 g2((nKB + 63) / 64, (nQB + 63) / 64, a.B * a.Hq);
    score_kernel<<<g2, 256, 0, st>>>(qp, kp, sc, a.Hq, a.Hq / a.Hkv, nQB, nKB, a.D, scale, a.causal, a.S, a.T, bs);
    if ((err = cuda_status(cudaGetLastError()))) return err;
    SelectArgs sa{a.Hq, nQB, nKB, a.S, a.T, bs, a.causal, at.sink_blocks, at.local_blocks, at.density, at.mass_threshold};
    if (nKB <= kSortMax && !g_force_radix) {
      int P = 32;
      while (P < nKB) P <<= 1;
      const size_t sm = (size_t)P * sizeof(unsigned long long);
      if (sm > 48 * 1024) cudaFuncSetAttribute(select_sort_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm);
      select_sort_kernel<<<(unsigned)((int64_t)a.B * a.Hq * nQB), 128, sm, st>>>(sc, lay, sa, P);
    } else {
      select_kernel<<<(unsigned)((int64_t)a.B * a.Hq * nQB), 128, 0, st>>>(sc, lay, sa, g_debug);
    }
    if ((err = cuda_status(cudaGetLastError()))) return err;
  }

  return attend(a, at, dense ? nullptr : lay, next_item, path, st);
}

extern "C" int ap_bsa_attend(const ApAttn* ap_, const ApBsaAttrs* at_, const uint8_t* layout, void* ws,
                             size_t ws_bytes, void* stream, int path) {
  if (!ap_ || !at_) return AP_ERR_ARGS;
  const ApAttn& a = *ap_;
  const ApBsaAttrs& at = *at_;
  int err = check_bsa(a, at);
  if (err) return err;
  count_call();
  int* next_item = ws && ws_bytes >= sizeof(int) ? static_cast<int*>(ws) : nullptr;
  return attend(a, at, layout, next_item, path, static_cast<cudaStream_t>(stream));
}

extern "C" void ap_bsa_debug_buffer(int* dev_ptr) { g_debug = dev_ptr; }
extern "C" void ap_bsa_force_radix(int on) { g_force_radix = on; }
