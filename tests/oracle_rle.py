#!/usr/bin/python3
"""Oracle for tests/test_rle.c: COCO RLE through pycocotools.mask (the reference implementation).

Usage: .venv/bin/python tests/oracle_rle.py OUT.h5

Groups (h5py; the C side reads float32 and int64 datasets):
  mask<K>/  mask (h, w) float32 0/1 row-major (gzip); meta float32 [h, w, area, x, y, bw, bh];
            str int64 char codes of pycocotools' compressed counts; runs int64 uncompressed counts
            (computed here with numpy and checked against pycocotools: frPyObjects of them
            compresses to the same string).
  raw<K>/   non-canonical uncompressed counts (zero-length runs inside): meta [h, w, area];
            runs int64; str int64 (pycocotools compresses counts verbatim).
  poly<K>/  meta float32 [h, w, area, x, y, bw, bh, n_polygons]; xy<J> int64 = the IEEE bits of
            float64 coordinates x0, y0, x1, y1, ... (exact doubles for the rounding rules);
            str int64 (pycocotools frPyObjects, merged when several polygons).
"""
import sys

import h5py
import numpy as np
from pycocotools import mask as M

RNG = np.random.default_rng(20240611)


def runs_of(mask):
    """Column-major runs starting with zeros (independent of pycocotools)."""
    flat = np.asfortranarray(mask).reshape(-1, order="F").astype(np.int8)
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = list(np.diff(edges))
    if flat[0] == 1:
        runs = [0] + runs
    return [int(r) for r in runs]


def codes(b):
    return np.frombuffer(b, dtype=np.uint8).astype(np.int64) if len(b) else np.zeros(0, np.int64)


def put_str(g, b):
    # h5py cannot store an empty dataset portably for our reader: pad with a length prefix.
    c = codes(b)
    g.create_dataset("str", data=np.concatenate([[len(c)], c]).astype(np.int64))


def add_mask(f, k, m):
    m = np.ascontiguousarray(m.astype(np.uint8))
    h, w = m.shape
    rle = M.encode(np.asfortranarray(m))
    runs = runs_of(m)
    again = M.frPyObjects({"counts": runs, "size": [h, w]}, h, w)
    assert again["counts"] == rle["counts"], (k, "numpy runs disagree with pycocotools")
    assert (M.decode(rle) == m).all()
    area = float(M.area(rle))
    box = [float(v) for v in M.toBbox(rle)]
    g = f.create_group(f"mask{k}")
    g.create_dataset("mask", data=m.astype(np.float32), compression="gzip")
    g.create_dataset("meta", data=np.array([h, w, area] + box, np.float32))
    put_str(g, rle["counts"])
    g.create_dataset("runs", data=np.array(runs, np.int64))


def blobs(h, w, n, rng):
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ay, ax = rng.uniform(2, h / 4), rng.uniform(2, w / 4)
        th = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(th) + dy * np.sin(th)
        v = -dx * np.sin(th) + dy * np.cos(th)
        e = (u / ax) ** 2 + (v / ay) ** 2 < 1
        m = m ^ e if rng.uniform() < 0.3 else m | e
    return m


def mask_cases():
    cases = []
    ex = np.zeros((4, 5), np.uint8)
    ex[1:3, 1:4] = 1  # formats-metrics.md worked example: "5220003"
    cases.append(ex)
    cases.append(np.zeros((7, 5)))
    cases.append(np.ones((6, 9)))
    for (y, x) in [(0, 0), (5, 8), (0, 8), (5, 0), (3, 4)]:
        m = np.zeros((6, 9))
        m[y, x] = 1
        cases.append(m)
    cases.append(np.ones((1, 1)))
    cases.append(np.zeros((1, 1)))
    cases.append(RNG.uniform(size=(1, 37)) < 0.5)
    cases.append(RNG.uniform(size=(41, 1)) < 0.5)
    cases.append(np.ones((1, 23)))
    cases.append(np.ones((29, 1)))
    for (h, w, p) in [(13, 17, 0.1), (13, 17, 0.5), (13, 17, 0.9), (64, 48, 0.5), (31, 200, 0.02),
                      (200, 31, 0.98)]:
        cases.append(RNG.uniform(size=(h, w)) < p)
    # full columns and rows: runs that cross column boundaries
    m = np.zeros((10, 12))
    m[:, 3:6] = 1
    cases.append(m)
    m = np.zeros((10, 12))
    m[9, 2] = 1
    m[0, 3] = 1  # one run across the column boundary, box must span the full height
    cases.append(m)
    m = np.zeros((10, 12))
    m[4, :] = 1
    cases.append(m)
    for (h, w, n) in [(97, 131, 5), (240, 320, 12), (480, 640, 30)]:
        cases.append(blobs(h, w, n, RNG))
    cases.append(blobs(1500, 2250, 40, RNG))  # SA-1B size: long runs, large deltas
    m = np.zeros((1500, 2250))
    m[1499, 2249] = 1
    cases.append(m)
    return cases


