// GPU check, ViT group: the SAM encoder's ops (ops/vit_ops.h, kernels/vit.cu) against their CPU
// twins on random inputs with odd shapes (batch 1 and 3, token grids that are not a multiple of
// the window, a window larger than the grid, heads 1 and 3, head dims off the dot8 lane count,
// row ranges that start inside a window), then one whole vit_sam_forward on the cuda device
// against the cpu device. Outputs are pre-filled with random values where the op must overwrite
// every element (padding included). "exact" means the kernel repeats the CPU's float operations
// in the same order (see kernels/vit.cu).
#ifdef MASA_HAVE_CUDA
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/arena.h"
#include "core/check.h"
#include "core/device.h"
#include "core/rng.h"
#include "kernels.h"
#include "model/vit_sam.h"
#include "ops/vit_ops.h"

// ---- token layout: patch tokens (+ pos), back to NCHW, bias rows ----

static void check_tokens(check_state *st, int64_t B, int64_t C, int64_t T, uint64_t seed) {
  int64_t n = B * C * T;
  float *pe = gpu_check_uniform(n, seed, 201, -2.0f, 2.0f), *pos = gpu_check_uniform(T * C, seed, 202, -1.0f, 1.0f);
  float *y0 = gpu_check_uniform(n, seed, 203, -9.0f, 9.0f), *b = gpu_check_uniform(C, seed, 204, -1.0f, 1.0f);
  float *x = mallocCheck((size_t)n * sizeof(float)), *y = mallocCheck((size_t)n * sizeof(float));
  float *dPE = gpu_check_dev_guarded(pe, n), *dPOS = gpu_check_dev_guarded(pos, T * C);
  float *dX = gpu_check_dev_guarded(y0, n), *dY = gpu_check_dev_guarded(y0, n);
  float *dB = gpu_check_dev_guarded(b, C);
  char name[96];
  for (int with_pos = 0; with_pos < 2; with_pos++) {
    vit_patch_tokens_cpu(B, C, T, pe, with_pos ? pos : NULL, x);
    vit_patch_tokens_cuda(B, C, T, dPE, with_pos ? dPOS : NULL, dX, 0);
    snprintf(name, sizeof name, "vit_patch_tokens %lldx%lldx%lld%s", (long long)B, (long long)C,
             (long long)T, with_pos ? " +pos" : "");
    gpu_check_cmp(st, name, dX, x, n, 0, 0);  // exact: a copy and one float add
  }
  vit_tokens_to_nchw_cpu(B, T, C, x, y);
  vit_tokens_to_nchw_cuda(B, T, C, dX, dY, 0);
  snprintf(name, sizeof name, "vit_tokens_to_nchw %lldx%lldx%lld", (long long)B, (long long)T,
           (long long)C);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);  // exact: a copy
  vit_bias_rows_cpu(B * T, C, b, x);
  vit_bias_rows_cuda(B * T, C, dB, dX, 0);
  snprintf(name, sizeof name, "vit_bias_rows %lldx%lld (+=)", (long long)(B * T), (long long)C);
  gpu_check_cmp(st, name, dX, x, n, 0, 0);  // exact: one float add
  cuda_free(dPE), cuda_free(dPOS), cuda_free(dX), cuda_free(dY), cuda_free(dB);
  free(pe), free(pos), free(y0), free(b), free(x), free(y);
}

// ---- row LayerNorm ----

static void check_layer_norm_rows(check_state *st, int64_t rows, int64_t C, uint64_t seed) {
  int64_t n = rows * C;
  float *x = gpu_check_uniform(n, seed, 211, -3.0f, 5.0f), *g = gpu_check_uniform(C, seed, 212, -1.5f, 1.5f);
  float *b = gpu_check_uniform(C, seed, 213, -1.0f, 1.0f), *y0 = gpu_check_uniform(n, seed, 214, -9.0f, 9.0f);
  float *y = mallocCheck((size_t)n * sizeof(float));
  float *dX = gpu_check_dev_guarded(x, n), *dG = gpu_check_dev_guarded(g, C);
  float *dB = gpu_check_dev_guarded(b, C), *dY = gpu_check_dev_guarded(y0, n);
  vit_layer_norm_rows_cpu(rows, C, 1e-6f, x, g, b, y);
  vit_layer_norm_rows_cuda(rows, C, 1e-6f, dX, dG, dB, dY, 0);
  // Mean and variance in double summed in another order: the float mean / rstd agree but for
  // rare rounding ties (1 ulp), then the same four float operations: 1e-6 abs + 1e-6 rel.
  char name[96];
  snprintf(name, sizeof name, "vit_layer_norm_rows %lldx%lld", (long long)rows, (long long)C);
  gpu_check_cmp(st, name, dY, y, n, 1e-6, 1e-6);
  cuda_free(dX), cuda_free(dG), cuda_free(dB), cuda_free(dY);
  free(x), free(g), free(b), free(y0), free(y);
}

