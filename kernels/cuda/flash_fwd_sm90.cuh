// Hopper forward attention for BlockSparseAttention (and its dense path): wgmma + TMA, warp-specialised,
// persistent.
//
// Work items are (b, h, 128-row query tile), ordered head by head (the CTAs working at one time share a head's
// K and V in L2), longest rows first within a head. Persistent launch: one CTA per SM; each CTA's scheduler
// warp takes the next item from a global counter (dynamic balance: sparse rows vary in length). Warps 0-3 and
// 4-7 are two consumer warpgroups of 64 query rows each. In the producer warpgroup, warp 8 (the scheduler)
// turns each item's layout rows into a list of kept 128-key tiles, up to two items ahead, and warp 9's first
// thread (the loader) issues bulk tensor copies (TMA): the item's Q tile, then its K and V tiles into a
// two-stage ring. So the next item's first tiles are in flight while the consumers finish the current one.
// Consumers compute S = Q K^T with wgmma from shared memory, the // online softmax on the accumulators, then O += P V with P from registers. Tiles where every key is admitted
// for every row of a warpgroup skip the element checks. Same semantics as fwd_kernel with BsaPolicy
// (flash_fwd.cuh). Needs an sm_90 device, 16-bit Q/K/V, D = Dv in {64, 128}, block_size a multiple of 64, and
// at most kMaxTiles key tiles (T <= 262144).
#pragma once
#include "flash_fwd.cuh"
#include "sm90.cuh"

