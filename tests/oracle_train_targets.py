#!/usr/bin/python3
"""Oracle for train/assign.c, train/det_targets.c and train/det_losses.c.

A Python transcription (written from mmdet's documented semantics, masa-spec §3/§4) of
  * bbox_overlaps (mode 'iou', eps 1e-6) and MaxIoUAssigner.assign_wrt_overlaps, float32 torch;
  * mmdet's AnchorGenerator (scales 8, ratios 0.5/1/2, flattened (y*W + x)*A + a, levels in order);
  * DeltaXYWH bbox2delta (float32);
  * the RPN and RoI-head losses with mmdet's avg_factor rules, in float64 with autograd.
Samplers are random: this script draws its own sample sets (any valid sets do) and writes them;
the C test builds targets and losses from exactly these index sets. The C samplers are tested by
properties in test_train_targets.c.

Usage: oracle_train_targets.py OUT.h5
"""
import math
import sys

import h5py
import numpy as np
import torch

F32_EPS = float(np.finfo(np.float32).eps)
I64 = np.int64


# ---------------------------------------------------------------- IoU and assignment
def bbox_overlaps(b1, b2, eps=1e-6):
    """mmdet bbox_overlaps(b1, b2, mode='iou', aligned=False), float32: (m, n)."""
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = torch.max(b1[:, None, :2], b2[None, :, :2])
    rb = torch.min(b1[:, None, 2:], b2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union


def max_iou_assign(boxes, gts, pos_iou_thr, neg_iou_thr, min_pos_iou, match_low_quality,
                   gt_max_assign_all=True):
    """MaxIoUAssigner.assign (ignore_iof_thr -1): (gt_inds int64, max_overlaps float32)."""
    num_gts, num_boxes = gts.shape[0], boxes.shape[0]
    if num_gts == 0 or num_boxes == 0:
        gt_inds = torch.full((num_boxes,), 0 if num_gts == 0 else -1, dtype=torch.long)
        return gt_inds, torch.zeros(num_boxes)
    overlaps = bbox_overlaps(gts, boxes)  # (num_gts, num_boxes)
    gt_inds = torch.full((num_boxes,), -1, dtype=torch.long)
    max_overlaps, argmax_overlaps = overlaps.max(dim=0)
    gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)
    gt_inds[(max_overlaps >= 0) & (max_overlaps < neg_iou_thr)] = 0
    pos = max_overlaps >= pos_iou_thr
    gt_inds[pos] = argmax_overlaps[pos] + 1
    if match_low_quality:
        for i in range(num_gts):
            if gt_max_overlaps[i] >= min_pos_iou:
                if gt_max_assign_all:
                    gt_inds[overlaps[i, :] == gt_max_overlaps[i]] = i + 1
                else:
                    gt_inds[gt_argmax_overlaps[i]] = i + 1
    return gt_inds, max_overlaps


CFGS = {
    "rpn": (0.7, 0.3, 0.3, True),
    "rcnn": (0.5, 0.5, 0.5, False),
    "track": (0.7, 0.3, 0.5, False),
}


# ---------------------------------------------------------------- anchors, coder
def anchors_level(stride, h, w):
    base = float(stride)
    ratios = torch.tensor([0.5, 1.0, 2.0])
    scales = torch.tensor([8.0])
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (base * w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (base * h_ratios[:, None] * scales[None, :]).view(-1)
    base_anchors = torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=-1)
    sx = torch.arange(0, w, dtype=torch.float32) * stride
    sy = torch.arange(0, h, dtype=torch.float32) * stride
    yy, xx = torch.meshgrid(sy, sx, indexing="ij")
    shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], dim=-1)
    return (base_anchors[None, :, :] + shifts[:, None, :]).view(-1, 4)


def all_anchors(strides, sizes):
    return torch.cat([anchors_level(s, h, w) for s, (h, w) in zip(strides, sizes)])


