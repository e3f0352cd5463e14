// Small shared pieces of the C API.
#include <atomic>
#include "internal.h"

namespace ap {
static std::atomic<long long> g_calls{0};
void count_call() { g_calls.fetch_add(1, std::memory_order_relaxed); }
static int g_variant = 0;  // 0: the Hopper kernel for BlockSparseAttention where it can run, else 1
int fwd_variant() { return g_variant; }
}  // namespace ap

extern "C" const char* ap_error_string(int code) {
  switch (code) {
    case AP_OK: return "ok";
    case AP_ERR_ARGS: return "attnpass: invalid shapes or attributes";
    case AP_ERR_UNSUPPORTED: return "attnpass: configuration not supported by the requested CUDA path";
    case AP_ERR_WORKSPACE: return "attnpass: workspace too small";
    case AP_ERR_CUDA: return "attnpass: CUDA launch failed";
    default: return "attnpass: unknown error";
  }
}

extern "C" long long ap_cuda_calls(void) { return ap::g_calls.load(); }

extern "C" void ap_set_fwd_variant(int v) { ap::g_variant = (v >= 1 && v <= 3) ? v : 0; }
extern "C" int ap_get_fwd_variant(void) { return ap::g_variant; }
