// Process group: run as one process and under `mpirun -np 2` (ctest registers both). Checks the
// all-reduce used for gradients and for synchronised BatchNorm statistics, and that BatchNorm
// with statistics synchronised across ranks, each rank holding half of a batch, equals
// BatchNorm over the whole batch in one process.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "harness.h"
#include "ops/norm.h"

int main(int argc, char **argv) {
  dist_ctx d;
  dist_init(&d, &argc, &argv);
  char name[64];
  snprintf(name, sizeof name, "test_dist (rank %d of %d)", d.rank, d.world);
  uint64_t seed = test_begin(name, 7);

  double v[3] = {d.rank + 1.0, 2.0 * (d.rank + 1), 0.5};
  dist_allreduce_sum_f64(v, 3, &d);
  double n = d.world;
  check_true("allreduce f64 sums ranks", v[0] == n * (n + 1) / 2 && v[1] == n * (n + 1) && v[2] == 0.5 * n);
  float f[2] = {1.0f, (float)d.rank};
  dist_allreduce_sum_f32(f, 2, &d);
  check_true("allreduce f32 sums ranks", f[0] == (float)n && f[1] == (float)(n * (n - 1) / 2));
  int64_t token = d.rank == 0 ? 424242 : -1;
  dist_broadcast(&token, sizeof token, 0, &d);
  check_true("broadcast from rank 0", token == 424242);

  // Sync BN: the global batch has world*2 images; this rank holds images [2r, 2r+2).
  const int64_t per = 2, C = 5, HW = 3 * 4;
  int64_t total = per * d.world;
  float *xg = malloc((size_t)(total * C * HW) * sizeof(float));
  float *dyg = malloc((size_t)(total * C * HW) * sizeof(float));
  rng_fill_normal(xg, total * C * HW, 0.3f, 2.0f, seed, 1);
  rng_fill_normal(dyg, total * C * HW, 0.0f, 1.0f, seed, 2);
  float gamma[5], beta[5];
  rng_fill_uniform(gamma, C, 0.5f, 1.5f, seed, 3);
  rng_fill_uniform(beta, C, -0.5f, 0.5f, seed, 4);
  // Reference: whole batch, one process.
  float *yg = calloc((size_t)(total * C * HW), sizeof(float));
  float *dxg = calloc((size_t)(total * C * HW), sizeof(float));
  float mg[5], rg[5], rm_g[5] = {0}, rv_g[5] = {1, 1, 1, 1, 1}, dgam_g[5] = {0}, dbet_g[5] = {0};
  batch_norm_train_forward_cpu(total, C, HW, 1e-5f, 0.1f, xg, gamma, beta, yg, mg, rg, rm_g, rv_g, NULL, NULL);
  batch_norm_train_backward_cpu(total, C, HW, xg, gamma, mg, rg, dyg, dxg, dgam_g, dbet_g, NULL, NULL);
  // This rank's half, statistics synchronised.
  int64_t off = d.rank * per * C * HW, nl = per * C * HW;
  float *y = calloc((size_t)nl, sizeof(float)), *dx = calloc((size_t)nl, sizeof(float));
  float m[5], r[5], rm[5] = {0}, rv[5] = {1, 1, 1, 1, 1}, dgam[5] = {0}, dbet[5] = {0};
  batch_norm_train_forward_cpu(per, C, HW, 1e-5f, 0.1f, xg + off, gamma, beta, y, m, r, rm, rv,
                               dist_allreduce_sum_f64, &d);
  batch_norm_train_backward_cpu(per, C, HW, xg + off, gamma, m, r, dyg + off, dx, dgam, dbet,
                                dist_allreduce_sum_f64, &d);
  // Parameter gradients are per-rank partial sums (the trainer all-reduces them with the rest).
  dist_allreduce_sum_f32(dgam, C, &d);
  dist_allreduce_sum_f32(dbet, C, &d);
  // Statistics are accumulated in double in both runs but summed in a different grouping:
  // differences are float32 rounding of O(1) values.
  const char *why = "float32 rounding; same math, different summation grouping";
  check_close("sync BN forward == whole-batch BN", y, yg + off, nl, 1e-5, 1e-5, why);
  check_close("sync BN mean", m, mg, C, 1e-6, 1e-5, why);
  check_close("sync BN rstd", r, rg, C, 1e-6, 1e-5, why);
  check_close("sync BN running mean", rm, rm_g, C, 1e-6, 1e-5, why);
  check_close("sync BN running var (unbiased)", rv, rv_g, C, 1e-6, 1e-5, why);
  check_close("sync BN backward dx == whole-batch", dx, dxg + off, nl, 1e-5, 1e-4, why);
  check_close("sync BN dgamma (after all-reduce)", dgam, dgam_g, C, 1e-4, 1e-5, why);
  check_close("sync BN dbeta (after all-reduce)", dbet, dbet_g, C, 1e-4, 1e-5, why);
  free(xg), free(dyg), free(yg), free(dxg), free(y), free(dx);
  int rc = test_end();
  // Every rank must pass.
  double bad = rc != 0;
  dist_allreduce_sum_f64(&bad, 1, &d);
  dist_finalize(&d);
  return bad > 0 ? 1 : 0;
}
