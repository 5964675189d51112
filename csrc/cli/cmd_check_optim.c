// GPU check, optimizer and tracking losses: the gradient sum of squares (odd sizes, block
// boundaries, NaN / Inf), clipping, the SGD and AdamW element-wise updates over several steps,
// optim_step end to end on a param table on the GPU against the same on the CPU, and both
// tracking losses (kernels/optim.cu, kernels/losses.cu) against their CPU twins. Tolerances are
// stated per row with their reason; "exact" means the kernel repeats the CPU's float operations
// in the same order (the _rn intrinsics: no FMA contraction).
#ifdef MASA_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "core/device.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels.h"
#include "ops/ops.h"
#include "train/dispatch_train.h"
#include "train/losses.h"
#include "train/optim.h"

// One table row for a scalar (double) result. NaN equals NaN, Inf equals Inf of the same sign.
static void cmp_scalar(check_state *st, const char *name, double got, double ref, double atol,
                       double rtol) {
  int same_special = (isnan(got) && isnan(ref)) || (isinf(ref) && got == ref);
  double e = same_special ? 0.0 : fabs(got - ref);
  int ok = same_special || e <= atol + rtol * fabs(ref);
  st->total++;
  if (!ok) st->failures++;
  printf("%-40s %10d %11.3g %11.3g %9.1g+%.1g*|ref| %s\n", name, 1, e,
         ref != 0 && isfinite(ref) ? e / fabs(ref) : 0.0, atol, rtol, ok ? "pass" : "FAIL");
}

// n floats of host memory (no guard: the buffers of a param table) against the reference.
static void cmp_plain(check_state *st, const char *name, const float *got, const float *ref,
                      int64_t n, double atol, double rtol) {
  float *h = mallocCheck((size_t)(n + GUARD) * sizeof(float));
  memcpy(h, got, (size_t)n * sizeof(float));
  for (int64_t i = n; i < n + GUARD; i++) h[i] = SENTINEL;  // nothing to guard here
  gpu_check_compare(st, name, h, ref, n, atol, rtol);
  free(h);
}

// ---- gradient norm and clipping ----

static void check_sumsq(check_state *st, int64_t n, int special, uint64_t seed) {
  float *g = gpu_check_random(n, seed, 201);
  for (int64_t i = 0; i < n; i++) g[i] *= 3.0f;
  const char *what = "";
  if (special == 1 && n > 2) g[n / 2] = NAN, what = " (one NaN)";
  if (special == 2 && n > 2) g[n - 1] = -INFINITY, what = " (one -Inf)";
  float *dG = gpu_check_dev_guarded(g, n);
  double ref = grad_sumsq_cpu(g, n), got = grad_sumsq_cuda(dG, n, 0);
  char name[96];
  // n positive terms, exact products, summed in double in another order: each side is within
  // about n * 2^-53 of the exact sum (relative), so they agree to 2 n 2^-53 (2.2e-10 at 1e6).
  snprintf(name, sizeof name, "grad_sumsq n=%lld%s", (long long)n, what);
  cmp_scalar(st, name, got, ref, 0, 2.3e-16 * (double)(n > 4 ? n : 4));

  // Clipping to a third of the norm: the coefficient from each side's norm (float32, as torch),
  // then one float multiply per element: exact when the coefficients agree, and they do unless
  // the double norms straddle a float rounding boundary (the row says which).
  if (!special) {
    double cr = clip_coef(sqrt(ref), sqrt(ref) / 3), cg = clip_coef(sqrt(got), sqrt(ref) / 3);
    float *h = gpu_check_copy(g, n);
    clip_grads(h, n, sqrt(ref), sqrt(ref) / 3);
    if (cg != 1.0) ew_scale_cuda(n, (float)cg, dG, 0);
    snprintf(name, sizeof name, "clip n=%lld coef %.6g%s", (long long)n, cr, cr == cg ? "" : " (coef 1 ulp)");
    gpu_check_cmp(st, name, dG, h, n, 0, cr == cg ? 0 : 2e-7);
    free(h);
  }
  cuda_free(dG);
  free(g);
}

// ---- SGD / AdamW updates ----

