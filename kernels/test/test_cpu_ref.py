"""Cross-check of the two float64 references of kernels/OPERATORS.md: the C++ CPU kernels behind the ORT CPU
provider (kernels/ort/cpu_ref.cc, through libattnpass_cpuref.so) and the torch reference (reference.py).
Runs on CPU; no GPU needed.

  cmake -S kernels/ort -B kernels/build && cmake --build kernels/build
  python3 kernels/test/test_cpu_ref.py [N_CASES]
"""
import ctypes
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = ctypes.CDLL(os.environ.get("ATTNPASS_CPUREF_LIB", os.path.join(HERE, "..", "build", "libattnpass_cpuref.so")))
LIB.apcpu_last_error.restype = ctypes.c_char_p
P = ctypes.c_void_p
LL = ctypes.c_longlong
LIB.apcpu_block_sparse.argtypes = [P, P, P, P, P, P, ctypes.c_double, ctypes.c_int, LL, ctypes.c_float, ctypes.c_float,
                                   LL, LL, P, P]
LIB.apcpu_tiled.argtypes = [P, P, P, P, P, P, P, ctypes.c_double, ctypes.c_int, LL, ctypes.c_float, ctypes.c_float, LL,
                            LL, LL, LL, P]
LIB.apcpu_span.argtypes = [P, P, P, P, P, P, P, LL, LL, ctypes.c_int, ctypes.c_double, ctypes.c_int, LL, LL, P]


def ptr(t):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def shape_arr(B, Hq, Hkv, S, T, D, Dv):
    return (LL * 7)(B, Hq, Hkv, S, T, D, Dv)


def mask_args(mask, B, Hq, S, T):
    if mask is None:
        return None, (LL * 4)(0, 0, 0, 0), None
    m = mask.double().contiguous()
    shp = [1] * (4 - m.dim()) + list(m.shape)
    st = [0] * (4 - m.dim()) + list(m.stride())
    st = [0 if n == 1 else s for n, s in zip(shp, st)]
    return m, (LL * 4)(*st), m


