// CUDA twins of the normalisation layers in ops/norm.h (GroupNorm, LayerNorm2d, channel affine,
// training BatchNorm). NCHW viewed as (n, c, hw); gamma/beta NULL means no affine; backward
// accumulates into every non-NULL gradient (ops/ops.h).
// Determinism: no atomics. Every statistic is a double sum, either one thread walking a fixed
// index order or a block_sum fixed tree; parameter gradients use a two-stage reduction (per-plane
// or per-pixel-block partials written to a stream-ordered workspace, then one thread per channel
// summing them in index order, as the CPU does). Repeated runs are bitwise identical.
// Accuracy vs the CPU: statistics are double sums of the same float terms in another order, so
// the float32 mean / rstd agree to within 1 ulp (almost always exactly); everything after the
// statistics repeats the CPU's expressions operation by operation with _rn intrinsics (no FMA
// contraction), so outputs differ only through such a 1-ulp difference in a statistic.
// BatchNorm's cross-rank hook (bn_allreduce_fn) keeps its CPU meaning: when non-NULL, the
// [count, sums] buffer is copied to the host (the stream is synchronised), handed to the hook,
// and copied back; NULL keeps everything on the device with no synchronisation.
#include <math.h>
#include <stdlib.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define NORM_THREADS 256
#define LN_BLOCK REDUCE_THREADS  // pixels per LayerNorm2d backward block: one per thread

#define GRID_STRIDE(i, n)                                                          \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);        \
       i += (int64_t)gridDim.x * blockDim.x)

static void *workspace_alloc(size_t bytes, cudaStream_t stream) {
  void *p = NULL;
  cudaCheck(cudaMallocAsync(&p, bytes > 0 ? bytes : 1, stream));
  return p;
}

// ---- GroupNorm ----

// One block per (image, group); the group's cg * hw values are contiguous. Two-pass in double.
static __global__ void group_norm_forward_kernel(int64_t n, int64_t c, int64_t hw, int64_t groups,
                                                 float eps, const float *x, const float *gamma,
                                                 const float *beta, float *y, float *mean,
                                                 float *rstd) {
  __shared__ double sh[REDUCE_THREADS];
  const int64_t cg = c / groups, M = cg * hw;
  for (int64_t bg = blockIdx.x; bg < n * groups; bg += gridDim.x) {
    const int64_t b = bg / groups, g = bg % groups;
    const float *xg = x + (b * c + g * cg) * hw;
    float *yg = y + (b * c + g * cg) * hw;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += blockDim.x) s = __dadd_rn(s, (double)xg[i]);
    const double mu = block_sum(s, sh) / (double)M;
    double v = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
      double t = __dsub_rn((double)xg[i], mu);
      v = __dadd_rn(v, __dmul_rn(t, t));
    }
    v = block_sum(v, sh);
    const double r = 1.0 / sqrt(v / (double)M + (double)eps);
    if (threadIdx.x == 0) {
      mean[bg] = (float)mu;
      rstd[bg] = (float)r;
    }
    const float fmu = (float)mu;
    for (int64_t k = 0; k < cg; k++) {
      const int64_t ch = g * cg + k;
      const float scale = (float)__dmul_rn(r, gamma ? (double)gamma[ch] : 1.0);
      const float shift = beta ? beta[ch] : 0.0f;
      const float *xc = xg + k * hw;
      float *yc = yg + k * hw;
      for (int64_t i = threadIdx.x; i < hw; i += blockDim.x)
        yc[i] = __fadd_rn(__fmul_rn(__fsub_rn(xc[i], fmu), scale), shift);
    }
  }
}

