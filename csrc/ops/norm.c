// Normalisation layers on the CPU. Mirrors torch.nn.GroupNorm, the ViTDet/SAM LayerNorm2d
// (mean and biased variance over the channels of each pixel) and torch.nn.BatchNorm2d /
// SyncBatchNorm.
// - Layout NCHW viewed as (n, c, hw). gamma/beta NULL means no affine (1 and 0).
// - Statistics are accumulated in double in a fixed order (GroupNorm and LayerNorm2d two-pass:
//   mean, then centred squares; BatchNorm one-pass sum / sum of squares, because those are what
//   the cross-rank hook must add). Parameter gradients are reduced in a fixed order too: per
//   (image, channel) or per fixed-size pixel block partials in double, then summed in index order,
//   so nothing depends on the thread count.
// - Training BatchNorm: the forward hook sums [count, sum(x) (c), sum(x^2) (c)] over ranks; the
//   backward hook sums [count, sum(dy) (c), sum(dy * xhat) (c)]. dgamma / dbeta get this rank's
//   LOCAL sums (the data-parallel gradient all-reduce adds the ranks, as with DDP + SyncBN).
//   running_var uses the unbiased variance over the global count, like PyTorch.
#include "ops/norm.h"

#include <math.h>
#include <string.h>

#include "core/check.h"

#define NORM_PAR_MIN 16384  // elements below which loops stay serial
#define LN_BLOCK 256        // pixels per LayerNorm2d block (fixed: keeps reductions thread-independent)

// ---- GroupNorm ----

void group_norm_forward_cpu(int64_t n, int64_t c, int64_t hw, int64_t groups, float eps,
                            const float *x, const float *gamma, const float *beta, float *y,
                            float *mean, float *rstd) {
  masa_assert(groups > 0 && c % groups == 0 && hw > 0);
  const int64_t cg = c / groups, M = cg * hw;
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bg = 0; bg < n * groups; bg++) {
    int64_t b = bg / groups, g = bg % groups;
    const float *xg = x + (b * c + g * cg) * hw;
    float *yg = y + (b * c + g * cg) * hw;
    double s = 0.0;
    for (int64_t i = 0; i < M; i++) s += xg[i];
    double mu = s / (double)M;
    double v = 0.0;
    for (int64_t i = 0; i < M; i++) {
      double t = xg[i] - mu;
      v += t * t;
    }
    double r = 1.0 / sqrt(v / (double)M + (double)eps);
    mean[bg] = (float)mu;
    rstd[bg] = (float)r;
    // (x - mean) first: x * scale + shift would cancel badly when |mean| >> std.
    float fmu = (float)mu;
    for (int64_t k = 0; k < cg; k++) {
      int64_t ch = g * cg + k;
      float scale = (float)(r * (gamma ? gamma[ch] : 1.0));
      float shift = beta ? beta[ch] : 0.0f;
      const float *xc = xg + k * hw;
      float *yc = yg + k * hw;
      for (int64_t i = 0; i < hw; i++) yc[i] = (xc[i] - fmu) * scale + shift;
    }
  }
}

void group_norm_backward_cpu(int64_t n, int64_t c, int64_t hw, int64_t groups, const float *x,
                             const float *gamma, const float *mean, const float *rstd,
                             const float *dy, float *dx, float *dgamma, float *dbeta) {
  masa_assert(groups > 0 && c % groups == 0 && hw > 0);
  const int64_t cg = c / groups, M = cg * hw;
  // Per (image, channel): ds = sum(dy * x), db = sum(dy).
  double *ds = mallocCheck((size_t)(n * c) * sizeof(double));
  double *db = mallocCheck((size_t)(n * c) * sizeof(double));
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    const float *xc = x + bc * hw, *dyc = dy + bc * hw;
    double a = 0.0, e = 0.0;
    for (int64_t i = 0; i < hw; i++) {
      a += (double)dyc[i] * xc[i];
      e += dyc[i];
    }
    ds[bc] = a;
    db[bc] = e;
  }
  if (dgamma || dbeta) {
    for (int64_t ch = 0; ch < c; ch++) {
      int64_t g = ch / cg;
      double sg = 0.0, sb = 0.0;
      for (int64_t b = 0; b < n; b++) {
        double mu = mean[b * groups + g], r = rstd[b * groups + g];
        sg += r * (ds[b * c + ch] - mu * db[b * c + ch]);
        sb += db[b * c + ch];
      }
      if (dgamma) dgamma[ch] += (float)sg;
      if (dbeta) dbeta[ch] += (float)sb;
    }
  }
  if (dx) {
    // dx = r*gamma*dy - r*A/M - r*xhat*B/M with A = sum(gamma*dy), B = sum(gamma*dy*xhat) over
    // the group: per channel dx = k_c * dy + c1 * (x - mean) + c0.
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
    for (int64_t bg = 0; bg < n * groups; bg++) {
      int64_t b = bg / groups, g = bg % groups;
      double mu = mean[bg], r = rstd[bg];
      double A = 0.0, Bp = 0.0;
      for (int64_t k = 0; k < cg; k++) {
        int64_t ch = g * cg + k;
        double gm = gamma ? gamma[ch] : 1.0;
        A += gm * db[b * c + ch];
        Bp += gm * ds[b * c + ch];
      }
      double B = r * (Bp - mu * A);
      float f1 = (float)(-r * r * B / (double)M), f0 = (float)(-r * A / (double)M);
      float fmu = mean[bg];
      for (int64_t k = 0; k < cg; k++) {
        int64_t ch = g * cg + k;
        float kc = (float)(r * (gamma ? gamma[ch] : 1.0));
        const float *xc = x + (b * c + ch) * hw, *dyc = dy + (b * c + ch) * hw;
        float *dxc = dx + (b * c + ch) * hw;
        for (int64_t i = 0; i < hw; i++) dxc[i] += kc * dyc[i] + f1 * (xc[i] - fmu) + f0;
      }
    }
  }
  free(ds);
  free(db);
}

