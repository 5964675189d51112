// CUDA twins of the tracking losses (train/losses.h): unbiased_contrast_loss and margin_l2_loss
// on one image's embeddings, key (nk, d) and ref (nr, d) on the device, target (nk, nr) in HOST
// memory (it is built on the host; it is uploaded here), gradients accumulated into dkey / dref
// on the device, the loss returned to the host.
//
// Both follow the CPU code step by step: the similarity matrix through gemm_cuda (cuBLAS, FP32
// pedantic), then one block per key row (contrast: row max, fused logsumexp over the positives
// and negatives, the gradient of the row) or element-wise kernels (margin: margins, clamp,
// weights, gradient), then the gradient GEMMs. Row sums are in double with block_reduce.cuh's
// fixed tree (deterministic; the CPU sums in index order, so the two agree to double rounding),
// the per-element arithmetic mirrors the CPU's with the _rn intrinsics.
//
// Hard-negative mining (margin_l2 with neg_pos_ub) runs on the HOST: the clamped predictions
// (nk * nr floats, a few hundred kB at most) are downloaded and margin_l2_weights (losses.c, the
// CPU loss's own selection: a sort with ties to the lower index) picks the kept negatives, whose
// weights are uploaded again. A device top-k would save one round trip per image; it is not worth
// a second implementation of the tie rule.
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define LOSS_THREADS 256
#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

// A bump allocator over one stream-ordered allocation (sub-buffers 256-byte aligned).
typedef struct {
  char *base;
  size_t used, cap;
} loss_ws;