// ---- window partition / unpartition ----

static void check_windows(check_state *st, int64_t B, int64_t gh, int64_t gw, int64_t C,
                          int64_t ws, uint64_t seed) {
  int64_t nwh = (gh + ws - 1) / ws, nww = (gw + ws - 1) / ws;
  int64_t n = B * gh * gw * C, nw = B * nwh * nww * ws * ws * C;
  float *x = gpu_check_uniform(n, seed, 221, -2.0f, 2.0f), *xw0 = gpu_check_uniform(nw, seed, 222, -9.0f, 9.0f);
  float *xw = gpu_check_copy(xw0, nw), *acc = gpu_check_copy(x, n);
  float *dX = gpu_check_dev_guarded(x, n), *dXW = gpu_check_dev_guarded(xw0, nw);
  char name[96];
  // The output starts as garbage: the padding must be written (zeros).
  vit_window_partition_cpu(B, gh, gw, C, ws, x, xw);
  vit_window_partition_cuda(B, gh, gw, C, ws, dX, dXW, 0);
  snprintf(name, sizeof name, "vit_window_partition %lldx%lldx%lldx%lld w%lld", (long long)B,
           (long long)gh, (long long)gw, (long long)C, (long long)ws);
  gpu_check_cmp(st, name, dXW, xw, nw, 0, 0);  // exact: copies and zeros
  // Unpartition-add of a random window list (padding entries must be ignored).
  cuda_upload(dXW, xw0, (size_t)nw * sizeof(float));
  vit_window_unpartition_add_cpu(B, gh, gw, C, ws, xw0, acc);
  vit_window_unpartition_add_cuda(B, gh, gw, C, ws, dXW, dX, 0);
  snprintf(name, sizeof name, "vit_window_unpartition_add %lldx%lldx%lld w%lld", (long long)B,
           (long long)gh, (long long)gw, (long long)ws);
  gpu_check_cmp(st, name, dX, acc, n, 0, 0);  // exact: one float add
  cuda_free(dX), cuda_free(dXW);
  free(x), free(xw0), free(xw), free(acc);
}

// ---- relative positions ----

static void check_rel_pos(check_state *st, int64_t qs, int64_t L, int64_t hd, uint64_t seed) {
  int64_t n = qs * qs * hd;
  float *table = gpu_check_uniform(L * hd, seed, 231, -1.0f, 1.0f), *o0 = gpu_check_uniform(n, seed, 232, -9.0f, 9.0f);
  float *out = mallocCheck((size_t)n * sizeof(float));
  float *dT = gpu_check_dev_guarded(table, L * hd), *dO = gpu_check_dev_guarded(o0, n);
  vit_get_rel_pos_cpu(qs, qs, table, L, hd, out);
  vit_get_rel_pos_cuda(qs, qs, dT, L, hd, dO, 0);
  char name[96];
  snprintf(name, sizeof name, "vit_get_rel_pos %lld L=%lld hd=%lld%s", (long long)qs, (long long)L,
           (long long)hd, L != 2 * qs - 1 ? " (interp)" : "");
  gpu_check_cmp(st, name, dO, out, n, 0, 0);  // exact: the same float index and lerp operations
  cuda_free(dT), cuda_free(dO);
  free(table), free(o0), free(out);
}

// ---- relative-position bias + softmax of score rows ----

