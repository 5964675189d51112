// The backend switch (ops/dispatch.h): one function per op, each the same DISPATCH of its two
// twins (ops/dispatch_impl.h).
#include "ops/dispatch.h"

#include "ops/dispatch_impl.h"

void relu_forward(const device *d, int64_t n, const float *x, float *y) {
  DISPATCH(d, relu_forward_cpu(n, x, y), relu_forward_cuda(n, x, y, STREAM(d)));
}

void relu_backward(const device *d, int64_t n, const float *y, const float *dy, float *dx) {
  DISPATCH(d, relu_backward_cpu(n, y, dy, dx), relu_backward_cuda(n, y, dy, dx, STREAM(d)));
}

void gelu_forward(const device *d, int64_t n, const float *x, float *y) {
  DISPATCH(d, gelu_forward_cpu(n, x, y), gelu_forward_cuda(n, x, y, STREAM(d)));
}

void gelu_backward(const device *d, int64_t n, const float *x, const float *dy, float *dx) {
  DISPATCH(d, gelu_backward_cpu(n, x, dy, dx), gelu_backward_cuda(n, x, dy, dx, STREAM(d)));
}

void sigmoid_forward(const device *d, int64_t n, const float *x, float *y) {
  DISPATCH(d, sigmoid_forward_cpu(n, x, y), sigmoid_forward_cuda(n, x, y, STREAM(d)));
}

void sigmoid_backward(const device *d, int64_t n, const float *y, const float *dy, float *dx) {
  DISPATCH(d, sigmoid_backward_cpu(n, y, dy, dx), sigmoid_backward_cuda(n, y, dy, dx, STREAM(d)));
}

void hard_sigmoid_forward(const device *d, int64_t n, const float *x, float *y) {
  DISPATCH(d, hard_sigmoid_forward_cpu(n, x, y), hard_sigmoid_forward_cuda(n, x, y, STREAM(d)));
}

void hard_sigmoid_backward(const device *d, int64_t n, const float *x, const float *dy, float *dx) {
  DISPATCH(d, hard_sigmoid_backward_cpu(n, x, dy, dx),
           hard_sigmoid_backward_cuda(n, x, dy, dx, STREAM(d)));
}

void softmax_forward(const device *d, int64_t rows, int64_t cols, const float *x, float *y) {
  DISPATCH(d, softmax_forward_cpu(rows, cols, x, y),
           softmax_forward_cuda(rows, cols, x, y, STREAM(d)));
}

void softmax_backward(const device *d, int64_t rows, int64_t cols, const float *y, const float *dy,
                      float *dx) {
  DISPATCH(d, softmax_backward_cpu(rows, cols, y, dy, dx),
           softmax_backward_cuda(rows, cols, y, dy, dx, STREAM(d)));
}

void log_softmax_forward(const device *d, int64_t rows, int64_t cols, const float *x, float *y) {
  DISPATCH(d, log_softmax_forward_cpu(rows, cols, x, y),
           log_softmax_forward_cuda(rows, cols, x, y, STREAM(d)));
}

void log_softmax_backward(const device *d, int64_t rows, int64_t cols, const float *y,
                          const float *dy, float *dx) {
  DISPATCH(d, log_softmax_backward_cpu(rows, cols, y, dy, dx),
           log_softmax_backward_cuda(rows, cols, y, dy, dx, STREAM(d)));
}

void global_avg_pool_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                             float *y) {
  DISPATCH(d, global_avg_pool_forward_cpu(n, c, hw, x, y),
           global_avg_pool_forward_cuda(n, c, hw, x, y, STREAM(d)));
}

void global_avg_pool_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *dy,
                              float *dx) {
  DISPATCH(d, global_avg_pool_backward_cpu(n, c, hw, dy, dx),
           global_avg_pool_backward_cuda(n, c, hw, dy, dx, STREAM(d)));
}

void dyrelu_forward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t c_mid,
                    const float *x, const float *w1, const float *b1, const float *w2,
                    const float *b2, float *y, float *cache) {
  DISPATCH(d, dyrelu_forward_cpu(n, c, hw, c_mid, x, w1, b1, w2, b2, y, cache),
           dyrelu_forward_cuda(n, c, hw, c_mid, x, w1, b1, w2, b2, y, cache, STREAM(d)));
}

