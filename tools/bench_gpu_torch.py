#!/usr/bin/python3
"""PyTorch side of `masa bench gpu`: the same kernels and the same training step on the same GPU,
in PyTorch eager with torchvision's ops (torchvision.ops.deform_conv2d, roi_align) and the
reference modules of tests/reference/ (MasaRef). Prints one JSON object on stdout (last line):

  device, torch       the GPU's name and the torch version
  kernels             [{name, fwd_ms, bwd_ms}] for the rows of --kernels (a JSON list written by
                      `masa bench gpu`: op, shapes, bf16 flag per row); CUDA events, median of
                      --repeats after --warmup; bwd_ms -1 for ops without a backward
  steps               [{precision, step_ms, pairs_per_s, peak_mb}] with --step, one per
                      --precisions entry: zero_grad, forward of both views, track head on the
                      RoIs, unbiased contrastive + margin L2 losses, with --distill 1 the key view's
                      RPN head and box head, backward, clip_grad_norm_(35), optimizer step;
                      torch.cuda.synchronize() before and after; median over --repeats;
                      peak_mb = torch.cuda.max_memory_allocated over the timed steps

fp32 rows run with TF32 off (matmul and cuDNN; --tf32 allows it), matching our pedantic FP32
cuBLAS; bf16 rows run the forward under torch.autocast("cuda", dtype=torch.bfloat16).
The step's inputs are random tensors made once (no data loading; the C side excludes its loader
wait); RoIs as tools/bench_train_torch.py makes them (GT boxes and jittered copies, identities
shared between the views), --key-rois / --ref-rois / --det-rois per pair as our step sampled.
Exits 3 with a message when torch.cuda is not available.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda:0", help="CUDA device (cuda or cuda:N)")
    ap.add_argument("--kernels", metavar="SPEC", help="JSON list of kernel rows to time")
    ap.add_argument("--step", action="store_true", help="time the training step")
    ap.add_argument("--config", help="effective recipe (masa config output); needed by --step")
    ap.add_argument("--size", type=int, default=1024, help="view size S")
    ap.add_argument("--batch", type=int, default=8, help="pairs per step")
    ap.add_argument("--key-rois", type=int, default=128, help="track RoIs per pair, key view")
    ap.add_argument("--ref-rois", type=int, default=128, help="track RoIs per pair, ref view")
    ap.add_argument("--det-rois", type=int, default=0, help="box-head RoIs per pair")
    ap.add_argument("--distill", type=int, default=1)
    ap.add_argument("--optim", default="sgd", choices=["sgd", "adamw"])
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in the fp32 rows")
    a = ap.parse_args()
    precs = [p for p in a.precisions.split(",") if p]
    if any(p not in ("fp32", "bf16") for p in precs):
        ap.error("--precisions: expected a comma list of fp32, bf16")
    a.precisions = precs
    if a.step and not a.config:
        ap.error("--step needs --config")
    if a.warmup < 0 or a.repeats < 1:
        ap.error("--warmup must be >= 0 and --repeats >= 1")
    return a


def time_cuda(torch, fn, warmup, repeats):
    """Median ms of fn() between two CUDA events, after warmup calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeats):
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        ts.append(e0.elapsed_time(e1))
    return statistics.median(ts)


