#!/usr/bin/python3
"""Oracle for train/losses.c: MASA's UnbiasedContrastLoss and mmdet's MarginL2Loss (hard mining),
written from masa-spec 4.3 / 4.4 in float64 torch; gradients by autograd.

Usage: oracle_losses.py OUT.h5
"""
import sys

import h5py
import numpy as np
import torch

F32_EPS = float(np.finfo(np.float32).eps)


def unbiased_contrast(key, ref, target):
    S = key @ ref.t()
    total = key.new_zeros(())
    valid = 0
    for i in range(S.shape[0]):
        pos = target[i] > 0.5
        if pos.sum() == 0:
            continue
        valid += 1
        s = S[i] - S[i].max().detach()
        npos = pos.sum()
        denom = torch.exp(s[pos]).sum() / npos + torch.exp(s[~pos]).sum()
        total = total - (s[pos] - torch.log(denom)).sum() / npos
    return total / (valid + F32_EPS)


def margin_l2(key, ref, target, neg_margin=0.1, pos_margin=0.0, neg_pos_ub=3.0):
    C = torch.nn.functional.normalize(key, dim=1) @ torch.nn.functional.normalize(ref, dim=1).t()
    t = target.clone()
    pos = t == 1
    neg = t == 0
    pred = C.clone()
    if pos_margin > 0:
        pred = torch.where(pos, pred - pos_margin, pred)
    if neg_margin > 0:
        pred = torch.where(neg, pred - neg_margin, pred)
    pred = torch.clamp(pred, 0, 1)
    w = torch.ones_like(t)
    num_pos = int(pos.sum())
    num_neg = int(neg.sum())
    if neg_pos_ub > 0 and num_neg / (num_pos + 1e-6) > neg_pos_ub:
        keep = int(num_pos * neg_pos_ub)
        idx = torch.nonzero(neg.flatten()).flatten()
        cost = (pred.detach().flatten()[idx] - 0) ** 2
        # Hardest first; ties to the lower flat index (stable), as losses.c documents.
        order = sorted(range(len(idx)), key=lambda k: (-float(cost[k]), int(idx[k])))
        chosen = idx[order[:keep]] if keep > 0 else idx[:0]
        wf = w.flatten().clone()
        wf[idx] = 0
        wf[chosen] = 1
        w = wf.view_as(t)
    avg = int((w > 0).sum())
    return ((pred - t) ** 2 * w).sum() / (avg + F32_EPS)


def make_case(g, nk, nr, d, npos_per_row, empty_rows):
    key = torch.randn(nk, d, generator=g, dtype=torch.float64)
    ref = torch.randn(nr, d, generator=g, dtype=torch.float64)
    target = torch.zeros(nk, nr, dtype=torch.float64)
    for i in range(nk):
        if i in empty_rows:
            continue
        cols = torch.randperm(nr, generator=g)[:npos_per_row]
        target[i, cols] = 1
        # Make positives similar so the cosine is above the margin for some of them.
        ref[cols] = ref[cols] * 0.3 + key[i] * 0.7
    # Quantise to float32 so both sides see the same inputs.
    return key.float().double(), ref.float().double(), target


def main():
    out = sys.argv[1]
    g = torch.Generator().manual_seed(20240601)
    cases = [
        ("small", 5, 9, 8, 1, []),
        ("multi_pos", 6, 12, 16, 2, [2]),  # one key row without positives (dropped)
        ("mining", 8, 40, 32, 1, []),       # 8 pos vs 312 neg: hard mining keeps 24 negatives
        ("no_mining", 4, 6, 8, 2, []),      # 8 pos, 16 neg <= 3x: every negative kept
        ("all_empty", 3, 5, 8, 0, [0, 1, 2]),
        ("wide", 16, 128, 64, 1, [5]),
    ]
    with h5py.File(out, "w") as f:
        f.attrs["cases"] = ",".join(c[0] for c in cases)
        for name, nk, nr, d, npos, empty in cases:
            key, ref, target = make_case(g, nk, nr, d, npos, set(empty))
            for fn, tag in ((unbiased_contrast, "contrast"), (margin_l2, "margin")):
                k = key.clone().requires_grad_()
                r = ref.clone().requires_grad_()
                loss = fn(k, r, target)
                if loss.requires_grad:
                    loss.backward()
                    dk, dr = k.grad, r.grad
                else:
                    dk, dr = torch.zeros_like(key), torch.zeros_like(ref)
                f[f"{name}/{tag}/loss"] = np.array([float(loss)], dtype=np.float32)
                f[f"{name}/{tag}/dkey"] = dk.numpy().astype(np.float32)
                f[f"{name}/{tag}/dref"] = dr.numpy().astype(np.float32)
            f[f"{name}/key"] = key.numpy().astype(np.float32)
            f[f"{name}/ref"] = ref.numpy().astype(np.float32)
            f[f"{name}/target"] = target.numpy().astype(np.float32)


if __name__ == "__main__":
    main()
