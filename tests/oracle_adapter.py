# Oracle for tests/test_adapter.c: the adapter modules (FPN, SimpleFPN, DeformFusion, DyHead)
# against the PyTorch reference modules of tests/reference/adapter_ref.py, in float64 autograd
# from float32-rounded inputs / weights and a fixed float32 upstream gradient; results are
# rounded to float32 when written.
# Usage: python tests/oracle_adapter.py OUT.h5
#
# Layout, one group per case:
#   cfg             floats, see CASES below (decoded by the C test in the same order)
#   params/<key>    every state_dict entry under its official key (masa_adapter.0. / .1. prefix;
#                   num_batches_tracked dropped); num_params = their count
#   x/<i>, dy/<k>   inputs and upstream gradients
#   out/<k>, dx/<i> outputs and input gradients
#   grad/<key>      gradients of every trainable parameter
#   running/<key>   BN running statistics after the forward (BN-train case)
# Root attributes keys_<name>: "key d0,d1,..." per line for the FULL-size modules (256 channels,
# GDINO / R50 FPN, SAM-B SimpleFPN), checked here against masa-spec §9 and in C against the
# registered tables.
#
# Weights are random (not the official init) so that every path carries signal; in particular
# the offset convs are non-zero (offsets ~ N(0, 1)), except in the *_zero_offset cases that use
# the official zeroed offset conv (samples then sit exactly on -1 at the padded border, where
# mmcv and torchvision's offset gradients differ: see adapter_ref._MmcvOffsetGrad).
import math
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference.adapter_ref import FPN, DeformFusion, DyHead, SimpleFPN  # noqa: E402

GEN = torch.Generator().manual_seed(20240604)


def f32(t):
    return t.to(torch.float32).to(torch.float64)


def randn(*shape, scale=1.0, shift=0.0):
    return f32(torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale + shift)


def rand(*shape, lo=0.0, hi=1.0):
    return f32(torch.rand(*shape, generator=GEN, dtype=torch.float64) * (hi - lo) + lo)


def random_value(name, shape, zero_offset):
    """Random float32-rounded values with O(1) activations everywhere (see the file header)."""
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if "spatial_conv_offset" in name:
        if zero_offset:
            return torch.zeros(shape, dtype=torch.float64)
        return randn(*shape, scale=1.0 / math.sqrt(fan_in)) if name.endswith("weight") else \
            randn(*shape, scale=0.5)
    if "scale_attn_module" in name:
        return randn(*shape, scale=3.0 / math.sqrt(fan_in)) if name.endswith("weight") else \
            randn(*shape, scale=1.0, shift=0.5)
    if "task_attn_module" in name:
        return randn(*shape, scale=3.0 / math.sqrt(fan_in)) if name.endswith("weight") else \
            randn(*shape, scale=1.0 if "conv2" in name else 0.2)
    if name.endswith("running_mean"):
        return randn(*shape, scale=0.3)
    if name.endswith("running_var"):
        return rand(*shape, lo=0.5, hi=1.5)
    if name.endswith((".bn.weight", ".norm.weight", ".ln.weight")):
        return randn(*shape, scale=0.2, shift=1.0)
    if name.endswith("bias"):
        return randn(*shape, scale=0.2)
    if len(shape) == 4 and ("fpn1." in name or "fpn2." in name):  # ConvTranspose (in, out, 2, 2)
        return randn(*shape, scale=1.0 / math.sqrt(shape[0]))
    return randn(*shape, scale=1.0 / math.sqrt(fan_in))


def randomize(mod, zero_offset=False):
    with torch.no_grad():
        for name, t in mod.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            t.copy_(random_value(name, tuple(t.shape), zero_offset))


def put(g, name, t):
    g.create_dataset(name, data=t.detach().to(torch.float32).numpy())


