// The backend switch: every op model code calls, taking the device first. The name is the op's
// stem; `xxx(d, args)` runs xxx_cpu(args) on the cpu (and, with guard memory opened, on the guard
// device) or xxx_cuda(args, stream) on a CUDA device. Pointers are that device's pointers.
// Semantics (overwrite vs accumulate, shapes) are the CPU op's; see csrc/ops/*.h.
#ifndef MASA_DISPATCH_H
#define MASA_DISPATCH_H

#include "core/device.h"
#include "ops/ops.h"
#include "ops/elementwise.h"
#include "ops/scale_attn.h"

// activation.h
void relu_forward(const device *d, int64_t n, const float *x, float *y);
void relu_backward(const device *d, int64_t n, const float *y, const float *dy, float *dx);
void gelu_forward(const device *d, int64_t n, const float *x, float *y);
void gelu_backward(const device *d, int64_t n, const float *x, const float *dy, float *dx);
void sigmoid_forward(const device *d, int64_t n, const float *x, float *y);
void sigmoid_backward(const device *d, int64_t n, const float *y, const float *dy, float *dx);
void hard_sigmoid_forward(const device *d, int64_t n, const float *x, float *y);
void hard_sigmoid_backward(const device *d, int64_t n, const float *x, const float *dy, float *dx);
void softmax_forward(const device *d, int64_t rows, int64_t cols, const float *x, float *y);
void softmax_backward(const device *d, int64_t rows, int64_t cols, const float *y, const float *dy,
                      float *dx);
void log_softmax_forward(const device *d, int64_t rows, int64_t cols, const float *x, float *y);
void log_softmax_backward(const device *d, int64_t rows, int64_t cols, const float *y,
                          const float *dy, float *dx);
void global_avg_pool_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                             float *y);
void global_avg_pool_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *dy,
                              float *dx);
void dyrelu_forward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t c_mid,
                    const float *x, const float *w1, const float *b1, const float *w2,
                    const float *b2, float *y, float *cache);
void dyrelu_backward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t c_mid,
                     const float *x, const float *w1, const float *w2, const float *cache,
                     const float *dy, float *dx, float *dw1, float *db1, float *dw2, float *db2);

// elementwise.h
void ew_fill(const device *d, int64_t n, float v, float *y);
void ew_scale(const device *d, int64_t n, float a, float *y);
void ew_div(const device *d, int64_t n, float a, float *y);
void ew_axpy(const device *d, int64_t n, float a, const float *x, float *y);
void ew_add(const device *d, int64_t n, const float *a, const float *b, float *y);
void ew_relu_mask(const device *d, int64_t n, const float *y, float *g);
void ew_gather(const device *d, int64_t n, const float *src, const int64_t *idx, float *dst);
void ew_scatter_add(const device *d, int64_t n, const float *src, const int64_t *idx, float *dst);
void ew_row_dot(const device *d, int64_t rows, int64_t cols, const float *a, const float *b, float *y);
void ew_row_scale_add(const device *d, int64_t rows, int64_t cols, const float *s, const float *x,
                   float *y);

// scale_attn.h (DyHead scale-aware attention)
void scale_attn_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *f,
                        const float *w, const float *bias, float *p, float *z, float *a);
void scale_attn_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *f,
                         const float *p, const float *z, const float *a, const float *w,
                         const float *dterm, float *df, float *dw, float *db);

// gemm.h (row-major, as gemm_cpu)
void gemm(const device *d, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
          int64_t ldc);

// conv.h
void conv2d_forward(const device *d, const conv2d_desc *cd, const float *x, const float *w,
                    const float *bias, float *y);
void conv2d_backward(const device *d, const conv2d_desc *cd, const float *x, const float *w,
                     const float *dy, float *dx, float *dw, float *dbias);
void linear_forward(const device *d, int64_t n, int64_t in, int64_t out, const float *x,
                    const float *w, const float *b, float *y);
void linear_backward(const device *d, int64_t n, int64_t in, int64_t out, const float *x,
                     const float *w, const float *dy, float *dx, float *dw, float *db);
void conv_transpose2x2_forward(const device *d, int64_t n, int64_t c_in, int64_t h, int64_t w,
                               int64_t c_out, const float *x, const float *wt, const float *bias,
                               float *y);
