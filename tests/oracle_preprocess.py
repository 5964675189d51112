# Oracle for tests/test_preprocess.c: MASA's test-time preprocessing (masa-spec §7.1) with the
# libraries the official pipeline runs: cv2.resize(INTER_LINEAR) on uint8 (mmcv imresize's cv2
# backend), mmcv's rescale_size arithmetic (transcribed below from its definition:
# f = min(long / max(h, w), short / min(h, w)), size int(x f + 0.5)), and mmdet's float32
# (x - mean) / std followed by zero padding (torch).
# Usage: python tests/oracle_preprocess.py OUT.h5
#
# Datasets (float32 unless noted):
#   sizes           rows [h, w, scale_long, scale_short, new_h, new_w]
#   img/<case>      (h, w, 3) uint8 values; cfg/<case> [scale_long, scale_short];
#   out/<case>      cv2.resize of img/<case> to the keep-ratio size, (nh, nw, 3)
#   scale/<case>    [new_w / w, new_h / h] (as float32, what mmdet multiplies boxes by)
#   pattern/<case>  [h, w, scale_long, scale_short, nh, nw] for large synthetic images
#                   px(y, x, c) = (7 x + 13 y + 101 c + (x y) mod 31) mod 256 (regenerated in C);
#   psum/<case>     int64 [sum of bytes, sum of byte * (index mod 251 + 1)] of the cv2 result;
#   pidx/<case>     int64 sample flat indices, pval/<case> their bytes.
#   batch           preprocessed batch of img/up and img/down, cfg (128, 128), divisor 32
#   batch_meta      rows [h, w, new_h, new_w] per image
#   boxes, boxes_scaled   (n, 5) boxes in img/down pixels (x1, y1, x2, y2, score), scaled.
import os
import sys

import cv2
import h5py
import numpy as np
import torch

RNG = np.random.default_rng(20240918)
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def rescale_size(h, w, long_, short):
    lo, sh = max(long_, short), min(long_, short)
    f = min(lo / max(h, w), sh / min(h, w))
    return int(h * float(f) + 0.5), int(w * float(f) + 0.5)


def resize(img, nh, nw):
    if (nh, nw) == img.shape[:2]:
        return img.copy()
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)


def pattern(h, w):
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return ((7 * x + 13 * y + 101 * c + (x * y) % 31) % 256).astype(np.uint8)


def normalise_pad(imgs, divisor):
    ts = [(torch.from_numpy(i).permute(2, 0, 1).float() - MEAN) / STD for i in imgs]
    H = max(t.shape[1] for t in ts)
    W = max(t.shape[2] for t in ts)
    H, W = -(-H // divisor) * divisor, -(-W // divisor) * divisor
    out = torch.zeros(len(ts), 3, H, W)
    for i, t in enumerate(ts):
        out[i, :, :t.shape[1], :t.shape[2]] = t
    return out


def main():
    path = sys.argv[1]
    with h5py.File(path, "w") as f:
        rows = []
        fixed = [(720, 1280, 1333, 800), (480, 640, 1024, 1024), (1080, 1920, 1024, 1024),
                 (375, 1242, 1333, 800), (1, 1, 1024, 1024), (3, 1000, 1024, 1024),
                 (1000, 3, 1333, 800), (333, 333, 800, 1333), (601, 799, 1024, 1024)]
        for h, w, L, S in fixed + [tuple(int(v) for v in RNG.integers(1, 2000, 2)) +
                                   ((1024, 1024) if k % 2 else (1333, 800)) for k in range(300)]:
            rows.append([h, w, L, S, *rescale_size(h, w, L, S)])
        f.create_dataset("sizes", data=np.array(rows, dtype=np.float32))

        cases = {"up": (37, 53, 128, 128), "down": (200, 300, 128, 128),
                 "half": (256, 128, 128, 128),  # exact 2x: cv2 takes its INTER_AREA path
                 "detic": (48, 64, 133, 80), "tiny": (1, 5, 16, 16), "same": (64, 64, 64, 64),
                 "thin": (3, 200, 100, 100), "odd": (101, 67, 97, 61), "wide": (19, 301, 50, 50)}
        imgs = {}
        for name, (h, w, L, S) in cases.items():
            img = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
            nh, nw = rescale_size(h, w, L, S)
            out = resize(img, nh, nw)
            imgs[name] = (img, out)
            f.create_dataset(f"img/{name}", data=img.astype(np.float32))
            f.create_dataset(f"cfg/{name}", data=np.array([L, S], dtype=np.float32))
            f.create_dataset(f"out/{name}", data=out.astype(np.float32))
            f.create_dataset(f"scale/{name}", data=np.array([nw / w, nh / h], dtype=np.float32))

        for name, (h, w, L, S) in {"vga": (480, 640, 1024, 1024),
                                   "hd": (720, 1280, 1333, 800)}.items():
            nh, nw = rescale_size(h, w, L, S)
            out = resize(pattern(h, w), nh, nw).reshape(-1).astype(np.int64)
            wts = np.arange(out.size, dtype=np.int64) % 251 + 1
            idx = np.sort(RNG.choice(out.size, 4096, replace=False)).astype(np.int64)
            f.create_dataset(f"pattern/{name}", data=np.array([h, w, L, S, nh, nw], np.float32))
            f.create_dataset(f"psum/{name}", data=np.array([out.sum(), (out * wts).sum()], np.int64))
            f.create_dataset(f"pidx/{name}", data=idx)
            f.create_dataset(f"pval/{name}", data=out[idx].astype(np.float32))

        outs = [imgs["up"][1], imgs["down"][1]]
        batch = normalise_pad(outs, 32)
        f.create_dataset("batch", data=batch.numpy())
        f.create_dataset("batch_meta", data=np.array(
            [[*imgs[k][0].shape[:2], *imgs[k][1].shape[:2]] for k in ("up", "down")], np.float32))

        h, w = imgs["down"][0].shape[:2]
        nh, nw = imgs["down"][1].shape[:2]
        xy = RNG.uniform(0, 1, (7, 4)) * np.array([w, h, w, h])
        boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:]),
                                RNG.uniform(0, 1, (7, 1))], 1).astype(np.float32)
        sf = torch.tensor([nw / w, nh / h], dtype=torch.float32).repeat(2)
        scaled = torch.from_numpy(boxes.copy())
        scaled[:, :4] = scaled[:, :4] * sf
        f.create_dataset("boxes", data=boxes)
        f.create_dataset("boxes_scaled", data=scaled.numpy())
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
