"""Debug aid for the AST layout builder: per-row selection state from the select kernel (ap_bsa_debug_buffer),
the block scores it saw (read back from the workspace), and a Python replay of the selection on those scores."""
import ctypes
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apcuda as ap  # noqa: E402
import reference as ref  # noqa: E402


def main():
    torch.manual_seed(0)
    B, H, S, D, bs, dens = 1, 1, 1000, 64, 64, 0.25
    q = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)
    nQB = nKB = -(-S // bs)
    dbg = torch.full((B * H * nQB * 8,), -7, dtype=torch.int32, device="cuda")
    L = ap.lib()
    L.ap_bsa_debug_buffer.argtypes = [ctypes.c_void_p]
    L.ap_bsa_debug_buffer(ctypes.c_void_p(dbg.data_ptr()))
    nbytes = ap.bsa_workspace_bytes(q, k, v, causal=1, block_size=bs, density=dens)
    ws = torch.zeros(nbytes, dtype=torch.uint8, device="cuda")
    L.ap_bsa_force_radix.argtypes = [ctypes.c_int]
    L.ap_bsa_force_radix(1)
    o, lay = ap.block_sparse(q, k, v, causal=1, block_size=bs, density=dens, want_layout=True, ws=ws)
    torch.cuda.synchronize()
    L.ap_bsa_force_radix(0)
    L.ap_bsa_debug_buffer(None)
    o2, lay2 = ap.block_sparse(q, k, v, causal=1, block_size=bs, density=dens, want_layout=True)
    torch.cuda.synchronize()
    print("sort-based layout == reference:", bool(torch.equal(lay2.bool(), ref.bsa_layout(q, k, causal=1, block_size=bs, density=dens)[0])))

    def al(x):
        return (x + 255) & ~255
    off_kp = al(B * H * nQB * D * 4)
    off_sc = al(off_kp + B * H * nKB * D * 4)
    sc = ws[off_sc:off_sc + B * H * nQB * nKB * 4].view(torch.float32).view(nQB, nKB).cpu()
    s_ref, _ = ref.bsa_scores(q, k, 0.0, bs)
    lay_r = ref.bsa_layout(q, k, causal=1, block_size=bs, density=dens)[0]
    d = dbg.view(-1, 8).cpu()
    print("row: nC nF M n keep_none keep_all U rem_ties | kernel kept | ref kept")
    for r in range(nQB):
        print(r, d[r].tolist(), int(lay[0, 0, r].sum()), int(lay_r[0, 0, r].sum()))
    r = 8
    print("scores row 8 kernel:", sc[r, :9].tolist())
    print("scores row 8 ref   :", s_ref[0, 0, r, :9].tolist())
    print("layout row 8 kernel:", lay[0, 0, r].tolist())
    print("layout row 8 ref   :", lay_r[0, 0, r].int().tolist())


if __name__ == "__main__":
    main()
