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

// Modulated deformable conv (ops/dcn.h); d is a host struct. doffset, dmask, dweight, dbias are
// deterministic; dx too while cuda_deterministic() is on (the default: a sorted gather, no
// atomics), else it accumulates with atomicAdd (not bit-reproducible). See kernels/dcn.cu.
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

// Elementwise glue (ops/elementwise.h); kernels/elementwise.cu.
void ew_fill_cuda(int64_t n, float v, float *y, cudaStream_t stream);
void ew_scale_cuda(int64_t n, float a, float *y, cudaStream_t stream);
void ew_div_cuda(int64_t n, float a, float *y, cudaStream_t stream);
void scale_attn_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *f, const float *w,
                             const float *bias, float *p, float *z, float *a, cudaStream_t stream);
void scale_attn_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *f, const float *p,
                              const float *z, const float *a, const float *w, const float *dterm,
                              float *df, float *dw, float *db, cudaStream_t stream);
void ew_axpy_cuda(int64_t n, float a, const float *x, float *y, cudaStream_t stream);
void ew_add_cuda(int64_t n, const float *a, const float *b, float *y, cudaStream_t stream);
void ew_relu_mask_cuda(int64_t n, const float *y, float *g, cudaStream_t stream);
void ew_row_dot_cuda(int64_t rows, int64_t cols, const float *a, const float *b, float *y,
                  cudaStream_t stream);
void ew_row_scale_add_cuda(int64_t rows, int64_t cols, const float *s, const float *x, float *y,
                        cudaStream_t stream);
void ew_gather_cuda(int64_t n, const float *src, const int64_t *idx, float *dst,
                    cudaStream_t stream);
void ew_scatter_add_cuda(int64_t n, const float *src, const int64_t *idx, float *dst,
                         cudaStream_t stream);
// db (c) += per-channel sums of g (n, c, p): the bias gradient of every conv-like op.
void channel_sum_accumulate_cuda(int64_t n, int64_t c, int64_t p, const float *g, float *db,
                                 cudaStream_t stream);
void batch_norm_fold_cuda(int64_t c, float eps, const float *gamma, const float *beta,
                          const float *running_mean, const float *running_var, float *scale,
                          float *shift, cudaStream_t stream);

// ResNet units (ops/norm.h, ops/resample.h); kernels/resnet_ops.cu.
void affine_add_relu_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                  const float *scale, const float *shift, const float *res,
                                  int relu, float *y, cudaStream_t stream);
void bn_frozen_param_backward_cuda(int64_t n, int64_t c, int64_t hw, float eps, const float *dy,
                                   const float *x, const float *running_mean,
                                   const float *running_var, float *dgamma, float *dbeta,
                                   cudaStream_t stream);
void max_pool3s2p1_forward_cuda(int64_t planes, int64_t h, int64_t w, const float *x, float *y,
                                int64_t *argmax, cudaStream_t stream);
void max_pool3s2p1_backward_cuda(int64_t planes, int64_t h, int64_t w, const int64_t *argmax,
                                 const float *dy, float *dx, cudaStream_t stream);

// Row-major GEMM through cuBLAS (ops/gemm.h); kernels/gemm.cu.
void gemm_cuda(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, cudaStream_t stream);

// 2x2 stride-2 transposed conv (ops/conv.h) and DyReLU (ops/activation.h).
void conv_transpose2x2_forward_cuda(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                                    const float *x, const float *wt, const float *bias, float *y,
                                    cudaStream_t stream);
void conv_transpose2x2_backward_cuda(int64_t n, int64_t c_in, int64_t h, int64_t w,
                                     int64_t c_out, const float *x, const float *wt,
                                     const float *dy, float *dx, float *dwt, float *dbias,
                                     cudaStream_t stream);
void dyrelu_forward_cuda(int64_t n, int64_t c, int64_t hw, int64_t c_mid, const float *x,
                         const float *w1, const float *b1, const float *w2, const float *b2,
                         float *y, float *cache, cudaStream_t stream);
void dyrelu_backward_cuda(int64_t n, int64_t c, int64_t hw, int64_t c_mid, const float *x,
                          const float *w1, const float *w2, const float *cache, const float *dy,
                          float *dx, float *dw1, float *db1, float *dw2, float *db2,
                          cudaStream_t stream);

// Optimizer and losses (kernels/optim.cu, kernels/losses.cu)
// Twins of train/optim.h and train/losses.h (dispatchers: train/dispatch_train.h). grad_sumsq
// returns sum g^2 to the host (synchronises `stream`); the updates use the _rn intrinsics in the
// CPU's float order (bit-identical to the CPU twins). The losses take `target` (nk, nr) in HOST
// memory (the targets are built on the host), key / ref / dkey / dref on the device, and return
// the loss to the host (synchronising `stream`); dkey / dref accumulate, as on the CPU.
#include "train/losses.h"
double grad_sumsq_cuda(const float *g, int64_t n, cudaStream_t stream);
void sgd_update_cuda(float *p, const float *g, float *buf, int64_t n, double lr, double wd,
                     double momentum, int first, cudaStream_t stream);
void adamw_update_cuda(float *p, const float *g, float *m, float *v, int64_t n, double lr,
                       double wd, double beta1, double beta2, double eps, int64_t t,
                       cudaStream_t stream);
double unbiased_contrast_loss_cuda(int64_t nk, int64_t nr, int64_t d, const float *key,
                                   const float *ref, const float *target, float weight,
                                   float *dkey, float *dref, cudaStream_t stream);
double margin_l2_loss_cuda(int64_t nk, int64_t nr, int64_t d, const float *key, const float *ref,
                           const float *target, const margin_l2_cfg *cfg, float weight,
                           float *dkey, float *dref, cudaStream_t stream);

