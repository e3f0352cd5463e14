// SpanAttention. Decode (S * G <= 16): one kernel of split-K flash-decoding over only the K/V tiles that touch
// spans U sinks U local window (tiles of 64 rows, of which only the rows holding admitted keys are read; masked
// exactly per token), each K/V row loaded once for all query heads of a GQA group; the CTAs of one (sequence,
// KV head) form a cluster, list their tiles themselves and merge their partials by log-sum-exp through
// distributed shared memory. Prefill: the tile-list kernel skipping tiles outside every span.
#include <cooperative_groups.h>

#include <algorithm>
#include <climits>

#include "internal.h"

namespace cg = cooperative_groups;

namespace ap {

// Warp groups per CTA: group q takes the CTA's tiles q, q + kDecGroups, ..., each of its 4 warps 16 rows of a tile,
// through its own kDecNS stages. Two groups put two warps on each SM sub-partition, so that one's math overlaps
// the other's waits (H100, 32k / 10 %: 0.0532 ms against 0.0548 with one group; 3 groups of 2 stages 0.0545).
constexpr int kDecGroups = 2, kDecWarps = 4 * kDecGroups, kDecThreads = 32 * kDecWarps;
constexpr int kDecNS = 3, kDecRows = 16;
constexpr int kDecMaxEnt = 1026;   // key tiles one CTA may take (its list lives in shared memory)
constexpr int kDecMaxSplit = 16;   // CTAs per (sequence, KV head): one thread-block cluster (non-portable size)
constexpr int kDecMaxWords = 256;  // words of the tile bitmap: decode handles up to 8192 key tiles (T <= 524288)
constexpr int kDecMaxIv = 256;     // key intervals staged in shared memory (any more are read from global memory)
// a CTA's share of t listed tiles spans at most ceil(t / nsplit) + 2 of them (shares are cut in rows)
static_assert(kDecMaxWords * 32 <= (kDecMaxEnt - 2) * kDecMaxSplit, "every tile of the bitmap fits some split");

// debugging aid (ap_span_trace_buffer): slot i of this CTA's timeline, if tracing
__device__ __forceinline__ void stamp(unsigned long long* tr, int i) {
  if (tr) tr[i] = global_timer_ns();
}

// The keys that some query row of a decode step may admit, as half-open intervals [x, y) of key positions:
// 0 the sinks, 1 the local window (of every row), 2 + k span k (per_query: 2 + i * n + k, span k of row i).
// The first kDecMaxIv are staged in shared memory by stage().
struct KeyIntervals {
  const FwdCommon& c;
  const SpanArgs& sa;
  int b, count;
  int2* staged;
  __device__ KeyIntervals(const FwdCommon& c_, const SpanArgs& sa_, int b_, int2* staged_)
      : c(c_), sa(sa_), b(b_), count(2 + sa_.sp.n * (sa_.sp.per_query ? c_.S : 1)), staged(staged_) {}
  __device__ int2 fetch(int k) const {
    if (k == 0) return make_int2(0, min(sa.sink, c.T));
    if (k == 1) return make_int2(max(0, c.T - c.S - sa.W + 1), sa.W > 0 ? c.T : 0);  // rows at T-S .. T-1
    const int n = sa.sp.n, i = sa.sp.per_query ? (k - 2) / n : 0;
    int lo, hi;
    sa.sp.get(sa.sp.base(b, i), (k - 2) % n, lo, hi);
    return make_int2(lo, hi);
  }
  __device__ void stage() const {  // the caller synchronises before reading
    for (int k = threadIdx.x; k < min(count, kDecMaxIv); k += blockDim.x) staged[k] = fetch(k);
  }
  __device__ int2 operator[](int k) const { return k < kDecMaxIv ? staged[k] : fetch(k); }
  // does one of query row i's spans hold key j
  __device__ bool span_holds(int i, int j) const {
    const int k0 = 2 + (sa.sp.per_query ? i * sa.sp.n : 0);
    for (int k = k0; k < k0 + sa.sp.n; ++k) {
      const int2 v = (*this)[k];
      if (j >= v.x && j < v.y) return true;
    }
    return false;
  }
};

// position of the k-th (from 0) set bit of m, which has more than k
__device__ __forceinline__ int select_bit(uint32_t m, int k) {
  int pos = 0;
#pragma unroll
  for (int w = 16; w > 0; w >>= 1) {
    const int c = __popc(m & ((1u << w) - 1u));
    if (k >= c) {
      k -= c;
      m >>= w;
      pos += w;
    }
  }
  return pos;
}

// bits [x, y] of a word (0 <= x <= y <= 31)
__device__ __forceinline__ uint32_t bit_run(int x, int y) { return (0xffffffffu >> (31 - y)) & (0xffffffffu << x); }

// rows [a, z) of a tile as bits (0 <= a <= z <= 64)
__device__ __forceinline__ uint64_t row_bits(int a, int z) {
  const uint64_t below_z = z >= 64 ? ~0ull : (1ull << z) - 1ull;
  return below_z & ~((1ull << a) - 1ull);
}

// One list entry of key tile t: x = t | full << 31 (every key of it is admitted for every row). y packs the rows
// of the tile that matter, 8 bits per bound (see TileRows): [lo, hi), the rows holding admitted keys within
// [cut_lo, cut_hi) (a tile split between two CTAs); the other rows are not read from memory. [run_lo, run_hi), the
// rows that the sinks and spans admit for every query row, when those form one run (bit 31 clear); when they do
// not (spans per query row, or a gap between two spans inside the tile) each key is tested against the spans.
// The local window is a per-row distance test either way.
__device__ int2 decode_tile_entry(const KeyIntervals& iv, int t, int cut_lo, int cut_hi) {
  const FwdCommon& c = iv.c;
  const int t0 = t * kBN, t1 = min(t0 + kBN, c.T);
  int r0 = kBN, r1 = 0;
  bool spanfull = false;
  uint64_t run = 0;  // rows the sinks or a span admit
  for (int k = 0; k < iv.count; ++k) {
    const int2 v = iv[k];
    if (v.x >= v.y || v.x >= t1 || v.y <= t0) continue;
    const int a = max(v.x, t0) - t0, z = min(v.y, t1) - t0;
    r0 = min(r0, a);
    r1 = max(r1, z);
    if (k != 1) run |= row_bits(a, z);
    if (k >= 2 && !iv.sa.sp.per_query && v.x <= t0 && t0 + kBN <= v.y) spanfull = true;
  }
  r0 = max(r0, cut_lo);
  r1 = min(r1, cut_hi);
  const bool full = cut_lo == 0 && cut_hi == kBN && span_tile_full(c, iv.sa, t0, c.T - c.S, c.T - 1, spanfull);
  const int run_lo = run ? __ffsll((long long)run) - 1 : 0, run_hi = run ? 64 - __clzll((long long)run) : 0;
  const bool one_run = !iv.sa.sp.per_query && __popcll(run) == run_hi - run_lo;
  return make_int2(t | (full ? (int)0x80000000u : 0),
                   r0 | r1 << 8 | run_lo << 16 | run_hi << 24 | (one_run ? 0 : (int)0x80000000u));
}

// The row bounds of a list entry (its y, see decode_tile_entry)
struct TileRows {
  int lo, hi, run_lo, run_hi;
  bool one_run;
  __device__ explicit TileRows(int y)
      : lo(y & 0xff), hi((y >> 8) & 0xff), run_lo((y >> 16) & 0xff), run_hi((y >> 24) & 0x7f), one_run(y >= 0) {}
};

// Shared memory of the tile list: the bitmap of key tiles holding an admitted key, the set bits before each word
struct TileListSmem {
  uint32_t bits[kDecMaxWords];
  int before[kDecMaxWords];
  int total;  // tiles listed for the sequence
  int2 share;  // this CTA's share of the listed tiles' rows: [x, y) counted in rows of tiles, kBN per tile
};

// This CTA's share (split of nsplit) of the key tiles that hold an admitted key, listed in ent; returns its
// length. Every CTA of the sequence builds the same tile bitmap from the key intervals; the shares are even
// in rows, so a tile may be split between two CTAs (each reads its own rows of it).
__device__ int decode_tile_list(const KeyIntervals& iv, int split, int nsplit, TileListSmem& L, int2* ent,
                                unsigned long long* tr) {
  const int tid = threadIdx.x, nT = (iv.c.T + kBN - 1) / kBN, nw = (nT + 31) / 32;
  for (int w = tid; w < nw; w += kDecThreads) L.bits[w] = 0;
  iv.stage();
  __syncthreads();
  stamp(tr, 1);
  for (int k = tid; k < iv.count; k += kDecThreads) {
    const int2 v = iv[k];
    if (v.x >= v.y) continue;
    const int ta = v.x / kBN, tb = (v.y - 1) / kBN, wa = ta >> 5, wb = tb >> 5;
    if (wa == wb) {
      atomicOr(&L.bits[wa], bit_run(ta & 31, tb & 31));
    } else {
      atomicOr(&L.bits[wa], bit_run(ta & 31, 31));
      for (int w = wa + 1; w < wb; ++w) atomicOr(&L.bits[w], 0xffffffffu);
      atomicOr(&L.bits[wb], bit_run(0, tb & 31));
    }
  }
  __syncthreads();
  stamp(tr, 2);
  // warp 0: set bits before each word (lane l scans words [l * per, l * per + per)), the total, this CTA's share
  if (tid < 32) {
    const int per = (nw + 31) / 32, w0 = min(nw, tid * per), w1 = min(nw, w0 + per);
    int mine = 0;
    for (int w = w0; w < w1; ++w) mine += __popc(L.bits[w]);
    int incl = mine;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, o);
      if (tid >= o) incl += y;
    }
    for (int w = w0, run = incl - mine; w < w1; ++w) {
      L.before[w] = run;
      run += __popc(L.bits[w]);
    }
    if (tid == 31) {
      // total * kBN * kDecMaxSplit < 2^31 (total <= 8192 tiles)
      const int lo = incl * kBN * split / nsplit, hi = incl * kBN * (split + 1) / nsplit;
      L.share = make_int2(lo, hi);
      L.total = incl;
    }
  }
  __syncthreads();
  stamp(tr, 3);
  // every thread: entries e, e + kDecThreads, ... of the share (listed tiles first + e), with their rows
  const int2 sh = L.share;
  const int first = sh.x / kBN, last = (sh.y + kBN - 1) / kBN - 1;
  for (int e = tid; e <= last - first; e += kDecThreads) {
    const int idx = first + e;
    int lo = 0, hi = nw - 1;  // the last word with at most idx set bits before it holds listed tile idx
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (L.before[mid] <= idx) lo = mid;
      else hi = mid - 1;
    }
    const int t = lo * 32 + select_bit(L.bits[lo], idx - L.before[lo]);
    ent[e] = decode_tile_entry(iv, t, e == 0 ? sh.x - first * kBN : 0, idx == last ? sh.y - last * kBN : kBN);
  }
  __syncthreads();
  stamp(tr, 4);
  return last - first + 1;
}

