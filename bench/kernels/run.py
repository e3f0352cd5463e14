"""Kernel benchmark: attnpass CUDA kernels vs torch SDPA (flash, cuDNN) and FlexAttention, in one run.

  python3 bench/kernels/run.py [--out bench/results/kernels-<date>.json] [--quick]

Prefill: B=1, H=32, D=128, bf16, causal, S in {4k, 16k, 32k}, kept fractions 1.0 / 0.25 / 0.1 of the causal block
candidates (BlockSparseAttention density; block 128, the layout our GPU builder chose, given to FlexAttention as
the same BlockMask). Decode: B=8, Hq=32, Hkv=8, D=128, bf16, context 32k and 128k, spans covering 10/25/50%
(+4 sink tokens, 64-token window), vs dense decode (SDPA backends, our own dense flash-decoding) and vs the
device-to-device copy of the bytes that must be read. Every configuration is checked for correctness before it
is timed. Times: medians of triton.testing.do_bench (CUDA events, L2 flushed between runs).
"""
import argparse
import datetime
import json
import math
import os
import sys
import traceback

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from triton.testing import do_bench

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "kernels", "test"))
import apcuda as ap  # noqa: E402
import reference as ref  # noqa: E402

DEV = "cuda"
RESULTS = {"prefill": [], "decode": [], "env": {}}


def capture(fn):
    """fn captured in a CUDA graph (after one eager call), or None where capture fails"""
    fn()
    torch.cuda.synchronize()
    try:
        g = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            fn()
        torch.cuda.current_stream().wait_stream(s)
        with torch.cuda.graph(g):
            fn()
        torch.cuda.synchronize()
        return g
    except Exception as e:  # noqa: BLE001
        print(f"graph capture failed ({str(e)[:120]}); timing without a graph")
        torch.cuda.synchronize()
        return None


def bench(fn, graph=True):
    """median ms; the call is captured in a CUDA graph when possible (no host launch overhead in the numbers).
    triton's do_bench flushes the L2 between runs by zeroing 256 MB, which leaves the L2 full of dirty lines."""
    g = capture(fn) if graph else None
    return do_bench(g.replay if g is not None else fn, warmup=25, rep=200, return_mode="median")


_CLEAN_FLUSH = None
_ZERO_FLUSH = None


def enqueue_warm_then_flush(fn, calls=2000):
    """enqueue `calls` calls of fn, then do_bench's L2 flush (zeroing 256 MB), without waiting: a call enqueued next
    runs in the state of a call timed by do_bench — a busy GPU, an L2 full of the flush's dirty lines (which made
    the decode kernel's loop 5 us longer than in a call right after another one)"""
    global _ZERO_FLUSH
    if _ZERO_FLUSH is None:
        _ZERO_FLUSH = torch.empty(256 << 20, dtype=torch.uint8, device=DEV)
    for _ in range(calls):
        fn()
    _ZERO_FLUSH.zero_()


TRACE_QUANTILES = "min/p10/p50/p90/max"


def trace_quantiles(values):
    """min, p10, median, p90 and max of per-CTA trace values (us), formatted for one line"""
    q = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.double)
    return " ".join(f"{x:7.2f}" for x in torch.quantile(values.double(), q).tolist())


def bench_clean_l2(fn, reps=200):
    """median ms of CUDA-graph replays, each after an L2 flush that reads 256 MB: the L2 then holds none of the
    call's data and only clean lines, so the call is not charged for writing back the flush's own dirty lines
    (with do_bench's zeroing flush, a read-only kernel pays up to ~50 MB of write-back at its start)."""
    global _CLEAN_FLUSH
    if _CLEAN_FLUSH is None:
        _CLEAN_FLUSH = torch.empty(64 << 20, dtype=torch.float32, device=DEV).uniform_()
    g = capture(fn)
    run = g.replay if g is not None else fn
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for _ in range(10):
        run()
    for a, b in ev:
        _CLEAN_FLUSH.sum()
        a.record()
        run()
        b.record()
    torch.cuda.synchronize()
    return sorted(a.elapsed_time(b) for a, b in ev)[reps // 2]


def rel(a, b):
    a, b = a.double(), b.double()
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a - b).norm() / b.norm()).item()