// Stage 1 (GroupNorm and nothing else): per (image, channel) plane ds = sum(dy * x), db = sum(dy).
static __global__ void plane_dot_kernel(int64_t planes, int64_t hw, const float *x,
                                        const float *dy, double *ds, double *db) {
  __shared__ double sh[2 * REDUCE_THREADS];
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const float *xp = x + p * hw, *dyp = dy + p * hw;
    double a = 0.0, e = 0.0;
    for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
      a = __dadd_rn(a, __dmul_rn((double)dyp[i], (double)xp[i]));
      e = __dadd_rn(e, (double)dyp[i]);
    }
    block_sum2(&a, &e, sh);
    if (threadIdx.x == 0) {
      ds[p] = a;
      db[p] = e;
    }
  }
}

// Stage 2: one thread per channel sums its n planes in image order.
static __global__ void group_norm_param_kernel(int64_t n, int64_t c, int64_t groups,
                                               const float *mean, const float *rstd,
                                               const double *ds, const double *db, float *dgamma,
                                               float *dbeta) {
  const int64_t cg = c / groups;
  GRID_STRIDE(ch, c) {
    const int64_t g = ch / cg;
    double sg = 0.0, sb = 0.0;
    for (int64_t b = 0; b < n; b++) {
      double mu = mean[b * groups + g], r = rstd[b * groups + g];
      sg = __dadd_rn(sg, __dmul_rn(r, __dsub_rn(ds[b * c + ch], __dmul_rn(mu, db[b * c + ch]))));
      sb = __dadd_rn(sb, db[b * c + ch]);
    }
    if (dgamma) dgamma[ch] = __fadd_rn(dgamma[ch], (float)sg);
    if (dbeta) dbeta[ch] = __fadd_rn(dbeta[ch], (float)sb);
  }
}

// dx = k_c * dy + f1 * (x - mean) + f0 per (image, group), as the CPU derives it.
static __global__ void group_norm_dx_kernel(int64_t n, int64_t c, int64_t hw, int64_t groups,
                                            const float *x, const float *gamma, const float *mean,
                                            const float *rstd, const float *dy, const double *ds,
                                            const double *db, float *dx) {
  const int64_t cg = c / groups, M = cg * hw;
  for (int64_t bg = blockIdx.x; bg < n * groups; bg += gridDim.x) {
    const int64_t b = bg / groups, g = bg % groups;
    const double mu = mean[bg], r = rstd[bg];
    double A = 0.0, Bp = 0.0;  // every thread sums the same cg terms in the same order
    for (int64_t k = 0; k < cg; k++) {
      const int64_t ch = g * cg + k;
      const double gm = gamma ? (double)gamma[ch] : 1.0;
      A = __dadd_rn(A, __dmul_rn(gm, db[b * c + ch]));
      Bp = __dadd_rn(Bp, __dmul_rn(gm, ds[b * c + ch]));
    }
    const double B = __dmul_rn(r, __dsub_rn(Bp, __dmul_rn(mu, A)));
    const float f1 = (float)__ddiv_rn(__dmul_rn(__dmul_rn(-r, r), B), (double)M);
    const float f0 = (float)__ddiv_rn(__dmul_rn(-r, A), (double)M);
    const float fmu = mean[bg];
    for (int64_t k = 0; k < cg; k++) {
      const int64_t ch = g * cg + k;
      const float kc = (float)__dmul_rn(r, gamma ? (double)gamma[ch] : 1.0);
      const int64_t off = (b * c + ch) * hw;
      for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
        float t = __fadd_rn(__fadd_rn(__fmul_rn(kc, dy[off + i]),
                                      __fmul_rn(f1, __fsub_rn(x[off + i], fmu))),
                            f0);
        dx[off + i] = __fadd_rn(dx[off + i], t);
      }
    }
  }
}

extern "C" void group_norm_forward_cuda(int64_t n, int64_t c, int64_t hw, int64_t groups,
                                        float eps, const float *x, const float *gamma,
                                        const float *beta, float *y, float *mean, float *rstd,
                                        cudaStream_t stream) {
  masa_assert(groups > 0 && c % groups == 0 && hw > 0);
  if (n * groups <= 0) return;
  group_norm_forward_kernel<<<blocks_for(n * groups, 1), REDUCE_THREADS, 0, stream>>>(
      n, c, hw, groups, eps, x, gamma, beta, y, mean, rstd);
  cudaLaunchCheck();
}