template <int D> struct DecSmem {
  static constexpr int kQ = kDecRows * D * 2;
  static constexpr int kKV = kBN * D * 2;
  static constexpr int kStages = kDecNS * kDecGroups;
  static constexpr int kTotal = kQ + 2 * kStages * kKV + kDecMaxEnt * 8 + kDecMaxIv * 8;
  static_assert(kDecWarps * kDecRows * (D + 4) * 4 + 2 * kDecWarps * kDecRows * 4 <= 2 * kStages * kKV,
                "warp partials fit the K and V stages");
};

template <typename T, int D>
__global__ void __launch_bounds__(kDecThreads, 1)
    span_decode_kernel(const __grid_constant__ FwdCommon c, const __grid_constant__ SpanArgs sa,
                       int evict_first_tiles, unsigned long long* __restrict__ trace) {
  extern __shared__ __align__(128) uint8_t smem[];
  using SM = DecSmem<D>;
  uint8_t* sQ = smem;
  uint8_t* sK = sQ + SM::kQ;
  uint8_t* sV = sK + SM::kStages * SM::kKV;
  int2* sEnt = reinterpret_cast<int2*>(sV + SM::kStages * SM::kKV);
  int2* sIv = sEnt + kDecMaxEnt;
  __shared__ TileListSmem s_list;
  cg::cluster_group cluster = cg::this_cluster();  // the nsplit CTAs of one (b, g), along x
  const int split = (int)cluster.block_rank(), nsplit = (int)cluster.num_blocks(), g = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, group = warp / 4, slot = warp % 4;
  const int G = c.G, nr = c.S * G;
  unsigned long long* tr = trace && tid == 0 ? trace + 16 * (((int64_t)b * c.Hkv + g) * nsplit + split) : nullptr;
  stamp(tr, 0);

  // Q rows r = s * G + hh (query s of head g * G + hh), zero past nr
  for (int idx = tid; idx < kDecRows * (D / 8); idx += kDecThreads) {
    const int r = idx / (D / 8), ch = idx % (D / 8);
    const bool ok = r < nr;
    const int s = ok ? r / G : 0, hh = ok ? r % G : 0;
    const T* src = static_cast<const T*>(c.q) + (((int64_t)b * c.Hq + g * G + hh) * c.S + s) * D + ch * 8;
    cp_async16(smem_u32(sQ) + swz<D>(r, ch), src, ok ? 16 : 0);
  }
  cp_async_commit();

  const KeyIntervals iv(c, sa, b, sIv);
  const int n = decode_tile_list(iv, split, nsplit, s_list, sEnt, tr);
  const int64_t kvo = ((int64_t)b * c.Hkv + g) * c.T * D;
  const T* kg = static_cast<const T*>(c.k) + kvo;
  const T* vg = static_cast<const T*>(c.v) + kvo;
  const uint32_t sK0 = smem_u32(sK), sV0 = smem_u32(sV);
  // Each K/V row is read once. A call that reads a few L2s' worth marks its rows evict-first, so that they do
  // not force the write-back of dirty lines other kernels left in L2; a longer stream keeps the normal policy
  // (H100, L2 holding dirty lines: evict-first took 7.5 % off at 109 MB read and added 2-5 % at 430 MB-2 GB).
  const uint64_t streamed = l2_policy(s_list.total <= evict_first_tiles);

  // The group's i-th tile is list entry group + i * kDecGroups, held in stage i % kDecNS of the group's stages.
  const int mine = (n - group + kDecGroups - 1) / kDecGroups;
  auto entry_of = [&](int i) { return group + i * kDecGroups; };
  auto stage_of = [&](int i) { return (uint32_t)((group * kDecNS + i % kDecNS) * SM::kKV); };
  // Warp `slot` of a group reads only rows slot * 16 .. slot * 16 + 15 of a tile (its keys' scores and their V
  // rows), so it loads those rows itself and waits for its own copies only: the tile loop has no block barrier.
  auto load = [&](int i) {
    const int2 en = sEnt[entry_of(i)];
    const TileRows rows(en.y);
    const int r0 = (en.x & 0x7fffffff) * kBN;
    const uint32_t dk = sK0 + stage_of(i), dv = sV0 + stage_of(i);
#pragma unroll
    for (int it = 0; it < 16 * (D / 8) / 32; ++it) {
      const int r = slot * 16 + it * (32 / (D / 8)) + lane / (D / 8), ch = lane % (D / 8);
      const bool ok = r >= rows.lo && r < rows.hi;  // rows of no admitted key are zero-filled, not read
      const int64_t go = (int64_t)(ok ? r0 + r : 0) * D + ch * 8;
      cp_async16(dk + swz<D>(r, ch), kg + go, ok ? 16 : 0, streamed);
      cp_async16(dv + swz<D>(r, ch), vg + go, ok ? 16 : 0, streamed);
    }
  };
#pragma unroll
  for (int s = 0; s < kDecNS - 1; ++s) {
    if (s < mine) load(s);
    cp_async_commit();
  }
  cp_async_wait<kDecNS - 1>();  // Q (the first commit group) has landed
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

  for (int i = 0; i < mine; ++i) {
    cp_async_wait<kDecNS - 2>();  // this warp's rows of its i-th tile landed
    __syncwarp();                 // for all its lanes; and the warp is done with the previous one, whose stage is reloaded next
    if (i == 0) stamp(tr, 5);
    if (i + kDecNS - 1 < mine) load(i + kDecNS - 1);
    cp_async_commit();
    const int2 en = sEnt[entry_of(i)];
    const int ent = en.x;
    const TileRows rows(en.y);
    const bool full = ent < 0;
    const uint32_t sk = sK0 + stage_of(i), sv = sV0 + stage_of(i);
    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t kf[4];
      ldsm_x4(kf, sk + swz<D>(slot * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
      mma16816<T>(s[0], qf[kk], kf);
      mma16816<T>(s[1], qf[kk], kf + 2);
    }
    const int jr0 = slot * 16 + (lane & 3) * 2, j0 = (ent & 0x7fffffff) * kBN + jr0;
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
          const int r = q >> 1, jr = jr0 + nb * 8 + (q & 1), j = j0 + nb * 8 + (q & 1);
          float x = s[nb][q] * c.scale_log2;
          bool ok = rv[r];
          if (ok && !full) {
            const int p = c.T - c.S + ri[r];
            const bool held = rows.one_run ? jr >= rows.run_lo && jr < rows.run_hi
                                           : j < sa.sink || iv.span_holds(ri[r], j);
            ok = jr >= rows.lo && jr < rows.hi && j < c.T && (!c.causal || j <= p) && (held || abs(p - j) < sa.W);
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
      ldsm_x4_t(vf, sv + swz<D>(slot * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
      mma16816<T>(o[2 * dp], pa4, vf);
      mma16816<T>(o[2 * dp + 1], pa4, vf + 2);
    }
  }
  cp_async_wait<0>();
  __syncthreads();
  stamp(tr, 6);

  // ---- every warp's partial (row max, row sum, unnormalised output over its rows of its group's tiles) goes to
  // shared memory; the cluster's CTAs then merge the kDecWarps * nsplit partials by log-sum-exp weights through
  // distributed shared memory, each CTA a share of the output elements
  constexpr int kOS = D + 4;                 // padded rows: a store's 8 rows fall in different banks
  float* sO = reinterpret_cast<float*>(sK);  // [kDecWarps][kDecRows][kOS]
  float* sM = sO + kDecWarps * kDecRows * kOS;  // [kDecWarps][kDecRows]
  float* sL = sM + kDecWarps * kDecRows;        // [kDecWarps][kDecRows]
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float l = row_sum(lrow[r]);
    const int rr = (lane >> 2) + 8 * r;
    if (!rv[r]) continue;
    if ((lane & 3) == 0) {
      sM[warp * kDecRows + rr] = mrow[r];
      sL[warp * kDecRows + rr] = l;
    }
#pragma unroll
    for (int d = 0; d < D / 8; ++d)
      *reinterpret_cast<float2*>(sO + (warp * kDecRows + rr) * kOS + d * 8 + (lane & 3) * 2) =
          make_float2(o[d][2 * r], o[d][2 * r + 1]);
  }
  stamp(tr, 7);
  cluster.sync();
  for (int idx = split * kDecThreads + tid; idx < nr * D; idx += nsplit * kDecThreads) {
    const int r = idx / D, d = idx % D;
    float M = kNegInf, L = 0.f, acc = 0.f;
    for (int k = 0; k < nsplit; ++k) {
      const float* pm = cluster.map_shared_rank(sM, k);
      const float* pl = cluster.map_shared_rank(sL, k);
      const float* po = cluster.map_shared_rank(sO, k);
      float m[kDecWarps], l[kDecWarps], v[kDecWarps];
      float mk = M;
#pragma unroll
      for (int w = 0; w < kDecWarps; ++w) {
        m[w] = pm[w * kDecRows + r];
        l[w] = pl[w * kDecRows + r];
        v[w] = po[(w * kDecRows + r) * kOS + d];
        mk = fmaxf(mk, m[w]);
      }
      if (mk == kNegInf) continue;  // no admitted key yet
      const float a = exp2f(M - mk);
      L *= a;
      acc *= a;
#pragma unroll
      for (int w = 0; w < kDecWarps; ++w) {
        const float f = exp2f(m[w] - mk);
        L += l[w] * f;
        acc += v[w] * f;
      }
      M = mk;
    }
    const int sq = r / G, hh = r % G;
    static_cast<T*>(c.o)[(((int64_t)b * c.Hq + g * G + hh) * c.S + sq) * D + d] = from_f<T>(L > 0.f ? acc / L : 0.f);
  }
  stamp(tr, 8);
  if (tr) {
    tr[9] = sm_id();
    tr[10] = n;
  }
  cluster.sync();  // no CTA leaves while another still reads its shared memory
}

static int check_span(const ApAttn& a, const ApSpanAttrs& at) {
  int e = check_common(a);
  if (e) return e;
  if (at.sink_tokens < 0 || at.local_window < 0 || at.n_spans < 0) return AP_ERR_ARGS;
  if (at.n_spans > 0 && !at.spans) return AP_ERR_ARGS;
  if (at.spans_batch != 1 && at.spans_batch != a.B) return AP_ERR_ARGS;
  return AP_OK;
}

static int n_key_tiles(const ApAttn& a) { return (a.T + kBN - 1) / kBN; }

static bool span_decode_ok(const ApAttn& a) {
  return fast_dims(a) && a.S * (a.Hq / a.Hkv) <= kDecRows && n_key_tiles(a) <= kDecMaxWords * 32;
}

static int g_split_waves = 1;  // decode CTAs per SM the split count aims at (ap_set_span_split_waves)
static unsigned long long* g_trace = nullptr;  // ap_span_trace_buffer

// CTAs (one cluster) per (sequence, KV head) that the split count aims at: about g_split_waves per
// multiprocessor in all. Never fewer than it takes for a CTA's share of the key tiles to fit its list.
static int span_nsplit_wanted(const ApAttn& a, int* fewest) {
  const int nT = n_key_tiles(a);
  *fewest = (nT + kDecMaxEnt - 3) / (kDecMaxEnt - 2);
  const int ns = max((g_split_waves * num_sms()) / (a.B * a.Hkv), *fewest);
  return max(1, min(min(ns, nT), kDecMaxSplit));
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
static cudaLaunchConfig_t decode_config(const FwdCommon& c, int ns, cudaStream_t st, cudaLaunchAttribute* cluster) {
  cluster->id = cudaLaunchAttributeClusterDimension;
  cluster->val.clusterDim.x = ns;
  cluster->val.clusterDim.y = 1;
  cluster->val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(ns, c.Hkv, c.B);
  cfg.blockDim = dim3(kDecThreads);
  cfg.dynamicSmemBytes = DecSmem<D>::kTotal;
  cfg.stream = st;
  cfg.attrs = cluster;
  cfg.numAttrs = 1;
  return cfg;
}

// The split count: the largest one from the wanted count down whose clusters are all resident at once; a
// cluster that does not fit waits for a whole cluster to finish (on the H100, 62 clusters of 4 fit, not 64).
template <typename T, int D>
static int decode_splits(const FwdCommon& c, int want, int fewest, cudaStream_t st) {
  static int resident[kDecMaxSplit + 1];  // clusters of each size the device holds at once (0: not asked yet)
  for (int ns = want; ns >= max(1, fewest); --ns) {
    if (!resident[ns]) {
      cudaLaunchAttribute attr;
      const cudaLaunchConfig_t cfg = decode_config<T, D>(c, ns, st, &attr);
      int n = 0;
      if (cudaOccupancyMaxActiveClusters(&n, span_decode_kernel<T, D>, &cfg) != cudaSuccess) n = -1;
      resident[ns] = n;
    }
    if (resident[ns] >= c.B * c.Hkv) return ns;
  }
  return want;
}

template <typename T, int D>
static cudaError_t launch_decode(const FwdCommon& c, const SpanArgs& sa, int want, int fewest, cudaStream_t st) {
  auto kern = span_decode_kernel<T, D>;
  cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, DecSmem<D>::kTotal);
  if (e == cudaSuccess) e = cudaFuncSetAttribute(kern, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  if (e != cudaSuccess) return e;
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t cfg = decode_config<T, D>(c, decode_splits<T, D>(c, want, fewest, st), st, &attr);
  // the admitted tile count per (sequence, KV head) up to which the K/V stream is marked evict-first: a call that
  // reads at most kEvictFirstL2s times the L2 size
  constexpr int64_t kEvictFirstL2s = 5, tile_bytes = 2LL * kBN * D * 2;
  const int evict_first_tiles =
      (int)std::min<int64_t>(INT_MAX, kEvictFirstL2s * l2_cache_bytes() / (tile_bytes * c.B * c.Hkv));
  return cudaLaunchKernelEx(&cfg, kern, c, sa, evict_first_tiles, g_trace);
}

}  // namespace ap

using namespace ap;

extern "C" size_t ap_span_workspace_size(const ApAttn*, const ApSpanAttrs*) { return 0; }

extern "C" int ap_span_forward(const ApAttn* ap_, const ApSpanAttrs* at_, void*, size_t, void* stream, int path) {
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
      int fewest;
      const int want = span_nsplit_wanted(a, &fewest);
      return cuda_status(dispatch_16bit(a.dtype, a.D, [&](auto t, auto d) {
        return launch_decode<typename decltype(t)::type, decltype(d)::value>(c, sa, want, fewest, st);
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

extern "C" void ap_set_span_split_waves(int w) { g_split_waves = w > 0 ? w : 1; }

// debugging aid: the decode kernel writes 16 values per CTA (index (b * Hkv + g) * nsplit + split) to dev_ptr:
// the global timer (ns) at entry, key intervals staged, bitmap built, set bits counted, list built (tiles and
// their row ranges), first tile landed, loop end, warp partials stored, merged; its SM; its tile count. NULL turns it off.
extern "C" void ap_span_trace_buffer(unsigned long long* dev_ptr) { g_trace = dev_ptr; }
