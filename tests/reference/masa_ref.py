"""PyTorch reference of the whole MASA network, composed from the reference modules exactly as
csrc/model/masa_model.c composes ours, so that its state_dict keys are the official ones
(masa-spec §9) and equal the C parameter table's (plus BN's num_batches_tracked):

  backbone.*            ResNetRef (MASA-R50, demo)            | detector.backbone.*  SamViTRef
  masa_adapter.0.*      FPN (BN per model.pyramid_norm)       | SimpleFPN
  masa_adapter.1.*      DeformFusion | DyHead | (absent with model.fusion = none)
  rpn_head.*            RPNHeadRef (3 anchors)
  roi_head.bbox_head.*  BBoxHeadRef, Shared2FC or Shared4Conv1FC (BN convs)
  track_head.*          TrackHeadRef (RoIAlign over the first model.track_levels levels)

The model is sized by a plain dict of the recipe's model.* keys (without the "model." prefix),
`DEFAULTS` below mirroring csrc/model/masa_model.c's schema; `read_model_cfg` reads the same
recipe files (configs/*.cfg, or `masa config` output) with --set style overrides.

Also here: the test-time preprocessing (masa-spec §7.1) with cv2 as the resize reference
(`preprocess`), box scaling (`scale_boxes`), a random initialisation for parity tests that keeps
activations O(1) and makes every parameter matter (`random_init`), and h5 / state_dict helpers.
"""
import math

import cv2
import numpy as np
import torch
import torch.nn as nn

from .adapter_ref import FPN, DeformFusion, DyHead, SimpleFPN
from .backbone_ref import ResNetRef, SamViTRef, _Block
from .heads_ref import RoIHeadRef, RPNHeadRef, TrackHeadRef

# model.* keys and defaults of csrc/model/masa_model.c (MASA-R50). Lists are tuples.
DEFAULTS = {
    "backbone": "resnet",
    "resnet.depth": 50,
    "resnet.width": 64,
    "resnet.style": "caffe",
    "resnet.frozen_stages": -1,
    "backbone_trainable": True,
    "vit.size": "b",
    "vit.img_size": 1024,
    "vit.depth": 0,
    "vit.embed": 0,
    "vit.heads": 0,
    "vit.window": -1,
    "vit.global": (),
    "vit.out": (),
    "pyramid": "fpn",
    "pyramid_norm": "bn_train",
    "channels": 256,
    "num_outs": 5,
    "strides": (4.0, 8.0, 16.0, 32.0, 64.0),
    "fusion": "deform",
    "fusion_blocks": 3,
    "fusion_gn_groups": 16,
    "offset_mode": "reinterpret",
    "fix_upsample": False,
    "zero_init_offset": True,
    "adapter_trainable": True,
    "track_levels": 4,
    "track.convs": 4,
    "track.conv_channels": 256,
    "track.gn_groups": 32,
    "track.fc_channels": 1024,
    "track.embed_channels": 256,
    "rpn": True,
    "bbox_head": "shared4conv1fc",
    "bbox_fc_channels": 1024,
    "test_scale": (1024, 1024),
    "pad_divisor": 32,
}

# SAM ViT presets (segment-anything build_sam): embed, depth, heads, global blocks.
VIT_SIZES = {"b": (768, 12, 12, (2, 5, 8, 11)), "l": (1024, 24, 16, (5, 11, 17, 23)),
             "h": (1280, 32, 16, (7, 15, 23, 31))}


def _parse_value(key, text, default):
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"model.{key}: expected a boolean, got '{text}'")
        return text.lower() in ("true", "1", "yes")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, tuple):
        if not text.strip():
            return ()
        conv = float if key == "strides" else int
        return tuple(conv(t.strip()) for t in text.split(","))
    return text


def read_model_cfg(path=None, sets=()):
    """The model.* values of a recipe file (or `masa config` output) after 'key=value' overrides,
    as a dict without the 'model.' prefix. Unknown model.* keys are errors; other keys ignored."""
    cfg = dict(DEFAULTS)
    lines = []
    if path:
        with open(path) as f:
            lines = [(f"{path}:{i + 1}", ln) for i, ln in enumerate(f)]
    lines += [("--set", s) for s in sets]
    for where, ln in lines:
        ln = ln.split("#", 1)[0].strip()
        if not ln:
            continue
        if "=" not in ln:
            raise ValueError(f"{where}: expected 'key = value'")
        k, v = (t.strip() for t in ln.split("=", 1))
        if not k.startswith("model."):
            continue
        k = k[len("model."):]
        if k not in DEFAULTS:
            raise ValueError(f"{where}: unknown key 'model.{k}'")
        cfg[k] = _parse_value(k, v, DEFAULTS[k])
    return cfg