extern "C" void group_norm_backward_cuda(int64_t n, int64_t c, int64_t hw, int64_t groups,
                                         const float *x, const float *gamma, const float *mean,
                                         const float *rstd, const float *dy, float *dx,
                                         float *dgamma, float *dbeta, cudaStream_t stream) {
  masa_assert(groups > 0 && c % groups == 0 && hw > 0);
  if (n * c <= 0 || (!dx && !dgamma && !dbeta)) return;
  double *ds = (double *)workspace_alloc((size_t)(2 * n * c) * sizeof(double), stream);
  double *db = ds + n * c;
  plane_dot_kernel<<<blocks_for(n * c, 1), REDUCE_THREADS, 0, stream>>>(n * c, hw, x, dy, ds, db);
  cudaLaunchCheck();
  if (dgamma || dbeta) {
    group_norm_param_kernel<<<blocks_for(c, NORM_THREADS), NORM_THREADS, 0, stream>>>(
        n, c, groups, mean, rstd, ds, db, dgamma, dbeta);
    cudaLaunchCheck();
  }
  if (dx) {
    group_norm_dx_kernel<<<blocks_for(n * groups, 1), NORM_THREADS, 0, stream>>>(
        n, c, hw, groups, x, gamma, mean, rstd, dy, ds, db, dx);
    cudaLaunchCheck();
  }
  cudaCheck(cudaFreeAsync(ds, stream));
}

// ---- LayerNorm2d ----

// One thread per pixel walks the c channels in order (coalesced across neighbouring pixels), with
// exactly the CPU's double arithmetic: mean / rstd / y match the CPU bit for bit.
static __global__ void layer_norm2d_forward_kernel(int64_t n, int64_t c, int64_t hw, float eps,
                                                   const float *x, const float *gamma,
                                                   const float *beta, float *y, float *mean,
                                                   float *rstd) {
  GRID_STRIDE(idx, n * hw) {
    const int64_t b = idx / hw, p = idx % hw;
    const float *xb = x + b * c * hw + p;
    float *yb = y + b * c * hw + p;
    double mu = 0.0, v = 0.0;
    for (int64_t ch = 0; ch < c; ch++) mu = __dadd_rn(mu, (double)xb[ch * hw]);
    mu = __ddiv_rn(mu, (double)c);
    for (int64_t ch = 0; ch < c; ch++) {
      double t = __dsub_rn((double)xb[ch * hw], mu);
      v = __dadd_rn(v, __dmul_rn(t, t));
    }
    const double r = 1.0 / sqrt(v / (double)c + (double)eps);
    mean[idx] = (float)mu;
    rstd[idx] = (float)r;
    for (int64_t ch = 0; ch < c; ch++) {
      const double gm = gamma ? (double)gamma[ch] : 1.0, bt = beta ? (double)beta[ch] : 0.0;
      yb[ch * hw] =
          (float)__dadd_rn(__dmul_rn(__dmul_rn(__dsub_rn((double)xb[ch * hw], mu), r), gm), bt);
    }
  }
}

