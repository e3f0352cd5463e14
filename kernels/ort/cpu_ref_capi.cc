// C entry points of the CPU reference kernels (float64 in, float64 out), for tests through ctypes.
#include <cstring>
#include "cpu_ref.h"

namespace {
thread_local std::string g_err;
apcpu::Dims dims(const long long* s) { return apcpu::Dims{s[0], s[1], s[2], s[3], s[4], s[5], s[6]}; }
apcpu::Mask mask(const double* m, const long long* st) {
  apcpu::Mask k;
  k.p = m;
  if (m) { k.sb = st[0]; k.sh = st[1]; k.ss = st[2]; k.st = st[3]; }
  return k;
}
int ret(const std::string& e) { g_err = e; return e.empty() ? 0 : 1; }
}  // namespace

extern "C" {
// shape: B, Hq, Hkv, S, T, D, Dv ; mst: mask strides (b, h, s, t)
int apcpu_block_sparse(const long long* shape, const double* q, const double* k, const double* v, const double* m,
                       const long long* mst, double scale, int causal, long long bs, float density, float mass,
                       long long sink, long long local, double* o, unsigned char* layout) {
  apcpu::BsaAttrs a;
  a.block_size = bs; a.density = density; a.mass_threshold = mass; a.sink_blocks = sink; a.local_blocks = local;
  return ret(apcpu::block_sparse(dims(shape), q, k, v, mask(m, mst), scale, causal != 0, a, o, layout));
}
int apcpu_tiled(const long long* shape, const double* q, const double* k, const double* v, const double* m,
                const long long* mst, const double* w, double scale, int causal, long long bs, float ff, float mf,
                long long mt, long long sink, long long local, long long scorer, double* o) {
  apcpu::TiledAttrs a;
  a.block_size = bs; a.fine_fraction = ff; a.medium_fraction = mf; a.medium_tile = mt;
  a.sink_blocks = sink; a.local_blocks = local; a.scorer = scorer;
  return ret(apcpu::tiled(dims(shape), q, k, v, mask(m, mst), w, scale, causal != 0, a, o));
}
int apcpu_span(const long long* shape, const double* q, const double* k, const double* v, const double* m,
               const long long* mst, const long long* spans, long long Bs, long long n, int per_query, double scale,
               int causal, long long sink, long long window, double* o) {
  apcpu::SpanAttrs a;
  a.sink_tokens = sink; a.local_window = window;
  apcpu::Spans sp;
  sp.p = reinterpret_cast<const int64_t*>(spans); sp.Bs = Bs; sp.n = n; sp.per_query = per_query != 0;
  return ret(apcpu::span(dims(shape), q, k, v, mask(m, mst), sp, scale, causal != 0, a, o));
}
const char* apcpu_last_error(void) { return g_err.c_str(); }
}