def bbox2delta(p, g, means, stds):
    p = p.float()
    g = g.float()
    px = (p[:, 0] + p[:, 2]) * 0.5
    py = (p[:, 1] + p[:, 3]) * 0.5
    pw = p[:, 2] - p[:, 0]
    ph = p[:, 3] - p[:, 1]
    gx = (g[:, 0] + g[:, 2]) * 0.5
    gy = (g[:, 1] + g[:, 3]) * 0.5
    gw = g[:, 2] - g[:, 0]
    gh = g[:, 3] - g[:, 1]
    d = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], -1)
    return (d - d.new_tensor(means)) / d.new_tensor(stds)


# ---------------------------------------------------------------- a sampler for the loss cases
def random_sample(gt_inds, num, pos_fraction, g):
    """RandomSampler (neg_pos_ub -1); any valid draw serves the loss comparison."""
    pos = torch.nonzero(gt_inds > 0).flatten()
    neg = torch.nonzero(gt_inds == 0).flatten()
    e = int(num * pos_fraction)
    if pos.numel() > e:
        pos = pos[torch.randperm(pos.numel(), generator=g)[:e]]
    pos = pos.unique()
    en = num - pos.numel()
    if neg.numel() > en:
        neg = neg[torch.randperm(neg.numel(), generator=g)[:en]]
    return pos, neg.unique()


# ---------------------------------------------------------------- losses (float64, autograd)
def smooth_l1(pred, target, beta):
    diff = torch.abs(pred - target)
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def l1(pred, target):
    return torch.abs(pred - target)


def box_boxes(gen, n, img_w, img_h, min_side=4.0, max_frac=0.5):
    x1 = torch.rand(n, generator=gen) * img_w * 0.9
    y1 = torch.rand(n, generator=gen) * img_h * 0.9
    w = min_side + torch.rand(n, generator=gen) * img_w * max_frac
    h = min_side + torch.rand(n, generator=gen) * img_h * max_frac
    b = torch.stack([x1, y1, torch.clamp(x1 + w, max=img_w), torch.clamp(y1 + h, max=img_h)], -1)
    return b.float()


def jitter(gen, gts, copies, scale, img_w, img_h):
    out = []
    for b in gts:
        cx, cy, w, h = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]
        n = torch.randn(copies, 4, generator=gen)
        ncx, ncy = cx + scale * w * n[:, 0], cy + scale * h * n[:, 1]
        nw, nh = w * torch.exp(scale * n[:, 2]), h * torch.exp(scale * n[:, 3])
        out.append(torch.stack([(ncx - nw / 2).clamp(0, img_w), (ncy - nh / 2).clamp(0, img_h),
                                (ncx + nw / 2).clamp(0, img_w), (ncy + nh / 2).clamp(0, img_h)], -1))
    return torch.cat(out).float() if out else torch.zeros(0, 4)


