"""PyTorch reference backbones with the official MASA state_dict key names (masa-spec §1.2, §9),
written from the architecture descriptions (no mmdet / segment_anything code):

  ResNetRef   mmdet ResNet: conv1 / bn1 stem, layer1..4 of BasicBlock (18/34) or Bottleneck
              (50/101) blocks with conv{k} / bn{k} and downsample.{0,1}; style 'caffe' (stride on
              the first 1x1) or 'pytorch' (stride on the 3x3); norm_eval (BN in eval mode,
              running statistics; gamma / beta still trainable). forward -> (C2, C3, C4, C5);
              set_record(list) collects every ReLU input in execution order.
  SamViTRef   SAM ViT image encoder: patch_embed.proj, pos_embed, blocks.{i}.{norm1, attn.qkv,
              attn.proj, attn.rel_pos_h, attn.rel_pos_w, norm2, mlp.lin1, mlp.lin2};
              forward_base_multi_level -> list of NCHW block outputs (before SAM's neck).

Plus `hash_uniform`, a counter-based generator (splitmix64 of an FNV-1a key) reproduced bit for bit
by tests/test_backbone.c, so large models get identical weights in Python and C without storing
them, and `hash_init_value` / `hash_init_module`, the rule mapping a parameter name to its values.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Deterministic values shared with C

_M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & _M64
    return h


def hash_uniform(key, n, seed):
    """n values in [-1, 1) on a 2^-23 grid: u_i from splitmix64(fnv1a64(key) ^ seed, i)."""
    k = np.uint64(fnv1a64(key) ^ seed)
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = k + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return 2.0 * u - 1.0


def hash_init_value(name, shape, seed):
    """float32 values for parameter `name` (rule mirrored in test_backbone.c: hash_param)."""
    n = int(np.prod(shape)) if len(shape) else 1
    h = hash_uniform(name, n, seed)
    if name.endswith("running_var"):
        v = 1.0 + 0.5 * h
    elif name.endswith("running_mean") or name.endswith("pos_embed"):
        v = 0.1 * h
    elif "rel_pos" in name:
        v = 0.3 * h
    elif len(shape) == 1 and name.endswith("weight"):
        v = 1.0 + 0.25 * h
    elif len(shape) == 1:
        v = 0.1 * h
    else:
        fan_in = int(np.prod(shape[1:]))
        v = h * math.sqrt(3.0 / fan_in)
    return v.astype(np.float32).reshape(shape)


def hash_init_module(module, seed):
    """Fills every parameter and buffer (except num_batches_tracked) by hash_init_value."""
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            if name.endswith("num_batches_tracked"):
                continue
            v = hash_init_value(name, tuple(t.shape), seed)
            t.copy_(torch.from_numpy(v).to(t.dtype))


# ---------------------------------------------------------------------------------------------
# ResNet (mmdet naming)

def _relu(module, v):
    """ReLU that records its input when module.rec is a list (near-kink bookkeeping)."""
    if module.rec is not None:
        module.rec.append(v.detach())
    return F.relu(v)


class _Block(nn.Module):
    def __init__(self, inplanes, planes, stride, expansion, caffe):
        super().__init__()
        self.rec = None
        self.expansion = expansion
        outc = planes * expansion
        if expansion == 1:
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
        else:
            s1, s2 = (stride, 1) if caffe else (1, stride)
            self.conv1 = nn.Conv2d(inplanes, planes, 1, s1, 0, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, s2, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, outc, 1, 1, 0, bias=False)
            self.bn3 = nn.BatchNorm2d(outc)
        self.downsample = None
        if stride != 1 or inplanes != outc:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, outc, 1, stride, 0, bias=False),
                                            nn.BatchNorm2d(outc))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = _relu(self, self.bn1(self.conv1(x)))
        if self.expansion == 1:
            out = self.bn2(self.conv2(out))
        else:
            out = _relu(self, self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
        return _relu(self, out + identity)


class ResNetRef(nn.Module):
    LAYOUT = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}

    def __init__(self, depth=50, base_channels=64, style="caffe"):
        super().__init__()
        self.rec = None
        expansion = 1 if depth in (18, 34) else 4
        self.conv1 = nn.Conv2d(3, base_channels, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        inplanes = base_channels
        for s, nb in enumerate(self.LAYOUT[depth]):
            planes = base_channels * 2 ** s
            blocks = []
            for b in range(nb):
                stride = (1 if s == 0 else 2) if b == 0 else 1
                blocks.append(_Block(inplanes, planes, stride, expansion, style == "caffe"))
                inplanes = planes * expansion
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))

    def train(self, mode=True):
        super().train(mode)
        for m in self.modules():  # norm_eval: BN always uses running statistics
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def set_record(self, rec):
        """rec: a list that receives every ReLU input in execution order (None: stop)."""
        for m in self.modules():
            if isinstance(m, (ResNetRef, _Block)):
                m.rec = rec

    def forward(self, x):
        x = _relu(self, self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2, 1)
        outs = []
        for s in range(4):
            x = getattr(self, f"layer{s + 1}")(x)
            outs.append(x)
        return tuple(outs)


# ---------------------------------------------------------------------------------------------
# SAM ViT encoder

def get_rel_pos(q_size, k_size, rel_pos):
    """Relative-position table rows for every (query, key) pair: (q_size, k_size, dim)."""
    max_rel_dist = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != max_rel_dist:
        resized = F.interpolate(rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1),
                                size=max_rel_dist, mode="linear")
        resized = resized.reshape(-1, max_rel_dist).permute(1, 0)
    else:
        resized = rel_pos
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    rel = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return resized[rel.long()]


def add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, q_size, k_size):
    qh, qw = q_size
    kh, kw = k_size
    Rh = get_rel_pos(qh, kh, rel_pos_h)
    Rw = get_rel_pos(qw, kw, rel_pos_w)
    B, _, dim = q.shape
    rq = q.reshape(B, qh, qw, dim)
    rel_h = torch.einsum("bhwc,hkc->bhwk", rq, Rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", rq, Rw)
    attn = attn.view(B, qh, qw, kh, kw) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return attn.view(B, qh * qw, kh * kw)


def window_partition(x, ws):
    B, H, W, C = x.shape
    ph, pw = (ws - H % ws) % ws, (ws - W % ws) % ws
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    Hp, Wp = H + ph, W + pw
    x = x.view(B, Hp // ws, ws, Wp // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, C), (Hp, Wp)


def window_unpartition(w, ws, pad_hw, hw):
    Hp, Wp = pad_hw
    H, W = hw
    B = w.shape[0] // (Hp * Wp // ws // ws)
    x = w.view(B, Hp // ws, Wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(B, Hp, Wp, -1)
    return x[:, :H, :W, :].contiguous()


class _Attention(nn.Module):
    def __init__(self, dim, heads, rel_size):
        super().__init__()
        self.heads = heads
        hd = dim // heads
        self.scale = hd ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_size - 1, hd))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_size - 1, hd))

    def forward(self, x):
        B, H, W, _ = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, B * self.heads, H * W, -1).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = add_decomposed_rel_pos(attn, q, self.rel_pos_h, self.rel_pos_w, (H, W), (H, W))
        attn = attn.softmax(dim=-1)
        x = (attn @ v).view(B, self.heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
        return self.proj(x)


class _Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.lin2(F.gelu(self.lin1(x)))


class _ViTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, window, rel_size):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads, rel_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, dim * mlp_ratio)
        self.window = window

    def forward(self, x):
        shortcut = x
        x = self.norm1(x)
        if self.window > 0:
            H, W = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window)
        x = self.attn(x)
        if self.window > 0:
            x = window_unpartition(x, self.window, pad_hw, (H, W))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class SamViTRef(nn.Module):
    def __init__(self, img_size=1024, patch=16, embed=768, depth=12, heads=12, mlp_ratio=4,
                 window=14, global_idx=(2, 5, 8, 11), out_idx=(2, 5, 8, 11), use_abs_pos=True):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, embed, patch, patch)
        G = img_size // patch
        self.pos_embed = nn.Parameter(torch.zeros(1, G, G, embed)) if use_abs_pos else None
        self.blocks = nn.ModuleList()
        for i in range(depth):
            glob = i in global_idx
            self.blocks.append(_ViTBlock(embed, heads, mlp_ratio, 0 if glob else window,
                                         G if glob else window))
        self.out_idx = tuple(out_idx)

    def forward_base_multi_level(self, x):
        x = self.patch_embed.proj(x).permute(0, 2, 3, 1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.out_idx:
                outs.append(x.permute(0, 3, 1, 2))
        return outs
