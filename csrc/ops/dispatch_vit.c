// The backend switch for the ViT ops (ops/vit_ops.h), in the shape of ops/dispatch.c.
#include "ops/vit_ops.h"

#include "ops/dispatch_impl.h"

void vit_patch_tokens(const device *d, int64_t B, int64_t C, int64_t T, const float *pe,
                      const float *pos, float *x) {
  DISPATCH(d, vit_patch_tokens_cpu(B, C, T, pe, pos, x),
           vit_patch_tokens_cuda(B, C, T, pe, pos, x, STREAM(d)));
}

void vit_tokens_to_nchw(const device *d, int64_t B, int64_t T, int64_t C, const float *x,
                        float *y) {
  DISPATCH(d, vit_tokens_to_nchw_cpu(B, T, C, x, y),
           vit_tokens_to_nchw_cuda(B, T, C, x, y, STREAM(d)));
}

void vit_layer_norm_rows(const device *d, int64_t rows, int64_t C, float eps, const float *x,
                         const float *g, const float *b, float *y) {
  DISPATCH(d, vit_layer_norm_rows_cpu(rows, C, eps, x, g, b, y),
           vit_layer_norm_rows_cuda(rows, C, eps, x, g, b, y, STREAM(d)));
}

void vit_bias_rows(const device *d, int64_t rows, int64_t cols, const float *b, float *y) {
  DISPATCH(d, vit_bias_rows_cpu(rows, cols, b, y),
           vit_bias_rows_cuda(rows, cols, b, y, STREAM(d)));
}

void vit_window_partition(const device *d, int64_t B, int64_t gh, int64_t gw, int64_t C,
                          int64_t ws, const float *x, float *xw) {
  DISPATCH(d, vit_window_partition_cpu(B, gh, gw, C, ws, x, xw),
           vit_window_partition_cuda(B, gh, gw, C, ws, x, xw, STREAM(d)));
}

void vit_window_unpartition_add(const device *d, int64_t B, int64_t gh, int64_t gw, int64_t C,
                                int64_t ws, const float *xw, float *x) {
  DISPATCH(d, vit_window_unpartition_add_cpu(B, gh, gw, C, ws, xw, x),
           vit_window_unpartition_add_cuda(B, gh, gw, C, ws, xw, x, STREAM(d)));
}

void vit_get_rel_pos(const device *d, int64_t qs, int64_t ks, const float *table, int64_t L,
                     int64_t hd, float *out) {
  DISPATCH(d, vit_get_rel_pos_cpu(qs, ks, table, L, hd, out),
           vit_get_rel_pos_cuda(qs, ks, table, L, hd, out, STREAM(d)));
}

void vit_attn_softmax(const device *d, int64_t rows, int64_t row0, int64_t qh, int64_t qw,
                      int64_t ld, const float *q, const float *Rh, const float *Rw, int64_t hd,
                      float *S) {
  DISPATCH(d, vit_attn_softmax_cpu(rows, row0, qh, qw, ld, q, Rh, Rw, hd, S),
           vit_attn_softmax_cuda(rows, row0, qh, qw, ld, q, Rh, Rw, hd, S, STREAM(d)));
}

void vit_gemm_batched(const device *d, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, int64_t stride_a, const float *b,
                      int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                      int64_t stride_c, int64_t batch) {
  DISPATCH(d,
           vit_gemm_batched_cpu(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                stride_b, beta, c, ldc, stride_c, batch),
           vit_gemm_batched_cuda(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                 stride_b, beta, c, ldc, stride_c, batch, STREAM(d)));
}
