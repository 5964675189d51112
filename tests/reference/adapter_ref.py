"""PyTorch reference modules for MASA's adapter (masa_adapter.0 pyramid, masa_adapter.1 fusion),
written from masa-spec §1.3-§1.4 with plain torch + torchvision.ops.deform_conv2d (no mmcv /
mmdet code). Attribute names reproduce the official state_dict keys (spec §9) below the
"masa_adapter.0." / "masa_adapter.1." prefixes, e.g. lateral_convs.0.conv.weight,
fpn1.1.ln.weight, dyhead_blocks.0.spatial_conv_offset.weight,
dyhead_blocks.0.spatial_conv_mid.norm.bias, dyhead_blocks.0.task_attn_module.conv2.conv.bias.

Contents:
  ConvModule        mmcv ConvModule (conv [+ bn] [+ act]) with names conv / bn
  FPN               mmdet FPN (lateral 1x1, nearest top-down, output 3x3, max-pool extra levels)
  Norm2d, SimpleFPN ViTDet SimpleFPN as in MASA's simplefpn.py
  mmcv_dcn          mmcv ModulatedDeformConv2d semantics on top of torchvision's deform_conv2d
  DyDCNv2           DCN (.conv.weight) + GroupNorm (.norm)
  high_view         the high branch's offset / mask reading: 'reinterpret' | 'crop' | 'crop_mmcv'
  DeformFusion      MASA's DeformFusion (3x DyHeadBlock without attentions, 81-ch offset conv)
  DyHead            mmdet DyHead (27-ch offset conv, HSigmoid scale attention, DyReLU)
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import deform_conv2d


# ---------------------------------------------------------------------------------------------
# Pyramids

class ConvModule(nn.Module):
    """mmcv ConvModule: conv (bias iff no norm) -> optional BatchNorm ('bn') -> optional act."""

    def __init__(self, cin, cout, k, pad=0, norm=None, act=None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=pad, bias=norm is None)
        self.with_bn = norm == "bn"
        if self.with_bn:
            self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        if self.with_bn:
            x = self.bn(x)
        return self.act(x) if self.act is not None else x


class FPN(nn.Module):
    """mmdet FPN, start_level 0, add_extra_convs False, act None, nearest top-down.
    norm: None (convs with bias) or 'bn' (train / eval decided by the module's mode).
    use_residual=False drops the top-down additions (SimpleFPN's switch)."""

    def __init__(self, in_channels, out_channels, num_outs, norm=None, use_residual=True):
        super().__init__()
        self.num_outs = num_outs
        self.use_residual = use_residual
        self.lateral_convs = nn.ModuleList(
            [ConvModule(c, out_channels, 1, norm=norm) for c in in_channels])
        self.fpn_convs = nn.ModuleList(
            [ConvModule(out_channels, out_channels, 3, pad=1, norm=norm) for _ in in_channels])

    def forward_pyramid(self, feats):
        lat = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        if self.use_residual:
            for i in range(len(lat) - 1, 0, -1):
                lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:],
                                                        mode="nearest")
        outs = [conv(t) for conv, t in zip(self.fpn_convs, lat)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs

    def forward(self, feats):
        return self.forward_pyramid(list(feats))

    def init_weights(self):
        """mmdet FPN init_cfg: Xavier-uniform on Conv2d, zero bias; BN weight 1 bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=1.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()


class Norm2d(nn.Module):
    """LayerNorm over channels at each pixel (NHWC permutation), eps 1e-6."""

    def __init__(self, c):
        super().__init__()
        self.ln = nn.LayerNorm(c, eps=1e-6)

    def forward(self, x):
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


class SimpleFPN(FPN):
    """ViTDet SimpleFPN: fpn1..fpn4 branch ops, then the FPN above without norm (bias convs)."""

    def __init__(self, c_vit, out_channels, num_outs=5, use_residual=True):
        super().__init__([c_vit] * 4, out_channels, num_outs, norm=None,
                         use_residual=use_residual)
        self.fpn1 = nn.Sequential(nn.ConvTranspose2d(c_vit, c_vit, 2, stride=2), Norm2d(c_vit),
                                  nn.GELU(), nn.ConvTranspose2d(c_vit, c_vit, 2, stride=2))
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(c_vit, c_vit, 2, stride=2))
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, feats):
        ops = [self.fpn1, self.fpn2, self.fpn3, self.fpn4]
        return self.forward_pyramid([op(f) for op, f in zip(ops, feats)])


# ---------------------------------------------------------------------------------------------
# Modulated deformable convolution with mmcv's rules

class _MmcvOffsetGrad(torch.autograd.Function):
    """Identity on the offsets whose backward applies mmcv's rule: a sample outside the open
    range (-1, h) x (-1, w) gets no offset gradient at all. torchvision's coordinate gradient
    differs exactly at -1 (it has no range test), which the zero-offset init hits on the padded
    border. off (n, 18, ho, wo) as deform_conv2d reads it: (dy, dx) pairs, tap t = i*3 + j."""

    @staticmethod
    def forward(ctx, off, h, w, stride, pad):
        n, _, ho, wo = off.shape
        dt = off.dtype
        oh = torch.arange(ho, dtype=dt).view(1, 1, ho, 1)
        ow = torch.arange(wo, dtype=dt).view(1, 1, 1, wo)
        i = (torch.arange(9) // 3).to(dt).view(1, 9, 1, 1)
        j = (torch.arange(9) % 3).to(dt).view(1, 9, 1, 1)
        sy = oh * stride - pad + i + off[:, 0::2]
        sx = ow * stride - pad + j + off[:, 1::2]
        valid = (sy > -1) & (sy < h) & (sx > -1) & (sx < w)
        ctx.save_for_backward(valid.repeat_interleave(2, dim=1))
        return off.clone()

    @staticmethod
    def backward(ctx, g):
        (valid,) = ctx.saved_tensors
        return g * valid.to(g.dtype), None, None, None, None


def mmcv_dcn(x, off, mask, weight, stride):
    """mmcv ModulatedDeformConv2d, kernel 3, padding 1, no bias; off (n, 18, ho, wo) in (dy, dx)
    order, mask (n, 9, ho, wo) already sigmoid-ed."""
    off = _MmcvOffsetGrad.apply(off, x.shape[2], x.shape[3], stride, 1)
    return deform_conv2d(x, off, weight, None, stride=(stride, stride), padding=(1, 1), mask=mask)


class ModulatedDeformConv2d(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        bound = 1.0 / math.sqrt(cin * 9)  # mmcv init_weights
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x, off, mask):
        return mmcv_dcn(x, off, mask, self.weight, self.stride)


class DyDCNv2(nn.Module):
    def __init__(self, cin, cout, stride=1, gn_groups=16):
        super().__init__()
        self.conv = ModulatedDeformConv2d(cin, cout, stride)
        self.norm = nn.GroupNorm(gn_groups, cout, eps=1e-5)

    def forward(self, x, off, mask):
        return self.norm(self.conv(x, off, mask))


def channel_window(t, c0, nc, ho, wo, mode):
    """The (n, nc, ho, wo) tensor a DCN sees when handed channels [c0, c0+nc) of t (n, C, hl, wl)
    while producing an (ho, wo) output:
      'exact'        (ho, wo) == (hl, wl): the plain slice
      'reinterpret'  mmcv reads the image's memory from channel c0 on with the OUTPUT strides:
                     the first nc*ho*wo elements viewed as (nc, ho, wo) (masa-spec 1.4.1 quirk)
      'crop'         the top-left (ho, wo) window of the slice."""
    n, _, hl, wl = t.shape
    if mode == "exact":
        assert (ho, wo) == (hl, wl)
        return t[:, c0:c0 + nc]
    if mode == "reinterpret":
        base = c0 * hl * wl
        assert base + nc * ho * wo <= t.shape[1] * hl * wl
        return t.reshape(n, -1)[:, base:base + nc * ho * wo].reshape(n, nc, ho, wo)
    assert mode == "crop"
    return t[:, c0:c0 + nc, :ho, :wo]


def high_view(om, ms, off_c0, msk_c0, ho, wo, mode):
    """Offsets / masks of the coarse ("high") branch for the mode names of model/deform_fusion.h:
    'reinterpret' (official), 'crop', and 'crop_mmcv' (mmdet's crop revision on mmcv 2.x: the
    cropped offset VIEW is read raw = reinterpreted, but mmcv returns its gradient in a fresh
    contiguous tensor, which autograd maps onto the crop window; the masks are a new tensor
    (sigmoid of the crop) and really cropped). Same-size branches should use mode 'exact'."""
    if mode == "crop_mmcv":
        crop = channel_window(om, off_c0, 18, ho, wo, "crop")
        raw = channel_window(om, off_c0, 18, ho, wo, "reinterpret")
        off = crop + (raw - crop).detach()  # value of the raw read, gradient onto the crop
        return off, channel_window(ms, msk_c0, 9, ho, wo, "crop")
    return (channel_window(om, off_c0, 18, ho, wo, mode),
            channel_window(ms, msk_c0, 9, ho, wo, mode))


def up_ac(t, size):
    return F.interpolate(t, size=size, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------------------------------
# MASA DeformFusion

class DeformFusionBlock(nn.Module):
    def __init__(self, cin, cout, gn_groups=16, high_mode="reinterpret", fix_upsample=False):
        super().__init__()
        self.high_mode = high_mode
        self.fix_upsample = fix_upsample
        self.spatial_conv_offset = nn.Conv2d(cin, 81, 3, padding=1)
        self.spatial_conv_high = DyDCNv2(cin, cout, 1, gn_groups)
        self.spatial_conv_mid = DyDCNv2(cin, cout, 1, gn_groups)
        self.spatial_conv_low = DyDCNv2(cin, cout, 2, gn_groups)

    def init_weights(self, zero_init_offset=True):
        """DyHeadBlock._init_weights: normal(0, 0.01) on nn.Conv2d, then the offset conv zeroed."""
        nn.init.normal_(self.spatial_conv_offset.weight, 0.0, 0.01)
        nn.init.zeros_(self.spatial_conv_offset.bias)
        if zero_init_offset:
            nn.init.zeros_(self.spatial_conv_offset.weight)

    def forward(self, x):
        outs = []
        L = len(x)
        for l in range(L):
            hl, wl = x[l].shape[2:]
            om = self.spatial_conv_offset(x[l])
            ms = torch.sigmoid(om[:, 54:81])
            s = self.spatial_conv_mid(x[l], om[:, 0:18], ms[:, 0:9])
            terms = 1
            if l > 0:
                s = s + self.spatial_conv_low(x[l - 1], om[:, 18:36], ms[:, 9:18])
                terms += 1
            if l < L - 1:
                if self.fix_upsample:
                    s = s + self.spatial_conv_high(up_ac(x[l + 1], (hl, wl)), om[:, 36:54],
                                                   ms[:, 18:27])
                else:
                    ho, wo = x[l + 1].shape[2:]
                    off, msk = high_view(om, ms, 36, 18, ho, wo, self.high_mode)
                    s = s + up_ac(self.spatial_conv_high(x[l + 1], off, msk), (hl, wl))
                terms += 1
            outs.append(s / terms)
        return outs


class DeformFusion(nn.Module):
    def __init__(self, cin, cout, num_blocks=3, gn_groups=16, high_mode="reinterpret",
                 fix_upsample=False):
        super().__init__()
        self.dyhead_blocks = nn.Sequential(*[
            DeformFusionBlock(cin if b == 0 else cout, cout, gn_groups, high_mode, fix_upsample)
            for b in range(num_blocks)])

    def forward(self, x):
        return self.dyhead_blocks(list(x))


# ---------------------------------------------------------------------------------------------
# mmdet DyHead

class HSigmoid(nn.Module):
    """mmcv HSigmoid(bias=3, divisor=6): clamp((x + 3) / 6, 0, 1)."""

    def forward(self, x):
        return ((x + 3.0) / 6.0).clamp(0.0, 1.0)


class ActConv(nn.Module):
    """mmcv ConvModule 1x1 with bias and an activation (names conv.weight / conv.bias)."""

    def __init__(self, cin, cout, act):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.act = act

    def forward(self, x):
        return self.act(self.conv(x))


class DyReLU(nn.Module):
    def __init__(self, c, ratio=4):
        super().__init__()
        self.c = c
        self.conv1 = ActConv(c, c // ratio, nn.ReLU())
        self.conv2 = ActConv(c // ratio, 4 * c, HSigmoid())

    def forward(self, x):
        t = self.conv2(self.conv1(F.adaptive_avg_pool2d(x, 1))) - 0.5
        a1, b1, a2, b2 = torch.split(t, self.c, dim=1)
        return torch.max(x * (2.0 * a1 + 1.0) + b1, x * (2.0 * a2) + b2)


class DyHeadBlock(nn.Module):
    def __init__(self, cin, cout, gn_groups=16, high_mode="reinterpret"):
        super().__init__()
        self.high_mode = high_mode
        self.spatial_conv_high = DyDCNv2(cin, cout, 1, gn_groups)
        self.spatial_conv_mid = DyDCNv2(cin, cout, 1, gn_groups)
        self.spatial_conv_low = DyDCNv2(cin, cout, 2, gn_groups)
        self.spatial_conv_offset = nn.Conv2d(cin, 27, 3, padding=1)
        self.scale_attn_module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, 1, 1),
                                               nn.ReLU(), HSigmoid())
        self.task_attn_module = DyReLU(cout)

    def init_weights(self, zero_init_offset=True):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)
        if zero_init_offset:
            nn.init.zeros_(self.spatial_conv_offset.weight)

    def forward(self, x):
        outs = []
        L = len(x)
        att = self.scale_attn_module
        for l in range(L):
            hl, wl = x[l].shape[2:]
            om = self.spatial_conv_offset(x[l])
            ms = torch.sigmoid(om[:, 18:27])
            mid = self.spatial_conv_mid(x[l], om[:, 0:18], ms)
            s = mid * att(mid)
            terms = 1
            if l > 0:
                low = self.spatial_conv_low(x[l - 1], om[:, 0:18], ms)
                s = s + low * att(low)
                terms += 1
            if l < L - 1:
                ho, wo = x[l + 1].shape[2:]
                off, msk = high_view(om, ms, 0, 0, ho, wo, self.high_mode)
                up = up_ac(self.spatial_conv_high(x[l + 1], off, msk), (hl, wl))
                s = s + up * att(up)
                terms += 1
            outs.append(self.task_attn_module(s / terms))
        return outs


class DyHead(nn.Module):
    def __init__(self, cin, cout, num_blocks=3, gn_groups=16, high_mode="reinterpret"):
        super().__init__()
        self.dyhead_blocks = nn.Sequential(*[
            DyHeadBlock(cin if b == 0 else cout, cout, gn_groups, high_mode)
            for b in range(num_blocks)])

    def forward(self, x):
        return self.dyhead_blocks(list(x))
