// ONNX Runtime custom-op library for the attnpass operators (domain ai.attnpass, opset 1):
// BlockSparseAttention, TiledAttention and SpanAttention.
//
// CPU execution provider: float64 reference kernels (cpu_ref.cc) for float, float16 and bfloat16 inputs.
// CUDA execution provider (when built with ATTNPASS_WITH_CUDA): the kernels of kernels/cuda on the kernel
// context's compute stream, for float16 and bfloat16 (tensor cores) and float (generic kernel).
// Once a library registers an op ORT never falls back to the model-local function of that name, so every
// (op, provider, type) listed in kRegistrations below really runs.
//
// Entry point: RegisterCustomOps (OrtApi::RegisterCustomOpsLibrary / SessionOptions.register_custom_ops_library).
#include <onnxruntime_c_api.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cpu_ref.h"

#ifdef ATTNPASS_WITH_CUDA
#include <cuda_runtime_api.h>
#include "attnpass_cuda.h"
#endif

#if defined(_WIN32)
#define AP_EXPORT __declspec(dllexport)
#else
#define AP_EXPORT __attribute__((visibility("default")))
#endif

namespace {

const OrtApi* g_api = nullptr;
const char* const kDomain = "ai.attnpass";

enum class OpKind { kBlockSparse, kTiled, kSpan };

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16 <-> double
double half_to_double(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  double v;
  if (exp == 0) v = std::ldexp((double)man, -24);
  else if (exp == 31) v = man ? NAN : INFINITY;
  else v = std::ldexp((double)(man | 0x400), (int)exp - 25);
  return sign ? -v : v;
}
uint16_t float_to_half(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {                                     // subnormal half (or zero)
    float a;
    std::memcpy(&a, &ax, 4);
    const float scaled = a * 16777216.0f;  // / 2^-24
    return (uint16_t)(sign | (uint16_t)std::nearbyint(scaled));
  }
  const uint32_t mant = ax & 0x7fffff;
  const int32_t e = (int32_t)(ax >> 23) - 127 + 15;
  uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return (uint16_t)(sign | h);
}
double bf16_to_double(uint16_t b) {
  const uint32_t x = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  const uint32_t lsb = (x >> 16) & 1;
  x += 0x7fff + lsb;
  return (uint16_t)(x >> 16);
}

void to_double(ONNXTensorElementDataType t, const void* src, size_t n, double* dst) {
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    const float* s = static_cast<const float*>(src);
    for (size_t i = 0; i < n; ++i) dst[i] = s[i];
  } else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (size_t i = 0; i < n; ++i) dst[i] = half_to_double(s[i]);
  } else {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_double(s[i]);
  }
}
void from_double(ONNXTensorElementDataType t, const double* src, size_t n, void* dst) {
  if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    float* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = (float)src[i];
  } else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = float_to_half((float)src[i]);
  } else {
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = float_to_bf16((float)src[i]);
  }
}

// ---------------------------------------------------------------------------------------------
struct Attrs {
  float scale = 0.f;
  int64_t causal = 0;
  apcpu::BsaAttrs bsa;
  apcpu::TiledAttrs tiled;
  apcpu::SpanAttrs span;
};

float attr_f(const OrtKernelInfo* info, const char* name, float def) {
  float v = def;
  OrtStatus* st = g_api->KernelInfoGetAttribute_float(info, name, &v);
  if (st) {
    g_api->ReleaseStatus(st);
    return def;
  }
  return v;
}
int64_t attr_i(const OrtKernelInfo* info, const char* name, int64_t def) {
  int64_t v = def;
  OrtStatus* st = g_api->KernelInfoGetAttribute_int64(info, name, &v);
  if (st) {
    g_api->ReleaseStatus(st);
    return def;
  }
  return v;
}

struct Kernel {
  OpKind kind;
  bool cuda;
  ONNXTensorElementDataType type;
  Attrs at;
};

OrtStatus* fail(const std::string& msg) { return g_api->CreateStatus(ORT_INVALID_ARGUMENT, msg.c_str()); }

#define AP_RETURN_IF(expr)            \
  do {                                \
    OrtStatus* _s = (expr);           \
    if (_s) return _s;                \
  } while (0)

