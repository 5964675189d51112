# Oracle for tests/test_roi_align.c: torchvision.ops.roi_align in float64 (reference) and float32
# (torchvision's own float path), gradients by autograd for a fixed upstream gradient dy, and the
# mmdet SingleRoIExtractor rule for the multi-level extractor written out explicitly.
# Usage: /usr/bin/python3 tests/oracle_roi_align.py OUT.h5
#
# Layout per case `caseI/`: x (n,c,h,w), rois (k,5), dy, y (float64 ref), dx (float64 ref),
# y32 / dx32 (torchvision float32), params = [n, c, h, w, k, spatial_scale, out_h, out_w,
# sampling_ratio, aligned]. Multi-level `mlI/`: feat{l}, rois, levels, dy, y, dfeat{l} (and
# y32, dfeat{l}32),
# params = [n, c, L, out_h, out_w, sampling_ratio, aligned, finest_scale, strides(L), hs(L), ws(L)].
# Random RoI corners are multiples of 1/64 (exact in float32) and RoIs with a sample within 1e-3
# of the -1 / size cut-off (where the op is discontinuous) are redrawn, so float32 rounding in
# the C op cannot flip a sample in or out; the exact edge cases are built from quarter pixels.
import math
import sys

import h5py
import numpy as np
import torch
from torchvision.ops import roi_align

SEED = 20240611
EDGE = 1e-3


def axis_samples(start, size, out, grid):
    bin_ = size / out
    return [start + p * bin_ + (i + 0.5) * bin_ / grid for p in range(out) for i in range(grid)]


def roi_is_safe(roi, h, w, scale, out_h, out_w, sr, aligned):
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - off for v in roi[1:])
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    gh = sr if sr > 0 else math.ceil(rh / out_h)
    gw = sr if sr > 0 else math.ceil(rw / out_w)
    for v in axis_samples(y1, rh, out_h, max(gh, 0)):
        if abs(v + 1) < EDGE or abs(v - h) < EDGE:
            return False
    for v in axis_samples(x1, rw, out_w, max(gw, 0)):
        if abs(v + 1) < EDGE or abs(v - w) < EDGE:
            return False
    return True


def random_rois(rng, n, k, img_h, img_w, configs, h, w, scale):
    """RoIs over an image of img_h x img_w input pixels: inside, partly outside, wholly outside,
    tiny (< 1 feature pixel) and large; safe for every (out_h, out_w, sr, aligned) in configs."""
    rois = []
    while len(rois) < k:
        kind = len(rois) % 5
        b = float(rng.integers(0, n))
        if kind == 0:  # inside
            x1, y1 = rng.uniform(0, img_w * 0.8), rng.uniform(0, img_h * 0.8)
            x2, y2 = rng.uniform(x1, img_w), rng.uniform(y1, img_h)
        elif kind == 1:  # partly outside
            x1, y1 = rng.uniform(-img_w * 0.3, img_w * 0.7), rng.uniform(-img_h * 0.3, img_h * 0.7)
            x2, y2 = x1 + rng.uniform(0.3, 0.8) * img_w, y1 + rng.uniform(0.3, 0.8) * img_h
        elif kind == 2:  # wholly outside (beyond the -1 / size margin) or straddling the margin
            x1 = rng.choice([rng.uniform(-2 * img_w, -0.5 * img_w), rng.uniform(img_w * 1.1, 2 * img_w)])
            y1 = rng.uniform(-img_h * 0.5, img_h * 1.5)
            x2, y2 = x1 + rng.uniform(1, img_w * 0.3), y1 + rng.uniform(1, img_h * 0.3)
        elif kind == 3:  # tiny: under one feature pixel
            x1, y1 = rng.uniform(0, img_w), rng.uniform(0, img_h)
            x2, y2 = x1 + rng.uniform(0, 0.9 / scale), y1 + rng.uniform(0, 0.9 / scale)
        else:  # large, beyond the image
            x1, y1 = rng.uniform(-img_w * 0.2, img_w * 0.2), rng.uniform(-img_h * 0.2, img_h * 0.2)
            x2, y2 = x1 + rng.uniform(0.9, 1.4) * img_w, y1 + rng.uniform(0.9, 1.4) * img_h
        roi = [b] + [round(v * 64) / 64 for v in (x1, y1, x2, y2)]
        if all(roi_is_safe(roi, h, w, scale, *cfg) for cfg in configs):
            rois.append(roi)
    return np.array(rois, dtype=np.float32).reshape(k, 5)


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def run_case(f, name, x, rois, scale, out_h, out_w, sr, aligned, dy):
    n, c, h, w = x.shape
    k = rois.shape[0]
    g = f.create_group(name)
    g["x"] = x
    if k > 0:
        g["rois"] = rois
        g["dy"] = dy
    g["params"] = np.array([n, c, h, w, k, scale, out_h, out_w, sr, aligned], np.float32)
    for dtype, suffix in ((torch.float64, ""), (torch.float32, "32")):
        xt = torch.from_numpy(x).to(dtype).requires_grad_(True)
        rt = torch.from_numpy(rois).to(dtype)
        y = roi_align(xt, rt, (out_h, out_w), spatial_scale=scale, sampling_ratio=sr,
                      aligned=bool(aligned))
        y.backward(torch.from_numpy(dy).to(dtype))
        if k > 0:
            g["y" + suffix] = f32(y)
        g["dx" + suffix] = f32(xt.grad)


