// Generic attention kernel: one warp per query row, scalar fp32 math, any head dims up to 256 and any of
// float/half/bfloat16. Slow; it carries the configurations the tensor-core kernels do not (float32, odd head
// dims, block sizes under 64) so that every registered type and attribute value really runs.
#include "internal.h"

namespace ap {

struct GenCommon {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  int B, Hq, Hkv, S, T, G, D, Dv;
  float scale;
  int causal, has_mask;
  MaskRef mask;
};

template <typename T>
__global__ void __launch_bounds__(128) generic_kernel(const __grid_constant__ GenCommon c, const __grid_constant__ GenericArgs a) {
  const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= (int64_t)c.B * c.Hq * c.S) return;
  const int i = (int)(row % c.S);
  const int h = (int)((row / c.S) % c.Hq);
  const int b = (int)(row / ((int64_t)c.S * c.Hq));
  const int g = h / c.G;
  const int p = c.T - c.S + i;
  const T* qr = static_cast<const T*>(c.q) + row * c.D;
  float q[8], acc[8];
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int d = lane + 32 * u;
    q[u] = d < c.D ? to_f(qr[d]) : 0.f;
    acc[u] = 0.f;
  }
  float m = kNegInf, l = 0.f;
  auto visit = [&](const T* kr, const T* vr, float extra) {
    float dot = 0.f;
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int d = lane + 32 * u;
      if (d < c.D) dot += q[u] * to_f(kr[d]);
    }
#pragma unroll
    for (int o = 16; o; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    const float x = dot * c.scale + extra;
    if (x == kNegInf) return;
    const float mn = fmaxf(m, x);
    const float al = expf(m - mn), pp = expf(x - mn);
    l = l * al + pp;
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int d = lane + 32 * u;
      acc[u] = acc[u] * al + (d < c.Dv ? pp * to_f(vr[d]) : 0.f);
    }
    m = mn;
  };
  const int64_t kvo = ((int64_t)b * c.Hkv + g) * c.T;
  const T* K = static_cast<const T*>(c.k) + kvo * c.D;
  const T* V = static_cast<const T*>(c.v) + kvo * c.Dv;
  const int jmax = c.causal ? min(c.T - 1, p) : c.T - 1;
  auto mk = [&](int j) { return c.has_mask ? c.mask.at(b, h, i, j) : 0.f; };
  if (a.mode == 0) {
    const uint8_t* lay = a.layout ? a.layout + (((int64_t)b * c.Hq + h) * a.nQB + i / a.bs) * a.nKB : nullptr;
    for (int kb = 0; kb * a.bs <= jmax; ++kb) {
      if (lay && !lay[kb]) continue;
      const int je = min(jmax, (kb + 1) * a.bs - 1);
      for (int j = kb * a.bs; j <= je; ++j) visit(K + (int64_t)j * c.D, V + (int64_t)j * c.Dv, mk(j));
    }
  } else if (a.mode == 1) {
    for (int j = 0; j <= jmax; ++j) {
      const bool adm = j < a.sink || abs(p - j) < a.W || a.sp.contains(b, i, j);
      if (adm) visit(K + (int64_t)j * c.D, V + (int64_t)j * c.Dv, mk(j));
    }
  } else {
    const AttMeta* meta = static_cast<const AttMeta*>(a.meta) + kvo;
    const int* toff = a.toff + ((int64_t)b * c.Hkv + g) * (a.nKB + 1);
    const int Tc = toff[a.nKB];
    const int o = min(floordiv(p, a.bs), a.nKB - 1);
    const T* Kc = static_cast<const T*>(a.kc) + kvo * c.D;
    const T* Vc = static_cast<const T*>(a.vc) + kvo * c.Dv;
    for (int col = 0; col < Tc; ++col) {
      const AttMeta mm = meta[col];
      const bool ok = c.causal ? mm.kb <= o - a.L : !(mm.kb > o - a.L && mm.kb <= o);
      if (!ok) continue;
      float extra = mm.bias;
      if (c.has_mask) {
        float mx = kNegInf;
        for (int u = 0; u < mm.n; ++u) mx = fmaxf(mx, c.mask.at(b, h, i, mm.start + u));
        extra += mx;
      }
      visit(Kc + (int64_t)col * c.D, Vc + (int64_t)col * c.Dv, extra);
    }
    const int jlo = max(o - a.L + 1, 0) * a.bs;
    const int jhi = min(min((o + 1) * a.bs, c.T) - 1, jmax);
    for (int j = jlo; j <= jhi; ++j) visit(K + (int64_t)j * c.D, V + (int64_t)j * c.Dv, mk(j));
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
  T* orow = static_cast<T*>(c.o) + row * c.Dv;
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int d = lane + 32 * u;
    if (d < c.Dv) orow[d] = from_f<T>(acc[u] * inv);
  }
}

int launch_generic(const ApAttn& a, const GenericArgs& g, cudaStream_t st) {
  if (a.D > 256 || a.Dv > 256) return AP_ERR_UNSUPPORTED;
  GenCommon c;
  c.q = a.q; c.k = a.k; c.v = a.v; c.o = a.o;
  c.B = a.B; c.Hq = a.Hq; c.Hkv = a.Hkv; c.S = a.S; c.T = a.T; c.G = a.Hq / a.Hkv; c.D = a.D; c.Dv = a.Dv;
  c.scale = eff_scale(a);
  c.causal = a.causal;
  c.has_mask = a.mask != nullptr;
  c.mask = make_mask(a);
  const int64_t rows = (int64_t)a.B * a.Hq * a.S;
  const unsigned blocks = (unsigned)((rows * 32 + 127) / 128);
  if (a.dtype == AP_F32) generic_kernel<float><<<blocks, 128, 0, st>>>(c, g);
  else if (a.dtype == AP_F16) generic_kernel<__half><<<blocks, 128, 0, st>>>(c, g);
  else generic_kernel<__nv_bfloat16><<<blocks, 128, 0, st>>>(c, g);
  return cuda_status(cudaGetLastError());
}

}  // namespace ap
