"""Float64 reference of kernels/OPERATORS.md (torch; runs on CPU or GPU).

Every function takes Q [B,Hq,S,D], K [B,Hkv,T,D], V [B,Hkv,T,Dv] (any float dtype; computed in float64),
an optional additive mask broadcastable to [B,Hq,S,T] (None, a scalar or [1] means no mask) and returns O in
float64. Helpers return the intermediate decisions (AST layout, ATT levels) so tests can compare them.
"""
import math

import torch

NEG = float("-inf")


def _prep(q, k, v, mask, scale):
    q, k, v = q.double(), k.double(), v.double()
    B, Hq, S, D = q.shape
    Hkv, T = k.shape[1], k.shape[2]
    if scale == 0:
        scale = 1.0 / math.sqrt(D)
    if mask is not None and (mask.dim() == 0 or (mask.dim() == 1 and mask.numel() == 1)):
        mask = None
    if mask is not None:
        mask = mask.double().expand(B, Hq, S, T)
    return q, k, v, mask, float(scale), B, Hq, Hkv, S, T, D


def positions(S, T, device):
    return torch.arange(S, device=device) + (T - S)  # p(i)


def _expand_kv(x, G):
    return x.repeat_interleave(G, dim=1)


def attend(logits, admit, values):
    """softmax over admitted entries of logits [..., S, N]; values [..., N, Dv]; empty rows -> 0."""
    l = torch.where(admit, logits, torch.full_like(logits, NEG))
    m = l.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = torch.exp(l - m)
    p = torch.where(admit, p, torch.zeros_like(p))
    den = p.sum(-1, keepdim=True)
    out = p @ values
    return torch.where(den > 0, out / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(out))


def dense(q, k, v, mask=None, scale=0.0, causal=0):
    q, k, v, mask, scale, B, Hq, Hkv, S, T, D = _prep(q, k, v, mask, scale)
    G = Hq // Hkv
    l = scale * q @ _expand_kv(k, G).transpose(-1, -2)
    if mask is not None:
        l = l + mask
    adm = torch.ones(S, T, dtype=torch.bool, device=q.device)
    if causal:
        adm = torch.arange(T, device=q.device)[None, :] <= positions(S, T, q.device)[:, None]
    adm = adm.expand(B, Hq, S, T)
    return attend(l, adm, _expand_kv(v, G))


