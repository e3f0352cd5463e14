// TiledAttention: per (b, kv head) compaction of K/V into fine tokens + pooled medium/coarse tiles (bias ln n),
// then one attention over [compacted tiles of the tiled region] + [exact local region at token resolution].
#include "internal.h"

namespace ap {

// scorer 0 (key norm) and 2 (learned): block importance R(kb) = mean over the block of r(j)
// scorer 1: r(j) precomputed in tok[] (probe queries)
template <typename T>
__global__ void __launch_bounds__(128) att_block_score_kernel(const T* __restrict__ k, const T* __restrict__ w,
                                                              const float* __restrict__ tok, float* __restrict__ R,
                                                              int Hkv, int T_, int D, int bs, int nKB, int scorer) {
  __shared__ float red[4];
  const int kb = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bg = (int64_t)b * Hkv + g;
  const int j0 = kb * bs, len = min(bs, T_ - j0);
  float acc = 0.f;
  for (int r = warp; r < len; r += 4) {
    const int j = j0 + r;
    float v;
    if (scorer == 1) {
      v = tok[bg * T_ + j];
    } else {
      const T* kr = k + (bg * T_ + j) * D;
      float s = 0.f;
      for (int d = lane; d < D; d += 32) {
        const float x = to_f(kr[d]);
        s += scorer == 0 ? x * x : x * to_f(w[d]);
      }
      for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      v = scorer == 0 ? sqrtf(s) : s;
    }
    acc += v;  // identical in every lane
  }
  if (lane == 0) red[warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) R[bg * nKB + kb] = (red[0] + red[1] + red[2] + red[3]) / (float)len;
}

// probe queries (scorer 1): logits of the last Sp queries of every head of the group against all keys
template <typename T>
__global__ void __launch_bounds__(128) probe_logits_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                           float* __restrict__ lg, int Hq, int Hkv, int S, int T_, int D,
                                                           int Sp, float scale) {
  extern __shared__ float qs[];
  const int r = blockIdx.y, bg = blockIdx.z;
  const int b = bg / Hkv, g = bg % Hkv, G = Hq / Hkv, R = G * Sp;
  const int hh = r / Sp, s = S - Sp + r % Sp;
  const T* qr = q + (((int64_t)b * Hq + g * G + hh) * S + s) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = to_f(qr[d]);
  __syncthreads();
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= T_) return;
  const T* kr = k + ((int64_t)bg * T_ + j) * D;
  float dot = 0.f;
  for (int d = 0; d < D; ++d) dot += qs[d] * to_f(kr[d]);
  lg[((int64_t)bg * R + r) * T_ + j] = dot * scale;
}

__global__ void __launch_bounds__(256) probe_stats_kernel(const float* __restrict__ lg, float2* __restrict__ stats, int T_,
                                                          int R) {
  __shared__ float red[8];
  const int64_t rowi = (int64_t)blockIdx.y * R + blockIdx.x;
  const float* l = lg + rowi * T_;
  float m = kNegInf;
  for (int j = threadIdx.x; j < T_; j += blockDim.x) m = fmaxf(m, l[j]);
  for (int o = 16; o; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
  __syncthreads();
  m = kNegInf;
  for (int w = 0; w < 8; ++w) m = fmaxf(m, red[w]);
  __syncthreads();
  float s = 0.f;
  for (int j = threadIdx.x; j < T_; j += blockDim.x) s += expf(l[j] - m);
  for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0.f;
    for (int w = 0; w < 8; ++w) t += red[w];
    stats[rowi] = make_float2(m, t);
  }
}

__global__ void probe_token_kernel(const float* __restrict__ lg, const float2* __restrict__ stats, float* __restrict__ tok,
                                   int T_, int R) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t bg = blockIdx.y;
  if (j >= T_) return;
  float acc = 0.f;
  for (int r = 0; r < R; ++r) {
    const float2 st = stats[bg * R + r];
    acc += expf(lg[(bg * R + r) * T_ + j] - st.x) / st.y;
  }
  tok[bg * T_ + j] = acc / (float)R;
}