static size_t ws_round(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

static void *ws_take(loss_ws *w, size_t bytes) {
  void *p = w->base + w->used;
  w->used += ws_round(bytes);
  masa_assert(w->used <= w->cap);
  return p;
}

// ---- unbiased contrastive loss ----

// One block per key row i: with np positives (np = 0: the row is dropped, dS row 0),
//   s = S_i - max S_i; den = sum_pos e^s / np + sum_neg e^s; row_loss = -(sum_pos s / np - log den)
//   dS_ij = scale * ((pos ? -1/np : 0) + e^{s_j} / den * (pos ? 1/np : 1))
static __global__ void ucl_rows_kernel(int64_t nr, const float *S, const float *target,
                                       double scale, float *dS, double *row_loss) {
  __shared__ double sh[2 * REDUCE_THREADS];
  __shared__ float shf[REDUCE_THREADS];
  const int64_t i = blockIdx.x;
  const float *s = S + i * nr, *t = target + i * nr;
  float *g = dS + i * nr;
  float mx = -INFINITY;  // fmaxf skips NaN as the CPU's `s > mx` scan does
  double cnt = 0.0;
  for (int64_t j = threadIdx.x; j < nr; j += blockDim.x) {
    if (t[j] > 0.5f) cnt += 1.0;
    mx = fmaxf(mx, s[j]);
  }
  mx = block_max(mx, shf);
  const double np = block_sum(cnt, sh);  // exact: a count
  if (np == 0.0) {  // block-uniform branch
    for (int64_t j = threadIdx.x; j < nr; j += blockDim.x) g[j] = 0.0f;
    if (threadIdx.x == 0) row_loss[i] = 0.0;
    return;
  }
  const double m = (double)mx;
  double den = 0.0, sum_pos = 0.0;
  for (int64_t j = threadIdx.x; j < nr; j += blockDim.x) {
    const double sj = (double)s[j] - m, e = exp(sj);
    if (t[j] > 0.5f) {
      den += e / np;
      sum_pos += sj;
    } else {
      den += e;
    }
  }
  block_sum2(&den, &sum_pos, sh);
  if (threadIdx.x == 0) row_loss[i] = -(sum_pos / np - log(den));
  for (int64_t j = threadIdx.x; j < nr; j += blockDim.x) {
    const double e = exp((double)s[j] - m);
    const int pos = t[j] > 0.5f;
    const double gr = (pos ? -1.0 / np : 0.0) + e / den * (pos ? 1.0 / np : 1.0);
    g[j] = (float)(scale * gr);
  }
}

extern "C" double unbiased_contrast_loss_cuda(int64_t nk, int64_t nr, int64_t d, const float *key,
                                              const float *ref, const float *target, float weight,
                                              float *dkey, float *dref, cudaStream_t stream) {
  if (nk == 0 || nr == 0) return 0.0;
  masa_assert(nk <= 0x7fffffff);
  const int64_t n = nk * nr;
  // Rows with a positive, from the host target (the CPU's count).
  char *has_pos = (char *)mallocCheck((size_t)nk);
  int64_t valid = 0;
  for (int64_t i = 0; i < nk; i++) {
    int64_t np = 0;
    for (int64_t j = 0; j < nr; j++) np += target[i * nr + j] > 0.5f;
    has_pos[i] = np > 0;
    valid += np > 0;
  }
  const double denom_rows = (double)valid + FLT_EPSILON;
  loss_ws w = {NULL, 0, 3 * ws_round((size_t)n * sizeof(float)) + ws_round((size_t)nk * sizeof(double))};
  cudaCheck(cudaMallocAsync((void **)&w.base, w.cap, stream));
  double *row_loss = (double *)ws_take(&w, (size_t)nk * sizeof(double));
  float *T = (float *)ws_take(&w, (size_t)n * sizeof(float));
  float *S = (float *)ws_take(&w, (size_t)n * sizeof(float));
  float *dS = (float *)ws_take(&w, (size_t)n * sizeof(float));
  cudaCheck(cudaMemcpyAsync(T, target, (size_t)n * sizeof(float), cudaMemcpyHostToDevice, stream));
  gemm_cuda(0, 1, nk, nr, d, 1.0f, key, d, ref, d, 0.0f, S, nr, stream);
  ucl_rows_kernel<<<(unsigned)nk, REDUCE_THREADS, 0, stream>>>(nr, S, T, (double)weight / denom_rows,
                                                               dS, row_loss);
  cudaLaunchCheck();
  if (dkey) gemm_cuda(0, 0, nk, d, nr, 1.0f, dS, nr, ref, d, 1.0f, dkey, d, stream);
  if (dref) gemm_cuda(1, 0, nr, d, nk, 1.0f, dS, nr, key, d, 1.0f, dref, d, stream);
  double *h = (double *)mallocCheck((size_t)nk * sizeof(double));
  cudaCheck(cudaMemcpyAsync(h, row_loss, (size_t)nk * sizeof(double), cudaMemcpyDeviceToHost, stream));
  cudaCheck(cudaFreeAsync(w.base, stream));
  cudaCheck(cudaStreamSynchronize(stream));
  double total = 0.0;  // the rows in order, as the CPU adds them
  for (int64_t i = 0; i < nk; i++)
    if (has_pos[i]) total += h[i];
  free(h);
  free(has_pos);
  return (double)weight * total / denom_rows;
}

// ---- margin L2 loss ----

// One block per row: y = x / max(||x||, 1e-12) (F.normalize), norms[r] = ||x|| in double.
static __global__ void normalize_rows_kernel(int64_t d, const float *x, float *y, double *norms) {
  __shared__ double sh[REDUCE_THREADS];
  const int64_t r = blockIdx.x;
  const float *xr = x + r * d;
  float *yr = y + r * d;
  double s = 0.0;
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
    const double v = (double)xr[k];
    s = __dadd_rn(s, __dmul_rn(v, v));
  }
  s = block_sum(s, sh);
  const double nrm = __dsqrt_rn(s);
  if (threadIdx.x == 0) norms[r] = nrm;
  const double inv = __ddiv_rn(1.0, nrm > 1e-12 ? nrm : 1e-12);
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) yr[k] = (float)__dmul_rn((double)xr[k], inv);
}