// One block of LN_BLOCK threads per (image, block of LN_BLOCK pixels), one thread per pixel:
// dx per pixel exactly as the CPU; parameter partials per (pixel block, channel) through
// block_sum2 (stage 1), summed over blocks in order by layer_norm2d_param_kernel (stage 2).
static __global__ void layer_norm2d_backward_kernel(int64_t n, int64_t c, int64_t hw,
                                                    const float *x, const float *gamma,
                                                    const float *mean, const float *rstd,
                                                    const float *dy, float *dx, double *pg,
                                                    double *pb) {
  __shared__ double sh[2 * LN_BLOCK];
  const int64_t nblk = (hw + LN_BLOCK - 1) / LN_BLOCK;
  for (int64_t bk = blockIdx.x; bk < n * nblk; bk += gridDim.x) {
    const int64_t b = bk / nblk, p = (bk % nblk) * LN_BLOCK + threadIdx.x;
    const bool valid = p < hw;
    const int64_t base = b * c * hw + (valid ? p : 0);
    const double mb = valid ? (double)mean[b * hw + p] : 0.0;
    const double rb = valid ? (double)rstd[b * hw + p] : 0.0;
    // Recover the exact mean from the float32 one, as the CPU does.
    double mu = 0.0;
    if (valid) {
      for (int64_t ch = 0; ch < c; ch++)
        mu = __dadd_rn(mu, __dsub_rn((double)x[base + ch * hw], mb));
      mu = __dadd_rn(mb, __ddiv_rn(mu, (double)c));
    }
    double A = 0.0, B = 0.0;
    for (int64_t ch = 0; ch < c; ch++) {  // uniform trip count: block_sum2 inside
      const double gm = gamma ? (double)gamma[ch] : 1.0;
      double d = 0.0, xh = 0.0;
      if (valid) {
        d = (double)dy[base + ch * hw];
        xh = __dmul_rn(__dsub_rn((double)x[base + ch * hw], mu), rb);
        A = __dadd_rn(A, __dmul_rn(gm, d));
        B = __dadd_rn(B, __dmul_rn(__dmul_rn(gm, d), xh));
      }
      if (pg) {
        double sg = __dmul_rn(d, xh), sb = d;
        block_sum2(&sg, &sb, sh);
        if (threadIdx.x == 0) {
          pg[bk * c + ch] = sg;
          pb[bk * c + ch] = sb;
        }
      }
    }
    if (dx && valid) {
      A = __ddiv_rn(A, (double)c);
      B = __ddiv_rn(B, (double)c);
      for (int64_t ch = 0; ch < c; ch++) {
        const double gm = gamma ? (double)gamma[ch] : 1.0;
        const double xh = __dmul_rn(__dsub_rn((double)x[base + ch * hw], mu), rb);
        const double gdy = __dmul_rn(gm, (double)dy[base + ch * hw]);
        const double g = __dmul_rn(rb, __dsub_rn(__dsub_rn(gdy, A), __dmul_rn(xh, B)));
        dx[base + ch * hw] = __fadd_rn(dx[base + ch * hw], (float)g);
      }
    }
  }
}

static __global__ void layer_norm2d_param_kernel(int64_t nb, int64_t c, const double *pg,
                                                 const double *pb, float *dgamma, float *dbeta) {
  GRID_STRIDE(ch, c) {
    double sg = 0.0, sb = 0.0;
    for (int64_t bk = 0; bk < nb; bk++) {
      sg = __dadd_rn(sg, pg[bk * c + ch]);
      sb = __dadd_rn(sb, pb[bk * c + ch]);
    }
    if (dgamma) dgamma[ch] = __fadd_rn(dgamma[ch], (float)sg);
    if (dbeta) dbeta[ch] = __fadd_rn(dbeta[ch], (float)sb);
  }
}

extern "C" void layer_norm2d_forward_cuda(int64_t n, int64_t c, int64_t hw, float eps,
                                          const float *x, const float *gamma, const float *beta,
                                          float *y, float *mean, float *rstd,
                                          cudaStream_t stream) {
  masa_assert(c > 0 && hw > 0);
  if (n <= 0) return;
  layer_norm2d_forward_kernel<<<blocks_for(n * hw, NORM_THREADS), NORM_THREADS, 0, stream>>>(
      n, c, hw, eps, x, gamma, beta, y, mean, rstd);
  cudaLaunchCheck();
}

