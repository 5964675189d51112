// Tracking losses (see losses.h). Sums run in double in a fixed order, so results do not depend
// on thread count; sizes are small (a few hundred samples per image).
#include "train/losses.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "ops/gemm.h"

double unbiased_contrast_loss(int64_t nk, int64_t nr, int64_t d, const float *key,
                              const float *ref, const float *target, float weight, float *dkey,
                              float *dref) {
  if (nk == 0 || nr == 0) return 0.0;
  float *S = mallocCheck((size_t)(nk * nr) * sizeof(float));
  gemm_cpu(0, 1, nk, nr, d, 1.0f, key, d, ref, d, 0.0f, S, nr);
  float *dS = callocCheck((size_t)(nk * nr), sizeof(float));
  int64_t valid = 0;
  for (int64_t i = 0; i < nk; i++) {
    const float *t = target + i * nr;
    int64_t np = 0;
    for (int64_t j = 0; j < nr; j++) np += t[j] > 0.5f;
    valid += np > 0;
  }
  double denom_rows = (double)valid + FLT_EPSILON, total = 0.0;
  double *e = mallocCheck((size_t)nr * sizeof(double));
  for (int64_t i = 0; i < nk; i++) {
    const float *s = S + i * nr, *t = target + i * nr;
    int64_t np = 0;
    double mx = -INFINITY;
    for (int64_t j = 0; j < nr; j++) {
      np += t[j] > 0.5f;
      if (s[j] > mx) mx = s[j];
    }
    if (np == 0) continue;
    double den = 0.0, sum_pos = 0.0;
    for (int64_t j = 0; j < nr; j++) {
      e[j] = exp((double)s[j] - mx);
      if (t[j] > 0.5f) {
        den += e[j] / (double)np;
        sum_pos += (double)s[j] - mx;
      } else {
        den += e[j];
      }
    }
    double logden = log(den);
    total += -(sum_pos / (double)np - logden);
    // dL_i/ds_j = -[j in P]/|P| + (e_j / den) * ([j in P] ? 1/|P| : 1)
    double scale = (double)weight / denom_rows;
    for (int64_t j = 0; j < nr; j++) {
      int pos = t[j] > 0.5f;
      double g = (pos ? -1.0 / (double)np : 0.0) + e[j] / den * (pos ? 1.0 / (double)np : 1.0);
      dS[i * nr + j] = (float)(scale * g);
    }
  }
  if (dkey) gemm_cpu(0, 0, nk, d, nr, 1.0f, dS, nr, ref, d, 1.0f, dkey, d);
  if (dref) gemm_cpu(1, 0, nr, d, nk, 1.0f, dS, nr, key, d, 1.0f, dref, d);
  free(e);
  free(S);
  free(dS);
  return (double)weight * total / denom_rows;
}

// Row-normalises x (n, d) as F.normalize: x / max(||x||, 1e-12); keeps the norms for backward.
static float *normalize_rows(int64_t n, int64_t d, const float *x, double *norms) {
  float *y = mallocCheck((size_t)(n * d + 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t k = 0; k < d; k++) s += (double)x[i * d + k] * x[i * d + k];
    double nrm = sqrt(s);
    norms[i] = nrm;
    double inv = 1.0 / (nrm > 1e-12 ? nrm : 1e-12);
    for (int64_t k = 0; k < d; k++) y[i * d + k] = (float)(x[i * d + k] * inv);
  }
  return y;
}

// d/dx of x / max(||x||, eps) applied to g: (g - y (y.g)) / ||x|| when ||x|| > eps, else g / eps.
static void normalize_rows_backward(int64_t n, int64_t d, const float *y, const double *norms,
                                    const float *g, float *dx) {
  for (int64_t i = 0; i < n; i++) {
    const float *yi = y + i * d, *gi = g + i * d;
    if (norms[i] > 1e-12) {
      double dot = 0;
      for (int64_t k = 0; k < d; k++) dot += (double)yi[k] * gi[k];
      for (int64_t k = 0; k < d; k++) dx[i * d + k] += (float)((gi[k] - yi[k] * dot) / norms[i]);
    } else {
      for (int64_t k = 0; k < d; k++) dx[i * d + k] += (float)(gi[k] / 1e-12);
    }
  }
}

typedef struct {
  double cost;
  int64_t idx;
} neg_cost;

