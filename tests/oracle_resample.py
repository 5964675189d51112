# Oracle for tests/test_resample.c: F.max_pool2d (with indices), F.interpolate 'nearest' (legacy
# rule) and 'bilinear' align_corners=True with an output size, gradients by autograd for a fixed
# upstream gradient dy. Computed in float64 (max-pool and nearest copy values, so that is exact).
# Usage: /usr/bin/python3 tests/oracle_resample.py OUT.h5
#
# Groups: poolI/ {x, y, idx (argmax as float), dy, dx, params = [n, c, h, w, k, s]},
# nearestI/ and bilinearI/ {x, y, dy, dx, params = [n, c, h, w, ho, wo]}.
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240612


def f32(t):
    return t.detach().numpy().astype(np.float32)


def write(f, name, x, params, fn, rng):
    xt = torch.from_numpy(x).double().requires_grad_(True)
    out = fn(xt)
    y, idx = out if isinstance(out, tuple) else (out, None)
    dy = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.from_numpy(dy).double())
    g = f.create_group(name)
    g["x"] = x
    g["y"] = f32(y)
    g["dy"] = dy
    g["dx"] = f32(xt.grad)
    g["params"] = np.array(params, np.float32)
    if idx is not None:
        g["idx"] = idx.numpy().astype(np.float32)


def main():
    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    with h5py.File(sys.argv[1], "w") as f:
        # Max-pool: distinct values (a shuffled ramp, spacing >= 0.01) so there are no ties within
        # a finite-difference step; odd sizes show floor(h/2) (k 2) against ceil(h/2) (k 1).
        i = 0
        for (n, c, h, w) in ((3, 2, 7, 5), (1, 3, 8, 6), (2, 2, 1, 5), (1, 2, 9, 4)):
            for (k, s) in ((1, 2), (2, 2)):
                if h < k or w < k:
                    continue
                m = n * c * h * w
                x = (rng.permutation(m).astype(np.float64) * (4.0 / max(m, 400)) - 2.0)
                x = x.astype(np.float32).reshape(n, c, h, w)
                write(f, "pool%d" % i, x, [n, c, h, w, k, s],
                      lambda t, k=k, s=s: F.max_pool2d(t, k, s, return_indices=True), rng)
                i += 1
        # Ties (first maximum wins), an all -inf window (index of its first element) and a NaN
        # (propagates and takes the gradient).
        x = rng.integers(0, 3, size=(2, 2, 6, 7)).astype(np.float32)
        x[0, 0, 0:2, 0:2] = -np.inf
        x[1, 1, 2, 3] = np.nan
        for (k, s) in ((2, 2), (1, 2)):
            write(f, "pool%d" % i, x, [2, 2, 6, 7, k, s],
                  lambda t, k=k, s=s: F.max_pool2d(t, k, s, return_indices=True), rng)
            i += 1

        # Nearest: non-integer ratios up and down, exact 2x, identity, and a 1/3 ratio where the
        # scale must be computed in float (dst * float(37/111) falls just below an integer).
        for i, (n, c, h, w, ho, wo) in enumerate(((3, 2, 5, 7, 8, 3), (1, 2, 4, 3, 8, 6),
                                                  (2, 1, 6, 7, 6, 17), (1, 1, 7, 3, 3, 5),
                                                  (1, 1, 37, 29, 111, 87), (1, 2, 50, 9, 20, 2))):
            x = rng.standard_normal((n, c, h, w)).astype(np.float32)
            write(f, "nearest%d" % i, x, [n, c, h, w, ho, wo],
                  lambda t, ho=ho, wo=wo: F.interpolate(t, size=(ho, wo), mode="nearest"), rng)

        # Bilinear align_corners=True: 5x7 -> 13x6, 1 -> 4 and 4 -> 1, identity, downsampling.
        for i, (n, c, h, w, ho, wo) in enumerate(((2, 3, 5, 7, 13, 6), (1, 2, 1, 4, 4, 1),
                                                  (1, 1, 3, 3, 3, 3), (3, 1, 8, 8, 4, 5),
                                                  (1, 2, 6, 5, 11, 9))):
            x = rng.standard_normal((n, c, h, w)).astype(np.float32)
            write(f, "bilinear%d" % i, x, [n, c, h, w, ho, wo],
                  lambda t, ho=ho, wo=wo: F.interpolate(t, size=(ho, wo), mode="bilinear",
                                                        align_corners=True), rng)


if __name__ == "__main__":
    main()