extern "C" void layer_norm2d_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                           const float *gamma, const float *mean,
                                           const float *rstd, const float *dy, float *dx,
                                           float *dgamma, float *dbeta, cudaStream_t stream) {
  masa_assert(c > 0 && hw > 0);
  const int want_params = dgamma || dbeta;
  if (n <= 0 || (!dx && !want_params)) return;
  const int64_t nb = n * ((hw + LN_BLOCK - 1) / LN_BLOCK);
  double *pg = NULL, *pb = NULL;
  if (want_params) {
    pg = (double *)workspace_alloc((size_t)(2 * nb * c) * sizeof(double), stream);
    pb = pg + nb * c;
  }
  layer_norm2d_backward_kernel<<<blocks_for(nb, 1), LN_BLOCK, 0, stream>>>(n, c, hw, x, gamma, mean,
                                                                          rstd, dy, dx, pg, pb);
  cudaLaunchCheck();
  if (want_params) {
    layer_norm2d_param_kernel<<<blocks_for(c, NORM_THREADS), NORM_THREADS, 0, stream>>>(
        nb, c, pg, pb, dgamma, dbeta);
    cudaLaunchCheck();
    cudaCheck(cudaFreeAsync(pg, stream));
  }
}

// ---- channel affine (frozen BatchNorm) ----

static __global__ void channel_affine_forward_kernel(int64_t total, int64_t c, int64_t hw,
                                                     const float *x, const float *scale,
                                                     const float *shift, float *y) {
  GRID_STRIDE(i, total) {
    const int64_t ch = (i / hw) % c;
    y[i] = __fadd_rn(__fmul_rn(x[i], scale[ch]), shift[ch]);
  }
}

static __global__ void channel_affine_backward_kernel(int64_t total, int64_t c, int64_t hw,
                                                      const float *scale, const float *dy,
                                                      float *dx) {
  GRID_STRIDE(i, total) {
    const int64_t ch = (i / hw) % c;
    dx[i] = __fadd_rn(dx[i], __fmul_rn(dy[i], scale[ch]));
  }
}

extern "C" void channel_affine_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                            const float *scale, const float *shift, float *y,
                                            cudaStream_t stream) {
  const int64_t total = n * c * hw;
  if (total <= 0) return;
  channel_affine_forward_kernel<<<blocks_for(total, NORM_THREADS), NORM_THREADS, 0, stream>>>(
      total, c, hw, x, scale, shift, y);
  cudaLaunchCheck();
}

extern "C" void channel_affine_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *scale,
                                             const float *dy, float *dx, cudaStream_t stream) {
  const int64_t total = n * c * hw;
  if (total <= 0 || !dx) return;
  channel_affine_backward_kernel<<<blocks_for(total, NORM_THREADS), NORM_THREADS, 0, stream>>>(
      total, c, hw, scale, dy, dx);
  cudaLaunchCheck();
}

// ---- BatchNorm: training ----

// One block per channel over its n * hw values. Forward (dy == NULL): buf[1 + ch] = sum(x),
// buf[1 + c + ch] = sum(x^2). Backward: sum(dy), sum(dy * (x - mean)) * rstd, and the LOCAL
// parameter gradients (the block owns channel ch: no race). buf[0] = n * hw.
static __global__ void batch_norm_stats_kernel(int64_t n, int64_t c, int64_t hw, const float *x,
                                               const float *dy, const float *save_mean,
                                               const float *save_rstd, double *buf, float *dgamma,
                                               float *dbeta) {
  __shared__ double sh[2 * REDUCE_THREADS];
  const int64_t count = n * hw;
  if (blockIdx.x == 0 && threadIdx.x == 0) buf[0] = (double)count;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const double mu = dy ? (double)save_mean[ch] : 0.0;
    double s = 0.0, q = 0.0;
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const int64_t off = ((j / hw) * c + ch) * hw + j % hw;
      if (dy) {
        double d = dy[off];
        s = __dadd_rn(s, d);
        q = __dadd_rn(q, __dmul_rn(d, __dsub_rn((double)x[off], mu)));
      } else {
        double v = x[off];
        s = __dadd_rn(s, v);
        q = __dadd_rn(q, __dmul_rn(v, v));
      }
    }
    block_sum2(&s, &q, sh);
    if (threadIdx.x == 0) {
      if (dy) q = __dmul_rn(q, (double)save_rstd[ch]);
      buf[1 + ch] = s;
      buf[1 + c + ch] = q;
      if (dgamma) dgamma[ch] = __fadd_rn(dgamma[ch], (float)q);
      if (dbeta) dbeta[ch] = __fadd_rn(dbeta[ch], (float)s);
    }
  }
}