static void check_sgd(check_state *st, int64_t n, double wd, double momentum, uint64_t seed) {
  float *p = gpu_check_random(n, seed, 211), *buf = gpu_check_random(n, seed, 212);
  float *dP = gpu_check_dev_guarded(p, n), *dB = gpu_check_dev_guarded(buf, n);
  char name[96];
  for (int step = 0; step < 3; step++) {
    float *g = gpu_check_random(n, seed, 213 + (uint64_t)step);
    float *dG = gpu_check_dev_guarded(g, n);
    double lr = 0.08 / (1 + step);
    sgd_update_cpu(p, g, buf, n, lr, wd, momentum, step == 0);
    sgd_update_cuda(dP, dG, dB, n, lr, wd, momentum, step == 0, 0);
    // Exact: the same float multiply-adds in the same order, rounded separately.
    snprintf(name, sizeof name, "sgd n=%lld wd=%g m=%g step %d p", (long long)n, wd, momentum, step);
    gpu_check_cmp(st, name, dP, p, n, 0, 0);
    if (momentum != 0) {
      snprintf(name, sizeof name, "sgd n=%lld wd=%g m=%g step %d buf", (long long)n, wd, momentum, step);
      gpu_check_cmp(st, name, dB, buf, n, 0, 0);
    }
    cuda_free(dG);
    free(g);
  }
  cuda_free(dP), cuda_free(dB);
  free(p), free(buf);
}

static void check_adamw(check_state *st, int64_t n, double wd, uint64_t seed) {
  float *p = gpu_check_random(n, seed, 221), *m = callocCheck((size_t)n + 1, sizeof(float));
  float *v = callocCheck((size_t)n + 1, sizeof(float));
  float *dP = gpu_check_dev_guarded(p, n), *dM = gpu_check_dev_guarded(NULL, n);
  float *dV = gpu_check_dev_guarded(NULL, n);
  const int64_t steps[] = {1, 2, 3, 10, 1000};
  char name[96];
  for (int k = 0; k < 5; k++) {
    float *g = gpu_check_random(n, seed, 222 + (uint64_t)k);
    if (k == 4)  // tiny gradients: v near eps territory
      for (int64_t i = 0; i < n; i++) g[i] *= 1e-6f;
    float *dG = gpu_check_dev_guarded(g, n);
    adamw_update_cpu(p, g, m, v, n, 1e-3, wd, 0.9, 0.999, 1e-8, steps[k]);
    adamw_update_cuda(dP, dG, dM, dV, n, 1e-3, wd, 0.9, 0.999, 1e-8, steps[k], 0);
    // Exact: same float operations and order; sqrt and divide are IEEE-rounded on both sides.
    snprintf(name, sizeof name, "adamw n=%lld wd=%g t=%lld p", (long long)n, wd, (long long)steps[k]);
    gpu_check_cmp(st, name, dP, p, n, 0, 0);
    snprintf(name, sizeof name, "adamw n=%lld wd=%g t=%lld m", (long long)n, wd, (long long)steps[k]);
    gpu_check_cmp(st, name, dM, m, n, 0, 0);
    snprintf(name, sizeof name, "adamw n=%lld wd=%g t=%lld v", (long long)n, wd, (long long)steps[k]);
    gpu_check_cmp(st, name, dV, v, n, 0, 0);
    cuda_free(dG);
    free(g);
  }
  cuda_free(dP), cuda_free(dM), cuda_free(dV);
  free(p), free(m), free(v);
}

// ---- optim_step end to end (param table on the GPU) ----

static void make_table(param_table *t, uint64_t seed) {
  static const struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    int trainable;
  } ent[] = {
      {"a.conv.weight", 4, {64, 33, 3, 3}, 1}, {"a.conv.bias", 1, {64}, 1},
      {"a.bn.running_mean", 1, {64}, 0},       {"a.gn.weight", 1, {64}, 1},
      {"a.gn.bias", 1, {64}, 1},               {"b.fc.weight", 2, {1024, 257}, 1},
      {"b.fc.bias", 1, {1024}, 1},
  };
  param_table_init(t);
  for (size_t i = 0; i < sizeof ent / sizeof ent[0]; i++)
    param_table_add(t, ent[i].name, ent[i].ndim, ent[i].shape, ent[i].trainable);
  param_table_alloc(t);
  rng_fill_uniform(t->params, (int64_t)t->total, -0.5f, 0.5f, seed, 231);
}

