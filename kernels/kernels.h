// CUDA twins of the CPU ops (csrc/ops/): same name stem, same arguments (device pointers), plus a
// trailing stream. Semantics are those documented for the CPU op, which is the reference; the
// GPU check (`masa check`) compares every twin against it.
#ifndef MASA_KERNELS_H
#define MASA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Op descriptors (conv2d_desc, dcn_desc, roi_align_ml_desc); inside the C linkage block because
// the CUDA files call their host helpers (conv2d_out_h, ...).
#include "ops/conv.h"
#include "ops/dcn.h"
#include "ops/norm.h"      // bn_allreduce_fn
#include "ops/resample.h"  // max_pool2d_out_size
#include "ops/roi_align.h"

// Number of usable CUDA devices (0 when there is no driver or no device; never exits).
int cuda_device_count(void);
// Name and compute capability of device 0, for reports.
void cuda_device_describe(char *buf, int n);

// "CUDA runtime X, cuBLAS Y, cuDNN Z, NCCL W" (library versions; needs no device).
void cuda_library_versions(char *buf, int n);

void *cuda_alloc(size_t bytes);
void cuda_free(void *p);
void cuda_upload(void *dst, const void *src, size_t bytes);
void cuda_download(void *dst, const void *src, size_t bytes);
void cuda_sync(void);

// Activations (ops/activation.h).
void relu_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream);
void relu_backward_cuda(int64_t n, const float *y, const float *dy, float *dx, cudaStream_t stream);
void gelu_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream);
void gelu_backward_cuda(int64_t n, const float *x, const float *dy, float *dx, cudaStream_t stream);
void sigmoid_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream);
void sigmoid_backward_cuda(int64_t n, const float *y, const float *dy, float *dx,
                           cudaStream_t stream);
void hard_sigmoid_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream);
void hard_sigmoid_backward_cuda(int64_t n, const float *x, const float *dy, float *dx,
                                cudaStream_t stream);
// Row softmax over the last dim: x, y, dy, dx (rows, cols); one block per row.
void softmax_forward_cuda(int64_t rows, int64_t cols, const float *x, float *y,
                          cudaStream_t stream);
void softmax_backward_cuda(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx,
                           cudaStream_t stream);
void log_softmax_forward_cuda(int64_t rows, int64_t cols, const float *x, float *y,
                              cudaStream_t stream);
void log_softmax_backward_cuda(int64_t rows, int64_t cols, const float *y, const float *dy,
                               float *dx, cudaStream_t stream);
// Global average pool: x (n, c, hw) -> y (n, c).
void global_avg_pool_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                                  cudaStream_t stream);
void global_avg_pool_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *dy, float *dx,
                                   cudaStream_t stream);

// Normalisation (ops/norm.h); kernels/norm.cu. Deterministic, no atomics.
void group_norm_forward_cuda(int64_t n, int64_t c, int64_t hw, int64_t groups, float eps,
                             const float *x, const float *gamma, const float *beta, float *y,
                             float *mean, float *rstd, cudaStream_t stream);
void group_norm_backward_cuda(int64_t n, int64_t c, int64_t hw, int64_t groups, const float *x,
                              const float *gamma, const float *mean, const float *rstd,
                              const float *dy, float *dx, float *dgamma, float *dbeta,
                              cudaStream_t stream);
void layer_norm2d_forward_cuda(int64_t n, int64_t c, int64_t hw, float eps, const float *x,
                               const float *gamma, const float *beta, float *y, float *mean,
                               float *rstd, cudaStream_t stream);
void layer_norm2d_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                const float *gamma, const float *mean, const float *rstd,
                                const float *dy, float *dx, float *dgamma, float *dbeta,
                                cudaStream_t stream);
void channel_affine_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                 const float *scale, const float *shift, float *y,
                                 cudaStream_t stream);
void channel_affine_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *scale,
                                  const float *dy, float *dx, cudaStream_t stream);