static __global__ void batch_norm_finalize_kernel(int64_t c, float eps, float momentum,
                                                  const double *buf, float *save_mean,
                                                  float *save_rstd, float *running_mean,
                                                  float *running_var) {
  GRID_STRIDE(ch, c) {
    const double N = buf[0];
    const double mu = __ddiv_rn(buf[1 + ch], N);
    double var = __ddiv_rn(__dsub_rn(buf[1 + c + ch], __dmul_rn(buf[1 + ch], mu)), N);
    if (var < 0.0) var = 0.0;
    save_mean[ch] = (float)mu;
    save_rstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
    const double keep = __dsub_rn(1.0, (double)momentum);
    if (running_mean)
      running_mean[ch] = (float)__dadd_rn(__dmul_rn(keep, (double)running_mean[ch]),
                                          __dmul_rn((double)momentum, mu));
    if (running_var)
      running_var[ch] = (float)__dadd_rn(
          __dmul_rn(keep, (double)running_var[ch]),
          __ddiv_rn(__dmul_rn(__dmul_rn((double)momentum, var), N), __dsub_rn(N, 1.0)));
  }
}

static __global__ void batch_norm_apply_kernel(int64_t total, int64_t c, int64_t hw,
                                               const float *x, const float *gamma,
                                               const float *beta, const float *save_mean,
                                               const float *save_rstd, float *y) {
  GRID_STRIDE(i, total) {
    const int64_t ch = (i / hw) % c;
    const float scale = (float)__dmul_rn((double)save_rstd[ch], gamma ? (double)gamma[ch] : 1.0);
    const float shift = beta ? beta[ch] : 0.0f;
    y[i] = __fadd_rn(__fmul_rn(__fsub_rn(x[i], save_mean[ch]), scale), shift);
  }
}

// Per channel dx = fk * dy + c1 * (x - mean) + c0 (the CPU's float coefficients).
static __global__ void batch_norm_coef_kernel(int64_t c, const float *gamma,
                                              const float *save_rstd, const double *buf,
                                              float *coef) {
  GRID_STRIDE(ch, c) {
    const double N = buf[0], r = save_rstd[ch];
    const double k = __dmul_rn(r, gamma ? (double)gamma[ch] : 1.0);
    const double mdy = __ddiv_rn(buf[1 + ch], N), mdyx = __ddiv_rn(buf[1 + c + ch], N);
    coef[3 * ch] = (float)k;
    coef[3 * ch + 1] = (float)__dmul_rn(__dmul_rn(-k, r), mdyx);
    coef[3 * ch + 2] = (float)__dmul_rn(-k, mdy);
  }
}

static __global__ void batch_norm_dx_kernel(int64_t total, int64_t c, int64_t hw, const float *x,
                                            const float *save_mean, const float *coef,
                                            const float *dy, float *dx) {
  GRID_STRIDE(i, total) {
    const int64_t ch = (i / hw) % c;
    const float *k = coef + 3 * ch;
    const float centred = __fsub_rn(x[i], save_mean[ch]);
    const float t = __fadd_rn(__fadd_rn(__fmul_rn(k[0], dy[i]), __fmul_rn(k[1], centred)), k[2]);
    dx[i] = __fadd_rn(dx[i], t);
  }
}