# ------------------------------------------------------------------------------------------------ AST
def _block_means(x, bs):
    B, H, L, D = x.shape
    n = -(-L // bs)
    pad = n * bs - L
    xp = torch.nn.functional.pad(x, (0, 0, 0, pad))
    s = xp.view(B, H, n, bs, D).sum(3)
    cnt = torch.full((n,), float(bs), dtype=x.dtype, device=x.device)
    cnt[-1] = L - (n - 1) * bs
    return s / cnt[None, None, :, None], cnt


def bsa_structure(S, T, bs, causal, sink, local, device):
    """candidates C [nQB, nKB] and forced F [nQB, nKB] (bool)."""
    nQB, nKB = -(-S // bs), -(-T // bs)
    qb = torch.arange(nQB, device=device)
    kb = torch.arange(nKB, device=device)
    plast = (T - S) + torch.clamp((qb + 1) * bs, max=S) - 1
    kd = torch.clamp(torch.div(plast, bs, rounding_mode="floor"), max=nKB - 1)
    if causal:
        C = (kb[None, :] * bs) <= plast[:, None]
    else:
        C = torch.ones(nQB, nKB, dtype=torch.bool, device=device)
    F = C & ((kb[None, :] < sink) | ((kb[None, :] > (kd[:, None] - local)) & (kb[None, :] <= kd[:, None])))
    return C, F


def bsa_scores(q, k, scale, bs):
    q, k = q.double(), k.double()
    if scale == 0:
        scale = 1.0 / math.sqrt(q.shape[-1])
    G = q.shape[1] // k.shape[1]
    qm, _ = _block_means(q, bs)
    km, kcnt = _block_means(k, bs)
    return scale * qm @ _expand_kv(km, G).transpose(-1, -2), kcnt  # [B,Hq,nQB,nKB]


def bsa_layout(q, k, *, scale=0.0, causal=0, block_size=64, density=0.25, mass_threshold=0.0, sink_blocks=1,
               local_blocks=1):
    bs = block_size
    S, T = q.shape[2], k.shape[2]
    s, kcnt = bsa_scores(q, k, scale, bs)
    C, F = bsa_structure(S, T, bs, causal, sink_blocks, local_blocks, q.device)
    B, Hq, nQB, nKB = s.shape
    NF = C & ~F
    key = torch.where(NF, s, torch.full_like(s, NEG))
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices  # ties: lower kb first
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(nKB, device=q.device).expand_as(order))
    nC = C.sum(-1)  # [nQB]
    nF = F.sum(-1)
    if mass_threshold <= 0:
        d = torch.tensor(float(torch.tensor(density, dtype=torch.float32)), dtype=torch.float64)
        n = torch.clamp(torch.ceil(d * nC.double()).long() - nF, min=0)  # [nQB]
        keep = NF & (rank < n[None, None, :, None])
    else:
        thr = float(torch.tensor(mass_threshold, dtype=torch.float32))
        lw = torch.where(C, s + torch.log(kcnt)[None, None, None, :], torch.full_like(s, NEG))
        w = torch.softmax(lw, dim=-1)
        w = torch.where(C, w, torch.zeros_like(w))
        fmass = torch.where(F, w, torch.zeros_like(w)).sum(-1, keepdim=True)
        ws = torch.gather(torch.where(NF, w, torch.zeros_like(w)), -1, order)
        excl = fmass + torch.cumsum(ws, -1) - ws  # mass before adding sorted position k
        keep_sorted = excl < thr
        keep = torch.zeros_like(keep_sorted)
        keep.scatter_(-1, order, keep_sorted)
        keep = keep & NF
    return keep | F, s, C, F


def bsa_attention_given_layout(q, k, v, layout, mask=None, scale=0.0, causal=0, block_size=64):
    q, k, v, mask, scale, B, Hq, Hkv, S, T, D = _prep(q, k, v, mask, scale)
    G = Hq // Hkv
    bs = block_size
    l = scale * q @ _expand_kv(k, G).transpose(-1, -2)
    if mask is not None:
        l = l + mask
    qb = torch.arange(S, device=q.device) // bs
    kb = torch.arange(T, device=q.device) // bs
    lay = layout.bool()
    adm = lay[:, :, qb][:, :, :, kb]  # [B,Hq,S,T]
    if causal:
        adm = adm & (torch.arange(T, device=q.device)[None, :] <= positions(S, T, q.device)[:, None])
    return attend(l, adm, _expand_kv(v, G))


def block_sparse(q, k, v, mask=None, **kw):
    lay = bsa_layout(q, k, **{x: kw[x] for x in kw if x in (
        "scale", "causal", "block_size", "density", "mass_threshold", "sink_blocks", "local_blocks")})[0]
    return bsa_attention_given_layout(q, k, v, lay, mask, kw.get("scale", 0.0), kw.get("causal", 0),
                                      kw.get("block_size", 64)), lay


# ------------------------------------------------------------------------------------------------ Span
def span_admit(S, T, spans, *, causal, sink_tokens, local_window, B, device):
    """admitted [B, S, T] (shared by the heads)."""
    p = positions(S, T, device)
    j = torch.arange(T, device=device)
    base = (j[None, :] < sink_tokens) | ((p[:, None] - j[None, :]).abs() < local_window)  # [S,T]
    sp = spans.to(device).long().clamp(0, T)
    if sp.dim() == 3:  # [Bs, n, 2]
        st, en = sp[..., 0], sp[..., 1]  # [Bs, n]
        ins = ((j[None, None, :] >= st[..., None]) & (j[None, None, :] < en[..., None])).any(1)  # [Bs, T]
        ins = ins[:, None, :].expand(sp.shape[0], S, T)
    else:  # [Bs, S, n, 2]
        st, en = sp[..., 0], sp[..., 1]  # [Bs,S,n]
        ins = ((j[None, None, None, :] >= st[..., None]) & (j[None, None, None, :] < en[..., None])).any(2)
    adm = base[None] | ins
    if causal:
        adm = adm & (j[None, :] <= p[:, None])[None]
    return adm.expand(B, S, T)


def span(q, k, v, spans, mask=None, *, scale=0.0, causal=0, sink_tokens=4, local_window=64):
    q, k, v, mask, scale, B, Hq, Hkv, S, T, D = _prep(q, k, v, mask, scale)
    G = Hq // Hkv
    l = scale * q @ _expand_kv(k, G).transpose(-1, -2)
    if mask is not None:
        l = l + mask
    adm = span_admit(S, T, spans, causal=causal, sink_tokens=sink_tokens, local_window=local_window, B=B,
                     device=q.device)
    return attend(l, adm[:, None].expand(B, Hq, S, T), _expand_kv(v, G))


# ------------------------------------------------------------------------------------------------ ATT
def att_importance(q, k, scorer, scorer_w, scale):
    """block importance inputs: r(j) [B, Hkv, T]"""
    q, k = q.double(), k.double()
    B, Hkv, T, D = k.shape
    if scale == 0:
        scale = 1.0 / math.sqrt(D)
    if scorer == 0:
        return k.norm(dim=-1)
    if scorer == 2:
        return k @ scorer_w.double()
    Hq, S = q.shape[1], q.shape[2]
    G = Hq // Hkv
    Sp = min(S, 16)
    qq = q[:, :, S - Sp:, :].reshape(B, Hkv, G * Sp, D)
    pr = torch.softmax(scale * qq @ k.transpose(-1, -2), dim=-1)  # [B,Hkv,G*Sp,T]
    return pr.mean(2)


def att_levels(q, k, *, scale=0.0, block_size=64, fine_fraction=0.25, medium_fraction=0.25, sink_blocks=1,
               scorer=0, scorer_w=None, **_):
    bs = block_size
    r = att_importance(q, k, scorer, scorer_w, scale)
    B, Hkv, T = r.shape
    nKB = -(-T // bs)
    R, _ = _block_means(r[..., None], bs)
    R = R[..., 0]  # [B,Hkv,nKB]
    kbi = torch.arange(nKB, device=k.device)
    key = torch.where(kbi < sink_blocks, torch.full_like(R, NEG), R)
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(nKB, device=k.device).expand_as(order))
    ff = float(torch.tensor(fine_fraction, dtype=torch.float32))
    mf = float(torch.tensor(medium_fraction, dtype=torch.float32))
    nf = math.floor(ff * nKB + 0.5)
    nm = math.floor(mf * nKB + 0.5)
    lv = torch.where(rank < nf, 0, torch.where(rank < nf + nm, 1, 2))
    lv = torch.where(kbi < sink_blocks, torch.zeros_like(lv), lv)
    return lv, R


def att_given_levels(q, k, v, levels, mask=None, *, scale=0.0, causal=0, block_size=64, medium_tile=8,
                     local_blocks=1, **_):
    q, k, v, mask, scale, B, Hq, Hkv, S, T, D = _prep(q, k, v, mask, scale)
    G = Hq // Hkv
    bs = block_size
    nKB = -(-T // bs)
    dev = q.device
    p = positions(S, T, dev)
    ob = torch.clamp(torch.div(p, bs, rounding_mode="floor"), max=nKB - 1)  # [S]
    out = torch.empty(B, Hq, S, v.shape[-1], dtype=torch.float64, device=dev)
    j = torch.arange(T, device=dev)
    kbj = j // bs
    lvc = levels.cpu()
    for b in range(B):
        for g in range(Hkv):
            # tiles: token -> tile id
            tid = torch.empty(T, dtype=torch.long)
            tkb, tn, nt = [], [], 0
            for kb in range(nKB):
                j0, ln = kb * bs, min(bs, T - kb * bs)
                lv = int(lvc[b, g, kb])
                tl = 1 if lv == 0 else (medium_tile if lv == 1 else ln)
                for st in range(0, ln, tl):
                    n = min(tl, ln - st)
                    tid[j0 + st:j0 + st + n] = nt
                    tkb.append(kb)
                    tn.append(n)
                    nt += 1
            tid = tid.to(dev)
            tkb = torch.tensor(tkb, device=dev)
            tn = torch.tensor(tn, device=dev, dtype=torch.float64)
            kbar = torch.zeros(nt, D, dtype=torch.float64, device=dev).index_add_(0, tid, k[b, g]) / tn[:, None]
            vbar = torch.zeros(nt, v.shape[-1], dtype=torch.float64, device=dev).index_add_(0, tid, v[b, g]) / tn[:, None]
            qh = q[b, g * G:(g + 1) * G]  # [G,S,D]
            lt = scale * qh @ kbar.T + torch.log(tn)[None, None, :]  # [G,S,nt]
            le = scale * qh @ k[b, g].T  # [G,S,T]
            if mask is not None:
                mb = mask[b, g * G:(g + 1) * G]  # [G,S,T]
                mt_ = torch.full((G, S, nt), NEG, dtype=torch.float64, device=dev)
                mt_ = mt_.scatter_reduce(-1, tid.expand(G, S, T), mb, reduce="amax", include_self=True)
                lt = lt + mt_
                le = le + mb
            # validity
            exact_blk = (kbj[None, :] > (ob[:, None] - local_blocks)) & (kbj[None, :] <= ob[:, None])  # [S,T]
            ea = exact_blk
            if causal:
                ea = ea & (j[None, :] <= p[:, None])
                ta = tkb[None, :] <= (ob[:, None] - local_blocks)
            else:
                ta = ~((tkb[None, :] > (ob[:, None] - local_blocks)) & (tkb[None, :] <= ob[:, None]))
            logits = torch.cat([lt, le], -1)
            adm = torch.cat([ta, ea], -1)[None].expand(G, S, nt + T)
            vals = torch.cat([vbar, v[b, g]], 0)
            out[b, g * G:(g + 1) * G] = attend(logits, adm, vals)
    return out


def tiled(q, k, v, mask=None, scorer_w=None, **kw):
    lv, _ = att_levels(q, k, scorer_w=scorer_w, **kw)
    return att_given_levels(q, k, v, lv, mask, **kw), lv
