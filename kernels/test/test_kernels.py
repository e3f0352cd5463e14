"""Device test: every CUDA kernel of kernels/cuda against the float64 reference (reference.py) of
kernels/OPERATORS.md, on fresh random inputs over many shapes. Outputs are poisoned with NaN before each run;
NaN never passes, so an unwritten element fails. bf16/fp16 bar: relative Frobenius error <= 1e-2.

  python3 kernels/test/test_kernels.py [--quick] [--json OUT.json]

Needs a GPU, torch and kernels/build/cuda/libattnpass_cuda.so (bash kernels/cuda/build-lib.sh).
"""
import argparse
import json
import math
import os
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apcuda as ap  # noqa: E402
import reference as ref  # noqa: E402

DEV = "cuda"
TOL = {torch.bfloat16: 1e-2, torch.float16: 1e-2, torch.float32: 1e-4}
RESULTS = []


def rel_err(out, r):
    o = out.double()
    if not torch.isfinite(o).all():
        return float("inf")
    den = r.norm().item()
    num = (o - r).norm().item()
    return num / den if den > 0 else num


def inputs(B, Hq, Hkv, S, T, D, Dv, dtype, structured=True):
    q = torch.randn(B, Hq, S, D, device=DEV)
    k = torch.randn(B, Hkv, T, D, device=DEV)
    v = torch.randn(B, Hkv, T, Dv, device=DEV)
    if structured:  # give key blocks different weights so that selection matters
        nb = -(-T // 32)
        off = torch.randn(B, Hkv, nb, D, device=DEV) * 0.7
        k = k + off.repeat_interleave(32, dim=2)[:, :, :T]
        q = q + 0.5 * torch.randn(B, Hq, 1, D, device=DEV)
    return q.to(dtype), k.to(dtype), v.to(dtype)


def make_mask(kind, B, Hq, S, T, dtype):
    if kind == "none":
        return None
    if kind == "scalar":
        return torch.zeros(1, device=DEV, dtype=dtype)
    if kind == "b11t":  # key padding: the last keys of batch 0 masked
        m = torch.zeros(B, 1, 1, T, device=DEV)
        m[0, :, :, T - max(1, T // 7):] = float("-inf")
        m += 0.3 * torch.randn_like(m).clamp(-2, 2) * (m == 0)
        return m.to(dtype)
    if kind == "b1st":  # random additive values, some -inf, and one fully masked query row (empty row)
        m = 0.5 * torch.randn(B, 1, S, T, device=DEV)
        m[torch.rand_like(m) < 0.05] = float("-inf")
        m[0, 0, S // 2, :] = float("-inf")
        return m.to(dtype)
    if kind == "bhst":
        m = 0.5 * torch.randn(B, Hq, S, T, device=DEV)
        return m.to(dtype)
    raise ValueError(kind)


def poisoned(B, Hq, S, Dv, dtype):
    return torch.full((B, Hq, S, Dv), float("nan"), device=DEV, dtype=dtype)


def record(name, ok, **info):
    info.update(name=name, ok=bool(ok))
    RESULTS.append(info)
    flag = "ok  " if ok else "FAIL"
    extra = " ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
                     if k not in ("name", "ok"))
    print(f"{flag} {name} {extra}", flush=True)


# ------------------------------------------------------------------------------------------------ AST
def check_layout(lay_k, lay_r, s, C, F, kcnt, density_mode, thr):
    """kernel layout vs reference: equal, or differing only where block scores tie within rounding."""
    lk, lr = lay_k.bool(), lay_r.bool()
    diff = (lk != lr).any(-1)
    nd = int(diff.sum())
    if nd == 0:
        return True, 0, ""
    tol = 1e-5 * max(1.0, s.abs().max().item())
    for idx in diff.nonzero()[:2000].tolist():
        b, h, qb = idx
        kk, rr, sc = lk[b, h, qb], lr[b, h, qb], s[b, h, qb]
        c, f = C[qb], F[qb]
        if (kk & ~c).any() or (f & ~kk).any():
            return False, nd, f"row {idx}: non-candidate kept or forced dropped"
        nf = c & ~f
        kept, dropped = kk & nf, nf & ~kk
        if kept.any() and dropped.any() and sc[kept].min() < sc[dropped].max() - tol:
            return False, nd, f"row {idx}: kept block scores below a dropped one beyond tol"
        if density_mode:
            if int(kept.sum()) != int((rr & nf).sum()):
                return False, nd, f"row {idx}: kept count {int(kept.sum())} != {int((rr & nf).sum())}"
        else:
            lw = torch.where(c, sc + torch.log(kcnt), torch.full_like(sc, float("-inf")))
            w = torch.softmax(lw, -1)
            M = w[f].sum() + w[kept].sum()
            if M < thr - 1e-4 and dropped.any():
                return False, nd, f"row {idx}: mass {M:.6f} < threshold"
            if kept.any():
                weakest = w[kept][sc[kept].argmin()]
                if M - weakest >= thr + 1e-4:
                    return False, nd, f"row {idx}: not minimal"
    return True, nd, ""


def t_bsa(B, Hq, Hkv, S, T, D, dtype, causal, bs=64, density=0.25, mass=0.0, sink=1, local=1, mask="none",
          path=ap.PATH_AUTO, Dv=None):
    Dv = Dv or D
    q, k, v = inputs(B, Hq, Hkv, S, T, D, Dv, dtype)
    m = make_mask(mask, B, Hq, S, T, dtype)
    out = poisoned(B, Hq, S, Dv, dtype)
    kw = dict(scale=0.0, causal=causal, block_size=bs, density=density, mass_threshold=mass, sink_blocks=sink,
              local_blocks=local)
    n90 = ap.sm90_launches()
    o, lay = ap.block_sparse(q, k, v, m, out=out, want_layout=True, path=path, **kw)
    torch.cuda.synchronize()
    # the Hopper kernel must have run wherever it can (default variant on an sm_90 device), and only there
    hopper = ap.sm90_launches() > n90
    hopper_expected = (ap.get_fwd_variant() in (0, 3) and torch.cuda.get_device_capability() == (9, 0) and
                       path != ap.PATH_GENERIC and dtype != torch.float32 and D == Dv and D in (64, 128) and
                       bs % 64 == 0 and (T + 127) // 128 <= 2048)
    lay_r, s, C, F = ref.bsa_layout(q, k, **kw)
    _, kcnt = ref._block_means(k.double(), bs)
    lok, nd, why = check_layout(lay, lay_r, s, C, F, kcnt, mass <= 0, float(torch.tensor(mass, dtype=torch.float32)))
    r = ref.bsa_attention_given_layout(q, k, v, lay, m, 0.0, causal, bs)
    e = rel_err(o, r)
    ok = lok and e <= TOL[dtype] and not torch.isnan(o).any() and hopper == hopper_expected
    extra = {"kernel": "sm90" if hopper else "other"}
    if density >= 1 and mass <= 0:  # exactness: equals dense attention
        e2 = rel_err(o, ref.dense(q, k, v, m, 0.0, causal))
        extra["err_vs_dense"] = e2
        ok = ok and e2 <= TOL[dtype]
    kept = lay.float().mean().item()
    record(f"bsa B{B} H{Hq}/{Hkv} S{S} T{T} D{D} {str(dtype)[6:]} c{causal} bs{bs} d{density} m{mass} "
           f"sk{sink} lo{local} mask={mask} path={path}", ok, err=e, layout_rows_differing=nd, kept=kept,
           why=why, **extra)


# ------------------------------------------------------------------------------------------------ Span
def make_spans(kind, B, S, T, per_query=False, n=3):
    if kind == "full":
        sp = torch.tensor([[[0, 2 ** 62]]], dtype=torch.int64).expand(B, 1, 2).clone()
    elif kind == "empty":
        sp = torch.tensor([[[5, 5]]], dtype=torch.int64).expand(B, 1, 2).clone()
    elif kind == "partial":
        sp = torch.zeros(B, n, 2, dtype=torch.int64)
        for b in range(B):
            for i in range(n):
                a = int(torch.randint(0, T, (1,)))
                ln = int(torch.randint(0, max(2, T // 4), (1,)))
                sp[b, i] = torch.tensor([a, a + ln])
        sp[0, 0] = torch.tensor([T // 3, T // 3 - 5])  # an empty span
        if n > 1:
            sp[0, 1] = torch.tensor([-10, 17])  # clamped at 0
    elif kind == "short":  # 40 spans of 1-6 keys: tiles holding two spans with a gap between them, span edges
        sp = torch.zeros(B, 40, 2, dtype=torch.int64)
        for b in range(B):
            a = torch.randint(0, T, (40,))
            sp[b] = torch.stack([a, a + torch.randint(1, 7, (40,))], -1)
    elif kind == "cover25":  # 8 equal spans covering ~25% of [0, T)
        ln = T // 32
        st = torch.arange(8) * (T // 8)
        sp = torch.stack([st, st + ln], -1)[None].expand(B, 8, 2).clone()
    else:
        raise ValueError(kind)
    if per_query:
        sp = sp[:, None].expand(B, S, sp.shape[1], 2).clone()
        if S > 1:
            sp[:, S // 2, 0] = torch.tensor([0, T // 2])
    return sp


def t_span(B, Hq, Hkv, S, T, D, dtype, causal, spans="partial", per_query=False, sink=4, W=64, mask="none",
           path=ap.PATH_AUTO, Dv=None, bs1=False):
    Dv = Dv or D
    q, k, v = inputs(B, Hq, Hkv, S, T, D, Dv, dtype)
    m = make_mask(mask, B, Hq, S, T, dtype)
    sp = make_spans(spans, 1 if bs1 else B, S, T, per_query)
    out = poisoned(B, Hq, S, Dv, dtype)
    o = ap.span(q, k, v, sp, m, causal=causal, sink_tokens=sink, local_window=W, out=out, path=path)
    torch.cuda.synchronize()
    r = ref.span(q, k, v, sp, m, causal=causal, sink_tokens=sink, local_window=W)
    e = rel_err(o, r)
    ok = e <= TOL[dtype] and not torch.isnan(o).any()
    extra = {}
    if spans == "full":
        e2 = rel_err(o, ref.dense(q, k, v, m, 0.0, causal))
        extra["err_vs_dense"] = e2
        ok = ok and e2 <= TOL[dtype]
    record(f"span B{B} H{Hq}/{Hkv} S{S} T{T} D{D} {str(dtype)[6:]} c{causal} spans={spans}{'/q' if per_query else ''}"
           f"{'/bs1' if bs1 else ''} sink{sink} W{W} mask={mask} path={path}", ok, err=e, **extra)


# ------------------------------------------------------------------------------------------------ ATT
def check_levels(lv_k, lv_r, R, nf, nm, sink):
    """kernel levels vs reference: equal, or differing only among blocks whose importances tie within rounding."""
    if torch.equal(lv_k.long(), lv_r.long()):
        return True, 0, ""
    nd = int((lv_k.long() != lv_r.long()).sum())
    tol = 1e-5 * max(1.0, R.abs().max().item())
    B, Hkv, nKB = R.shape
    for b in range(B):
        for g in range(Hkv):
            lk = lv_k[b, g].long()
            if (lk[:sink] != 0).any():
                return False, nd, "sink block not fine"
            rest = lk[sink:]
            Rr = R[b, g, sink:]
            nn = rest.numel()
            if int((rest == 0).sum()) != min(nf, nn) or int((rest == 1).sum()) != min(nm, max(0, nn - nf)):
                return False, nd, f"level counts differ at b{b} g{g}"
            for hi, lo in ((0, 1), (0, 2), (1, 2)):
                a, c = Rr[rest == hi], Rr[rest == lo]
                if a.numel() and c.numel() and a.min() < c.max() - tol:
                    return False, nd, f"order violated at b{b} g{g}"
    return True, nd, ""


def t_att(B, Hq, Hkv, S, T, D, dtype, causal, bs=64, ff=0.25, mf=0.25, mt=8, sink=1, local=1, scorer=0, mask="none",
          path=ap.PATH_AUTO, Dv=None):
    Dv = Dv or D
    q, k, v = inputs(B, Hq, Hkv, S, T, D, Dv, dtype)
    m = make_mask(mask, B, Hq, S, T, dtype)
    w = torch.randn(D, device=DEV).to(dtype) if scorer == 2 else None
    out = poisoned(B, Hq, S, Dv, dtype)
    kw = dict(scale=0.0, causal=causal, block_size=bs, fine_fraction=ff, medium_fraction=mf, medium_tile=mt,
              sink_blocks=sink, local_blocks=local, scorer=scorer)
    o, lv = ap.tiled(q, k, v, m, w, out=out, want_levels=True, path=path, **kw)
    torch.cuda.synchronize()
    lv_r, R = ref.att_levels(q, k, scorer_w=w, **kw)
    nKB = -(-T // bs)
    nf = math.floor(float(torch.tensor(ff, dtype=torch.float32)) * nKB + 0.5)
    nm = math.floor(float(torch.tensor(mf, dtype=torch.float32)) * nKB + 0.5)
    lok, nd, why = check_levels(lv, lv_r, R, nf, nm, sink)
    r = ref.att_given_levels(q, k, v, lv, m, **kw)
    e = rel_err(o, r)
    ok = lok and e <= TOL[dtype] and not torch.isnan(o).any()
    extra = {}
    if ff >= 1:
        e2 = rel_err(o, ref.dense(q, k, v, m, 0.0, causal))
        extra["err_vs_dense"] = e2
        ok = ok and e2 <= TOL[dtype]
    record(f"att B{B} H{Hq}/{Hkv} S{S} T{T} D{D} {str(dtype)[6:]} c{causal} bs{bs} ff{ff} mf{mf} mt{mt} sk{sink} "
           f"lo{local} scorer{scorer} mask={mask} path={path}", ok, err=e, level_diffs=nd, why=why, **extra)


# ------------------------------------------------------------------------------------------------
def cases(quick):
    bf, hf, f32 = torch.bfloat16, torch.float16, torch.float32
    C = []
    # ---- BlockSparseAttention
    for dt in (bf, hf):
        for D in (64, 128):
            C += [
                (t_bsa, dict(B=1, Hq=4, Hkv=4, S=77, T=77, D=D, dtype=dt, causal=1, density=1.0)),
                (t_bsa, dict(B=2, Hq=8, Hkv=2, S=1000, T=1000, D=D, dtype=dt, causal=1, density=0.25)),
                (t_bsa, dict(B=1, Hq=8, Hkv=1, S=1000, T=1000, D=D, dtype=dt, causal=0, density=0.1, bs=128)),
            ]
    C += [
        (t_bsa, dict(B=1, Hq=8, Hkv=2, S=4099, T=4099, D=128, dtype=bf, causal=1, density=1.0)),
        (t_bsa, dict(B=1, Hq=8, Hkv=2, S=4099, T=4099, D=128, dtype=bf, causal=1, density=0.05)),
        (t_bsa, dict(B=1, Hq=8, Hkv=8, S=4099, T=4099, D=128, dtype=bf, causal=1, density=0.25, bs=128, sink=2,
                     local=2)),
        (t_bsa, dict(B=1, Hq=8, Hkv=1, S=4099, T=4099, D=64, dtype=hf, causal=0, density=0.01)),
        (t_bsa, dict(B=2, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, mass=0.9)),
        (t_bsa, dict(B=1, Hq=4, Hkv=1, S=1000, T=1000, D=128, dtype=bf, causal=0, mass=0.5, bs=128)),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=300, T=1500, D=128, dtype=bf, causal=1, density=0.3)),  # KV cache
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=1, T=1500, D=128, dtype=bf, causal=1, density=0.3)),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=200, T=100, D=64, dtype=bf, causal=1, density=0.5)),  # S > T: empty rows
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=200, T=100, D=64, dtype=bf, causal=0, density=0.5)),
        (t_bsa, dict(B=2, Hq=4, Hkv=2, S=777, T=777, D=128, dtype=bf, causal=1, density=0.25, mask="b11t")),
        (t_bsa, dict(B=2, Hq=4, Hkv=2, S=777, T=777, D=128, dtype=hf, causal=0, density=0.25, mask="b1st")),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=500, T=500, D=64, dtype=bf, causal=1, density=1.0, mask="bhst")),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=500, T=500, D=64, dtype=bf, causal=1, density=1.0, mask="scalar")),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, density=0.2, sink=0, local=0)),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, density=0.2, bs=256)),
        # a long cache: 1563 key tiles of 128 per query tile
        (t_bsa, dict(B=1, Hq=2, Hkv=1, S=130, T=200003, D=128, dtype=bf, causal=1, density=0.5, bs=64)),
        (t_bsa, dict(B=1, Hq=2, Hkv=1, S=70, T=270000, D=64, dtype=hf, causal=0, density=0.2, bs=128)),  # > 2048 tiles
        # generic path: block size under 64, float32, odd head dims
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=64, dtype=bf, causal=1, density=0.3, bs=32)),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=64, dtype=f32, causal=1, density=0.3, mask="b1st")),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=96, Dv=80, dtype=hf, causal=0, density=0.5)),
        (t_bsa, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=128, dtype=bf, causal=1, density=0.3, path=ap.PATH_GENERIC)),
    ]
    # ---- SpanAttention
    for dt in (bf, hf):
        for D in (64, 128):
            for G in (1, 4, 8):
                C.append((t_span, dict(B=2, Hq=8, Hkv=8 // G, S=1, T=4099, D=D, dtype=dt, causal=1, spans="partial")))
    C += [
        (t_span, dict(B=3, Hq=8, Hkv=2, S=1, T=77, D=128, dtype=bf, causal=1, spans="full")),
        (t_span, dict(B=3, Hq=8, Hkv=2, S=1, T=1000, D=128, dtype=bf, causal=1, spans="empty")),
        (t_span, dict(B=3, Hq=8, Hkv=2, S=1, T=1000, D=128, dtype=bf, causal=1, spans="empty", sink=0, W=0)),
        (t_span, dict(B=2, Hq=32, Hkv=4, S=1, T=33000, D=128, dtype=bf, causal=1, spans="cover25")),
        (t_span, dict(B=2, Hq=32, Hkv=4, S=1, T=33000, D=128, dtype=bf, causal=1, spans="full")),
        (t_span, dict(B=2, Hq=8, Hkv=2, S=4, T=4099, D=128, dtype=bf, causal=1, spans="partial", per_query=True)),
        (t_span, dict(B=2, Hq=8, Hkv=2, S=2, T=4099, D=128, dtype=hf, causal=0, spans="partial", mask="b11t")),
        (t_span, dict(B=2, Hq=8, Hkv=2, S=1, T=4099, D=128, dtype=bf, causal=1, spans="partial", bs1=True)),
        (t_span, dict(B=2, Hq=8, Hkv=1, S=3, T=4099, D=128, dtype=bf, causal=1, spans="partial")),  # 24 rows: prefill kernel
        # decode: trimmed tiles, windows covering whole tiles, one CTA per (b, g), 16-CTA clusters, the T limit
        (t_span, dict(B=2, Hq=8, Hkv=2, S=1, T=5000, D=128, dtype=bf, causal=1, spans="short", W=300)),
        (t_span, dict(B=2, Hq=12, Hkv=4, S=3, T=2000, D=64, dtype=hf, causal=0, spans="short", per_query=True, sink=0,
                      W=200)),
        (t_span, dict(B=40, Hq=32, Hkv=8, S=1, T=600, D=128, dtype=bf, causal=1, spans="partial")),
        (t_span, dict(B=1, Hq=4, Hkv=1, S=1, T=300000, D=64, dtype=hf, causal=1, spans="short", sink=70)),
        (t_span, dict(B=1, Hq=2, Hkv=1, S=1, T=530000, D=64, dtype=bf, causal=1, spans="partial")),  # prefill kernel
        (t_span, dict(B=1, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, spans="partial")),
        (t_span, dict(B=1, Hq=8, Hkv=2, S=4099, T=4099, D=64, dtype=hf, causal=1, spans="partial", W=300)),
        (t_span, dict(B=1, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, spans="full")),
        (t_span, dict(B=1, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=0, spans="partial", per_query=True)),
        (t_span, dict(B=2, Hq=4, Hkv=2, S=777, T=777, D=128, dtype=bf, causal=1, spans="partial", mask="b1st")),
        (t_span, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=64, dtype=f32, causal=1, spans="partial")),
        (t_span, dict(B=1, Hq=4, Hkv=2, S=1, T=3000, D=96, Dv=64, dtype=bf, causal=1, spans="partial")),
    ]
    # ---- TiledAttention
    C += [
        (t_att, dict(B=1, Hq=4, Hkv=2, S=77, T=77, D=64, dtype=bf, causal=1, ff=1.0)),
        (t_att, dict(B=1, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, ff=1.0, mf=0.0)),
        (t_att, dict(B=1, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1)),
        (t_att, dict(B=2, Hq=8, Hkv=8, S=1000, T=1000, D=64, dtype=hf, causal=0)),
        (t_att, dict(B=1, Hq=8, Hkv=1, S=4099, T=4099, D=128, dtype=bf, causal=1, ff=0.1, mf=0.2, bs=128, mt=16)),
        (t_att, dict(B=1, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, scorer=1)),
        (t_att, dict(B=1, Hq=8, Hkv=2, S=1000, T=1000, D=128, dtype=bf, causal=1, scorer=2, local=2, sink=2)),
        (t_att, dict(B=1, Hq=4, Hkv=2, S=100, T=1000, D=128, dtype=bf, causal=1, scorer=1)),
        (t_att, dict(B=1, Hq=4, Hkv=2, S=1, T=1000, D=128, dtype=bf, causal=1)),
        (t_att, dict(B=2, Hq=4, Hkv=2, S=777, T=777, D=128, dtype=bf, causal=1, mask="b11t")),
        (t_att, dict(B=2, Hq=4, Hkv=2, S=500, T=500, D=64, dtype=bf, causal=0, mask="b1st")),
        (t_att, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=64, dtype=bf, causal=1, bs=32, mt=4)),
        (t_att, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=64, dtype=f32, causal=1)),
        (t_att, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=96, Dv=64, dtype=bf, causal=0, mask="b1st")),
        (t_att, dict(B=1, Hq=4, Hkv=2, S=300, T=300, D=128, dtype=bf, causal=1, path=ap.PATH_GENERIC)),
    ]
    if quick:
        C = C[::3]
    return C