// nwin windows of qh x qw tokens, `heads` heads of hd; rows [row0, row0 + rows) of head h.
static void check_attn_softmax(check_state *st, int64_t nwin, int64_t qh, int64_t qw,
                               int64_t heads, int64_t hd, int64_t h, int64_t row0, int64_t rows,
                               int rel, uint64_t seed) {
  int64_t T = qh * qw, C = heads * hd, ld = 3 * C, nq = nwin * T * ld, ns = rows * T;
  float *qkv = gpu_check_uniform(nq, seed, 241, -1.0f, 1.0f), *s0 = gpu_check_uniform(ns, seed, 242, -4.0f, 4.0f);
  float *Rh = gpu_check_uniform(qh * qh * hd, seed, 243, -0.5f, 0.5f), *Rw = gpu_check_uniform(qw * qw * hd, seed, 244, -0.5f, 0.5f);
  float *s = gpu_check_copy(s0, ns);
  float *dQ = gpu_check_dev_guarded(qkv, nq), *dS = gpu_check_dev_guarded(s0, ns);
  float *dRh = gpu_check_dev_guarded(Rh, qh * qh * hd), *dRw = gpu_check_dev_guarded(Rw, qw * qw * hd);
  vit_attn_softmax_cpu(rows, row0, qh, qw, ld, qkv + h * hd, rel ? Rh : NULL, rel ? Rw : NULL, hd,
                       s);
  vit_attn_softmax_cuda(rows, row0, qh, qw, ld, dQ + h * hd, rel ? dRh : NULL, rel ? dRw : NULL,
                        hd, dS, 0);
  // The rel-pos dot products and adds are exact (dot8 repeated); expf is within 2 ulp of
  // glibc's, and the CPU sums the row in eight float lanes (relative error up to ~T/8 * 2^-24,
  // T <= 400 here) where the GPU sums in double: 1e-8 abs + 1e-5 rel.
  char name[96];
  snprintf(name, sizeof name, "vit_attn_softmax %lldx%lldx%lld h%lld/%lld r%lld+%lld%s",
           (long long)nwin, (long long)qh, (long long)qw, (long long)h, (long long)heads,
           (long long)row0, (long long)rows, rel ? " rel" : "");
  gpu_check_cmp(st, name, dS, s, ns, 1e-8, 1e-5);
  cuda_free(dQ), cuda_free(dS), cuda_free(dRh), cuda_free(dRw);
  free(qkv), free(s0), free(Rh), free(Rw), free(s);
}

// ---- strided batched GEMM (the attention's per-window products) ----

static void check_gemm_batched(check_state *st, int tb, int64_t m, int64_t n, int64_t k,
                               int64_t batch, uint64_t seed) {
  // A: rows of a wider matrix (lda > k), like q inside qkv; C likewise (ldc > n).
  int64_t lda = k + 5, ldb = tb ? k + 3 : n + 3, ldc = n + 7;
  int64_t sa = m * lda + 2, sb = (tb ? n : k) * ldb + 1, sc = m * ldc + 3;
  int64_t na = batch * sa, nb = batch * sb, nc = batch * sc;
  float *a = gpu_check_uniform(na, seed, 251, -1.0f, 1.0f), *b = gpu_check_uniform(nb, seed, 252, -1.0f, 1.0f);
  float *c0 = gpu_check_uniform(nc, seed, 253, -1.0f, 1.0f), *c = gpu_check_copy(c0, nc);
  float *dA = gpu_check_dev_guarded(a, na), *dB = gpu_check_dev_guarded(b, nb);
  float *dC = gpu_check_dev_guarded(c0, nc);
  vit_gemm_batched_cpu(0, tb, m, n, k, 0.375f, a, lda, sa, b, ldb, sb, 0.0f, c, ldc, sc, batch);
  vit_gemm_batched_cuda(0, tb, m, n, k, 0.375f, dA, lda, sa, dB, ldb, sb, 0.0f, dC, ldc, sc, batch,
                        0);
  // FP32 sums of k <= 200 products of |v| <= 1 in another order than OpenBLAS; elements between
  // the rows (padding of ldc) must stay as they were: 2e-5 abs + 1e-5 rel.
  char name[96];
  snprintf(name, sizeof name, "vit_gemm_batched %s %lldx%lldx%lld b%lld", tb ? "NT" : "NN",
           (long long)m, (long long)n, (long long)k, (long long)batch);
  gpu_check_cmp(st, name, dC, c, nc, 2e-5, 1e-5);
  cuda_free(dA), cuda_free(dB), cuda_free(dC);
  free(a), free(b), free(c0), free(c);
}

// ---- the whole encoder: cuda device vs cpu device ----

