# Oracle for tests/test_views.c: the official two-view steps (mmdet 3.3 RandomAffine, MixUp,
# YOLOXHSVRandomAug, RandomResize, RandomCrop, RandomFlip, Pad, FilterAnnotations; masa-spec
# §5.3) run one after another with OpenCV on given parameters, so the C side can check that its
# single composed resample and its `corners` box mode reproduce them.
# Usage: .venv/bin/python tests/oracle_views.py OUT.h5
#
# Datasets: main (H, W, 3), mix (Hm, Wm, 3) smooth RGB test images; main_boxes (n, 4) and
# mix_boxes (m, 4) as COCO x, y, w, h (ids 1..n, 1..m); size = [S];
# caseK/params (17) = rotate, scale, shear_x, shear_y, translate_x, translate_y, mix_jitter,
#   mix_flip, mix_off_x, mix_off_y, hsv_h, hsv_s, hsv_v, resize_ratio, crop_x, crop_y, flip;
# caseK/img (S, S, 3) the official view (RGB); caseK/boxes (k, 4) x1 y1 x2 y2; caseK/ids (k),
#   mixup ids negative (-id);
# hsv_in (n, 3) RGB pixels, hsv_gain (g, 3), hsv_out (g, n, 3): cv2 BGR2HSV, + gain, HSV2BGR.
import sys

import cv2
import h5py
import numpy as np

SEED = 20240613
S = 128
PAD = 114


def smooth_image(h, w, phase):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127.5 + 90 * np.sin(x / 23.0 + y / 41.0 + phase)
    g = 127.5 + 90 * np.cos(x / 37.0 - y / 29.0 + 2 * phase)
    b = 127.5 + 90 * np.sin((x + y) / 31.0 - phase)
    return np.clip(np.stack([r, g, b], -1) + 0.5, 0, 255).astype(np.uint8)


def hsv_jitter(img_rgb, gain):
    bgr = np.ascontiguousarray(img_rgb[..., ::-1])
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + gain[0]) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + gain[1], 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + gain[2], 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    return np.ascontiguousarray(out[..., ::-1])


def is_inside(b, w, h):
    return (b[:, 0] < w) & (b[:, 1] < h) & (b[:, 2] > 0) & (b[:, 3] > 0)


def official_view(main, mix, main_xyxy, mix_xyxy, p):
    (rot, sc, shx, shy, tx, ty, jit, mflip, mox, moy, gh, gs, gv, rr, cx, cy, flip) = p
    H, W = main.shape[:2]
    # RandomAffine: M = T @ Sh @ R @ S, corners projected, clipped, outside dropped.
    a = np.deg2rad(rot)
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    Sc = np.diag([sc, sc, 1.0])
    Sh = np.array([[1, np.tan(np.deg2rad(shx)), 0], [np.tan(np.deg2rad(shy)), 1, 0], [0, 0, 1]])
    T = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])
    M = T @ Sh @ R @ Sc
    img = cv2.warpPerspective(main, M, dsize=(W, H), borderValue=(PAD, PAD, PAD))
    b = main_xyxy
    xs = b[:, [0, 2, 2, 0]]
    ys = b[:, [1, 1, 3, 3]]
    pts = np.stack([xs, ys, np.ones_like(xs)], 1)  # (n, 3, 4)
    q = np.einsum("ij,njk->nik", M, pts)
    q = q[:, :2] / q[:, 2:3]
    boxes = np.stack([q[:, 0].min(1), q[:, 1].min(1), q[:, 0].max(1), q[:, 1].max(1)], 1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, W)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, H)
    ids = np.arange(1, len(b) + 1)
    keep = is_inside(boxes, W, H)
    boxes, ids = boxes[keep], ids[keep]
    # MixUp (always): fit into S x S, jitter, flip, pad + crop to the current size, blend.
    mh, mw = mix.shape[:2]
    out = np.full((S, S, 3), PAD, np.uint8)
    ratio = min(S / mh, S / mw)
    r_img = cv2.resize(mix, (int(mw * ratio), int(mh * ratio)), interpolation=cv2.INTER_LINEAR)
    out[: r_img.shape[0], : r_img.shape[1]] = r_img
    ratio *= jit
    out = cv2.resize(out, (int(out.shape[1] * jit), int(out.shape[0] * jit)), interpolation=cv2.INTER_LINEAR)
    if mflip:
        out = out[:, ::-1, :]
    oh, ow = out.shape[:2]
    padded = np.full((max(oh, H), max(ow, W), 3), PAD, np.uint8)
    padded[:oh, :ow] = out
    crop = padded[int(moy) : int(moy) + H, int(mox) : int(mox) + W]
    mb = mix_xyxy * ratio
    if mflip:
        mb = np.stack([ow - mb[:, 2], mb[:, 1], ow - mb[:, 0], mb[:, 3]], 1)
    mb = mb - np.array([mox, moy, mox, moy])
    img = (0.5 * img.astype(np.float32) + 0.5 * crop.astype(np.float32)).astype(np.uint8)
    boxes = np.concatenate([boxes, mb])
    ids = np.concatenate([ids, -np.arange(1, len(mb) + 1)])
    keep = is_inside(boxes, W, H)
    boxes, ids = boxes[keep], ids[keep]
    # YOLOXHSVRandomAug
    img = hsv_jitter(img, (int(gh), int(gs), int(gv)))
    # RandomResize: long side int(S * r), keep ratio, mmcv sizes int(x * f + 0.5).
    target = int(S * rr)
    f = min(target / max(H, W), target / min(H, W))
    nw, nh = int(W * f + 0.5), int(H * f + 0.5)
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    boxes = boxes * np.array([nw / W, nh / H, nw / W, nh / H])
    # RandomCrop (boxes moved, not clipped, outside dropped)
    ch, cw = min(S, nh), min(S, nw)
    img = img[int(cy) : int(cy) + ch, int(cx) : int(cx) + cw]
    boxes = boxes - np.array([cx, cy, cx, cy])
    keep = is_inside(boxes, cw, ch)
    boxes, ids = boxes[keep], ids[keep]
    # RandomFlip
    if flip:
        img = img[:, ::-1]
        boxes = np.stack([cw - boxes[:, 2], boxes[:, 1], cw - boxes[:, 0], boxes[:, 3]], 1)
    # Pad
    view = np.full((S, S, 3), PAD, np.uint8)
    view[:ch, :cw] = img
    # FilterAnnotations: w > 1 and h > 1
    keep = (boxes[:, 2] - boxes[:, 0] > 1) & (boxes[:, 3] - boxes[:, 1] > 1)
    return view, boxes[keep], ids[keep]


