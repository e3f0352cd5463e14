// CPU reference kernels of the attnpass operators: a direct, float64 reading of kernels/OPERATORS.md.
#include "cpu_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace apcpu {
namespace {

const double kNegInf = -std::numeric_limits<double>::infinity();

int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Accumulates softmax(logits) . values over the admitted entries of one query row.
struct RowSoftmax {
  std::vector<double> logit;
  std::vector<const double*> val;
  void clear() {
    logit.clear();
    val.clear();
  }
  void add(double l, const double* v) {
    logit.push_back(l);
    val.push_back(v);
  }
  void finish(int64_t Dv, double* out) const {
    std::fill(out, out + Dv, 0.0);
    double m = kNegInf;
    for (double l : logit) m = std::max(m, l);
    if (m == kNegInf || std::isnan(m)) return;  // empty row (or every admitted logit is -inf): 0
    double den = 0;
    for (size_t t = 0; t < logit.size(); ++t) {
      const double p = std::exp(logit[t] - m);
      if (p == 0) continue;
      den += p;
      for (int64_t e = 0; e < Dv; ++e) out[e] += p * val[t][e];
    }
    if (den > 0)
      for (int64_t e = 0; e < Dv; ++e) out[e] /= den;
  }
};

std::string check_dims(const Dims& d) {
  if (d.B <= 0 || d.Hq <= 0 || d.Hkv <= 0 || d.S <= 0 || d.T <= 0 || d.D <= 0 || d.Dv <= 0)
    return "attnpass: empty or negative dimension";
  if (d.Hq % d.Hkv) return "attnpass: query heads must be a multiple of key/value heads";
  return "";
}

bool pow2_in(int64_t x, int64_t lo, int64_t hi) { return x >= lo && x <= hi && (x & (x - 1)) == 0; }

}  // namespace