def measure_ceilings():
    n = 1 << 30  # 1 GiB
    src = torch.empty(n, dtype=torch.uint8, device=DEV).random_(0, 255)
    dst = torch.empty_like(src)
    t = bench(lambda: dst.copy_(src), graph=False)
    copy_bw = 2 * n / (t * 1e-3)  # bytes read + written per second
    a = torch.randn(8192, 8192, device=DEV, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=DEV, dtype=torch.bfloat16)
    tg = bench(lambda: a @ b, graph=False)
    mm = 2 * 8192 ** 3 / (tg * 1e-3)
    del src, dst, a, b
    return copy_bw, mm


# ------------------------------------------------------------------------------------------------ prefill
def causal_pairs_from_layout(lay, bs, S):
    """admitted (query, key) pairs of a causal layout with S == T (multiple of bs)."""
    nQB = lay.shape[-2]
    qb = torch.arange(nQB, device=lay.device)
    diag = (qb[:, None] == qb[None, :])
    full = lay.bool() & (qb[None, :] < qb[:, None])
    dg = lay.bool() & diag
    return int(full.sum()) * bs * bs + int(dg.sum()) * bs * (bs + 1) // 2


def flex_blockmask(lay, S):
    from torch.nn.attention.flex_attention import BlockMask

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    L = lay.bool()
    B, H, nQB, nKB = L.shape
    qb = torch.arange(nQB, device=L.device)
    kb = torch.arange(nKB, device=L.device)
    diag = kb[None, :] == qb[:, None]
    below = kb[None, :] < qb[:, None]
    part = L & diag
    full = L & below

    def idx(m):
        num = m.sum(-1).to(torch.int32)
        order = torch.argsort((~m).to(torch.int8), dim=-1, stable=True).to(torch.int32)
        return num.contiguous(), order.contiguous()

    kn, ki = idx(part)
    fn, fi = idx(full)
    return BlockMask.from_kv_blocks(kn, ki, fn, fi, BLOCK_SIZE=128, mask_mod=causal)


