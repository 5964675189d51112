"""PyTorch reference modules and test-time logic for MASA's heads, written from masa-spec §2-§3
(mmdet 3.3 / mmcv 2.1 semantics as the spec and the report describe them; no mmdet code).

Attribute names reproduce the official state_dict keys (spec §9), e.g.
track_head.embed_head.convs.0.conv.weight, rpn_head.rpn_cls.weight,
roi_head.bbox_head.shared_fcs.0.weight. Everything is plain torch + torchvision.ops.roi_align.

Contents:
  ConvModuleRef, RoIExtractorRef, EmbedHeadRef, TrackHeadRef, RPNHeadRef, BBoxHeadRef,
  RoIHeadRef, HeadsRef (the three heads under their MASA prefixes);
  base_anchors / grid_anchors (mmdet AnchorGenerator), delta_encode / delta_decode
  (DeltaXYWHBBoxCoder), nms_stable (mmcv nms_cpu semantics with a stable order on ties),
  batched_nms_ref (mmcv batched_nms), rpn_proposals_ref (RPNHead test-time proposals),
  bbox_predict_ref (BBoxHead test-time detections).
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align


# ---------------------------------------------------------------------------------------------
# Modules

class ConvModuleRef(nn.Module):
    """mmcv ConvModule: conv (bias only without a norm) -> norm ('gn' or 'bn') -> ReLU."""

    def __init__(self, cin, cout, k=3, pad=1, norm=None, gn_groups=32, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=pad, bias=norm is None)
        self.norm_kind = norm
        if norm == "gn":
            self.gn = nn.GroupNorm(gn_groups, cout, eps=1e-5)
        elif norm == "bn":
            self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.relu = relu

    def forward(self, x):
        x = self.conv(x)
        if self.norm_kind == "gn":
            x = self.gn(x)
        elif self.norm_kind == "bn":
            x = self.bn(x)
        return F.relu(x) if self.relu else x

    def init_weights(self):
        # mmcv ConvModule: kaiming_normal fan_out (relu), bias 0; norm weight 1, bias 0.
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)
        norm = getattr(self, self.norm_kind) if self.norm_kind else None
        if norm is not None:
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)


def map_roi_levels(rois, num_levels, finest_scale=56.0):
    """SingleRoIExtractor level rule, evaluated on float32 RoIs as the model holds them."""
    r = rois.float()
    scale = torch.sqrt((r[:, 3] - r[:, 1]) * (r[:, 4] - r[:, 2]))
    lv = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return lv.clamp(min=0, max=num_levels - 1).long()


class RoIExtractorRef(nn.Module):
    """SingleRoIExtractor + RoIAlign(7, sampling_ratio 0, aligned) over feats[:len(strides)]."""

    def __init__(self, strides, out_size=7, finest_scale=56.0):
        super().__init__()
        self.strides = list(strides)
        self.out_size = out_size
        self.finest_scale = finest_scale

    def forward(self, feats, rois):
        feats = feats[: len(self.strides)]
        k, c = rois.shape[0], feats[0].shape[1]
        out = feats[0].new_zeros(k, c, self.out_size, self.out_size)
        lv = map_roi_levels(rois, len(feats), self.finest_scale)
        for l, f in enumerate(feats):
            idx = (lv == l).nonzero(as_tuple=True)[0]
            if idx.numel() > 0:
                out[idx] = roi_align(f, rois[idx], (self.out_size, self.out_size),
                                     spatial_scale=1.0 / self.strides[l], sampling_ratio=0,
                                     aligned=True)
            else:  # keep every level in the graph, as mmdet does (zero gradient)
                out = out + f.sum() * 0.0
        return out


class EmbedHeadRef(nn.Module):
    """QuasiDenseEmbedHead: 4x ConvModule(3x3, GN32, ReLU) -> flatten -> fcs (ReLU) -> fc_embed."""

    def __init__(self, in_channels=256, num_convs=4, conv_channels=256, gn_groups=32, num_fcs=1,
                 fc_channels=1024, embed_channels=256, roi_size=7):
        super().__init__()
        self.convs = nn.ModuleList()
        c = in_channels
        for _ in range(num_convs):
            self.convs.append(ConvModuleRef(c, conv_channels, 3, 1, "gn", gn_groups))
            c = conv_channels
        self.fcs = nn.ModuleList()
        d = c * roi_size * roi_size
        for _ in range(num_fcs):
            self.fcs.append(nn.Linear(d, fc_channels))
            d = fc_channels
        self.fc_embed = nn.Linear(d, embed_channels)

    def forward(self, x):
        for conv in self.convs:
            x = conv(x)
        x = x.flatten(1)
        for fc in self.fcs:
            x = F.relu(fc(x))
        return self.fc_embed(x)

    def init_weights(self):
        # spec §2: Xavier-uniform Linear, bias 0; fc_embed Normal(0, 0.01), bias 0; convs default.
        for conv in self.convs:
            conv.init_weights()
        for fc in self.fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_embed.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc_embed.bias)


class TrackHeadRef(nn.Module):
    def __init__(self, strides, **embed_kw):
        super().__init__()
        self.roi_extractor = RoIExtractorRef(strides)
        self.embed_head = EmbedHeadRef(**embed_kw)

    def forward(self, feats, rois):
        return self.embed_head(self.roi_extractor(feats, rois))


class RPNHeadRef(nn.Module):
    """RPNHead: relu(rpn_conv 3x3) -> rpn_cls 1x1 (A) and rpn_reg 1x1 (4A), shared over levels."""

    def __init__(self, in_channels=256, feat_channels=256, num_anchors=3):
        super().__init__()
        self.rpn_conv = nn.Conv2d(in_channels, feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(feat_channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(feat_channels, num_anchors * 4, 1)

    def forward(self, feats):
        cls, reg = [], []
        for x in feats:
            h = F.relu(self.rpn_conv(x))
            cls.append(self.rpn_cls(h))
            reg.append(self.rpn_reg(h))
        return cls, reg

    def init_weights(self):
        # mmdet RPNHead init_cfg: Normal(std=0.01) on every Conv2d, bias 0.
        for m in (self.rpn_conv, self.rpn_cls, self.rpn_reg):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class BBoxHeadRef(nn.Module):
    """ConvFCBBoxHead: Shared2FC (num_convs 0, num_fcs 2) or Shared4Conv1FC (4 conv+BN, 1 fc);
    fc_cls (num_classes + 1, background last), fc_reg (4, class-agnostic)."""

    def __init__(self, in_channels=256, num_convs=0, conv_channels=256, num_fcs=2,
                 fc_channels=1024, num_classes=1, roi_size=7):
        super().__init__()
        c = in_channels
        if num_convs > 0:
            self.shared_convs = nn.ModuleList()
            for _ in range(num_convs):
                self.shared_convs.append(ConvModuleRef(c, conv_channels, 3, 1, "bn"))
                c = conv_channels
        else:
            self.shared_convs = None
        self.shared_fcs = nn.ModuleList()
        d = c * roi_size * roi_size
        for _ in range(num_fcs):
            self.shared_fcs.append(nn.Linear(d, fc_channels))
            d = fc_channels
        self.fc_cls = nn.Linear(d, num_classes + 1)
        self.fc_reg = nn.Linear(d, 4)

    def forward(self, x):
        if self.shared_convs is not None:
            for conv in self.shared_convs:
                x = conv(x)
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)

    def init_weights(self):
        # mmdet BBoxHead: fc_cls Normal(0.01), fc_reg Normal(0.001); ConvFCBBoxHead: shared_fcs
        # Xavier-uniform; biases 0; shared convs ConvModule default.
        if self.shared_convs is not None:
            for conv in self.shared_convs:
                conv.init_weights()
        for fc in self.shared_fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.normal_(self.fc_reg.weight, 0.0, 0.001)
        nn.init.zeros_(self.fc_reg.bias)


class RoIHeadRef(nn.Module):
    def __init__(self, strides, **bbox_kw):
        super().__init__()
        self.bbox_roi_extractor = RoIExtractorRef(strides)
        self.bbox_head = BBoxHeadRef(**bbox_kw)

    def forward(self, feats, rois):
        return self.bbox_head(self.bbox_roi_extractor(feats, rois))


class HeadsRef(nn.Module):
    """The three heads under MASA's prefixes: track_head., rpn_head., roi_head.bbox_head."""

    def __init__(self, roi_strides, track_kw=None, rpn_kw=None, bbox_kw=None):
        super().__init__()
        self.track_head = TrackHeadRef(roi_strides, **(track_kw or {}))
        self.rpn_head = RPNHeadRef(**(rpn_kw or {}))
        self.roi_head = RoIHeadRef(roi_strides, **(bbox_kw or {}))


