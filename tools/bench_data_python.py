#!/usr/bin/env python3
# The Python side of `masa bench data`: a straightforward view-pair pipeline with OpenCV,
# pycocotools and numpy doing the same steps as data/views.c on the same files, one core:
# read the JPEG (full size) and the SA-1B JSON, decode every mask with pycocotools, draw the
# official random parameters per view (affine, mixup jitter/flip/offset, HSV, resize, crop,
# flip), compose them into one affine map per image (as masa does), warp main and mixup images
# once (bilinear, border 114), blend 0.5/0.5, HSV jitter via cv2, pad, exact boxes as the tight
# boxes of each mask warped with the same map (nearest; only the mask's bounding-box crop, into
# the part of the view it can reach), filter w, h > 1, normalise to CHW.
# Pairs: sample i % M with partner (7 i + 3) % M over the sorted sa_*.jpg files, i < --pairs.
# Rates are per CPU-second of this process (time.process_time), so a busy machine does not skew
# them. Prints one JSON line: {"pairs_per_s": ..., "pairs": ..., "seconds": ..., "wall_s": ...}.
import argparse
import glob
import json
import os
import time

import cv2
import numpy as np
from pycocotools import mask as mask_utils

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
PAD = 114


def load(jpg):
    img = cv2.imread(jpg, cv2.IMREAD_COLOR)
    with open(os.path.splitext(jpg)[0] + ".json") as f:
        ann = json.load(f)
    keep = [a for a in ann["annotations"] if a["bbox"][2] >= 1 and a["bbox"][3] >= 1]
    crops = []  # (x0, y0, the mask inside its bounding box)
    for a in keep:
        m = mask_utils.decode(a["segmentation"])
        x0, y0 = int(a["bbox"][0]), int(a["bbox"][1])
        x1, y1 = int(np.ceil(a["bbox"][0] + a["bbox"][2])), int(np.ceil(a["bbox"][1] + a["bbox"][3]))
        crops.append((x0, y0, np.ascontiguousarray(m[y0:y1, x0:x1])))
    return img, [a["id"] for a in keep], crops


def affine(rng, H, W):
    rot = np.deg2rad(rng.uniform(-10, 10))
    sc = rng.uniform(0.5, 1.5)
    shx, shy = np.deg2rad(rng.uniform(-2, 2)), np.deg2rad(rng.uniform(-2, 2))
    tx, ty = rng.uniform(-0.1, 0.1) * W, rng.uniform(-0.1, 0.1) * H
    R = np.array([[np.cos(rot), -np.sin(rot), 0], [np.sin(rot), np.cos(rot), 0], [0, 0, 1]])
    Sh = np.array([[1, np.tan(shx), 0], [np.tan(shy), 1, 0], [0, 0, 1]])
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]) @ Sh @ R @ np.diag([sc, sc, 1])