static void check_vit_forward(check_state *st, uint64_t seed) {
  static const device cuda_dev = {DEV_CUDA, 0, NULL};
  vit_sam_cfg cfg;
  vit_sam_cfg_b(&cfg);
  // 7 x 7 tokens (patch 8, img 56), windows of 3 (padded to 9 x 9), block 1 global, 3 heads of
  // 20, chunks of 200 floats (partial windows next to batched whole-window runs).
  cfg.img_size = 56, cfg.patch = 8, cfg.embed = 60, cfg.depth = 3, cfg.heads = 3, cfg.window = 3;
  cfg.attn_chunk = 200;
  cfg.n_global = 1, cfg.global_idx[0] = 1;
  cfg.n_out = 3;
  for (int i = 0; i < 3; i++) cfg.out_idx[i] = i;
  param_table t;
  param_table_init(&t);
  vit_sam m;
  vit_sam_register(&m, &t, "detector.backbone", &cfg);
  param_table_alloc(&t);
  vit_sam_init(&m, &t, seed);
  tensor x = tensor_alloc4(2, 3, 56, 56);
  rng_fill_uniform(x.data, tensor_numel(&x), -2.0f, 2.0f, seed, 261);

  arena ar;
  arena_init(&ar, (size_t)8 << 20);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 0};
  tensor outs[VIT_SAM_MAX_OUT];
  vit_sam_forward(&m, &ctx, &x, outs);

  param_table tg;
  param_table_clone_layout(&tg, &t, &cuda_dev);
  param_table_copy_roles(&tg, &t);
  arena ag, host;
  arena_init_on(&ag, (size_t)8 << 20, &cuda_dev);
  arena_init(&host, (size_t)1 << 20);
  model_ctx gctx = {.params = &tg, .arena = &ag, .training = 0, .host = &host};
  tensor xg = x;
  xg.owns = 0;
  xg.data = arena_floats(&ag, tensor_numel(&x));
  dev_upload(&cuda_dev, xg.data, x.data, (size_t)tensor_numel(&x) * sizeof(float));
  tensor gouts[VIT_SAM_MAX_OUT];
  vit_sam_forward(&m, &gctx, &xg, gouts);
  dev_sync(&cuda_dev);
  for (int k = 0; k < cfg.n_out; k++) {
    int64_t n = tensor_numel(&outs[k]);
    float *h = mallocCheck((size_t)(n + GUARD) * sizeof(float));
    dev_download(&cuda_dev, h, gouts[k].data, (size_t)n * sizeof(float));
    for (int64_t i = n; i < n + GUARD; i++) h[i] = SENTINEL;
    // Every op within a few ulp (GEMMs over <= 240 terms in another order, expf, LayerNorm
    // statistics), compounded over three blocks of residual updates with |x| ~ 1-10: 1e-4 abs +
    // 1e-4 rel (the PyTorch float64 oracle test allows 1e-4 + 2e-5 against float32 CPU runs).
    char name[96];
    snprintf(name, sizeof name, "vit_sam_forward block %d (%s) cuda/cpu", cfg.out_idx[k],
             m.blocks[cfg.out_idx[k]].global ? "global" : "window");
    gpu_check_compare(st, name, h, outs[k].data, n, 1e-4, 1e-4);
    free(h);
  }
  arena_free(&ag);
  arena_free(&host);
  param_table_free(&tg);
  arena_free(&ar);
  param_table_free(&t);
  tensor_free(&x);
}

void gpu_check_vit(check_state *st, uint64_t seed) {
  check_tokens(st, 1, 1, 1, seed);
  check_tokens(st, 3, 7, 25, seed);
  check_tokens(st, 2, 96, 77, seed);

  check_layer_norm_rows(st, 1, 1, seed);  // C = 1: variance 0, y = b
  check_layer_norm_rows(st, 37, 257, seed);
  check_layer_norm_rows(st, 3, 768, seed);
  check_layer_norm_rows(st, 5, 1000, seed);

  check_windows(st, 1, 5, 5, 7, 3, seed);     // padded to 6 x 6
  check_windows(st, 3, 7, 11, 5, 4, seed);    // non-square, padded to 8 x 12
  check_windows(st, 2, 8, 8, 3, 4, seed);     // no padding
  check_windows(st, 1, 2, 3, 4, 14, seed);    // one window larger than the grid
  check_windows(st, 1, 64, 64, 2, 14, seed);  // SAM's grid and window (padded to 70)

  check_rel_pos(st, 3, 5, 16, seed);
  check_rel_pos(st, 14, 27, 64, seed);
  check_rel_pos(st, 7, 23, 12, seed);    // a global table used on a smaller grid
  check_rel_pos(st, 11, 23, 15, seed);
  check_rel_pos(st, 13, 5, 3, seed);     // upsampled table
  check_rel_pos(st, 64, 127, 64, seed);  // ViT-B global at 1024

  check_attn_softmax(st, 5, 3, 3, 3, 16, 2, 4, 30, 1, seed);  // rows start inside a window
  check_attn_softmax(st, 2, 5, 7, 1, 12, 0, 0, 70, 1, seed);  // global, non-square, hd 12
  check_attn_softmax(st, 3, 4, 4, 3, 15, 1, 7, 33, 0, seed);  // no relative positions
  check_attn_softmax(st, 2, 14, 14, 3, 64, 1, 0, 392, 1, seed);
  check_attn_softmax(st, 1, 20, 20, 1, 8, 0, 100, 1, 1, seed);  // one row

  check_gemm_batched(st, 1, 9, 9, 16, 5, seed);   // scores: q k^T per window
  check_gemm_batched(st, 0, 9, 16, 9, 5, seed);   // probabilities times v
  check_gemm_batched(st, 1, 1, 7, 3, 1, seed);
  check_gemm_batched(st, 0, 196, 64, 196, 3, seed);

  check_vit_forward(st, seed);
}
#endif