struct TensorView {
  const OrtValue* v = nullptr;
  std::vector<int64_t> shape;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  const void* data = nullptr;
  size_t numel() const {
    size_t n = 1;
    for (int64_t d : shape) n *= (size_t)d;
    return n;
  }
};

OrtStatus* view_input(OrtKernelContext* ctx, size_t i, TensorView& tv) {
  const OrtValue* v = nullptr;
  AP_RETURN_IF(g_api->KernelContext_GetInput(ctx, i, &v));
  tv.v = v;
  if (!v) return nullptr;
  OrtTensorTypeAndShapeInfo* info = nullptr;
  AP_RETURN_IF(g_api->GetTensorTypeAndShape(v, &info));
  size_t nd = 0;
  g_api->GetDimensionsCount(info, &nd);
  tv.shape.resize(nd);
  if (nd) g_api->GetDimensions(info, tv.shape.data(), nd);
  g_api->GetTensorElementType(info, &tv.type);
  g_api->ReleaseTensorTypeAndShapeInfo(info);
  void* p = nullptr;
  AP_RETURN_IF(g_api->GetTensorMutableData(const_cast<OrtValue*>(v), &p));
  tv.data = p;
  return nullptr;
}

// mask strides broadcast to [B, Hq, S, T]; "no mask" for absent, scalar or [1]
OrtStatus* mask_strides(const TensorView& m, const apcpu::Dims& d, bool& has, int64_t st[4]) {
  has = false;
  st[0] = st[1] = st[2] = st[3] = 0;
  if (!m.v) return nullptr;
  if (m.shape.size() == 0 || (m.shape.size() == 1 && m.shape[0] == 1)) return nullptr;
  if (m.shape.size() > 4) return fail("attnpass: mask rank must be <= 4");
  const int64_t full[4] = {d.B, d.Hq, d.S, d.T};
  int64_t dims[4] = {1, 1, 1, 1};
  const size_t off = 4 - m.shape.size();
  for (size_t i = 0; i < m.shape.size(); ++i) dims[off + i] = m.shape[i];
  int64_t stride = 1;
  for (int a = 3; a >= 0; --a) {
    if (dims[a] == full[a] && dims[a] != 1) st[a] = stride;
    else if (dims[a] == 1) st[a] = 0;
    else return fail("attnpass: mask does not broadcast to [B, Hq, S, T]");
    stride *= dims[a];
  }
  has = true;
  return nullptr;
}

OrtStatus* qkv_dims(const TensorView& q, const TensorView& k, const TensorView& v, apcpu::Dims& d) {
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape.size() != 4)
    return fail("attnpass: Q, K and V must be rank 4 ([B, H, seq, head_dim])");
  d.B = q.shape[0];
  d.Hq = q.shape[1];
  d.S = q.shape[2];
  d.D = q.shape[3];
  d.Hkv = k.shape[1];
  d.T = k.shape[2];
  d.Dv = v.shape[3];
  if (k.shape[0] != d.B || v.shape[0] != d.B || v.shape[1] != d.Hkv || v.shape[2] != d.T || k.shape[3] != d.D)
    return fail("attnpass: Q, K, V shapes disagree");
  if (d.Hkv <= 0 || d.Hq % d.Hkv) return fail("attnpass: query heads must be a multiple of key/value heads");
  return nullptr;
}

