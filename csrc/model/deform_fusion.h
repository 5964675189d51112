// MASA DeformFusion (masa/models/necks/deform_fusion.py; masa-spec 1.4.1): the fusion stage
// (masa_adapter.1) of the GDINO / Detic / R50 variants. Each block mixes every pyramid level with
// its finer and coarser neighbours through three modulated deformable convs (DyDCNv2 = mmcv
// ModulatedDeformConv2d 3x3 pad 1 without bias, then GroupNorm), whose offsets and masks all come
// from one 3x3 conv on the level's own map:
//   om = spatial_conv_offset(x[l])            (n, 81, hl, wl): offsets = channels 0..53,
//   ms = sigmoid(om[:, 54:81])                (n, 27, hl, wl): masks (a new tensor)
//   mid  = DCN_mid (x[l],   om[0:18],  ms[0:9])
//   low  = DCN_low (x[l-1], om[18:36], ms[9:18])  stride 2 on the finer level      (l > 0)
//   high = DCN_high(x[l+1], om[36:54], ms[18:27]) then bilinear (align_corners) up (l < L-1)
//   out[l] = (mid + low + up(high)) / (number of terms)
// No activation anywhere. Level 0 is the finest.
//
// The high branch runs at the coarse size (ho, wo) with offsets computed at (hl, wl). mmcv reads
// them with the OUTPUT strides (the official behaviour the released weights were trained with;
// masa-spec 1.4.1 "critical quirk"). `offset_mode` picks how that branch reads them:
//   HIGH_OFFSET_REINTERPRET (default, official): the first 18*ho*wo / 9*ho*wo elements of each
//     image's slice, from its first channel on, viewed as (18, ho, wo) / (9, ho, wo).
//   HIGH_OFFSET_CROP: the top-left (ho, wo) window of the slice (what mmdet revision 15a558da
//     writes for DyHead, and what an op that honours strides would compute).
//   HIGH_OFFSET_CROP_MMCV: that revision as it runs on mmcv 2.x, which reads the non-contiguous
//     cropped OFFSET view raw (= REINTERPRET in the forward) but writes its gradient to a fresh
//     contiguous buffer (= lands on the crop window); the MASKS are a new contiguous tensor
//     (sigmoid of the crop), so they are really cropped, both ways.
// `fix_upsample` (MASA's own switch; the "corrected" order, masa-spec 1.4.1 step 6 alternative):
//   upsample x[l+1] bilinearly (align_corners) to (hl, wl) FIRST, then run DCN_high there with
//   the level-l offsets, which then match exactly (offset_mode has no effect).
#ifndef MASA_DEFORM_FUSION_H
#define MASA_DEFORM_FUSION_H

#include "model/module.h"
#include "ops/dcn.h"

#define FUSION_MAX_LEVELS 8
#define FUSION_MAX_BLOCKS 8

typedef enum {
  HIGH_OFFSET_REINTERPRET = 0,
  HIGH_OFFSET_CROP = 1,
  HIGH_OFFSET_CROP_MMCV = 2,
} high_offset_mode;

// Where one DCN branch of a fusion block reads its offsets and masks. The offset-conv output om
// is (n, c_om, hl, wl), the sigmoid masks ms (n, c_ms, hl, wl); the branch's offsets start at
// element off_base of om, its masks at msk_base of ms, read through (off, msk) strides. Its
// offset gradient is written through doff strides (differs from off only for CROP_MMCV).
typedef struct {
  int64_t off_base, msk_base;
  dcn_strides off, msk, doff;
} fusion_branch_geom;

// Geometry of a branch whose DCN output is (ho, wo), offsets from channel off_c0 of om, masks
// from channel msk_c0 of ms. When (ho, wo) == (hl, wl) every mode is the plain channel slice.
fusion_branch_geom fusion_branch_geometry(int64_t c_om, int64_t c_ms, int64_t hl, int64_t wl,
                                          int64_t off_c0, int64_t msk_c0, int64_t ho, int64_t wo,
                                          high_offset_mode mode);

// DyDCNv2: <prefix>.conv.weight (c_out, c_in, 3, 3), <prefix>.norm.{weight, bias} (c_out), GN
// with gn_groups groups, eps 1e-5.
typedef struct {
  int64_t c_in, c_out, stride, gn_groups;
  float eps;
  int trainable;
  int w, nw, nb;  // parameter indices
} dydcn;