def main():
    ap_ = argparse.ArgumentParser()
    ap_.add_argument("--quick", action="store_true")
    ap_.add_argument("--json", default=None)
    ap_.add_argument("--only", default=None, help="bsa|span|att")
    ap_.add_argument("--variant", type=int, default=0, help="forward kernel variant (0: library default, Hopper kernel for bsa on sm_90; 1, 2: mma.sync)")
    ap_.add_argument("--force-radix", action="store_true", help="AST selection by the radix kernel (nKB > 4096 path)")
    args = ap_.parse_args()
    if args.force_radix:
        import ctypes
        ap.lib().ap_bsa_force_radix.argtypes = [ctypes.c_int]
        ap.lib().ap_bsa_force_radix(1)
    ap.set_fwd_variant(args.variant)
    seed = int(time.time() * 1000) % (2 ** 31)
    torch.manual_seed(seed)
    print(f"seed {seed}  device {torch.cuda.get_device_name()}  forward variant {ap.get_fwd_variant()}", flush=True)
    t0 = time.time()
    for fn, kw in cases(args.quick):
        if args.only and fn.__name__ != "t_" + args.only:
            continue
        try:
            fn(**kw)
        except Exception as e:  # noqa: BLE001
            record(f"{fn.__name__} {kw}", False, error=f"{type(e).__name__}: {e}")
            traceback.print_exc()
        torch.cuda.empty_cache()
    nfail = sum(not r["ok"] for r in RESULTS)
    print(f"\n{len(RESULTS)} cases, {nfail} failed, {time.time() - t0:.1f} s, seed {seed}")
    worst = {}
    for r in RESULTS:
        op = r["name"].split()[0]
        if "err" in r:
            worst[op] = max(worst.get(op, 0.0), r["err"])
    print("worst relative error per operator:", {k: f"{v:.2e}" for k, v in worst.items()})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": seed, "results": RESULTS}, f, indent=1)
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
