// Does ONNX Runtime (1.29 core, CPU build) run the attnpass custom ops on the CUDA execution provider when that
// provider is loaded as a plugin EP library (RegisterExecutionProviderLibrary + AppendExecutionProvider_V2)?
//
//   ort_ep_check CUDA_EP_LIB CUSTOM_OP_LIB MODEL.onnx T [MODEL2 T2 ...]
//
// For each model: session A = CUDA EP (plugin) + custom ops, with session.disable_cpu_ep_fallback=1 (creation
// fails if any node would land on the CPU EP); if that fails, again with fallback allowed. Session B = CPU EP only.
// Same random inputs; prints the custom-op library's CUDA call counter before/after A, and A's error against B.
#include <dlfcn.h>
#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

uint16_t f2h(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);
  if (ax < 0x38800000u) {
    float a;
    std::memcpy(&a, &ax, 4);
    return (uint16_t)(sign | (uint16_t)std::nearbyint(a * 16777216.0f));
  }
  const uint32_t mant = ax & 0x7fffff;
  uint32_t h = ((uint32_t)((int32_t)(ax >> 23) - 112) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return (uint16_t)(sign | h);
}
float h2f(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = e == 0 ? std::ldexp((float)m, -24) : (e == 31 ? (m ? NAN : INFINITY) : std::ldexp((float)(m | 0x400), (int)e - 25));
  return sign ? -v : v;
}
uint16_t f2b(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}
float b2f(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

struct Feed {
  std::vector<std::string> names;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<ONNXTensorElementDataType> types;
};

Feed make_feed(Ort::Session& s, int64_t T, unsigned seed) {
  Feed f;
  Ort::AllocatorWithDefaultOptions al;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (size_t i = 0; i < s.GetInputCount(); ++i) {
    f.names.push_back(s.GetInputNameAllocated(i, al).get());
    Ort::TypeInfo tinfo = s.GetInputTypeInfo(i);  // must outlive the tensor info view
    auto ti = tinfo.GetTensorTypeAndShapeInfo();
    auto shp = ti.GetShape();
    auto t = ti.GetElementType();
    for (size_t d = 0; d < shp.size(); ++d)  // free dimensions of a whole model: batch 1, every other T
      if (shp[d] < 0) shp[d] = d == 0 ? 1 : T;
    size_t n = 1;
    for (auto d : shp) n *= (size_t)d;
    std::vector<uint8_t> b;
    const std::string& name = f.names.back();
    if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 && name.find("spans") == std::string::npos) {
      // a whole model's token ids (in [0, 100)), attention mask (ones) or positions
      b.resize(n * 8);
      int64_t* p = reinterpret_cast<int64_t*>(b.data());
      for (size_t k = 0; k < n; ++k)
        p[k] = name.find("mask") != std::string::npos ? 1
               : name.find("position") != std::string::npos ? (int64_t)(k % (size_t)shp.back())
                                                             : (int64_t)(rng() % 100);
    } else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {  // spans [Bs, n, 2]: n equal spans over a quarter of [0, T)
      b.resize(n * 8);
      int64_t* p = reinterpret_cast<int64_t*>(b.data());
      const size_t ns = n / 2;
      for (size_t k = 0; k < ns; ++k) {
        const int64_t st = (int64_t)((k % 8) * T / 8);
        p[2 * k] = st;
        p[2 * k + 1] = st + T / 32;
      }
    } else {
      const size_t es = t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? 4 : 2;
      b.resize(n * es);
      const bool is_mask = f.names.back() == "mask";
      for (size_t k = 0; k < n; ++k) {
        float x = nd(rng);
        if (is_mask) x = 0.3f * x;
        if (es == 4) std::memcpy(&b[4 * k], &x, 4);
        else {
          uint16_t h = t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? f2h(x) : f2b(x);
          std::memcpy(&b[2 * k], &h, 2);
        }
      }
    }
    f.bufs.push_back(std::move(b));
    f.shapes.push_back(shp);
    f.types.push_back(t);
  }
  return f;
}