// Training BatchNorm. A non-NULL `sync` runs on the HOST: the [count, sums] buffer is copied
// back, the stream synchronised, the hook called, the result uploaded (same meaning as the CPU
// twin, at the cost of one synchronisation per call). NULL: single device, no synchronisation.
void batch_norm_train_forward_cuda(int64_t n, int64_t c, int64_t hw, float eps, float momentum,
                                   const float *x, const float *gamma, const float *beta,
                                   float *y, float *save_mean, float *save_rstd,
                                   float *running_mean, float *running_var, bn_allreduce_fn sync,
                                   void *sync_ctx, cudaStream_t stream);
void batch_norm_train_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                    const float *gamma, const float *save_mean,
                                    const float *save_rstd, const float *dy, float *dx,
                                    float *dgamma, float *dbeta, bn_allreduce_fn sync,
                                    void *sync_ctx, cudaStream_t stream);

// Pooling and resampling (ops/resample.h); kernels/resample.cu. Gather-style backward, no
// atomics: bit-identical to the CPU. argmax (n, c, ho, wo) int64 flat (h, w) indices.
void max_pool2d_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                             const float *x, float *y, int64_t *argmax, cudaStream_t stream);
void max_pool2d_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                              const int64_t *argmax, const float *dy, float *dx,
                              cudaStream_t stream);
void upsample_nearest_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                   int64_t wo, const float *x, float *y, cudaStream_t stream);
void upsample_nearest_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                    int64_t wo, const float *dy, float *dx, cudaStream_t stream);
void resize_bilinear_ac_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                     int64_t wo, const float *x, float *y, cudaStream_t stream);
void resize_bilinear_ac_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                      int64_t wo, const float *dy, float *dx,
                                      cudaStream_t stream);

// Linear through cuBLAS (ops/conv.h): y = x w^T + b; backward accumulates.
void linear_forward_cuda(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                         const float *b, float *y, cudaStream_t stream);
void linear_backward_cuda(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db, cudaStream_t stream);

// RoIAlign (ops/roi_align.h). Backward: deterministic gather by default; the atomicAdd scatter
// (faster for many small RoIs, summation order varies run to run) after
// roi_align_cuda_set_atomic(1). See kernels/roi_align.cu for costs. Where the CPU stops on a
// bad RoI (batch index, oversized adaptive grid) the forward writes NaN and the backward skips it.
void roi_align_cuda_set_atomic(int on);
void roi_align_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, const float *x, int64_t k,
                            const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                            int sampling_ratio, int aligned, float *y, cudaStream_t stream);
void roi_align_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                             const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                             int sampling_ratio, int aligned, const float *dy, float *dx,
                             cudaStream_t stream);
// feats / dfeats: host arrays of device pointers; levels (k) a device buffer or NULL.
void roi_align_multilevel_forward_cuda(const roi_align_ml_desc *d, const float *const *feats,
                                       int64_t k, const float *rois, float *y, int *levels,
                                       cudaStream_t stream);
void roi_align_multilevel_backward_cuda(const roi_align_ml_desc *d, int64_t k, const float *rois,
                                        const float *dy, float *const *dfeats,
                                        cudaStream_t stream);

// Modulated deformable conv (ops/dcn.h); d is a host struct. dx accumulates with atomicAdd (not
// bit-reproducible); doffset, dmask, dweight, dbias are deterministic.
void dcn_forward_cuda(const dcn_desc *d, const float *x, const float *offset, const float *mask,
                      const float *weight, const float *bias, float *y, cudaStream_t stream);
void dcn_backward_cuda(const dcn_desc *d, const float *x, const float *offset, const float *mask,
                       const float *weight, const float *dy, float *dx, float *doffset,
                       float *dmask, float *dweight, float *dbias, cudaStream_t stream);

// conv2d through im2col + cuBLAS (ops/conv.h); d is a host struct; backward deterministic.
void conv2d_forward_cuda(const conv2d_desc *d, const float *x, const float *w, const float *bias,
                         float *y, cudaStream_t stream);
void conv2d_backward_cuda(const conv2d_desc *d, const float *x, const float *w, const float *dy,
                          float *dx, float *dw, float *dbias, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
