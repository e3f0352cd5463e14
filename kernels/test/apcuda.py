"""ctypes binding of libattnpass_cuda.so (kernels/cuda/attnpass_cuda.h) for torch tensors.

Build the library with `bash kernels/cuda/build-lib.sh` (nvcc, sm_90a); set ATTNPASS_CUDA_LIB to its path
if it is not at kernels/build/cuda/libattnpass_cuda.so.
"""
import ctypes
import os

import torch

AP_F32, AP_F16, AP_BF16 = 0, 1, 2
PATH_AUTO, PATH_FAST, PATH_GENERIC = 0, 1, 2
_DT = {torch.float32: AP_F32, torch.float16: AP_F16, torch.bfloat16: AP_BF16}


class ApAttn(ctypes.Structure):
    _fields_ = [
        ("dtype", ctypes.c_int),
        ("q", ctypes.c_void_p),
        ("k", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("mask", ctypes.c_void_p),
        ("o", ctypes.c_void_p),
        ("B", ctypes.c_int),
        ("Hq", ctypes.c_int),
        ("Hkv", ctypes.c_int),
        ("S", ctypes.c_int),
        ("T", ctypes.c_int),
        ("D", ctypes.c_int),
        ("Dv", ctypes.c_int),
        ("mask_stride", ctypes.c_longlong * 4),
        ("scale", ctypes.c_float),
        ("causal", ctypes.c_int),
    ]


class ApBsaAttrs(ctypes.Structure):
    _fields_ = [
        ("block_size", ctypes.c_int),
        ("density", ctypes.c_float),
        ("mass_threshold", ctypes.c_float),
        ("sink_blocks", ctypes.c_int),
        ("local_blocks", ctypes.c_int),
    ]


class ApSpanAttrs(ctypes.Structure):
    _fields_ = [
        ("spans", ctypes.c_void_p),
        ("spans_batch", ctypes.c_int),
        ("n_spans", ctypes.c_int),
        ("per_query", ctypes.c_int),
        ("sink_tokens", ctypes.c_int),
        ("local_window", ctypes.c_int),
    ]


class ApTiledAttrs(ctypes.Structure):
    _fields_ = [
        ("block_size", ctypes.c_int),
        ("fine_fraction", ctypes.c_float),
        ("medium_fraction", ctypes.c_float),
        ("medium_tile", ctypes.c_int),
        ("sink_blocks", ctypes.c_int),
        ("local_blocks", ctypes.c_int),
        ("scorer", ctypes.c_int),
        ("scorer_w", ctypes.c_void_p),
    ]


def _default_lib():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("ATTNPASS_CUDA_LIB", os.path.join(here, "..", "build", "cuda", "libattnpass_cuda.so"))


_lib = None


def lib():
    global _lib
    if _lib is None:
        L = ctypes.CDLL(_default_lib())
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        L.ap_bsa_workspace_size.restype = sz
        L.ap_bsa_workspace_size.argtypes = [ctypes.POINTER(ApAttn), ctypes.POINTER(ApBsaAttrs)]
        L.ap_bsa_forward.restype = ctypes.c_int
        L.ap_bsa_forward.argtypes = [ctypes.POINTER(ApAttn), ctypes.POINTER(ApBsaAttrs), vp, vp, sz, vp, ctypes.c_int]
        L.ap_bsa_attend.restype = ctypes.c_int
        L.ap_bsa_attend.argtypes = [ctypes.POINTER(ApAttn), ctypes.POINTER(ApBsaAttrs), vp, vp, sz, vp, ctypes.c_int]
        L.ap_span_workspace_size.restype = sz
        L.ap_span_workspace_size.argtypes = [ctypes.POINTER(ApAttn), ctypes.POINTER(ApSpanAttrs)]
        L.ap_span_forward.restype = ctypes.c_int
        L.ap_span_forward.argtypes = [ctypes.POINTER(ApAttn), ctypes.POINTER(ApSpanAttrs), vp, sz, vp, ctypes.c_int]
        L.ap_tiled_workspace_size.restype = sz
        L.ap_tiled_workspace_size.argtypes = [ctypes.POINTER(ApAttn), ctypes.POINTER(ApTiledAttrs)]
        L.ap_tiled_forward.restype = ctypes.c_int
        L.ap_tiled_forward.argtypes = [ctypes.POINTER(ApAttn), ctypes.POINTER(ApTiledAttrs), vp, vp, sz, vp, ctypes.c_int]
        L.ap_error_string.restype = ctypes.c_char_p
        L.ap_error_string.argtypes = [ctypes.c_int]
        L.ap_cuda_calls.restype = ctypes.c_longlong
        L.ap_set_fwd_variant.argtypes = [ctypes.c_int]
        L.ap_get_fwd_variant.restype = ctypes.c_int
        L.ap_sm90_launches.restype = ctypes.c_longlong
        L.ap_set_span_split_waves.argtypes = [ctypes.c_int]
        _lib = L
    return _lib


def _mask_strides(mask, B, Hq, S, T):
    """Element strides of `mask` broadcast (numpy rules, from the right) to [B, Hq, S, T]."""
    if mask is None:
        return None, (0, 0, 0, 0)
    if mask.dim() == 0 or (mask.dim() == 1 and mask.shape[0] == 1):
        return None, (0, 0, 0, 0)  # "no mask"
    m = mask.contiguous()
    shape = [1] * (4 - m.dim()) + list(m.shape)
    st = [0] * (4 - m.dim()) + list(m.stride())
    full = (B, Hq, S, T)
    out = []
    for n, s, f in zip(shape, st, full):
        if n == 1:
            out.append(0)
        elif n == f:
            out.append(s)
        else:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not broadcast to {full}")
    return m, tuple(out)


class _Call:
    def __init__(self, q, k, v, mask, scale, causal, out):
        B, Hq, S, D = q.shape
        _, Hkv, T, Dv = v.shape
        self.keep = [q, k, v, out]
        m, st = _mask_strides(mask, B, Hq, S, T)
        if m is not None:
            self.keep.append(m)
        a = ApAttn()
        a.dtype = _DT[q.dtype]
        a.q, a.k, a.v, a.o = q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr()
        a.mask = m.data_ptr() if m is not None else None
        a.B, a.Hq, a.Hkv, a.S, a.T, a.D, a.Dv = B, Hq, Hkv, S, T, D, Dv
        for i in range(4):
            a.mask_stride[i] = st[i]
        a.scale = float(scale)
        a.causal = int(causal)
        self.a = a


def _check(rc):
    if rc != 0:
        raise RuntimeError(lib().ap_error_string(rc).decode())


def _stream():
    return ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)


