"""ONNX Runtime (Python, CPU execution provider) test of the custom-op library kernels/build/libattnpass_ort.so:
single-node models of every op and registered type, attributes, optional inputs/outputs and mask broadcasts,
against the float64 torch reference (reference.py). Runs without a GPU.

  cmake -S kernels/ort -B kernels/build && cmake --build kernels/build
  python3 kernels/test/test_ort.py
"""
import os
import sys

import ml_dtypes
import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ort_models  # noqa: E402
import reference as ref  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.environ.get("ATTNPASS_ORT_LIB", os.path.join(HERE, "..", "build", "libattnpass_ort.so"))
NP = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
TOL = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}


def session(m, providers=("CPUExecutionProvider",)):
    so = ort.SessionOptions()
    so.register_custom_ops_library(LIB)
    return ort.InferenceSession(m.SerializeToString(), so, providers=list(providers))


def rel(a, b):
    a = torch.as_tensor(np.asarray(a, dtype=np.float64))
    d = b.norm().item()
    return ((a - b).norm().item() / d) if d > 0 else (a - b).norm().item()


def run_case(op, dtype, B, Hq, Hkv, S, T, D, Dv=None, attrs=None, mask=None, spans=None, layout=False, scorer=False,
             rng=None, empty_layout_slot=False):
    Dv = Dv or D
    rng = rng or np.random.default_rng(0)
    npdt = NP[dtype]
    q = rng.standard_normal((B, Hq, S, D)).astype(npdt)
    k = rng.standard_normal((B, Hkv, T, D)).astype(npdt)
    v = rng.standard_normal((B, Hkv, T, Dv)).astype(npdt)
    feeds = {"Q": q, "K": k, "V": v}
    mk = None
    if mask is not None:
        mk = (0.5 * rng.standard_normal(mask)).astype(npdt)
        if len(mask) >= 2 and mask[-1] > 1:
            mk.reshape(-1, mask[-1])[0, -1] = -np.inf
        feeds["mask"] = mk
    if spans is not None:
        feeds["spans"] = spans
    w = None
    if scorer:
        w = rng.standard_normal((D,)).astype(npdt)
        feeds["scorer"] = w
    m = ort_models.model(op, dtype, B, Hq, Hkv, S, T, D, Dv, attrs=attrs, mask_shape=mask,
                         spans_shape=None if spans is None else spans.shape, layout=layout, scorer=scorer,
                         empty_layout_slot=empty_layout_slot)
    s = session(m)
    if dtype != "bfloat16":
        outs = s.run(None, feeds)
    else:  # numpy has no bfloat16 for ORT's Python binding: bind uint16 buffers typed as bfloat16
        io = s.io_binding()
        keep = []
        for name, x in feeds.items():
            if x.dtype == ml_dtypes.bfloat16:
                ov = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(np.ascontiguousarray(x).view(np.uint16), 16)
            else:
                ov = ort.OrtValue.ortvalue_from_numpy(x)
            keep.append(ov)
            io.bind_ortvalue_input(name, ov)
        obuf = np.zeros((B, Hq, S, Dv), dtype=np.uint16)
        oo = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(obuf, 16)
        io.bind_ortvalue_output("O", oo)
        if layout:
            io.bind_output("layout")
        s.run_with_iobinding(io)
        outs = [obuf.view(ml_dtypes.bfloat16)] + ([io.get_outputs()[1].numpy()] if layout else [])
    tq, tk, tv = (torch.as_tensor(x.astype(np.float64)) for x in (q, k, v))
    tm = torch.as_tensor(mk.astype(np.float64)) if mk is not None else None
    a = dict(attrs or {})
    sc, ca = a.pop("scale", 0.0), a.pop("causal", 0)
    if op == "BlockSparseAttention":
        r, lay = ref.block_sparse(tq, tk, tv, tm, scale=sc, causal=ca, **a)
        extra = {}
        if layout:
            extra["layout_equal"] = bool(np.array_equal(outs[1], lay.numpy()))
    elif op == "TiledAttention":
        r, _ = ref.tiled(tq, tk, tv, tm, torch.as_tensor(w.astype(np.float64)) if w is not None else None,
                         scale=sc, causal=ca, **a)
        extra = {}
    else:
        r = ref.span(tq, tk, tv, torch.as_tensor(spans), tm, scale=sc, causal=ca, **a)
        extra = {}
    e = rel(outs[0], r)
    ok = e <= TOL[dtype] and np.isfinite(np.asarray(outs[0], dtype=np.float64)).all() and all(extra.values())
    return ok, e, extra


