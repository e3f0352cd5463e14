"""SpanAttention decode, one configuration at a time, for a profiler (Nsight Compute) or a quick timing.

  python3 bench/kernels/decode_profile.py [--T 32768] [--cover 0.1] [--waves 1] [--calls 3] [--time]
                                          [--trace] [--trace-out FILE.json]

Builds the benchmark's decode inputs (B=8, Hq=32, Hkv=8, D=128, bf16, spans covering --cover of the context,
4 sinks, 64-token window), checks the output against the float64 reference on sequence 0, then makes --calls
plain calls (what a profiler records). With --time it also prints the CUDA-graph median of the call, of a
device-to-device copy of the bytes the call must read and of torch's sum over them (a read-only kernel), with
do_bench's flush and after a read-only one. With --trace, the decode kernel's per-CTA timeline of one call, enqueued
behind 2000 calls and do_bench's flush so that it runs in the state of a timed call (global
timer at entry, intervals staged, bitmap built, set bits counted, list built, first tile landed, loop end, warp
partials stored, merged), summarised; --trace-out also saves the raw rows (9 times in ns, SM, tiles per CTA).
"""
import json
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "kernels", "test"))
import apcuda as ap  # noqa: E402
import reference as ref  # noqa: E402
from run import (TRACE_QUANTILES, admitted_tokens, bench, bench_clean_l2, enqueue_warm_then_flush, rel,  # noqa: E402
                 spans_cover, trace_quantiles)


POINTS = ("entry", "staged", "bitmap", "counted", "listed", "first tile", "loop end", "partials", "merged")


def print_trace(call, max_ctas, out_path):
    tr = torch.zeros(max_ctas, 16, dtype=torch.int64, device="cuda")
    enqueue_warm_then_flush(call)
    ap.span_trace_buffer(tr)
    call()
    torch.cuda.synchronize()
    ap.span_trace_buffer(None)
    tr = tr[tr[:, 0] != 0].cpu()
    if out_path:
        with open(out_path, "w") as f:
            json.dump(tr[:, :11].tolist(), f)
    n = len(POINTS)
    t = (tr[:, :n] - tr[:, 0].min()).double() / 1e3  # us from the first CTA's entry
    print(f"trace: {tr.shape[0]} CTAs on {len(set(tr[:, n].tolist()))} SMs, tiles per CTA "
          f"min {int(tr[:, n + 1].min())} max {int(tr[:, n + 1].max())}; us from the first entry ({TRACE_QUANTILES}):")
    for i, name in enumerate(POINTS):
        print(f"  {name:>10}: {trace_quantiles(t[:, i])}")
    for i in range(1, n):
        print(f"  {POINTS[i - 1]:>10} -> {POINTS[i]:<10}: {trace_quantiles(t[:, i] - t[:, i - 1])}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--T", type=int, default=32768)
    p.add_argument("--cover", type=float, default=0.1)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--time", action="store_true")
    p.add_argument("--trace", action="store_true")
    p.add_argument("--trace-out", default=None)
    p.add_argument("--waves", type=int, default=1, help="decode CTAs per multiprocessor the split aims at")
    a = p.parse_args()
    B, Hq, Hkv, D, T = 8, 32, 8, 128, a.T
    sink, W = 4, 64
    torch.manual_seed(0)
    ap.set_span_split_waves(a.waves)
    q = torch.randn(B, Hq, 1, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, Hkv, T, D, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(B, Hkv, T, D, device="cuda", dtype=torch.bfloat16)
    sp_cpu = spans_cover(B, T, a.cover)
    sp = sp_cpu.cuda()
    ws = torch.empty(1 << 26, dtype=torch.uint8, device="cuda")
    out = torch.full((B, Hq, 1, D), float("nan"), device="cuda", dtype=torch.bfloat16)
    call = lambda: ap.span(q, k, v, sp, causal=1, sink_tokens=sink, local_window=W, out=out, ws=ws)  # noqa: E731
    call()
    r = ref.span(q[:1], k[:1], v[:1], sp[:1], None, causal=1, sink_tokens=sink, local_window=W)
    err = rel(out[:1], r)
    print(f"T={T} cover={a.cover} waves={a.waves} err_vs_f64_b0={err:.2e} nan={bool(torch.isnan(out).any())}", flush=True)
    torch.cuda.synchronize()
    for _ in range(a.calls):
        call()
    torch.cuda.synchronize()
    if a.trace:
        print_trace(call, B * Hkv * 16, a.trace_out)
    if a.time:
        nbytes = B * Hkv * admitted_tokens(T, sp_cpu, sink, W) * 2 * D * 2
        t = bench(call)
        s2 = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        d2 = torch.empty_like(s2)
        tc = bench(lambda: d2.copy_(s2))
        one = torch.zeros(1, device="cuda")
        t0 = bench(lambda: one.add_(1.0))  # the timing's floor: one tiny kernel
        # a second call on other K/V in the same graph: its cost without the launch and the flushed start
        k2, v2 = torch.randn_like(k), torch.randn_like(v)
        call2 = lambda: ap.span(q, k2, v2, sp, causal=1, sink_tokens=sink, local_window=W, out=out, ws=ws)  # noqa: E731
        t2 = bench(lambda: (call(), call2()))
        tcc = bench(lambda: (d2.copy_(s2), call()))
        print(f"  two calls {t2:.4f}ms (second +{t2 - t:.4f}); copy then call {tcc:.4f}ms (call +{tcc - tc:.4f})")
        tcl, tccl = bench_clean_l2(call), bench_clean_l2(lambda: d2.copy_(s2))
        s2h = s2.view(torch.bfloat16)
        tsum, tsumcl = bench(lambda: s2h.sum()), bench_clean_l2(lambda: s2h.sum())
        print(f"  read-only floor (sum of the same bytes): {tsum:.4f}ms, clean L2 {tsumcl:.4f}ms")
        print(f"  clean L2: ours {tcl:.4f}ms copy {tccl:.4f}ms frac_of_copy={nbytes / tcl / (2 * nbytes / tccl):.2f}")
        print(f"T={T} cover={a.cover} bytes={nbytes / 1e6:.1f}MB ours={t:.4f}ms read={nbytes / t / 1e9:.2f}TB/s "
              f"copy={tc:.4f}ms copy_rw={2 * nbytes / tc / 1e9:.2f}TB/s frac_of_copy={nbytes / t / (2 * nbytes / tc):.2f} "
              f"tiny_kernel={t0:.4f}ms",
              flush=True)


if __name__ == "__main__":
    main()