def write_assign_cases(f, gen):
    cases = {}
    # Random boxes with jittered copies of the GTs (positives, ignored and negatives).
    gts = box_boxes(gen, 9, 512, 512, 16, 0.4)
    boxes = torch.cat([box_boxes(gen, 250, 512, 512), jitter(gen, gts, 16, 0.15, 512, 512)])
    boxes = torch.cat([boxes, gts[3:4].clone()])
    cases["random"] = (boxes, gts)
    cases["no_gt"] = (box_boxes(gen, 50, 256, 256), torch.zeros(0, 4))
    g1 = box_boxes(gen, 1, 256, 256, 32, 0.4)
    cases["one_gt"] = (torch.cat([box_boxes(gen, 150, 256, 256), jitter(gen, g1, 50, 0.2, 256, 256)]), g1)
    # A GT far from every box (IoU 0 everywhere: never matched, even with low-quality matching).
    near = box_boxes(gen, 2, 200, 200, 32, 0.3)
    far = torch.tensor([[900.0, 900.0, 950.0, 960.0]])
    cases["far_gt"] = (torch.cat([box_boxes(gen, 80, 200, 200), jitter(gen, near, 10, 0.3, 200, 200)]),
                       torch.cat([near, far]).float())
    # Ties: two identical GTs (argmax takes the first), duplicated boxes (gt_max_assign_all
    # assigns every box that attains a GT's maximum; the later GT overwrites), boxes only
    # low-quality matched, and a box with IoU exactly 0.5 (>= makes it positive for the RoI head).
    tg = torch.tensor([[10.0, 10.0, 60.0, 60.0], [10.0, 10.0, 60.0, 60.0], [100.0, 100.0, 140.0, 180.0]])
    tb = torch.tensor([[12.0, 12.0, 62.0, 62.0], [12.0, 12.0, 62.0, 62.0], [100.0, 100.0, 150.0, 150.0],
                       [100.0, 100.0, 150.0, 150.0], [0.0, 0.0, 40.0, 40.0], [90.0, 130.0, 160.0, 200.0],
                       [300.0, 300.0, 310.0, 310.0], [100.0, 100.0, 140.0, 260.0]])
    cases["ties"] = (tb, tg)
    cases["no_boxes"] = (torch.zeros(0, 4), box_boxes(gen, 3, 128, 128))
    # Degenerate: zero-area boxes and a zero-area GT (union clamped to eps: IoU 0, not NaN).
    dg = torch.tensor([[20.0, 20.0, 20.0, 40.0], [50.0, 50.0, 90.0, 80.0]])
    db = torch.tensor([[20.0, 20.0, 20.0, 40.0], [5.0, 5.0, 5.0, 5.0], [50.0, 50.0, 90.0, 80.0],
                       [52.0, 50.0, 90.0, 80.0]])
    cases["degenerate"] = (db, dg)
    # Thousands: every anchor of a 512 x 640 input (strides 8..128), 15 GTs.
    strides = [8, 16, 32, 64, 128]
    sizes = [(math.ceil(512 / s), math.ceil(640 / s)) for s in strides]
    anchors = all_anchors(strides, sizes)
    f["anchors_big/strides"] = np.array(strides, dtype=I64)
    f["anchors_big/sizes"] = np.array(sizes, dtype=I64)
    f["anchors_big/anchors"] = anchors.numpy()
    cases["anchors"] = (anchors, box_boxes(gen, 15, 640, 512, 8, 0.5))

    f.attrs["assign_cases"] = ",".join(cases)
    for name, (boxes, gts) in cases.items():
        boxes = boxes.float().reshape(-1, 4)
        gts = gts.float().reshape(-1, 4)
        f[f"assign/{name}/boxes"] = boxes.numpy()
        f[f"assign/{name}/gts"] = gts.numpy()
        if gts.shape[0] and boxes.shape[0] and boxes.shape[0] <= 1000:
            f[f"assign/{name}/iou"] = bbox_overlaps(gts, boxes).numpy()
        for cname, cfg in CFGS.items():
            gi, mo = max_iou_assign(boxes, gts, *cfg)
            f[f"assign/{name}/{cname}/gt_inds"] = gi.numpy().astype(I64)
            f[f"assign/{name}/{cname}/max_overlaps"] = mo.float().numpy()