def bsa_workspace_bytes(q, k, v, mask=None, *, scale=0.0, causal=0, block_size=64, density=0.25, mass_threshold=0.0,
                        sink_blocks=1, local_blocks=1):
    out = torch.empty(0, device=q.device, dtype=q.dtype)
    c = _Call(q, k, v, mask, scale, causal, out)
    at = ApBsaAttrs(block_size, density, mass_threshold, sink_blocks, local_blocks)
    return max(1, lib().ap_bsa_workspace_size(ctypes.byref(c.a), ctypes.byref(at)))


def block_sparse(q, k, v, mask=None, *, scale=0.0, causal=0, block_size=64, density=0.25, mass_threshold=0.0,
                 sink_blocks=1, local_blocks=1, out=None, want_layout=False, path=PATH_AUTO, ws=None):
    B, Hq, S, _ = q.shape
    T = k.shape[2]
    out = out if out is not None else torch.empty(B, Hq, S, v.shape[3], dtype=q.dtype, device=q.device)
    c = _Call(q, k, v, mask, scale, causal, out)
    at = ApBsaAttrs(block_size, density, mass_threshold, sink_blocks, local_blocks)
    nQB, nKB = -(-S // block_size), -(-T // block_size)
    layout = torch.empty(B, Hq, nQB, nKB, dtype=torch.uint8, device=q.device) if want_layout else None
    n = lib().ap_bsa_workspace_size(ctypes.byref(c.a), ctypes.byref(at))
    if ws is None or ws.numel() < n:
        ws = torch.empty(max(n, 1), dtype=torch.uint8, device=q.device)
    _check(lib().ap_bsa_forward(ctypes.byref(c.a), ctypes.byref(at), layout.data_ptr() if layout is not None else None,
                                ws.data_ptr(), ws.numel(), _stream(), path))
    return (out, layout) if want_layout else out


def block_sparse_attend(q, k, v, layout, mask=None, *, scale=0.0, causal=0, block_size=64, out=None,
                        path=PATH_AUTO):
    """attention only, over a given uint8 layout [B, Hq, nQB, nKB] (None: every candidate block kept)."""
    B, Hq, S, _ = q.shape
    out = out if out is not None else torch.empty(B, Hq, S, v.shape[3], dtype=q.dtype, device=q.device)
    c = _Call(q, k, v, mask, scale, causal, out)
    at = ApBsaAttrs(block_size, 1.0, 0.0, 1, 1)
    if layout is not None:
        c.keep.append(layout)
    ws = torch.empty(256, dtype=torch.uint8, device=q.device)  # the Hopper kernel's work counter
    c.keep.append(ws)
    _check(lib().ap_bsa_attend(ctypes.byref(c.a), ctypes.byref(at), layout.data_ptr() if layout is not None else None,
                               ws.data_ptr(), ws.numel(), _stream(), path))
    return out


def span(q, k, v, spans, mask=None, *, scale=0.0, causal=0, sink_tokens=4, local_window=64, out=None,
         path=PATH_AUTO, ws=None):
    B, Hq, S, _ = q.shape
    out = out if out is not None else torch.empty(B, Hq, S, v.shape[3], dtype=q.dtype, device=q.device)
    c = _Call(q, k, v, mask, scale, causal, out)
    sp = spans.to(device=q.device, dtype=torch.int64).contiguous()
    c.keep.append(sp)
    per_query = 1 if sp.dim() == 4 else 0
    at = ApSpanAttrs(sp.data_ptr(), sp.shape[0], sp.shape[-2], per_query, sink_tokens, local_window)
    n = lib().ap_span_workspace_size(ctypes.byref(c.a), ctypes.byref(at))
    if ws is None or ws.numel() < n:
        ws = torch.empty(max(n, 1), dtype=torch.uint8, device=q.device)
    _check(lib().ap_span_forward(ctypes.byref(c.a), ctypes.byref(at), ws.data_ptr(), ws.numel(), _stream(), path))
    return out


def tiled(q, k, v, mask=None, scorer_w=None, *, scale=0.0, causal=0, block_size=64, fine_fraction=0.25,
          medium_fraction=0.25, medium_tile=8, sink_blocks=1, local_blocks=1, scorer=0, out=None, want_levels=False,
          path=PATH_AUTO, ws=None):
    B, Hq, S, _ = q.shape
    Hkv, T = k.shape[1], k.shape[2]
    out = out if out is not None else torch.empty(B, Hq, S, v.shape[3], dtype=q.dtype, device=q.device)
    c = _Call(q, k, v, mask, scale, causal, out)
    w = scorer_w.contiguous() if scorer_w is not None else None
    if w is not None:
        c.keep.append(w)
    at = ApTiledAttrs(block_size, fine_fraction, medium_fraction, medium_tile, sink_blocks, local_blocks, scorer,
                      w.data_ptr() if w is not None else None)
    nKB = -(-T // block_size)
    levels = torch.empty(B, Hkv, nKB, dtype=torch.int32, device=q.device) if want_levels else None
    n = lib().ap_tiled_workspace_size(ctypes.byref(c.a), ctypes.byref(at))
    if ws is None or ws.numel() < n:
        ws = torch.empty(max(n, 1), dtype=torch.uint8, device=q.device)
    _check(lib().ap_tiled_forward(ctypes.byref(c.a), ctypes.byref(at),
                                  levels.data_ptr() if levels is not None else None, ws.data_ptr(), ws.numel(),
                                  _stream(), path))
    return (out, levels) if want_levels else out


def set_fwd_variant(v):
    """0: the Hopper (wgmma/TMA) kernel for BlockSparseAttention where it can run, else 1;
    1: mma.sync, 8 warps x 16 query rows per CTA; 2: mma.sync, 4 warps x 32 rows (2 CTAs per SM);
    3: the Hopper kernel with one CTA per query tile instead of a persistent grid."""
    lib().ap_set_fwd_variant(int(v))


def get_fwd_variant():
    return lib().ap_get_fwd_variant()


def set_span_split_waves(w):
    """SpanAttention decode: about w CTAs per multiprocessor (default 1)"""
    lib().ap_set_span_split_waves(int(w))


def span_trace_buffer(t):
    """SpanAttention decode debugging aid: a CUDA uint64/int64 tensor of 16 values per CTA, or None (off)"""
    lib().ap_span_trace_buffer(ctypes.c_void_p(t.data_ptr() if t is not None else None))


def sm90_launches():
    """launches of the Hopper forward kernel since load"""
    return lib().ap_sm90_launches()