// ---- LayerNorm2d ----

void layer_norm2d_forward_cpu(int64_t n, int64_t c, int64_t hw, float eps, const float *x,
                              const float *gamma, const float *beta, float *y, float *mean,
                              float *rstd) {
  masa_assert(c > 0 && hw > 0);
  const int64_t nblk = (hw + LN_BLOCK - 1) / LN_BLOCK;
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bk = 0; bk < n * nblk; bk++) {
    int64_t b = bk / nblk, p0 = (bk % nblk) * LN_BLOCK;
    int64_t np = hw - p0 < LN_BLOCK ? hw - p0 : LN_BLOCK;
    const float *xb = x + b * c * hw + p0;
    float *yb = y + b * c * hw + p0;
    double mu[LN_BLOCK], v[LN_BLOCK];
    for (int64_t p = 0; p < np; p++) mu[p] = v[p] = 0.0;
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t p = 0; p < np; p++) mu[p] += xb[ch * hw + p];
    for (int64_t p = 0; p < np; p++) mu[p] /= (double)c;
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t p = 0; p < np; p++) {
        double t = xb[ch * hw + p] - mu[p];
        v[p] += t * t;
      }
    for (int64_t p = 0; p < np; p++) {
      v[p] = 1.0 / sqrt(v[p] / (double)c + (double)eps);  // now rstd
      mean[b * hw + p0 + p] = (float)mu[p];
      rstd[b * hw + p0 + p] = (float)v[p];
    }
    // In double: few channels and a large mean would otherwise cost several float32 ulps.
    for (int64_t ch = 0; ch < c; ch++) {
      double gm = gamma ? gamma[ch] : 1.0, bt = beta ? beta[ch] : 0.0;
      for (int64_t p = 0; p < np; p++)
        yb[ch * hw + p] = (float)(((double)xb[ch * hw + p] - mu[p]) * v[p] * gm + bt);
    }
  }
}

