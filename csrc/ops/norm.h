// Normalisation layers over NCHW maps (x viewed as (n, c, hw)). Mirrors torch GroupNorm,
// ViTDet/SAM LayerNorm2d (normalise over channels at each pixel) and BatchNorm2d.
// Variances are biased (divide by count) in the normalisation, as PyTorch does.
#ifndef MASA_NORM_H
#define MASA_NORM_H

#include <stdint.h>

// GroupNorm: groups divide c. gamma, beta (c) or NULL (no affine).
// mean, rstd (n * groups): saved for backward (rstd = 1 / sqrt(var + eps)).
void group_norm_forward_cpu(int64_t n, int64_t c, int64_t hw, int64_t groups, float eps,
                            const float *x, const float *gamma, const float *beta, float *y,
                            float *mean, float *rstd);
void group_norm_backward_cpu(int64_t n, int64_t c, int64_t hw, int64_t groups, const float *x,
                             const float *gamma, const float *mean, const float *rstd,
                             const float *dy, float *dx, float *dgamma, float *dbeta);

// LayerNorm2d over the c channels of each pixel. mean, rstd (n * hw).
void layer_norm2d_forward_cpu(int64_t n, int64_t c, int64_t hw, float eps, const float *x,
                              const float *gamma, const float *beta, float *y, float *mean,
                              float *rstd);
void layer_norm2d_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                               const float *gamma, const float *mean, const float *rstd,
                               const float *dy, float *dx, float *dgamma, float *dbeta);

// Frozen BatchNorm as a per-channel affine: scale = gamma / sqrt(var + eps),
// shift = beta - mean * scale. Used to fold BN into the preceding conv at load time.
void batch_norm_fold(int64_t c, float eps, const float *gamma, const float *beta,
                     const float *running_mean, const float *running_var, float *scale,
                     float *shift);
// Folds (scale, shift) into a conv: w (c_out, k) row c scaled by scale[c]; bias (c_out) becomes
// bias * scale + shift (bias_in may be NULL: treated as zero).
void conv_fold_affine(int64_t c_out, int64_t k, const float *scale, const float *shift, float *w,
                      const float *bias_in, float *bias_out);
// y = x * scale[c] + shift[c]; backward: dx += dy * scale[c] (frozen: no parameter gradients).
void channel_affine_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                                const float *scale, const float *shift, float *y);
void channel_affine_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *scale,
                                 const float *dy, float *dx);

// Cross-rank reduction hook for synchronised BatchNorm: sums buf[0..count) over all ranks in
// place. NULL means a single process (no-op).
typedef void (*bn_allreduce_fn)(double *buf, int64_t count, void *ctx);

// Training-mode BatchNorm2d with batch statistics over (n, hw) [summed across ranks by `sync`].
// save_mean, save_rstd (c): for backward. running_mean/var (c) or NULL: updated with `momentum`
// as PyTorch does (running_var uses the unbiased variance).
void batch_norm_train_forward_cpu(int64_t n, int64_t c, int64_t hw, float eps, float momentum,
                                  const float *x, const float *gamma, const float *beta, float *y,
                                  float *save_mean, float *save_rstd, float *running_mean,
                                  float *running_var, bn_allreduce_fn sync, void *sync_ctx);
void batch_norm_train_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                                   const float *gamma, const float *save_mean,
                                   const float *save_rstd, const float *dy, float *dx,
                                   float *dgamma, float *dbeta, bn_allreduce_fn sync,
                                   void *sync_ctx);

// Frozen-statistics BatchNorm fused with the residual add and ReLU (ResNet's conv-BN units):
// y = x * scale[c] + shift[c] (+ res) (then max(., 0) when relu); y may alias x, res may be NULL.
void affine_add_relu_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                                 const float *scale, const float *shift, const float *res,
                                 int relu, float *y);
// Parameter gradients of a trainable BN that normalises with its running statistics:
// dgamma[c] += sum dy (x - rm) / sqrt(rv + eps), dbeta[c] += sum dy, in double per channel, images
// and pixels in order. x is the BN input (the conv output).
void bn_frozen_param_backward_cpu(int64_t n, int64_t c, int64_t hw, float eps, const float *dy,
                                  const float *x, const float *running_mean,
                                  const float *running_var, float *dgamma, float *dbeta);

#endif