def run_case(f, gname, mod, prefix, cfg, shapes, train_mode=True, frozen_bn=False,
             zero_offset=False):
    mod = mod.double()
    randomize(mod, zero_offset)
    mod.train(train_mode)
    if frozen_bn:
        for name, p in mod.named_parameters():
            if ".bn." in name:
                p.requires_grad_(False)
    g = f.create_group(gname)
    put(g, "cfg", torch.tensor(cfg, dtype=torch.float64))
    sd = {k: v.clone() for k, v in mod.state_dict().items() if not k.endswith("num_batches_tracked")}
    for k, v in sd.items():
        put(g, "params/" + prefix + k, v)
    put(g, "num_params", torch.tensor([len(sd)], dtype=torch.float64))
    xs = [randn(*s).requires_grad_(True) for s in shapes]
    outs = mod(xs)
    dys = [randn(*o.shape) for o in outs]
    torch.autograd.backward(outs, dys)
    for i, x in enumerate(xs):
        put(g, f"x/{i}", x)
        put(g, f"dx/{i}", x.grad)
    for k, (o, dy) in enumerate(zip(outs, dys)):
        put(g, f"out/{k}", o)
        put(g, f"dy/{k}", dy)
    n_grads = 0
    for name, p in mod.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
            put(g, "grad/" + prefix + name, p.grad)
            n_grads += 1
    put(g, "num_grads", torch.tensor([n_grads], dtype=torch.float64))
    if train_mode:
        for name, b in mod.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                put(g, "running/" + prefix + name, b)
    print(f"oracle_adapter: {gname}: {len(sd)} params, outputs "
          + " ".join("x".join(str(d) for d in o.shape[2:]) for o in outs))


# ---------------------------------------------------------------------------------------------
# Full-size key lists (spec §9)

def key_lines(mod, prefix):
    return "\n".join(f"{prefix}{k} {','.join(str(d) for d in v.shape)}"
                     for k, v in mod.state_dict().items() if not k.endswith("num_batches_tracked"))


def spec_fpn(cins):
    k = []
    for kind, cs in (("lateral_convs", cins), ("fpn_convs", [256] * len(cins))):
        for i, c in enumerate(cs):
            ks = 1 if kind == "lateral_convs" else 3
            k.append((f"masa_adapter.0.{kind}.{i}.conv.weight", (256, c, ks, ks)))
            for s in ("weight", "bias", "running_mean", "running_var"):
                k.append((f"masa_adapter.0.{kind}.{i}.bn.{s}", (256,)))
    return k


def spec_simplefpn(c):
    k = []
    for i in range(4):
        k += [(f"masa_adapter.0.lateral_convs.{i}.conv.weight", (256, c, 1, 1)),
              (f"masa_adapter.0.lateral_convs.{i}.conv.bias", (256,))]
    for i in range(4):
        k += [(f"masa_adapter.0.fpn_convs.{i}.conv.weight", (256, 256, 3, 3)),
              (f"masa_adapter.0.fpn_convs.{i}.conv.bias", (256,))]
    for m in ("fpn1.0", "fpn1.1.ln", "fpn1.3", "fpn2.0"):
        w = (c,) if "ln" in m else (c, c, 2, 2)
        k += [(f"masa_adapter.0.{m}.weight", w), (f"masa_adapter.0.{m}.bias", (c,))]
    return k


def spec_fusion(dyhead):
    k = []
    for b in range(3):
        p = f"masa_adapter.1.dyhead_blocks.{b}"
        for br in ("high", "mid", "low"):
            k += [(f"{p}.spatial_conv_{br}.conv.weight", (256, 256, 3, 3)),
                  (f"{p}.spatial_conv_{br}.norm.weight", (256,)),
                  (f"{p}.spatial_conv_{br}.norm.bias", (256,))]
        c_om = 27 if dyhead else 81
        k += [(f"{p}.spatial_conv_offset.weight", (c_om, 256, 3, 3)),
              (f"{p}.spatial_conv_offset.bias", (c_om,))]
        if dyhead:
            k += [(f"{p}.scale_attn_module.1.weight", (1, 256, 1, 1)),
                  (f"{p}.scale_attn_module.1.bias", (1,)),
                  (f"{p}.task_attn_module.conv1.conv.weight", (64, 256, 1, 1)),
                  (f"{p}.task_attn_module.conv1.conv.bias", (64,)),
                  (f"{p}.task_attn_module.conv2.conv.weight", (1024, 64, 1, 1)),
                  (f"{p}.task_attn_module.conv2.conv.bias", (1024,))]
    return k