def vit_sizes(cfg):
    """(embed, depth, heads, window, global_idx, out_idx) after the model.vit.* overrides."""
    embed, depth, heads, glob = VIT_SIZES[cfg["vit.size"]]
    embed = cfg["vit.embed"] or embed
    depth = cfg["vit.depth"] or depth
    heads = cfg["vit.heads"] or heads
    window = 14 if cfg["vit.window"] < 0 else cfg["vit.window"]
    glob = tuple(cfg["vit.global"]) or glob
    out = tuple(cfg["vit.out"]) or glob
    assert len(out) == 4 and list(out) == sorted(set(out)) and max(out) < depth, out
    return embed, depth, heads, window, glob, out


class _Detector(nn.Module):
    """Holds the SAM encoder under the official 'detector.backbone' prefix."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


class MasaRef(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg = dict(cfg)
        C = cfg["channels"]
        L = cfg["num_outs"]
        strides = [float(s) for s in cfg["strides"]]
        assert len(strides) == L
        if cfg["backbone"] == "resnet":
            depth, width = cfg["resnet.depth"], cfg["resnet.width"]
            self.backbone = ResNetRef(depth, width, cfg["resnet.style"])
            exp = 1 if depth in (18, 34) else 4
            c_in = [width * exp * 2 ** s for s in range(4)]
            norm = None if cfg["pyramid_norm"] == "none" else "bn"
            pyramid = FPN(c_in, C, L, norm=norm)
        else:
            embed, depth, heads, window, glob, out = vit_sizes(cfg)
            self.detector = _Detector(SamViTRef(cfg["vit.img_size"], 16, embed, depth, heads, 4,
                                                window, glob, out))
            pyramid = SimpleFPN(embed, C, L)
        adapter = [pyramid]
        if cfg["fusion"] == "deform":
            adapter.append(DeformFusion(C, C, cfg["fusion_blocks"], cfg["fusion_gn_groups"],
                                        cfg["offset_mode"], cfg["fix_upsample"]))
        elif cfg["fusion"] == "dyhead":
            adapter.append(DyHead(C, C, cfg["fusion_blocks"], cfg["fusion_gn_groups"],
                                  cfg["offset_mode"]))
        else:
            assert cfg["fusion"] == "none", cfg["fusion"]
        self.masa_adapter = nn.ModuleList(adapter)
        roi_strides = strides[:cfg["track_levels"]]
        if cfg["rpn"]:
            self.rpn_head = RPNHeadRef(C, C, 3)
        if cfg["bbox_head"] != "none":
            four = cfg["bbox_head"] == "shared4conv1fc"
            self.roi_head = RoIHeadRef(roi_strides, in_channels=C, num_convs=4 if four else 0,
                                       conv_channels=C, num_fcs=1 if four else 2,
                                       fc_channels=cfg["bbox_fc_channels"], num_classes=1)
        self.track_head = TrackHeadRef(
            roi_strides, in_channels=C, num_convs=cfg["track.convs"],
            conv_channels=cfg["track.conv_channels"], gn_groups=cfg["track.gn_groups"],
            num_fcs=1, fc_channels=cfg["track.fc_channels"],
            embed_channels=cfg["track.embed_channels"])

    def backbone_features(self, img):
        if self.cfg["backbone"] == "resnet":
            return list(self.backbone(img))
        return self.detector.backbone.forward_base_multi_level(img)

    def features(self, img):
        """img (n, 3, H, W) normalised and padded -> num_outs adapter maps."""
        x = self.masa_adapter[0](self.backbone_features(img))
        if len(self.masa_adapter) > 1:
            x = self.masa_adapter[1](x)
        return list(x)

    def embed(self, feats, rois):
        """rois (k, 5): batch index, x1, y1, x2, y2 in network pixels -> (k, E) embeddings."""
        return self.track_head(feats, rois)


def param_keys(model):
    """The keys the C parameter table holds: the state_dict minus num_batches_tracked."""
    return [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]


def count_params(model, prefixes=("backbone", "detector.backbone", "masa_adapter.0",
                                  "masa_adapter.1", "rpn_head", "roi_head", "track_head")):
    """Parameter + buffer counts per top-level module, as masa_model_print_summary groups them
    (BN running statistics included, num_batches_tracked excluded)."""
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        for p in prefixes:
            if k.startswith(p + "."):
                out[p] = out.get(p, 0) + v.numel()
                break
    return out


# ---------------------------------------------------------------------------------------------
# Random weights for parity tests

def random_init(model, seed, offset_gain=1.0, residual_gain=0.3):
    """Uniform weights scaled by 1/sqrt(fan_in) (unit-variance preserving), norm weights around 1,
    biases, positions and rel-pos tables non-zero, and non-zero offset convs (offset_gain: their
    output std in pixels, roughly) so the DCN offsets and masks matter. The last BN weight of each
    ResNet residual branch is scaled by residual_gain: with full-gain branches a random ResNet-50
    amplifies float32 rounding ~4x per stage (float32 vs float64 torch differ by 3e-4 RMS at the
    adapter output), at 0.3 it stays near 2e-5. BN running statistics are left at 0 / 1: call
    calibrate_bn afterwards."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if name.endswith("num_batches_tracked"):
                continue
            u = torch.rand(t.shape, generator=g, dtype=torch.float64) * 2.0 - 1.0
            if name.endswith("running_mean"):
                v = torch.zeros(t.shape, dtype=torch.float64)
            elif name.endswith("running_var"):
                v = torch.ones(t.shape, dtype=torch.float64)
            elif name.endswith("pos_embed"):
                v = 0.1 * u
            elif "rel_pos" in name:
                v = 0.3 * u
            elif t.dim() == 1 and name.endswith("weight"):
                v = 1.0 + 0.25 * u
            elif t.dim() == 1:
                v = 0.1 * u
            else:
                fan_in = int(np.prod(t.shape[1:]))
                v = u * math.sqrt(3.0 / fan_in)
                if "spatial_conv_offset" in name:
                    v = v * offset_gain
            t.copy_(v.to(t.dtype))
        for blk in model.modules():
            if isinstance(blk, _Block):
                (blk.bn3 if blk.expansion == 4 else blk.bn2).weight.mul_(residual_gain)


