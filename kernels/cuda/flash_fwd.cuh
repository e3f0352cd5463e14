// Flash-style forward attention over a per-CTA list of key tiles (mma.sync m16n8k16, fp32 accumulation).
//
// A CTA owns 128 query rows of one (b, h): 8 warps of 16 rows. Keys come in tiles of 64 rows. A policy
// (one per operator) says, per phase, which tiles are candidates and, for each candidate and warp, whether
// the warp needs the tile at all ("member") and whether every element of it is admitted ("full": no element
// masks needed). The CTA compacts the candidates into a list in shared memory (1024 at a time), then runs
// a cp.async pipeline over the list; a warp that is no member of a tile skips its math; a full tile runs the
// unmasked path. Policies must make `member` a superset of the tiles holding admitted keys and `full` exact
// or conservative; elements are then checked exactly with `admit`.
#pragma once
#include "common.cuh"

namespace ap {

constexpr int kBM = 128, kBN = 64, kWarps = 8, kThreads = 256;
constexpr int kChunk = 1024, kCPT = kChunk / kThreads;

struct FwdCommon {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  int B, Hq, Hkv, S, T, G, D;
  float scale_log2;
  int causal;
  int has_mask;
  MaskRef mask;
};

struct Entry {
  int tile;
  uint32_t bits;  // [0,8): member per warp, [8,16): full per warp
};

// rows handled by warp w of the CTA starting at row0: [rf, rl] (rl clamped to S-1); false if none
__device__ __forceinline__ bool warp_rows(const FwdCommon& c, int row0, int w, int& rf, int& rl) {
  rf = row0 + 16 * w;
  if (rf >= c.S) return false;
  rl = min(rf + 15, c.S - 1);
  return true;
}

// ------------------------------------------------------------------------------------------------
// BlockSparseAttention (and dense): kept key blocks from a layout [B, Hq, nQB, nKB] (block size >= 64)
struct BsaArgs {
  const uint8_t* layout;
  int bs, nQB, nKB;
  int dense;
};
struct BsaPolicy {
  using Args = BsaArgs;
  const FwdCommon* c;
  Args a;
  int b, h, g, row0;
  __device__ void init(const FwdCommon& cc, const Args& aa, int b_, int h_, int g_, int row0_) {
    c = &cc; a = aa; b = b_; h = h_; g = g_; row0 = row0_;
  }
  __device__ int nphases() const { return 1; }
  __device__ void range(int, int& lo, int& hi) const {
    int nT = (c->T + kBN - 1) / kBN;
    lo = 0;
    hi = nT;
    if (c->causal) {
      int pl = c->T - c->S + min(row0 + kBM - 1, c->S - 1);
      hi = pl < 0 ? 0 : min(nT, pl / kBN + 1);
    }
  }
  __device__ const void* kptr(int) const { return (const char*)c->k + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2; }
  __device__ const void* vptr(int) const { return (const char*)c->v + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2; }
  __device__ int nrows(int) const { return c->T; }
  __device__ uint32_t eval(int, int t) const {
    uint32_t bits = 0;
    const int t0 = t * kBN;
    const uint8_t* lay = a.layout + ((int64_t)b * c->Hq + h) * a.nQB * (int64_t)a.nKB;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      int rf, rl;
      if (!warp_rows(*c, row0, w, rf, rl)) break;
      const int pf = c->T - c->S + rf, pl = c->T - c->S + rl;
      if (c->causal && t0 > pl) continue;
      if (!a.dense && !lay[(int64_t)(rf / a.bs) * a.nKB + t0 / a.bs]) continue;
      bits |= 1u << w;
      if (t0 + kBN <= c->T && (!c->causal || t0 + kBN - 1 <= pf)) bits |= 1u << (8 + w);
    }
    return bits;
  }
  __device__ bool admit(int, int i, int j) const {
    return j < c->T && (!c->causal || j <= c->T - c->S + i);
  }
  __device__ bool needs_adjust(int) const { return c->has_mask; }
  __device__ float adjust(int, int i, int j) const { return c->mask.at(b, h, i, j); }
};

