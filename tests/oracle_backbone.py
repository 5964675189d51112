# Oracle for tests/test_backbone.c: mmdet ResNet (forward + backward with frozen BN statistics)
# and the SAM ViT encoder (forward) against the PyTorch modules of tests/reference/backbone_ref.py,
# in float64 on float32-representable weights and inputs; results rounded to float32.
# Usage: python tests/oracle_backbone.py OUT.h5
#
# Groups (one per case):
#   r50    ResNet-50 caffe, base 64 (MASA-R50), 64x96 input. Weights NOT stored: both sides
#          generate them with backbone_ref.hash_init_value (seed in attr `hash_seed`).
#   r50np  ResNet-50 pytorch style, base 8, 64x96; weights stored under params/<key> (the C
#          test loads them by their official names).
#   r18n   ResNet-18, base 16 (narrow CPU demo), 64x96; hash weights.
#   vit1   SAM ViT (embed 96, 4 heads, depth 4, global 1 and 3, window 3, 128x128 -> 8x8 tokens
#          padded to 9x9 in windowed blocks), batch 2, all 4 block outputs; hash weights.
#   vit2   SAM ViT without absolute positions (embed 64, 2 heads, depth 3, global 2, window 4,
#          img_size 128) on a 96x160 input: 6x10 tokens (windows pad to 8x12) and the global
#          rel-pos tables (15 rows) interpolated to 11 / 19 rows; outputs of blocks 1 and 2.
#   vit3   ViT-B width (embed 768, 12 heads: head dim 64), depth 2, window 14, global 1,
#          img 256 -> 16x16 tokens (windows pad to 28x28); hash weights (not stored).
# ResNet groups: cfg [depth, base, caffe], x_b1 (1,3,64,96), out_b1_{s}, x (2,3,64,96), out_{s},
#   kink_t / kink_i / kink_v and pool_i / pool_a (see write_kinks: the float64 routing decisions
#   near ReLU / max-pool ties, which the C test adopts before its backward),
#   dy_{s} (upstream gradients of C2..C5), dx, and per trainable parameter either grad/<key>
#   (full) or, for r50 tensors over 16384 elements, gidx/<key> (1024 int64 sample indices),
#   gval/<key> (gradient at those indices) and gsum/<key> = [||g||_2, <g, r>] with
#   r = hash_uniform(key + "#proj", numel, seed) (float64 sums stored as float32).
# ViT groups: cfg [img, patch, embed, depth, heads, window, abs_pos, n_global, globals...,
#   n_out, outs...], x, out_{k}.
# Root attribute keys_<case>: "name d0,d1,..." per line, the state_dict (minus
# num_batches_tracked) in order, for the C test to compare with its registered table.
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference.backbone_ref import (ResNetRef, SamViTRef, hash_init_module,  # noqa: E402
                                    hash_uniform)

SEED = 20240917
HASH_SEED = 0x5EED
GEN = torch.Generator().manual_seed(SEED)
BIG = 16384
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale).float().double()


def put(g, name, t):
    a = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
    g.create_dataset(name, data=a.astype(np.float32))


def keys_attr(model):
    lines = []
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        lines.append(f"{k} {','.join(str(d) for d in v.shape)}")
    return "\n".join(lines)


def prefixed(model, prefix):
    """Wraps `model` so its state_dict keys carry `prefix` (e.g. backbone.conv1.weight)."""
    root = torch.nn.Module()
    node = root
    parts = prefix.split(".")
    for p in parts[:-1]:
        child = torch.nn.Module()
        node.add_module(p, child)
        node = child
    node.add_module(parts[-1], model)
    return root


KINK_TAU = 1e-4


def write_kinks(g, rec):
    """Routing decisions float32 rounding could flip: ReLU inputs within KINK_TAU * rms of zero
    (kink_t: ordinal of the ReLU in execution order, kink_i: flat index, kink_v: the float64
    value), and stem max-pool windows whose two largest inputs are within KINK_TAU * rms of each
    other or that contain such a ReLU input (pool_i: flat output index, pool_a: the float64
    argmax, a flat index into the window's (h, w) plane)."""
    kt, ki, kv = [], [], []
    for t, v in enumerate(rec):
        flat = v.reshape(-1)
        tau = KINK_TAU * flat.pow(2).mean().sqrt()
        idx = torch.nonzero(flat.abs() < tau).reshape(-1)
        kt += [t] * len(idx)
        ki += idx.tolist()
        kv += flat[idx].tolist()
    g.create_dataset("kink_t", data=np.array(kt, dtype=np.int64))
    g.create_dataset("kink_i", data=np.array(ki, dtype=np.int64))
    put(g, "kink_v", np.array(kv))
    pre = rec[0]
    n, c, h, w = pre.shape
    tau = KINK_TAU * pre.pow(2).mean().sqrt()
    post = F.relu(pre)
    _, arg = F.max_pool2d(post, 3, 2, 1, return_indices=True)
    near = (pre.abs() < tau).double()
    pad = F.pad(post, (1, 1, 1, 1), value=float("-inf"))
    win = F.unfold(pad.reshape(n * c, 1, h + 2, w + 2), 3, stride=2)  # (nc, 9, L)
    top2 = win.topk(2, dim=1).values
    has_near = F.unfold(F.pad(near, (1, 1, 1, 1)).reshape(n * c, 1, h + 2, w + 2), 3,
                        stride=2).amax(1)
    sel = (((top2[:, 0] - top2[:, 1]) < tau) & (top2[:, 0] > 0)) | (has_near > 0)
    pi = torch.nonzero(sel.reshape(-1)).reshape(-1)
    g.create_dataset("pool_i", data=pi.numpy().astype(np.int64))
    g.create_dataset("pool_a", data=arg.reshape(-1)[pi].numpy().astype(np.int64))
    return len(ki), len(pi)


