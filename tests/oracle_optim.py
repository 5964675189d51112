#!/usr/bin/python3
"""Oracle for train/optim.c and train/schedule.c.

Optimizers: torch.optim.SGD (momentum 0.9, weight decay) and torch.optim.AdamW, each with
torch.nn.utils.clip_grad_norm_ at a small max_norm (some steps clip, some do not), with and
without the no-decay-on-norms-and-biases parameter groups, over 6 steps with changing lr.
Parameters are concatenated in param_table order (trainable entries first).

Learning rates: mmengine's LinearLR + MultiStepLR (and LinearLR + CosineAnnealingLR) two ways:
(1) torch 1.13's own schedulers stepped as mmengine's runner steps them (iteration-based after
every iteration, epoch-based after every epoch), with LinearLR(total_iters=end-begin-1), which
is mmengine's definition; (2) a transcription of mmengine's _ParamScheduler.step() bookkeeping
(global step from -1, [begin, end) window, chainable values). The two must agree (asserted here)
and the C closed form is compared with both.

Usage: oracle_optim.py OUT.h5
"""
import math
import os
import sys
import warnings

import h5py
import numpy as np
import torch

warnings.filterwarnings("ignore")
SEED = int(os.environ.get("MASA_SEED", "1234"))

ENTRIES = [  # name, shape, trainable (same order as tests/test_optim.c)
    ("blk.conv.weight", (4, 3, 3, 3), True),
    ("blk.conv.bias", (4,), True),
    ("blk.gn.weight", (4,), True),
    ("blk.gn.bias", (4,), True),
    ("head.fc.weight", (6, 10), True),
    ("head.fc.bias", (6,), True),
    ("frozen.bn.running_mean", (4,), False),
]
GRAD_SCALE = [3.0, 0.05, 2.0, 0.01, 1.0, 4.0]  # norms ~41, ~0.7, ~27, ~0.14, ~14, ~55
SGD_LR = [0.1, 0.05, 0.08, 0.02, 0.1, 0.03]
ADAMW_LR = [1e-2, 5e-3, 8e-3, 2e-3, 1e-2, 3e-3]
MAX_NORM = 2.0

CASES = {  # name: (optimizer, weight decay, no decay on norm/bias, max_norm)
    "sgd": ("sgd", 1e-4, False, MAX_NORM),
    "sgd_nodecay": ("sgd", 1e-2, True, MAX_NORM),
    "sgd_noclip": ("sgd", 1e-2, False, 0.0),
    "adamw": ("adamw", 1e-2, False, MAX_NORM),
    "adamw_nodecay": ("adamw", 5e-2, True, MAX_NORM),
}


def is_norm_or_bias(name, shape):
    return name.endswith(".bias") or len(shape) == 1


def run_optimizer(init, grads, kind, wd, no_decay, max_norm):
    params = []
    off = 0
    for name, shape, trainable in ENTRIES:
        n = int(np.prod(shape))
        p = torch.nn.Parameter(torch.from_numpy(init[off:off + n].copy()).view(shape),
                               requires_grad=trainable)
        params.append((name, shape, trainable, p))
        off += n
    train = [p for _, _, t, p in params if t]
    if no_decay:
        groups = [
            {"params": [p for n, s, t, p in params if t and not is_norm_or_bias(n, s)], "weight_decay": wd},
            {"params": [p for n, s, t, p in params if t and is_norm_or_bias(n, s)], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": train, "weight_decay": wd}]
    lrs = SGD_LR if kind == "sgd" else ADAMW_LR
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)
    else:
        opt = torch.optim.AdamW(groups, lr=lrs[0], betas=(0.9, 0.999), eps=1e-8)
    out = {"params": [], "m1": [], "m2": [], "norm": [], "coef": []}
    for s in range(len(lrs)):
        off = 0
        for p in train:
            n = p.numel()
            p.grad = torch.from_numpy(grads[s, off:off + n].copy()).view(p.shape)
            off += n
        if max_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(train, max_norm, norm_type=2))
        else:
            norm = float(torch.norm(torch.stack([torch.norm(p.grad, 2) for p in train]), 2))
        out["coef"].append(min(1.0, max_norm / (norm + 1e-6)) if max_norm > 0 else 1.0)
        for g in opt.param_groups:
            g["lr"] = lrs[s]
        opt.step()
        out["params"].append(torch.cat([p.detach().flatten() for _, _, _, p in params]).numpy().copy())
        if kind == "sgd":
            out["m1"].append(torch.cat([opt.state[p]["momentum_buffer"].flatten() for p in train]).numpy().copy())
        else:
            out["m1"].append(torch.cat([opt.state[p]["exp_avg"].flatten() for p in train]).numpy().copy())
            out["m2"].append(torch.cat([opt.state[p]["exp_avg_sq"].flatten() for p in train]).numpy().copy())
        out["norm"].append(norm)
    return out


# ---------------------------------------------------------------- mmengine transcription

class MMScheduler:
    """mmengine _ParamScheduler bookkeeping: _global_step starts at -1, step() increments it and
    updates the value (chainable form) only while begin <= _global_step < end."""

    def __init__(self, group, begin, end):
        self.group, self.begin, self.end = group, begin, end
        self.base = group.setdefault("initial_lr", group["lr"])
        self.last_step = -1
        self.global_step = -1
        self.step()

    def step(self):
        self.global_step += 1
        if self.begin <= self.global_step < self.end:
            self.last_step += 1
            self.group["lr"] = self.value()