typedef struct {
  const float *x;        // input (n, c_in, h, w), kept by reference
  const float *om, *ms;  // offset-conv output and masks the branch reads (by reference)
  fusion_branch_geom g;
  dcn_desc d;
  tensor conv_out;       // DCN output before GN (n, c_out, ho, wo)
  tensor out;            // after GN
  float *mean, *rstd;    // GN statistics (n * gn_groups)
} dydcn_acts;

void dydcn_register(dydcn *m, param_table *t, const char *prefix, int64_t c_in, int64_t c_out,
                    int64_t stride, int64_t gn_groups, int trainable);
// mmcv ModulatedDeformConv2d.init_weights: weight U(-1/sqrt(c_in*9), +); GN weight 1, bias 0.
void dydcn_init(const dydcn *m, param_table *t, uint64_t seed);
// x (n, c_in, h, w); om / ms as described by g (which must match this branch's output size).
void dydcn_forward(const dydcn *m, model_ctx *ctx, const tensor *x, const float *om,
                   const float *ms, const fusion_branch_geom *g, dydcn_acts *a);
// dy (n, c_out, ho, wo). Accumulates into dx (like x), dom (like om) and dms (like ms), each
// nullable, and into the parameter gradients.
void dydcn_backward(const dydcn *m, model_ctx *ctx, const dydcn_acts *a, const float *dy,
                    float *dx, float *dom, float *dms);

typedef struct {
  int64_t c_in;       // channels of the block-0 inputs (256 in MASA)
  int64_t c_out;      // channels of every output (256)
  int64_t gn_groups;  // 16
  int num_blocks;     // 3 in MASA's configs
  high_offset_mode offset_mode;  // HIGH_OFFSET_REINTERPRET in MASA
  int fix_upsample;   // 0 in MASA's configs
  int trainable;
} deform_fusion_cfg;

typedef struct {
  int64_t c_in, c_out;
  int off_w, off_b;  // spatial_conv_offset (81, c_in, 3, 3), (81)
  dydcn high, mid, low;
} deform_fusion_block;

typedef struct {
  deform_fusion_cfg cfg;
  deform_fusion_block blocks[FUSION_MAX_BLOCKS];
} deform_fusion;

typedef struct {
  const tensor *x;  // the block's inputs (num_levels), by reference
  tensor om[FUSION_MAX_LEVELS], ms[FUSION_MAX_LEVELS];
  dydcn_acts mid[FUSION_MAX_LEVELS], low[FUSION_MAX_LEVELS], high[FUSION_MAX_LEVELS];
  tensor xup[FUSION_MAX_LEVELS];  // fix_upsample: x[l+1] resized to level l
  tensor out[FUSION_MAX_LEVELS];
} deform_fusion_block_acts;

// Large (tens of KB): allocate it, don't put it on a small stack. It must stay at the same address
// between forward and backward (the acts point into themselves).
typedef struct {
  int num_levels;
  deform_fusion_block_acts blk[FUSION_MAX_BLOCKS];
  tensor *out;  // = blk[num_blocks - 1].out: the module's outputs
} deform_fusion_acts;

// Registers <prefix>.dyhead_blocks.{b}.spatial_conv_offset.{weight,bias},
// <prefix>.dyhead_blocks.{b}.spatial_conv_{high,mid,low}.conv.weight / .norm.{weight,bias}.
void deform_fusion_register(deform_fusion *m, param_table *t, const char *prefix,
                            const deform_fusion_cfg *cfg);
// Official init: spatial_conv_offset zeroed when zero_init_offset (MASA's default), else
// normal(0, 0.01) weight and zero bias; DCNs as dydcn_init.
void deform_fusion_init(const deform_fusion *m, param_table *t, int zero_init_offset,
                        uint64_t seed);
// x: num_levels maps (n, c_in, h_l, w_l), finest first, with h_l == ceil(h_{l-1} / 2) (same for
// w), as every FPN produces. Outputs a->out[l] (n, c_out, h_l, w_l). At inference
// (ctx->training == 0) each level's temporaries are released as soon as its output is done.
void deform_fusion_forward(const deform_fusion *m, model_ctx *ctx, int num_levels,
                           const tensor *x, deform_fusion_acts *a);
// dout: num_levels gradients of a->out (not modified). dx: num_levels buffers shaped like x that
// receive (+=) the input gradients, or NULL.
void deform_fusion_backward(const deform_fusion *m, model_ctx *ctx, const deform_fusion_acts *a,
                            const tensor *dout, tensor *dx);

#endif
