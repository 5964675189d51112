// mmcv ConvModule: conv2d -> optional norm -> optional ReLU, with mmcv's parameter names:
//   <prefix>.conv.weight, <prefix>.conv.bias (bias only when there is no norm, mmcv's 'auto',
//   unless forced), <prefix>.bn.{weight,bias,running_mean,running_var} for BatchNorm/SyncBN,
//   <prefix>.gn.{weight,bias} for GroupNorm.
// BatchNorm modes: FROZEN uses running statistics (eval mode / norm_eval=True, folded into a
// per-channel affine); TRAIN uses batch statistics synchronised through ctx->bn_sync and updates
// the running statistics (SyncBN in train mode, as the official FPN trains).
// PyTorch's `num_batches_tracked` buffer is not kept (it does not affect the math with a fixed
// momentum); the converter drops and restores it.
#ifndef MASA_CONV_MODULE_H
#define MASA_CONV_MODULE_H

#include "model/module.h"
#include "ops/conv.h"

typedef enum { NORM_NONE = 0, NORM_BN_FROZEN, NORM_BN_TRAIN, NORM_GN } norm_kind;

typedef struct {
  int64_t c_in, c_out, k, stride, pad, dil, groups;
  int has_bias;
  norm_kind norm;
  int64_t gn_groups;
  float eps, momentum;
  int relu;
  int trainable;
  // parameter indices (-1 when absent)
  int w, b, nw, nb, rm, rv;
} conv_module;

typedef struct {
  const tensor *x;       // input (kept by reference: the caller keeps it alive)
  tensor conv_out;       // conv output (pre-norm), when there is a norm
  tensor out;            // final output
  float *mean, *rstd;    // norm statistics (GN: n*groups; BN train: c)
  float *scale, *shift;  // frozen BN affine (c)
} conv_module_acts;

typedef struct {
  int64_t c_in, c_out, k, stride, pad, dil, groups;
  int bias;  // -1: mmcv 'auto' (bias iff no norm); 0/1 forced
  norm_kind norm;
  int64_t gn_groups;  // for NORM_GN
  int relu;
  int trainable;
} conv_module_cfg;

void conv_module_register(conv_module *m, param_table *t, const char *prefix,
                          const conv_module_cfg *cfg);
// Kaiming-normal (fan_out, relu) conv weight and zero bias as mmcv ConvModule.init_weights;
// norm weight 1, bias 0; running mean 0, var 1.
void conv_module_init(const conv_module *m, param_table *t, uint64_t seed);
void conv_module_forward(const conv_module *m, model_ctx *ctx, const tensor *x,
                         conv_module_acts *a);
// dx may be NULL. dy (same shape as a->out) may be modified (used as scratch).
void conv_module_backward(const conv_module *m, model_ctx *ctx, const conv_module_acts *a,
                          tensor *dy, tensor *dx);

#endif