def calibrate_bn(model, run, seed, jitter=0.2):
    """Sets every BatchNorm's running statistics from the batch it sees in run() (eval mode; each
    BN is set just before it normalises, so later layers see calibrated inputs), perturbed by
    `jitter` so the statistics are not exactly the batch's. Keeps a deep random ResNet's
    activations O(1)."""
    g = torch.Generator().manual_seed(seed + 1)
    hooks = []

    def pre(mod, inp):
        x = inp[0].detach()
        if x.numel() == 0:
            return
        m = x.mean(dim=(0, 2, 3))
        v = x.var(dim=(0, 2, 3), unbiased=False) + 1e-3
        c = m.numel()
        mod.running_mean.copy_(m + jitter * v.sqrt() * (torch.rand(c, generator=g) * 2 - 1))
        mod.running_var.copy_(v * (1.0 + jitter * (torch.rand(c, generator=g) * 2 - 1)))

    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            hooks.append(mod.register_forward_pre_hook(pre))
    was = model.training
    model.eval()
    with torch.no_grad():
        run()
    model.train(was)
    for h in hooks:
        h.remove()


# ---------------------------------------------------------------------------------------------
# Test-time preprocessing (masa-spec §7.1): mmcv keep-ratio rescale with cv2 INTER_LINEAR,
# RGB, float32 (x - mean) / std, then zero padding to the divisor.

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def rescale_size(h, w, scale_long, scale_short):
    lo, sh = max(scale_long, scale_short), min(scale_long, scale_short)
    f = min(lo / max(h, w), sh / min(h, w))
    return int(h * float(f) + 0.5), int(w * float(f) + 0.5)


def preprocess(rgb, scale, pad_divisor):
    """rgb (h, w, 3) uint8 -> ((1, 3, H, W) float32 tensor, (sx, sy) float32 scale factors)."""
    h, w = rgb.shape[:2]
    nh, nw = rescale_size(h, w, scale[0], scale[1])
    if (nh, nw) != (h, w):
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    x = (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    H = -(-nh // pad_divisor) * pad_divisor
    W = -(-nw // pad_divisor) * pad_divisor
    out = torch.zeros(1, 3, H, W)
    out[0, :, :nh, :nw] = x
    return out, (np.float32(nw / w), np.float32(nh / h))


def scale_boxes(boxes, sf):
    """(n, 4) original-pixel boxes -> (n, 5) RoIs (batch 0) in network pixels, float32 product
    as mmdet multiplies by its float32 scale-factor tensor."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([sf[0], sf[1], sf[0], sf[1]],
                                                                 np.float32)
    return torch.from_numpy(np.concatenate([np.zeros((len(b), 1), np.float32), b], 1))


# ---------------------------------------------------------------------------------------------
# Weights files

def save_h5(model_or_sd, path):
    """One float32 dataset per key at the root; num_batches_tracked dropped."""
    import h5py
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, nn.Module) else model_or_sd
    with h5py.File(path, "w") as f:
        for k, v in sd.items():
            if k.endswith("num_batches_tracked"):
                continue
            f.create_dataset(k, data=v.detach().cpu().float().numpy())


def load_h5(model, path):
    """Loads an h5 weights file (ours) into the model; num_batches_tracked left as they are."""
    import h5py
    sd = model.state_dict()
    with h5py.File(path, "r") as f:
        missing = [k for k in param_keys(model) if k not in f]
        extra = [k for k in f if k not in sd]
        if missing or extra:
            raise KeyError(f"{path}: missing {missing[:5]}, unexpected {extra[:5]}")
        with torch.no_grad():
            for k in param_keys(model):
                sd[k].copy_(torch.from_numpy(f[k][()]))