def raw_cases(f):
    # Non-canonical counts: zero-length runs inside (pycocotools keeps them verbatim).
    for k, (runs, h, w) in enumerate([([0, 0, 3, 0, 2, 5], 2, 5), ([4, 0, 0, 6], 5, 2),
                                      ([0, 10], 2, 5), ([10, 0], 5, 2)]):
        rle = M.frPyObjects({"counts": runs, "size": [h, w]}, h, w)
        g = f.create_group(f"raw{k}")
        g.create_dataset("meta", data=np.array([h, w, float(M.area(rle))], np.float32))
        g.create_dataset("runs", data=np.array(runs, np.int64))
        put_str(g, rle["counts"])


def polygon(rng, h, w, kind):
    n = int(rng.integers(3, 24))
    if kind == "star":
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(1, min(h, w) / 2)
        th = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.3, 1.0, n)
        xy = np.stack([cx + rad * np.cos(th), cy + rad * np.sin(th)], 1)
    elif kind == "wild":  # self-intersecting, partly outside
        xy = np.stack([rng.uniform(-8, w + 8, n), rng.uniform(-8, h + 8, n)], 1)
    elif kind == "coco":  # two decimals, as in COCO files
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        th = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.5, min(h, w) / 3) * rng.uniform(0.5, 1.0, n)
        xy = np.round(np.stack([cx + rad * np.cos(th), cy + rad * np.sin(th)], 1), 2)
    elif kind == "grid":  # on the 1/10 grid: exact ties of (int)(5v + 0.5)
        xy = np.stack([rng.integers(-20, 10 * w + 20, n) / 10, rng.integers(-20, 10 * h + 20, n) / 10], 1)
    elif kind == "halves":  # x.5 and x.7 etc. around pixel centres
        xy = np.stack([rng.integers(0, w, n) + rng.choice([0.3, 0.5, 0.7, 0.9], n),
                       rng.integers(0, h, n) + rng.choice([0.1, 0.5, 0.6], n)], 1)
    else:
        raise ValueError(kind)
    return [float(v) for v in xy.reshape(-1)]


def poly_cases():
    cases = []
    for (h, w) in [(20, 30), (7, 5), (64, 48), (100, 150), (480, 640)]:
        for kind in ["star", "wild", "coco", "grid", "halves"]:
            for _ in range(4):
                cases.append((h, w, [polygon(RNG, h, w, kind)]))
    # Hand-made edges
    cases.append((10, 10, [[1, 1, 3, 1, 3, 3, 1, 3]]))
    cases.append((10, 10, [[0, 0, 10, 0, 10, 10, 0, 10]]))  # whole image
    cases.append((10, 10, [[-5, -5, 20, -5, 20, 20, -5, 20]]))  # beyond the image
    cases.append((10, 10, [[20, 20, 30, 20, 30, 30]]))  # outside entirely
    cases.append((10, 10, [[2.2, 2.2, 2.4, 2.2, 2.4, 2.4]]))  # inside one pixel
    cases.append((10, 10, [[1, 1, 1, 1, 5, 1, 5, 5, 5, 5, 1, 5]]))  # repeated vertices
    cases.append((10, 10, [[1, 1, 5, 5, 9, 9]]))  # collinear
    cases.append((10, 10, [[-0.1, -0.1, 4.5, -0.3, 4.5, 4.5, -0.2, 4.5]]))  # small negatives
    cases.append((12, 9, [[0.5, 0.5, 8.5, 0.5, 8.5, 11.5, 0.5, 11.5]]))
    cases.append((12, 9, [[0, 0, 8.9, 0, 8.9, 11.9, 0, 11.9]]))
    # Several polygons per annotation (merged like COCO's annToRLE)
    for _ in range(6):
        h, w = int(RNG.integers(20, 90)), int(RNG.integers(20, 90))
        cases.append((h, w, [polygon(RNG, h, w, k) for k in ["star", "coco", "wild"][: int(RNG.integers(2, 4))]]))
    return cases


def main():
    out = sys.argv[1]
    with h5py.File(out, "w") as f:
        masks = mask_cases()
        for k, m in enumerate(masks):
            add_mask(f, k, m)
        raw_cases(f)
        polys = poly_cases()
        for k, (h, w, ps) in enumerate(polys):
            rles = M.frPyObjects(ps, h, w)
            rle = rles[0] if len(rles) == 1 else M.merge(rles)
            g = f.create_group(f"poly{k}")
            box = [float(v) for v in M.toBbox(rle)]
            g.create_dataset("meta", data=np.array([h, w, float(M.area(rle))] + box + [len(ps)], np.float32))
            for j, p in enumerate(ps):
                g.create_dataset(f"xy{j}", data=np.array(p, np.float64).view(np.int64))
            put_str(g, rle["counts"])
        f.attrs["n_mask"] = len(masks)
        f.create_dataset("counts", data=np.array([len(masks), 4, len(polys)], np.float32))
    print(f"oracle_rle: {len(masks)} masks, 4 raw, {len(polys)} polygon cases -> {out}")


if __name__ == "__main__":
    main()