def run_prefill(S, fracs, flex, peak):
    B, H, D, bs = 1, 32, 128, 128
    q = torch.randn(B, H, S, D, device=DEV, dtype=torch.bfloat16)
    k = torch.randn(B, H, S, D, device=DEV, dtype=torch.bfloat16)
    v = torch.randn(B, H, S, D, device=DEV, dtype=torch.bfloat16)
    # some structure so that block selection is not arbitrary
    k += (0.5 * torch.randn(B, H, S // 64, 1, D, device=DEV)).expand(B, H, S // 64, 64, D).reshape(B, H, S, D).to(k.dtype)
    dense_pairs = S * (S + 1) // 2
    base = {}
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        o_fa = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        base["sdpa_flash"] = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    try:
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
            base["sdpa_cudnn"] = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    except Exception as e:  # noqa: BLE001
        print(f"cudnn sdpa failed: {e}")
        base["sdpa_cudnn"] = float("nan")
    for frac in fracs:
        row = dict(S=S, H=H, D=D, B=B, bs=bs, density=frac)
        try:
            out = torch.empty_like(q)
            if frac >= 1:
                lay = None
                o = ap.block_sparse(q, k, v, causal=1, block_size=bs, density=1.0, out=out)
                t_layout = 0.0
            else:
                ws = torch.empty(ap.bsa_workspace_bytes(q, k, v, causal=1, block_size=bs, density=frac),
                                 dtype=torch.uint8, device=DEV)
                o, lay = ap.block_sparse(q, k, v, causal=1, block_size=bs, density=frac, out=out, want_layout=True,
                                         ws=ws)
                # layout builder alone: time the full op minus the attention over the given layout
                t_full = bench(lambda: ap.block_sparse(q, k, v, causal=1, block_size=bs, density=frac, out=out,
                                                       want_layout=True, ws=ws))
                row["ours_full_ms"] = t_full
            pairs = dense_pairs * B * H if lay is None else causal_pairs_from_layout(lay, bs, S)
            row["kept_pairs_frac"] = pairs / (dense_pairs * B * H)
            flops = 4.0 * pairs * D
            row["flop_floor_ms"] = flops / peak["mm"] * 1e3
            row["byte_floor_ms"] = 4 * B * H * S * D * 2 / peak["copy"] * 1e3
            # correctness before timing
            if lay is None:
                row["err_vs_sdpa_flash"] = rel(o, o_fa)
                ok = row["err_vs_sdpa_flash"] <= 1e-2
            else:
                # float64 reference on head 0, last 1024 query rows (all keys)
                nq = 1024
                r = ref.bsa_attention_given_layout(q[:, :1, -nq:], k[:, :1], v[:, :1], lay[:, :1, -(nq // bs):], None,
                                                   0.0, 1, bs)
                row["err_vs_f64_h0_last1024"] = rel(o[:, :1, -nq:], r)
                ok = row["err_vs_f64_h0_last1024"] <= 1e-2
            row["ok"] = bool(ok and not torch.isnan(o).any())
            # the library's default forward (0: the persistent Hopper kernel on sm_90), the Hopper kernel with one
            # CTA per query tile (3) and the two mma.sync kernels (1, 2)
            for var in (0, 3, 1, 2):
                ap.set_fwd_variant(var)
                o2 = ap.block_sparse_attend(q, k, v, lay, causal=1, block_size=bs, out=torch.empty_like(q))
                row[f"err_v{var}_vs_op"] = rel(o2, o)
                row[f"ours_attn_ms_v{var}"] = bench(
                    lambda: ap.block_sparse_attend(q, k, v, lay, causal=1, block_size=bs, out=out))
            ap.set_fwd_variant(0)
            row["ours_attn_ms"] = row["ours_attn_ms_v0"]
            if lay is not None:
                row["ours_layout_ms"] = row["ours_full_ms"] - row["ours_attn_ms"]
            row["sdpa_flash_ms"] = base["sdpa_flash"]
            row["sdpa_cudnn_ms"] = base["sdpa_cudnn"]
            if flex is not None:
                L = lay if lay is not None else torch.ones(B, H, S // bs, S // bs, dtype=torch.uint8, device=DEV).tril()
                bm = flex_blockmask(L, S)
                of = flex(q, k, v, block_mask=bm)
                row["err_flex_vs_ours"] = rel(of, o)
                row["flex_ms"] = bench(lambda: flex(q, k, v, block_mask=bm), graph=False)
            row["ours_tflops"] = flops / (row["ours_attn_ms"] * 1e-3) / 1e12
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row["error"] = f"{type(e).__name__}: {e}"
        RESULTS["prefill"].append(row)
        print("prefill", json.dumps(row), flush=True)


# ------------------------------------------------------------------------------------------------ decode
def spans_cover(B, T, frac, n=8):
    ln = int(frac * T / n)
    st = torch.arange(n) * (T // n)
    return torch.stack([st, st + ln], -1)[None].expand(B, n, 2).contiguous()


def admitted_tokens(T, spans, sink, W):
    adm = torch.zeros(T, dtype=torch.bool)
    adm[:sink] = True
    adm[max(0, T - W):] = True  # p = T-1: |p - j| < W
    for s, e in spans[0].tolist():
        adm[max(0, s):min(T, e)] = True
    return int(adm.sum())


def run_decode(T, fracs, peak):
    B, Hq, Hkv, D = 8, 32, 8, 128
    sink, W = 4, 64
    q = torch.randn(B, Hq, 1, D, device=DEV, dtype=torch.bfloat16)
    k = torch.randn(B, Hkv, T, D, device=DEV, dtype=torch.bfloat16)
    v = torch.randn(B, Hkv, T, D, device=DEV, dtype=torch.bfloat16)
    dense, dense_clean = {}, {}
    for name, be in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION),
                     ("sdpa_efficient", SDPBackend.EFFICIENT_ATTENTION)):
        try:
            with sdpa_kernel(be):
                F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                dense[name] = bench(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
                dense_clean[name] = bench_clean_l2(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
        except Exception as e:  # noqa: BLE001
            dense[name] = dense_clean[name] = float("nan")
            print(f"decode {name} failed: {str(e)[:200]}")
    full = torch.tensor([[[0, 2 ** 62]]], dtype=torch.int64, device=DEV).expand(B, 1, 2).contiguous()
    out = torch.empty(B, Hq, 1, D, device=DEV, dtype=torch.bfloat16)
    ws = torch.empty(1 << 26, dtype=torch.uint8, device=DEV)
    o_dense = ap.span(q, k, v, full, causal=1, sink_tokens=sink, local_window=W, out=out.clone(), ws=ws)
    with sdpa_kernel(SDPBackend.MATH):
        r_dense = F.scaled_dot_product_attention(q[:1].float(), k[:1].float(), v[:1].float(), enable_gqa=True)
    dense["ours_dense"] = bench(lambda: ap.span(q, k, v, full, causal=1, sink_tokens=sink, local_window=W, out=out,
                                                ws=ws))
    dense_clean["ours_dense"] = bench_clean_l2(lambda: ap.span(q, k, v, full, causal=1, sink_tokens=sink,
                                                               local_window=W, out=out, ws=ws))
    err_dense = rel(o_dense[:1], r_dense)
    for frac in fracs:
        row = dict(T=T, B=B, Hq=Hq, Hkv=Hkv, D=D, cover=frac, ours_dense_err=err_dense)
        try:
            sp_cpu = spans_cover(B, T, frac)
            ntok = admitted_tokens(T, sp_cpu, sink, W)
            sp = sp_cpu.to(DEV)  # on the device already: the timed call does no host-device copy (graph capture)
            nbytes = B * Hkv * ntok * 2 * D * 2
            row["admitted_frac"] = ntok / T
            row["bytes_read_MB"] = nbytes / 1e6
            row["byte_floor_ms"] = nbytes / peak["copy"] * 1e3
            o = ap.span(q, k, v, sp, causal=1, sink_tokens=sink, local_window=W, out=out.clone(), ws=ws)
            r = ref.span(q[:1], k[:1], v[:1], sp[:1], None, causal=1, sink_tokens=sink, local_window=W)
            row["err_vs_f64_b0"] = rel(o[:1], r)
            row["ok"] = bool(row["err_vs_f64_b0"] <= 1e-2 and not torch.isnan(o).any())
            call = lambda: ap.span(q, k, v, sp, causal=1, sink_tokens=sink, local_window=W, out=out, ws=ws)  # noqa
            row["ours_ms"] = bench(call)
            row["ours_ms_clean_l2"] = bench_clean_l2(call)
            # split count sweep: about w decode CTAs per multiprocessor (the default is 1)
            for w in (2, 4, 8):
                ap.set_span_split_waves(w)
                o3 = ap.span(q, k, v, sp, causal=1, sink_tokens=sink, local_window=W, out=out.clone(), ws=ws)
                row[f"err_waves{w}_vs_default"] = rel(o3, o)
                row[f"ours_ms_waves{w}"] = bench(lambda: ap.span(q, k, v, sp, causal=1, sink_tokens=sink,
                                                                local_window=W, out=out, ws=ws))
            ap.set_span_split_waves(1)
            # a device-to-device copy that reads the same bytes (and writes as many)
            d2 = torch.empty(nbytes, dtype=torch.uint8, device=DEV)
            s2 = torch.empty(nbytes, dtype=torch.uint8, device=DEV)
            tcopy = bench(lambda: d2.copy_(s2))
            row["copy_read_same_ms"] = tcopy
            tcopy_clean = bench_clean_l2(lambda: d2.copy_(s2))
            row["copy_read_same_ms_clean_l2"] = tcopy_clean
            row["bw_frac_of_copy_clean_l2"] = (nbytes / row["ours_ms_clean_l2"]) / (2 * nbytes / tcopy_clean)
            row["ours_read_GBps"] = nbytes / (row["ours_ms"] * 1e-3) / 1e9
            row["copy_GBps_rw"] = 2 * nbytes / (tcopy * 1e-3) / 1e9
            row["bw_frac_of_copy"] = row["ours_read_GBps"] / row["copy_GBps_rw"]
            # a plain read-only kernel over the same bytes (torch's sum): what reading them costs with no span
            # list to build and no partials to merge
            s2h = s2.view(torch.bfloat16)
            row["sum_same_ms"] = bench(lambda: s2h.sum())
            row["sum_same_ms_clean_l2"] = bench_clean_l2(lambda: s2h.sum())
            del d2, s2, s2h
            for kk, vv in dense.items():
                row[f"dense_{kk}_ms"] = vv
            best = min(x for x in dense.values() if x == x)
            row["speedup_vs_best_dense"] = best / row["ours_ms"]
            for kk, vv in dense_clean.items():
                row[f"dense_{kk}_ms_clean_l2"] = vv
            best = min(x for x in dense_clean.values() if x == x)
            row["speedup_vs_best_dense_clean_l2"] = best / row["ours_ms_clean_l2"]
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row["error"] = f"{type(e).__name__}: {e}"
        RESULTS["decode"].append(row)
        print("decode", json.dumps(row), flush=True)
    del k, v


def fmt(x, w=8, p=3):
    if x is None or (isinstance(x, float) and x != x):
        return "-".rjust(w)
    return f"{x:{w}.{p}f}"


def table():
    lines = []
    lines.append("PREFILL (B=1 H=32 D=128 bf16 causal, block 128) times in ms; ratios = baseline / ours")
    lines.append("ours = the library's default forward (persistent wgmma/TMA kernel on sm_90); v3 = the same kernel, "
                 "one CTA per query tile; v1, v2 = the mma.sync kernels")
    lines.append(f"{'S':>6} {'kept':>5} {'pairs':>6} {'floor':>7} {'ours':>8} {'v3':>8} {'v1':>8} {'v2':>8} {'layout':>7} {'flex':>8} "
                 f"{'fa2':>8} {'cudnn':>8} {'x flex':>6} {'x fa2':>6} {'x cdnn':>6} {'TF/s':>6} ok")
    for r in RESULTS["prefill"]:
        if "ours_attn_ms" not in r:
            lines.append(f"{r['S']:>6} {r['density']:>5} error: {r.get('error', '')[:80]}")
            continue
        t = r["ours_attn_ms"]
        lines.append(f"{r['S']:>6} {r['density']:>5.2f} {r['kept_pairs_frac']:>6.3f} "
                     f"{fmt(max(r['flop_floor_ms'], r['byte_floor_ms']), 7)} {fmt(t)} {fmt(r.get('ours_attn_ms_v3'))} "
                     f"{fmt(r.get('ours_attn_ms_v1'))} "
                     f"{fmt(r.get('ours_attn_ms_v2'))} {fmt(r.get('ours_layout_ms'), 7)} "
                     f"{fmt(r.get('flex_ms'))} {fmt(r['sdpa_flash_ms'])} {fmt(r['sdpa_cudnn_ms'])} "
                     f"{fmt(r.get('flex_ms', float('nan')) / t, 6, 2)} {fmt(r['sdpa_flash_ms'] / t, 6, 2)} "
                     f"{fmt(r['sdpa_cudnn_ms'] / t, 6, 2)} {r['ours_tflops']:6.0f} {r['ok']}")
    lines.append("")
    lines.append("DECODE (B=8 Hq=32 Hkv=8 D=128 bf16; spans + 4 sinks + 64 window) times in ms")
    lines.append("ours = default split count (about 1 CTA per SM); w2, w4, w8 = about 2, 4, 8 CTAs per SM, fewer "
                 "where the clusters would not all fit at once; timed with do_bench (L2 flushed by zeroing 256 MB)")
    lines.append("sum = torch's sum over the same bytes (a read-only kernel with no list or merge); %sum = sum / ours")
    lines.append(f"{'T':>7} {'cover':>5} {'MB':>7} {'floor':>7} {'ours':>7} {'w2':>7} {'w4':>7} {'w8':>7} {'GB/s':>6} "
                 f"{'%copy':>6} {'sum':>7} {'%sum':>5} {'d.ours':>7} {'d.fa2':>7} {'d.cdnn':>7} {'d.eff':>7} {'x dense':>7} ok")
    for r in RESULTS["decode"]:
        if "ours_ms" not in r:
            lines.append(f"{r['T']:>7} {r['cover']:>5} error: {r.get('error', '')[:80]}")
            continue
        lines.append(f"{r['T']:>7} {r['cover']:>5.2f} {r['bytes_read_MB']:>7.1f} {fmt(r['byte_floor_ms'], 7)} "
                     f"{fmt(r['ours_ms'], 7)} {fmt(r.get('ours_ms_waves2'), 7)} {fmt(r.get('ours_ms_waves4'), 7)} "
                     f"{fmt(r.get('ours_ms_waves8'), 7)} {r['ours_read_GBps']:>6.0f} {100 * r['bw_frac_of_copy']:>5.0f}% "
                     f"{fmt(r.get('sum_same_ms'), 7)} {100 * r.get('sum_same_ms', float('nan')) / r['ours_ms']:>4.0f}% "
                     f"{fmt(r['dense_ours_dense_ms'], 7)} {fmt(r['dense_sdpa_flash_ms'], 7)} "
                     f"{fmt(r['dense_sdpa_cudnn_ms'], 7)} {fmt(r['dense_sdpa_efficient_ms'], 7)} "
                     f"{r['speedup_vs_best_dense']:>7.2f} {r['ok']}")
    lines.append("")
    lines.append("DECODE, the same calls timed after a read-only L2 flush (bench_clean_l2: reading 256 MB leaves no "
                 "dirty lines for the timed call to write back)")
    lines.append(f"{'T':>7} {'cover':>5} {'MB':>7} {'ours':>7} {'copy':>7} {'GB/s':>6} {'%copy':>6} {'sum':>7} {'%sum':>5} "
                 f"{'d.ours':>7} {'d.fa2':>7} {'d.cdnn':>7} {'x dense':>7}")
    for r in RESULTS["decode"]:
        if "ours_ms_clean_l2" not in r:
            continue
        lines.append(f"{r['T']:>7} {r['cover']:>5.2f} {r['bytes_read_MB']:>7.1f} {fmt(r['ours_ms_clean_l2'], 7)} "
                     f"{fmt(r['copy_read_same_ms_clean_l2'], 7)} "
                     f"{r['bytes_read_MB'] / r['ours_ms_clean_l2']:>6.0f} {100 * r['bw_frac_of_copy_clean_l2']:>5.0f}% "
                     f"{fmt(r.get('sum_same_ms_clean_l2'), 7)} "
                     f"{100 * r.get('sum_same_ms_clean_l2', float('nan')) / r['ours_ms_clean_l2']:>4.0f}% "
                     f"{fmt(r['dense_ours_dense_ms_clean_l2'], 7)} {fmt(r['dense_sdpa_flash_ms_clean_l2'], 7)} "
                     f"{fmt(r['dense_sdpa_cudnn_ms_clean_l2'], 7)} {r['speedup_vs_best_dense_clean_l2']:>7.2f}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-flex", action="store_true")
    p.add_argument("--only", default=None, help="prefill|decode")
    p.add_argument("--sizes", default=None, help="prefill lengths, comma-separated (default 4096,16384,32768)")
    a = p.parse_args()
    torch.manual_seed(0)
    copy_bw, mm = measure_ceilings()
    peak = {"copy": copy_bw, "mm": mm}
    RESULTS["env"] = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, copy_TBps=copy_bw / 1e12,
                          bf16_gemm_TFps=mm / 1e12, date=datetime.datetime.now().isoformat())
    print("env", json.dumps(RESULTS["env"]), flush=True)
    flex = None
    if not a.no_flex:
        try:
            from torch.nn.attention.flex_attention import flex_attention
            flex = torch.compile(flex_attention, dynamic=False)
        except Exception as e:  # noqa: BLE001
            print(f"flex unavailable: {e}")
    sizes = [4096] if a.quick else [4096, 16384, 32768]
    if a.sizes:
        sizes = [int(x) for x in a.sizes.split(",")]
    if a.only in (None, "prefill"):
        for S in sizes:
            run_prefill(S, [1.0, 0.25, 0.1], flex, peak)
            torch.cuda.empty_cache()
    if a.only in (None, "decode"):
        for T in ([32768] if a.quick else [32768, 131072]):
            run_decode(T, [0.1, 0.25, 0.5], peak)
            torch.cuda.empty_cache()
    t = table()
    RESULTS["table"] = t
    out = a.out or os.path.join(HERE, "..", "results",
                                f"kernels-{datetime.datetime.now().strftime('%Y%m%d-%H%M')}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(RESULTS, f, indent=1)
    print("\n" + t)
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