void layer_norm2d_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                               const float *gamma, const float *mean, const float *rstd,
                               const float *dy, float *dx, float *dgamma, float *dbeta) {
  masa_assert(c > 0 && hw > 0);
  const int64_t nblk = (hw + LN_BLOCK - 1) / LN_BLOCK, nb = n * nblk;
  int want_params = dgamma || dbeta;
  // Per block and channel partials of sum(dy * xhat) and sum(dy), reduced in block order below.
  double *pg = want_params ? mallocCheck((size_t)(nb * c) * sizeof(double)) : NULL;
  double *pb = want_params ? mallocCheck((size_t)(nb * c) * sizeof(double)) : NULL;
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bk = 0; bk < nb; bk++) {
    int64_t b = bk / nblk, p0 = (bk % nblk) * LN_BLOCK;
    int64_t np = hw - p0 < LN_BLOCK ? hw - p0 : LN_BLOCK;
    const float *xb = x + b * c * hw + p0, *dyb = dy + b * c * hw + p0;
    const float *mb = mean + b * hw + p0, *rb = rstd + b * hw + p0;
    // The saved mean is rounded to float32; S recovers the exact mean (mu = mean + S / c) so
    // that xhat has zero mean over the channels, as the float64 reference has.
    double A[LN_BLOCK], B[LN_BLOCK], mu[LN_BLOCK];
    for (int64_t p = 0; p < np; p++) A[p] = B[p] = mu[p] = 0.0;
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t p = 0; p < np; p++) mu[p] += (double)xb[ch * hw + p] - mb[p];
    for (int64_t p = 0; p < np; p++) mu[p] = mb[p] + mu[p] / (double)c;
    for (int64_t ch = 0; ch < c; ch++) {
      double gm = gamma ? gamma[ch] : 1.0, sg = 0.0, sb = 0.0;
      for (int64_t p = 0; p < np; p++) {
        double d = dyb[ch * hw + p];
        double xh = ((double)xb[ch * hw + p] - mu[p]) * rb[p];
        A[p] += gm * d;
        B[p] += gm * d * xh;
        sg += d * xh;
        sb += d;
      }
      if (want_params) {
        pg[bk * c + ch] = sg;
        pb[bk * c + ch] = sb;
      }
    }
    if (dx) {
      float *dxb = dx + b * c * hw + p0;
      for (int64_t p = 0; p < np; p++) {
        A[p] /= (double)c;
        B[p] /= (double)c;
      }
      for (int64_t ch = 0; ch < c; ch++) {
        double gm = gamma ? gamma[ch] : 1.0;
        for (int64_t p = 0; p < np; p++) {
          double xh = ((double)xb[ch * hw + p] - mu[p]) * rb[p];
          dxb[ch * hw + p] += (float)(rb[p] * (gm * dyb[ch * hw + p] - A[p] - xh * B[p]));
        }
      }
    }
  }
  if (want_params) {
    for (int64_t ch = 0; ch < c; ch++) {
      double sg = 0.0, sb = 0.0;
      for (int64_t bk = 0; bk < nb; bk++) {
        sg += pg[bk * c + ch];
        sb += pb[bk * c + ch];
      }
      if (dgamma) dgamma[ch] += (float)sg;
      if (dbeta) dbeta[ch] += (float)sb;
    }
  }
  free(pg);
  free(pb);
}

// ---- BatchNorm: frozen (folded) ----

void batch_norm_fold(int64_t c, float eps, const float *gamma, const float *beta,
                     const float *running_mean, const float *running_var, float *scale,
                     float *shift) {
  for (int64_t ch = 0; ch < c; ch++) {
    double s = (gamma ? gamma[ch] : 1.0) / sqrt((double)running_var[ch] + (double)eps);
    scale[ch] = (float)s;
    shift[ch] = (float)((beta ? beta[ch] : 0.0) - (double)running_mean[ch] * s);
  }
}

void conv_fold_affine(int64_t c_out, int64_t k, const float *scale, const float *shift, float *w,
                      const float *bias_in, float *bias_out) {
  for (int64_t co = 0; co < c_out; co++) {
    for (int64_t i = 0; i < k; i++) w[co * k + i] *= scale[co];
    double b = bias_in ? bias_in[co] : 0.0;
    bias_out[co] = (float)(b * scale[co] + shift[co]);
  }
}

void channel_affine_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                                const float *scale, const float *shift, float *y) {
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    float s = scale[bc % c], t = shift[bc % c];
    const float *xc = x + bc * hw;
    float *yc = y + bc * hw;
    for (int64_t i = 0; i < hw; i++) yc[i] = xc[i] * s + t;
  }
}

void channel_affine_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *scale,
                                 const float *dy, float *dx) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    float s = scale[bc % c];
    const float *dyc = dy + bc * hw;
    float *dxc = dx + bc * hw;
    for (int64_t i = 0; i < hw; i++) dxc[i] += dyc[i] * s;
  }
}

// ---- BatchNorm: training (batch statistics, optionally synchronised) ----

void batch_norm_train_forward_cpu(int64_t n, int64_t c, int64_t hw, float eps, float momentum,
                                  const float *x, const float *gamma, const float *beta, float *y,
                                  float *save_mean, float *save_rstd, float *running_mean,
                                  float *running_var, bn_allreduce_fn sync, void *sync_ctx) {
  masa_assert(c > 0 && n >= 0 && hw > 0);
  // buf = [count, sum (c), sum of squares (c)]
  double *buf = mallocCheck((size_t)(1 + 2 * c) * sizeof(double));
  buf[0] = (double)(n * hw);
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t ch = 0; ch < c; ch++) {
    double s = 0.0, q = 0.0;
    for (int64_t b = 0; b < n; b++) {
      const float *xc = x + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; i++) {
        double v = xc[i];
        s += v;
        q += v * v;
      }
    }
    buf[1 + ch] = s;
    buf[1 + c + ch] = q;
  }
  if (sync) sync(buf, 1 + 2 * c, sync_ctx);
  const double N = buf[0];
  // PyTorch refuses training BN with one value per channel (unbiased variance undefined).
  masa_assert(N > 1.0);
  for (int64_t ch = 0; ch < c; ch++) {
    double mu = buf[1 + ch] / N;
    double var = (buf[1 + c + ch] - buf[1 + ch] * mu) / N;
    if (var < 0.0) var = 0.0;
    save_mean[ch] = (float)mu;
    save_rstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
    if (running_mean)
      running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + (double)momentum * mu);
    if (running_var)
      running_var[ch] = (float)((1.0 - momentum) * running_var[ch] +
                                (double)momentum * var * N / (N - 1.0));
  }
  free(buf);
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    int64_t ch = bc % c;
    float scale = (float)((double)save_rstd[ch] * (gamma ? gamma[ch] : 1.0));
    float shift = beta ? beta[ch] : 0.0f, fmu = save_mean[ch];
    const float *xc = x + bc * hw;
    float *yc = y + bc * hw;
    for (int64_t i = 0; i < hw; i++) yc[i] = (xc[i] - fmu) * scale + shift;
  }
}