// Runs the hook on a host copy of buf (1 + 2c doubles); returns the global count buf[0].
static double batch_norm_sync(double *buf, int64_t c, bn_allreduce_fn sync, void *sync_ctx,
                              cudaStream_t stream) {
  const size_t bytes = (size_t)(1 + 2 * c) * sizeof(double);
  double *h = (double *)mallocCheck(bytes);
  cudaCheck(cudaMemcpyAsync(h, buf, bytes, cudaMemcpyDeviceToHost, stream));
  cudaCheck(cudaStreamSynchronize(stream));
  sync(h, 1 + 2 * c, sync_ctx);
  cudaCheck(cudaMemcpyAsync(buf, h, bytes, cudaMemcpyHostToDevice, stream));
  cudaCheck(cudaStreamSynchronize(stream));  // h is pageable and freed next
  const double N = h[0];
  free(h);
  return N;
}

extern "C" void batch_norm_train_forward_cuda(int64_t n, int64_t c, int64_t hw, float eps,
                                              float momentum, const float *x, const float *gamma,
                                              const float *beta, float *y, float *save_mean,
                                              float *save_rstd, float *running_mean,
                                              float *running_var, bn_allreduce_fn sync,
                                              void *sync_ctx, cudaStream_t stream) {
  masa_assert(c > 0 && n >= 0 && hw > 0);
  double *buf = (double *)workspace_alloc((size_t)(1 + 2 * c) * sizeof(double), stream);
  batch_norm_stats_kernel<<<blocks_for(c, 1), REDUCE_THREADS, 0, stream>>>(
      n, c, hw, x, NULL, NULL, NULL, buf, NULL, NULL);
  cudaLaunchCheck();
  const double N = sync ? batch_norm_sync(buf, c, sync, sync_ctx, stream) : (double)(n * hw);
  // PyTorch refuses training BN with one value per channel (unbiased variance undefined).
  masa_assert(N > 1.0);
  batch_norm_finalize_kernel<<<blocks_for(c, NORM_THREADS), NORM_THREADS, 0, stream>>>(
      c, eps, momentum, buf, save_mean, save_rstd, running_mean, running_var);
  cudaLaunchCheck();
  const int64_t total = n * c * hw;
  if (total > 0) {
    batch_norm_apply_kernel<<<blocks_for(total, NORM_THREADS), NORM_THREADS, 0, stream>>>(
        total, c, hw, x, gamma, beta, save_mean, save_rstd, y);
    cudaLaunchCheck();
  }
  cudaCheck(cudaFreeAsync(buf, stream));
}

extern "C" void batch_norm_train_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                               const float *gamma, const float *save_mean,
                                               const float *save_rstd, const float *dy, float *dx,
                                               float *dgamma, float *dbeta, bn_allreduce_fn sync,
                                               void *sync_ctx, cudaStream_t stream) {
  masa_assert(c > 0 && n >= 0 && hw > 0);
  const size_t buf_bytes = (size_t)(1 + 2 * c) * sizeof(double);
  char *ws = (char *)workspace_alloc(buf_bytes + (size_t)(3 * c) * sizeof(float), stream);
  double *buf = (double *)ws;
  float *coef = (float *)(ws + buf_bytes);
  batch_norm_stats_kernel<<<blocks_for(c, 1), REDUCE_THREADS, 0, stream>>>(
      n, c, hw, x, dy, save_mean, save_rstd, buf, dgamma, dbeta);
  cudaLaunchCheck();
  // Always called when given, even without dx: the hook is a collective every rank must enter.
  const double N = sync ? batch_norm_sync(buf, c, sync, sync_ctx, stream) : (double)(n * hw);
  const int64_t total = n * c * hw;
  if (dx) {
    masa_assert(N > 0.0);
    batch_norm_coef_kernel<<<blocks_for(c, NORM_THREADS), NORM_THREADS, 0, stream>>>(
        c, gamma, save_rstd, buf, coef);
    cudaLaunchCheck();
    if (total > 0) {
      batch_norm_dx_kernel<<<blocks_for(total, NORM_THREADS), NORM_THREADS, 0, stream>>>(
          total, c, hw, x, save_mean, coef, dy, dx);
      cudaLaunchCheck();
    }
  }
  cudaCheck(cudaFreeAsync(ws, stream));
}