// levels per block, tile counts and their offsets (one CTA per (b, g))
__global__ void __launch_bounds__(256) att_levels_kernel(const float* __restrict__ R, int* __restrict__ level,
                                                         int* __restrict__ toff, int32_t* __restrict__ levels_out, int T_,
                                                         int bs, int nKB, int sink, int nf, int nm, int mt) {
  __shared__ int scan[40];
  const int64_t bg = blockIdx.x;
  const float* Rb = R + bg * nKB;
  int base = 0;
  for (int k0 = 0; k0 < nKB; k0 += blockDim.x) {
    const int kb = k0 + threadIdx.x;
    int cnt = 0;
    if (kb < nKB) {
      int lv;
      if (kb < sink) lv = 0;
      else {
        const float r = Rb[kb];
        int rank = 0;
        for (int o = sink; o < nKB; ++o) {
          const float x = Rb[o];
          rank += (x > r) || (x == r && o < kb);
        }
        lv = rank < nf ? 0 : (rank < nf + nm ? 1 : 2);
      }
      level[bg * nKB + kb] = lv;
      if (levels_out) levels_out[bg * nKB + kb] = lv;
      const int len = min(bs, T_ - kb * bs);
      cnt = lv == 0 ? len : (lv == 1 ? (len + mt - 1) / mt : 1);
    }
    int tot;
    const int off = block_excl_scan(cnt, &tot, scan);
    if (kb < nKB) toff[bg * (nKB + 1) + kb] = base + off;
    base += tot;
  }
  if (threadIdx.x == 0) toff[bg * (nKB + 1) + nKB] = base;
}

template <typename T>
__global__ void __launch_bounds__(128) att_compact_kernel(const T* __restrict__ k, const T* __restrict__ v,
                                                          const int* __restrict__ level, const int* __restrict__ toff,
                                                          T* __restrict__ kc, T* __restrict__ vc, AttMeta* __restrict__ meta,
                                                          int Hkv, int T_, int D, int Dv, int bs, int nKB, int mt) {
  const int kb = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int64_t bg = (int64_t)b * Hkv + g;
  const int lv = level[bg * nKB + kb];
  const int off = toff[bg * (nKB + 1) + kb];
  const int j0 = kb * bs, len = min(bs, T_ - j0);
  const int tl = lv == 0 ? 1 : (lv == 1 ? mt : len);
  const int nt = (len + tl - 1) / tl;
  const T* kb_ = k + (bg * T_) * D;
  const T* vb_ = v + (bg * T_) * Dv;
  T* kcb = kc + (bg * T_) * D;
  T* vcb = vc + (bg * T_) * Dv;
  for (int t = 0; t < nt; ++t) {
    const int st = j0 + t * tl, n = min(tl, j0 + len - st);
    const float inv = 1.f / (float)n;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float s = 0.f;
      for (int u = 0; u < n; ++u) s += to_f(kb_[(int64_t)(st + u) * D + d]);
      kcb[(int64_t)(off + t) * D + d] = from_f<T>(n == 1 ? s : s * inv);
    }
    for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
      float s = 0.f;
      for (int u = 0; u < n; ++u) s += to_f(vb_[(int64_t)(st + u) * Dv + d]);
      vcb[(int64_t)(off + t) * Dv + d] = from_f<T>(n == 1 ? s : s * inv);
    }
    if (threadIdx.x == 0) meta[bg * T_ + off + t] = AttMeta{kb, st, n, logf((float)n)};
  }
}

static int check_tiled(const ApAttn& a, const ApTiledAttrs& at) {
  int e = check_common(a);
  if (e) return e;
  const int bs = at.block_size;
  if (bs < 16 || bs > 256 || (bs & (bs - 1))) return AP_ERR_ARGS;
  if (!(at.fine_fraction >= 0.f && at.fine_fraction <= 1.f)) return AP_ERR_ARGS;
  if (!(at.medium_fraction >= 0.f && at.medium_fraction <= 1.f)) return AP_ERR_ARGS;
  if (at.medium_tile < 1 || bs % at.medium_tile) return AP_ERR_ARGS;
  if (at.sink_blocks < 0 || at.local_blocks < 1) return AP_ERR_ARGS;
  if (at.scorer < 0 || at.scorer > 2) return AP_ERR_ARGS;
  if (at.scorer == 2 && !at.scorer_w) return AP_ERR_ARGS;
  return AP_OK;
}

struct AttWs {
  float *R, *tok, *lg;
  float2* stats;
  int *level, *toff;
  void *kc, *vc;
  AttMeta* meta;
};

static size_t carve_tiled(const ApAttn& a, const ApTiledAttrs& at, Carver& cv, AttWs& w) {
  const int nKB = (a.T + at.block_size - 1) / at.block_size;
  const size_t BG = (size_t)a.B * a.Hkv;
  const int esz = a.dtype == AP_F32 ? 4 : 2;
  const int Sp = a.S < 16 ? a.S : 16, Rr = (a.Hq / a.Hkv) * Sp;
  w.R = cv.take<float>(BG * nKB);
  w.level = cv.take<int>(BG * nKB);
  w.toff = cv.take<int>(BG * (nKB + 1));
  w.kc = cv.take<char>(BG * a.T * a.D * esz);
  w.vc = cv.take<char>(BG * a.T * a.Dv * esz);
  w.meta = cv.take<AttMeta>(BG * a.T);
  w.tok = w.lg = nullptr;
  w.stats = nullptr;
  if (at.scorer == 1) {
    w.tok = cv.take<float>(BG * a.T);
    w.lg = cv.take<float>(BG * Rr * a.T);
    w.stats = cv.take<float2>(BG * Rr);
  }
  return cv.off;
}