void dyrelu_backward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t c_mid,
                     const float *x, const float *w1, const float *w2, const float *cache,
                     const float *dy, float *dx, float *dw1, float *db1, float *dw2, float *db2) {
  DISPATCH(d, dyrelu_backward_cpu(n, c, hw, c_mid, x, w1, w2, cache, dy, dx, dw1, db1, dw2, db2),
           dyrelu_backward_cuda(n, c, hw, c_mid, x, w1, w2, cache, dy, dx, dw1, db1, dw2, db2,
                                STREAM(d)));
}

void ew_fill(const device *d, int64_t n, float v, float *y) {
  DISPATCH(d, ew_fill_cpu(n, v, y), ew_fill_cuda(n, v, y, STREAM(d)));
}

void ew_scale(const device *d, int64_t n, float a, float *y) {
  DISPATCH(d, ew_scale_cpu(n, a, y), ew_scale_cuda(n, a, y, STREAM(d)));
}

void ew_axpy(const device *d, int64_t n, float a, const float *x, float *y) {
  DISPATCH(d, ew_axpy_cpu(n, a, x, y), ew_axpy_cuda(n, a, x, y, STREAM(d)));
}

void ew_add(const device *d, int64_t n, const float *a, const float *b, float *y) {
  DISPATCH(d, ew_add_cpu(n, a, b, y), ew_add_cuda(n, a, b, y, STREAM(d)));
}

void ew_relu_mask(const device *d, int64_t n, const float *y, float *g) {
  DISPATCH(d, ew_relu_mask_cpu(n, y, g), ew_relu_mask_cuda(n, y, g, STREAM(d)));
}

void ew_row_dot(const device *d, int64_t rows, int64_t cols, const float *a, const float *b,
                float *y) {
  DISPATCH(d, ew_row_dot_cpu(rows, cols, a, b, y), ew_row_dot_cuda(rows, cols, a, b, y, STREAM(d)));
}

void ew_row_scale_add(const device *d, int64_t rows, int64_t cols, const float *s, const float *x,
                      float *y) {
  DISPATCH(d, ew_row_scale_add_cpu(rows, cols, s, x, y),
           ew_row_scale_add_cuda(rows, cols, s, x, y, STREAM(d)));
}

void gemm(const device *d, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
          int64_t ldc) {
  DISPATCH(d, gemm_cpu(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc),
           gemm_cuda(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, STREAM(d)));
}

void conv2d_forward(const device *d, const conv2d_desc *cd, const float *x, const float *w,
                    const float *bias, float *y) {
  DISPATCH(d, conv2d_forward_cpu(cd, x, w, bias, y),
           conv2d_forward_cuda(cd, x, w, bias, y, STREAM(d)));
}

void conv2d_backward(const device *d, const conv2d_desc *cd, const float *x, const float *w,
                     const float *dy, float *dx, float *dw, float *dbias) {
  DISPATCH(d, conv2d_backward_cpu(cd, x, w, dy, dx, dw, dbias),
           conv2d_backward_cuda(cd, x, w, dy, dx, dw, dbias, STREAM(d)));
}

void linear_forward(const device *d, int64_t n, int64_t in, int64_t out, const float *x,
                    const float *w, const float *b, float *y) {
  DISPATCH(d, linear_forward_cpu(n, in, out, x, w, b, y),
           linear_forward_cuda(n, in, out, x, w, b, y, STREAM(d)));
}

void linear_backward(const device *d, int64_t n, int64_t in, int64_t out, const float *x,
                     const float *w, const float *dy, float *dx, float *dw, float *db) {
  DISPATCH(d, linear_backward_cpu(n, in, out, x, w, dy, dx, dw, db),
           linear_backward_cuda(n, in, out, x, w, dy, dx, dw, db, STREAM(d)));
}

void conv_transpose2x2_forward(const device *d, int64_t n, int64_t c_in, int64_t h, int64_t w,
                               int64_t c_out, const float *x, const float *wt, const float *bias,
                               float *y) {
  DISPATCH(d, conv_transpose2x2_forward_cpu(n, c_in, h, w, c_out, x, wt, bias, y),
           conv_transpose2x2_forward_cuda(n, c_in, h, w, c_out, x, wt, bias, y, STREAM(d)));
}