void conv_transpose2x2_backward(const device *d, int64_t n, int64_t c_in, int64_t h, int64_t w,
                                int64_t c_out, const float *x, const float *wt, const float *dy,
                                float *dx, float *dwt, float *dbias);

// dcn.h
void dcn_forward(const device *d, const dcn_desc *dd, const float *x, const float *offset,
                 const float *mask, const float *weight, const float *bias, float *y);
void dcn_backward(const device *d, const dcn_desc *dd, const float *x, const float *offset,
                  const float *mask, const float *weight, const float *dy, float *dx,
                  float *doffset, float *dmask, float *dweight, float *dbias);

// norm.h
void group_norm_forward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t groups,
                        float eps, const float *x, const float *gamma, const float *beta, float *y,
                        float *mean, float *rstd);
void group_norm_backward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t groups,
                         const float *x, const float *gamma, const float *mean, const float *rstd,
                         const float *dy, float *dx, float *dgamma, float *dbeta);
void layer_norm2d_forward(const device *d, int64_t n, int64_t c, int64_t hw, float eps,
                          const float *x, const float *gamma, const float *beta, float *y,
                          float *mean, float *rstd);
void layer_norm2d_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                           const float *gamma, const float *mean, const float *rstd,
                           const float *dy, float *dx, float *dgamma, float *dbeta);
// batch_norm_fold on device vectors (c each).
void batch_norm_fold_dev(const device *d, int64_t c, float eps, const float *gamma,
                         const float *beta, const float *running_mean, const float *running_var,
                         float *scale, float *shift);
void channel_affine_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                            const float *scale, const float *shift, float *y);
void channel_affine_backward(const device *d, int64_t n, int64_t c, int64_t hw,
                             const float *scale, const float *dy, float *dx);
void batch_norm_train_forward(const device *d, int64_t n, int64_t c, int64_t hw, float eps,
                              float momentum, const float *x, const float *gamma,
                              const float *beta, float *y, float *save_mean, float *save_rstd,
                              float *running_mean, float *running_var, bn_allreduce_fn sync,
                              void *sync_ctx);
void batch_norm_train_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                               const float *gamma, const float *save_mean, const float *save_rstd,
                               const float *dy, float *dx, float *dgamma, float *dbeta,
                               bn_allreduce_fn sync, void *sync_ctx);
void affine_add_relu_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                             const float *scale, const float *shift, const float *res, int relu,
                             float *y);
void bn_frozen_param_backward(const device *d, int64_t n, int64_t c, int64_t hw, float eps,
                              const float *dy, const float *x, const float *running_mean,
                              const float *running_var, float *dgamma, float *dbeta);

// resample.h
void max_pool3s2p1_forward(const device *d, int64_t planes, int64_t h, int64_t w, const float *x,
                           float *y, int64_t *argmax);
void max_pool3s2p1_backward(const device *d, int64_t planes, int64_t h, int64_t w,
                            const int64_t *argmax, const float *dy, float *dx);
void max_pool2d_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                        int64_t s, const float *x, float *y, int64_t *argmax);
void max_pool2d_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                         int64_t s, const int64_t *argmax, const float *dy, float *dx);
void upsample_nearest_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                              int64_t ho, int64_t wo, const float *x, float *y);
void upsample_nearest_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                               int64_t ho, int64_t wo, const float *dy, float *dx);
void resize_bilinear_ac_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                                int64_t ho, int64_t wo, const float *x, float *y);
void resize_bilinear_ac_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                                 int64_t ho, int64_t wo, const float *dy, float *dx);

// roi_align.h
void roi_align_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                       const float *x, int64_t k, const float *rois, float spatial_scale,
                       int64_t out_h, int64_t out_w, int sampling_ratio, int aligned, float *y);
void roi_align_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                        const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                        int sampling_ratio, int aligned, const float *dy, float *dx);
// feats / dfeats: host arrays of device pointers; levels: device buffer (k) or NULL.
void roi_align_multilevel_forward(const device *d, const roi_align_ml_desc *rd,
                                  const float *const *feats, int64_t k, const float *rois,
                                  float *y, int *levels);
void roi_align_multilevel_backward(const device *d, const roi_align_ml_desc *rd, int64_t k,
                                   const float *rois, const float *dy, float *const *dfeats);

#endif