OrtStatus* span_shape(const TensorView& s, const apcpu::Dims& d, apcpu::Spans& sp) {
  if (!s.v) return fail("SpanAttention: the spans input is required");
  if (s.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) return fail("SpanAttention: spans must be int64");
  if (s.shape.size() == 3 && s.shape[2] == 2) {
    sp.per_query = false;
    sp.Bs = s.shape[0];
    sp.n = s.shape[1];
  } else if (s.shape.size() == 4 && s.shape[3] == 2 && s.shape[1] == d.S) {
    sp.per_query = true;
    sp.Bs = s.shape[0];
    sp.n = s.shape[2];
  } else {
    return fail("SpanAttention: spans must be [Bs, n_spans, 2] or [Bs, S, n_spans, 2]");
  }
  if (sp.Bs != 1 && sp.Bs != d.B) return fail("SpanAttention: spans batch must be 1 or B");
  sp.p = static_cast<const int64_t*>(s.data);
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
OrtStatus* compute_cpu(Kernel& kr, OrtKernelContext* ctx) {
  TensorView q, k, v, m, x4;
  AP_RETURN_IF(view_input(ctx, 0, q));
  AP_RETURN_IF(view_input(ctx, 1, k));
  AP_RETURN_IF(view_input(ctx, 2, v));
  AP_RETURN_IF(view_input(ctx, 3, m));
  size_t nin = 0;
  g_api->KernelContext_GetInputCount(ctx, &nin);
  if (nin > 4) AP_RETURN_IF(view_input(ctx, 4, x4));
  apcpu::Dims d;
  AP_RETURN_IF(qkv_dims(q, k, v, d));
  bool has_mask;
  int64_t mst[4];
  AP_RETURN_IF(mask_strides(m, d, has_mask, mst));
  const ONNXTensorElementDataType t = q.type;
  std::vector<double> qd(q.numel()), kd(k.numel()), vd(v.numel()), od((size_t)(d.B * d.Hq * d.S * d.Dv)), md, wd;
  to_double(t, q.data, qd.size(), qd.data());
  to_double(t, k.data, kd.size(), kd.data());
  to_double(t, v.data, vd.size(), vd.data());
  apcpu::Mask mk;
  if (has_mask) {
    md.resize(m.numel());
    to_double(t, m.data, md.size(), md.data());
    mk.p = md.data();
    mk.sb = mst[0];
    mk.sh = mst[1];
    mk.ss = mst[2];
    mk.st = mst[3];
  }
  const double scale = kr.at.scale != 0.f ? (double)kr.at.scale : 1.0 / std::sqrt((double)d.D);
  const bool causal = kr.at.causal != 0;
  std::string err;
  uint8_t* layout = nullptr;
  if (kr.kind == OpKind::kBlockSparse) {
    size_t nout = 0;
    g_api->KernelContext_GetOutputCount(ctx, &nout);
    if (nout > 1) {
      const int64_t bs = kr.at.bsa.block_size > 0 ? kr.at.bsa.block_size : 64;
      const int64_t ld[4] = {d.B, d.Hq, (d.S + bs - 1) / bs, (d.T + bs - 1) / bs};
      OrtValue* lo = nullptr;
      AP_RETURN_IF(g_api->KernelContext_GetOutput(ctx, 1, ld, 4, &lo));
      if (lo) {
        void* p = nullptr;
        AP_RETURN_IF(g_api->GetTensorMutableData(lo, &p));
        layout = static_cast<uint8_t*>(p);
      }
    }
    err = apcpu::block_sparse(d, qd.data(), kd.data(), vd.data(), mk, scale, causal, kr.at.bsa, od.data(), layout);
  } else if (kr.kind == OpKind::kTiled) {
    if (x4.v) {
      if (x4.numel() != (size_t)d.D) return fail("TiledAttention: scorer must hold D weights");
      wd.resize(x4.numel());
      to_double(t, x4.data, wd.size(), wd.data());
    }
    err = apcpu::tiled(d, qd.data(), kd.data(), vd.data(), mk, wd.empty() ? nullptr : wd.data(), scale, causal,
                       kr.at.tiled, od.data());
  } else {
    apcpu::Spans sp;
    AP_RETURN_IF(span_shape(x4, d, sp));
    err = apcpu::span(d, qd.data(), kd.data(), vd.data(), mk, sp, scale, causal, kr.at.span, od.data());
  }
  if (!err.empty()) return fail(err);
  const int64_t od_[4] = {d.B, d.Hq, d.S, d.Dv};
  OrtValue* out = nullptr;
  AP_RETURN_IF(g_api->KernelContext_GetOutput(ctx, 0, od_, 4, &out));
  void* op = nullptr;
  AP_RETURN_IF(g_api->GetTensorMutableData(out, &op));
  from_double(t, od.data(), od.size(), op);
  return nullptr;
}

#ifdef ATTNPASS_WITH_CUDA
// stream-ordered workspace from a private pool that keeps its memory between calls
void* ws_alloc(size_t bytes, int dev, cudaStream_t st) {
  static std::mutex mu;
  static std::vector<std::pair<int, cudaMemPool_t>> pools;
  cudaMemPool_t pool = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& p : pools)
      if (p.first == dev) pool = p.second;
    if (!pool) {
      cudaMemPoolProps props;
      std::memset(&props, 0, sizeof(props));
      props.allocType = cudaMemAllocationTypePinned;
      props.location.type = cudaMemLocationTypeDevice;
      props.location.id = dev;
      if (cudaMemPoolCreate(&pool, &props) != cudaSuccess) return nullptr;
      uint64_t thr = UINT64_MAX;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &thr);
      pools.push_back({dev, pool});
    }
  }
  void* p = nullptr;
  if (cudaMallocFromPoolAsync(&p, bytes, pool, st) != cudaSuccess) return nullptr;
  return p;
}