def write_full_keys(f):
    torch.set_default_dtype(torch.float32)
    full = [
        ("keys_fpn_gdino", FPN([256, 512, 1024], 256, 5, norm="bn"), "masa_adapter.0.",
         spec_fpn([256, 512, 1024])),
        ("keys_fpn_r50", FPN([256, 512, 1024, 2048], 256, 5, norm="bn"), "masa_adapter.0.",
         spec_fpn([256, 512, 1024, 2048])),
        ("keys_simplefpn_samb", SimpleFPN(768, 256, 5), "masa_adapter.0.", spec_simplefpn(768)),
        ("keys_deform_fusion", DeformFusion(256, 256, 3), "masa_adapter.1.", spec_fusion(False)),
        ("keys_dyhead", DyHead(256, 256, 3), "masa_adapter.1.", spec_fusion(True)),
    ]
    for name, mod, prefix, spec in full:
        got = {prefix + k: tuple(v.shape) for k, v in mod.state_dict().items()
               if not k.endswith("num_batches_tracked")}
        if got != dict(spec):
            missing = set(dict(spec)) ^ set(got)
            sys.exit(f"oracle_adapter: {name}: state_dict keys differ from masa-spec §9: "
                     f"{sorted(missing)[:6]} (or shapes)")
        f.attrs[name] = np.bytes_(key_lines(mod, prefix).encode())  # fixed-length string
    torch.set_default_dtype(torch.float64)


# ---------------------------------------------------------------------------------------------

PYR5 = [(32, 24), (16, 12), (8, 6), (4, 3), (2, 2)]
PYR4 = [(16, 12), (8, 6), (4, 3), (2, 2)]
HIGH = {"reinterpret": 0, "crop": 1, "crop_mmcv": 2}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: oracle_adapter.py OUT.h5")
    torch.set_default_dtype(torch.float64)
    with h5py.File(sys.argv[1], "w") as f:
        write_full_keys(f)
        n = 2
        # FPN. cfg: [n, num_ins, num_outs, c_out, norm (0 none, 1 BN frozen, 2 BN train),
        #            c_in[i] ..., (h_i, w_i) ...]
        for gname, cins, sizes, norm in (
                ("fpn_bn_train", [16, 24, 32, 40], [(32, 24), (16, 12), (8, 6), (4, 3)], 2),
                ("fpn_bn_frozen", [16, 24, 32, 40], [(25, 19), (13, 10), (7, 5), (4, 3)], 1),
                ("fpn_none", [16, 24, 32], [(20, 14), (10, 7), (5, 4)], 0)):
            L = len(cins)
            cfg = [n, L, 5, 32, norm] + cins + [d for s in sizes for d in s]
            mod = FPN(cins, 32, 5, norm=None if norm == 0 else "bn")
            run_case(f, gname, mod, "masa_adapter.0.", cfg,
                     [(n, c, h, w) for c, (h, w) in zip(cins, sizes)],
                     train_mode=norm != 1, frozen_bn=norm == 1)
        # SimpleFPN. cfg: [n, c_vit, c_out, num_outs, h, w]
        run_case(f, "simplefpn", SimpleFPN(24, 32, 5), "masa_adapter.0.", [n, 24, 32, 5, 8, 6],
                 [(n, 24, 8, 6)] * 4)
        # Fusion. cfg: [n, c_in, c_out, num_blocks, mode, fix_upsample, num_levels, (h, w) ...]
        fusion = (
            ("df_reinterpret", DeformFusion, 32, 3, "reinterpret", False, PYR5, False),
            ("df_zero_offset", DeformFusion, 32, 2, "reinterpret", False, PYR4, True),
            ("df_fix_upsample", DeformFusion, 16, 2, "reinterpret", True, PYR5, False),
            ("dyhead_reinterpret", DyHead, 32, 3, "reinterpret", False, PYR5, False),
            ("dyhead_crop", DyHead, 32, 2, "crop", False, PYR5, False),
            ("dyhead_crop_mmcv", DyHead, 32, 2, "crop_mmcv", False, PYR5, False),
            ("dyhead_zero_offset", DyHead, 32, 2, "reinterpret", False, PYR4, True),
        )
        for gname, cls, cin, blocks, mode, fixup, pyr, zero in fusion:
            if cls is DeformFusion:
                mod = DeformFusion(cin, 32, blocks, 16, mode, fixup)
            else:
                mod = DyHead(cin, 32, blocks, 16, mode)
            cfg = [n, cin, 32, blocks, HIGH[mode], int(fixup), len(pyr)] + \
                [d for s in pyr for d in s]
            run_case(f, gname, mod, "masa_adapter.1.", cfg, [(n, cin, h, w) for h, w in pyr],
                     zero_offset=zero)


if __name__ == "__main__":
    main()