def rnd_case(rng):
    B = rng.choice([1, 2])
    Hkv = rng.choice([1, 2])
    G = rng.choice([1, 2, 3])
    Hq = Hkv * G
    T = rng.choice([1, 5, 17, 40, 64, 100, 130])
    S = rng.choice([1, 3, T, max(1, T // 2), T + 7])
    D = rng.choice([4, 8])
    Dv = rng.choice([D, 5])
    causal = rng.choice([0, 1])
    mk = rng.choice(["none", "b11t", "b1st", "s_t"])
    return B, Hq, Hkv, S, T, D, Dv, causal, mk


def make_mask(kind, B, Hq, S, T):
    if kind == "none":
        return None
    if kind == "b11t":
        m = torch.randn(B, 1, 1, T, dtype=torch.float64)
        m[0, 0, 0, -1] = float("-inf")
        return m
    if kind == "s_t":
        return torch.randn(S, T, dtype=torch.float64)
    m = torch.randn(B, 1, S, T, dtype=torch.float64)
    m[torch.rand_like(m) < 0.1] = float("-inf")
    m[0, 0, 0, :] = float("-inf")
    return m


def close(a, b):
    return torch.allclose(a, b, rtol=1e-9, atol=1e-9)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rng = random.Random(1234)
    torch.manual_seed(1234)
    fails = 0
    for it in range(n):
        B, Hq, Hkv, S, T, D, Dv, causal, mk = rnd_case(rng)
        q = torch.randn(B, Hq, S, D, dtype=torch.float64)
        k = torch.randn(B, Hkv, T, D, dtype=torch.float64)
        v = torch.randn(B, Hkv, T, Dv, dtype=torch.float64)
        mask = make_mask(mk, B, Hq, S, T)
        m, mst, keep = mask_args(mask, B, Hq, S, T)
        scale = rng.choice([0.0, 0.3])
        eff = scale if scale else 1 / D ** 0.5
        shp = shape_arr(B, Hq, Hkv, S, T, D, Dv)
        op = it % 3
        o = torch.empty(B, Hq, S, Dv, dtype=torch.float64)
        if op == 0:
            bs = rng.choice([16, 32])
            dens = rng.choice([1.0, 0.5, 0.2, 0.01])
            mass = rng.choice([0.0, 0.0, 0.5, 0.95])
            sink, local = rng.choice([0, 1, 2]), rng.choice([0, 1, 2])
            nQB, nKB = -(-S // bs), -(-T // bs)
            lay = torch.empty(B, Hq, nQB, nKB, dtype=torch.uint8)
            rc = LIB.apcpu_block_sparse(shp, ptr(q), ptr(k), ptr(v), ptr(m), mst, eff, causal, bs, dens, mass, sink,
                                        local, ptr(o), ptr(lay))
            kw = dict(scale=scale, causal=causal, block_size=bs, density=dens, mass_threshold=mass, sink_blocks=sink,
                      local_blocks=local)
            r, lr = ref.block_sparse(q, k, v, mask, **kw)
            ok = rc == 0 and torch.equal(lay.bool(), lr) and close(o, r)
            if dens >= 1 and mass == 0:
                ok = ok and close(o, ref.dense(q, k, v, mask, scale, causal))
            desc = f"bsa {kw}"
        elif op == 1:
            bs = rng.choice([16, 32])
            ff = rng.choice([1.0, 0.5, 0.25, 0.0])
            mf = rng.choice([0.0, 0.25, 0.5])
            mt = rng.choice([1, 4, 8])
            sink, local = rng.choice([0, 1]), rng.choice([1, 2])
            scorer = rng.choice([0, 1, 2])
            w = torch.randn(D, dtype=torch.float64) if scorer == 2 else None
            rc = LIB.apcpu_tiled(shp, ptr(q), ptr(k), ptr(v), ptr(m), mst, ptr(w), eff, causal, bs, ff, mf, mt, sink,
                                 local, scorer, ptr(o))
            kw = dict(scale=scale, causal=causal, block_size=bs, fine_fraction=ff, medium_fraction=mf, medium_tile=mt,
                      sink_blocks=sink, local_blocks=local, scorer=scorer)
            r, _ = ref.tiled(q, k, v, mask, w, **kw)
            ok = rc == 0 and close(o, r)
            if ff >= 1:
                ok = ok and close(o, ref.dense(q, k, v, mask, scale, causal))
            desc = f"att {kw}"
        else:
            per_query = rng.choice([False, True])
            ns = rng.choice([1, 2, 3])
            Bs = rng.choice([1, B])
            full = rng.random() < 0.2
            if full:
                sp = torch.tensor([[[0, 2 ** 62]]], dtype=torch.int64).expand(Bs, 1, 2).clone()
                ns = 1
            else:
                st = torch.randint(-5, T + 5, (Bs, ns))
                ln = torch.randint(-3, max(2, T // 2), (Bs, ns))
                sp = torch.stack([st, st + ln], -1)
            if per_query:
                sp = sp[:, None].expand(Bs, S, sp.shape[1], 2).clone()
                if not full:
                    sp[:, 0, 0] = torch.tensor([0, T // 2])
            sp = sp.contiguous()
            sink, W = rng.choice([0, 1, 4]), rng.choice([0, 1, 3, 20])
            rc = LIB.apcpu_span(shp, ptr(q), ptr(k), ptr(v), ptr(m), mst, ptr(sp), Bs, sp.shape[-2], int(per_query),
                                eff, causal, sink, W, ptr(o))
            r = ref.span(q, k, v, sp, mask, scale=scale, causal=causal, sink_tokens=sink, local_window=W)
            ok = rc == 0 and close(o, r)
            if full:
                ok = ok and close(o, ref.dense(q, k, v, mask, scale, causal))
            desc = f"span per_query={per_query} sink={sink} W={W} full={full}"
        if not ok:
            fails += 1
            err = (o - r).abs().max().item() if rc == 0 else LIB.apcpu_last_error().decode()
            print(f"FAIL {it} B{B} Hq{Hq} Hkv{Hkv} S{S} T{T} D{D} Dv{Dv} c{causal} mask={mk} {desc}: {err}")
    print(f"{n} cases, {fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