OrtStatus* compute_cuda(Kernel& kr, OrtKernelContext* ctx) {
  TensorView q, k, v, m, x4;
  AP_RETURN_IF(view_input(ctx, 0, q));
  AP_RETURN_IF(view_input(ctx, 1, k));
  AP_RETURN_IF(view_input(ctx, 2, v));
  AP_RETURN_IF(view_input(ctx, 3, m));
  size_t nin = 0;
  g_api->KernelContext_GetInputCount(ctx, &nin);
  if (nin > 4) AP_RETURN_IF(view_input(ctx, 4, x4));
  apcpu::Dims d;
  AP_RETURN_IF(qkv_dims(q, k, v, d));
  bool has_mask;
  int64_t mst[4];
  AP_RETURN_IF(mask_strides(m, d, has_mask, mst));
  void* stream_p = nullptr;
  AP_RETURN_IF(g_api->KernelContext_GetGPUComputeStream(ctx, &stream_p));
  cudaStream_t st = static_cast<cudaStream_t>(stream_p);
  const int64_t od_[4] = {d.B, d.Hq, d.S, d.Dv};
  OrtValue* out = nullptr;
  AP_RETURN_IF(g_api->KernelContext_GetOutput(ctx, 0, od_, 4, &out));
  void* op = nullptr;
  AP_RETURN_IF(g_api->GetTensorMutableData(out, &op));
  ApAttn a;
  std::memset(&a, 0, sizeof(a));
  a.dtype = q.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? AP_F32 : (q.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? AP_F16 : AP_BF16);
  a.q = q.data;
  a.k = k.data;
  a.v = v.data;
  a.o = op;
  a.mask = has_mask ? m.data : nullptr;
  for (int i = 0; i < 4; ++i) a.mask_stride[i] = mst[i];
  if (d.B > INT_MAX || d.S > INT_MAX || d.T > INT_MAX) return fail("attnpass: dimension too large");
  a.B = (int)d.B;
  a.Hq = (int)d.Hq;
  a.Hkv = (int)d.Hkv;
  a.S = (int)d.S;
  a.T = (int)d.T;
  a.D = (int)d.D;
  a.Dv = (int)d.Dv;
  a.scale = kr.at.scale;
  a.causal = (int)kr.at.causal;
  int dev = 0;
  cudaPointerAttributes pa;
  if (cudaPointerGetAttributes(&pa, q.data) == cudaSuccess) dev = pa.device;
  else cudaGetDevice(&dev);
  int rc = AP_OK;
  size_t wsz = 0;
  void* ws = nullptr;
  if (kr.kind == OpKind::kBlockSparse) {
    const auto& b = kr.at.bsa;
    ApBsaAttrs at{(int)b.block_size, b.density, b.mass_threshold, (int)b.sink_blocks, (int)b.local_blocks};
    uint8_t* layout = nullptr;
    size_t nout = 0;
    g_api->KernelContext_GetOutputCount(ctx, &nout);
    if (nout > 1) {
      const int64_t bs = b.block_size > 0 ? b.block_size : 64;
      const int64_t ld[4] = {d.B, d.Hq, (d.S + bs - 1) / bs, (d.T + bs - 1) / bs};
      OrtValue* lo = nullptr;
      AP_RETURN_IF(g_api->KernelContext_GetOutput(ctx, 1, ld, 4, &lo));
      if (lo) {
        void* p = nullptr;
        AP_RETURN_IF(g_api->GetTensorMutableData(lo, &p));
        layout = static_cast<uint8_t*>(p);
      }
    }
    wsz = ap_bsa_workspace_size(&a, &at);
    if (wsz && !(ws = ws_alloc(wsz, dev, st))) return fail("BlockSparseAttention: workspace allocation failed");
    rc = ap_bsa_forward(&a, &at, layout, ws, wsz, st, AP_PATH_AUTO);
  } else if (kr.kind == OpKind::kTiled) {
    const auto& t = kr.at.tiled;
    if (x4.v && x4.numel() != (size_t)d.D) return fail("TiledAttention: scorer must hold D weights");
    ApTiledAttrs at{(int)t.block_size, t.fine_fraction, t.medium_fraction, (int)t.medium_tile, (int)t.sink_blocks,
                    (int)t.local_blocks, (int)t.scorer, x4.v ? x4.data : nullptr};
    wsz = ap_tiled_workspace_size(&a, &at);
    if (wsz && !(ws = ws_alloc(wsz, dev, st))) return fail("TiledAttention: workspace allocation failed");
    rc = ap_tiled_forward(&a, &at, nullptr, ws, wsz, st, AP_PATH_AUTO);
  } else {
    apcpu::Spans sp;
    AP_RETURN_IF(span_shape(x4, d, sp));
    ApSpanAttrs at{sp.p, (int)sp.Bs, (int)sp.n, sp.per_query ? 1 : 0, (int)kr.at.span.sink_tokens,
                   (int)kr.at.span.local_window};
    wsz = ap_span_workspace_size(&a, &at);
    if (wsz && !(ws = ws_alloc(wsz, dev, st))) return fail("SpanAttention: workspace allocation failed");
    rc = ap_span_forward(&a, &at, ws, wsz, st, AP_PATH_AUTO);
  }
  if (ws) cudaFreeAsync(ws, st);
  if (rc != AP_OK) return fail(ap_error_string(rc));
  return nullptr;
}
#endif

