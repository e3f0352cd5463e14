// CPU reference kernels of the attnpass operators (kernels/OPERATORS.md), float64 throughout.
// Inputs are contiguous float64 arrays: Q [B,Hq,S,D], K [B,Hkv,T,D], V [B,Hkv,T,Dv]; the mask is read through
// element strides broadcast to [B,Hq,S,T] (nullptr: no mask). Output O [B,Hq,S,Dv].
#pragma once
#include <cstdint>
#include <string>

namespace apcpu {

struct Dims {
  int64_t B, Hq, Hkv, S, T, D, Dv;
};

struct Mask {
  const double* p = nullptr;
  int64_t sb = 0, sh = 0, ss = 0, st = 0;
  double at(int64_t b, int64_t h, int64_t i, int64_t j) const { return p[b * sb + h * sh + i * ss + j * st]; }
};

struct BsaAttrs {
  int64_t block_size = 64;
  float density = 0.25f;
  float mass_threshold = 0.f;
  int64_t sink_blocks = 1, local_blocks = 1;
};
struct TiledAttrs {
  int64_t block_size = 64;
  float fine_fraction = 0.25f, medium_fraction = 0.25f;
  int64_t medium_tile = 8, sink_blocks = 1, local_blocks = 1, scorer = 0;
};
struct SpanAttrs {
  int64_t sink_tokens = 4, local_window = 64;
};
struct Spans {
  const int64_t* p = nullptr;  // [Bs, n, 2] or [Bs, S, n, 2]
  int64_t Bs = 1, n = 0;
  bool per_query = false;
};

// Each returns an empty string on success, else a message. `layout` (nullable) is bool [B,Hq,nQB,nKB].
std::string block_sparse(const Dims& d, const double* q, const double* k, const double* v, const Mask& m, double scale,
                         bool causal, const BsaAttrs& a, double* o, uint8_t* layout);
std::string tiled(const Dims& d, const double* q, const double* k, const double* v, const Mask& m,
                  const double* scorer_w, double scale, bool causal, const TiledAttrs& a, double* o);
std::string span(const Dims& d, const double* q, const double* k, const double* v, const Mask& m, const Spans& sp,
                 double scale, bool causal, const SpanAttrs& a, double* o);

}  // namespace apcpu