void conv_transpose2x2_backward(const device *d, int64_t n, int64_t c_in, int64_t h, int64_t w,
                                int64_t c_out, const float *x, const float *wt, const float *dy,
                                float *dx, float *dwt, float *dbias) {
  DISPATCH(
      d, conv_transpose2x2_backward_cpu(n, c_in, h, w, c_out, x, wt, dy, dx, dwt, dbias),
      conv_transpose2x2_backward_cuda(n, c_in, h, w, c_out, x, wt, dy, dx, dwt, dbias, STREAM(d)));
}

void dcn_forward(const device *d, const dcn_desc *dd, const float *x, const float *offset,
                 const float *mask, const float *weight, const float *bias, float *y) {
  DISPATCH(d, dcn_forward_cpu(dd, x, offset, mask, weight, bias, y),
           dcn_forward_cuda(dd, x, offset, mask, weight, bias, y, STREAM(d)));
}

void dcn_backward(const device *d, const dcn_desc *dd, const float *x, const float *offset,
                  const float *mask, const float *weight, const float *dy, float *dx,
                  float *doffset, float *dmask, float *dweight, float *dbias) {
  DISPATCH(d, dcn_backward_cpu(dd, x, offset, mask, weight, dy, dx, doffset, dmask, dweight, dbias),
           dcn_backward_cuda(dd, x, offset, mask, weight, dy, dx, doffset, dmask, dweight, dbias,
                             STREAM(d)));
}

void group_norm_forward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t groups,
                        float eps, const float *x, const float *gamma, const float *beta, float *y,
                        float *mean, float *rstd) {
  DISPATCH(
      d, group_norm_forward_cpu(n, c, hw, groups, eps, x, gamma, beta, y, mean, rstd),
      group_norm_forward_cuda(n, c, hw, groups, eps, x, gamma, beta, y, mean, rstd, STREAM(d)));
}

void group_norm_backward(const device *d, int64_t n, int64_t c, int64_t hw, int64_t groups,
                         const float *x, const float *gamma, const float *mean, const float *rstd,
                         const float *dy, float *dx, float *dgamma, float *dbeta) {
  DISPATCH(d,
           group_norm_backward_cpu(n, c, hw, groups, x, gamma, mean, rstd, dy, dx, dgamma, dbeta),
           group_norm_backward_cuda(n, c, hw, groups, x, gamma, mean, rstd, dy, dx, dgamma, dbeta,
                                    STREAM(d)));
}

void layer_norm2d_forward(const device *d, int64_t n, int64_t c, int64_t hw, float eps,
                          const float *x, const float *gamma, const float *beta, float *y,
                          float *mean, float *rstd) {
  DISPATCH(d, layer_norm2d_forward_cpu(n, c, hw, eps, x, gamma, beta, y, mean, rstd),
           layer_norm2d_forward_cuda(n, c, hw, eps, x, gamma, beta, y, mean, rstd, STREAM(d)));
}

void layer_norm2d_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                           const float *gamma, const float *mean, const float *rstd,
                           const float *dy, float *dx, float *dgamma, float *dbeta) {
  DISPATCH(
      d, layer_norm2d_backward_cpu(n, c, hw, x, gamma, mean, rstd, dy, dx, dgamma, dbeta),
      layer_norm2d_backward_cuda(n, c, hw, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, STREAM(d)));
}

void batch_norm_fold_dev(const device *d, int64_t c, float eps, const float *gamma,
                         const float *beta, const float *running_mean, const float *running_var,
                         float *scale, float *shift) {
  DISPATCH(d, batch_norm_fold(c, eps, gamma, beta, running_mean, running_var, scale, shift),
           batch_norm_fold_cuda(c, eps, gamma, beta, running_mean, running_var, scale, shift,
                                STREAM(d)));
}

void channel_affine_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                            const float *scale, const float *shift, float *y) {
  DISPATCH(d, channel_affine_forward_cpu(n, c, hw, x, scale, shift, y),
           channel_affine_forward_cuda(n, c, hw, x, scale, shift, y, STREAM(d)));
}

void channel_affine_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *scale,
                             const float *dy, float *dx) {
  DISPATCH(d, channel_affine_backward_cpu(n, c, hw, scale, dy, dx),
           channel_affine_backward_cuda(n, c, hw, scale, dy, dx, STREAM(d)));
}