def view(rng, S, main, mix):
    img, ids, masks = main
    mimg, mids, mmasks = mix
    H, W = img.shape[:2]
    mh, mw = mimg.shape[:2]
    A = affine(rng, H, W)
    # mixup canvas: fit into S x S (int sizes), jitter, flip, pad/crop offsets
    jit = rng.uniform(0.8, 1.6)
    mflip = rng.uniform() > 0.5
    s0 = min(S / mh, S / mw)
    pw, ph, cj = int(mw * s0), int(mh * s0), int(S * jit)
    Mm = np.diag([pw / mw * cj / S, ph / mh * cj / S, 1.0])
    if mflip:
        Mm = np.array([[-1, 0, cj], [0, 1, 0], [0, 0, 1]]) @ Mm
    oy = rng.integers(0, max(cj, H) - H) if cj > H else 0
    ox = rng.integers(0, max(cj, W) - W) if cj > W else 0
    Mm = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]]) @ Mm
    gains = (rng.uniform(-1, 1, 3) * [5, 30, 30] * rng.integers(0, 2, 3)).astype(np.int16)
    r = rng.uniform(0.1, 2.0)
    target = int(S * r)
    f = target / max(H, W)
    nw, nh = int(W * f + 0.5), int(H * f + 0.5)
    ch, cw = min(S, nh), min(S, nw)
    cy, cx = rng.integers(0, nh - ch + 1), rng.integers(0, nw - cw + 1)
    V = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]]) @ np.diag([nw / W, nh / H, 1.0])
    if rng.uniform() < 0.5:
        V = np.array([[-1, 0, cw], [0, 1, 0], [0, 0, 1]]) @ V
    out = np.full((S, S, 3), PAD, np.uint8)
    half = np.array([0.5, 0.5])

    def to_index(T):  # continuous-coordinate map -> OpenCV's pixel-index convention
        M = T[:2].copy()
        M[:, 2] += M[:, :2] @ half - half
        return M

    Tm, Tx = to_index(V @ A), to_index(V @ Mm)
    a = cv2.warpAffine(img, Tm, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=(PAD, PAD, PAD))
    b = cv2.warpAffine(mimg, Tx, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=(PAD, PAD, PAD))
    c = ((a.astype(np.uint16) + b) >> 1).astype(np.uint8)
    hsv = cv2.cvtColor(c, cv2.COLOR_BGR2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + gains[0]) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
    out[:ch, :cw] = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    boxes, out_ids = [], []
    for T, crops, iids, flag in ((Tm, masks, ids, 0), (Tx, mmasks, mids, 1)):
        for k, (x0, y0, m) in enumerate(crops):
            h, w = m.shape
            corners = np.array([[x0, y0, 1], [x0 + w, y0, 1], [x0, y0 + h, 1], [x0 + w, y0 + h, 1]], np.float64)
            q = corners @ T.T
            X0, Y0 = max(int(np.floor(q[:, 0].min())) - 1, 0), max(int(np.floor(q[:, 1].min())) - 1, 0)
            X1, Y1 = min(int(np.ceil(q[:, 0].max())) + 1, cw), min(int(np.ceil(q[:, 1].max())) + 1, ch)
            if X1 <= X0 or Y1 <= Y0:
                continue
            Tk = T.copy()
            Tk[:, 2] += T[:, :2] @ np.array([x0, y0], np.float64) - np.array([X0, Y0], np.float64)
            wm = cv2.warpAffine(m, Tk, (X1 - X0, Y1 - Y0), flags=cv2.INTER_NEAREST)
            ys, xs = np.nonzero(wm)
            if len(xs) == 0:
                continue
            x1, y1, x2, y2 = xs.min() + X0, ys.min() + Y0, xs.max() + 1 + X0, ys.max() + 1 + Y0
            if x2 - x1 > 1 and y2 - y1 > 1:
                boxes.append((x1, y1, x2, y2))
                out_ids.append((flag, iids[k]))
    x = ((out[..., ::-1].astype(np.float32) - MEAN) / STD).transpose(2, 0, 1).copy()
    return x, np.array(boxes, np.float32).reshape(-1, 4), out_ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    files = sorted(glob.glob(os.path.join(args.data, "*.jpg")))
    if not files:
        raise SystemExit(f"{args.data}: no .jpg files")
    M = len(files)
    rng = np.random.default_rng(args.seed)
    t0, w0 = time.process_time(), time.perf_counter()
    nboxes = 0
    for i in range(args.pairs):
        main_s, mix_s = load(files[i % M]), load(files[(7 * i + 3) % M])
        for _ in range(2):
            _, boxes, _ = view(rng, args.size, main_s, mix_s)
            nboxes += len(boxes)
    dt, wall = time.process_time() - t0, time.perf_counter() - w0
    print(json.dumps({"pairs_per_s": args.pairs / dt, "pairs": args.pairs, "seconds": dt, "wall_s": wall,
                      "boxes_per_view": nboxes / (2 * args.pairs)}))


if __name__ == "__main__":
    main()
