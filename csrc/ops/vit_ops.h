// Ops of the SAM ViT image encoder (model/vit_sam.c) that the generic op library lacks. Tokens
// are kept as (B, H, W, C) rows, row-major; a window list is (nwin, ws, ws, C) with windows in
// (b, wy, wx) order and zero padding at the bottom / right, as SAM's window_partition. Forward
// only (the encoder is frozen in MASA). Every op overwrites its output unless it says "+=".
// CUDA twins: kernels/vit.cu (vit_gemm_batched: cuBLAS); dispatchers: ops/dispatch_vit.c.
#ifndef MASA_VIT_OPS_H
#define MASA_VIT_OPS_H

#include <stdint.h>

#include "core/device.h"

// Largest window side / token-grid side the attention softmax accepts (per-row stack buffers).
#define VIT_MAX_SIDE 512

// Patch-embedding output to tokens: x (B, T, C) = pe (B, C, T) transposed, + pos (T, C) when pos
// is not NULL (SAM's absolute positions, added without resizing).
void vit_patch_tokens_cpu(int64_t B, int64_t C, int64_t T, const float *pe, const float *pos,
                          float *x);
// Tokens back to a map: y (B, C, T) = x (B, T, C) transposed.
void vit_tokens_to_nchw_cpu(int64_t B, int64_t T, int64_t C, const float *x, float *y);
// LayerNorm over the last dim: x, y (rows, C); g, b (C). Mean and variance in double (two passes).
void vit_layer_norm_rows_cpu(int64_t rows, int64_t C, float eps, const float *x, const float *g,
                             const float *b, float *y);
// y (rows, cols) += b (cols) on every row.
void vit_bias_rows_cpu(int64_t rows, int64_t cols, const float *b, float *y);
// x (B, gh, gw, C) -> xw (B * ceil(gh / ws) * ceil(gw / ws), ws, ws, C), padding zeros.
void vit_window_partition_cpu(int64_t B, int64_t gh, int64_t gw, int64_t C, int64_t ws,
                              const float *x, float *xw);
// x (B, gh, gw, C) += the window list xw (layout of vit_window_partition) with padding dropped.
void vit_window_unpartition_add_cpu(int64_t B, int64_t gh, int64_t gw, int64_t C, int64_t ws,
                                    const float *xw, float *x);
// SAM's get_rel_pos: out (qs, ks, hd) = rows of table (L, hd) indexed by the relative distance
// (i * max(ks / qs, 1) - j * max(qs / ks, 1) + (ks - 1) max(qs / ks, 1), float, truncated); when
// L != 2 max(qs, ks) - 1 the table is first resized to that length by linear interpolation
// (F.interpolate align_corners False, PyTorch's float index arithmetic).
void vit_get_rel_pos_cpu(int64_t qs, int64_t ks, const float *table, int64_t L, int64_t hd,
                         float *out);
// Decomposed relative positions + softmax of attention score rows, in place. The token list is
// nwin windows of T = qh * qw tokens; this handles its rows [row0, row0 + rows) of one head:
//   q (row g at q + g * ld, hd floats): that head's unscaled queries;
//   S (rows, T): scores scale q k^T of those rows in, probabilities out;
//   Rh (qh, qh, hd), Rw (qw, qw, hd) from vit_get_rel_pos, or both NULL (no relative positions).
// For query token t = (ty, tx) of its window: S[., (kh, kw)] += q . Rh[ty, kh] (then) + q . Rw[tx, kw];
// then softmax over the row. qh, qw <= VIT_MAX_SIDE.
void vit_attn_softmax_cpu(int64_t rows, int64_t row0, int64_t qh, int64_t qw, int64_t ld,
                          const float *q, const float *Rh, const float *Rw, int64_t hd, float *S);
// batch independent row-major GEMMs (gemm_cpu's conventions): C_i = alpha op(A_i) op(B_i) +
// beta C_i with A_i = a + i * stride_a, B_i = b + i * stride_b, C_i = c + i * stride_c.
void vit_gemm_batched_cpu(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, int64_t stride_a, const float *b,
                          int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                          int64_t stride_c, int64_t batch);

// Dispatchers (ops/dispatch_vit.c): the CPU twin on cpu / guard devices, the CUDA twin on cuda.
void vit_patch_tokens(const device *d, int64_t B, int64_t C, int64_t T, const float *pe,
                      const float *pos, float *x);
void vit_tokens_to_nchw(const device *d, int64_t B, int64_t T, int64_t C, const float *x,
                        float *y);
void vit_layer_norm_rows(const device *d, int64_t rows, int64_t C, float eps, const float *x,
                         const float *g, const float *b, float *y);
void vit_bias_rows(const device *d, int64_t rows, int64_t cols, const float *b, float *y);
void vit_window_partition(const device *d, int64_t B, int64_t gh, int64_t gw, int64_t C,
                          int64_t ws, const float *x, float *xw);
void vit_window_unpartition_add(const device *d, int64_t B, int64_t gh, int64_t gw, int64_t C,
                                int64_t ws, const float *xw, float *x);
void vit_get_rel_pos(const device *d, int64_t qs, int64_t ks, const float *table, int64_t L,
                     int64_t hd, float *out);
void vit_attn_softmax(const device *d, int64_t rows, int64_t row0, int64_t qh, int64_t qw,
                      int64_t ld, const float *q, const float *Rh, const float *Rw, int64_t hd,
                      float *S);
void vit_gemm_batched(const device *d, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, int64_t stride_a, const float *b,
                      int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                      int64_t stride_c, int64_t batch);

#endif