void batch_norm_train_forward(const device *d, int64_t n, int64_t c, int64_t hw, float eps,
                              float momentum, const float *x, const float *gamma, const float *beta,
                              float *y, float *save_mean, float *save_rstd, float *running_mean,
                              float *running_var, bn_allreduce_fn sync, void *sync_ctx) {
  DISPATCH(d,
           batch_norm_train_forward_cpu(n, c, hw, eps, momentum, x, gamma, beta, y, save_mean,
                                        save_rstd, running_mean, running_var, sync, sync_ctx),
           batch_norm_train_forward_cuda(n, c, hw, eps, momentum, x, gamma, beta, y, save_mean,
                                         save_rstd, running_mean, running_var, sync, sync_ctx,
                                         STREAM(d)));
}

void batch_norm_train_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                               const float *gamma, const float *save_mean, const float *save_rstd,
                               const float *dy, float *dx, float *dgamma, float *dbeta,
                               bn_allreduce_fn sync, void *sync_ctx) {
  DISPATCH(d,
           batch_norm_train_backward_cpu(n, c, hw, x, gamma, save_mean, save_rstd, dy, dx, dgamma,
                                         dbeta, sync, sync_ctx),
           batch_norm_train_backward_cuda(n, c, hw, x, gamma, save_mean, save_rstd, dy, dx, dgamma,
                                          dbeta, sync, sync_ctx, STREAM(d)));
}

void max_pool2d_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                        int64_t s, const float *x, float *y, int64_t *argmax) {
  DISPATCH(d, max_pool2d_forward_cpu(n, c, h, w, k, s, x, y, argmax),
           max_pool2d_forward_cuda(n, c, h, w, k, s, x, y, argmax, STREAM(d)));
}

void max_pool2d_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                         int64_t s, const int64_t *argmax, const float *dy, float *dx) {
  DISPATCH(d, max_pool2d_backward_cpu(n, c, h, w, k, s, argmax, dy, dx),
           max_pool2d_backward_cuda(n, c, h, w, k, s, argmax, dy, dx, STREAM(d)));
}

void upsample_nearest_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                              int64_t ho, int64_t wo, const float *x, float *y) {
  DISPATCH(d, upsample_nearest_forward_cpu(n, c, h, w, ho, wo, x, y),
           upsample_nearest_forward_cuda(n, c, h, w, ho, wo, x, y, STREAM(d)));
}

void upsample_nearest_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                               int64_t ho, int64_t wo, const float *dy, float *dx) {
  DISPATCH(d, upsample_nearest_backward_cpu(n, c, h, w, ho, wo, dy, dx),
           upsample_nearest_backward_cuda(n, c, h, w, ho, wo, dy, dx, STREAM(d)));
}

void resize_bilinear_ac_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                                int64_t ho, int64_t wo, const float *x, float *y) {
  DISPATCH(d, resize_bilinear_ac_forward_cpu(n, c, h, w, ho, wo, x, y),
           resize_bilinear_ac_forward_cuda(n, c, h, w, ho, wo, x, y, STREAM(d)));
}

void resize_bilinear_ac_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w,
                                 int64_t ho, int64_t wo, const float *dy, float *dx) {
  DISPATCH(d, resize_bilinear_ac_backward_cpu(n, c, h, w, ho, wo, dy, dx),
           resize_bilinear_ac_backward_cuda(n, c, h, w, ho, wo, dy, dx, STREAM(d)));
}

void roi_align_forward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w, const float *x,
                       int64_t k, const float *rois, float spatial_scale, int64_t out_h,
                       int64_t out_w, int sampling_ratio, int aligned, float *y) {
  DISPATCH(d,
           roi_align_forward_cpu(n, c, h, w, x, k, rois, spatial_scale, out_h, out_w,
                                 sampling_ratio, aligned, y),
           roi_align_forward_cuda(n, c, h, w, x, k, rois, spatial_scale, out_h, out_w,
                                  sampling_ratio, aligned, y, STREAM(d)));
}

void roi_align_backward(const device *d, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                        const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                        int sampling_ratio, int aligned, const float *dy, float *dx) {
  DISPATCH(d,
           roi_align_backward_cpu(n, c, h, w, k, rois, spatial_scale, out_h, out_w, sampling_ratio,
                                  aligned, dy, dx),
           roi_align_backward_cuda(n, c, h, w, k, rois, spatial_scale, out_h, out_w, sampling_ratio,
                                   aligned, dy, dx, STREAM(d)));
}

