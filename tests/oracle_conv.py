#!/usr/bin/python3
"""Oracle for tests/test_conv.c: conv2d, conv_transpose2d (kernel 2, stride 2) and linear.

Usage: /usr/bin/python3 tests/oracle_conv.py OUT.h5

Reference: torch.nn.functional conv2d / conv_transpose2d / linear in float64 (torch 1.13, CPU) on
float32-rounded inputs, so the C test sees exactly the oracle's inputs. Outputs and gradients for
the upstream gradient `dy` (random, stored) are rounded to float32 when written.

Groups (float32 datasets):
  conv<K>/   meta [n, c_in, h, w, c_out, k, stride, pad, dil, groups, has_bias, ho, wo]
             x, w, [b], dy, y, dx, dw, [db]
  convt<K>/  meta [n, c_in, h, w, c_out, has_bias]; x, w (c_in, c_out, 2, 2), [b], dy, y, dx, dw, [db]
  linear<K>/ meta [n, in, out, has_bias]; x, w (out, in), [b], dy, y, dx, dw, [db]
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

GEN = torch.Generator().manual_seed(20240601)


def randn(*shape, scale=1.0):
    """float32-representable values held in float64."""
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale).float().double()


def put(g, name, t):
    g.create_dataset(name, data=t.detach().to(torch.float32).numpy())


def conv_case(f, idx, n, c_in, h, w, c_out, k, s, p, d, groups, bias):
    g = f.create_group(f"conv{idx}")
    x = randn(n, c_in, h, w).requires_grad_()
    fan_in = c_in // groups * k * k
    wt = randn(c_out, c_in // groups, k, k, scale=fan_in ** -0.5).requires_grad_()
    b = randn(c_out).requires_grad_() if bias else None
    y = F.conv2d(x, wt, b, stride=s, padding=p, dilation=d, groups=groups)
    dy = randn(*y.shape)
    y.backward(dy)
    ho, wo = y.shape[2], y.shape[3]
    put(g, "meta", torch.tensor([n, c_in, h, w, c_out, k, s, p, d, groups, int(bias), ho, wo],
                                dtype=torch.float64))
    for name, t in [("x", x), ("w", wt), ("dy", dy), ("y", y), ("dx", x.grad), ("dw", wt.grad)]:
        put(g, name, t)
    if bias:
        put(g, "b", b)
        put(g, "db", b.grad)


def convt_case(f, idx, n, c_in, h, w, c_out, bias):
    g = f.create_group(f"convt{idx}")
    x = randn(n, c_in, h, w).requires_grad_()
    wt = randn(c_in, c_out, 2, 2, scale=(c_out * 4) ** -0.5).requires_grad_()
    b = randn(c_out).requires_grad_() if bias else None
    y = F.conv_transpose2d(x, wt, b, stride=2)
    dy = randn(*y.shape)
    y.backward(dy)
    put(g, "meta", torch.tensor([n, c_in, h, w, c_out, int(bias)], dtype=torch.float64))
    for name, t in [("x", x), ("w", wt), ("dy", dy), ("y", y), ("dx", x.grad), ("dw", wt.grad)]:
        put(g, name, t)
    if bias:
        put(g, "b", b)
        put(g, "db", b.grad)


def linear_case(f, idx, n, fin, fout, bias):
    g = f.create_group(f"linear{idx}")
    x = randn(n, fin).requires_grad_()
    wt = randn(fout, fin, scale=fin ** -0.5).requires_grad_()
    b = randn(fout).requires_grad_() if bias else None
    y = F.linear(x, wt, b)
    dy = randn(*y.shape)
    y.backward(dy)
    put(g, "meta", torch.tensor([n, fin, fout, int(bias)], dtype=torch.float64))
    for name, t in [("x", x), ("w", wt), ("dy", dy), ("y", y), ("dx", x.grad), ("dw", wt.grad)]:
        put(g, name, t)
    if bias:
        put(g, "b", b)
        put(g, "db", b.grad)


CONV_CASES = [
    # n, c_in, h, w, c_out, k, stride, pad, dil, groups, bias
    (1, 5, 9, 13, 7, 3, 1, 1, 1, 1, True),     # batch 1, non-square, 3x3 pad 1
    (3, 4, 11, 8, 6, 3, 2, 1, 1, 1, False),    # batch 3, stride 2, odd size
    (2, 6, 10, 12, 4, 3, 1, 2, 2, 2, True),    # dilation 2, groups 2
    (2, 5, 7, 9, 5, 3, 1, 1, 1, 5, True),      # depthwise
    (2, 4, 8, 6, 8, 3, 2, 1, 1, 4, False),     # grouped with channel multiplier 2, stride 2
    (3, 8, 6, 7, 5, 1, 1, 0, 1, 1, False),     # 1x1, batch 3 (several images per GEMM)
    (1, 8, 5, 9, 6, 1, 1, 0, 1, 1, True),      # 1x1, batch 1 (GEMM straight on the input)
    (2, 6, 9, 10, 4, 1, 2, 0, 1, 1, True),     # 1x1 stride 2
    (1, 3, 8, 11, 4, 3, 1, 0, 1, 1, True),     # 3x3 pad 0, batch 1
    (2, 3, 12, 10, 5, 3, 2, 0, 2, 1, True),    # stride 2 + dilation 2, pad 0
    (1, 32, 7, 7, 16, 3, 1, 1, 1, 1, False),   # embed-head-like 7x7 map
    (1, 8, 33, 40, 6, 3, 1, 1, 1, 1, True),    # >= 1024 outputs, stride 1: shifted-window path
    (2, 4, 36, 34, 6, 3, 1, 2, 2, 2, False),   # shifted-window path with dilation 2, groups 2
]
CONVT_CASES = [(2, 6, 5, 7, 5, True), (1, 8, 4, 3, 3, False), (3, 4, 1, 2, 6, True)]
LINEAR_CASES = [(5, 392, 64, True), (1, 100, 17, False), (7, 64, 256, True)]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: oracle_conv.py OUT.h5")
    torch.set_num_threads(1)
    with h5py.File(sys.argv[1], "w") as f:
        for i, c in enumerate(CONV_CASES):
            conv_case(f, i, *c)
        for i, c in enumerate(CONVT_CASES):
            convt_case(f, i, *c)
        for i, c in enumerate(LINEAR_CASES):
            linear_case(f, i, *c)
        f.attrs["n_conv"] = len(CONV_CASES)
        f.attrs["n_convt"] = len(CONVT_CASES)
        f.attrs["n_linear"] = len(LINEAR_CASES)


if __name__ == "__main__":
    main()
