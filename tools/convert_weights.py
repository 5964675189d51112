#!/usr/bin/env python3
"""Converts checkpoints between PyTorch .pth files and this project's HDF5 weights (one float32
dataset per official state_dict key, masa-spec §9; csrc/core/h5io.h).

  .pth -> .h5:  convert_weights.py IN.pth --out W.h5 (--config CFG [--set k=v]... | --base B.h5)
                [--base B.h5] [--allow-missing] [--unsafe-pickle]
  .h5 -> .pth:  convert_weights.py W.h5 --to-pth --out OUT.pth [--config CFG [--set k=v]...] [--bare]

.pth -> .h5 accepts official MASA checkpoints (mmengine: {'meta', 'state_dict', ...}), SAM
checkpoints (segment-anything `image_encoder.*`, or mmdet naming `backbone.*`), torchvision
ResNets (`resnet50-*.pth`: conv1 / bn1 / layer1..4 / fc, the same block names as mmdet's ResNet)
and bare state_dicts, with or without a `state_dict` / `model` wrapper and a `module.` prefix.
The target layout is the model a recipe describes (--config, via tests/reference/masa_ref.py) or
the keys of an existing weights file (--base). Each source key is kept under the first of these
names the target has: itself; `backbone.` + key (torchvision / bare ResNets); `detector.backbone.`
+ key; `image_encoder.X` or `backbone.X` as `detector.backbone.X` (SAM). Keys with no target
(num_batches_tracked, a ResNet's fc, SAM's neck / prompt encoder / mask decoder, a GDINO
detector's other parts, optimizer state) are dropped and listed. Target keys the checkpoint does
not have are taken from --base (e.g. `masa init` output: a pretrained backbone under a freshly
initialised adapter), allowed with --allow-missing (a partial file), or an error. Shapes must
match; float16 / bfloat16 / float64 values are converted to float32 (float32 values are copied
bit for bit).

.h5 -> .pth writes {'state_dict': OrderedDict} (bare with --bare) in the model's key order
(--config) or the file's creation order (files this tool writes keep it), else by name, with
`num_batches_tracked` restored as an int64 zero after every BatchNorm's running_var, so the
official code (mmengine load_checkpoint / load_state_dict) loads it strictly.

Official MASA checkpoints pickle mmengine objects besides tensors: those load only with
--unsafe-pickle (full unpickling; use only on files you trust).
"""
import argparse
import collections
import os
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(msg):
    print(f"convert_weights: error: {msg}", file=sys.stderr)
    sys.exit(1)


def load_pth(path, unsafe):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except Exception as e:  # noqa: BLE001  (pickle errors come in many types)
        if not unsafe:
            fail(f"{path}: not loadable as plain tensors ({type(e).__name__}: {str(e)[:200]}); "
                 "official mmengine checkpoints pickle other objects: rerun with --unsafe-pickle "
                 "if you trust the file")
        obj = torch.load(path, map_location="cpu", weights_only=False)
    return obj