std::vector<std::vector<float>> run(Ort::Session& s, Feed& f) {
  Ort::MemoryInfo mi = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> ins;
  std::vector<const char*> in_names;
  for (size_t i = 0; i < f.names.size(); ++i) {
    ins.push_back(Ort::Value::CreateTensor(mi, f.bufs[i].data(), f.bufs[i].size(), f.shapes[i].data(), f.shapes[i].size(),
                                           f.types[i]));
    in_names.push_back(f.names[i].c_str());
  }
  Ort::AllocatorWithDefaultOptions al;
  std::vector<std::string> on;
  std::vector<const char*> out_names;
  for (size_t i = 0; i < s.GetOutputCount(); ++i) on.push_back(s.GetOutputNameAllocated(i, al).get());
  for (auto& n : on) out_names.push_back(n.c_str());
  auto outs = s.Run(Ort::RunOptions{nullptr}, in_names.data(), ins.data(), ins.size(), out_names.data(), out_names.size());
  std::vector<std::vector<float>> res;
  for (auto& o : outs) {
    auto ti = o.GetTensorTypeAndShapeInfo();
    size_t n = ti.GetElementCount();
    std::vector<float> r(n);
    auto t = ti.GetElementType();
    const void* p = o.GetTensorRawData();
    for (size_t k = 0; k < n; ++k) {
      if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) r[k] = static_cast<const float*>(p)[k];
      else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) r[k] = h2f(static_cast<const uint16_t*>(p)[k]);
      else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16) r[k] = b2f(static_cast<const uint16_t*>(p)[k]);
      else if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL) r[k] = static_cast<const bool*>(p)[k] ? 1.f : 0.f;
    }
    res.push_back(std::move(r));
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  if (argc < 5 || (argc - 3) % 2) {
    std::fprintf(stderr, "usage: %s CUDA_EP_LIB CUSTOM_OP_LIB MODEL T [MODEL T ...]\n", argv[0]);
    return 2;
  }
  const char* ep_lib = argv[1];
  const char* op_lib = argv[2];
  void* h = dlopen(op_lib, RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    std::printf("cannot dlopen %s: %s\n", op_lib, dlerror());
    return 2;
  }
  auto calls = reinterpret_cast<long long (*)()>(dlsym(h, "attnpass_cuda_kernel_calls"));
  auto with_cuda = reinterpret_cast<int (*)()>(dlsym(h, "attnpass_built_with_cuda"));
  std::printf("custom-op library built with CUDA: %d\n", with_cuda ? with_cuda() : -1);
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "ep_check");
  std::printf("ORT version %s\n", Ort::GetVersionString().c_str());
  try {
    env.RegisterExecutionProviderLibrary("cuda", ep_lib);
  } catch (const Ort::Exception& e) {
    std::printf("RegisterExecutionProviderLibrary failed: %s\n", e.what());
    return 1;
  }
  std::vector<Ort::ConstEpDevice> cuda_dev;
  for (auto& d : env.GetEpDevices()) {
    std::printf("ep device: %s (vendor %s)\n", d.EpName(), d.EpVendor());
    if (std::string(d.EpName()) == "CUDAExecutionProvider" && cuda_dev.empty()) cuda_dev.push_back(d);
  }
  if (cuda_dev.empty()) {
    std::printf("no CUDAExecutionProvider device\n");
    return 1;
  }
  int bad = 0;
  for (int a = 3; a + 1 < argc; a += 2) {
    const char* model = argv[a];
    const int64_t T = std::atoll(argv[a + 1]);
    std::printf("\n== %s\n", model);
    Ort::SessionOptions cpu_so;
    cpu_so.RegisterCustomOpsLibrary(op_lib);
    Ort::Session cpu(env, model, cpu_so);
    Feed feed = make_feed(cpu, T, 1234u + (unsigned)a);
    auto ref = run(cpu, feed);
    // the model-local functions (stock ORT without the library inlines them), where the model carries them
    try {
      Ort::SessionOptions fn_so;
      Ort::Session fn(env, model, fn_so);
      auto fref = run(fn, feed);
      double num = 0, den = 0;
      for (size_t k = 0; k < fref[0].size(); ++k) {
        const double d = (double)ref[0][k] - fref[0][k];
        num += d * d;
        den += (double)fref[0][k] * fref[0][k];
      }
      std::printf("CPU EP with the library vs CPU EP inlining the model's functions: rel err %.3e\n",
                  den > 0 ? std::sqrt(num / den) : std::sqrt(num));
    } catch (const Ort::Exception& e) {
      std::printf("no function fallback for this model: %s\n", e.what());
    }
    for (int strict = 1; strict >= 0; --strict) {
      try {
        Ort::SessionOptions so;
        so.AppendExecutionProvider_V2(env, cuda_dev, Ort::KeyValuePairs{});
        so.RegisterCustomOpsLibrary(op_lib);
        if (strict) so.AddConfigEntry("session.disable_cpu_ep_fallback", "1");
        Ort::Session gs(env, model, so);
        const long long c0 = calls ? calls() : -1;
        auto out = run(gs, feed);
        const long long c1 = calls ? calls() : -1;
        double num = 0, den = 0;
        bool finite = true;
        for (size_t k = 0; k < out[0].size(); ++k) {
          const double d = (double)out[0][k] - ref[0][k];
          num += d * d;
          den += (double)ref[0][k] * ref[0][k];
          finite = finite && std::isfinite(out[0][k]);
        }
        const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
        std::printf("session with CUDA EP (cpu fallback %s): created; attnpass CUDA kernel calls %lld -> %lld; "
                    "rel err vs CPU EP %.3e; finite %d\n",
                    strict ? "disabled" : "allowed", c0, c1, rel, (int)finite);
        if (out.size() > 1) {
          size_t same = 0;
          for (size_t k = 0; k < out[1].size(); ++k) same += out[1][k] == ref[1][k];
          std::printf("layout output: %zu / %zu equal to the CPU EP layout\n", same, out[1].size());
        }
        std::printf("RESULT %s: custom op %s on CUDA EP\n", model, c1 > c0 ? "RAN" : "did NOT run");
        if (!(c1 > c0) || rel > 2e-2 || !finite) ++bad;
        break;
      } catch (const Ort::Exception& e) {
        std::printf("session with CUDA EP (cpu fallback %s) failed: %s\n", strict ? "disabled" : "allowed", e.what());
        if (!strict) ++bad;
      }
    }
  }
  std::printf("\n%d model(s) failed\n", bad);
  return bad ? 1 : 0;
}