// dx[r] += (g - y (y.g)) / ||x|| when ||x|| > 1e-12, else g / 1e-12 (one block per row).
static __global__ void normalize_rows_backward_kernel(int64_t d, const float *y,
                                                      const double *norms, const float *g,
                                                      float *dx) {
  __shared__ double sh[REDUCE_THREADS];
  const int64_t r = blockIdx.x;
  const float *yr = y + r * d, *gr = g + r * d;
  float *dxr = dx + r * d;
  const double nrm = norms[r];
  if (nrm > 1e-12) {  // block-uniform branch
    double dot = 0.0;
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x)
      dot = __dadd_rn(dot, __dmul_rn((double)yr[k], (double)gr[k]));
    dot = block_sum(dot, sh);
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x)
      dxr[k] = __fadd_rn(dxr[k], (float)__ddiv_rn(__dsub_rn((double)gr[k], __dmul_rn((double)yr[k], dot)), nrm));
  } else {
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x)
      dxr[k] = __fadd_rn(dxr[k], (float)__ddiv_rn((double)gr[k], 1e-12));
  }
}

// pred = clamp(C - margin, 0, 1); pass = the clamp lets the gradient through (inclusive bounds).
static __global__ void margin_pred_kernel(int64_t n, const float *C, const float *target,
                                          float pos_margin, float neg_margin, float *pred,
                                          unsigned char *pass) {
  GRID_STRIDE(i, n) {
    const int pos = target[i] > 0.5f;
    float p = C[i];
    if (pos && pos_margin > 0) p = __fsub_rn(p, pos_margin);
    if (!pos && neg_margin > 0) p = __fsub_rn(p, neg_margin);
    pass[i] = p >= 0.0f && p <= 1.0f;
    pred[i] = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
  }
}

// out[0] = sum over w of (pred - target)^2 (w NULL: all); one block.
static __global__ void margin_sum_kernel(int64_t n, const float *pred, const float *target,
                                         const unsigned char *w, double *out) {
  __shared__ double sh[REDUCE_THREADS];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    if (!w || w[i]) {
      const double r = __dsub_rn((double)pred[i], target[i] > 0.5f ? 1.0 : 0.0);
      s = __dadd_rn(s, __dmul_rn(r, r));
    }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) out[0] = s;
}

// dC = w && pass ? weight2 (pred - target) / denom : 0, weight2 = 2 weight (the CPU's order).
static __global__ void margin_grad_kernel(int64_t n, const float *pred, const float *target,
                                          const unsigned char *w, const unsigned char *pass,
                                          double weight2, double denom, float *dC) {
  GRID_STRIDE(i, n) {
    float v = 0.0f;
    if ((!w || w[i]) && pass[i])
      v = (float)__ddiv_rn(__dmul_rn(weight2, __dsub_rn((double)pred[i], target[i] > 0.5f ? 1.0 : 0.0)),
                           denom);
    dC[i] = v;
  }
}