def write_rpn_case(f, gen):
    """Two images of a 64 x 96 input, strides 8/16/32; image 1 has no GT."""
    strides = [8, 16, 32]
    sizes = [(8, 12), (4, 6), (2, 3)]
    A = 3
    anchors = all_anchors(strides, sizes)
    f["rpn/strides"] = np.array(strides, dtype=I64)
    f["rpn/sizes"] = np.array(sizes, dtype=I64)
    f["rpn/anchors"] = anchors.numpy()
    gts_list = [torch.tensor([[5.0, 6.0, 60.0, 50.0], [40.0, 10.0, 95.0, 63.0], [10.0, 30.0, 30.0, 45.0]]),
                torch.zeros(0, 4)]
    n_img = len(gts_list)
    cls = [torch.randn(n_img, A, h, w, generator=gen, dtype=torch.float64) * 2 for h, w in sizes]
    reg = [torch.randn(n_img, 4 * A, h, w, generator=gen, dtype=torch.float64) * 0.5 for h, w in sizes]
    cls = [c.float().double().requires_grad_() for c in cls]
    reg = [r.float().double().requires_grad_() for r in reg]
    # (N, A, h, w) -> per image (h*w*A) in (y, x, a) order, levels concatenated: mmdet's flat order.
    flat_cls = [torch.cat([c[b].permute(1, 2, 0).reshape(-1) for c in cls]) for b in range(n_img)]
    flat_reg = [torch.cat([r[b].permute(1, 2, 0).reshape(-1, 4) for r in reg]) for b in range(n_img)]
    avg = 0.0
    per_img = []
    for b, gts in enumerate(gts_list):
        gi, _ = max_iou_assign(anchors, gts, *CFGS["rpn"])
        pos, neg = random_sample(gi, 256, 0.5, gen)
        pos_gt = gi[pos] - 1
        tgt = bbox2delta(anchors[pos], gts[pos_gt], [0.0] * 4, [1.0] * 4) if pos.numel() else torch.zeros(0, 4)
        avg += max(pos.numel(), 1) + max(neg.numel(), 1)
        per_img.append((gi, pos, neg, pos_gt, tgt))
        f[f"rpn/img{b}/gts"] = gts.float().numpy().reshape(-1, 4)
        f[f"rpn/img{b}/gt_inds"] = gi.numpy().astype(I64)
        f[f"rpn/img{b}/pos_inds"] = pos.numpy().astype(I64)
        f[f"rpn/img{b}/pos_gt"] = pos_gt.numpy().astype(I64)
        f[f"rpn/img{b}/neg_inds"] = neg.numpy().astype(I64)
        f[f"rpn/img{b}/targets"] = tgt.float().numpy().reshape(-1, 4)
    f["rpn/avg_factor"] = np.array([avg], dtype=np.float32)
    # Losses: the batch sums divided by (avg_factor + eps), as weight_reduce_loss does.
    loss_cls = 0
    for b, (gi, pos, neg, pos_gt, tgt) in enumerate(per_img):
        x = torch.cat([flat_cls[b][pos], flat_cls[b][neg]])
        t = torch.cat([torch.ones(pos.numel()), torch.zeros(neg.numel())]).double()
        loss_cls = loss_cls + torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="sum")
    loss_cls = loss_cls / (avg + F32_EPS)
    grads = torch.autograd.grad(loss_cls, cls)
    f["rpn/cls_loss"] = np.array([float(loss_cls)], dtype=np.float32)
    for l, c in enumerate(cls):
        f[f"rpn/cls{l}"] = c.detach().float().numpy()
        f[f"rpn/dcls{l}"] = grads[l].float().numpy()
        f[f"rpn/reg{l}"] = reg[l].detach().float().numpy()
    for kind in ("smoothl1", "l1"):
        loss = 0
        for b, (gi, pos, neg, pos_gt, tgt) in enumerate(per_img):
            p = flat_reg[b][pos]
            t = tgt.double()
            loss = loss + (smooth_l1(p, t, 1.0 / 9.0) if kind == "smoothl1" else l1(p, t)).sum()
        loss = loss / (avg + F32_EPS)
        grads = torch.autograd.grad(loss, reg)
        f[f"rpn/{kind}/loss"] = np.array([float(loss)], dtype=np.float32)
        for l in range(len(reg)):
            f[f"rpn/{kind}/dreg{l}"] = grads[l].float().numpy()


