#!/usr/bin/python3
"""PyTorch side of `masa bench ops`: the same ops at the same shapes on this CPU.

Prints a JSON list of {name, fwd_ms, bwd_ms} (median of --repeats) on stdout; `masa bench ops`
runs it and prints both sides in one table. Ops: F.conv2d, torchvision.ops.deform_conv2d (with
mask) and torchvision.ops.roi_align (aligned, adaptive sampling), float32.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision


def median_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def bench_pair(name, forward, inputs, warmup, repeats):
    """Times forward alone, then backward alone (graph rebuilt untimed before each backward)."""
    with torch.no_grad():
        fwd = median_ms(lambda: forward(*inputs), warmup, repeats)
    leaves = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    times = []
    for i in range(warmup + repeats):
        for t in leaves:
            t.grad = None
        out = forward(*inputs)
        g = torch.ones_like(out)
        t0 = time.perf_counter()
        out.backward(g)
        if i >= warmup:
            times.append(1e3 * (time.perf_counter() - t0))
    return {"name": name, "fwd_ms": fwd, "bwd_ms": statistics.median(times)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--sizes", default="128,64")
    ap.add_argument("--rois", type=int, default=512)
    ap.add_argument("--image-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(a.seed)
    C, B, K = a.channels, a.batch, a.rois
    rows = []
    for S in [int(s) for s in a.sizes.split(",") if s]:
        x = (torch.rand(B, C, S, S, generator=g) * 2 - 1).requires_grad_()
        w = ((torch.rand(C, C, 3, 3, generator=g) * 2 - 1) * 0.02).requires_grad_()
        off = ((torch.rand(B, 18, S, S, generator=g) * 4 - 2)).requires_grad_()
        mask = torch.rand(B, 9, S, S, generator=g).requires_grad_()
        rows.append(bench_pair(f"conv2d_3x3_{S}", lambda x, w: F.conv2d(x, w, padding=1),
                               (x, w), a.warmup, a.repeats))
        rows.append(bench_pair(
            f"dcn_3x3_{S}",
            lambda x, off, w, mask: torchvision.ops.deform_conv2d(x, off, w, padding=1, mask=mask),
            (x, off, w, mask), a.warmup, a.repeats))
        wh = 16 + 496 * torch.rand(K, 2, generator=g)
        xy = (a.image_size - wh) * torch.rand(K, 2, generator=g)
        rois = torch.cat([(torch.arange(K) % B).float()[:, None], xy, xy + wh], 1)
        xr = (torch.rand(B, C, S, S, generator=g) * 2 - 1).requires_grad_()
        rows.append(bench_pair(
            f"roi_align_{S}",
            lambda xr: torchvision.ops.roi_align(xr, rois, 7, spatial_scale=S / a.image_size,
                                                 sampling_ratio=0, aligned=True),
            (xr,), a.warmup, a.repeats))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