static int by_cost_desc(const void *a, const void *b) {
  const neg_cost *x = a, *y = b;
  if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

int margin_l2_needs_mining(int64_t n, const float *target, const margin_l2_cfg *cfg) {
  int64_t num_pos = 0, num_neg = 0;
  for (int64_t i = 0; i < n; i++) {
    int pos = target[i] > 0.5f;
    num_pos += pos;
    num_neg += !pos;
  }
  return cfg->neg_pos_ub > 0 && (double)num_neg / ((double)num_pos + 1e-6) > cfg->neg_pos_ub;
}

int64_t margin_l2_weights(int64_t n, const float *target, const float *pred,
                          const margin_l2_cfg *cfg, unsigned char *w) {
  memset(w, 1, (size_t)n);
  if (!margin_l2_needs_mining(n, target, cfg)) return n;
  int64_t num_pos = 0;
  for (int64_t i = 0; i < n; i++) num_pos += target[i] > 0.5f;
  int64_t num_neg = n - num_pos;
  int64_t keep = (int64_t)((double)num_pos * cfg->neg_pos_ub);
  neg_cost *negs = mallocCheck((size_t)(num_neg + 1) * sizeof(neg_cost));
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++)
    if (!(target[i] > 0.5f)) {
      negs[m].cost = (double)pred[i] * pred[i];
      negs[m].idx = i;
      if (!cfg->hard_mining)  // random subset: order by a counter-based random key
        negs[m].cost = (double)rng_u32(cfg->seed, cfg->stream, (uint64_t)i);
      m++;
      w[i] = 0;
    }
  qsort(negs, (size_t)m, sizeof *negs, by_cost_desc);
  int64_t kept = 0;
  for (int64_t k = 0; k < keep && k < m; k++, kept++) w[negs[k].idx] = 1;
  free(negs);
  return num_pos + kept;
}

double margin_l2_loss(int64_t nk, int64_t nr, int64_t d, const float *key, const float *ref,
                      const float *target, const margin_l2_cfg *cfg, float weight, float *dkey,
                      float *dref) {
  if (nk == 0 || nr == 0) return 0.0;
  int64_t n = nk * nr;
  double *nk_norm = mallocCheck((size_t)nk * sizeof(double));
  double *nr_norm = mallocCheck((size_t)nr * sizeof(double));
  float *kn = normalize_rows(nk, d, key, nk_norm), *rn = normalize_rows(nr, d, ref, nr_norm);
  float *C = mallocCheck((size_t)n * sizeof(float));
  gemm_cpu(0, 1, nk, nr, d, 1.0f, kn, d, rn, d, 0.0f, C, nr);
  float *pred = mallocCheck((size_t)n * sizeof(float));
  unsigned char *w = mallocCheck((size_t)n);
  unsigned char *pass = mallocCheck((size_t)n);  // clamp lets the gradient through
  for (int64_t i = 0; i < n; i++) {
    int pos = target[i] > 0.5f;
    float p = C[i];
    if (pos && cfg->pos_margin > 0) p -= cfg->pos_margin;
    if (!pos && cfg->neg_margin > 0) p -= cfg->neg_margin;
    pass[i] = p >= 0.0f && p <= 1.0f;  // torch.clamp backward: inclusive bounds
    pred[i] = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
  }
  margin_l2_weights(n, target, pred, cfg, w);
  int64_t avg = 0;
  double sum = 0;
  for (int64_t i = 0; i < n; i++)
    if (w[i]) {
      double r = (double)pred[i] - (target[i] > 0.5f ? 1.0 : 0.0);
      sum += r * r;
      avg++;
    }
  double denom = (double)avg + FLT_EPSILON;
  if (dkey || dref) {
    float *dC = callocCheck((size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i++)
      if (w[i] && pass[i])
        dC[i] = (float)((double)weight * 2.0 * ((double)pred[i] - (target[i] > 0.5f ? 1.0 : 0.0)) / denom);
    float *gk = callocCheck((size_t)(nk * d + 1), sizeof(float));
    float *gr = callocCheck((size_t)(nr * d + 1), sizeof(float));
    gemm_cpu(0, 0, nk, d, nr, 1.0f, dC, nr, rn, d, 0.0f, gk, d);
    gemm_cpu(1, 0, nr, d, nk, 1.0f, dC, nr, kn, d, 0.0f, gr, d);
    if (dkey) normalize_rows_backward(nk, d, kn, nk_norm, gk, dkey);
    if (dref) normalize_rows_backward(nr, d, rn, nr_norm, gr, dref);
    free(dC), free(gk), free(gr);
  }
  free(nk_norm), free(nr_norm), free(kn), free(rn), free(C), free(pred), free(w), free(pass);
  return (double)weight * sum / denom;
}
