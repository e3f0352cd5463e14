/* attnpass CUDA kernels: plain C entry points (used by the ONNX Runtime custom-op library and by the
 * device tests through ctypes). Semantics: kernels/OPERATORS.md. All pointers are device pointers;
 * tensors are contiguous: Q [B,Hq,S,D], K [B,Hkv,T,D], V [B,Hkv,T,Dv], O [B,Hq,S,Dv].
 * Every entry point is asynchronous on `stream`, does no host synchronisation and allocates nothing:
 * the caller passes a device workspace of at least the size the matching *_workspace_size returns.
 * Return value: 0 on success, otherwise an AP_ERR_* code (ap_error_string gives a message). */
#ifndef ATTNPASS_CUDA_H
#define ATTNPASS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { AP_F32 = 0, AP_F16 = 1, AP_BF16 = 2 };
enum { AP_PATH_AUTO = 0, AP_PATH_FAST = 1, AP_PATH_GENERIC = 2 };
enum {
  AP_OK = 0,
  AP_ERR_ARGS = 1,        /* invalid shapes or attributes */
  AP_ERR_UNSUPPORTED = 2, /* this path does not support the configuration */
  AP_ERR_WORKSPACE = 3,   /* workspace too small */
  AP_ERR_CUDA = 4         /* a CUDA call or launch failed */
};

typedef struct ApAttn {
  int dtype; /* AP_F32, AP_F16, AP_BF16: Q, K, V, mask, O and scorer share it */
  const void* q;
  const void* k;
  const void* v;
  const void* mask; /* NULL: no mask; else element strides below (0 on broadcast axes) */
  void* o;
  int B, Hq, Hkv, S, T, D, Dv;
  long long mask_stride[4]; /* b, h, s, t */
  float scale;              /* 0: 1/sqrt(D) */
  int causal;
} ApAttn;

typedef struct ApBsaAttrs {
  int block_size;
  float density;
  float mass_threshold;
  int sink_blocks;
  int local_blocks;
} ApBsaAttrs;

typedef struct ApSpanAttrs {
  const int64_t* spans; /* [Bs, n, 2] or [Bs, S, n, 2] */
  int spans_batch;      /* Bs: 1 or B */
  int n_spans;
  int per_query; /* 1 for the [Bs, S, n, 2] form */
  int sink_tokens;
  int local_window;
} ApSpanAttrs;

typedef struct ApTiledAttrs {
  int block_size;
  float fine_fraction;
  float medium_fraction;
  int medium_tile;
  int sink_blocks;
  int local_blocks;
  int scorer;            /* 0 key norm, 1 probe queries, 2 learned */
  const void* scorer_w;  /* [D], same dtype as Q, used when scorer == 2 */
} ApTiledAttrs;

const char* ap_error_string(int code);

/* BlockSparseAttention. layout_out: NULL or bool/uint8 [B, Hq, nQB, nKB]. */
size_t ap_bsa_workspace_size(const ApAttn* a, const ApBsaAttrs* at);
int ap_bsa_forward(const ApAttn* a, const ApBsaAttrs* at, uint8_t* layout_out, void* ws, size_t ws_bytes,
                   void* stream, int path);

/* Attention only, over a given layout (NULL: every candidate kept), as the benchmark needs to compare with
 * kernels that take a precomputed layout. Needs no workspace. */
int ap_bsa_attend(const ApAttn* a, const ApBsaAttrs* at, const uint8_t* layout, void* stream, int path);

/* SpanAttention. */
size_t ap_span_workspace_size(const ApAttn* a, const ApSpanAttrs* at);
int ap_span_forward(const ApAttn* a, const ApSpanAttrs* at, void* ws, size_t ws_bytes, void* stream, int path);

/* TiledAttention. levels_out: NULL or int32 [B, Hkv, nKB] (0 fine, 1 medium, 2 coarse), for tests. */
size_t ap_tiled_workspace_size(const ApAttn* a, const ApTiledAttrs* at);
int ap_tiled_forward(const ApAttn* a, const ApTiledAttrs* at, int32_t* levels_out, void* ws, size_t ws_bytes,
                     void* stream, int path);

/* Number of forward calls that reached a CUDA kernel launch since load (evidence for the ORT tests). */
long long ap_cuda_calls(void);

#ifdef __cplusplus
}
#endif
#endif
