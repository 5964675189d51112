#!/usr/bin/python3
"""Oracle for tests/test_activation.c: ReLU, GELU (erf), sigmoid, hard sigmoid (mmcv HSigmoid,
bias 3, divisor 6), row softmax / log-softmax, global average pool and mmdet's DyReLU.

Usage: /usr/bin/python3 tests/oracle_activation.py OUT.h5

Reference: torch 1.13 CPU in float64 on float32-rounded inputs; results rounded to float32.
`dy` is a random upstream gradient. Elementwise inputs keep |x| >= 0.01 away from ReLU's kink and
| |x| - 3 | >= 0.01 away from the hard sigmoid's kinks (the C finite differences use smaller steps).

Groups (float32 datasets):
  relu/ gelu/ sigmoid/ hsigmoid/   x, dy, y, dx
  softmax<K>/ logsoftmax<K>/       meta [rows, cols]; x, dy, y, dx
  gap/                             meta [n, c, h, w]; x, dy (n, c), y (n, c), dx
  dyrelu<K>/  meta [n, c, h, w, c_mid]; x, w1 (c_mid, c), b1, w2 (4c, c_mid), b2, dy, y,
              dx, dw1, db1, dw2, db2, z (n, 4c: the HSigmoid input, for the C test's kink checks)
DyReLU is built from torch modules exactly as mmdet's (dyhead.py / se_layer.py):
  AdaptiveAvgPool2d(1) -> Conv2d(c, c/4, 1) + ReLU -> Conv2d(c/4, 4c, 1) + HSigmoid -> - 0.5,
  split (a1, b1, a2, b2); a1 = 2 a1 + 1, a2 = 2 a2; out = max(x a1 + b1, x a2 + b2).
Its weights are drawn so that no HSigmoid input lies within 0.1 of +-3 and no ReLU input within
0.05 of 0, and inputs are moved so that |x a1 + b1 - (x a2 + b2)| >= 0.05 everywhere: finite
differences in the C test (steps 1e-2) do not cross a kink of the ReLU, HSigmoid or max.
"""
import sys

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F

GEN = torch.Generator().manual_seed(20240603)


def randn(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale + shift).float().double()


def uniform(*shape, lo, hi):
    return (torch.rand(*shape, generator=GEN, dtype=torch.float64) * (hi - lo) + lo).float().double()


def put(g, name, t):
    g.create_dataset(name, data=t.detach().to(torch.float32).numpy())


def away_from(x, kinks, gap):
    """Moves values within `gap` of a kink to kink +- gap (same side)."""
    x = x.clone()
    for k in kinks:
        d = x - k
        near = d.abs() < gap
        x[near] = k + torch.where(d[near] >= 0, torch.tensor(gap, dtype=x.dtype),
                                  torch.tensor(-gap, dtype=x.dtype))
    return x.float().double()


def elementwise(f, name, fn, x):
    g = f.create_group(name)
    x = x.clone().requires_grad_()
    y = fn(x)
    dy = randn(*y.shape)
    y.backward(dy)
    for k, t in [("x", x), ("dy", dy), ("y", y), ("dx", x.grad)]:
        put(g, k, t)


class HSigmoid(nn.Module):
    """mmcv.cnn.HSigmoid(bias=3.0, divisor=6.0)."""

    def forward(self, x):
        return ((x + 3.0) / 6.0).clamp(0.0, 1.0)