namespace ap {
namespace sm90 {

constexpr int kRows = 128;          // query rows per work item
constexpr int kKeys = 128;          // keys per tile
constexpr int kStages = 2;          // K/V ring
constexpr int kMaxTiles = 2048;     // list capacity per item
constexpr int kThreadsFwd = 384;    // two consumer warpgroups + the producer warpgroup
// Register budgets after setmaxnreg. The launch gives every thread the compile-time cap (168 for 384 threads);
// the consumers' increase is granted only from what the producer warpgroup gives back:
// 128 x (168 - 40) >= 256 x (232 - 168). (A larger producer budget deadlocks at regs_inc.)
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
constexpr int kBox = kKeys * 128;   // one [128 rows][64 elements] 128-byte-swizzled box, bytes

// A list entry: tile index << 8 | per warpgroup w (0, 1): bit w needs the tile, bit 2 + w no element check
// needed, bits 4 + 2w and 5 + 2w the layout bits of the tile's first and last key block.
constexpr uint32_t kMember = 0x3u;
__device__ __forceinline__ bool e_member(uint32_t e, int w) { return (e >> w) & 1u; }
__device__ __forceinline__ bool e_full(uint32_t e, int w) { return (e >> (2 + w)) & 1u; }
__device__ __forceinline__ bool e_kept0(uint32_t e, int w) { return (e >> (4 + 2 * w)) & 1u; }
__device__ __forceinline__ bool e_kept1(uint32_t e, int w) { return (e >> (5 + 2 * w)) & 1u; }

template <int D> struct FwdLayout {
  static constexpr int kTile = (D / 64) * kBox;  // 128 rows x D
  static constexpr int kQ = 0;                   // two buffers (items alternate)
  static constexpr int kK = kQ + 2 * kTile;
  static constexpr int kV = kK + kStages * kTile;
  static constexpr int kList = kV + kStages * kTile;  // two lists of kMaxTiles entries
  static constexpr int kCount = kList + 2 * kMaxTiles * 4;  // per list: its item (-1: no more) and length
  // mbarriers: full[kStages], empty[kStages], list_full[2], q_full[2], item_done[2]
  static constexpr int kBars = kCount + 16;
  static constexpr int kBytes = kBars + 8 * (2 * kStages + 6) + 1024;  // + room to align the base to 1024
};

struct Item {
  int b, h, row0;
};
// Item w: head by head (consecutive heads share K/V under GQA), longest rows first within a head
__device__ __forceinline__ Item item_at(const FwdCommon& c, int w) {
  const int nMT = (c.S + kRows - 1) / kRows, bh = w / nMT;
  return Item{bh / c.Hq, bh % c.Hq, (nMT - 1 - w % nMT) * kRows};
}
__device__ __forceinline__ int tiles_end(const FwdCommon& c, int row0) {  // candidate tiles [0, end)
  const int nT = (c.T + kKeys - 1) / kKeys;
  if (!c.causal) return nT;
  const int pl = c.T - c.S + min(row0 + kRows - 1, c.S - 1);
  return pl < 0 ? 0 : min(nT, pl / kKeys + 1);
}

// Entry bits of tile t for the two warpgroups of the item at row0 (0: no warpgroup needs it). Rows of a
// warpgroup lie in one query block (block_size is a multiple of 64); a tile spans at most two key blocks.
__device__ __forceinline__ uint32_t tile_bits(const FwdCommon& c, const BsaArgs& a, const uint8_t* lay, int row0,
                                              int t) {
  uint32_t bits = 0;
  const int t0 = t * kKeys, tl = min(t0 + kKeys, c.T) - 1;
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const int rf = row0 + 64 * w;
    if (rf >= c.S) break;
    const int rl = min(rf + 63, c.S - 1);
    const int pf = c.T - c.S + rf, pl = c.T - c.S + rl;
    if (c.causal && t0 > pl) continue;
    bool k0 = true, k1 = true;
    if (lay) {
      const uint8_t* row = lay + (int64_t)(rf / a.bs) * a.nKB;
      k0 = row[t0 / a.bs];
      k1 = row[tl / a.bs];
    }
    if (!k0 && !k1) continue;
    bits |= (1u << w) | ((uint32_t)k0 << (4 + 2 * w)) | ((uint32_t)k1 << (5 + 2 * w));
    if (k0 && k1 && t0 + kKeys <= c.T && (!c.causal || t0 + kKeys - 1 <= pf)) bits |= 1u << (2 + w);
  }
  return bits;
}

// One warpgroup's online-softmax state and its share of O for 64 query rows (rows qi0 and qi0 + 8 per thread).
template <typename T, int D> struct Consumer {
  float o[D / 2];
  float mrow[2], lrow[2];
  int qi0;

  __device__ void start(int row) {
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
    mrow[0] = mrow[1] = kNegInf;
    lrow[0] = lrow[1] = 0.f;
    qi0 = row;
  }

  // one tile: S = Q K^T, softmax update, O += P V
  __device__ void tile(const FwdCommon& c, const BsaArgs& a, int b, int h, uint32_t e, int w, uint32_t sq,
                       uint32_t sk, uint32_t sv) {
    const int lane = threadIdx.x & 31;
    float sc[64];
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t at = (kk / 4) * kBox + (kk % 4) * 32;
      mma_ss_n128<T>(sc, desc_kmajor(sq + at), desc_kmajor(sk + at), kk > 0);
    }
    wg_commit();
    wg_wait0();
    pin(sc);
    // sc[4n + q]: row qi0 + 8 (q >> 1), key t0 + 2 (lane % 4) + 8 n + (q & 1); scores in log2 units
    const int t0 = (int)(e >> 8) * kKeys;
    const bool fast = e_full(e, w) && !c.has_mask && c.scale_log2 > 0.f;
    float mx[2] = {mrow[0], mrow[1]};
    if (fast) {  // max of raw scores; the scale is applied inside exp2 below
      float rawmax[2] = {kNegInf, kNegInf};
#pragma unroll
      for (int n = 0; n < 16; ++n) {
        rawmax[0] = fmaxf(rawmax[0], fmaxf(sc[4 * n], sc[4 * n + 1]));
        rawmax[1] = fmaxf(rawmax[1], fmaxf(sc[4 * n + 2], sc[4 * n + 3]));
      }
      mx[0] = fmaxf(mx[0], rawmax[0] * c.scale_log2);
      mx[1] = fmaxf(mx[1], rawmax[1] * c.scale_log2);
    } else {
      const bool k0 = e_kept0(e, w), k1 = e_kept1(e, w);
      const int split = a.dense ? kKeys : (t0 / a.bs + 1) * a.bs - t0;  // keys before it: first key block
#pragma unroll
      for (int n = 0; n < 16; ++n)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int i = qi0 + ((q >> 1) << 3), jj = (lane & 3) * 2 + 8 * n + (q & 1), j = t0 + jj;
          float x = sc[4 * n + q] * c.scale_log2;
          if (!(jj < split ? k0 : k1) || j >= c.T || (c.causal && j > c.T - c.S + i)) x = kNegInf;
          else if (c.has_mask && i < c.S) x += c.mask.at(b, h, i, j) * kLog2e;
          sc[4 * n + q] = x;
          mx[q >> 1] = fmaxf(mx[q >> 1], x);
        }
    }
    float mu[2], alpha[2], rs[2] = {0.f, 0.f};
    softmax_rows(mx, mrow, mu, alpha);
    const float mul = fast ? c.scale_log2 : 1.f;
#pragma unroll
    for (int n = 0; n < 16; ++n)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float p = exp2f(fmaf(sc[4 * n + q], mul, -mu[q >> 1]));
        sc[4 * n + q] = p;
        rs[q >> 1] += p;
      }
    lrow[0] = lrow[0] * alpha[0] + rs[0];
    lrow[1] = lrow[1] * alpha[1] + rs[1];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      o[4 * n] *= alpha[0];
      o[4 * n + 1] *= alpha[0];
      o[4 * n + 2] *= alpha[1];
      o[4 * n + 3] *= alpha[1];
    }
    // O += P V, P as the register A operand (keys 16 kk .. 16 kk + 15 per step)
    uint32_t pa[8][4];
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      pa[kk][0] = pack2<T>(sc[8 * kk], sc[8 * kk + 1]);
      pa[kk][1] = pack2<T>(sc[8 * kk + 2], sc[8 * kk + 3]);
      pa[kk][2] = pack2<T>(sc[8 * kk + 4], sc[8 * kk + 5]);
      pa[kk][3] = pack2<T>(sc[8 * kk + 6], sc[8 * kk + 7]);
    }
    pin(o);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) mma_rs<T, D>(o, pa[kk], desc_mnmajor(sv + kk * 16 * 128, kBox));
    wg_commit();
    wg_wait0();
    pin(o);
  }

  __device__ void store(const FwdCommon& c, int b, int h) const {
    const int lane = threadIdx.x & 31;
    T* og = static_cast<T*>(c.o) + ((int64_t)b * c.Hq + h) * (int64_t)c.S * D;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float inv = row_inv_sum(lrow[r]);
      const int i = qi0 + 8 * r;
      if (i < c.S) {
        uint32_t* dst = reinterpret_cast<uint32_t*>(og + (int64_t)i * D + (lane & 3) * 2);
#pragma unroll
        for (int n = 0; n < D / 8; ++n) dst[n * 4] = pack2<T>(o[4 * n + 2 * r] * inv, o[4 * n + 2 * r + 1] * inv);
      }
    }
  }
};