def edge_rois(h, w, aligned):
    """One RoI per (ty, tx) pair so that its single sample (sr 1, 1x1 output) lands exactly on
    ty, tx in {-1.25, -1, -0.75, 0, 0.5, size-1, size-0.5, size, size+0.25}: exact in float32."""
    def ts(s):
        return [-1.25, -1.0, -0.75, 0.0, 0.5, s - 1.0, s - 0.5, float(s), s + 0.25]
    rois = []
    for ty in ts(h):
        for tx in ts(w):
            if aligned:  # start = x1 - 0.5, size 1: sample at x1
                rois.append([0.0, tx, ty, tx + 1.0, ty + 1.0])
            else:  # size clamped to 1: sample at x1 + 0.5
                rois.append([0.0, tx - 0.5, ty - 0.5, tx - 0.5, ty - 0.5])
    return np.array(rois, np.float32)


def mmdet_map_levels(rois, num_levels, finest_scale):
    """mmdet SingleRoIExtractor.map_roi_levels, evaluated on float32 tensors as mmdet does."""
    r = torch.from_numpy(rois)
    scale = torch.sqrt((r[:, 3] - r[:, 1]) * (r[:, 4] - r[:, 2]))
    lv = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return lv.clamp(min=0, max=num_levels - 1).long()