def param_dict(module):
    """state_dict minus BN's num_batches_tracked (not kept by the C model)."""
    return {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


# ---------------------------------------------------------------------------------------------
# Anchors, box coder (float32 in mmdet's operation order)

def base_anchors(stride, scales=(8.0,), ratios=(0.5, 1.0, 2.0), center_offset=0.0):
    w = h = stride
    xc, yc = center_offset * w, center_offset * h
    ratios = torch.tensor(ratios, dtype=torch.float32)
    scales = torch.tensor(scales, dtype=torch.float32)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w * w_ratios[:, None] * scales[None, :]).reshape(-1)  # ratio-major (scale_major)
    hs = (h * h_ratios[:, None] * scales[None, :]).reshape(-1)
    return torch.stack([xc - 0.5 * ws, yc - 0.5 * hs, xc + 0.5 * ws, yc + 0.5 * hs], dim=-1)


def grid_anchors(base, stride, feat_h, feat_w):
    sx = torch.arange(0, feat_w).to(torch.float32) * stride
    sy = torch.arange(0, feat_h).to(torch.float32) * stride
    xx = sx.repeat(feat_h)
    yy = sy.view(-1, 1).repeat(1, feat_w).view(-1)
    shifts = torch.stack([xx, yy, xx, yy], dim=-1)
    return (base[None, :, :] + shifts[:, None, :]).view(-1, 4)