template <typename T, int D>
__global__ void __launch_bounds__(kThreadsFwd, 1)
    bsa_fwd_kernel(const __grid_constant__ FwdCommon c, const __grid_constant__ BsaArgs a,
                   const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap tk,
                   const __grid_constant__ CUtensorMap tv, int* next_item /* zeroed before the launch */) {
  using L = FwdLayout<D>;
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  uint8_t* smem = smem_raw + (base - raw);
  const uint32_t sQ = base + L::kQ, sK = base + L::kK, sV = base + L::kV;
  uint32_t* lists = reinterpret_cast<uint32_t*>(smem + L::kList);
  volatile int* slots = reinterpret_cast<int*>(smem + L::kCount);  // list x: item slots[2x], length slots[2x + 1]
  const uint32_t full = base + L::kBars, empty = full + 8 * kStages;
  const uint32_t list_full = empty + 8 * kStages, q_full = list_full + 16, item_done = q_full + 16;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int nItems = c.B * c.Hq * ((c.S + kRows - 1) / kRows);
  // the CTA's it-th item once the scheduler has listed it (-1: no more)
  auto listed_item = [&](int it) {
    mbar_wait(list_full + 8 * (it & 1), (it >> 1) & 1);
    return (int)slots[2 * (it & 1)];
  };
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full + 8 * s, 1);
      mbar_init(empty + 8 * s, 8);  // one arrival per consumer warp
    }
    for (int x = 0; x < 2; ++x) {
      mbar_init(list_full + 8 * x, 1);
      mbar_init(q_full + 8 * x, 1);
      mbar_init(item_done + 8 * x, 8);
    }
    mbar_fence_init();
  }
  __syncthreads();

  if (warp >= 8) {
    regs_dec<kProducerRegs>();
    if (warp == 8) {
      // ---- scheduler: takes the next item, lists its kept tiles (ascending) in list x = it % 2
      for (int it = 0;; ++it) {
        const int x = it & 1, use = it >> 1;
        if (use > 0) mbar_wait(item_done + 8 * x, (use - 1) & 1);
        int w = 0;
        if (lane == 0) w = atomicAdd(next_item, 1);
        w = __shfl_sync(0xffffffffu, w, 0);
        if (w >= nItems) {
          if (lane == 0) {
            slots[2 * x] = -1;
            mbar_arrive(list_full + 8 * x);
          }
          break;
        }
        const Item m = item_at(c, w);
        const uint8_t* lay = a.dense ? nullptr : a.layout + ((int64_t)m.b * c.Hq + m.h) * a.nQB * (int64_t)a.nKB;
        const int hi = tiles_end(c, m.row0);
        uint32_t* list = lists + x * kMaxTiles;
        int n = 0;
        for (int t0 = 0; t0 < hi; t0 += 32) {
          const int t = t0 + lane;
          const uint32_t bits = t < hi ? tile_bits(c, a, lay, m.row0, t) : 0u;
          const uint32_t keep = __ballot_sync(0xffffffffu, (bits & kMember) != 0);
          if (bits & kMember) list[n + __popc(keep & ((1u << lane) - 1u))] = ((uint32_t)t << 8) | bits;
          n += __popc(keep);
        }
        if (lane == 0) {
          slots[2 * x] = w;
          slots[2 * x + 1] = n;
        }
        __syncwarp();
        if (lane == 0) mbar_arrive(list_full + 8 * x);
      }
    } else if (warp == 9 && lane == 0) {
      // ---- loader: Q of the item, then its K/V tiles through the ring
      int ring = 0;
      for (int it = 0;; ++it) {
        const int x = it & 1, use = it >> 1, w = listed_item(it);
        if (w < 0) break;
        if (use > 0) mbar_wait(item_done + 8 * x, (use - 1) & 1);  // Q buffer x is free again
        const Item m = item_at(c, w);
        mbar_expect_tx(q_full + 8 * x, L::kTile);
        for (int y = 0; y < D / 64; ++y)
          tma_load_3d(sQ + x * L::kTile + y * kBox, &tq, y * 64, m.row0, m.b * c.Hq + m.h, q_full + 8 * x);
        const int n = slots[2 * x + 1], z = m.b * c.Hkv + m.h / c.G;
        const uint32_t* list = lists + x * kMaxTiles;
        for (int e = 0; e < n; ++e, ++ring) {
          const int s = ring % kStages, r = ring / kStages;
          if (r > 0) mbar_wait(empty + 8 * s, (r - 1) & 1);
          mbar_expect_tx(full + 8 * s, 2 * L::kTile);
          const int key0 = (int)(list[e] >> 8) * kKeys;
          for (int y = 0; y < D / 64; ++y) {
            tma_load_3d(sK + s * L::kTile + y * kBox, &tk, y * 64, key0, z, full + 8 * s);
            tma_load_3d(sV + s * L::kTile + y * kBox, &tv, y * 64, key0, z, full + 8 * s);
          }
        }
      }
    }
  } else {
    // ---- consumers: warpgroup wg takes rows 64 wg .. 64 wg + 63 of each item
    regs_inc<kConsumerRegs>();
    const int wg = warp >> 2, wi = warp & 3;
    Consumer<T, D> cs;
    int ring = 0;
    for (int it = 0;; ++it) {
      const int x = it & 1, use = it >> 1, w = listed_item(it);
      if (w < 0) break;
      const Item m = item_at(c, w);
      cs.start(m.row0 + 64 * wg + 16 * wi + (lane >> 2));
      mbar_wait(q_full + 8 * x, use & 1);
      const int n = slots[2 * x + 1];
      const uint32_t* list = lists + x * kMaxTiles;
      const uint32_t sq = sQ + x * L::kTile + wg * 64 * 128;
      for (int e = 0; e < n; ++e, ++ring) {
        const int s = ring % kStages, r = ring / kStages;
        mbar_wait(full + 8 * s, r & 1);
        const uint32_t en = list[e];
        if (e_member(en, wg)) cs.tile(c, a, m.b, m.h, en, wg, sq, sK + s * L::kTile, sV + s * L::kTile);
        __syncwarp();
        if (lane == 0) mbar_arrive(empty + 8 * s);
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(item_done + 8 * x);  // list x and Q buffer x may be reused
      cs.store(c, m.b, m.h);
    }
  }
}

}  // namespace sm90

// Launches the Hopper kernel (fwd_sm90.cu); cudaErrorNotSupported where the device, the pointers or the
// length cannot take it.
// next_item: one device int, zeroed here (on the stream) before the launch.
template <typename T, int D>
cudaError_t launch_bsa_fwd_sm90(const FwdCommon& c, const BsaArgs& a, int* next_item, cudaStream_t st);

}  // namespace ap