void roi_align_multilevel_forward(const device *d, const roi_align_ml_desc *rd,
                                  const float *const *feats, int64_t k, const float *rois, float *y,
                                  int *levels) {
  DISPATCH(d, roi_align_multilevel_forward_cpu(rd, feats, k, rois, y, levels),
           roi_align_multilevel_forward_cuda(rd, feats, k, rois, y, levels, STREAM(d)));
}

void roi_align_multilevel_backward(const device *d, const roi_align_ml_desc *rd, int64_t k,
                                   const float *rois, const float *dy, float *const *dfeats) {
  DISPATCH(d, roi_align_multilevel_backward_cpu(rd, k, rois, dy, dfeats),
           roi_align_multilevel_backward_cuda(rd, k, rois, dy, dfeats, STREAM(d)));
}

void affine_add_relu_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *x,
                             const float *scale, const float *shift, const float *res, int relu,
                             float *y) {
  DISPATCH(d, affine_add_relu_forward_cpu(n, c, hw, x, scale, shift, res, relu, y),
           affine_add_relu_forward_cuda(n, c, hw, x, scale, shift, res, relu, y, STREAM(d)));
}

void bn_frozen_param_backward(const device *d, int64_t n, int64_t c, int64_t hw, float eps,
                              const float *dy, const float *x, const float *running_mean,
                              const float *running_var, float *dgamma, float *dbeta) {
  DISPATCH(
      d,
      bn_frozen_param_backward_cpu(n, c, hw, eps, dy, x, running_mean, running_var, dgamma, dbeta),
      bn_frozen_param_backward_cuda(n, c, hw, eps, dy, x, running_mean, running_var, dgamma, dbeta,
                                    STREAM(d)));
}

void max_pool3s2p1_forward(const device *d, int64_t planes, int64_t h, int64_t w, const float *x,
                           float *y, int64_t *argmax) {
  DISPATCH(d, max_pool3s2p1_forward_cpu(planes, h, w, x, y, argmax),
           max_pool3s2p1_forward_cuda(planes, h, w, x, y, argmax, STREAM(d)));
}

void max_pool3s2p1_backward(const device *d, int64_t planes, int64_t h, int64_t w,
                            const int64_t *argmax, const float *dy, float *dx) {
  DISPATCH(d, max_pool3s2p1_backward_cpu(planes, h, w, argmax, dy, dx),
           max_pool3s2p1_backward_cuda(planes, h, w, argmax, dy, dx, STREAM(d)));
}

void ew_div(const device *d, int64_t n, float a, float *y) {
  DISPATCH(d, ew_div_cpu(n, a, y), ew_div_cuda(n, a, y, STREAM(d)));
}

void scale_attn_forward(const device *d, int64_t n, int64_t c, int64_t hw, const float *f,
                        const float *w, const float *bias, float *p, float *z, float *a) {
  DISPATCH(d, scale_attn_forward_cpu(n, c, hw, f, w, bias, p, z, a),
           scale_attn_forward_cuda(n, c, hw, f, w, bias, p, z, a, STREAM(d)));
}

void scale_attn_backward(const device *d, int64_t n, int64_t c, int64_t hw, const float *f,
                         const float *p, const float *z, const float *a, const float *w,
                         const float *dterm, float *df, float *dw, float *db) {
  DISPATCH(d, scale_attn_backward_cpu(n, c, hw, f, p, z, a, w, dterm, df, dw, db),
           scale_attn_backward_cuda(n, c, hw, f, p, z, a, w, dterm, df, dw, db, STREAM(d)));
}

void ew_gather(const device *d, int64_t n, const float *src, const int64_t *idx, float *dst) {
  DISPATCH(d, ew_gather_cpu(n, src, idx, dst), ew_gather_cuda(n, src, idx, dst, STREAM(d)));
}

void ew_scatter_add(const device *d, int64_t n, const float *src, const int64_t *idx, float *dst) {
  DISPATCH(d, ew_scatter_add_cpu(n, src, idx, dst),
           ew_scatter_add_cuda(n, src, idx, dst, STREAM(d)));
}