class DyReLU(nn.Module):
    """mmdet DyReLU (ratio 4, expansion 4) with plain conv + activation modules."""

    def __init__(self, c, ratio=4):
        super().__init__()
        self.c = c
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(c, c // ratio, 1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c // ratio, 4 * c, 1)
        self.act2 = HSigmoid()

    def coeffs(self, x):
        h = self.act1(self.conv1(self.pool(x)))
        return self.conv2(h), h

    def split_coeffs(self, x):
        z, _ = self.coeffs(x)
        t = self.act2(z) - 0.5
        a1, b1, a2, b2 = torch.split(t, self.c, dim=1)
        return a1 * 2.0 + 1.0, b1, a2 * 2.0, b2

    def forward(self, x):
        a1, b1, a2, b2 = self.split_coeffs(x)
        return torch.max(x * a1 + b1, x * a2 + b2)


def dyrelu_case(f, idx, n, c, h, w):
    g = f.create_group(f"dyrelu{idx}")
    cm = c // 4
    for _ in range(1000):
        m = DyReLU(c).double()
        x = randn(n, c, h, w, scale=1.5, shift=0.3)
        with torch.no_grad():
            m.conv1.weight.copy_(randn(cm, c, 1, 1, scale=2.0 / c ** 0.5))
            m.conv1.bias.copy_(randn(cm, scale=0.5))
            m.conv2.weight.copy_(randn(4 * c, cm, 1, 1, scale=3.0 / cm ** 0.5))
            m.conv2.bias.copy_(randn(4 * c, scale=0.5))
            hpre = m.conv1(m.pool(x))
            z, _ = m.coeffs(x)
        if not (hpre.abs().min() > 0.05 and ((z.abs() - 3.0).abs().min() > 0.1)
                and (z.abs() > 3).any()):
            continue
        # Move inputs off the max's ties: |u1 - u2| >= 0.05 everywhere (the coefficients depend
        # on x through the pooling, hence the few rounds).
        for _ in range(20):
            with torch.no_grad():
                a1, b1, a2, b2 = m.split_coeffs(x)
                diff = x * (a1 - a2) + (b1 - b2)
                near = (diff.abs() < 0.05) & ((a1 - a2).abs() > 0.02).expand_as(diff)
                if not near.any():
                    break
                xstar = (b2 - b1) / (a1 - a2)
                target = xstar + torch.sign(diff) * 0.06 / (a1 - a2).abs()
                x = torch.where(near, target.expand_as(x), x).float().double()
        with torch.no_grad():
            a1, b1, a2, b2 = m.split_coeffs(x)
            diff = x * (a1 - a2) + (b1 - b2)
            hpre = m.conv1(m.pool(x))
            z, _ = m.coeffs(x)
        if (diff.abs().min() > 0.05 and hpre.abs().min() > 0.05
                and (z.abs() - 3.0).abs().min() > 0.1):
            break
    else:
        raise SystemExit("could not draw DyReLU weights away from the kinks")
    x.requires_grad_()
    y = m(x)
    dy = randn(*y.shape)
    y.backward(dy)
    put(g, "meta", torch.tensor([n, c, h, w, cm], dtype=torch.float64))
    for k, t in [("x", x), ("w1", m.conv1.weight.reshape(cm, c)), ("b1", m.conv1.bias),
                 ("w2", m.conv2.weight.reshape(4 * c, cm)), ("b2", m.conv2.bias), ("dy", dy),
                 ("y", y), ("dx", x.grad), ("dw1", m.conv1.weight.grad.reshape(cm, c)),
                 ("db1", m.conv1.bias.grad), ("dw2", m.conv2.weight.grad.reshape(4 * c, cm)),
                 ("db2", m.conv2.bias.grad), ("z", z.reshape(n, 4 * c))]:
        put(g, k, t)


def softmax_case(f, idx, x):
    for name, fn in [("softmax", lambda t: F.softmax(t, dim=1)),
                     ("logsoftmax", lambda t: F.log_softmax(t, dim=1))]:
        g = f.create_group(f"{name}{idx}")
        xx = x.clone().requires_grad_()
        y = fn(xx)
        dy = randn(*y.shape)
        y.backward(dy)
        put(g, "meta", torch.tensor(list(x.shape), dtype=torch.float64))
        for k, t in [("x", xx), ("dy", dy), ("y", y), ("dx", xx.grad)]:
            put(g, k, t)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: oracle_activation.py OUT.h5")
    torch.set_num_threads(1)
    with h5py.File(sys.argv[1], "w") as f:
        elementwise(f, "relu", torch.relu, away_from(randn(3, 5, 7, 9), [0.0], 0.01))
        xg = torch.cat([randn(1000, scale=2.0), uniform(24, lo=-12, hi=12)])
        elementwise(f, "gelu", lambda t: F.gelu(t), xg.float().double())
        xs = torch.cat([randn(1000, scale=3.0), torch.tensor([-80.0, -30.0, 30.0, 80.0, 0.0],
                                                             dtype=torch.float64)])
        elementwise(f, "sigmoid", torch.sigmoid, xs)
        xh = away_from(uniform(1000, lo=-5, hi=5), [-3.0, 3.0], 0.01)
        elementwise(f, "hsigmoid", HSigmoid(), xh)
        # Rows with magnitudes up to 80; a constant row; a row with one dominant entry.
        x0 = uniform(6, 37, lo=-80, hi=80)
        x0[4] = 5.0
        x0[5] = uniform(37, lo=-1, hi=1)
        x0[5, 11] = 80.0
        softmax_case(f, 0, x0)
        softmax_case(f, 1, randn(1, 1000, scale=4.0))
        softmax_case(f, 2, randn(9, 3))
        g = f.create_group("gap")
        x = randn(2, 5, 7, 9).requires_grad_()
        y = x.mean(dim=(2, 3))
        dy = randn(2, 5)
        y.backward(dy)
        put(g, "meta", torch.tensor([2, 5, 7, 9], dtype=torch.float64))
        for k, t in [("x", x), ("dy", dy), ("y", y), ("dx", x.grad)]:
            put(g, k, t)
        # n, c, h, w  (c_mid = c / 4)
        dyrelu_case(f, 0, 2, 16, 5, 7)
        dyrelu_case(f, 1, 1, 8, 3, 3)
        dyrelu_case(f, 2, 3, 32, 6, 4)


if __name__ == "__main__":
    main()