// ---------------------------------------------------------------------------------------------
struct ApCustomOp : OrtCustomOp {
  const char* op_name;
  const char* ep;  // nullptr = CPU
  OpKind kind;
  ONNXTensorElementDataType type;

  ApCustomOp(const char* name, OpKind k, const char* ep_, ONNXTensorElementDataType t)
      : OrtCustomOp(), op_name(name), ep(ep_), kind(k), type(t) {
    std::memset(static_cast<OrtCustomOp*>(this), 0, sizeof(OrtCustomOp));
    version = ORT_API_VERSION;
    GetName = [](const OrtCustomOp* op) { return static_cast<const ApCustomOp*>(op)->op_name; };
    GetExecutionProviderType = [](const OrtCustomOp* op) { return static_cast<const ApCustomOp*>(op)->ep; };
    GetInputTypeCount = [](const OrtCustomOp* op) -> size_t {
      return static_cast<const ApCustomOp*>(op)->kind == OpKind::kBlockSparse ? 4 : 5;
    };
    GetInputType = [](const OrtCustomOp* op, size_t i) {
      const ApCustomOp* o = static_cast<const ApCustomOp*>(op);
      if (o->kind == OpKind::kSpan && i == 4) return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
      return o->type;
    };
    GetInputCharacteristic = [](const OrtCustomOp* op, size_t i) {
      const ApCustomOp* o = static_cast<const ApCustomOp*>(op);
      if (i < 3) return INPUT_OUTPUT_REQUIRED;
      if (o->kind == OpKind::kSpan && i == 4) return INPUT_OUTPUT_REQUIRED;
      return INPUT_OUTPUT_OPTIONAL;
    };
    GetOutputTypeCount = [](const OrtCustomOp* op) -> size_t {
      return static_cast<const ApCustomOp*>(op)->kind == OpKind::kBlockSparse ? 2 : 1;
    };
    GetOutputType = [](const OrtCustomOp* op, size_t i) {
      const ApCustomOp* o = static_cast<const ApCustomOp*>(op);
      return i == 1 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL : o->type;
    };
    GetOutputCharacteristic = [](const OrtCustomOp*, size_t i) {
      return i == 0 ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_OPTIONAL;
    };
    GetInputMemoryType = [](const OrtCustomOp*, size_t) { return OrtMemTypeDefault; };
    GetVariadicInputMinArity = [](const OrtCustomOp*) { return 1; };
    GetVariadicInputHomogeneity = [](const OrtCustomOp*) { return 1; };
    GetVariadicOutputMinArity = [](const OrtCustomOp*) { return 1; };
    GetVariadicOutputHomogeneity = [](const OrtCustomOp*) { return 1; };
    GetStartVersion = [](const OrtCustomOp*) { return 1; };
    GetEndVersion = [](const OrtCustomOp*) { return INT_MAX; };
    CreateKernelV2 = [](const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo* info, void** kernel) -> OrtStatusPtr {
      const ApCustomOp* o = static_cast<const ApCustomOp*>(op);
      auto kr = std::make_unique<Kernel>();
      kr->kind = o->kind;
      kr->cuda = o->ep != nullptr;
      kr->type = o->type;
      Attrs& a = kr->at;
      a.scale = attr_f(info, "scale", 0.f);
      a.causal = attr_i(info, "causal", 0);
      a.bsa.block_size = attr_i(info, "block_size", 64);
      a.bsa.density = attr_f(info, "density", 0.25f);
      a.bsa.mass_threshold = attr_f(info, "mass_threshold", 0.f);
      a.bsa.sink_blocks = attr_i(info, "sink_blocks", 1);
      a.bsa.local_blocks = attr_i(info, "local_blocks", 1);
      a.tiled.block_size = a.bsa.block_size;
      a.tiled.fine_fraction = attr_f(info, "fine_fraction", 0.25f);
      a.tiled.medium_fraction = attr_f(info, "medium_fraction", 0.25f);
      a.tiled.medium_tile = attr_i(info, "medium_tile", 8);
      a.tiled.sink_blocks = a.bsa.sink_blocks;
      a.tiled.local_blocks = a.bsa.local_blocks;
      a.tiled.scorer = attr_i(info, "scorer", 0);
      a.span.sink_tokens = attr_i(info, "sink_tokens", 4);
      a.span.local_window = attr_i(info, "local_window", 64);
      *kernel = kr.release();
      return nullptr;
    };
    KernelComputeV2 = [](void* kernel, OrtKernelContext* ctx) -> OrtStatusPtr {
      Kernel& kr = *static_cast<Kernel*>(kernel);
#ifdef ATTNPASS_WITH_CUDA
      if (kr.cuda) return compute_cuda(kr, ctx);
#endif
      return compute_cpu(kr, ctx);
    };
    KernelDestroy = [](void* kernel) { delete static_cast<Kernel*>(kernel); };
  }
};

