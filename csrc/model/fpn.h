// mmdet FPN (masa-spec 1.3(a)): the pyramid (masa_adapter.0) of the GDINO / Detic / R50 variants.
//   lat[i] = lateral_convs.i(x[i])          ConvModule 1x1, c_in[i] -> c_out (+ norm)
//   lat[i] += nearest(lat[i+1], size(lat[i]))  top-down, coarsest first (PyTorch legacy nearest)
//   out[i] = fpn_convs.i(lat[i])            ConvModule 3x3 pad 1 (+ norm), no activation
//   out[k] = max_pool(out[k-1], kernel 1, stride 2)  for the extra levels k >= num_ins
// Norm: NORM_NONE (convs with bias), NORM_BN_FROZEN (running statistics; BN affine frozen), or
// NORM_BN_TRAIN (batch statistics, synchronised through ctx->bn_sync: MASA's trainable SyncBN;
// at inference (ctx->training == 0) running statistics). Names are mmcv ConvModule's:
// <prefix>.lateral_convs.{i}.conv.weight [+ .conv.bias | .bn.*], <prefix>.fpn_convs.{i}.* .
// `skip_top_down` drops the top-down additions (SimpleFPN's use_residual=False; never in MASA).
#ifndef MASA_FPN_H
#define MASA_FPN_H

#include "model/conv_module.h"

#define FPN_MAX_INS 6
#define FPN_MAX_OUTS 8

typedef struct {
  int num_ins;
  int64_t c_in[FPN_MAX_INS];
  int64_t c_out;
  int num_outs;  // >= num_ins; extra levels by max-pooling
  norm_kind norm;
  int trainable;
  int skip_top_down;
} fpn_cfg;

typedef struct {
  fpn_cfg cfg;
  conv_module lateral[FPN_MAX_INS], out_conv[FPN_MAX_INS];
} fpn;

// Keep at one address between forward and backward (conv acts point into it).
typedef struct {
  const tensor *x;  // inputs, by reference
  conv_module_acts lat[FPN_MAX_INS], outc[FPN_MAX_INS];
  tensor td[FPN_MAX_INS];        // laterals after the top-down additions (fpn conv inputs)
  tensor out[FPN_MAX_OUTS];      // the outputs
  int64_t *argmax[FPN_MAX_OUTS]; // extra levels' max-pool indices
} fpn_acts;

void fpn_register(fpn *m, param_table *t, const char *prefix, const fpn_cfg *cfg);
// mmdet FPN init_cfg: Xavier-uniform (gain 1) conv weights, zero conv bias; BN weight 1, bias 0,
// running mean 0, var 1.
void fpn_init(const fpn *m, param_table *t, uint64_t seed);
// x: num_ins maps (n, c_in[i], h_i, w_i), finest first. a->out[0 .. num_outs) (n, c_out, .., ..).
void fpn_forward(const fpn *m, model_ctx *ctx, const tensor *x, fpn_acts *a);
// dout: num_outs gradients (not modified). dx: num_ins buffers like x (accumulated) or NULL.
void fpn_backward(const fpn *m, model_ctx *ctx, const fpn_acts *a, const tensor *dout,
                  tensor *dx);

#endif
