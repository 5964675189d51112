#!/usr/bin/python3
"""PyTorch side of `masa bench train`: one training step of the reference model
(tests/reference/masa_ref.py, same recipe) at the shapes `masa bench train` measured, on this
CPU with the same thread count. Prints one JSON object on stdout:

  step_ms       mean over --steps after --warmup: forward of both views (backbone + adapter, train
                mode), track head on the RoIs of both views, unbiased contrastive + margin L2
                losses, with --distill 1 the key view's RPN head and box head on --det-rois RoIs,
                backward, gradient clipping (35) and one optimizer step
  rss_peak_mb   the process's max RSS (getrusage)

The inputs are random tensors made once (no data loading: the C side reports its loader wait
apart). RoIs per pair: ground-truth boxes and jittered copies of them, --key-rois / --ref-rois of
them, identities shared between the views so every key RoI has positives. The distillation
losses are stand-ins with the shapes of the real ones (sigmoid cross-entropy and smooth L1 on the
RPN maps, cross-entropy and L1 on the box head): the cost is in the heads, not in the targets.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from reference.masa_ref import MasaRef, read_model_cfg  # noqa: E402


def contrast_loss(key, ref, target):
    """MASA UnbiasedContrastLoss (masa-spec 4.3), vectorised over rows."""
    s = key @ ref.t()
    s = s - s.max(dim=1, keepdim=True).values.detach()
    pos = target > 0.5
    npos = pos.sum(1)
    valid = npos > 0
    e = torch.exp(s)
    denom = (e * pos).sum(1) / npos.clamp(min=1) + (e * ~pos).sum(1)
    row = -((s - torch.log(denom)[:, None]) * pos).sum(1) / npos.clamp(min=1)
    return (row * valid).sum() / (valid.sum() + 1.1920929e-07)


def margin_l2_loss(key, ref, target, neg_margin=0.1, neg_pos_ub=3.0):
    """mmdet MarginL2Loss with hard mining (masa-spec 4.4), vectorised."""
    c = F.normalize(key, dim=1) @ F.normalize(ref, dim=1).t()
    pos, neg = target == 1, target == 0
    pred = torch.where(neg, c - neg_margin, c).clamp(0, 1)
    w = torch.ones_like(target)
    num_pos, num_neg = int(pos.sum()), int(neg.sum())
    if num_neg / (num_pos + 1e-6) > neg_pos_ub:
        keep = int(num_pos * neg_pos_ub)
        cost = torch.where(neg, pred.detach() ** 2, torch.full_like(pred, -1.0)).flatten()
        wf = torch.where(neg.flatten(), torch.zeros_like(cost), w.flatten())
        if keep > 0:
            wf[torch.topk(cost, keep).indices] = 1
        w = wf.view_as(target)
    return ((pred - target) ** 2 * w).sum() / ((w > 0).sum() + 1.1920929e-07)


def make_rois(g, n, count, size, gt_per_pair):
    """(n * count, 5) RoIs and (n * count) identities: GT boxes and jittered copies."""
    rois, ids = [], []
    for i in range(n):
        wh = 16 + torch.rand(gt_per_pair, 2, generator=g) * (size / 3)
        xy = torch.rand(gt_per_pair, 2, generator=g) * (size - wh)
        gt = torch.cat([xy, xy + wh], 1)
        which = torch.arange(count) % gt_per_pair
        b = gt[which] + torch.randn(count, 4, generator=g) * 0.1 * wh[which].repeat(1, 2)
        b = b.clamp(0, size - 1)
        b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2] + 2)
        rois.append(torch.cat([torch.full((count, 1), float(i)), b], 1))
        ids.append(which + 1000 * i)
    return torch.cat(rois), torch.cat(ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="effective recipe (masa config output)")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--key-rois", type=int, required=True, help="track RoIs per pair, key view")
    ap.add_argument("--ref-rois", type=int, required=True, help="track RoIs per pair, ref view")
    ap.add_argument("--det-rois", type=int, default=0, help="box-head RoIs per pair")
    ap.add_argument("--distill", type=int, default=0)
    ap.add_argument("--optim", default="sgd", choices=["sgd", "adamw"])
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = read_model_cfg(a.config)
    model = MasaRef(cfg).train()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "spatial_conv_offset" in name:
                p.zero_()
    params = [p for p in model.parameters() if p.requires_grad]
    if a.optim == "sgd":
        opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    n, S = a.batch, a.size
    imgs = [torch.randn(n, 3, S, S, generator=g) for _ in range(2)]
    nk, nr = max(a.key_rois, 1), max(a.ref_rois, 1)
    gt = max(1, nk // 9)
    key_rois, key_ids = make_rois(g, n, nk, S, gt)
    ref_rois, ref_ids = make_rois(g, n, nr, S, gt)
    det_rois, _ = make_rois(g, n, max(a.det_rois, 1), S, gt)
    det_labels = torch.randint(0, 2, (det_rois.shape[0],), generator=g)
    times = []
    for it in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        feats = [model.features(x) for x in imgs]
        ke = model.embed(feats[0], key_rois)
        re = model.embed(feats[1], ref_rois)
        loss = ke.new_zeros(())
        for i in range(n):
            k = ke[i * nk:(i + 1) * nk]
            r = re[i * nr:(i + 1) * nr]
            t = (key_ids[i * nk:(i + 1) * nk, None] == ref_ids[None, i * nr:(i + 1) * nr]).float()
            loss = loss + 0.25 / n * contrast_loss(k, r, t) + 1.0 / n * margin_l2_loss(k, r, t)
        if a.distill and hasattr(model, "rpn_head"):
            cls, reg = model.rpn_head(feats[0])
            for c, r in zip(cls, reg):
                loss = loss + F.binary_cross_entropy_with_logits(c, (c.detach() > 2).float())
                loss = loss + F.smooth_l1_loss(r, torch.zeros_like(r), beta=1.0 / 9)
            if hasattr(model, "roi_head") and a.det_rois > 0:
                dc, dr = model.roi_head(feats[0], det_rois)
                loss = loss + F.cross_entropy(dc, det_labels) + F.l1_loss(dr, torch.zeros_like(dr))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 35.0)
        opt.step()
        dt = time.perf_counter() - t0
        if it >= a.warmup:
            times.append(1e3 * dt)
        del feats, ke, re, loss
    print(json.dumps({"step_ms": sum(times) / len(times),
                      "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}))


if __name__ == "__main__":
    main()