def patch_reference_for_cuda(torch):
    """adapter_ref's mmcv offset-gradient rule builds its index grids on the CPU; make them on the
    offsets' device (same rule, computed in float32). And the DCN in float32 under autocast."""
    from reference import adapter_ref

    class _OffsetGradOnDevice(torch.autograd.Function):
        @staticmethod
        def forward(ctx, off, h, w, stride, pad):
            n, _, ho, wo = off.shape
            kw = dict(dtype=torch.float32, device=off.device)
            oh = torch.arange(ho, **kw).view(1, 1, ho, 1)
            ow = torch.arange(wo, **kw).view(1, 1, 1, wo)
            t = torch.arange(9, device=off.device)
            i = (t // 3).to(torch.float32).view(1, 9, 1, 1)
            j = (t % 3).to(torch.float32).view(1, 9, 1, 1)
            f = off.float()
            sy = oh * stride - pad + i + f[:, 0::2]
            sx = ow * stride - pad + j + f[:, 1::2]
            valid = (sy > -1) & (sy < h) & (sx > -1) & (sx < w)
            ctx.save_for_backward(valid.repeat_interleave(2, dim=1))
            return off.clone()

        @staticmethod
        def backward(ctx, g):
            (valid,) = ctx.saved_tensors
            return g * valid.to(g.dtype), None, None, None, None

    adapter_ref._MmcvOffsetGrad = _OffsetGradOnDevice

    # Under autocast, run the DCN in float32 (what torchvision's CUDA autocast rule for
    # deform_conv2d does; explicit here so it holds for any torchvision build).
    dcn = adapter_ref.mmcv_dcn

    def mmcv_dcn_fp32(x, off, mask, weight, stride):
        with torch.autocast("cuda", enabled=False):
            return dcn(x.float(), off.float(), mask.float(), weight.float(), stride)

    adapter_ref.mmcv_dcn = mmcv_dcn_fp32


# ---------------------------------------------------------------------------------------------
# Kernels

def kernel_fns(torch, row, dev, gen):
    """(fwd, bwd or None) closures for one row of the spec; bwd reuses the graph of one forward."""
    import torch.nn.functional as F
    from torchvision.ops import deform_conv2d
    from reference.heads_ref import RoIExtractorRef

    op, n, c = row["op"], int(row["n"]), int(row["c"])
    h, w, c_out = int(row["h"]), int(row["w"]), int(row["c_out"])

    def rand(*shape, lo=-1.0, hi=1.0, grad=False):
        t = torch.rand(*shape, generator=gen, device=dev) * (hi - lo) + lo
        return t.requires_grad_(grad)

    bf16 = bool(row["bf16"])

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)

    def with_graph(fwd, inputs):
        with autocast():
            y = fwd()
        dy = torch.rand(y.shape, generator=gen, device=dev, dtype=y.dtype) * 2 - 1

        def bwd():
            torch.autograd.grad(y, inputs, dy, retain_graph=True)

        def fwd_timed():
            with autocast():
                fwd()
        return fwd_timed, bwd

    if op == "conv2d":
        k, s, p = int(row["k"]), int(row["s"]), int(row["p"])
        x = rand(n, c, h, w, grad=bool(row["dx"]))
        wt = rand(c_out, c, k, k, lo=-0.05, hi=0.05, grad=True)
        return with_graph(lambda: F.conv2d(x, wt, None, s, p), [x, wt] if row["dx"] else [wt])
    if op == "dcn":
        x = rand(n, c, h, w, grad=True)
        wt = rand(c_out, c, 3, 3, lo=-0.05, hi=0.05, grad=True)
        off = rand(n, 18, h, w, lo=-2, hi=2, grad=True)
        mask = rand(n, 9, h, w, lo=0, hi=1, grad=True)
        return with_graph(lambda: deform_conv2d(x, off, wt, None, padding=(1, 1), mask=mask),
                          [x, off, mask, wt])
    if op == "roi_align":
        K, S = int(row["k"]), int(row["image"])
        strides = [4, 8, 16, 32]
        feats = [rand(n, c, (S + s - 1) // s, (S + s - 1) // s, grad=True) for s in strides]
        big = max(S // 2, 17)  # the C side's law: boxes of 16 .. S/2 px anywhere in the image
        u = torch.rand(K, 4, generator=gen, device=dev)
        bw, bh = 16 + (big - 16) * u[:, 0], 16 + (big - 16) * u[:, 1]
        x1, y1 = (S - bw) * u[:, 2], (S - bh) * u[:, 3]
        bidx = (torch.arange(K, device=dev) % n).float()
        rois = torch.stack([bidx, x1, y1, x1 + bw, y1 + bh], 1)
        ext = RoIExtractorRef(strides)
        return with_graph(lambda: ext(feats, rois), feats)
    if op == "group_norm":
        g = int(row["groups"])
        x = rand(n, c, h, grad=True)
        gamma = rand(c, lo=0.5, hi=1.5, grad=True)
        beta = rand(c, lo=-0.5, hi=0.5, grad=True)
        return with_graph(lambda: F.group_norm(x, g, gamma, beta, 1e-5), [x, gamma, beta])
    if op == "linear":
        x = rand(n, c, grad=True)
        wt = rand(c_out, c, lo=-0.01, hi=0.01, grad=True)
        b = rand(c_out, lo=-0.1, hi=0.1, grad=True)
        return with_graph(lambda: F.linear(x, wt, b), [x, wt, b])
    if op == "relu":
        x = rand(n, grad=True)
        return with_graph(lambda: F.relu(x), [x])
    if op in ("add", "axpy", "relu_mask"):
        x, y, g = rand(n), rand(n), rand(n)
        if op == "add":
            return (lambda: torch.add(x, g, out=y)), None
        if op == "axpy":
            return (lambda: y.add_(x, alpha=0.5)), None
        return (lambda: g.masked_fill_(x <= 0, 0.0)), None
    if op in ("sgd", "adamw"):
        p = torch.nn.Parameter(rand(n))
        p.grad = rand(n, lo=-0.01, hi=0.01)
        if op == "sgd":
            opt = torch.optim.SGD([p], lr=0.01, momentum=0.9, weight_decay=1e-4)
        else:
            opt = torch.optim.AdamW([p], lr=1e-4, weight_decay=0.05)
        return opt.step, None
    if op == "grad_norm":
        g = rand(n, lo=-0.01, hi=0.01)
        return (lambda: torch.linalg.vector_norm(g).item()), None
    raise SystemExit(f"bench_gpu_torch.py: unknown kernel op '{op}'")


def bench_kernels(torch, a, dev):
    with open(a.kernels) as f:
        spec = json.load(f)
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    out = []
    for row in spec:
        fwd, bwd = kernel_fns(torch, row, dev, gen)
        fms = time_cuda(torch, fwd, a.warmup, a.repeats)
        bms = time_cuda(torch, bwd, a.warmup, a.repeats) if bwd else -1
        out.append({"name": row["name"], "fwd_ms": fms, "bwd_ms": bms})
        del fwd, bwd
        torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------------------------------------
# Train step

def bench_step(torch, a, dev, precision):
    import torch.nn.functional as F
    from bench_train_torch import contrast_loss, make_rois, margin_l2_loss
    from reference.masa_ref import MasaRef, read_model_cfg

    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    model = MasaRef(read_model_cfg(a.config)).to(dev).train()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "spatial_conv_offset" in name:
                p.zero_()
    params = [p for p in model.parameters() if p.requires_grad]
    if a.optim == "sgd":
        opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    n, S = a.batch, a.size
    imgs = [torch.randn(n, 3, S, S, generator=g).to(dev) for _ in range(2)]
    nk, nr = max(a.key_rois, 1), max(a.ref_rois, 1)
    gt = max(1, nk // 9)
    key_rois, key_ids = make_rois(g, n, nk, S, gt)
    ref_rois, ref_ids = make_rois(g, n, nr, S, gt)
    det_rois, _ = make_rois(g, n, max(a.det_rois, 1), S, gt)
    det_labels = torch.randint(0, 2, (det_rois.shape[0],), generator=g).to(dev)
    key_rois, ref_rois, det_rois = key_rois.to(dev), ref_rois.to(dev), det_rois.to(dev)
    key_ids, ref_ids = key_ids.to(dev), ref_ids.to(dev)
    bf16 = precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            feats = [model.features(x) for x in imgs]
            ke = model.embed(feats[0], key_rois).float()
            re = model.embed(feats[1], ref_rois).float()
            loss = ke.new_zeros(())
            for i in range(n):
                k = ke[i * nk:(i + 1) * nk]
                r = re[i * nr:(i + 1) * nr]
                t = (key_ids[i * nk:(i + 1) * nk, None] == ref_ids[None, i * nr:(i + 1) * nr]).float()
                loss = loss + 0.25 / n * contrast_loss(k, r, t) + 1.0 / n * margin_l2_loss(k, r, t)
            if a.distill and hasattr(model, "rpn_head"):
                cls, reg = model.rpn_head(feats[0])
                for c, r in zip(cls, reg):
                    c, r = c.float(), r.float()
                    loss = loss + F.binary_cross_entropy_with_logits(c, (c.detach() > 2).float())
                    loss = loss + F.smooth_l1_loss(r, torch.zeros_like(r), beta=1.0 / 9)
                if hasattr(model, "roi_head") and a.det_rois > 0:
                    dc, dr = model.roi_head(feats[0], det_rois)
                    dc, dr = dc.float(), dr.float()
                    loss = loss + F.cross_entropy(dc, det_labels) + F.l1_loss(dr, torch.zeros_like(dr))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 35.0)
        opt.step()

    times = []
    for it in range(a.warmup + a.repeats):
        if it == a.warmup:
            torch.cuda.reset_peak_memory_stats(dev)
        torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize(dev)
        if it >= a.warmup:
            times.append(1e3 * (time.perf_counter() - t0))
    peak = torch.cuda.max_memory_allocated(dev) / 1e6
    ms = statistics.median(times)
    return {"precision": precision, "step_ms": ms, "pairs_per_s": 1e3 * n / ms, "peak_mb": peak}


def main():
    a = parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"bench_gpu_torch.py: cannot import torch ({e})", file=sys.stderr)
        sys.exit(3)
    if not torch.cuda.is_available():
        print("bench_gpu_torch.py: torch.cuda is not available (no GPU, or a CPU-only torch build); "
              "nothing to benchmark", file=sys.stderr)
        sys.exit(3)
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    sys.path.insert(0, HERE)
    dev = torch.device(a.device)
    if dev.type != "cuda":
        print(f"bench_gpu_torch.py: --device {a.device}: expected cuda or cuda:N", file=sys.stderr)
        sys.exit(2)
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(dev)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    patch_reference_for_cuda(torch)
    out = {"device": torch.cuda.get_device_name(dev), "torch": torch.__version__,
           "tf32": a.tf32, "kernels": [], "steps": []}
    if a.kernels:
        out["kernels"] = bench_kernels(torch, a, dev)
    if a.step:
        for p in a.precisions:  # a fresh model per precision; its memory goes with the call
            out["steps"].append(bench_step(torch, a, dev, p))
            torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