// ViT (kernels/vit.cu): twins of ops/vit_ops.h.
void vit_patch_tokens_cuda(int64_t B, int64_t C, int64_t T, const float *pe, const float *pos,
                           float *x, cudaStream_t stream);
void vit_tokens_to_nchw_cuda(int64_t B, int64_t T, int64_t C, const float *x, float *y,
                             cudaStream_t stream);
void vit_layer_norm_rows_cuda(int64_t rows, int64_t C, float eps, const float *x, const float *g,
                              const float *b, float *y, cudaStream_t stream);
void vit_bias_rows_cuda(int64_t rows, int64_t cols, const float *b, float *y, cudaStream_t stream);
void vit_window_partition_cuda(int64_t B, int64_t gh, int64_t gw, int64_t C, int64_t ws,
                               const float *x, float *xw, cudaStream_t stream);
void vit_window_unpartition_add_cuda(int64_t B, int64_t gh, int64_t gw, int64_t C, int64_t ws,
                                     const float *xw, float *x, cudaStream_t stream);
void vit_get_rel_pos_cuda(int64_t qs, int64_t ks, const float *table, int64_t L, int64_t hd,
                          float *out, cudaStream_t stream);
void vit_attn_softmax_cuda(int64_t rows, int64_t row0, int64_t qh, int64_t qw, int64_t ld,
                           const float *q, const float *Rh, const float *Rw, int64_t hd, float *S,
                           cudaStream_t stream);
void vit_gemm_batched_cuda(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                           const float *a, int64_t lda, int64_t stride_a, const float *b,
                           int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                           int64_t stride_c, int64_t batch, cudaStream_t stream);
// end ViT

// Precision (kernels/precision.cu): the process-wide GEMM precision of the CUDA twins (conv2d,
// dcn, linear, gemm, vit_gemm_batched). 0 (the default): pedantic FP32 cuBLAS, the mode `masa
// check`'s op rows compare; 1: bf16 operands, float32 accumulation and float32 C, all tensors
// staying float32 in memory. Setting 0 also frees the bf16 scratch workspace.
void cuda_set_precision(int bf16);
int cuda_precision_bf16(void);
// Current size of the grow-only bf16 operand workspace (0 until the first bf16 GEMM).
size_t cuda_bf16_workspace_bytes(void);

// cuDNN convolution (kernels/conv_cudnn.cu)
// conv2d through cuDNN, same semantics as conv2d_forward_cpu / conv2d_backward_cpu (backward
// accumulates into dx, dw, dbias, each nullable). FP32 FMA math (no TF32). Return 1 when done,
// 0 when cuDNN refuses the shape (nothing written): the caller falls back to im2col + cuBLAS.
int conv2d_forward_cudnn(const conv2d_desc *d, const float *x, const float *w, const float *bias,
                         float *y, cudaStream_t s);
int conv2d_backward_cudnn(const conv2d_desc *d, const float *x, const float *w, const float *dy,
                          float *dx, float *dw, float *dbias, cudaStream_t s);
// Which implementation conv2d_forward/backward_cuda use: 0 im2col + cuBLAS, 1 cuDNN (a refused
// shape is reported on stderr, then runs im2col), 2 auto (default: cuDNN where it handles the
// shape, silently im2col elsewhere).
void cuda_set_conv_backend(int mode);
int cuda_conv_backend(void);
// 1 (default): cuDNN algorithms from its heuristics (same choice every run), deterministic
// kernels of the GEMM family only (the CPU's products summed in another order). 0: the fastest
// measured FMA algorithm per shape (FFT / Winograd included; summation order may vary per run).
void cuda_set_deterministic(int on);
int cuda_deterministic(void);
// Mean milliseconds of one conv2d forward (backward = 0) or backward with dx, dw, dbias (1) over
// `repeats` timed calls after two untimed ones, on random buffers it allocates: backend 0 im2col
// (conv2d_*_cuda with the switch at 0), 1 cuDNN (conv2d_*_cudnn; -1 when it refuses the shape),
// 2 conv2d_*_cuda with the switch at auto. Synchronises; restores the switch.
double conv2d_bench_ms(const conv2d_desc *d, int backend, int backward, int repeats);
// end cuDNN convolution

// RPN proposals (kernels/rpn.cu)
// Twin of rpn_proposals (model/rpn.h; called through rpn_proposals_dev) for one image. cls[l]
// (A, h[l], w[l]) and reg[l] (4A, h[l], w[l]): DEVICE pointers to that image's slice of level
// l's maps; base (L, A, 4) the HOST base anchors of each level (anchor_generator_base) and
// strides (L) the levels' strides; A <= 16. The remaining arguments are rpn_proposal_cfg's
// fields and rpn_proposals' outputs (HOST arrays, same sizes and meaning). Synchronises
// `stream`; returns the number of proposals. Temporary memory comes from a grow-only workspace
// (one per process; rpn_cuda_workspace_bytes gives its size).
#include "model/bbox_coder.h"
int64_t rpn_proposals_cuda(int num_levels, int num_anchors, const float *const *cls,
                           const float *const *reg, const int64_t *h, const int64_t *w,
                           const float *base, const float *strides,
                           const delta_xywh_coder *coder, int64_t nms_pre, int64_t max_per_img,
                           float iou_thr, float min_bbox_size, int64_t split_thr, float img_h,
                           float img_w, float *boxes, float *scores, int64_t *src,
                           cudaStream_t stream);
size_t rpn_cuda_workspace_bytes(void);
// end RPN proposals

#ifdef __cplusplus
}
#endif

#endif
