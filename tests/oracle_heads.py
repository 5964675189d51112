# Oracle for tests/test_heads.c: MASA's track head, RPN head and RoI box heads against the
# PyTorch reference modules of tests/reference/heads_ref.py (float64 autograd from a fixed
# float32 upstream gradient), plus anchors, the delta coder, NMS, RPN proposals and box-head
# detections against float32 transcriptions of the mmdet/mmcv logic (and torchvision's nms /
# batched_nms where their semantics coincide).
# Usage: python tests/oracle_heads.py OUT.h5
#
# Layout. Module groups (track, track_b1, rpn, s2fc, s4c1fc_train, s4c1fc_eval):
#   cfg (floats, see each writer), params/<official key>, num_params, feat/<l>, rois (k,5),
#   outputs, upstream gradients (d*), grad/<official key>, dfeat/<l>.
# Geometry groups: anchors/*, coder/*, nms/*, prop/*, bpred/*; int64 datasets hold indices.
# Root attributes keys_s2fc / keys_s4c1fc: "name d0,d1,..." per line for the FULL-size heads
# (256 channels), checked here against masa-spec §9 and in C against the registered tables.
#
# Inputs are chosen so float32 rounding in C cannot flip a discrete decision: RoI corners are
# multiples of 1/64, no RoIAlign sample lies within 1e-3 of the -1 / size cut-off and no RoI size
# within 1e-3 (in log2) of a level boundary; scores fed to sorting / NMS / thresholds are spread
# on grids whose spacing is far above float32 rounding (except the deliberate tie cases).
import math
import os
import sys

import h5py
import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference.heads_ref import (BBoxHeadRef, HeadsRef, RPNHeadRef, TrackHeadRef,  # noqa: E402
                                 base_anchors, batched_nms_ref, bbox_predict_ref, delta_decode,
                                 delta_encode, grid_anchors, map_roi_levels, nms_stable,
                                 param_dict, rpn_proposals_ref)

SEED = 20240612
EDGE = 1e-3
torch.set_num_threads(1)


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


# ------------------------------------------------------------------------------ key layout

def spec_keys_s2fc():
    """masa-spec §9 (track head, RPN, Shared2FC box head), 256 channels."""
    k = []
    for i in range(4):
        k += [("track_head.embed_head.convs.%d.conv.weight" % i, (256, 256, 3, 3)),
              ("track_head.embed_head.convs.%d.gn.weight" % i, (256,)),
              ("track_head.embed_head.convs.%d.gn.bias" % i, (256,))]
    k += [("track_head.embed_head.fcs.0.weight", (1024, 12544)),
          ("track_head.embed_head.fcs.0.bias", (1024,)),
          ("track_head.embed_head.fc_embed.weight", (256, 1024)),
          ("track_head.embed_head.fc_embed.bias", (256,)),
          ("rpn_head.rpn_conv.weight", (256, 256, 3, 3)), ("rpn_head.rpn_conv.bias", (256,)),
          ("rpn_head.rpn_cls.weight", (3, 256, 1, 1)), ("rpn_head.rpn_cls.bias", (3,)),
          ("rpn_head.rpn_reg.weight", (12, 256, 1, 1)), ("rpn_head.rpn_reg.bias", (12,)),
          ("roi_head.bbox_head.shared_fcs.0.weight", (1024, 12544)),
          ("roi_head.bbox_head.shared_fcs.0.bias", (1024,)),
          ("roi_head.bbox_head.shared_fcs.1.weight", (1024, 1024)),
          ("roi_head.bbox_head.shared_fcs.1.bias", (1024,)),
          ("roi_head.bbox_head.fc_cls.weight", (2, 1024)), ("roi_head.bbox_head.fc_cls.bias", (2,)),
          ("roi_head.bbox_head.fc_reg.weight", (4, 1024)), ("roi_head.bbox_head.fc_reg.bias", (4,))]
    return k


def spec_keys_s4c1fc():
    """masa-spec §9 with the R50 Shared4Conv1FC box head."""
    k = [e for e in spec_keys_s2fc() if not e[0].startswith("roi_head.")]
    for i in range(4):
        k.append(("roi_head.bbox_head.shared_convs.%d.conv.weight" % i, (256, 256, 3, 3)))
        for b in ("weight", "bias", "running_mean", "running_var"):
            k.append(("roi_head.bbox_head.shared_convs.%d.bn.%s" % (i, b), (256,)))
    k += [("roi_head.bbox_head.shared_fcs.0.weight", (1024, 12544)),
          ("roi_head.bbox_head.shared_fcs.0.bias", (1024,)),
          ("roi_head.bbox_head.fc_cls.weight", (2, 1024)), ("roi_head.bbox_head.fc_cls.bias", (2,)),
          ("roi_head.bbox_head.fc_reg.weight", (4, 1024)), ("roi_head.bbox_head.fc_reg.bias", (4,))]
    return k