// ------------------------------------------------------------------------------------------------
std::string block_sparse(const Dims& d, const double* q, const double* k, const double* v, const Mask& m, double scale,
                         bool causal, const BsaAttrs& a, double* o, uint8_t* layout) {
  std::string err = check_dims(d);
  if (!err.empty()) return err;
  const int64_t bs = a.block_size;
  if (!pow2_in(bs, 16, 256)) return "BlockSparseAttention: block_size must be a power of two in [16, 256]";
  if (!(a.density > 0.f && a.density <= 1.f)) return "BlockSparseAttention: density must be in (0, 1]";
  if (!(a.mass_threshold >= 0.f && a.mass_threshold <= 1.f)) return "BlockSparseAttention: mass_threshold must be in [0, 1]";
  if (a.sink_blocks < 0 || a.local_blocks < 0) return "BlockSparseAttention: sink_blocks and local_blocks must be >= 0";
  const int64_t B = d.B, Hq = d.Hq, Hkv = d.Hkv, S = d.S, T = d.T, D = d.D, Dv = d.Dv, G = Hq / Hkv;
  const int64_t nQB = (S + bs - 1) / bs, nKB = (T + bs - 1) / bs;
  std::vector<double> kbar(nKB * D), qbar(D), s(nKB);
  std::vector<int64_t> order;
  std::vector<uint8_t> kept(nKB);
  RowSoftmax row;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < Hkv; ++g) {
      const double* K = k + (b * Hkv + g) * T * D;
      const double* V = v + (b * Hkv + g) * T * Dv;
      std::fill(kbar.begin(), kbar.end(), 0.0);
      for (int64_t kb = 0; kb < nKB; ++kb) {
        const int64_t j0 = kb * bs, len = std::min(bs, T - j0);
        for (int64_t j = j0; j < j0 + len; ++j)
          for (int64_t e = 0; e < D; ++e) kbar[kb * D + e] += K[j * D + e];
        for (int64_t e = 0; e < D; ++e) kbar[kb * D + e] /= (double)len;
      }
      for (int64_t h = g * G; h < (g + 1) * G; ++h) {
        const double* Q = q + (b * Hq + h) * S * D;
        for (int64_t qb = 0; qb < nQB; ++qb) {
          const int64_t i0 = qb * bs, qlen = std::min(bs, S - i0);
          std::fill(qbar.begin(), qbar.end(), 0.0);
          for (int64_t i = i0; i < i0 + qlen; ++i)
            for (int64_t e = 0; e < D; ++e) qbar[e] += Q[i * D + e];
          for (int64_t e = 0; e < D; ++e) qbar[e] /= (double)qlen;
          const int64_t plast = T - S + (i0 + qlen) - 1;
          const int64_t nC = causal ? (plast < 0 ? 0 : std::min(nKB, plast / bs + 1)) : nKB;
          const int64_t kd = std::min(floordiv(plast, bs), nKB - 1);
          auto forced = [&](int64_t kb) {
            return kb < nC && (kb < a.sink_blocks || (kb > kd - a.local_blocks && kb <= kd));
          };
          int64_t nF = 0;
          order.clear();
          for (int64_t kb = 0; kb < nKB; ++kb) {
            s[kb] = scale * dot(qbar.data(), &kbar[kb * D], D);
            if (kb >= nC) continue;
            if (forced(kb)) ++nF;
            else order.push_back(kb);
          }
          std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return s[x] > s[y]; });
          int64_t n = 0;
          if (a.mass_threshold <= 0.f) {
            n = (int64_t)std::ceil((double)a.density * (double)nC) - nF;
            n = std::max<int64_t>(0, std::min<int64_t>(n, (int64_t)order.size()));
          } else {
            double mx = kNegInf;
            for (int64_t kb = 0; kb < nC; ++kb) mx = std::max(mx, s[kb] + std::log((double)std::min(bs, T - kb * bs)));
            double z = 0, fm = 0;
            for (int64_t kb = 0; kb < nC; ++kb) {
              const double w = std::exp(s[kb] + std::log((double)std::min(bs, T - kb * bs)) - mx);
              z += w;
              if (forced(kb)) fm += w;
            }
            double acc = fm / z;
            const double thr = (double)a.mass_threshold;
            while (n < (int64_t)order.size() && !(acc >= thr)) {
              const int64_t kb = order[n];
              acc += std::exp(s[kb] + std::log((double)std::min(bs, T - kb * bs)) - mx) / z;
              ++n;
            }
          }
          std::fill(kept.begin(), kept.end(), 0);
          for (int64_t kb = 0; kb < nC; ++kb)
            if (forced(kb)) kept[kb] = 1;
          for (int64_t t = 0; t < n; ++t) kept[order[t]] = 1;
          if (layout)
            for (int64_t kb = 0; kb < nKB; ++kb) layout[((b * Hq + h) * nQB + qb) * nKB + kb] = kept[kb];
          for (int64_t i = i0; i < i0 + qlen; ++i) {
            const int64_t p = T - S + i;
            row.clear();
            for (int64_t kb = 0; kb < nKB; ++kb) {
              if (!kept[kb]) continue;
              for (int64_t j = kb * bs; j < std::min(T, (kb + 1) * bs); ++j) {
                if (causal && j > p) break;
                double l = scale * dot(&Q[i * D], &K[j * D], D);
                if (m.p) l += m.at(b, h, i, j);
                row.add(l, &V[j * Dv]);
              }
            }
            row.finish(Dv, o + ((b * Hq + h) * S + i) * Dv);
          }
        }
      }
    }
  }
  return "";
}

