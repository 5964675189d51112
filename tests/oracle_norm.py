#!/usr/bin/python3
"""Oracle for tests/test_norm.c: GroupNorm, LayerNorm2d, BatchNorm2d (train and frozen/folded).

Usage: /usr/bin/python3 tests/oracle_norm.py OUT.h5

Reference: torch 1.13 CPU modules in float64 on float32-rounded inputs; results rounded to
float32 when written. `dy` is a random upstream gradient.

Groups (float32 datasets):
  gn<K>/  meta [n, c, h, w, groups, affine, eps]; x, [gamma, beta], dy, y, dx, [dgamma, dbeta]
  ln<K>/  meta [n, c, h, w, eps]; x, gamma, beta, dy, y, dx, dgamma, dbeta
          LayerNorm2d as in SAM / ViTDet (mean and biased variance over channels per pixel),
          cross-checked here against nn.LayerNorm on the NHWC permutation.
  bn<K>/  meta [n, c, h, w, eps, momentum]; x, gamma, beta, rm0, rv0 (running stats before),
          dy, y, dx, dgamma, dbeta, rm1, rv1 (running stats after one training step)
  fold<K>/ meta [n, c_in, h, w, c_out, has_conv_bias, eps]; x, w, [b], gamma, beta, rm, rv,
          y (= BN_eval(conv(x))), z (= conv(x)), dy, dz (= gradient of BN_eval at z)
"""
import sys

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F

GEN = torch.Generator().manual_seed(20240602)


def randn(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale + shift).float().double()


def rand(*shape, lo=0.0, hi=1.0):
    return (torch.rand(*shape, generator=GEN, dtype=torch.float64) * (hi - lo) + lo).float().double()


def put(g, name, t):
    g.create_dataset(name, data=t.detach().to(torch.float32).numpy())


def meta(g, vals):
    put(g, "meta", torch.tensor(vals, dtype=torch.float64))


def gn_case(f, idx, n, c, h, w, groups, affine, shift):
    g = f.create_group(f"gn{idx}")
    eps = 1e-5
    m = nn.GroupNorm(groups, c, eps=eps, affine=affine).double()
    if affine:
        with torch.no_grad():
            m.weight.copy_(randn(c, scale=0.5, shift=1.0))
            m.bias.copy_(randn(c, scale=0.5))
    x = randn(n, c, h, w, scale=2.0, shift=shift).requires_grad_()
    y = m(x)
    dy = randn(*y.shape)
    y.backward(dy)
    meta(g, [n, c, h, w, groups, int(affine), eps])
    for name, t in [("x", x), ("dy", dy), ("y", y), ("dx", x.grad)]:
        put(g, name, t)
    if affine:
        for name, t in [("gamma", m.weight), ("beta", m.bias), ("dgamma", m.weight.grad),
                        ("dbeta", m.bias.grad)]:
            put(g, name, t)


def ln2d(x, weight, bias, eps):
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + eps)
    return weight[:, None, None] * x + bias[:, None, None]


def ln_case(f, idx, n, c, h, w, shift):
    g = f.create_group(f"ln{idx}")
    eps = 1e-6
    gamma = randn(c, scale=0.5, shift=1.0).requires_grad_()
    beta = randn(c, scale=0.5).requires_grad_()
    x = randn(n, c, h, w, shift=shift).requires_grad_()
    y = ln2d(x, gamma, beta, eps)
    # Cross-check: the mmdet SimpleFPN form, nn.LayerNorm applied to NHWC.
    y2 = F.layer_norm(x.permute(0, 2, 3, 1), (c,), gamma, beta, eps).permute(0, 3, 1, 2)
    assert torch.allclose(y, y2, atol=1e-10), "LayerNorm2d forms disagree"
    dy = randn(*y.shape)
    y.backward(dy)
    meta(g, [n, c, h, w, eps])
    for name, t in [("x", x), ("gamma", gamma), ("beta", beta), ("dy", dy), ("y", y),
                    ("dx", x.grad), ("dgamma", gamma.grad), ("dbeta", beta.grad)]:
        put(g, name, t)


