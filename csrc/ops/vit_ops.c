// CPU twins of the ViT ops (ops/vit_ops.h). Plain loops with OpenMP over rows; every result is
// independent of the thread count (each output is computed by one thread, sums in fixed order).
// The float code (dot8, the softmax lanes) is the encoder's reference arithmetic: the CUDA twins
// in kernels/vit.cu repeat what they can of it operation for operation.
#include "ops/vit_ops.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "ops/gemm.h"

#define VIT_PAR_MIN 32768

void vit_patch_tokens_cpu(int64_t B, int64_t C, int64_t T, const float *pe, const float *pos,
                          float *x) {
#pragma omp parallel for schedule(static) if (B * T * C > VIT_PAR_MIN)
  for (int64_t r = 0; r < B * T; r++) {
    int64_t b = r / T, tok = r % T;
    for (int64_t ch = 0; ch < C; ch++) {
      float v = pe[(b * C + ch) * T + tok];
      x[r * C + ch] = pos ? v + pos[tok * C + ch] : v;
    }
  }
}

void vit_tokens_to_nchw_cpu(int64_t B, int64_t T, int64_t C, const float *x, float *y) {
#pragma omp parallel for collapse(2) schedule(static) if (B * T * C > VIT_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t tok = 0; tok < T; tok++) y[(b * C + ch) * T + tok] = x[(b * T + tok) * C + ch];
}

void vit_layer_norm_rows_cpu(int64_t rows, int64_t C, float eps, const float *x, const float *g,
                             const float *b, float *y) {
#pragma omp parallel for schedule(static) if (rows * C > VIT_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * C;
    double s = 0, ss = 0;
    for (int64_t c = 0; c < C; c++) s += xr[c];
    double mean = s / (double)C;
    for (int64_t c = 0; c < C; c++) ss += ((double)xr[c] - mean) * ((double)xr[c] - mean);
    float rstd = (float)(1.0 / sqrt(ss / (double)C + (double)eps)), mf = (float)mean;
    float *yr = y + r * C;
    for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - mf) * rstd * g[c] + b[c];
  }
}

void vit_bias_rows_cpu(int64_t rows, int64_t cols, const float *b, float *y) {
#pragma omp parallel for schedule(static) if (rows * cols > VIT_PAR_MIN)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t o = 0; o < cols; o++) y[r * cols + o] += b[o];
}

void vit_window_partition_cpu(int64_t B, int64_t gh, int64_t gw, int64_t C, int64_t ws,
                              const float *x, float *xw) {
  masa_assert(ws > 0);
  int64_t nwh = (gh + ws - 1) / ws, nww = (gw + ws - 1) / ws, nwin = B * nwh * nww;
#pragma omp parallel for schedule(static) if (nwin * ws * ws * C > VIT_PAR_MIN)
  for (int64_t wi = 0; wi < nwin; wi++) {
    int64_t b = wi / (nwh * nww), wy = (wi / nww) % nwh, wx = wi % nww;
    for (int64_t i = 0; i < ws; i++)
      for (int64_t j = 0; j < ws; j++) {
        int64_t y = wy * ws + i, xx = wx * ws + j;
        float *dst = xw + ((wi * ws + i) * ws + j) * C;
        if (y < gh && xx < gw)
          memcpy(dst, x + ((b * gh + y) * gw + xx) * C, (size_t)C * sizeof(float));
        else
          memset(dst, 0, (size_t)C * sizeof(float));
      }
  }
}

void vit_window_unpartition_add_cpu(int64_t B, int64_t gh, int64_t gw, int64_t C, int64_t ws,
                                    const float *xw, float *x) {
  masa_assert(ws > 0);
  int64_t nwh = (gh + ws - 1) / ws, nww = (gw + ws - 1) / ws, N = B * gh * gw;
#pragma omp parallel for schedule(static) if (N * C > VIT_PAR_MIN)
  for (int64_t r = 0; r < N; r++) {
    int64_t b = r / (gh * gw), y = (r / gw) % gh, xx = r % gw;
    int64_t src = (((b * nwh + y / ws) * nww + xx / ws) * ws + y % ws) * ws + xx % ws;
    float *xr = x + r * C;
    const float *ar = xw + src * C;
    for (int64_t ch = 0; ch < C; ch++) xr[ch] += ar[ch];
  }
}