static void check_optim_step(check_state *st, optim_kind kind, int no_decay, uint64_t seed) {
  const device cuda = {DEV_CUDA, 0, NULL};
  param_table c, g;
  make_table(&c, seed);
  make_table(&g, seed);
  param_table_to_device(&g, &cuda);
  optim_opts o = {kind, 0.05, 0.9, 0.9, 0.999, 1e-8, 1e-2, no_decay, 5.0, 5};
  optim oc, og;
  optim_init(&oc, &o, &c);
  optim_init(&og, &o, &g);
  const int64_t ntr = (int64_t)c.trainable_total, total = (int64_t)c.total;
  float *grads = mallocCheck((size_t)ntr * sizeof(float));
  float *h = mallocCheck((size_t)total * sizeof(float));
  char name[96];
  for (int s = 0; s < 3; s++) {
    rng_fill_normal(grads, ntr, 0.0f, 0.05f, seed, 240 + (uint64_t)s);  // norm ~ 25: clips
    memcpy(c.grads, grads, (size_t)ntr * sizeof(float));
    dev_upload(&cuda, g.grads, grads, (size_t)ntr * sizeof(float));
    optim_step_info ic, ig;
    optim_step(&oc, &c, 0.05, 1.0, &ic);
    optim_step(&og, &g, 0.05, 1.0, &ig);
    snprintf(name, sizeof name, "optim_step %s nd=%d step %d norm", optim_kind_name(kind), no_decay, s);
    // sqrt halves the sum's relative difference (n ~ 2.8e5: < 4e-11, see grad_sumsq).
    cmp_scalar(st, name, ig.grad_norm, ic.grad_norm, 0, 1e-10);
    // The update is exact given the same clip coefficient (float32, from the norm); a norm on a
    // float rounding boundary moves it one ulp: 2.4e-7 relative on the gradients, less on the
    // parameters and moments after a step (the tolerance covers it).
    dev_download(&cuda, h, g.params, (size_t)total * sizeof(float));
    snprintf(name, sizeof name, "optim_step %s nd=%d step %d params", optim_kind_name(kind), no_decay, s);
    cmp_plain(st, name, h, c.params, total, 1e-7, 1e-6);
    dev_download(&cuda, h, g.moment1, (size_t)ntr * sizeof(float));
    snprintf(name, sizeof name, "optim_step %s nd=%d step %d moment1", optim_kind_name(kind), no_decay, s);
    cmp_plain(st, name, h, c.moment1, ntr, 1e-9, 1e-6);
    if (c.moment2) {
      dev_download(&cuda, h, g.moment2, (size_t)ntr * sizeof(float));
      snprintf(name, sizeof name, "optim_step %s nd=%d step %d moment2", optim_kind_name(kind), no_decay, s);
      cmp_plain(st, name, h, c.moment2, ntr, 1e-12, 1e-6);
    }
  }
  free(grads), free(h);
  optim_free(&oc), optim_free(&og);
  param_table_free(&c), param_table_free(&g);
}

// ---- tracking losses ----

