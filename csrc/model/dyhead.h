// mmdet DyHead (mmdet/models/necks/dyhead.py; masa-spec 1.4.2): the fusion stage
// (masa_adapter.1) of the SAM variants. Per block and level l, with one offset conv shared by the
// three DyDCNv2 branches (model/deform_fusion.h) and one scale-attention module:
//   om = spatial_conv_offset(x[l])  (n, 27, hl, wl); offsets = om[:, 0:18]
//   ms = sigmoid(om[:, 18:27])      (n, 9, hl, wl) (a new tensor)
//   a(f) = HSigmoid(ReLU(scale_attn_module.1(GAP(f))))   one scalar per image,
//          HSigmoid(z) = clamp((z + 3) / 6, 0, 1), conv 1x1 c_out -> 1 with bias
//   s  = mid * a(mid),  mid = DCN_mid(x[l])
//   s += low * a(low),  low = DCN_low(x[l-1]) stride 2              (l > 0)
//   s += up * a(up),    up = bilinear_ac(DCN_high(x[l+1]), (hl, wl)) (l < L-1)
//   out[l] = DyReLU(s / terms)      (task_attn_module, ops/activation.h, ratio 4)
// The high branch reads the level-l offsets / masks at the coarse size: `offset_mode` as in
// model/deform_fusion.h. HIGH_OFFSET_REINTERPRET is the unsliced code of mmdet 2.x and of the
// file MASA's configs most likely ran (masa-spec 1.4.2); HIGH_OFFSET_CROP / CROP_MMCV model the
// top-left-crop revision (15a558da) with an op that honours strides / as mmcv 2.x runs it.
#ifndef MASA_DYHEAD_H
#define MASA_DYHEAD_H

#include "model/deform_fusion.h"

typedef struct {
  int64_t c_in;       // block-0 input channels (256)
  int64_t c_out;      // 256
  int64_t gn_groups;  // 16
  int num_blocks;     // 3 in MASA's SAM configs
  high_offset_mode offset_mode;
  int trainable;
} dyhead_cfg;

typedef struct {
  int64_t c_in, c_out, c_mid;  // c_mid = c_out / 4 (DyReLU ratio 4)
  int off_w, off_b;            // spatial_conv_offset (27, c_in, 3, 3), (27)
  int sa_w, sa_b;              // scale_attn_module.1 (1, c_out, 1, 1), (1)
  int ta_w1, ta_b1, ta_w2, ta_b2;  // task_attn_module.conv{1,2}.conv: (c_mid, c_out, 1, 1), (4 c_out, c_mid, 1, 1)
  dydcn high, mid, low;
} dyhead_block;

typedef struct {
  dyhead_cfg cfg;
  dyhead_block blocks[FUSION_MAX_BLOCKS];
} dyhead;

// One scale-attention application: a = hsig(relu(z)), z = w . GAP(f) + b (per image).
typedef struct {
  const float *f;  // the attended feature (n, c, h, w), by reference
  int64_t hw;
  float *p;        // GAP(f) (n, c)
  float *z, *a;    // (n)
} dyhead_attn_acts;

typedef struct {
  const tensor *x;
  tensor om[FUSION_MAX_LEVELS], ms[FUSION_MAX_LEVELS];
  dydcn_acts mid[FUSION_MAX_LEVELS], low[FUSION_MAX_LEVELS], high[FUSION_MAX_LEVELS];
  tensor up[FUSION_MAX_LEVELS];  // high branch resized to level l
  dyhead_attn_acts att_mid[FUSION_MAX_LEVELS], att_low[FUSION_MAX_LEVELS],
      att_high[FUSION_MAX_LEVELS];
  tensor y[FUSION_MAX_LEVELS];   // s / terms, the DyReLU input
  float *dyrelu_cache[FUSION_MAX_LEVELS];
  tensor out[FUSION_MAX_LEVELS];
} dyhead_block_acts;

// Large: allocate it; keep it at one address between forward and backward.
typedef struct {
  int num_levels;
  dyhead_block_acts blk[FUSION_MAX_BLOCKS];
  tensor *out;  // = blk[num_blocks - 1].out
} dyhead_acts;

// Registers <prefix>.dyhead_blocks.{b}.{spatial_conv_offset.*, spatial_conv_{high,mid,low}.*,
// scale_attn_module.1.*, task_attn_module.conv{1,2}.conv.*}.
void dyhead_register(dyhead *m, param_table *t, const char *prefix, const dyhead_cfg *cfg);
// Official init (DyHeadBlock._init_weights): every nn.Conv2d (offset conv, scale-attention conv,
// DyReLU convs) normal(0, 0.01) with zero bias, then the offset conv zeroed when
// zero_init_offset (mmdet's default); DCNs and GN as dydcn_init.
void dyhead_init(const dyhead *m, param_table *t, int zero_init_offset, uint64_t seed);
// x: num_levels maps (n, c_in, h_l, w_l), finest first, h_l == ceil(h_{l-1} / 2).
void dyhead_forward(const dyhead *m, model_ctx *ctx, int num_levels, const tensor *x,
                    dyhead_acts *a);
// dout not modified; dx (like x, accumulated) or NULL.
void dyhead_backward(const dyhead *m, model_ctx *ctx, const dyhead_acts *a, const tensor *dout,
                     tensor *dx);

#endif