def key_lines(module):
    return "\n".join("%s %s" % (k, ",".join(str(s) for s in v.shape))
                     for k, v in sorted(param_dict(module).items())) + "\n"


def check_full_keys(f):
    with torch.no_grad():
        s2 = HeadsRef([8, 16, 32])
        s4 = HeadsRef([4, 8, 16, 32], bbox_kw=dict(num_convs=4, num_fcs=1))
    for name, mod, spec in (("keys_s2fc", s2, spec_keys_s2fc()),
                            ("keys_s4c1fc", s4, spec_keys_s4c1fc())):
        got = {k: tuple(v.shape) for k, v in param_dict(mod).items()}
        assert got == dict(spec), (name, set(got) ^ set(dict(spec)))
        f.attrs[name] = np.bytes_(key_lines(mod).encode())  # fixed-length (h5io reads those)


# ------------------------------------------------------------------------------ helpers

def randomize(module, rng):
    """Random float32 weights at a scale that keeps activations O(1) (not the official init)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                v = rng.standard_normal(p.shape) * math.sqrt(2.0 / fan_in)
            elif name.endswith("gn.weight") or name.endswith("bn.weight"):
                v = 1.0 + 0.2 * rng.standard_normal(p.shape)
            else:
                v = 0.1 * rng.standard_normal(p.shape)
            p.copy_(torch.from_numpy(v.astype(np.float32)))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.from_numpy((0.2 * rng.standard_normal(b.shape)).astype(np.float32)))
            elif name.endswith("running_var"):
                b.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, b.shape).astype(np.float32)))


def write_params(g, module, prefix=""):
    pd = param_dict(module)
    for k, v in pd.items():
        g["params/" + prefix + k] = f32(v)
    g["num_params"] = np.array([len(pd)], np.float32)


def write_grads(g, module, prefix=""):
    for k, p in module.named_parameters():
        g["grad/" + prefix + k] = f32(p.grad) if p.grad is not None else np.zeros(p.shape,
                                                                               np.float32)


def roi_samples_safe(roi, h, w, scale, out=7):
    x1, y1, x2, y2 = (v * scale - 0.5 for v in roi[1:])
    rw, rh = x2 - x1, y2 - y1
    gh, gw = math.ceil(rh / out), math.ceil(rw / out)
    for start, size, grid, lim in ((y1, rh, gh, h), (x1, rw, gw, w)):
        b = size / out
        for p in range(out):
            for i in range(grid):
                v = start + p * b + (i + 0.5) * b / grid
                if abs(v + 1) < EDGE or abs(v - lim) < EDGE:
                    return False
    return True


def make_rois(rng, n, k, img_h, img_w, strides, hs, ws):
    """RoIs over all levels: inside, partly outside, one wholly outside; safe (see header)."""
    L = len(strides)
    rois = []
    want = [l % L for l in range(k)]  # cycle through levels so each one is used
    while len(rois) < k:
        target = want[len(rois)]
        lo = 56.0 * 2 ** target if target > 0 else 8.0
        hi = 56.0 * 2 ** (target + 1) if target < L - 1 else 56.0 * 2 ** (L + 0.5)
        side = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        ar = math.exp(rng.uniform(-0.6, 0.6))
        bw, bh = side * ar, side / ar
        if len(rois) == k - 1:  # wholly outside the image (RoIAlign gives zeros)
            x1, y1 = img_w + 40.0 + rng.uniform(0, 30), rng.uniform(0, img_h)
        else:
            x1 = rng.uniform(0, img_w) - 0.5 * bw  # centre inside; big RoIs stick out
            y1 = rng.uniform(0, img_h) - 0.5 * bh
        roi = [float(rng.integers(0, n))] + [round(v * 64) / 64
                                             for v in (x1, y1, x1 + bw, y1 + bh)]
        s = math.sqrt((roi[3] - roi[1]) * (roi[4] - roi[2]))
        lr = math.log2(s / 56.0)
        if abs(lr - round(lr)) < EDGE:
            continue
        lv = min(max(math.floor(lr), 0), L - 1)
        if roi_samples_safe(roi, hs[lv], ws[lv], 1.0 / strides[lv]):
            rois.append(roi)
    return np.array(rois, np.float32).reshape(k, 5)


def make_feats(rng, n, c, hs, ws):
    return [rng.standard_normal((n, c, h, w)).astype(np.float32) for h, w in zip(hs, ws)]


def run_roi_module(module, feats, rois, ups):
    """float64 forward + backward of a module(feats, rois); ups: upstream grads per output."""
    m = module.double()
    ft = [torch.from_numpy(x).double().requires_grad_(True) for x in feats]
    out = m(ft, torch.from_numpy(rois).double())
    outs = out if isinstance(out, tuple) else (out,)
    loss = sum((o * torch.from_numpy(u).double()).sum() for o, u in zip(outs, ups))
    loss.backward()
    return outs, ft


# ------------------------------------------------------------------------------ module cases

def case_track(f, name, rng, n, strides, img_h, img_w, c_in, conv, groups, fc, emb, k):
    hs = [img_h // s for s in strides]
    ws = [img_w // s for s in strides]
    feats = make_feats(rng, n, c_in, hs, ws)
    rois = make_rois(rng, n, k, img_h, img_w, strides, hs, ws)
    mod = TrackHeadRef(strides, in_channels=c_in, conv_channels=conv, gn_groups=groups,
                       fc_channels=fc, embed_channels=emb)
    randomize(mod, rng)
    g = f.create_group(name)
    write_params(g, mod, "track_head.")
    dy = rng.standard_normal((k, emb)).astype(np.float32)
    (emb_out,), ft = run_roi_module(mod, feats, rois, [dy])
    g["cfg"] = np.array([n, len(strides), c_in, 4, conv, groups, 1, fc, emb, k] + strides + hs + ws,
                        np.float32)
    for l in range(len(strides)):
        g["feat/%d" % l] = feats[l]
        g["dfeat/%d" % l] = f32(ft[l].grad)
    g["rois"] = rois
    g["levels"] = map_roi_levels(torch.from_numpy(rois), len(strides)).numpy().astype(np.int64)
    g["dy"] = dy
    g["embed"] = f32(emb_out)
    write_grads(g, mod, "track_head.")
    counts = np.bincount(g["levels"][...], minlength=len(strides))
    assert (counts > 0).all(), counts


def case_rpn(f, name, rng, n, strides, img_h, img_w, c_in, feat):
    hs = [math.ceil(img_h / s) for s in strides]
    ws = [math.ceil(img_w / s) for s in strides]
    feats = make_feats(rng, n, c_in, hs, ws)
    mod = RPNHeadRef(c_in, feat, 3)
    randomize(mod, rng)
    g = f.create_group(name)
    write_params(g, mod, "rpn_head.")
    m = mod.double()
    ft = [torch.from_numpy(x).double().requires_grad_(True) for x in feats]
    cls, reg = m(ft)
    loss = 0
    for l in range(len(strides)):
        dc = rng.standard_normal(cls[l].shape).astype(np.float32)
        dr = rng.standard_normal(reg[l].shape).astype(np.float32)
        g["dcls/%d" % l] = dc
        g["dreg/%d" % l] = dr
        loss = loss + (cls[l] * torch.from_numpy(dc).double()).sum() + \
            (reg[l] * torch.from_numpy(dr).double()).sum()
    loss.backward()
    g["cfg"] = np.array([n, len(strides), c_in, feat, 3] + hs + ws, np.float32)
    for l in range(len(strides)):
        g["feat/%d" % l] = feats[l]
        g["cls/%d" % l] = f32(cls[l])
        g["reg/%d" % l] = f32(reg[l])
        g["dfeat/%d" % l] = f32(ft[l].grad)
    write_grads(g, mod, "rpn_head.")


def case_bbox(f, name, rng, n, strides, img_h, img_w, c_in, num_convs, conv, fc, num_classes,
              k, train):
    hs = [img_h // s for s in strides]
    ws = [img_w // s for s in strides]
    feats = make_feats(rng, n, c_in, hs, ws)
    rois = make_rois(rng, n, k, img_h, img_w, strides, hs, ws)
    from reference.heads_ref import RoIHeadRef
    mod = RoIHeadRef(strides, in_channels=c_in, num_convs=num_convs, conv_channels=conv,
                     num_fcs=1 if num_convs else 2, fc_channels=fc, num_classes=num_classes)
    randomize(mod, rng)
    g = f.create_group(name)
    write_params(g, mod, "roi_head.")
    mod.train(train)
    dcls = rng.standard_normal((k, num_classes + 1)).astype(np.float32)
    dreg = rng.standard_normal((k, 4)).astype(np.float32)
    (cls, reg), ft = run_roi_module(mod, feats, rois, [dcls, dreg])
    g["cfg"] = np.array([n, len(strides), c_in, num_convs, conv, fc, num_classes, k, int(train)]
                        + strides + hs + ws, np.float32)
    for l in range(len(strides)):
        g["feat/%d" % l] = feats[l]
        g["dfeat/%d" % l] = f32(ft[l].grad)
    g["rois"] = rois
    g["dcls"] = dcls
    g["dreg"] = dreg
    g["cls"] = f32(cls)
    g["reg"] = f32(reg)
    write_grads(g, mod, "roi_head.")
    if train:  # running statistics after one training-mode forward
        for kname, v in param_dict(mod).items():
            if "running_" in kname:
                g["after/roi_head." + kname] = f32(v)


# ------------------------------------------------------------------------------ geometry

def case_anchors(f):
    g = f.create_group("anchors")
    sets = {"s4": ([4, 8, 16, 32, 64], 200, 304), "s8": ([8, 16, 32, 64, 128], 264, 392)}
    for tag, (strides, ih, iw) in sets.items():
        for l, s in enumerate(strides):
            h, w = math.ceil(ih / s), math.ceil(iw / s)
            base = base_anchors(s)
            g["%s/base%d" % (tag, l)] = f32(base)
            g["%s/grid%d" % (tag, l)] = f32(grid_anchors(base, s, h, w))
            g["%s/size%d" % (tag, l)] = np.array([s, h, w], np.float32)


def rand_boxes(rng, n, img_h, img_w, min_side=2.0, max_side=200.0):
    cx, cy = rng.uniform(0, img_w, n), rng.uniform(0, img_h, n)
    bw = np.exp(rng.uniform(math.log(min_side), math.log(max_side), n))
    bh = np.exp(rng.uniform(math.log(min_side), math.log(max_side), n))
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).astype(np.float32)


def case_coder(f, rng):
    g = f.create_group("coder")
    n = 500
    props = rand_boxes(rng, n, 600, 800)
    gts = rand_boxes(rng, n, 600, 800)
    deltas = rng.standard_normal((n, 4)).astype(np.float32)
    deltas[:40, 2:] = rng.uniform(-9, 9, (40, 2)).astype(np.float32)  # beyond the wh clip
    g["props"] = props
    g["gts"] = gts
    g["deltas"] = deltas
    for tag, stds in (("rpn", (1.0, 1.0, 1.0, 1.0)), ("rcnn", (0.1, 0.1, 0.2, 0.2))):
        pt, gtt, dt = (torch.from_numpy(x) for x in (props, gts, deltas))
        g[tag + "/enc"] = f32(delta_encode(pt, gtt, stds=stds))
        g[tag + "/dec_clip"] = f32(delta_decode(pt, dt, stds=stds, max_shape=(600, 800)))
        g[tag + "/dec_noclip"] = f32(delta_decode(pt, dt, stds=stds, max_shape=None))
        g[tag + "/stds"] = np.array(stds, np.float32)


def clustered_boxes(rng, n, img_h, img_w, clusters):
    centers = np.stack([rng.uniform(0, img_w, clusters), rng.uniform(0, img_h, clusters)], 1)
    c = centers[rng.integers(0, clusters, n)] + rng.normal(0, 6, (n, 2))
    wh = np.exp(rng.uniform(math.log(10), math.log(80), (n, 2)))
    b = np.concatenate([c - wh / 2, c + wh / 2], 1)
    return (np.round(b * 64) / 64).astype(np.float32)


def spread_scores(rng, n, lo=0.05, hi=0.95):
    """Distinct scores on an even grid, randomly permuted (gaps >> float32 rounding)."""
    grid = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    return rng.permutation(grid).astype(np.float32)


def case_nms(f, rng):
    g = f.create_group("nms")
    ci = 0

    def put(boxes, scores, idxs, thr, agnostic, split, keep, tv=None):
        nonlocal ci
        h = g.create_group("c%d" % ci)
        h["boxes"] = boxes
        h["scores"] = scores
        h["idxs"] = idxs.astype(np.int64)
        h["params"] = np.array([thr, agnostic, split], np.float64).astype(np.float32)
        h["keep"] = keep.numpy().astype(np.int64)
        if tv is not None:
            assert torch.equal(tv, keep), "torchvision disagrees with the transcription"
        ci += 1

    # Plain NMS, distinct scores, two thresholds; zero-area duplicates included (0/0 IoU).
    b = clustered_boxes(rng, 300, 300, 400, 12)
    b[290:] = np.array([5, 5, 5, 9], np.float32)  # empty boxes, identical
    s = spread_scores(rng, 300)
    for thr in (0.5, 0.7, 0.3):
        keep = nms_stable(torch.from_numpy(b), torch.from_numpy(s), thr)
        tv = torchvision.ops.nms(torch.from_numpy(b), torch.from_numpy(s), thr)
        put(b, s, np.zeros(300), thr, 1, 1 << 30, keep, tv)
    # Exact ties in score: stable order (lower index first).
    s_tie = (np.round(spread_scores(rng, 300) * 8) / 8).astype(np.float32)
    keep = nms_stable(torch.from_numpy(b), torch.from_numpy(s_tie), 0.5)
    put(b, s_tie, np.zeros(300), 0.5, 1, 1 << 30, keep)
    # Batched, offset trick, 4 groups; torchvision's batched_nms uses the same trick for n<=1000.
    b2 = clustered_boxes(rng, 400, 300, 400, 8)
    s2 = spread_scores(rng, 400)
    idx2 = rng.integers(0, 4, 400)
    bt, st, it = torch.from_numpy(b2), torch.from_numpy(s2), torch.from_numpy(idx2)
    keep = batched_nms_ref(bt, st, it, 0.6, False, 10000)
    put(b2, s2, idx2, 0.6, 0, 10000, keep, torchvision.ops.batched_nms(bt, st, it, 0.6))
    # Batched, split path (n >= split_thr: per group, then sorted).
    keep = batched_nms_ref(bt, st, it, 0.6, False, 100)
    put(b2, s2, idx2, 0.6, 0, 100, keep)
    # Class-agnostic with group ids present (ids ignored), and its split path (per group!).
    keep = batched_nms_ref(bt, st, it, 0.6, True, 10000)
    put(b2, s2, idx2, 0.6, 1, 10000, keep, torchvision.ops.nms(bt, st, 0.6))
    keep = batched_nms_ref(bt, st, it, 0.6, True, 100)
    put(b2, s2, idx2, 0.6, 1, 100, keep)
    # Ties across groups in the split path.
    s3 = (np.round(s2 * 6) / 6).astype(np.float32)
    keep = batched_nms_ref(bt, torch.from_numpy(s3), it, 0.6, False, 100)
    put(b2, s3, idx2, 0.6, 0, 100, keep)
    g["count"] = np.array([ci], np.float32)


def spaced_logits(rng, shape, lo=-4.0, hi=4.0, quantum=None):
    n = int(np.prod(shape))
    v = lo + (rng.permutation(n) + 0.5) * (hi - lo) / n
    if quantum:
        v = np.round(v / quantum) * quantum
    return v.reshape(shape).astype(np.float32)


def case_proposals(f, rng):
    g = f.create_group("prop")
    cases = [
        # strides, padded (H, W), batch, image b, img_shape, nms_pre, max, min_size, split, quantum
        ([4, 8, 16, 32, 64], (200, 304), 2, 1, (190, 290), 1000, 1000, 0.0, 10000, None),
        ([4, 8, 16, 32, 64], (200, 304), 2, 0, (200, 300), 300, 150, 8.0, 500, None),
        ([8, 16, 32, 64, 128], (264, 392), 1, 0, (250, 392), -1, -1, 0.0, 10000, 0.25),
        ([8, 16, 32, 64, 128], (264, 392), 1, 0, (250, 392), 100, 1000, -1.0, 10000, 0.5),
    ]
    for ci, (strides, (ph, pw), n, b, img, nms_pre, mx, mins, split, q) in enumerate(cases):
        h = g.create_group("c%d" % ci)
        cls, reg = [], []
        for l, s in enumerate(strides):
            fh, fw = math.ceil(ph / s), math.ceil(pw / s)
            cls.append(torch.from_numpy(spaced_logits(rng, (n, 3, fh, fw), quantum=q)))
            d = rng.normal(0, 0.3, (n, 12, fh, fw))
            big = rng.random((n, 12, fh, fw)) < 0.03
            d[big] = rng.uniform(-6, 6, big.sum())
            reg.append(torch.from_numpy(d.astype(np.float32)))
            h["cls/%d" % l] = f32(cls[-1])
            h["reg/%d" % l] = f32(reg[-1])
        boxes, scores, src = rpn_proposals_ref(cls, reg, b, strides, img, nms_pre, mx, 0.7, mins,
                                               split)
        h["cfg"] = np.array([len(strides), n, b, img[0], img[1], nms_pre, mx, 0.7, mins, split]
                            + strides, np.float32)
        h["boxes"] = f32(boxes)
        h["scores"] = f32(scores)
        h["src"] = src.numpy().astype(np.int64)
        h["count"] = np.array([boxes.shape[0]], np.float32)
    g["count"] = np.array([len(cases)], np.float32)


def case_bbox_predict(f, rng):
    g = f.create_group("bpred")
    cases = [  # k, num_classes, class_agnostic, max_per_img, img, low-score case
        (400, 1, True, 50, (200, 300), False),
        (300, 3, True, 50, (200, 300), False),
        (300, 3, False, 0, (200, 300), False),
        (200, 1, True, 50, (200, 300), True),  # few above score_thr: fewer than max_per_img
    ]
    for ci, (k, nc, agn, mx, img, low) in enumerate(cases):
        h = g.create_group("c%d" % ci)
        rois = clustered_boxes(rng, k, img[0], img[1], 15)
        # Probabilities on a permuted grid, background last; logits = log(p).
        hi = 0.025 if low else 0.98 / nc
        step = (hi - 0.002) / (k * nc)
        grid = 0.002 + (np.arange(k * nc) + 0.5) * step
        if np.abs(grid - 0.02).min() < step / 4:  # keep score_thr halfway between grid points
            grid += step / 2
        p = rng.permutation(grid).reshape(k, nc)
        p = np.concatenate([p, 1.0 - p.sum(1, keepdims=True)], 1)
        cls = np.log(p).astype(np.float32)
        reg = rng.normal(0, 1.0, (k, 4)).astype(np.float32)
        boxes, scores, labels, src = bbox_predict_ref(torch.from_numpy(rois), torch.from_numpy(cls),
                                                      torch.from_numpy(reg), img, nc, 0.02, 0.5,
                                                      agn, mx, 100000)
        h["rois"] = rois
        h["cls"] = cls
        h["reg"] = reg
        h["cfg"] = np.array([k, nc, int(agn), mx, img[0], img[1]], np.float32)
        h["boxes"] = f32(boxes)
        h["scores"] = f32(scores)
        h["labels"] = labels.numpy().astype(np.int64)
        h["src"] = src.numpy().astype(np.int64)
        h["count"] = np.array([boxes.shape[0]], np.float32)
    g["count"] = np.array([len(cases)], np.float32)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    with h5py.File(out, "w") as f:
        check_full_keys(f)
        # Track head: GN 32 groups over 64 channels, 4 levels (strides 4..32), batch 2;
        # then batch 1 with 3 levels (GDINO strides 8, 16, 32).
        case_track(f, "track", rng, 2, [4, 8, 16, 32], 192, 256, 32, 64, 32, 96, 32, 24)
        case_track(f, "track_b1", rng, 1, [8, 16, 32], 160, 224, 32, 32, 32, 64, 16, 9)
        case_rpn(f, "rpn", rng, 2, [4, 8, 16, 32, 64], 64, 96, 32, 32)
        case_bbox(f, "s2fc", rng, 2, [4, 8, 16, 32], 128, 192, 32, 0, 32, 96, 1, 20, False)
        case_bbox(f, "s4c1fc_train", rng, 2, [4, 8, 16, 32], 128, 192, 32, 4, 32, 64, 1, 16, True)
        case_bbox(f, "s4c1fc_eval", rng, 1, [8, 16, 32], 160, 224, 32, 4, 32, 64, 1, 9, False)
        case_anchors(f)
        case_coder(f, rng)
        case_nms(f, rng)
        case_proposals(f, rng)
        case_bbox_predict(f, rng)


if __name__ == "__main__":
    main()