void vit_get_rel_pos_cpu(int64_t qs, int64_t ks, const float *table, int64_t L, int64_t hd,
                         float *out) {
  int64_t maxd = 2 * (qs > ks ? qs : ks) - 1;
  float scale = (float)L / (float)maxd;
  // Coordinates as SAM computes them (float32 tensors, truncated to integers).
  float qf = (float)fmax((double)ks / (double)qs, 1.0), kf = (float)fmax((double)qs / (double)ks, 1.0);
  float off = (float)((double)(ks - 1) * fmax((double)qs / (double)ks, 1.0));
  for (int64_t i = 0; i < qs; i++)
    for (int64_t j = 0; j < ks; j++) {
      int64_t o = (int64_t)(((float)i * qf - (float)j * kf) + off);
      masa_assert(o >= 0 && o < maxd);
      float *dst = out + (i * ks + j) * hd;
      if (L == maxd) {
        memcpy(dst, table + o * hd, (size_t)hd * sizeof(float));
        continue;
      }
      // Row o of the resized table.
      float src = scale * ((float)o + 0.5f) - 0.5f;
      if (src < 0.0f) src = 0.0f;
      int64_t i0 = (int64_t)src;
      int64_t i1 = i0 + (i0 < L - 1 ? 1 : 0);
      float l1 = src - (float)i0;
      if (l1 < 0.0f) l1 = 0.0f;
      if (l1 > 1.0f) l1 = 1.0f;
      float l0 = 1.0f - l1;
      for (int64_t d = 0; d < hd; d++) dst[d] = l0 * table[i0 * hd + d] + l1 * table[i1 * hd + d];
    }
}

// Dot product with eight independent partial sums (vectorisable without reassociation flags).
static inline float dot8(const float *a, const float *b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// Softmax of one score row in place, after adding the decomposed relative positions
// (rh (kh), rw (kw) or NULL). Max and sum use eight independent lanes (vectorisable without
// reassociation flags, thread-count independent); the sum is finished in double.
static void score_row_softmax(float *s, int64_t kh, int64_t kw, const float *rh, const float *rw) {
  int64_t T = kh * kw;
  if (rh) {
    for (int64_t j = 0; j < kh; j++) {
      float *sj = s + j * kw;
      for (int64_t l = 0; l < kw; l++) sj[l] = (sj[l] + rh[j]) + rw[l];
    }
  }
  float m8[8];
  for (int l = 0; l < 8; l++) m8[l] = s[0];
  int64_t j = 0;
  for (; j + 8 <= T; j += 8)
    for (int l = 0; l < 8; l++) m8[l] = s[j + l] > m8[l] ? s[j + l] : m8[l];
  float mx = m8[0];
  for (int l = 1; l < 8; l++) mx = m8[l] > mx ? m8[l] : mx;
  for (; j < T; j++) mx = s[j] > mx ? s[j] : mx;
  float a8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (j = 0; j + 8 <= T; j += 8)
    for (int l = 0; l < 8; l++) {
      s[j + l] = expf(s[j + l] - mx);
      a8[l] += s[j + l];
    }
  double sum = 0;
  for (int l = 0; l < 8; l++) sum += a8[l];
  for (; j < T; j++) {
    s[j] = expf(s[j] - mx);
    sum += s[j];
  }
  float inv = (float)(1.0 / sum);
  for (j = 0; j < T; j++) s[j] *= inv;
}

void vit_attn_softmax_cpu(int64_t rows, int64_t row0, int64_t qh, int64_t qw, int64_t ld,
                          const float *q, const float *Rh, const float *Rw, int64_t hd, float *S) {
  masa_assert(qh > 0 && qw > 0 && qh <= VIT_MAX_SIDE && qw <= VIT_MAX_SIDE);
  masa_assert((Rh == NULL) == (Rw == NULL));
  int64_t T = qh * qw;
  // One parallel loop over all rows: small windows do not pay a fork / join each.
#pragma omp parallel for schedule(static) if (rows * T > VIT_PAR_MIN)
  for (int64_t i = 0; i < rows; i++) {
    int64_t t = (row0 + i) % T;
    float rh[VIT_MAX_SIDE], rw[VIT_MAX_SIDE];
    if (Rh) {
      const float *qt = q + (row0 + i) * ld;
      int64_t ty = t / qw, tx = t % qw;
      for (int64_t j = 0; j < qh; j++) rh[j] = dot8(qt, Rh + (ty * qh + j) * hd, hd);
      for (int64_t j = 0; j < qw; j++) rw[j] = dot8(qt, Rw + (tx * qw + j) * hd, hd);
    }
    score_row_softmax(S + i * T, qh, qw, Rh ? rh : NULL, Rh ? rw : NULL);
  }
}

void vit_gemm_batched_cpu(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, int64_t stride_a, const float *b,
                          int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                          int64_t stride_c, int64_t batch) {
  // One BLAS call per item, each threaded by the BLAS.
  for (int64_t i = 0; i < batch; i++)
    gemm_cpu(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
             c + i * stride_c, ldc);
}