void batch_norm_train_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                                   const float *gamma, const float *save_mean,
                                   const float *save_rstd, const float *dy, float *dx,
                                   float *dgamma, float *dbeta, bn_allreduce_fn sync,
                                   void *sync_ctx) {
  masa_assert(c > 0 && n >= 0 && hw > 0);
  // buf = [count, sum(dy) (c), sum(dy * xhat) (c)]
  double *buf = mallocCheck((size_t)(1 + 2 * c) * sizeof(double));
  buf[0] = (double)(n * hw);
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t ch = 0; ch < c; ch++) {
    double mu = save_mean[ch], s = 0.0, q = 0.0;
    for (int64_t b = 0; b < n; b++) {
      const float *xc = x + (b * c + ch) * hw, *dyc = dy + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; i++) {
        s += dyc[i];
        q += (double)dyc[i] * ((double)xc[i] - mu);
      }
    }
    buf[1 + ch] = s;
    buf[1 + c + ch] = q * save_rstd[ch];
  }
  // Parameter gradients are this rank's own share (see the top of the file).
  for (int64_t ch = 0; ch < c; ch++) {
    if (dgamma) dgamma[ch] += (float)buf[1 + c + ch];
    if (dbeta) dbeta[ch] += (float)buf[1 + ch];
  }
  // Always called, even without dx: the hook is a collective every rank must enter.
  if (sync) sync(buf, 1 + 2 * c, sync_ctx);
  if (dx) {
    const double N = buf[0];
    masa_assert(N > 0.0);
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
    for (int64_t bc = 0; bc < n * c; bc++) {
      int64_t ch = bc % c;
      double mu = save_mean[ch], r = save_rstd[ch];
      double k = r * (gamma ? gamma[ch] : 1.0);
      double mdy = buf[1 + ch] / N, mdyx = buf[1 + c + ch] / N;
      // dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)) = k*dy + c1*(x - mean) + c0
      float fk = (float)k, c1 = (float)(-k * r * mdyx), c0 = (float)(-k * mdy), fmu = (float)mu;
      const float *xc = x + bc * hw, *dyc = dy + bc * hw;
      float *dxc = dx + bc * hw;
      for (int64_t i = 0; i < hw; i++) dxc[i] += fk * dyc[i] + c1 * (xc[i] - fmu) + c0;
    }
  }
  free(buf);
}

// ---- frozen-statistics BN + residual + ReLU (ResNet units) ----

void affine_add_relu_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *x,
                                 const float *scale, const float *shift, const float *res,
                                 int relu, float *y) {
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    float s = scale[bc % c], b = shift[bc % c];
    const float *cv = x + bc * hw;
    const float *r = res ? res + bc * hw : NULL;
    float *yy = y + bc * hw;
    for (int64_t i = 0; i < hw; i++) {
      float v = cv[i] * s + b;
      if (r) v += r[i];
      if (relu) v = v > 0.0f ? v : 0.0f;
      yy[i] = v;
    }
  }
}

void bn_frozen_param_backward_cpu(int64_t n, int64_t c, int64_t hw, float eps, const float *dy,
                                  const float *x, const float *running_mean,
                                  const float *running_var, float *dgamma, float *dbeta) {
#pragma omp parallel for schedule(static) if (n * c * hw > NORM_PAR_MIN)
  for (int64_t ch = 0; ch < c; ch++) {
    double sg = 0, sgx = 0, mean = running_mean[ch];
    for (int64_t b = 0; b < n; b++) {
      const float *gc = dy + (b * c + ch) * hw, *xc = x + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; i++) {
        sg += gc[i];
        sgx += (double)gc[i] * ((double)xc[i] - mean);
      }
    }
    dgamma[ch] += (float)(sgx / sqrt((double)running_var[ch] + (double)eps));
    dbeta[ch] += (float)sg;
  }
}