// ------------------------------------------------------------------------------------------------
// SpanAttention prefill: tiles touching sinks, the local window or a span
struct SpanArgs {
  SpanRef sp;
  int sink, W;
};
// Is every key of tile [t0, t0+kBN) admitted for every query row at positions pf..pl, given whether one span
// covers the whole tile for all of them (spanfull)?
__device__ __forceinline__ bool span_tile_full(const FwdCommon& c, const SpanArgs& a, int t0, int pf, int pl,
                                               bool spanfull) {
  bool full = t0 + kBN <= c.T && (!c.causal || t0 + kBN - 1 <= pf);
  if (full) {
    bool cov = (t0 + kBN <= a.sink) || spanfull;
    if (!cov && a.W > 0) cov = (t0 > pl - a.W) && (t0 + kBN - 1 < pf + a.W);
    full = cov;
  }
  return full;
}
// Does key tile [t0, t0+kBN) hold an admitted key for some query row in [rf, rl] (mem, a superset is fine),
// and is every key of it admitted for every such row (full, exact or conservative)?
__device__ __forceinline__ void span_tile_bits(const FwdCommon& c, const SpanArgs& a, int b, int rf, int rl, int t0,
                                               bool& mem, bool& full) {
  const int t1 = min(t0 + kBN, c.T);
  const int pf = c.T - c.S + rf, pl = c.T - c.S + rl;
  const int hi = c.causal ? min(t1, pl + 1) : t1;
  mem = false;
  full = false;
  if (hi <= t0) return;
  mem = t0 < a.sink;
  if (!mem && a.W > 0) mem = (t0 < pl + a.W) && (hi - 1 > pf - a.W);
  bool spanfull = false;
  if (a.sp.per_query) {
    for (int i = rf; i <= rl && !mem; ++i) {
      const int64_t* s = a.sp.base(b, i);
      for (int k = 0; k < a.sp.n; ++k) {
        int lo_, hi_;
        a.sp.get(s, k, lo_, hi_);
        if (lo_ < hi && t0 < hi_ && lo_ < hi_) { mem = true; break; }
      }
    }
  } else {
    const int64_t* s = a.sp.base(b, 0);
    for (int k = 0; k < a.sp.n; ++k) {
      int lo_, hi_;
      a.sp.get(s, k, lo_, hi_);
      if (lo_ < hi && t0 < hi_ && lo_ < hi_) mem = true;
      if (lo_ <= t0 && t0 + kBN <= hi_) spanfull = true;
    }
  }
  if (!mem) return;
  full = span_tile_full(c, a, t0, pf, pl, spanfull);
}
struct SpanPolicy {
  using Args = SpanArgs;
  const FwdCommon* c;
  Args a;
  int b, h, g, row0;
  __device__ void init(const FwdCommon& cc, const Args& aa, int b_, int h_, int g_, int row0_) {
    c = &cc; a = aa; b = b_; h = h_; g = g_; row0 = row0_;
  }
  __device__ int nphases() const { return 1; }
  __device__ void range(int, int& lo, int& hi) const {
    int nT = (c->T + kBN - 1) / kBN;
    lo = 0;
    hi = nT;
    if (c->causal) {
      int pl = c->T - c->S + min(row0 + kBM - 1, c->S - 1);
      hi = pl < 0 ? 0 : min(nT, pl / kBN + 1);
    }
  }
  __device__ const void* kptr(int) const { return (const char*)c->k + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2; }
  __device__ const void* vptr(int) const { return (const char*)c->v + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2; }
  __device__ int nrows(int) const { return c->T; }
  __device__ uint32_t eval(int, int t) const {
    uint32_t bits = 0;
#pragma unroll 1
    for (int w = 0; w < kWarps; ++w) {
      int rf, rl;
      if (!warp_rows(*c, row0, w, rf, rl)) break;
      bool mem, full;
      span_tile_bits(*c, a, b, rf, rl, t * kBN, mem, full);
      if (mem) bits |= 1u << w;
      if (mem && full) bits |= 1u << (8 + w);
    }
    return bits;
  }
  __device__ bool admit(int, int i, int j) const {
    const int p = c->T - c->S + i;
    if (j >= c->T || (c->causal && j > p)) return false;
    if (j < a.sink) return true;
    if (abs(p - j) < a.W) return true;
    return a.sp.contains(b, i, j);
  }
  __device__ bool needs_adjust(int) const { return c->has_mask; }
  __device__ float adjust(int, int i, int j) const { return c->mask.at(b, h, i, j); }
};

