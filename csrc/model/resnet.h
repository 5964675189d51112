// mmdet ResNet (MASA-R50's own backbone, masa-spec §1.2), with mmdet's parameter names:
//   <prefix>.conv1.weight, <prefix>.bn1.{weight,bias,running_mean,running_var}       (stem)
//   <prefix>.layer{s}.{b}.conv{1,2[,3]}.weight, .bn{1,2[,3]}.*                        (blocks)
//   <prefix>.layer{s}.{b}.downsample.0.weight, .downsample.1.*                        (projection)
// (`num_batches_tracked` is not kept; the converter drops and restores it.)
// - Stem: conv 7x7 / 2 (pad 3, no bias) -> BN -> ReLU -> max-pool 3x3 / 2 (pad 1, -inf padding).
// - BasicBlock (depth 18/34): conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + identity, ReLU.
// - Bottleneck (depth 50/101): conv1x1 -> BN -> ReLU -> conv3x3 (pad 1) -> BN -> ReLU ->
//   conv1x1 (x4 channels) -> BN, + identity, ReLU. style caffe puts the stage stride on the first
//   1x1 conv, style pytorch on the 3x3 conv (mmdet's conv1_stride / conv2_stride).
// - Projection shortcut (conv1x1(stride) -> BN) on the first block of a stage when the stride or
//   the channel count changes. Stage strides 1, 2, 2, 2; planes base * (1, 2, 4, 8).
// - BN is always evaluated with running statistics (norm_eval=True, the MASA recipe): the affine
//   scale = gamma / sqrt(var + eps), shift = beta - mean * scale is applied after each conv; when
//   trainable, gamma and beta still receive gradients through it (as torch autograd gives for a
//   BatchNorm2d in eval mode), the statistics never change.
// - frozen_stages k >= 0 freezes the stem and layer1..k (no parameter gradients); -1 none.
// - Outputs: C2..C5 (strides 4, 8, 16, 32), channels base * expansion * (1, 2, 4, 8).
#ifndef MASA_RESNET_H
#define MASA_RESNET_H

#include "model/module.h"

typedef enum { RESNET_STYLE_PYTORCH = 0, RESNET_STYLE_CAFFE = 1 } resnet_style;

typedef struct {
  int depth;             // 18, 34, 50, 101, 152
  int64_t base_channels;  // 64 in every official model; 16 or 32 for the narrow CPU demo
  resnet_style style;
  int frozen_stages;     // -1: none frozen
  int trainable;         // 0: the whole backbone is frozen (no gradients at all)
  int bn_requires_grad;  // 1 (mmdet default): BN gamma/beta of trainable stages get gradients
  float bn_eps;          // 1e-5
} resnet_cfg;

// MASA-R50: depth 50, base 64, caffe, frozen_stages -1, trainable, BN affine trainable.
void resnet_cfg_default(resnet_cfg *cfg, int depth);

#define RESNET_MAX_BLOCKS 36

// One conv (no bias) followed by a frozen-statistics BN. Parameter indices into the table.
typedef struct {
  int64_t c_in, c_out, k, stride, pad;
  int w, bn_w, bn_b, bn_rm, bn_rv;
  int trainable;     // conv weight gets a gradient
  int bn_trainable;  // gamma / beta get gradients
} resnet_conv_bn;

typedef struct {
  resnet_conv_bn conv[3];  // conv1, conv2[, conv3]
  int nconv;               // 2 (BasicBlock) or 3 (Bottleneck)
  int has_downsample;
  resnet_conv_bn downsample;
} resnet_block;

typedef struct {
  resnet_cfg cfg;
  int expansion;                  // 1 BasicBlock, 4 Bottleneck
  int nblocks[4];
  resnet_conv_bn stem;
  resnet_block blocks[4][RESNET_MAX_BLOCKS];
  int64_t out_channels[4];        // C2..C5
} resnet;

// Saved activations of one conv+BN (training: conv output kept for the BN affine gradients).
typedef struct {
  tensor conv;              // conv output before BN (training only)
  tensor out;               // after BN (+ residual) (+ ReLU)
  float *scale, *shift;     // folded BN affine (c_out)
} resnet_conv_bn_acts;

typedef struct {
  tensor x;                 // block input (a view; the storage stays with its producer)
  resnet_conv_bn_acts conv[3];
  resnet_conv_bn_acts downsample;
} resnet_block_acts;

typedef struct {
  tensor x;                 // network input (a view: the caller keeps the storage alive)
  resnet_conv_bn_acts stem;
  tensor pool;              // stem max-pool output (C1 at stride 4)
  int64_t *pool_argmax;     // (n, c, hp, wp) flat index into the stem map's (h, w) plane
  resnet_block_acts *blocks[4];  // [stage][block], training only
  tensor out[4];            // C2..C5 (n, out_channels[s], h/4/2^s, w/4/2^s)
  int saved;                // 1: forward ran in training mode (backward possible)
} resnet_acts;

void resnet_register(resnet *m, param_table *t, const char *prefix, const resnet_cfg *cfg);
// mmdet ResNet's default init: Kaiming-normal (fan_out, relu) convs, BN weight 1 bias 0 (the
// last BN of every residual branch 0: zero_init_residual), running mean 0, var 1.
void resnet_init(const resnet *m, param_table *t, uint64_t seed);

// x (n, 3, h, w). Writes a->out[0..3]. With ctx->training the activations backward needs are
// kept; otherwise intermediates are released block by block (only the four outputs remain).
void resnet_forward(const resnet *m, model_ctx *ctx, const tensor *x, resnet_acts *a);
// d_out[s] (same shapes as a->out[s]) or NULL: gradients of the loss w.r.t. C2..C5 (not modified).
// Accumulates parameter gradients of trainable entries and, when dx is not NULL, the input gradient.
void resnet_backward(const resnet *m, model_ctx *ctx, const resnet_acts *a,
                     const tensor *const d_out[4], tensor *dx);

#endif