def bn_case(f, idx, n, c, h, w, shift):
    g = f.create_group(f"bn{idx}")
    eps, momentum = 1e-5, 0.1
    m = nn.BatchNorm2d(c, eps=eps, momentum=momentum).double().train()
    rm0, rv0 = randn(c), rand(c, lo=0.5, hi=2.0)
    with torch.no_grad():
        m.weight.copy_(randn(c, scale=0.5, shift=1.0))
        m.bias.copy_(randn(c, scale=0.5))
        m.running_mean.copy_(rm0)
        m.running_var.copy_(rv0)
    x = randn(n, c, h, w, scale=1.5, shift=shift).requires_grad_()
    y = m(x)
    dy = randn(*y.shape)
    y.backward(dy)
    meta(g, [n, c, h, w, eps, momentum])
    for name, t in [("x", x), ("gamma", m.weight), ("beta", m.bias), ("rm0", rm0), ("rv0", rv0),
                    ("dy", dy), ("y", y), ("dx", x.grad), ("dgamma", m.weight.grad),
                    ("dbeta", m.bias.grad), ("rm1", m.running_mean), ("rv1", m.running_var)]:
        put(g, name, t)


def fold_case(f, idx, n, c_in, h, w, c_out, conv_bias):
    g = f.create_group(f"fold{idx}")
    eps = 1e-5
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=conv_bias).double()
    bn = nn.BatchNorm2d(c_out, eps=eps).double().eval()
    with torch.no_grad():
        conv.weight.copy_(randn(c_out, c_in, 3, 3, scale=(c_in * 9) ** -0.5))
        if conv_bias:
            conv.bias.copy_(randn(c_out))
        bn.weight.copy_(randn(c_out, scale=0.5, shift=1.0))
        bn.bias.copy_(randn(c_out, scale=0.5))
        bn.running_mean.copy_(randn(c_out))
        bn.running_var.copy_(rand(c_out, lo=0.3, hi=3.0))
    x = randn(n, c_in, h, w)
    z = conv(x).detach().requires_grad_()
    y = bn(z)
    dy = randn(*y.shape)
    y.backward(dy)
    meta(g, [n, c_in, h, w, c_out, int(conv_bias), eps])
    for name, t in [("x", x), ("w", conv.weight), ("gamma", bn.weight), ("beta", bn.bias),
                    ("rm", bn.running_mean), ("rv", bn.running_var), ("y", y), ("z", z),
                    ("dy", dy), ("dz", z.grad)]:
        put(g, name, t)
    if conv_bias:
        put(g, "b", conv.bias)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: oracle_norm.py OUT.h5")
    torch.set_num_threads(1)
    with h5py.File(sys.argv[1], "w") as f:
        # n, c, h, w, groups, affine, input mean
        gn_case(f, 0, 1, 32, 5, 7, 16, True, 0.0)
        gn_case(f, 1, 3, 64, 6, 4, 32, True, 0.0)
        gn_case(f, 2, 2, 32, 3, 5, 16, False, 0.0)
        gn_case(f, 3, 2, 256, 7, 7, 32, True, 30.0)  # embed-head shape, large mean
        gn_case(f, 4, 1, 48, 9, 11, 16, True, -5.0)
        # n, c, h, w, input mean
        ln_case(f, 0, 1, 16, 5, 7, 0.0)
        ln_case(f, 1, 3, 24, 4, 9, 0.0)
        ln_case(f, 2, 2, 8, 30, 25, 20.0)  # 750 pixels: several pixel blocks, large mean
        # n, c, h, w, input mean
        bn_case(f, 0, 3, 6, 5, 7, 0.0)
        bn_case(f, 1, 4, 5, 3, 3, 0.0)
        bn_case(f, 2, 2, 8, 9, 6, 40.0)
        bn_case(f, 3, 1, 3, 4, 5, 0.0)  # batch 1 (statistics over pixels only)
        # n, c_in, h, w, c_out, conv bias
        fold_case(f, 0, 2, 4, 6, 5, 6, False)
        fold_case(f, 1, 1, 3, 7, 9, 5, True)


if __name__ == "__main__":
    main()