def write_rcnn_case(f, gen, name, num_classes, n_props, gts_list, labels_list):
    """RoI head targets and losses for a batch: MaxIoU 0.5, GTs prepended, RandomSampler 512/0.25."""
    stds = [0.1, 0.1, 0.2, 0.2]
    rows_cls, rows_reg, rows_lab, rows_tgt, n_pos = [], [], [], [], []
    total = 0
    for b, (gts, labels) in enumerate(zip(gts_list, labels_list)):
        props = torch.cat([box_boxes(gen, n_props[b], 320, 256), jitter(gen, gts, 30, 0.2, 320, 256)])
        gi, _ = max_iou_assign(props, gts, *CFGS["rcnn"])
        # add_gt_: the GTs become priors 0..G-1 assigned to themselves.
        priors = torch.cat([gts, props])
        gi = torch.cat([torch.arange(1, gts.shape[0] + 1), gi])
        pos, neg = random_sample(gi, 512, 0.25, gen)
        pos_gt = gi[pos] - 1
        k = pos.numel() + neg.numel()
        tgt = bbox2delta(priors[pos], gts[pos_gt], [0.0] * 4, stds) if pos.numel() else torch.zeros(0, 4)
        lab = torch.cat([labels[pos_gt], torch.full((neg.numel(),), num_classes, dtype=torch.long)])
        pre = f"rcnn_{name}/img{b}"
        f[f"{pre}/gts"] = gts.float().numpy().reshape(-1, 4)
        f[f"{pre}/gt_labels"] = labels.numpy().astype(I64)
        f[f"{pre}/proposals"] = props.float().numpy().reshape(-1, 4)
        f[f"{pre}/gt_inds"] = gi.numpy().astype(I64)  # after add_gt_
        f[f"{pre}/pos_inds"] = pos.numpy().astype(I64)
        f[f"{pre}/pos_gt"] = pos_gt.numpy().astype(I64)
        f[f"{pre}/neg_inds"] = neg.numpy().astype(I64)
        f[f"{pre}/targets"] = tgt.float().numpy().reshape(-1, 4)
        f[f"{pre}/labels"] = lab.numpy().astype(I64)
        cls = (torch.randn(k, num_classes + 1, generator=gen) * 2).double().requires_grad_()
        reg = (torch.randn(k, 4, generator=gen) * 0.7).double().requires_grad_()
        rows_cls.append(cls), rows_reg.append(reg), rows_lab.append(lab), rows_tgt.append(tgt.double())
        n_pos.append(pos.numel())
        total += k
    f.attrs[f"rcnn_{name}_images"] = len(gts_list)
    cls_avg = max(float(total), 1.0)  # label_weights > 0 over the batch
    bbox_avg = float(total)           # bbox_targets.size(0)
    f[f"rcnn_{name}/avg_factors"] = np.array([cls_avg, bbox_avg], dtype=np.float32)
    z = torch.cat(rows_cls)
    lab = torch.cat(rows_lab)
    loss_cls = torch.nn.functional.cross_entropy(z, lab, reduction="sum") / (cls_avg + F32_EPS)
    dcls = torch.autograd.grad(loss_cls, rows_cls)
    f[f"rcnn_{name}/cls_loss"] = np.array([float(loss_cls)], dtype=np.float32)
    for kind in ("l1", "smoothl1"):
        loss = 0
        for reg, tgt, npos in zip(rows_reg, rows_tgt, n_pos):
            p = reg[:npos]
            loss = loss + (l1(p, tgt) if kind == "l1" else smooth_l1(p, tgt, 1.0 / 9.0)).sum()
        loss = loss / (bbox_avg + F32_EPS)
        dreg = torch.autograd.grad(loss, rows_reg, allow_unused=True)
        f[f"rcnn_{name}/{kind}/loss"] = np.array([float(loss)], dtype=np.float32)
        for b, d in enumerate(dreg):
            d = torch.zeros_like(rows_reg[b]) if d is None else d
            f[f"rcnn_{name}/img{b}/{kind}/dreg"] = d.float().numpy()
    for b in range(len(gts_list)):
        f[f"rcnn_{name}/img{b}/cls"] = rows_cls[b].detach().float().numpy()
        f[f"rcnn_{name}/img{b}/reg"] = rows_reg[b].detach().float().numpy()
        f[f"rcnn_{name}/img{b}/dcls"] = dcls[b].float().numpy()


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(20240607)
    with h5py.File(out, "w") as f:
        write_assign_cases(f, gen)
        write_rpn_case(f, gen)
        g0 = box_boxes(gen, 4, 320, 256, 16, 0.4)
        g1 = box_boxes(gen, 1, 320, 256, 16, 0.4)
        write_rcnn_case(f, gen, "agnostic", 1, [300, 40, 60],
                        [g0, g1, torch.zeros(0, 4)],
                        [torch.zeros(4, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                         torch.zeros(0, dtype=torch.long)])
        g2 = box_boxes(gen, 5, 320, 256, 16, 0.4)
        write_rcnn_case(f, gen, "multiclass", 3, [2000], [g2],
                        [torch.tensor([2, 0, 1, 1, 2])])


if __name__ == "__main__":
    main()
