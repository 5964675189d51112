#!/usr/bin/python3
"""PyTorch side of `masa bench embed`: the reference model (tests/reference/masa_ref.py) of the
same recipe, on an image of the same size with the same boxes, on this CPU with the same thread
count. Prints one JSON object on stdout:

  pre_ms, feat_ms, emb_ms, total_ms   medians over --repeats (preprocess; backbone + adapter;
                                      RoIAlign + track head; the sum per repetition)
  cpu_s                               process CPU seconds per repetition (all threads)
  rss_model_mb                        resident memory with the model built, before any forward
  rss_peak_mb                         the process's max RSS (getrusage) at the end
  params                              {module prefix: parameter + BN-statistic count}

Weights: the modules' PyTorch default initialisation with the offset convs zeroed, as masa init
does (the DCN then samples at the kernel taps in both; timing does not depend on the values
otherwise). Inference mode (torch.no_grad, eval).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from reference.masa_ref import (MasaRef, count_params, preprocess, read_model_cfg,  # noqa: E402
                                scale_boxes)


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="effective recipe (masa config output)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--boxes", required=True, help="x1 y1 x2 y2 per line, image pixels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = read_model_cfg(a.config)
    model = MasaRef(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "spatial_conv_offset" in name:
                p.zero_()
    rgb = np.random.default_rng(a.seed).integers(0, 256, (a.size, a.size, 3), dtype=np.uint8)
    boxes = np.loadtxt(a.boxes, dtype=np.float32, ndmin=2).reshape(-1, 4)
    rss_model = rss_mb()
    times = {"pre": [], "feat": [], "emb": [], "total": []}
    cpu = []
    with torch.no_grad():
        for it in range(a.warmup + a.repeats):
            c0 = time.process_time()
            t0 = time.perf_counter()
            x, sf = preprocess(rgb, cfg["test_scale"], cfg["pad_divisor"])
            t1 = time.perf_counter()
            feats = model.features(x)
            t2 = time.perf_counter()
            emb = model.embed(feats, scale_boxes(boxes, sf))
            t3 = time.perf_counter()
            assert emb.shape[0] == len(boxes)
            del feats, emb, x
            if it >= a.warmup:
                for k, v in (("pre", t1 - t0), ("feat", t2 - t1), ("emb", t3 - t2),
                             ("total", t3 - t0)):
                    times[k].append(1e3 * v)
                cpu.append(time.process_time() - c0)
    out = {f"{k}_ms": statistics.median(v) for k, v in times.items()}
    out["cpu_s"] = statistics.median(cpu)
    out["rss_model_mb"] = rss_model
    out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    out["params"] = count_params(model)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