template <typename T>
static int tiled_prep(const ApAttn& a, const ApTiledAttrs& at, AttWs& w, int32_t* levels_out, cudaStream_t st) {
  const int bs = at.block_size, nKB = (a.T + bs - 1) / bs;
  const T* q = static_cast<const T*>(a.q);
  const T* k = static_cast<const T*>(a.k);
  const T* v = static_cast<const T*>(a.v);
  if (at.scorer == 1) {
    const int Sp = a.S < 16 ? a.S : 16, Rr = (a.Hq / a.Hkv) * Sp;
    dim3 g1((a.T + 127) / 128, Rr, a.B * a.Hkv);
    probe_logits_kernel<T><<<g1, 128, a.D * sizeof(float), st>>>(q, k, w.lg, a.Hq, a.Hkv, a.S, a.T, a.D, Sp, eff_scale(a));
    probe_stats_kernel<<<dim3(Rr, a.B * a.Hkv), 256, 0, st>>>(w.lg, w.stats, a.T, Rr);
    probe_token_kernel<<<dim3((a.T + 255) / 256, a.B * a.Hkv), 256, 0, st>>>(w.lg, w.stats, w.tok, a.T, Rr);
  }
  att_block_score_kernel<T><<<dim3(nKB, a.Hkv, a.B), 128, 0, st>>>(k, static_cast<const T*>(at.scorer_w), w.tok, w.R, a.Hkv,
                                                                    a.T, a.D, bs, nKB, at.scorer);
  const int nf = (int)floor((double)at.fine_fraction * nKB + 0.5);
  const int nm = (int)floor((double)at.medium_fraction * nKB + 0.5);
  att_levels_kernel<<<a.B * a.Hkv, 256, 0, st>>>(w.R, w.level, w.toff, levels_out, a.T, bs, nKB, at.sink_blocks, nf, nm,
                                                  at.medium_tile);
  att_compact_kernel<T><<<dim3(nKB, a.Hkv, a.B), 128, 0, st>>>(k, v, w.level, w.toff, static_cast<T*>(w.kc),
                                                                static_cast<T*>(w.vc), w.meta, a.Hkv, a.T, a.D, a.Dv, bs,
                                                                nKB, at.medium_tile);
  return cuda_status(cudaGetLastError());
}

}  // namespace ap

using namespace ap;

extern "C" size_t ap_tiled_workspace_size(const ApAttn* a, const ApTiledAttrs* at) {
  if (!a || !at || check_tiled(*a, *at)) return 0;
  Carver cv(nullptr);
  AttWs w;
  return carve_tiled(*a, *at, cv, w) + 256;
}

extern "C" int ap_tiled_forward(const ApAttn* ap_, const ApTiledAttrs* at_, int32_t* levels_out, void* ws, size_t ws_bytes,
                                void* stream, int path) {
  if (!ap_ || !at_) return AP_ERR_ARGS;
  const ApAttn& a = *ap_;
  const ApTiledAttrs& at = *at_;
  int err = check_tiled(a, at);
  if (err) return err;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  Carver cv(ws);
  AttWs w;
  if (carve_tiled(a, at, cv, w) > ws_bytes) return AP_ERR_WORKSPACE;
  count_call();
  if (a.dtype == AP_F32) err = tiled_prep<float>(a, at, w, levels_out, st);
  else if (a.dtype == AP_F16) err = tiled_prep<__half>(a, at, w, levels_out, st);
  else err = tiled_prep<__nv_bfloat16>(a, at, w, levels_out, st);
  if (err) return err;
  const int bs = at.block_size, nKB = (a.T + bs - 1) / bs;
  const bool fast = path == AP_PATH_FAST || (path == AP_PATH_AUTO && fast_dims(a));
  if (fast) {
    if (!fast_dims(a)) return AP_ERR_UNSUPPORTED;
    FwdCommon c = make_common(a);
    AttArgs aa{w.kc, w.vc, w.meta, w.toff, bs, nKB, at.local_blocks};
    return cuda_status(dispatch_16bit(a.dtype, a.D, [&](auto t, auto d) {
      return launch_fwd<typename decltype(t)::type, decltype(d)::value, 2, AttPolicy>(c, aa, st);
    }));
  }
  GenericArgs g{};
  g.mode = 2;
  g.bs = bs;
  g.nKB = nKB;
  g.kc = w.kc;
  g.vc = w.vc;
  g.meta = w.meta;
  g.toff = w.toff;
  g.L = at.local_blocks;
  return launch_generic(a, g, st);
}