def unwrap(obj, path):
    """The state_dict inside a checkpoint: {'state_dict': sd}, {'model': sd} or sd itself."""
    for _ in range(3):
        if isinstance(obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
            for k in ("state_dict", "model", "module"):
                if k in obj and isinstance(obj[k], dict):
                    print(f"{path}: using its '{k}' entry")
                    obj = obj[k]
                    break
            else:
                break
    if not isinstance(obj, dict) or not any(torch.is_tensor(v) for v in obj.values()):
        fail(f"{path}: no state_dict found (expected a dict of tensors, or one under "
             "'state_dict' / 'model')")
    sd = collections.OrderedDict()
    stripped = 0
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        if k.startswith("module."):
            k = k[len("module."):]
            stripped += 1
        sd[k] = v
    if stripped:
        print(f"{path}: stripped the 'module.' prefix from {stripped} keys")
    return sd


def target_layout(args):
    """OrderedDict key -> shape of the model the weights are for."""
    if args.config:
        sys.path.insert(0, os.path.join(HERE, "..", "tests"))
        from reference.masa_ref import MasaRef, param_keys, read_model_cfg
        model = MasaRef(read_model_cfg(args.config, args.set))
        sd = model.state_dict()
        return collections.OrderedDict((k, tuple(sd[k].shape)) for k in param_keys(model))
    with h5py.File(args.base, "r") as f:
        return collections.OrderedDict((k, tuple(f[k].shape)) for k in f)


def candidates(k):
    """(target key, source prefix, target prefix) in order of preference."""
    yield k, "", ""
    yield "backbone." + k, "", "backbone."
    yield "detector.backbone." + k, "", "detector.backbone."
    for src in ("image_encoder.", "backbone."):
        if k.startswith(src):
            yield "detector.backbone." + k[len(src):], src, "detector.backbone."


def summarise(keys, limit=60):
    """Every key when there are few, else counts per two-component prefix."""
    if len(keys) <= limit:
        return ["  " + k for k in keys]
    groups = collections.OrderedDict()
    for k in keys:
        p = ".".join(k.split(".")[:2])
        groups[p] = groups.get(p, 0) + 1
    return [f"  {p}.*: {n} keys" for p, n in groups.items()]


def to_h5(args):
    if not args.config and not args.base:
        fail("say which model the weights are for: --config CFG (a recipe) or --base W.h5")
    src = unwrap(load_pth(args.input, args.unsafe_pickle), args.input)
    layout = target_layout(args)
    out = collections.OrderedDict()
    dropped, renamed = [], collections.Counter()
    for k, v in src.items():
        if k.endswith("num_batches_tracked"):
            dropped.append(k)
            continue
        tk, sp, tp = next((c for c in candidates(k) if c[0] in layout), (None, "", ""))
        if tk is None:
            dropped.append(k)
            continue
        if tk in out:
            fail(f"{args.input}: '{k}' and another key both map to '{tk}'")
        if tuple(v.shape) != layout[tk]:
            fail(f"{args.input}: '{k}' has shape {tuple(v.shape)}, the model's '{tk}' needs "
                 f"{layout[tk]}")
        if not v.is_floating_point():
            fail(f"{args.input}: '{k}' has dtype {v.dtype}, expected a floating-point tensor")
        if tk != k:
            renamed[f"{sp}* -> {tp}*"] += 1
        out[tk] = v.detach().to(torch.float32).contiguous().numpy()
    missing = [k for k in layout if k not in out]
    for r, n in renamed.items():
        print(f"renamed {n} keys: {r}")
    nbt = sum(k.endswith("num_batches_tracked") for k in dropped)
    other = [k for k in dropped if not k.endswith("num_batches_tracked")]
    if nbt:
        print(f"dropped {nbt} num_batches_tracked entries (restored by --to-pth)")
    if other:
        print(f"dropped {len(other)} keys the model does not have:")
        print("\n".join(summarise(other)))
    base = None
    if missing and args.base:
        base = h5py.File(args.base, "r")
        absent = [k for k in missing if k not in base]
        if absent and not args.allow_missing:
            fail(f"{len(absent)} keys are neither in {args.input} nor in {args.base}:\n" +
                 "\n".join(summarise(absent)))
        taken = [k for k in missing if k in base]
        for k in taken:
            if base[k].dtype != np.float32 or tuple(base[k].shape) != layout[k]:
                fail(f"{args.base}: '{k}' is {base[k].dtype} {base[k].shape}, expected "
                     f"float32 {layout[k]}")
        print(f"took {len(taken)} keys from {args.base}:")
        print("\n".join(summarise(taken)))
    elif missing and not args.allow_missing:
        fail(f"{len(missing)} keys of the model are not in {args.input} (use --base W.h5 to "
             "take them from another weights file, or --allow-missing):\n" +
             "\n".join(summarise(missing)))
    elif missing:
        print(f"left out {len(missing)} keys (--allow-missing):")
        print("\n".join(summarise(missing)))
    tmp = args.out + ".tmp"
    n = 0
    with h5py.File(tmp, "w", track_order=True) as f:
        for k in layout:  # the model's order
            if k in out:
                f.create_dataset(k, data=out[k])
            elif base is not None and k in base:
                f.create_dataset(k, data=base[k][()])
            else:
                continue
            n += 1
    if base is not None:
        base.close()
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {n} tensors ({len(out)} from {args.input})")


def h5_keys(f):
    """Root dataset names in creation order when the file tracks it (ours), else by name."""
    names = []
    try:
        f.id.links.iterate(lambda n: names.append(n.decode()), idx_type=h5py.h5.INDEX_CRT_ORDER)
        return names
    except Exception:  # noqa: BLE001  (no creation-order index: files written by masa)
        return list(f)


def to_pth(args):
    sd = collections.OrderedDict()
    try:
        f = h5py.File(args.input, "r")
    except OSError as e:
        fail(f"{args.input}: not a readable HDF5 file ({e})")
    with f:
        keys = h5_keys(f)
        if args.config:  # the model's order (files written by masa keep none)
            layout = target_layout(args)
            keys = [k for k in layout if k in f] + [k for k in keys if k not in layout]
        for k in keys:
            d = f[k]
            if not isinstance(d, h5py.Dataset) or d.dtype != np.float32:
                fail(f"{args.input}: '{k}' is not a float32 dataset")
            sd[k] = torch.from_numpy(d[()])
            if k.endswith(".running_var"):
                sd[k[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    nbn = sum(k.endswith("num_batches_tracked") for k in sd)
    obj = sd if args.bare else {"state_dict": sd}
    torch.save(obj, args.out)
    print(f"wrote {args.out}: {len(sd) - nbn} tensors + {nbn} num_batches_tracked"
          f"{'' if args.bare else ' under state_dict'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("input", help=".pth checkpoint (or .h5 with --to-pth)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--to-pth", action="store_true", help="convert our .h5 back to a .pth")
    ap.add_argument("--config", help="recipe describing the target model (configs/*.cfg)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe override, as masa's --set (repeatable)")
    ap.add_argument("--base", help="weights file supplying the keys the checkpoint lacks")
    ap.add_argument("--allow-missing", action="store_true",
                    help="write a partial file when the checkpoint lacks model keys")
    ap.add_argument("--unsafe-pickle", action="store_true",
                    help="allow full unpickling (official mmengine checkpoints; trusted files only)")
    ap.add_argument("--bare", action="store_true", help="--to-pth: no state_dict wrapper")
    args = ap.parse_args()
    if args.to_pth:
        to_pth(args)
    else:
        to_h5(args)


if __name__ == "__main__":
    main()