std::vector<std::unique_ptr<ApCustomOp>>& ops() {
  static std::vector<std::unique_ptr<ApCustomOp>> v;
  return v;
}

void build_ops() {
  if (!ops().empty()) return;
  const std::pair<const char*, OpKind> names[] = {{"BlockSparseAttention", OpKind::kBlockSparse},
                                                  {"TiledAttention", OpKind::kTiled},
                                                  {"SpanAttention", OpKind::kSpan}};
  const ONNXTensorElementDataType types[] = {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
                                             ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16};
  for (const auto& n : names)
    for (auto t : types) {
      ops().push_back(std::make_unique<ApCustomOp>(n.first, n.second, nullptr, t));
#ifdef ATTNPASS_WITH_CUDA
      ops().push_back(std::make_unique<ApCustomOp>(n.first, n.second, "CUDAExecutionProvider", t));
#endif
    }
}

}  // namespace

extern "C" {

AP_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  if (!g_api) {
    // built against the 1.29 headers; any runtime that serves this API version works (checked with 1.29, 1.30)
    g_api = api_base->GetApi(ORT_API_VERSION);
    if (!g_api) g_api = api_base->GetApi(16);
    if (!g_api) return nullptr;
  }
  build_ops();
  OrtCustomOpDomain* domain = nullptr;
  AP_RETURN_IF(g_api->CreateCustomOpDomain(kDomain, &domain));
  for (auto& op : ops()) AP_RETURN_IF(g_api->CustomOpDomain_Add(domain, op.get()));
  // the domain must outlive every session that uses it: kept until the process ends
  static std::vector<OrtCustomOpDomain*> keep;
  keep.push_back(domain);
  return g_api->AddCustomOpDomain(options, domain);
}

// evidence for tests: how many forward calls reached the CUDA kernels (0 when built without CUDA)
AP_EXPORT long long attnpass_cuda_kernel_calls(void) {
#ifdef ATTNPASS_WITH_CUDA
  return ap_cuda_calls();
#else
  return 0;
#endif
}

AP_EXPORT int attnpass_built_with_cuda(void) {
#ifdef ATTNPASS_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

}  // extern "C"