class MMLinear(MMScheduler):
    def __init__(self, group, start, end_factor, begin, end):
        self.start, self.end_factor, self.total_iters = start, end_factor, end - begin - 1
        super().__init__(group, begin, end)

    def value(self):
        lr = self.group["lr"]
        if self.last_step == 0:
            return lr * self.start
        return lr * (1.0 + (self.end_factor - self.start) /
                     (self.total_iters * self.start + (self.last_step - 1) * (self.end_factor - self.start)))


class MMMultiStep(MMScheduler):
    def __init__(self, group, milestones, gamma, begin, end):
        self.milestones, self.gamma = milestones, gamma
        super().__init__(group, begin, end)

    def value(self):
        k = self.milestones.count(self.last_step)
        return self.group["lr"] * self.gamma ** k if k else self.group["lr"]


class MMCosine(MMScheduler):
    def __init__(self, group, eta_min, begin, end):
        self.eta_min, self.t_max = eta_min, end - begin
        super().__init__(group, begin, end)

    def value(self):
        lr, k, T = self.group["lr"], self.last_step, self.t_max
        if k == 0:
            return lr
        if (k - 1 - T) % (2 * T) == 0:
            return lr + (self.base - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * k / T)) / (1 + math.cos(math.pi * (k - 1) / T)) * (lr - self.eta_min) + self.eta_min


def mm_multistep(base, n_warm, start, ipe, epochs, milestones, gamma):
    g = {"lr": base}
    warm = MMLinear(g, start, 1.0, 0, n_warm)                    # by_epoch False
    ms = MMMultiStep(g, milestones, gamma, 0, epochs)            # by_epoch True
    lrs = []
    for e in range(epochs):
        for _ in range(ipe):
            lrs.append(g["lr"])
            warm.step()                                          # after_train_iter
        ms.step()                                                # after_train_epoch
    return lrs


def mm_cosine(base, n_warm, start, total, eta_min):
    g = {"lr": base}
    warm = MMLinear(g, start, 1.0, 0, n_warm)
    cos = MMCosine(g, eta_min, n_warm, total)
    lrs = []
    for _ in range(total):
        lrs.append(g["lr"])
        warm.step()
        cos.step()
    return lrs


def torch_multistep(base, n_warm, start, ipe, epochs, milestones, gamma):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start, end_factor=1.0, total_iters=n_warm - 1)
    ms = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=gamma)
    lrs = []
    for e in range(epochs):
        for _ in range(ipe):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            warm.step()
        ms.step()
    return lrs


def torch_cosine(base, n_warm, start, total, eta_min):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start, end_factor=1.0, total_iters=n_warm - 1)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - n_warm, eta_min=eta_min)
    seq = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[n_warm])
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        seq.step()
    return lrs


LR_CASES = {  # name: (kind, base, warm-up N, start factor, iters/epoch, epochs, milestones, gamma | eta_min)
    "official": ("multistep", 0.08, 1000, 0.001, 3125, 12, [8, 11], 0.1),
    "short": ("multistep", 0.08, 10, 0.001, 7, 12, [8, 11], 0.1),
    "decay_in_warmup": ("multistep", 0.01, 10, 0.001, 4, 5, [1, 3], 0.1),
    "cosine": ("cosine", 1e-3, 5, 0.001, 8, 5, None, 1e-5),
}


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(SEED)
    total = sum(int(np.prod(s)) for _, s, _ in ENTRIES)
    ntrain = sum(int(np.prod(s)) for _, s, t in ENTRIES if t)
    init = rng.standard_normal(total).astype(np.float32)
    grads = np.stack([rng.standard_normal(ntrain).astype(np.float32) * np.float32(k) for k in GRAD_SCALE])
    with h5py.File(out, "w") as f:
        f["init"] = init
        f["grads"] = grads
        f["sgd_lr"] = np.array(SGD_LR, np.float64)
        f["adamw_lr"] = np.array(ADAMW_LR, np.float64)
        for name, (kind, wd, nd, mn) in CASES.items():
            r = run_optimizer(init, grads, kind, wd, nd, mn)
            f[f"{name}/params"] = np.stack(r["params"])
            f[f"{name}/m1"] = np.stack(r["m1"])
            if r["m2"]:
                f[f"{name}/m2"] = np.stack(r["m2"])
            f[f"{name}/norm"] = np.array(r["norm"], np.float32)
            coef = np.array(r["coef"])
            assert (coef < 1).any() == (mn > 0) and (coef == 1).any(), f"{name}: clipping must trigger on some steps only"
        for name, (kind, base, n, s, ipe, epochs, ms, last) in LR_CASES.items():
            if kind == "multistep":
                mm = mm_multistep(base, n, s, ipe, epochs, ms, last)
                th = torch_multistep(base, n, s, ipe, epochs, ms, last)
            else:
                mm = mm_cosine(base, n, s, ipe * epochs, last)
                th = torch_cosine(base, n, s, ipe * epochs, last)
            mm, th = np.array(mm), np.array(th)
            err = np.max(np.abs(mm - th) / np.abs(th))
            assert err < 1e-12, f"lr {name}: mmengine transcription and torch differ by {err:g}"
            iters = np.arange(len(mm), dtype=np.int64)
            f[f"lr/{name}/mmengine"] = mm
            f[f"lr/{name}/torch"] = th
            f[f"lr/{name}/iter"] = iters
            f[f"lr/{name}/epoch"] = iters // ipe
            f[f"lr/{name}/params"] = np.array([base, n, s, ipe, epochs, last], np.float64)
            if ms:
                f[f"lr/{name}/milestones"] = np.array(ms, np.int64)
    print(f"wrote {out} (seed {SEED})")


if __name__ == "__main__":
    main()
