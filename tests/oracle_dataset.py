#!/usr/bin/python3
"""Oracle for tests/test_dataset.c: image files in several encodings and OpenCV's decodes of them.

Usage: .venv/bin/python tests/oracle_dataset.py OUT.h5

Writes the images into OUT.h5.files/ and, in OUT.h5, float32 datasets (h, w, 3) RGB:
  <name>        cv2.imread(IMREAD_COLOR) of OUT.h5.files/<name>
  <name>_d<k>   cv2.imread(IMREAD_REDUCED_COLOR_k): libjpeg's DCT-domain scaling, k = 2, 4, 8
Files: c420.jpg (odd size, 4:2:0), c444.jpg (4:4:4), gray.jpg, cmyk.jpg (Adobe CMYK from PIL),
prog.jpg (progressive), rgb.png, rgba.png, gray.png, pal.png (palette), big.jpg (1500 x 2250,
for timing only, no reference).
"""
import os
import sys

import cv2
import h5py
import numpy as np
from PIL import Image

RNG = np.random.default_rng(7)


def picture(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([
        127 + 100 * np.sin(xx / 7.0 + yy / 13.0),
        127 + 100 * np.cos(yy / 5.0),
        (xx * 255 / w + 40 * RNG.standard_normal((h, w))),
    ], -1)
    img[h // 3: h // 2, w // 4: w // 2] = [250, 20, 30]  # sharp edges
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    d = out + ".files"
    os.makedirs(d, exist_ok=True)
    rgb = picture(97, 131)
    Image.fromarray(rgb).save(f"{d}/c420.jpg", quality=90, subsampling=2)
    Image.fromarray(rgb).save(f"{d}/c444.jpg", quality=95, subsampling=0)
    Image.fromarray(rgb).convert("L").save(f"{d}/gray.jpg", quality=90)
    Image.fromarray(rgb).convert("CMYK").save(f"{d}/cmyk.jpg", quality=95)
    Image.fromarray(rgb).save(f"{d}/prog.jpg", quality=85, progressive=True)
    Image.fromarray(rgb).save(f"{d}/rgb.png")
    a = np.concatenate([rgb, RNG.integers(0, 256, rgb.shape[:2] + (1,), dtype=np.uint8)], -1)
    Image.fromarray(a, "RGBA").save(f"{d}/rgba.png")
    Image.fromarray(rgb).convert("L").save(f"{d}/gray.png")
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=64).save(f"{d}/pal.png")
    big = picture(1500, 2250)
    cv2.imwrite(f"{d}/big.jpg", big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    with h5py.File(out, "w") as f:
        for name in ["c420.jpg", "c444.jpg", "gray.jpg", "cmyk.jpg", "prog.jpg", "rgb.png", "rgba.png",
                     "gray.png", "pal.png"]:
            ref = cv2.imread(f"{d}/{name}", cv2.IMREAD_COLOR)
            f.create_dataset(name, data=ref[..., ::-1].astype(np.float32))
            if name.endswith(".jpg"):
                for k, flag in [(2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
                                (8, cv2.IMREAD_REDUCED_COLOR_8)]:
                    r = cv2.imread(f"{d}/{name}", flag)
                    f.create_dataset(f"{name}_d{k}", data=r[..., ::-1].astype(np.float32))
    print(f"oracle_dataset: images in {d}, OpenCV decodes in {out}")


if __name__ == "__main__":
    main()