def delta_encode(proposals, gt, means=(0.0,) * 4, stds=(1.0,) * 4):
    px = (proposals[:, 0] + proposals[:, 2]) * 0.5
    py = (proposals[:, 1] + proposals[:, 3]) * 0.5
    pw = proposals[:, 2] - proposals[:, 0]
    ph = proposals[:, 3] - proposals[:, 1]
    gx = (gt[:, 0] + gt[:, 2]) * 0.5
    gy = (gt[:, 1] + gt[:, 3]) * 0.5
    gw = gt[:, 2] - gt[:, 0]
    gh = gt[:, 3] - gt[:, 1]
    d = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], -1)
    return (d - d.new_tensor(means)[None]) / d.new_tensor(stds)[None]


def delta_decode(rois, deltas, means=(0.0,) * 4, stds=(1.0,) * 4, max_shape=None,
                 wh_ratio_clip=16 / 1000):
    if deltas.shape[0] == 0:
        return deltas.clone()
    d = deltas * deltas.new_tensor(stds)[None] + deltas.new_tensor(means)[None]
    pxy = (rois[:, :2] + rois[:, 2:]) * 0.5
    pwh = rois[:, 2:] - rois[:, :2]
    max_ratio = abs(math.log(wh_ratio_clip))
    dwh = d[:, 2:].clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + pwh * d[:, :2]
    gwh = pwh * dwh.exp()
    b = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if max_shape is not None:
        b[:, 0::2] = b[:, 0::2].clamp(min=0, max=max_shape[1])
        b[:, 1::2] = b[:, 1::2].clamp(min=0, max=max_shape[0])
    return b


# ---------------------------------------------------------------------------------------------
# NMS (mmcv nms_cpu semantics), batched NMS (mmcv batched_nms), proposals, detections

def nms_stable(boxes, scores, iou_thr):
    """mmcv nms_cpu in float32 with a stable descending order (ties: lower index first)."""
    b = boxes.detach().cpu().numpy().astype(np.float32)
    n = b.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.sort(scores, descending=True, stable=True)[1].numpy()
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    alive = np.ones(n, bool)
    keep = []
    thr = np.float32(iou_thr)
    for oi in range(n):
        if not alive[oi]:
            continue
        i = order[oi]
        keep.append(i)
        rest = oi + 1 + np.nonzero(alive[oi + 1:])[0]
        if rest.size == 0:
            continue
        j = order[rest]
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j]))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            ovr = inter / (areas[i] + areas[j] - inter)
        alive[rest[ovr > thr]] = False
    return torch.tensor(keep, dtype=torch.long)