// ------------------------------------------------------------------------------------------------
std::string tiled(const Dims& d, const double* q, const double* k, const double* v, const Mask& m,
                  const double* scorer_w, double scale, bool causal, const TiledAttrs& a, double* o) {
  std::string err = check_dims(d);
  if (!err.empty()) return err;
  const int64_t bs = a.block_size;
  if (!pow2_in(bs, 16, 256)) return "TiledAttention: block_size must be a power of two in [16, 256]";
  if (!(a.fine_fraction >= 0.f && a.fine_fraction <= 1.f)) return "TiledAttention: fine_fraction must be in [0, 1]";
  if (!(a.medium_fraction >= 0.f && a.medium_fraction <= 1.f)) return "TiledAttention: medium_fraction must be in [0, 1]";
  if (a.medium_tile < 1 || bs % a.medium_tile) return "TiledAttention: medium_tile must divide block_size";
  if (a.sink_blocks < 0 || a.local_blocks < 1) return "TiledAttention: sink_blocks >= 0 and local_blocks >= 1";
  if (a.scorer < 0 || a.scorer > 2) return "TiledAttention: scorer must be 0, 1 or 2";
  if (a.scorer == 2 && !scorer_w) return "TiledAttention: scorer = 2 needs the scorer input";
  const int64_t B = d.B, Hq = d.Hq, Hkv = d.Hkv, S = d.S, T = d.T, D = d.D, Dv = d.Dv, G = Hq / Hkv;
  const int64_t nKB = (T + bs - 1) / bs;
  const int64_t nf = (int64_t)std::floor((double)a.fine_fraction * (double)nKB + 0.5);
  const int64_t nm = (int64_t)std::floor((double)a.medium_fraction * (double)nKB + 0.5);
  std::vector<double> r(T), R(nKB);
  std::vector<int> level(nKB);
  struct Tile {
    int64_t kb, start, n;
  };
  std::vector<Tile> tiles;
  std::vector<double> kt, vt;
  std::vector<int64_t> order;
  RowSoftmax row;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < Hkv; ++g) {
      const double* K = k + (b * Hkv + g) * T * D;
      const double* V = v + (b * Hkv + g) * T * Dv;
      // 1. token importance
      if (a.scorer == 0) {
        for (int64_t j = 0; j < T; ++j) r[j] = std::sqrt(dot(&K[j * D], &K[j * D], D));
      } else if (a.scorer == 2) {
        for (int64_t j = 0; j < T; ++j) r[j] = dot(&K[j * D], scorer_w, D);
      } else {
        std::fill(r.begin(), r.end(), 0.0);
        const int64_t Sp = std::min<int64_t>(S, 16);
        std::vector<double> l(T);
        for (int64_t h = g * G; h < (g + 1) * G; ++h)
          for (int64_t i = S - Sp; i < S; ++i) {
            const double* qi = q + ((b * Hq + h) * S + i) * D;
            double mx = kNegInf;
            for (int64_t j = 0; j < T; ++j) mx = std::max(mx, l[j] = scale * dot(qi, &K[j * D], D));
            double z = 0;
            for (int64_t j = 0; j < T; ++j) z += (l[j] = std::exp(l[j] - mx));
            for (int64_t j = 0; j < T; ++j) r[j] += l[j] / z;
          }
        for (int64_t j = 0; j < T; ++j) r[j] /= (double)(G * Sp);
      }
      for (int64_t kb = 0; kb < nKB; ++kb) {
        const int64_t j0 = kb * bs, len = std::min(bs, T - j0);
        double s = 0;
        for (int64_t j = j0; j < j0 + len; ++j) s += r[j];
        R[kb] = s / (double)len;
      }
      // 2. levels
      order.clear();
      for (int64_t kb = 0; kb < nKB; ++kb) {
        if (kb < a.sink_blocks) level[kb] = 0;
        else order.push_back(kb);
      }
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return R[x] > R[y]; });
      for (int64_t t = 0; t < (int64_t)order.size(); ++t) level[order[t]] = t < nf ? 0 : (t < nf + nm ? 1 : 2);
      // 3. tiles
      tiles.clear();
      for (int64_t kb = 0; kb < nKB; ++kb) {
        const int64_t j0 = kb * bs, len = std::min(bs, T - j0);
        const int64_t tl = level[kb] == 0 ? 1 : (level[kb] == 1 ? a.medium_tile : len);
        for (int64_t st = j0; st < j0 + len; st += tl) tiles.push_back({kb, st, std::min(tl, j0 + len - st)});
      }
      kt.assign(tiles.size() * D, 0.0);
      vt.assign(tiles.size() * Dv, 0.0);
      for (size_t t = 0; t < tiles.size(); ++t) {
        for (int64_t j = tiles[t].start; j < tiles[t].start + tiles[t].n; ++j) {
          for (int64_t e = 0; e < D; ++e) kt[t * D + e] += K[j * D + e];
          for (int64_t e = 0; e < Dv; ++e) vt[t * Dv + e] += V[j * Dv + e];
        }
        for (int64_t e = 0; e < D; ++e) kt[t * D + e] /= (double)tiles[t].n;
        for (int64_t e = 0; e < Dv; ++e) vt[t * Dv + e] /= (double)tiles[t].n;
      }
      // 4. attention
      for (int64_t h = g * G; h < (g + 1) * G; ++h) {
        for (int64_t i = 0; i < S; ++i) {
          const double* qi = q + ((b * Hq + h) * S + i) * D;
          const int64_t p = T - S + i;
          const int64_t ob = std::min(floordiv(p, bs), nKB - 1);
          row.clear();
          for (size_t t = 0; t < tiles.size(); ++t) {
            const int64_t kb = tiles[t].kb;
            const bool in_exact = kb > ob - a.local_blocks && kb <= ob;
            const bool ok = causal ? kb < ob - a.local_blocks + 1 : !in_exact;
            if (!ok) continue;
            double l = scale * dot(qi, &kt[t * D], D) + std::log((double)tiles[t].n);
            if (m.p) {
              double mx = kNegInf;
              for (int64_t j = tiles[t].start; j < tiles[t].start + tiles[t].n; ++j) mx = std::max(mx, m.at(b, h, i, j));
              l += mx;
            }
            row.add(l, &vt[t * Dv]);
          }
          for (int64_t kb = std::max<int64_t>(0, ob - a.local_blocks + 1); kb <= ob; ++kb) {
            for (int64_t j = kb * bs; j < std::min(T, (kb + 1) * bs); ++j) {
              if (causal && j > p) break;
              double l = scale * dot(qi, &K[j * D], D);
              if (m.p) l += m.at(b, h, i, j);
              row.add(l, &V[j * Dv]);
            }
          }
          row.finish(Dv, o + ((b * Hq + h) * S + i) * Dv);
        }
      }
    }
  }
  return "";
}