// ------------------------------------------------------------------------------------------------
// TiledAttention: phase 0 walks the compacted tiles (mean keys/values, bias ln n), phase 1 the exact region
struct AttMeta {
  int kb, start, n;
  float bias;
};
struct AttArgs {
  const void* kc;
  const void* vc;
  const AttMeta* meta;
  const int* toff;  // [B, Hkv, nKB + 1]
  int bs, nKB, L;
};
struct AttPolicy {
  using Args = AttArgs;
  const FwdCommon* c;
  Args a;
  int b, h, g, row0;
  int Tc, obF, obL;  // compacted length; own blocks of the CTA's first and last rows
  __device__ int ob(int i) const { return min(floordiv(c->T - c->S + i, a.bs), a.nKB - 1); }
  __device__ void init(const FwdCommon& cc, const Args& aa, int b_, int h_, int g_, int row0_) {
    c = &cc; a = aa; b = b_; h = h_; g = g_; row0 = row0_;
    Tc = a.toff[((int64_t)b * c->Hkv + g) * (a.nKB + 1) + a.nKB];
    obF = ob(row0);
    obL = ob(min(row0 + kBM - 1, c->S - 1));
  }
  __device__ int nphases() const { return 2; }
  __device__ void range(int ph, int& lo, int& hi) const {
    lo = 0;
    if (ph == 0) {
      int lim = Tc;
      if (c->causal) {
        int kbe = min(max(obL - a.L + 1, 0), a.nKB);
        lim = a.toff[((int64_t)b * c->Hkv + g) * (a.nKB + 1) + kbe];
      }
      hi = (lim + kBN - 1) / kBN;
    } else {
      int klo = max(obF - a.L + 1, 0) * a.bs;
      int khi = min((obL + 1) * a.bs, c->T);
      if (c->causal) khi = min(khi, c->T - c->S + min(row0 + kBM - 1, c->S - 1) + 1);
      if (khi <= klo) { lo = hi = 0; return; }
      lo = klo / kBN;
      hi = (khi + kBN - 1) / kBN;
    }
  }
  __device__ const void* kptr(int ph) const {
    if (ph == 0) return (const char*)a.kc + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2;
    return (const char*)c->k + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2;
  }
  __device__ const void* vptr(int ph) const {
    if (ph == 0) return (const char*)a.vc + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2;
    return (const char*)c->v + ((int64_t)b * c->Hkv + g) * c->T * (int64_t)c->D * 2;
  }
  __device__ int nrows(int ph) const { return ph == 0 ? Tc : c->T; }
  __device__ const AttMeta& m(int col) const { return a.meta[((int64_t)b * c->Hkv + g) * c->T + col]; }
  __device__ uint32_t eval(int ph, int t) const {
    uint32_t bits = 0;
    const int t0 = t * kBN;
    if (ph == 0) {
      if (t0 >= Tc) return 0;
      const int cl = min(t0 + kBN, Tc) - 1;
      const int kbf = m(t0).kb, kbl = m(cl).kb;
      const bool inb = t0 + kBN <= Tc;
#pragma unroll 1
      for (int w = 0; w < kWarps; ++w) {
        int rf, rl;
        if (!warp_rows(*c, row0, w, rf, rl)) break;
        const int of = ob(rf), ol = ob(rl);
        bool mem, full;
        if (c->causal) {
          mem = kbf <= ol - a.L;
          full = inb && kbl <= of - a.L;
        } else {
          mem = true;
          full = inb && (kbl < of - a.L + 1 || kbf > ol);
        }
        if (mem) bits |= 1u << w;
        if (mem && full) bits |= 1u << (8 + w);
      }
    } else {
#pragma unroll 1
      for (int w = 0; w < kWarps; ++w) {
        int rf, rl;
        if (!warp_rows(*c, row0, w, rf, rl)) break;
        const int of = ob(rf), ol = ob(rl);
        const int pf = c->T - c->S + rf, pl = c->T - c->S + rl;
        int lo_ = max(of - a.L + 1, 0) * a.bs, hi_ = min((ol + 1) * a.bs, c->T);
        if (c->causal) hi_ = min(hi_, pl + 1);
        if (!(t0 < hi_ && lo_ < t0 + kBN && lo_ < hi_)) continue;
        bits |= 1u << w;
        bool full = t0 >= max(ol - a.L + 1, 0) * a.bs && t0 + kBN <= (of + 1) * a.bs && t0 + kBN <= c->T &&
                    (!c->causal || t0 + kBN - 1 <= pf);
        if (full) bits |= 1u << (8 + w);
      }
    }
    return bits;
  }
  __device__ bool admit(int ph, int i, int j) const {
    const int o = ob(i);
    if (ph == 0) {
      if (j >= Tc) return false;
      const int kb = m(j).kb;
      return c->causal ? kb <= o - a.L : !(kb > o - a.L && kb <= o);
    }
    const int p = c->T - c->S + i;
    if (j >= c->T || (c->causal && j > p)) return false;
    const int kb = j / a.bs;
    return kb > o - a.L && kb <= o;
  }
  __device__ bool needs_adjust(int ph) const { return ph == 0 || c->has_mask; }
  __device__ float adjust(int ph, int i, int j) const {
    if (ph == 1) return c->mask.at(b, h, i, j);
    const AttMeta& mm = m(j);
    float x = mm.bias;
    if (c->has_mask) {
      float mx = kNegInf;
      for (int u = 0; u < mm.n; ++u) mx = fmaxf(mx, c->mask.at(b, h, i, mm.start + u));
      x += mx;
    }
    return x;
  }
};

