"""What merely reading the decode benchmark's bytes costs on this GPU, next to SpanAttention decode and the copy.

  python3 bench/kernels/read_floor.py [--configs 32768:0.1,32768:0.25,131072:0.1] [--out FILE.json] [--trace]

For each decode configuration of run.py (B=8, Hq=32, Hkv=8, D=128 bf16, 8 spans + 4 sinks + 64-token window) it
times, in one process: SpanAttention decode; the device-to-device copy of the bytes it must read (the yardstick of
the decode bar; as a CUDA-graph replay like every other row, and as a plain call); torch's sum over those bytes;
and plain streaming readers of the same byte count (bench/kernels/read_floor.cu: each CTA reads its share
through shared-memory stages and does nothing with it) in several shapes: load path (cp.async as the decode kernel
uses, or the Hopper bulk copy), chunk size x stages, CTAs, and the L2 policy (evict-first or normal).

Times as in run.py: medians of do_bench over CUDA-graph replays (its flush zeroes 256 MB and leaves the L2 full of
dirty lines), and of replays after a read-only flush ("clean"). "% copy" = read rate over the copy's read+write
rate on the same bytes (t_copy / 2t), the decode bar's measure. The readers are the floor for any kernel that
must read these bytes: what separates the decode kernel from the best of them is its own overhead.
"""
import argparse
import ctypes
import datetime
import json
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "kernels", "test"))
import apcuda as ap  # noqa: E402
from run import (TRACE_QUANTILES, admitted_tokens, bench, bench_clean_l2, enqueue_warm_then_flush,  # noqa: E402
                 spans_cover, trace_quantiles)

SRC = os.path.join(HERE, "read_floor.cu")
LIB = os.path.join(ROOT, "kernels", "build", "bench", "libread_floor.so")
CHUNK_ALIGN = 32768


def load_lib():
    if not os.path.exists(LIB) or os.path.getmtime(LIB) < os.path.getmtime(SRC):
        os.makedirs(os.path.dirname(LIB), exist_ok=True)
        subprocess.run([os.environ.get("NVCC", "nvcc"), "-gencode=arch=compute_90a,code=sm_90a", "-std=c++17", "-O3",
                        "-shared", "-Xcompiler", "-fPIC", "-cudart", "static", "-I", os.path.join(ROOT, "kernels", "cuda"),
                        SRC, "-o", LIB], check=True)
    lib = ctypes.CDLL(LIB)
    lib.rf_read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_longlong, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                            ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def readers(nsm):
    """(name, bulk, chunk bytes, stages, CTAs, evict_first, two_streams): the decode kernel's shape first, then
    variations; two_streams: each chunk reads half its bytes from each half of the buffer, as a decode tile reads
    its K rows and its V rows"""
    return [
        ("cp.async 32K x3, 128 CTAs, evict-first", 0, 32768, 3, 128, 1, 0),
        ("cp.async 32K x3, 128 CTAs, evict-first, 2 streams", 0, 32768, 3, 128, 1, 1),
        ("cp.async 32K x3, 256 CTAs, evict-first, 2 streams", 0, 32768, 3, 256, 1, 1),
        ("cp.async 32K x3, 128 CTAs, normal", 0, 32768, 3, 128, 0, 0),
        (f"cp.async 32K x3, {nsm} CTAs, evict-first", 0, 32768, 3, nsm, 1, 0),
        (f"cp.async 32K x2, {nsm} CTAs, evict-first", 0, 32768, 2, nsm, 1, 0),
        (f"cp.async 32K x4, {nsm} CTAs, evict-first", 0, 32768, 4, nsm, 1, 0),
        (f"cp.async 16K x3, {2 * nsm} CTAs, evict-first", 0, 16384, 3, 2 * nsm, 1, 0),
        (f"bulk 32K x4, {nsm} CTAs, evict-first", 1, 32768, 4, nsm, 1, 0),
        (f"bulk 32K x4, {nsm} CTAs, normal", 1, 32768, 4, nsm, 0, 0),
        (f"bulk 16K x8, {nsm} CTAs, evict-first", 1, 16384, 8, nsm, 1, 0),
        (f"bulk 32K x3, {2 * nsm} CTAs, evict-first", 1, 32768, 3, 2 * nsm, 1, 0),
    ]


def print_trace(lib, src, nb, sink_words, stream):
    """the first reader's per-CTA timeline (entry, first chunk landed, loop end), as inside do_bench"""
    name, bulk, chunk, stages, ctas, ef, two = readers(0)[0]
    tr = torch.zeros(ctas, 3, dtype=torch.int64, device="cuda")
    read = lambda buf=None: lib.rf_read(bulk, src.data_ptr(), nb, chunk, stages, ctas, ef, two,  # noqa: E731
                                        sink_words.data_ptr(), buf, stream())
    enqueue_warm_then_flush(read)
    read(tr.data_ptr())
    torch.cuda.synchronize()
    t = (tr.cpu() - tr[:, 0].min().cpu()).double() / 1e3
    print(f"trace of '{name}', us from the first entry ({TRACE_QUANTILES}):")
    for i, point in enumerate(("entry", "first chunk", "loop end")):
        print(f"  {point:>11}: {trace_quantiles(t[:, i])}")
    print(f"  {'loop':>11}: {trace_quantiles(t[:, 2] - t[:, 1])}")