// ------------------------------------------------------------------------------------------------
std::string span(const Dims& d, const double* q, const double* k, const double* v, const Mask& m, const Spans& sp,
                 double scale, bool causal, const SpanAttrs& a, double* o) {
  std::string err = check_dims(d);
  if (!err.empty()) return err;
  if (a.sink_tokens < 0 || a.local_window < 0) return "SpanAttention: sink_tokens and local_window must be >= 0";
  if (sp.Bs != 1 && sp.Bs != d.B) return "SpanAttention: spans batch must be 1 or B";
  const int64_t B = d.B, Hq = d.Hq, Hkv = d.Hkv, S = d.S, T = d.T, D = d.D, Dv = d.Dv, G = Hq / Hkv;
  RowSoftmax row;
  std::vector<std::pair<int64_t, int64_t>> iv;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t bb = sp.Bs == 1 ? 0 : b;
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t g = h / G;
      const double* K = k + (b * Hkv + g) * T * D;
      const double* V = v + (b * Hkv + g) * T * Dv;
      for (int64_t i = 0; i < S; ++i) {
        const double* qi = q + ((b * Hq + h) * S + i) * D;
        const int64_t p = T - S + i;
        const int64_t* s = sp.p + (sp.per_query ? (bb * S + i) : bb) * sp.n * 2;
        iv.clear();
        for (int64_t t = 0; t < sp.n; ++t) {
          const int64_t st = std::min(std::max<int64_t>(s[2 * t], 0), T), en = std::min(std::max<int64_t>(s[2 * t + 1], 0), T);
          if (en > st) iv.push_back({st, en});
        }
        row.clear();
        for (int64_t j = 0; j < T; ++j) {
          if (causal && j > p) break;
          bool ok = j < a.sink_tokens || std::llabs(p - j) < a.local_window;
          for (size_t t = 0; !ok && t < iv.size(); ++t) ok = j >= iv[t].first && j < iv[t].second;
          if (!ok) continue;
          double l = scale * dot(qi, &K[j * D], D);
          if (m.p) l += m.at(b, h, i, j);
          row.add(l, &V[j * Dv]);
        }
        row.finish(Dv, o + ((b * Hq + h) * S + i) * Dv);
      }
    }
  }
  return "";
}

}  // namespace apcpu