// which 0: unbiased contrast, 1: margin L2 (cfg). Gradients accumulate onto random values.
static void check_loss(check_state *st, int which, int64_t nk, int64_t nr, int64_t d,
                       const margin_l2_cfg *cfg, const char *label, uint64_t seed) {
  float *key = gpu_check_random(nk * d, seed, 251), *ref = gpu_check_random(nr * d, seed, 252);
  for (int64_t i = 0; i < nk * d; i++) key[i] *= 0.5f;
  for (int64_t i = 0; i < nr * d; i++) ref[i] *= 0.5f;
  float *dk = gpu_check_random(nk * d, seed, 253), *dr = gpu_check_random(nr * d, seed, 254);
  for (int64_t i = 0; i < nk * d; i++) dk[i] *= 0.01f;
  for (int64_t i = 0; i < nr * d; i++) dr[i] *= 0.01f;
  // Key i matches ref i and, every third key, ref i + nk too; the last key row has no positive.
  float *target = callocCheck((size_t)(nk * nr + 1), sizeof(float));
  for (int64_t i = 0; i + 1 < nk || (nk == 1 && i < 1); i++) {
    if (i < nr) target[i * nr + i] = 1.0f;
    if (i % 3 == 0 && i + nk < nr) target[i * nr + i + nk] = 1.0f;
  }
  float *dKey = gpu_check_dev_guarded(key, nk * d), *dRef = gpu_check_dev_guarded(ref, nr * d);
  float *dDk = gpu_check_dev_guarded(dk, nk * d), *dDr = gpu_check_dev_guarded(dr, nr * d);
  double lc, lg;
  const float weight = 0.25f;
  if (which == 0) {
    lc = unbiased_contrast_loss(nk, nr, d, key, ref, target, weight, dk, dr);
    lg = unbiased_contrast_loss_cuda(nk, nr, d, dKey, dRef, target, weight, dDk, dDr, 0);
  } else {
    lc = margin_l2_loss(nk, nr, d, key, ref, target, cfg, weight, dk, dr);
    lg = margin_l2_loss_cuda(nk, nr, d, dKey, dRef, target, cfg, weight, dDk, dDr, 0);
  }
  char name[96];
  // Similarities are FP32 GEMMs over d in another order than OpenBLAS (~1e-7 relative), the
  // exponentials / row sums in double: the loss to 1e-5 relative; gradients are sums of nr (or
  // nk) such terms times embeddings of ~0.25: 1e-6 absolute + 1e-4 relative. Margin: the hard
  // negatives are picked on the host from the GPU's predictions; a different pick would show as
  // a gross mismatch (it needs two costs within ~1e-7 of each other at the cut).
  snprintf(name, sizeof name, "%s loss", label);
  cmp_scalar(st, name, lg, lc, 1e-7, 1e-5);
  snprintf(name, sizeof name, "%s dkey (accumulate)", label);
  gpu_check_cmp(st, name, dDk, dk, nk * d, 1e-6, 1e-4);
  snprintf(name, sizeof name, "%s dref (accumulate)", label);
  gpu_check_cmp(st, name, dDr, dr, nr * d, 1e-6, 1e-4);
  cuda_free(dKey), cuda_free(dRef), cuda_free(dDk), cuda_free(dDr);
  free(key), free(ref), free(dk), free(dr), free(target);
}

void gpu_check_optim(check_state *st, uint64_t seed) {
  const int64_t sizes[] = {1, 3, 65536, 65537, 1000007};
  for (int i = 0; i < 5; i++) check_sumsq(st, sizes[i], 0, seed);
  check_sumsq(st, 1000007, 1, seed);
  check_sumsq(st, 1000007, 2, seed);

  const int64_t upd[] = {1, 3, 1000007};
  for (int i = 0; i < 3; i++) {
    check_sgd(st, upd[i], 1e-4, 0.9, seed);  // the recipe
    check_sgd(st, upd[i], 0.0, 0.0, seed);   // plain SGD
    check_adamw(st, upd[i], 0.05, seed);
    check_adamw(st, upd[i], 0.0, seed);
  }
  for (int nd = 0; nd < 2; nd++) {
    check_optim_step(st, OPTIM_SGD, nd, seed);
    check_optim_step(st, OPTIM_ADAMW, nd, seed);
  }

  margin_l2_cfg hard = {0.0f, 0.1f, 3.0f, 1, seed, 3};  // the recipe (configs/masa_r50_sa1b.cfg)
  margin_l2_cfg rnd = {0.0f, 0.1f, 3.0f, 0, seed, 3};
  margin_l2_cfg plain = {0.1f, 0.1f, 0.0f, 1, seed, 3};
  check_loss(st, 0, 1, 1, 256, NULL, "unbiased_contrast 1x1 d256", seed);
  check_loss(st, 0, 3, 7, 5, NULL, "unbiased_contrast 3x7 d5", seed);
  check_loss(st, 0, 37, 149, 256, NULL, "unbiased_contrast 37x149 d256", seed);
  check_loss(st, 0, 128, 513, 256, NULL, "unbiased_contrast 128x513 d256", seed);
  check_loss(st, 1, 1, 1, 256, &hard, "margin_l2 1x1 d256", seed);
  check_loss(st, 1, 3, 7, 5, &plain, "margin_l2 3x7 d5 pos margin", seed);
  check_loss(st, 1, 37, 149, 256, &hard, "margin_l2 37x149 d256 hard", seed);
  check_loss(st, 1, 37, 149, 256, &rnd, "margin_l2 37x149 d256 random", seed);
  check_loss(st, 1, 128, 513, 256, &hard, "margin_l2 128x513 d256 hard", seed);
}
#endif
