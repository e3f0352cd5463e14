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
 * kernels that take a precomputed layout. ws: 256 bytes of device memory for the Hopper kernel's work counter
 * (NULL: the mma.sync kernel runs). */
int ap_bsa_attend(const ApAttn* a, const ApBsaAttrs* at, const uint8_t* layout, void* ws, size_t ws_bytes,
                  void* stream, int path);

/* SpanAttention. It needs no workspace: ap_span_workspace_size answers 0 (kept for callers written against
 * the uniform shape of the three operators' calls); ws may be NULL. */
size_t ap_span_workspace_size(const ApAttn* a, const ApSpanAttrs* at);
int ap_span_forward(const ApAttn* a, const ApSpanAttrs* at, void* ws, size_t ws_bytes, void* stream, int path);

/* TiledAttention. levels_out: NULL or int32 [B, Hkv, nKB] (0 fine, 1 medium, 2 coarse), for tests. */
size_t ap_tiled_workspace_size(const ApAttn* a, const ApTiledAttrs* at);
int ap_tiled_forward(const ApAttn* a, const ApTiledAttrs* at, int32_t* levels_out, void* ws, size_t ws_bytes,
                     void* stream, int path);

/* Number of forward calls that reached a CUDA kernel launch since load (evidence for the ORT tests). */
long long ap_cuda_calls(void);

/* Which tensor-core forward kernel runs (tests and benchmarks compare them): 0 (default) the Hopper kernel
 * (wgmma + TMA, persistent) for BlockSparseAttention where it can run (sm_90 device, block_size a multiple of
 * 64, T <= 262144, 16-byte aligned Q/K/V), otherwise 1; 1 mma.sync, 8 warps x 16 rows; 2 mma.sync, 4 warps x
 * 32 rows; 3 the Hopper kernel launched with one CTA per 128-row query tile instead of one per SM.
 * SpanAttention and TiledAttention use 1 unless 2 is set. */
void ap_set_fwd_variant(int v);
int ap_get_fwd_variant(void);
/* SpanAttention decode: split the kept K/V of each (sequence, KV head) so that there are about w CTAs per
 * multiprocessor (default 1; the benchmark sweeps it), at most 16 CTAs (one thread-block cluster), and fewer
 * where the device could not hold all the clusters at once. */
void ap_set_span_split_waves(int w);
/* Launches of the Hopper forward kernel since load (tests check that it ran where it should). */
long long ap_sm90_launches(void);
/* Debugging aid: the SpanAttention decode kernel writes a timeline of each CTA (16 uint64: global timer ns at
 * entry, key intervals staged, bitmap built, tiles found, their row ranges (list built), first tile landed, loop
 * end, partial ready, merged; its SM; its tile count) to dev_ptr at index (b * Hkv + g) * nsplit + split. NULL (the default) turns it off. */
void ap_span_trace_buffer(unsigned long long* dev_ptr);

#ifdef __cplusplus
}
#endif
#endif