// ------------------------------------------------------------------------------------------------
template <int D, int NS> struct FwdSmem {
  static constexpr int kQ = kBM * D * 2;
  static constexpr int kKV = kBN * D * 2;
  static constexpr int kList = kChunk * (int)sizeof(Entry);
  static constexpr int kTotal = kQ + 2 * NS * kKV + kList + 64 * 4;
};

template <typename T, int D, int NS, class Pol>
__global__ void __launch_bounds__(kThreads, D == 64 ? 2 : 1) fwd_kernel(const __grid_constant__ FwdCommon c, const __grid_constant__ typename Pol::Args pa) {
  extern __shared__ __align__(128) uint8_t smem[];
  using SM = FwdSmem<D, NS>;
  uint8_t* sQ = smem;
  uint8_t* sK = sQ + SM::kQ;
  uint8_t* sV = sK + NS * SM::kKV;
  Entry* sList = reinterpret_cast<Entry*>(sV + NS * SM::kKV);
  int* sScan = reinterpret_cast<int*>(sList + kChunk);

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int h = blockIdx.x, b = blockIdx.y;
  const int mt = gridDim.z - 1 - blockIdx.z;  // longest rows first
  const int row0 = mt * kBM;
  const int g = h / c.G;
  Pol pol;
  pol.init(c, pa, b, h, g, row0);

  // ---- Q tile -> registers
  const T* qg = static_cast<const T*>(c.q) + ((int64_t)b * c.Hq + h) * (int64_t)c.S * D;
  for (int idx = tid; idx < kBM * (D / 8); idx += kThreads) {
    const int r = idx / (D / 8), ch = idx % (D / 8), gr = row0 + r;
    cp_async16(smem_u32(sQ) + swz<D>(r, ch), qg + (int64_t)min(gr, c.S - 1) * D + ch * 8, gr < c.S ? 16 : 0);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(qf[kk], smem_u32(sQ) + swz<D>(warp * 16 + (lane & 15), 2 * kk + (lane >> 4)));

  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float mrow[2] = {kNegInf, kNegInf}, lrow[2] = {0.f, 0.f};
  const int qi0 = row0 + warp * 16 + (lane >> 2);
  const uint32_t sK0 = smem_u32(sK), sV0 = smem_u32(sV);

  for (int ph = 0; ph < pol.nphases(); ++ph) {
    int lo, hi;
    pol.range(ph, lo, hi);
    const T* kg = static_cast<const T*>(pol.kptr(ph));
    const T* vg = static_cast<const T*>(pol.vptr(ph));
    const int nrows = pol.nrows(ph);
    const bool adj = pol.needs_adjust(ph);
    for (int c0 = lo; c0 < hi; c0 += kChunk) {
      // ---- compact the candidate tiles of this chunk into sList (ascending tile order)
      uint32_t bits[kCPT];
      int cnt = 0;
#pragma unroll
      for (int u = 0; u < kCPT; ++u) {
        const int t = c0 + tid * kCPT + u;
        bits[u] = t < hi ? pol.eval(ph, t) : 0u;
        cnt += (bits[u] & 0xffu) != 0;
      }
      int total;
      int off = block_excl_scan(cnt, &total, sScan);
#pragma unroll
      for (int u = 0; u < kCPT; ++u)
        if (bits[u] & 0xffu) sList[off++] = Entry{c0 + tid * kCPT + u, bits[u]};
      __syncthreads();

      auto load = [&](int e, int st) {
        const int r0 = sList[e].tile * kBN;
        const uint32_t dk = sK0 + st * SM::kKV, dv = sV0 + st * SM::kKV;
#pragma unroll
        for (int it = 0; it < kBN * (D / 8) / kThreads; ++it) {
          const int idx = tid + it * kThreads;
          const int r = idx / (D / 8), ch = idx % (D / 8), gr = r0 + r;
          const bool ok = gr < nrows;
          const int64_t go = (int64_t)(ok ? gr : 0) * D + ch * 8;
          cp_async16(dk + swz<D>(r, ch), kg + go, ok ? 16 : 0);
          cp_async16(dv + swz<D>(r, ch), vg + go, ok ? 16 : 0);
        }
      };
#pragma unroll
      for (int s = 0; s < NS - 1; ++s) {
        if (s < total) load(s, s);
        cp_async_commit();
      }
      // one barrier per tile: wait for tile e, barrier (every warp is done with tile e-1, whose stage the next
      // load reuses), then issue the load of tile e+NS-1 and compute tile e
      for (int e = 0; e < total; ++e) {
        cp_async_wait<NS - 2>();
        __syncthreads();
        const int nx = e + NS - 1;
        if (nx < total) load(nx, nx % NS);
        cp_async_commit();
        const Entry en = sList[e];
        if ((en.bits >> warp) & 1u) {
          const int st = e % NS;
          const uint32_t sk = sK0 + st * SM::kKV, sv = sV0 + st * SM::kKV;
          float s[8][4];
#pragma unroll
          for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
            for (int np = 0; np < 4; ++np) {
              uint32_t kf[4];
              ldsm_x4(kf, sk + swz<D>(np * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
              mma16816<T>(s[2 * np], qf[kk], kf);
              mma16816<T>(s[2 * np + 1], qf[kk], kf + 2);
            }
          }
          const bool full = (en.bits >> (8 + warp)) & 1u;
          const int j0 = en.tile * kBN + (lane & 3) * 2;
          if (full && !adj) {
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
              for (int q = 0; q < 4; ++q) s[n][q] *= c.scale_log2;
          } else {
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
              for (int q = 0; q < 4; ++q) {
                const int i = qi0 + ((q >> 1) << 3), j = j0 + n * 8 + (q & 1);
                float x = s[n][q] * c.scale_log2;
                if (i >= c.S || (!full && !pol.admit(ph, i, j))) x = kNegInf;
                else if (adj) x += pol.adjust(ph, i, j) * kLog2e;
                s[n][q] = x;
              }
          }
          // ---- online softmax (base 2)
          float mx[2] = {mrow[0], mrow[1]};
#pragma unroll
          for (int n = 0; n < 8; ++n) {
            mx[0] = fmaxf(mx[0], fmaxf(s[n][0], s[n][1]));
            mx[1] = fmaxf(mx[1], fmaxf(s[n][2], s[n][3]));
          }
          float mu[2], alpha[2], rs[2] = {0.f, 0.f};
          softmax_rows(mx, mrow, mu, alpha);
#pragma unroll
          for (int n = 0; n < 8; ++n) {
            s[n][0] = exp2f(s[n][0] - mu[0]);
            s[n][1] = exp2f(s[n][1] - mu[0]);
            s[n][2] = exp2f(s[n][2] - mu[1]);
            s[n][3] = exp2f(s[n][3] - mu[1]);
            rs[0] += s[n][0] + s[n][1];
            rs[1] += s[n][2] + s[n][3];
          }
          lrow[0] = lrow[0] * alpha[0] + rs[0];
          lrow[1] = lrow[1] * alpha[1] + rs[1];
#pragma unroll
          for (int n = 0; n < D / 8; ++n) {
            o[n][0] *= alpha[0];
            o[n][1] *= alpha[0];
            o[n][2] *= alpha[1];
            o[n][3] *= alpha[1];
          }
          // ---- O += P V
#pragma unroll
          for (int kk = 0; kk < 4; ++kk) {
            uint32_t pa4[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                               pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
              uint32_t vf[4];
              ldsm_x4_t(vf, sv + swz<D>(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
              mma16816<T>(o[2 * dp], pa4, vf);
              mma16816<T>(o[2 * dp + 1], pa4, vf + 2);
            }
          }
        }
      }
      __syncthreads();  // the list and the stages are rewritten by the next chunk
    }
  }

  // ---- normalise and store
  T* og = static_cast<T*>(c.o) + ((int64_t)b * c.Hq + h) * (int64_t)c.S * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float inv = row_inv_sum(lrow[r]);
    const int i = qi0 + 8 * r;
    if (i < c.S) {
      uint32_t* dst = reinterpret_cast<uint32_t*>(og + (int64_t)i * D + (lane & 3) * 2);
#pragma unroll
      for (int n = 0; n < D / 8; ++n) dst[n * 4] = pack2<T>(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Variant 2: 4 warps of 32 rows (two m16 tiles per warp share every K/V fragment: ~40% less shared-memory
// traffic per MMA than variant 1), Q re-read from shared memory, 2 CTAs per SM. The policies still describe
// 8 "virtual warps" of 16 rows: warp w owns virtual warps 2w and 2w+1.
constexpr int kThreads2 = 128;

template <typename T, int D, int NS, class Pol>
__global__ void __launch_bounds__(kThreads2, 2) fwd_kernel2(const __grid_constant__ FwdCommon c,
                                                           const __grid_constant__ typename Pol::Args pa) {
  extern __shared__ __align__(128) uint8_t smem[];
  using SM = FwdSmem<D, NS>;
  uint8_t* sQ = smem;
  uint8_t* sK = sQ + SM::kQ;
  uint8_t* sV = sK + NS * SM::kKV;
  Entry* sList = reinterpret_cast<Entry*>(sV + NS * SM::kKV);
  int* sScan = reinterpret_cast<int*>(sList + kChunk);
  constexpr int kCPT2 = kChunk / kThreads2;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int h = blockIdx.x, b = blockIdx.y;
  const int mt = gridDim.z - 1 - blockIdx.z;
  const int row0 = mt * kBM;
  const int g = h / c.G;
  Pol pol;
  pol.init(c, pa, b, h, g, row0);

  const T* qg = static_cast<const T*>(c.q) + ((int64_t)b * c.Hq + h) * (int64_t)c.S * D;
  for (int idx = tid; idx < kBM * (D / 8); idx += kThreads2) {
    const int r = idx / (D / 8), ch = idx % (D / 8), gr = row0 + r;
    cp_async16(smem_u32(sQ) + swz<D>(r, ch), qg + (int64_t)min(gr, c.S - 1) * D + ch * 8, gr < c.S ? 16 : 0);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  float o[2][D / 8][4];
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[t][n][0] = o[t][n][1] = o[t][n][2] = o[t][n][3] = 0.f;
  float mrow[2][2] = {{kNegInf, kNegInf}, {kNegInf, kNegInf}}, lrow[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
  const int qi0 = row0 + warp * 32 + (lane >> 2);  // m-tile t: rows qi0 + 16 t (+ 8)
  const uint32_t sK0 = smem_u32(sK), sV0 = smem_u32(sV), sQ0 = smem_u32(sQ);

  for (int ph = 0; ph < pol.nphases(); ++ph) {
    int lo, hi;
    pol.range(ph, lo, hi);
    const T* kg = static_cast<const T*>(pol.kptr(ph));
    const T* vg = static_cast<const T*>(pol.vptr(ph));
    const int nrows = pol.nrows(ph);
    const bool adj = pol.needs_adjust(ph);
    for (int c0 = lo; c0 < hi; c0 += kChunk) {
      uint32_t bits[kCPT2];
      int cnt = 0;
#pragma unroll
      for (int u = 0; u < kCPT2; ++u) {
        const int t = c0 + tid * kCPT2 + u;
        bits[u] = t < hi ? pol.eval(ph, t) : 0u;
        cnt += (bits[u] & 0xffu) != 0;
      }
      int total;
      int off = block_excl_scan(cnt, &total, sScan);
#pragma unroll
      for (int u = 0; u < kCPT2; ++u)
        if (bits[u] & 0xffu) sList[off++] = Entry{c0 + tid * kCPT2 + u, bits[u]};
      __syncthreads();

      auto load = [&](int e, int st) {
        const int r0 = sList[e].tile * kBN;
        const uint32_t dk = sK0 + st * SM::kKV, dv = sV0 + st * SM::kKV;
#pragma unroll
        for (int it = 0; it < kBN * (D / 8) / kThreads2; ++it) {
          const int idx = tid + it * kThreads2;
          const int r = idx / (D / 8), ch = idx % (D / 8), gr = r0 + r;
          const bool ok = gr < nrows;
          const int64_t go = (int64_t)(ok ? gr : 0) * D + ch * 8;
          cp_async16(dk + swz<D>(r, ch), kg + go, ok ? 16 : 0);
          cp_async16(dv + swz<D>(r, ch), vg + go, ok ? 16 : 0);
        }
      };
#pragma unroll
      for (int s = 0; s < NS - 1; ++s) {
        if (s < total) load(s, s);
        cp_async_commit();
      }
      // one barrier per tile: wait for tile e, barrier (every warp is done with tile e-1, whose stage the next
      // load reuses), then issue the load of tile e+NS-1 and compute tile e
      for (int e = 0; e < total; ++e) {
        cp_async_wait<NS - 2>();
        __syncthreads();
        const int nx = e + NS - 1;
        if (nx < total) load(nx, nx % NS);
        cp_async_commit();
        const Entry en = sList[e];
        const bool mem[2] = {((en.bits >> (2 * warp)) & 1u) != 0, ((en.bits >> (2 * warp + 1)) & 1u) != 0};
        if (mem[0] || mem[1]) {
          const int st = e % NS;
          const uint32_t sk = sK0 + st * SM::kKV, sv = sV0 + st * SM::kKV;
          float s[2][8][4];
#pragma unroll
          for (int t = 0; t < 2; ++t)
#pragma unroll
            for (int n = 0; n < 8; ++n) s[t][n][0] = s[t][n][1] = s[t][n][2] = s[t][n][3] = 0.f;
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t qa[2][4];
#pragma unroll
            for (int t = 0; t < 2; ++t)
              if (mem[t]) ldsm_x4(qa[t], sQ0 + swz<D>(warp * 32 + t * 16 + (lane & 15), 2 * kk + (lane >> 4)));
#pragma unroll
            for (int np = 0; np < 4; ++np) {
              uint32_t kf[4];
              ldsm_x4(kf, sk + swz<D>(np * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
#pragma unroll
              for (int t = 0; t < 2; ++t)
                if (mem[t]) {
                  mma16816<T>(s[t][2 * np], qa[t], kf);
                  mma16816<T>(s[t][2 * np + 1], qa[t], kf + 2);
                }
            }
          }
          const int j0 = en.tile * kBN + (lane & 3) * 2;
#pragma unroll
          for (int t = 0; t < 2; ++t) {
            if (!mem[t]) continue;
            const bool full = (en.bits >> (8 + 2 * warp + t)) & 1u;
            if (full && !adj) {
#pragma unroll
              for (int n = 0; n < 8; ++n)
#pragma unroll
                for (int q = 0; q < 4; ++q) s[t][n][q] *= c.scale_log2;
            } else {
#pragma unroll
              for (int n = 0; n < 8; ++n)
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                  const int i = qi0 + 16 * t + ((q >> 1) << 3), j = j0 + n * 8 + (q & 1);
                  float x = s[t][n][q] * c.scale_log2;
                  if (i >= c.S || (!full && !pol.admit(ph, i, j))) x = kNegInf;
                  else if (adj) x += pol.adjust(ph, i, j) * kLog2e;
                  s[t][n][q] = x;
                }
            }
            float mx[2] = {mrow[t][0], mrow[t][1]};
#pragma unroll
            for (int n = 0; n < 8; ++n) {
              mx[0] = fmaxf(mx[0], fmaxf(s[t][n][0], s[t][n][1]));
              mx[1] = fmaxf(mx[1], fmaxf(s[t][n][2], s[t][n][3]));
            }
            float mu[2], alpha[2], rs[2] = {0.f, 0.f};
            softmax_rows(mx, mrow[t], mu, alpha);
#pragma unroll
            for (int n = 0; n < 8; ++n) {
              s[t][n][0] = exp2f(s[t][n][0] - mu[0]);
              s[t][n][1] = exp2f(s[t][n][1] - mu[0]);
              s[t][n][2] = exp2f(s[t][n][2] - mu[1]);
              s[t][n][3] = exp2f(s[t][n][3] - mu[1]);
              rs[0] += s[t][n][0] + s[t][n][1];
              rs[1] += s[t][n][2] + s[t][n][3];
            }
            lrow[t][0] = lrow[t][0] * alpha[0] + rs[0];
            lrow[t][1] = lrow[t][1] * alpha[1] + rs[1];
#pragma unroll
            for (int n = 0; n < D / 8; ++n) {
              o[t][n][0] *= alpha[0];
              o[t][n][1] *= alpha[0];
              o[t][n][2] *= alpha[1];
              o[t][n][3] *= alpha[1];
            }
          }
#pragma unroll
          for (int kk = 0; kk < 4; ++kk) {
            uint32_t pa4[2][4];
#pragma unroll
            for (int t = 0; t < 2; ++t) {
              pa4[t][0] = pack2<T>(s[t][2 * kk][0], s[t][2 * kk][1]);
              pa4[t][1] = pack2<T>(s[t][2 * kk][2], s[t][2 * kk][3]);
              pa4[t][2] = pack2<T>(s[t][2 * kk + 1][0], s[t][2 * kk + 1][1]);
              pa4[t][3] = pack2<T>(s[t][2 * kk + 1][2], s[t][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
              uint32_t vf[4];
              ldsm_x4_t(vf, sv + swz<D>(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
#pragma unroll
              for (int t = 0; t < 2; ++t)
                if (mem[t]) {
                  mma16816<T>(o[t][2 * dp], pa4[t], vf);
                  mma16816<T>(o[t][2 * dp + 1], pa4[t], vf + 2);
                }
            }
          }
        }
      }
      __syncthreads();  // the list and the stages are rewritten by the next chunk
    }
  }

  T* og = static_cast<T*>(c.o) + ((int64_t)b * c.Hq + h) * (int64_t)c.S * D;
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float inv = row_inv_sum(lrow[t][r]);
      const int i = qi0 + 16 * t + 8 * r;
      if (i < c.S) {
        uint32_t* dst = reinterpret_cast<uint32_t*>(og + (int64_t)i * D + (lane & 3) * 2);
#pragma unroll
        for (int n = 0; n < D / 8; ++n) dst[n * 4] = pack2<T>(o[t][n][2 * r] * inv, o[t][n][2 * r + 1] * inv);
      }
    }
}

// which forward kernel the launchers use: 1 = 8 warps x 16 rows, 2 = 4 warps x 32 rows (ap_set_fwd_variant)
int fwd_variant();

// host-side launcher
template <typename T, int D, int NS_unused, class Pol>
inline cudaError_t launch_fwd(const FwdCommon& c, const typename Pol::Args& pa, cudaStream_t st) {
  dim3 grid(c.Hq, c.B, (c.S + kBM - 1) / kBM);
  if (fwd_variant() == 2) {  // 2 CTAs per SM: two stages
    const int smem = FwdSmem<D, 2>::kTotal;
    auto kern = fwd_kernel2<T, D, 2, Pol>;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    kern<<<grid, kThreads2, smem, st>>>(c, pa);
    return cudaGetLastError();
  }
  const int smem = FwdSmem<D, 3>::kTotal;  // three stages
  auto kern = fwd_kernel<T, D, 3, Pol>;
  cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kern<<<grid, kThreads, smem, st>>>(c, pa);
  return cudaGetLastError();
}

}  // namespace ap