def run_multilevel(f, name, rng, n, c, img_h, img_w, strides, out, sr, aligned, k_random):
    L = len(strides)
    finest = 56.0
    hs = [img_h // s for s in strides]
    ws = [img_w // s for s in strides]
    feats = [rng.standard_normal((n, c, hs[l], ws[l])).astype(np.float32) for l in range(L)]
    # Boundary sizes: sqrt(w*h) exactly 56 * 2^j (level j by the + 1e-6) and just below.
    rois = []
    for j, side in enumerate([28.0, 56.0, 111.5, 112.0, 224.0, 223.0, 448.0, 447.0, 600.0]):
        x1, y1 = 8.0 + 16 * j, 4.0 + 8 * j
        rois.append([float(j % n), x1, y1, x1 + side, y1 + side])
    while len(rois) < 9 + k_random:
        side = math.exp(rng.uniform(math.log(8), math.log(700)))
        ar = math.exp(rng.uniform(-0.7, 0.7))
        bw, bh = side * ar, side / ar
        x1 = rng.uniform(-0.2 * img_w, max(img_w - 0.5 * bw, 0.0))
        y1 = rng.uniform(-0.2 * img_h, max(img_h - 0.5 * bh, 0.0))
        roi = [float(rng.integers(0, n))] + [round(v * 64) / 64 for v in (x1, y1, x1 + bw, y1 + bh)]
        lvl_real = math.log2(math.sqrt((roi[3] - roi[1]) * (roi[4] - roi[2])) / finest)
        if abs(lvl_real - round(lvl_real)) < 1e-3:
            continue
        lv = min(max(math.floor(lvl_real), 0), L - 1)
        if roi_is_safe(roi, hs[lv], ws[lv], 1.0 / strides[lv], out, out, sr, aligned):
            rois.append(roi)
    rois = np.array(rois, np.float32)
    k = rois.shape[0]
    levels = mmdet_map_levels(rois, L, finest)
    dy = rng.standard_normal((k, c, out, out)).astype(np.float32)

    g = f.create_group(name)
    for l in range(L):
        g["feat%d" % l] = feats[l]
    for dtype, suffix in ((torch.float64, ""), (torch.float32, "32")):
        fts = [torch.from_numpy(ft).to(dtype).requires_grad_(True) for ft in feats]
        rt = torch.from_numpy(rois).to(dtype)
        y = torch.zeros(k, c, out, out, dtype=dtype)
        for l in range(L):
            idx = (levels == l).nonzero(as_tuple=True)[0]
            if idx.numel() > 0:
                y[idx] = roi_align(fts[l], rt[idx], (out, out), spatial_scale=1.0 / strides[l],
                                   sampling_ratio=sr, aligned=bool(aligned))
        y.backward(torch.from_numpy(dy).to(dtype))
        g["y" + suffix] = f32(y)
        for l in range(L):
            g["dfeat%d%s" % (l, suffix)] = f32(fts[l].grad)
    g["rois"] = rois
    g["levels"] = levels.numpy().astype(np.float32)
    g["dy"] = dy
    g["params"] = np.array([n, c, L, out, out, sr, aligned, finest] + list(strides) + hs + ws,
                           np.float32)
    counts = np.bincount(levels.numpy(), minlength=L)
    assert (counts > 0).all(), counts  # every level is exercised


def main():
    out_path = sys.argv[1]
    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    with h5py.File(out_path, "w") as f:
        ci = 0
        # Random RoIs, every (aligned, sampling_ratio) pair, batch 3 and 1, non-square maps.
        for (n, c, h, w, scale, out_h, out_w, k) in ((3, 4, 13, 17, 0.5, 7, 7, 40),
                                                     (1, 3, 20, 9, 0.25, 3, 5, 25)):
            img_h, img_w = h / scale, w / scale
            configs = [(out_h, out_w, sr, al) for sr in (0, 2) for al in (1, 0)]
            rois = random_rois(rng, n, k, img_h, img_w, configs, h, w, scale)
            x = rng.standard_normal((n, c, h, w)).astype(np.float32)
            dy = rng.standard_normal((k, c, out_h, out_w)).astype(np.float32)
            for (_, _, sr, al) in configs:
                run_case(f, "case%d" % ci, x, rois, scale, out_h, out_w, sr, al, dy)
                ci += 1
        # Exact edge samples at -1, 0, size-1, size (and just outside), both alignments.
        n, c, h, w = 1, 2, 6, 9
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        for al in (1, 0):
            rois = edge_rois(h, w, al)
            dy = rng.standard_normal((rois.shape[0], c, 1, 1)).astype(np.float32)
            run_case(f, "case%d" % ci, x, rois, 1.0, 1, 1, 1, al, dy)
            ci += 1
        # Zero RoIs: dx stays zero.
        x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
        run_case(f, "case%d" % ci, x, np.zeros((0, 5), np.float32), 1.0, 7, 7, 0, 1,
                 np.zeros((0, 3, 7, 7), np.float32))
        ci += 1
        # Multi-level extractor: 4 levels at strides 4..32, RoIs spanning every level.
        run_multilevel(f, "ml0", rng, 2, 3, 384, 512, [4, 8, 16, 32], 7, 0, 1, 40)
        run_multilevel(f, "ml1", rng, 3, 2, 256, 320, [4, 8, 16, 32], 7, 2, 0, 30)


if __name__ == "__main__":
    main()