def batched_nms_ref(boxes, scores, idxs, iou_thr, class_agnostic=False, split_thr=10000,
                    nms_fn=nms_stable):
    """mmcv batched_nms: the coordinate-offset trick unless class_agnostic; per-group NMS (on the
    same shifted boxes) once there are split_thr boxes or more, survivors sorted by score."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    if class_agnostic:
        bn = boxes
    else:
        maxc = boxes.max()
        offsets = idxs.to(boxes) * (maxc + torch.tensor(1).to(boxes))
        bn = boxes + offsets[:, None]
    if bn.shape[0] < split_thr:
        return nms_fn(bn, scores, iou_thr)
    total = torch.zeros(scores.shape[0], dtype=torch.bool)
    for gid in torch.unique(idxs):
        mask = (idxs == gid).nonzero(as_tuple=False).view(-1)
        k = nms_fn(bn[mask], scores[mask], iou_thr)
        total[mask[k]] = True
    keep = total.nonzero(as_tuple=False).view(-1)
    order = torch.sort(scores[keep], descending=True, stable=True)[1]
    return keep[order]


def rpn_proposals_ref(cls, reg, b, strides, img_shape, nms_pre, max_per_img, iou_thr,
                      min_bbox_size, split_thr=10000):
    """RPNHead test-time proposals for image b. cls[l] (n, A, h, w), reg[l] (n, 4A, h, w).
    Returns boxes, scores, src (flat anchor index over all levels)."""
    boxes_l, deltas_l, scores_l, lvl_l, src_l = [], [], [], [], []
    offset = 0
    for l, (c, r) in enumerate(zip(cls, reg)):
        a = c.shape[1]
        h, w = c.shape[2], c.shape[3]
        scores = c[b].permute(1, 2, 0).reshape(-1).sigmoid()
        deltas = r[b].permute(1, 2, 0).reshape(-1, 4)
        anchors = grid_anchors(base_anchors(strides[l]), strides[l], h, w)
        assert anchors.shape[0] == h * w * a
        idx = torch.arange(scores.shape[0])
        if 0 < nms_pre < scores.shape[0]:
            _, rank = scores.sort(descending=True, stable=True)
            idx = rank[:nms_pre]
        boxes_l.append(anchors[idx])
        deltas_l.append(deltas[idx])
        scores_l.append(scores[idx])
        lvl_l.append(torch.full((idx.numel(),), l, dtype=torch.long))
        src_l.append(idx + offset)
        offset += scores.shape[0]
    anchors = torch.cat(boxes_l)
    deltas = torch.cat(deltas_l)
    scores = torch.cat(scores_l)
    lvl = torch.cat(lvl_l)
    src = torch.cat(src_l)
    boxes = delta_decode(anchors, deltas, max_shape=img_shape)
    if min_bbox_size >= 0:
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        valid = (w > min_bbox_size) & (h > min_bbox_size)
        boxes, scores, lvl, src = boxes[valid], scores[valid], lvl[valid], src[valid]
    keep = batched_nms_ref(boxes, scores, lvl, iou_thr, False, split_thr)
    if max_per_img > 0:
        keep = keep[:max_per_img]
    return boxes[keep], scores[keep], src[keep]


def bbox_predict_ref(rois, cls, reg, img_shape, num_classes=1, score_thr=0.02, iou_thr=0.5,
                     class_agnostic=True, max_per_img=50, split_thr=100000,
                     stds=(0.1, 0.1, 0.2, 0.2)):
    """BBoxHead._predict_by_feat_single + multiclass_nms for one image. rois (k, 4) boxes.
    Returns boxes, scores, labels, src (RoI index)."""
    k = rois.shape[0]
    scores = F.softmax(cls, dim=-1)
    boxes = delta_decode(rois, reg, stds=stds, max_shape=img_shape)
    cand_boxes = boxes[:, None, :].expand(k, num_classes, 4).reshape(-1, 4)
    cand_scores = scores[:, :-1].reshape(-1)
    labels = torch.arange(num_classes).view(1, -1).expand(k, num_classes).reshape(-1)
    src = torch.arange(k).view(-1, 1).expand(k, num_classes).reshape(-1)
    valid = (cand_scores > score_thr).nonzero(as_tuple=False).squeeze(1)
    cand_boxes, cand_scores, labels, src = (cand_boxes[valid], cand_scores[valid], labels[valid],
                                            src[valid])
    keep = batched_nms_ref(cand_boxes, cand_scores, labels, iou_thr, class_agnostic, split_thr)
    if max_per_img > 0:
        keep = keep[:max_per_img]
    return cand_boxes[keep], cand_scores[keep], labels[keep], src[keep]