def main():
    rng = np.random.default_rng(7)
    cases = []
    for dt in ("float32", "float16", "bfloat16"):
        cases += [
            ("BlockSparseAttention", dt, dict(B=2, Hq=4, Hkv=2, S=70, T=70, D=16, attrs=dict(causal=1, block_size=16),
                                              layout=True)),
            ("TiledAttention", dt, dict(B=1, Hq=4, Hkv=2, S=70, T=70, D=16, attrs=dict(causal=1, block_size=16))),
            ("SpanAttention", dt, dict(B=2, Hq=4, Hkv=1, S=1, T=200, D=16, attrs=dict(causal=1, local_window=8),
                                       spans=np.array([[[10, 50], [120, 130]]], dtype=np.int64))),
        ]
    cases += [
        ("BlockSparseAttention", "float32", dict(B=1, Hq=2, Hkv=1, S=100, T=130, D=8, Dv=6, mask=(1, 1, 1, 130),
                                                 attrs=dict(causal=1, block_size=16, density=0.3, sink_blocks=2,
                                                            local_blocks=2, scale=0.2))),
        ("BlockSparseAttention", "float32", dict(B=2, Hq=2, Hkv=2, S=64, T=64, D=8, mask=(2, 1, 64, 64),
                                                 attrs=dict(causal=0, block_size=16, mass_threshold=0.8),
                                                 layout=True)),
        ("BlockSparseAttention", "float32", dict(B=1, Hq=2, Hkv=1, S=50, T=50, D=8, mask=(1,),
                                                 attrs=dict(causal=1, block_size=16, density=1.0))),
        ("BlockSparseAttention", "float16", dict(B=1, Hq=2, Hkv=1, S=50, T=50, D=8, empty_layout_slot=True,
                                                 attrs=dict(causal=1, block_size=16, density=0.5))),
        ("SpanAttention", "float32", dict(B=1, Hq=2, Hkv=1, S=5, T=50, D=8, attrs=dict(causal=1, local_window=3),
                                          spans=np.zeros((1, 0, 2), dtype=np.int64))),  # no spans
        ("BlockSparseAttention", "float32", dict(B=1, Hq=2, Hkv=1, S=50, T=50, D=8, mask=(50, 50),
                                                 attrs=dict(causal=1, block_size=32))),
        ("TiledAttention", "float32", dict(B=1, Hq=4, Hkv=2, S=90, T=90, D=8, mask=(1, 4, 90, 90),
                                           attrs=dict(causal=1, block_size=16, fine_fraction=0.2,
                                                      medium_fraction=0.3, medium_tile=4, scorer=1))),
        ("TiledAttention", "float32", dict(B=1, Hq=2, Hkv=2, S=90, T=90, D=8, scorer=True,
                                           attrs=dict(causal=0, block_size=16, scorer=2, local_blocks=2))),
        ("TiledAttention", "float16", dict(B=1, Hq=2, Hkv=2, S=64, T=64, D=8,
                                           attrs=dict(causal=1, block_size=16, fine_fraction=1.0))),
        ("SpanAttention", "float32", dict(B=2, Hq=2, Hkv=1, S=3, T=60, D=8, mask=(2, 1, 1, 60),
                                          attrs=dict(causal=1, sink_tokens=2, local_window=4),
                                          spans=np.array([[[[0, 5]], [[10, 20]], [[30, 2 ** 62]]],
                                                          [[[0, 0]], [[40, 45]], [[-3, 3]]]], dtype=np.int64))),
        ("SpanAttention", "float32", dict(B=2, Hq=2, Hkv=1, S=60, T=60, D=8,
                                          attrs=dict(causal=0, sink_tokens=0, local_window=0),
                                          spans=np.array([[[5, 5]]], dtype=np.int64))),  # all rows empty -> 0
    ]
    fails = 0
    for op, dt, kw in cases:
        try:
            ok, e, extra = run_case(op, dt, rng=rng, **kw)
        except Exception as ex:  # noqa: BLE001
            ok, e, extra = False, float("nan"), {"error": str(ex)[:300]}
        fails += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {op} {dt} {kw.get('attrs')} mask={kw.get('mask')} rel_err={e:.2e} {extra}")
    # dtypes that are not registered must fail loudly, not fall back silently
    try:
        m = ort_models.model("SpanAttention", "float32", 1, 1, 1, 1, 4, 4, spans_shape=(1, 1, 2))
        m.graph.input[0].type.tensor_type.elem_type = 11  # double
        session(m)
        print("note: a double-typed model loaded (unexpected)")
    except Exception as ex:  # noqa: BLE001
        print(f"ok   double-typed model refused: {str(ex).splitlines()[0][:160]}")
    print(f"{len(cases)} ORT CPU cases, {fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