def resnet_case(f, name, depth, base, style, store_weights):
    t0 = time.time()
    g = f.create_group(name)
    net = ResNetRef(depth, base, style)
    root = prefixed(net, "backbone")
    hash_init_module(root, HASH_SEED)
    f.attrs[f"keys_{name}"] = np.bytes_(keys_attr(root).encode())  # fixed-length (h5io)
    root.double().train()  # train mode, but BN stays in eval (norm_eval)
    put(g, "cfg", [depth, base, 1 if style == "caffe" else 0])
    if store_weights:
        for k, v in root.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                put(g, f"params/{k}", v)
    # batch 1, forward only
    x1 = randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = net(x1)
    put(g, "x_b1", x1)
    for s, o in enumerate(outs):
        put(g, f"out_b1_{s}", o)
    # batch 2, forward + backward
    x = randn(2, 3, 64, 96).requires_grad_()
    rec = []
    net.set_record(rec)
    outs = net(x)
    net.set_record(None)
    nk, npool = write_kinks(g, rec)
    loss = 0
    for s, o in enumerate(outs):
        dy = randn(*o.shape)
        put(g, f"dy_{s}", dy)
        put(g, f"out_{s}", o)
        loss = loss + (o * dy).sum()
    loss.backward()
    put(g, "x", x)
    put(g, "dx", x.grad)
    nbig = 0
    for k, p in root.named_parameters():
        gr = p.grad.detach()
        if gr.numel() <= BIG or depth != 50 or base != 64:
            put(g, f"grad/{k}", gr)
            continue
        nbig += 1
        flat = gr.reshape(-1)
        n = flat.numel()
        idx = torch.randperm(n, generator=GEN)[:1024].sort().values
        g.create_dataset(f"gidx/{k}", data=idx.numpy().astype(np.int64))
        put(g, f"gval/{k}", flat[idx])
        r = torch.from_numpy(hash_uniform(k + "#proj", n, HASH_SEED))
        put(g, f"gsum/{k}", [flat.norm().item(), (flat * r).sum().item()])
    mags = ", ".join(f"{o.abs().max().item():.3g}" for o in outs)
    print(f"{name}: max|C2..C5| = {mags}; max|dx| = {x.grad.abs().max().item():.3g}; "
          f"{nbig} sampled gradients; {nk} near-kink ReLU inputs, {npool} pool windows; "
          f"{time.time() - t0:.1f} s")


def vit_case(f, name, img, patch, embed, depth, heads, window, glob, outs, abs_pos, in_hw, batch,
             store_weights):
    t0 = time.time()
    g = f.create_group(name)
    net = SamViTRef(img, patch, embed, depth, heads, 4, window, glob, outs, abs_pos)
    root = prefixed(net, "detector.backbone")
    hash_init_module(root, HASH_SEED)
    f.attrs[f"keys_{name}"] = np.bytes_(keys_attr(root).encode())
    root.double().eval()
    put(g, "cfg", [img, patch, embed, depth, heads, window, int(abs_pos), len(glob), *glob,
                   len(outs), *outs])
    if store_weights:
        for k, v in root.state_dict().items():
            put(g, f"params/{k}", v)
    x = randn(batch, 3, *in_hw)
    with torch.no_grad():
        ys = net.forward_base_multi_level(x)
    put(g, "x", x)
    for k, y in enumerate(ys):
        put(g, f"out_{k}", y)
    mags = ", ".join(f"{y.abs().max().item():.3g}" for y in ys)
    print(f"{name}: max|out| = {mags}; {time.time() - t0:.1f} s")


def main():
    out = sys.argv[1]
    with h5py.File(out, "w") as f:
        f.attrs["hash_seed"] = HASH_SEED
        resnet_case(f, "r50", 50, 64, "caffe", store_weights=False)
        resnet_case(f, "r50np", 50, 8, "pytorch", store_weights=True)
        resnet_case(f, "r18n", 18, 16, "pytorch", store_weights=False)
        vit_case(f, "vit1", 128, 16, 96, 4, 4, 3, (1, 3), (0, 1, 2, 3), True, (128, 128), 2, False)
        vit_case(f, "vit2", 128, 16, 64, 3, 2, 4, (2,), (1, 2), False, (96, 160), 1, True)
        vit_case(f, "vit3", 256, 16, 768, 2, 12, 14, (1,), (0, 1), True, (256, 256), 1, False)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