def timed(fn):
    return bench(fn), bench_clean_l2(fn)


def run_config(lib, T, cover, nsm, trace):
    B, Hq, Hkv, D, sink, W = 8, 32, 8, 128, 4, 64
    q = torch.randn(B, Hq, 1, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, Hkv, T, D, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(B, Hkv, T, D, device="cuda", dtype=torch.bfloat16)
    sp_cpu = spans_cover(B, T, cover)
    sp = sp_cpu.cuda()
    out = torch.empty(B, Hq, 1, D, device="cuda", dtype=torch.bfloat16)
    ws = torch.empty(1 << 20, dtype=torch.uint8, device="cuda")
    nbytes = B * Hkv * admitted_tokens(T, sp_cpu, sink, W) * 2 * D * 2
    src = torch.randint(0, 255, (nbytes,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    sink_words = torch.empty(2 * nsm * 128, dtype=torch.int32, device="cuda")
    stream = lambda: ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)  # noqa: E731

    rows = []
    copy, copy_clean = timed(lambda: dst.copy_(src))

    def add(name, ms, ms_clean, nb=nbytes):
        rows.append(dict(T=T, cover=cover, what=name, bytes=nb, ms=ms, ms_clean_l2=ms_clean,
                         pct_copy=100 * copy * nb / nbytes / (2 * ms), pct_copy_clean_l2=100 * copy_clean * nb / nbytes / (2 * ms_clean)))

    add("copy (graph replay): the yardstick", copy, copy_clean)
    add("copy (plain call)", bench(lambda: dst.copy_(src), graph=False), float("nan"))
    add("SpanAttention decode (ours)", *timed(lambda: ap.span(q, k, v, sp, causal=1, sink_tokens=sink, local_window=W,
                                                               out=out, ws=ws)))
    srch = src.view(torch.bfloat16)
    add("torch sum", *timed(lambda: srch.sum()))
    for name, bulk, chunk, stages, ctas, ef, two in readers(nsm):
        nb = nbytes // CHUNK_ALIGN * CHUNK_ALIGN  # whole chunks; at most 32 KB less than the call reads

        def call(bulk=bulk, chunk=chunk, stages=stages, ctas=ctas, ef=ef, two=two, nb=nb):
            e = lib.rf_read(bulk, src.data_ptr(), nb, chunk, stages, ctas, ef, two, sink_words.data_ptr(), None, stream())
            if e:
                raise RuntimeError(f"rf_read: cudaError {e}")

        add(name, *timed(call), nb=nb)
    if trace:
        print_trace(lib, src, nbytes // CHUNK_ALIGN * CHUNK_ALIGN, sink_words, stream)
    one = torch.zeros(1, device="cuda")
    add("one tiny kernel (the timing's floor)", *timed(lambda: one.add_(1.0)), nb=nbytes)
    rows[-1]["pct_copy"] = rows[-1]["pct_copy_clean_l2"] = float("nan")
    return rows


def table(rows):
    lines = [f"{'T':>7} {'cover':>5} {'what':<52} {'MB':>7} {'ms':>7} {'%copy':>6} {'clean ms':>8} {'%copy':>6}"]
    for r in rows:
        lines.append(f"{r['T']:>7} {r['cover']:>5} {r['what']:<52} {r['bytes'] / 1e6:>7.1f} {r['ms']:>7.4f} "
                     f"{r['pct_copy']:>5.0f}% {r['ms_clean_l2']:>8.4f} {r['pct_copy_clean_l2']:>5.0f}%")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--configs", default="32768:0.1,32768:0.25,131072:0.1", help="T:cover,...")
    p.add_argument("--out", default=None)
    p.add_argument("--trace", action="store_true", help="also print the first reader's per-CTA timeline")
    a = p.parse_args()
    torch.manual_seed(0)
    lib = load_lib()
    nsm = torch.cuda.get_device_properties(0).multi_processor_count
    rows = []
    for cfg in a.configs.split(","):
        T, cover = cfg.split(":")
        cfg_rows = run_config(lib, int(T), float(cover), nsm, a.trace)
        print(table(cfg_rows), flush=True)
        rows += cfg_rows
    text = table(rows)
    out = a.out or os.path.join(ROOT, "bench", "results", f"read-floor-{datetime.date.today().isoformat()}.json")
    with open(out, "w") as f:
        json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows, table=text), f, indent=1)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