extern "C" double margin_l2_loss_cuda(int64_t nk, int64_t nr, int64_t d, const float *key,
                                      const float *ref, const float *target,
                                      const margin_l2_cfg *cfg, float weight, float *dkey,
                                      float *dref, cudaStream_t stream) {
  if (nk == 0 || nr == 0) return 0.0;
  masa_assert(nk <= 0x7fffffff && nr <= 0x7fffffff);
  const int64_t n = nk * nr;
  const size_t fn = (size_t)n * sizeof(float);
  loss_ws w = {NULL, 0,
               ws_round((size_t)(nk + nr + 1) * sizeof(double)) + 3 * ws_round(fn) +
                   2 * ws_round((size_t)n) + 2 * ws_round((size_t)(nk * d) * sizeof(float)) +
                   2 * ws_round((size_t)(nr * d) * sizeof(float))};
  cudaCheck(cudaMallocAsync((void **)&w.base, w.cap, stream));
  double *knorm = (double *)ws_take(&w, (size_t)(nk + nr + 1) * sizeof(double));
  double *rnorm = knorm + nk, *dsum = rnorm + nr;
  float *T = (float *)ws_take(&w, fn), *C = (float *)ws_take(&w, fn);
  float *pred = (float *)ws_take(&w, fn);
  unsigned char *pass = (unsigned char *)ws_take(&w, (size_t)n);
  unsigned char *wdev = (unsigned char *)ws_take(&w, (size_t)n);
  float *kn = (float *)ws_take(&w, (size_t)(nk * d) * sizeof(float));
  float *gk = (float *)ws_take(&w, (size_t)(nk * d) * sizeof(float));
  float *rn = (float *)ws_take(&w, (size_t)(nr * d) * sizeof(float));
  float *gr = (float *)ws_take(&w, (size_t)(nr * d) * sizeof(float));

  cudaCheck(cudaMemcpyAsync(T, target, fn, cudaMemcpyHostToDevice, stream));
  normalize_rows_kernel<<<(unsigned)nk, REDUCE_THREADS, 0, stream>>>(d, key, kn, knorm);
  cudaLaunchCheck();
  normalize_rows_kernel<<<(unsigned)nr, REDUCE_THREADS, 0, stream>>>(d, ref, rn, rnorm);
  cudaLaunchCheck();
  gemm_cuda(0, 1, nk, nr, d, 1.0f, kn, d, rn, d, 0.0f, C, nr, stream);
  margin_pred_kernel<<<blocks_for(n, LOSS_THREADS), LOSS_THREADS, 0, stream>>>(
      n, C, T, cfg->pos_margin, cfg->neg_margin, pred, pass);
  cudaLaunchCheck();

  // Negative selection on the host (see the top of the file).
  int64_t avg = n;
  const unsigned char *wsel = NULL;  // NULL: every element weighs 1
  unsigned char *hw = NULL;
  float *hpred = NULL;
  if (margin_l2_needs_mining(n, target, cfg)) {
    hpred = (float *)mallocCheck(fn);
    hw = (unsigned char *)mallocCheck((size_t)n);
    cudaCheck(cudaMemcpyAsync(hpred, pred, fn, cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    avg = margin_l2_weights(n, target, hpred, cfg, hw);
    cudaCheck(cudaMemcpyAsync(wdev, hw, (size_t)n, cudaMemcpyHostToDevice, stream));
    wsel = wdev;
  }
  const double denom = (double)avg + FLT_EPSILON;
  margin_sum_kernel<<<1, REDUCE_THREADS, 0, stream>>>(n, pred, T, wsel, dsum);
  cudaLaunchCheck();
  if (dkey || dref) {
    float *dC = C;  // C is no longer needed
    margin_grad_kernel<<<blocks_for(n, LOSS_THREADS), LOSS_THREADS, 0, stream>>>(
        n, pred, T, wsel, pass, (double)weight * 2.0, denom, dC);
    cudaLaunchCheck();
    gemm_cuda(0, 0, nk, d, nr, 1.0f, dC, nr, rn, d, 0.0f, gk, d, stream);
    gemm_cuda(1, 0, nr, d, nk, 1.0f, dC, nr, kn, d, 0.0f, gr, d, stream);
    if (dkey) {
      normalize_rows_backward_kernel<<<(unsigned)nk, REDUCE_THREADS, 0, stream>>>(d, kn, knorm, gk,
                                                                                   dkey);
      cudaLaunchCheck();
    }
    if (dref) {
      normalize_rows_backward_kernel<<<(unsigned)nr, REDUCE_THREADS, 0, stream>>>(d, rn, rnorm, gr,
                                                                                   dref);
      cudaLaunchCheck();
    }
  }
  double sum = 0.0;
  cudaCheck(cudaMemcpyAsync(&sum, dsum, sizeof(double), cudaMemcpyDeviceToHost, stream));
  cudaCheck(cudaFreeAsync(w.base, stream));
  cudaCheck(cudaStreamSynchronize(stream));
  free(hpred);
  free(hw);
  return (double)weight * sum / denom;
}