def main():
    rng = np.random.default_rng(SEED)
    main_img = smooth_image(150, 200, 0.3)
    mix_img = smooth_image(120, 90, 1.7)
    H, W = main_img.shape[:2]
    mh, mw = mix_img.shape[:2]

    def random_boxes(n, h, w):
        x = rng.uniform(0, w - 10, n)
        y = rng.uniform(0, h - 10, n)
        bw = rng.uniform(2, w / 2, n)
        bh = rng.uniform(2, h / 2, n)
        return np.stack([x, y, bw, bh], 1).astype(np.float32)

    main_boxes = random_boxes(12, H, W)
    mix_boxes = random_boxes(6, mh, mw)
    to_xyxy = lambda b: np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1).astype(np.float64)

    with h5py.File(sys.argv[1], "w") as f:
        f["main"] = main_img.astype(np.float32)
        f["mix"] = mix_img.astype(np.float32)
        f["main_boxes"] = main_boxes
        f["mix_boxes"] = mix_boxes
        f["size"] = np.array([S], np.float32)
        ncases = 8
        for k in range(ncases):
            f32 = lambda v: float(np.float32(v))
            rot = f32(rng.uniform(-10, 10))
            sc = f32(rng.uniform(0.5, 1.5))
            shx, shy = f32(rng.uniform(-2, 2)), f32(rng.uniform(-2, 2))
            tx, ty = f32(rng.uniform(-0.1, 0.1) * W), f32(rng.uniform(-0.1, 0.1) * H)
            jit = f32(rng.uniform(0.8, 1.6))
            mflip = int(rng.uniform() > 0.5)
            cj = int(S * jit)
            ph, pw = max(cj, H), max(cj, W)
            moy = int(rng.integers(0, ph - H)) if ph > H else 0
            mox = int(rng.integers(0, pw - W)) if pw > W else 0
            gains = (rng.uniform(-1, 1, 3) * [5, 30, 30] * rng.integers(0, 2, 3)).astype(np.int16)
            if k < 3:
                gains[:] = 0  # geometry alone
            # Resize ratios where neither pipeline aliases much (the chain and the single
            # resample differ most where the image is shrunk far below its detail).
            rr = f32(rng.uniform(0.6, 2.0))
            target = int(S * rr)
            fct = min(target / max(H, W), target / min(H, W))
            nw, nh = int(W * fct + 0.5), int(H * fct + 0.5)
            cy = int(rng.integers(0, nh - min(S, nh) + 1))
            cx = int(rng.integers(0, nw - min(S, nw) + 1))
            flip = int(rng.uniform() < 0.5)
            p = [rot, sc, shx, shy, tx, ty, jit, mflip, mox, moy, int(gains[0]), int(gains[1]),
                 int(gains[2]), rr, cx, cy, flip]
            view, boxes, ids = official_view(main_img, mix_img, to_xyxy(main_boxes), to_xyxy(mix_boxes), p)
            g = f.create_group(f"case{k}")
            g["params"] = np.array(p, np.float32)
            g["img"] = view.astype(np.float32)
            g["boxes"] = boxes.astype(np.float32).reshape(-1, 4)
            g["ids"] = ids.astype(np.float32)
        f["ncases"] = np.array([ncases], np.float32)

        # HSV: random pixels plus greys, primaries and extremes, under several gains.
        px = rng.integers(0, 256, (4000, 3)).astype(np.uint8)
        special = np.array([[0, 0, 0], [255, 255, 255], [114, 114, 114], [255, 0, 0], [0, 255, 0],
                            [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255], [1, 0, 0],
                            [128, 127, 127], [254, 255, 255]], np.uint8)
        px = np.concatenate([px, special])
        gains = np.array([[0, 0, 0], [5, 0, 0], [-5, 0, 0], [0, 30, 0], [0, -30, 0], [0, 0, 30],
                          [0, 0, -30], [-3, 17, -22], [4, -29, 29]], np.int16)
        outs = np.stack([hsv_jitter(px[None], gn)[0] for gn in gains])
        f["hsv_in"] = px.astype(np.float32)
        f["hsv_gain"] = gains.astype(np.float32)
        f["hsv_out"] = outs.astype(np.float32)


if __name__ == "__main__":
    main()
