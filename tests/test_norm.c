// GroupNorm, LayerNorm2d and BatchNorm (training, synchronised across two simulated ranks, and
// frozen / folded into a conv) against PyTorch (tests/oracle_norm.py), with finite differences of
// every backward, guard regions, accumulation into pre-filled gradient buffers and thread-count
// independence of the reductions.
//
// Tolerances (outputs are O(1); gamma ~ 1 +- 0.5):
// - forward y, dx: atol 2e-5, rtol 2e-5. The C code forms (x - mean) * scale + beta in float32
//   from statistics accumulated in double: a few float32 ulps of values up to ~5.
// - dgamma, dbeta: atol 1e-4, rtol 2e-5: double sums of <= 2000 float32 terms, the only error
//   being the float32 rounding of the saved mean / rstd (relative ~1e-7 of sums up to ~50).
// - running stats: atol 1e-6, rtol 1e-6 (double arithmetic on float32 inputs).
// - split-batch sync BN vs one whole-batch call: atol 1e-6, rtol 1e-6 (the same double sums
//   added in a different order; the outputs differ at most by float32 rounding of equal values).
// - finite differences: forward in float32, loss = sum(y * dy) in double; step 1e-2 on inputs of
//   scale ~2: roundoff ~6e-8 * sqrt(numel) / 2e-2 ~ 1e-4 and cubic truncation ~1e-4 relative:
//   atol 3e-3, rtol 3e-3.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "harness.h"
#include "ops/conv.h"
#include "ops/norm.h"

#define GUARD 64
#define PREFILL 0.5f

static uint64_t g_seed;
static const double FD_ATOL = 3e-3, FD_RTOL = 3e-3;
static const float FD_EPS = 1e-2f;
static const char *WHY_Y = "float32 (x - mean) * scale + shift from double statistics";
static const char *WHY_P = "double sums of float32 terms; float32 saved mean / rstd";

static float *meta_of(h5file *f, const char *grp, int64_t want) {
  char name[64];
  snprintf(name, sizeof name, "%s/meta", grp);
  int64_t n;
  float *m = oracle_read_any(f, name, &n, NULL, NULL);
  masa_assert(n == want);
  return m;
}

static float *ds(h5file *f, const char *grp, const char *name, int64_t want) {
  char full[64];
  snprintf(full, sizeof full, "%s/%s", grp, name);
  int64_t n;
  float *p = oracle_read_any(f, full, &n, NULL, NULL);
  masa_assert(want < 0 || n == want);
  return p;
}

static float *grad_buf(int64_t n) {
  float *p = test_alloc_guarded(n, GUARD);
  for (int64_t i = 0; i < n; i++) p[i] = PREFILL;
  return p;
}

// Compares an accumulated gradient (started at PREFILL) with ref, then the guard.
static void check_acc(const char *what, const float *got, const float *ref, int64_t n,
                      double atol, double rtol, const char *why) {
  float *want = mallocCheck((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) want[i] = ref[i] + PREFILL;
  check_close(what, got, want, n, atol, rtol, why);
  check_guard(what, got, n, GUARD);
  free(want);
}

static void check_fwd(const char *what, const float *got, const float *ref, int64_t n,
                      double atol, double rtol, const char *why) {
  check_close(what, got, ref, n, atol, rtol, why);
  check_guard(what, got, n, GUARD);
}

static char *label(char *buf, size_t n, const char *grp, const char *what) {
  snprintf(buf, n, "%s %s", grp, what);
  return buf;
}

// ---- finite differences ----

typedef struct {
  int kind;  // 0 group norm, 1 layer norm 2d, 2 batch norm train
  int64_t n, c, hw, groups;
  float eps;
  float *x, *gamma, *beta, *r, *y, *s1, *s2;
} fd_ctx;

static double fd_loss(void *p) {
  fd_ctx *c = p;
  int64_t ny = c->n * c->c * c->hw;
  if (c->kind == 0)
    group_norm_forward_cpu(c->n, c->c, c->hw, c->groups, c->eps, c->x, c->gamma, c->beta, c->y,
                           c->s1, c->s2);
  else if (c->kind == 1)
    layer_norm2d_forward_cpu(c->n, c->c, c->hw, c->eps, c->x, c->gamma, c->beta, c->y, c->s1,
                             c->s2);
  else
    batch_norm_train_forward_cpu(c->n, c->c, c->hw, c->eps, 0.1f, c->x, c->gamma, c->beta, c->y,
                                 c->s1, c->s2, NULL, NULL, NULL, NULL);
  return dot_f64(c->y, c->r, ny);
}

static void fd_all(fd_ctx *c, const char *grp, const float *gx, const float *gg,
                   const float *gb) {
  char what[96];
  int64_t nx = c->n * c->c * c->hw;
  check_grad_fd(label(what, sizeof what, grp, "fd dx"), c->x, nx, gx, fd_loss, c, 16, FD_EPS,
                FD_ATOL, FD_RTOL, g_seed + 1, NULL);
  if (c->gamma)
    check_grad_fd(label(what, sizeof what, grp, "fd dgamma"), c->gamma, c->c, gg, fd_loss, c, 8,
                  FD_EPS, FD_ATOL, FD_RTOL, g_seed + 2, NULL);
  if (c->beta)
    check_grad_fd(label(what, sizeof what, grp, "fd dbeta"), c->beta, c->c, gb, fd_loss, c, 8,
                  FD_EPS, FD_ATOL, FD_RTOL, g_seed + 3, NULL);
}

// Gradients from zero (for finite differences).
static void fresh_grads(int64_t nx, int64_t c, float **gx, float **gg, float **gb) {
  *gx = callocCheck((size_t)nx, sizeof(float));
  *gg = callocCheck((size_t)c, sizeof(float));
  *gb = callocCheck((size_t)c, sizeof(float));
}

// ---- GroupNorm ----

static void run_gn(h5file *f, int idx) {
  char grp[16], what[96];
  snprintf(grp, sizeof grp, "gn%d", idx);
  float *m = meta_of(f, grp, 7);
  int64_t n = (int64_t)m[0], c = (int64_t)m[1], hw = (int64_t)m[2] * (int64_t)m[3],
          G = (int64_t)m[4];
  int affine = m[5] != 0;
  float eps = m[6];
  int64_t nx = n * c * hw;
  printf(" %s: n=%lld c=%lld hw=%lld groups=%lld affine=%d\n", grp, (long long)n, (long long)c,
         (long long)hw, (long long)G, affine);
  float *x = ds(f, grp, "x", nx), *dy = ds(f, grp, "dy", nx), *y_ref = ds(f, grp, "y", nx);
  float *dx_ref = ds(f, grp, "dx", nx);
  float *gamma = affine ? ds(f, grp, "gamma", c) : NULL, *beta = affine ? ds(f, grp, "beta", c) : NULL;
  float *y = test_alloc_guarded(nx, GUARD), *mean = test_alloc_guarded(n * G, GUARD);
  float *rstd = test_alloc_guarded(n * G, GUARD);
  group_norm_forward_cpu(n, c, hw, G, eps, x, gamma, beta, y, mean, rstd);
  check_fwd(label(what, sizeof what, grp, "forward"), y, y_ref, nx, 2e-5, 2e-5, WHY_Y);
  check_true(label(what, sizeof what, grp, "mean/rstd guards intact"),
             check_guard("gn mean", mean, n * G, GUARD) && check_guard("gn rstd", rstd, n * G, GUARD));
  float *dx = grad_buf(nx), *dg = grad_buf(c), *db = grad_buf(c);
  group_norm_backward_cpu(n, c, hw, G, x, gamma, mean, rstd, dy, dx, affine ? dg : NULL,
                          affine ? db : NULL);
  check_acc(label(what, sizeof what, grp, "dx (accumulated)"), dx, dx_ref, nx, 2e-5, 2e-5, WHY_Y);
  if (affine) {
    float *dg_ref = ds(f, grp, "dgamma", c), *db_ref = ds(f, grp, "dbeta", c);
    check_acc(label(what, sizeof what, grp, "dgamma (accumulated)"), dg, dg_ref, c, 1e-4, 2e-5, WHY_P);
    check_acc(label(what, sizeof what, grp, "dbeta (accumulated)"), db, db_ref, c, 1e-4, 2e-5, WHY_P);
    // dx alone equals dx computed together with the parameter gradients.
    float *dx2 = grad_buf(nx);
    group_norm_backward_cpu(n, c, hw, G, x, gamma, mean, rstd, dy, dx2, NULL, NULL);
    check_true(label(what, sizeof what, grp, "dx alone == dx with all"),
               memcmp(dx2, dx, (size_t)nx * sizeof(float)) == 0);
    free(dx2);
    free(dg_ref);
    free(db_ref);
  }
  float *gx, *gg, *gb;
  fresh_grads(nx, c, &gx, &gg, &gb);
  group_norm_backward_cpu(n, c, hw, G, x, gamma, mean, rstd, dy, gx, gg, gb);
  fd_ctx ctx = {.kind = 0, .n = n, .c = c, .hw = hw, .groups = G, .eps = eps, .x = x,
                .gamma = gamma, .beta = beta, .r = dy, .y = y, .s1 = mean, .s2 = rstd};
  fd_all(&ctx, grp, gx, gg, gb);
  free(m); free(x); free(dy); free(y_ref); free(dx_ref); free(gamma); free(beta); free(y);
  free(mean); free(rstd); free(dx); free(dg); free(db); free(gx); free(gg); free(gb);
}

// ---- LayerNorm2d ----

static void run_ln(h5file *f, int idx) {
  char grp[16], what[96];
  snprintf(grp, sizeof grp, "ln%d", idx);
  float *m = meta_of(f, grp, 5);
  int64_t n = (int64_t)m[0], c = (int64_t)m[1], hw = (int64_t)m[2] * (int64_t)m[3];
  float eps = m[4];
  int64_t nx = n * c * hw;
  printf(" %s: n=%lld c=%lld hw=%lld eps=%g\n", grp, (long long)n, (long long)c, (long long)hw,
         (double)eps);
  float *x = ds(f, grp, "x", nx), *dy = ds(f, grp, "dy", nx), *y_ref = ds(f, grp, "y", nx);
  float *dx_ref = ds(f, grp, "dx", nx), *gamma = ds(f, grp, "gamma", c), *beta = ds(f, grp, "beta", c);
  float *dg_ref = ds(f, grp, "dgamma", c), *db_ref = ds(f, grp, "dbeta", c);
  float *y = test_alloc_guarded(nx, GUARD), *mean = test_alloc_guarded(n * hw, GUARD);
  float *rstd = test_alloc_guarded(n * hw, GUARD);
  layer_norm2d_forward_cpu(n, c, hw, eps, x, gamma, beta, y, mean, rstd);
  check_fwd(label(what, sizeof what, grp, "forward"), y, y_ref, nx, 2e-5, 2e-5, WHY_Y);
  check_true(label(what, sizeof what, grp, "mean/rstd guards intact"),
             check_guard("ln mean", mean, n * hw, GUARD) &&
                 check_guard("ln rstd", rstd, n * hw, GUARD));
  float *dx = grad_buf(nx), *dg = grad_buf(c), *db = grad_buf(c);
  layer_norm2d_backward_cpu(n, c, hw, x, gamma, mean, rstd, dy, dx, dg, db);
  check_acc(label(what, sizeof what, grp, "dx (accumulated)"), dx, dx_ref, nx, 2e-5, 2e-5, WHY_Y);
  check_acc(label(what, sizeof what, grp, "dgamma (accumulated)"), dg, dg_ref, c, 1e-4, 2e-5, WHY_P);
  check_acc(label(what, sizeof what, grp, "dbeta (accumulated)"), db, db_ref, c, 1e-4, 2e-5, WHY_P);
  float *dx2 = grad_buf(nx);
  layer_norm2d_backward_cpu(n, c, hw, x, gamma, mean, rstd, dy, dx2, NULL, NULL);
  check_true(label(what, sizeof what, grp, "dx alone == dx with all"),
             memcmp(dx2, dx, (size_t)nx * sizeof(float)) == 0);
  float *gx, *gg, *gb;
  fresh_grads(nx, c, &gx, &gg, &gb);
  layer_norm2d_backward_cpu(n, c, hw, x, gamma, mean, rstd, dy, gx, gg, gb);
  fd_ctx ctx = {.kind = 1, .n = n, .c = c, .hw = hw, .eps = eps, .x = x, .gamma = gamma,
                .beta = beta, .r = dy, .y = y, .s1 = mean, .s2 = rstd};
  fd_all(&ctx, grp, gx, gg, gb);
  free(m); free(x); free(dy); free(y_ref); free(dx_ref); free(gamma); free(beta); free(dg_ref);
  free(db_ref); free(y); free(mean); free(rstd); free(dx); free(dg); free(db); free(dx2);
  free(gx); free(gg); free(gb);
}

// ---- BatchNorm, training ----

// Two simulated ranks: the hook records this rank's local buffer, then adds the other rank's
// recorded buffer (if any), which is what an all-reduce over two ranks returns.
typedef struct {
  double *capture;      // receives the local buffer (may be NULL)
  const double *other;  // the other rank's local buffer, or NULL
  int calls;
} sim_rank;

static void sim_allreduce(double *buf, int64_t count, void *ctx) {
  sim_rank *r = ctx;
  r->calls++;
  if (r->capture) memcpy(r->capture, buf, (size_t)count * sizeof(double));
  if (r->other)
    for (int64_t i = 0; i < count; i++) buf[i] += r->other[i];
}

static void run_bn(h5file *f, int idx) {
  char grp[16], what[96];
  snprintf(grp, sizeof grp, "bn%d", idx);
  float *m = meta_of(f, grp, 6);
  int64_t n = (int64_t)m[0], c = (int64_t)m[1], hw = (int64_t)m[2] * (int64_t)m[3];
  float eps = m[4], mom = m[5];
  int64_t nx = n * c * hw;
  printf(" %s: n=%lld c=%lld hw=%lld eps=%g momentum=%g\n", grp, (long long)n, (long long)c,
         (long long)hw, (double)eps, (double)mom);
  float *x = ds(f, grp, "x", nx), *dy = ds(f, grp, "dy", nx), *y_ref = ds(f, grp, "y", nx);
  float *dx_ref = ds(f, grp, "dx", nx), *gamma = ds(f, grp, "gamma", c), *beta = ds(f, grp, "beta", c);
  float *dg_ref = ds(f, grp, "dgamma", c), *db_ref = ds(f, grp, "dbeta", c);
  float *rm = ds(f, grp, "rm0", c), *rv = ds(f, grp, "rv0", c);
  float *rm1 = ds(f, grp, "rm1", c), *rv1 = ds(f, grp, "rv1", c);
  float *rm0 = mallocCheck((size_t)c * sizeof(float)), *rv0 = mallocCheck((size_t)c * sizeof(float));
  memcpy(rm0, rm, (size_t)c * sizeof(float));
  memcpy(rv0, rv, (size_t)c * sizeof(float));

  float *y = test_alloc_guarded(nx, GUARD), *sm = test_alloc_guarded(c, GUARD);
  float *sr = test_alloc_guarded(c, GUARD);
  batch_norm_train_forward_cpu(n, c, hw, eps, mom, x, gamma, beta, y, sm, sr, rm, rv, NULL, NULL);
  check_fwd(label(what, sizeof what, grp, "forward"), y, y_ref, nx, 2e-5, 2e-5, WHY_Y);
  check_close(label(what, sizeof what, grp, "running_mean"), rm, rm1, c, 1e-6, 1e-6,
              "double update of float32 values");
  check_close(label(what, sizeof what, grp, "running_var (unbiased)"), rv, rv1, c, 1e-6, 1e-6,
              "double update of float32 values");
  check_true(label(what, sizeof what, grp, "saved stats guards intact"),
             check_guard("bn mean", sm, c, GUARD) && check_guard("bn rstd", sr, c, GUARD));
  float *dx = grad_buf(nx), *dg = grad_buf(c), *db = grad_buf(c);
  batch_norm_train_backward_cpu(n, c, hw, x, gamma, sm, sr, dy, dx, dg, db, NULL, NULL);
  check_acc(label(what, sizeof what, grp, "dx (accumulated)"), dx, dx_ref, nx, 2e-5, 2e-5, WHY_Y);
  check_acc(label(what, sizeof what, grp, "dgamma (accumulated)"), dg, dg_ref, c, 1e-4, 2e-5, WHY_P);
  check_acc(label(what, sizeof what, grp, "dbeta (accumulated)"), db, db_ref, c, 1e-4, 2e-5, WHY_P);

  // Finite differences (no running stats, no hook).
  float *gx, *gg, *gb;
  fresh_grads(nx, c, &gx, &gg, &gb);
  batch_norm_train_backward_cpu(n, c, hw, x, gamma, sm, sr, dy, gx, gg, gb, NULL, NULL);
  fd_ctx ctx = {.kind = 2, .n = n, .c = c, .hw = hw, .eps = eps, .x = x, .gamma = gamma,
                .beta = beta, .r = dy, .y = y, .s1 = sm, .s2 = sr};
  fd_all(&ctx, grp, gx, gg, gb);
  // fd_loss overwrote the saved statistics with the same values (x restored): recompute to be safe.
  batch_norm_train_forward_cpu(n, c, hw, eps, mom, x, gamma, beta, y, sm, sr, NULL, NULL, NULL, NULL);

  // Synchronised BN over two simulated ranks: images [0, na) on rank A, [na, n) on rank B.
  int64_t na = n / 2, nb = n - na;
  if (na > 0 && nb > 0) {
    const int64_t cnt = 1 + 2 * c, off = na * c * hw;
    double *capA = mallocCheck((size_t)cnt * sizeof(double)), *capB = mallocCheck((size_t)cnt * sizeof(double));
    double *scratch = mallocCheck((size_t)cnt * sizeof(double));
    float *ys = test_alloc_guarded(nx, GUARD), *tmp = mallocCheck((size_t)nx * sizeof(float));
    float *smA = mallocCheck((size_t)c * sizeof(float)), *srA = mallocCheck((size_t)c * sizeof(float));
    float *smB = mallocCheck((size_t)c * sizeof(float)), *srB = mallocCheck((size_t)c * sizeof(float));
    float *rmA = mallocCheck((size_t)c * sizeof(float)), *rvA = mallocCheck((size_t)c * sizeof(float));
    float *rmB = mallocCheck((size_t)c * sizeof(float)), *rvB = mallocCheck((size_t)c * sizeof(float));
    memcpy(rmA, rm0, (size_t)c * sizeof(float));
    memcpy(rvA, rv0, (size_t)c * sizeof(float));
    memcpy(rmB, rm0, (size_t)c * sizeof(float));
    memcpy(rvB, rv0, (size_t)c * sizeof(float));
    // 1) B's local statistics; 2) A with B's; 3) B with A's.
    sim_rank hb0 = {.capture = capB}, ha = {.capture = capA, .other = capB},
             hb = {.capture = scratch, .other = capA};
    batch_norm_train_forward_cpu(nb, c, hw, eps, mom, x + off, gamma, beta, tmp, smB, srB, NULL,
                                 NULL, sim_allreduce, &hb0);
    batch_norm_train_forward_cpu(na, c, hw, eps, mom, x, gamma, beta, ys, smA, srA, rmA, rvA,
                                 sim_allreduce, &ha);
    batch_norm_train_forward_cpu(nb, c, hw, eps, mom, x + off, gamma, beta, ys + off, smB, srB,
                                 rmB, rvB, sim_allreduce, &hb);
    check_true(label(what, sizeof what, grp, "sync forward calls the hook once"),
               hb0.calls == 1 && ha.calls == 1 && hb.calls == 1);
    check_true(label(what, sizeof what, grp, "sync hook buffer holds the count first"),
               capA[0] == (double)(na * hw) && capB[0] == (double)(nb * hw));
    check_fwd(label(what, sizeof what, grp, "sync 2 ranks forward == whole batch"), ys, y, nx,
              1e-6, 1e-6, "same double sums in another order");
    check_close(label(what, sizeof what, grp, "sync saved mean rank A == whole"), smA, sm, c,
                1e-6, 1e-6, "same double sums in another order");
    check_close(label(what, sizeof what, grp, "sync saved rstd B == whole"), srB, sr, c, 1e-6,
                1e-6, "same double sums in another order");
    check_close(label(what, sizeof what, grp, "sync running_mean rank A == torch"), rmA, rm1, c,
                1e-6, 1e-6, "double update of float32 values");
    check_close(label(what, sizeof what, grp, "sync running_var rank A == torch"), rvA, rv1, c,
                1e-6, 1e-6, "double update of float32 values");
    check_close(label(what, sizeof what, grp, "sync running_var rank B == torch"), rvB, rv1, c,
                1e-6, 1e-6, "double update of float32 values");
    check_close(label(what, sizeof what, grp, "sync forward == torch"), ys, y_ref, nx, 2e-5,
                2e-5, WHY_Y);

    // Backward, same choreography. Parameter gradients are each rank's local share.
    float *dxs = grad_buf(nx), *dgA = grad_buf(c), *dbA = grad_buf(c);
    float *dgB = callocCheck((size_t)c, sizeof(float)), *dbB = callocCheck((size_t)c, sizeof(float));
    float *junk = callocCheck((size_t)nx, sizeof(float));
    sim_rank gb0 = {.capture = capB}, ga = {.capture = capA, .other = capB},
             gbb = {.capture = scratch, .other = capA};
    batch_norm_train_backward_cpu(nb, c, hw, x + off, gamma, smB, srB, dy + off, junk, NULL, NULL,
                                  sim_allreduce, &gb0);
    batch_norm_train_backward_cpu(na, c, hw, x, gamma, smA, srA, dy, dxs, dgA, dbA, sim_allreduce,
                                  &ga);
    batch_norm_train_backward_cpu(nb, c, hw, x + off, gamma, smB, srB, dy + off, dxs + off, dgB,
                                  dbB, sim_allreduce, &gbb);
    check_true(label(what, sizeof what, grp, "sync backward calls the hook once"),
               gb0.calls == 1 && ga.calls == 1 && gbb.calls == 1);
    for (int64_t i = 0; i < c; i++) {
      dgA[i] += dgB[i];
      dbA[i] += dbB[i];
    }
    check_close(label(what, sizeof what, grp, "sync 2 ranks dx == whole batch"), dxs, dx, nx,
                1e-6, 1e-6, "same double sums in another order");
    check_guard("sync dx", dxs, nx, GUARD);
    check_close(label(what, sizeof what, grp, "sync dgamma A + B == whole batch"), dgA, dg, c,
                1e-5, 1e-6, "two float32 partial sums added");
    check_close(label(what, sizeof what, grp, "sync dbeta A + B == whole batch"), dbA, db, c,
                1e-5, 1e-6, "two float32 partial sums added");
    free(capA); free(capB); free(scratch); free(ys); free(tmp); free(smA); free(srA); free(smB);
    free(srB); free(rmA); free(rvA); free(rmB); free(rvB); free(dxs); free(dgA); free(dbA);
    free(dgB); free(dbB); free(junk);
  }
  free(m); free(x); free(dy); free(y_ref); free(dx_ref); free(gamma); free(beta); free(dg_ref);
  free(db_ref); free(rm); free(rv); free(rm1); free(rv1); free(rm0); free(rv0); free(y); free(sm);
  free(sr); free(dx); free(dg); free(db); free(gx); free(gg); free(gb);
}

// ---- BatchNorm, frozen: fold into the conv / channel affine ----

typedef struct {
  int64_t n, c, hw;
  float *z, *scale, *shift, *y, *r;
} affine_ctx;

static double affine_loss(void *p) {
  affine_ctx *c = p;
  channel_affine_forward_cpu(c->n, c->c, c->hw, c->z, c->scale, c->shift, c->y);
  return dot_f64(c->y, c->r, c->n * c->c * c->hw);
}

static void run_fold(h5file *f, int idx) {
  char grp[16], what[96];
  snprintf(grp, sizeof grp, "fold%d", idx);
  float *m = meta_of(f, grp, 7);
  int64_t n = (int64_t)m[0], ci = (int64_t)m[1], h = (int64_t)m[2], w = (int64_t)m[3],
          co = (int64_t)m[4];
  int has_bias = m[5] != 0;
  float eps = m[6];
  printf(" %s: n=%lld c_in=%lld %lldx%lld c_out=%lld conv bias=%d\n", grp, (long long)n,
         (long long)ci, (long long)h, (long long)w, (long long)co, has_bias);
  int64_t nx = n * ci * h * w, ny = n * co * h * w, nw = co * ci * 9;
  float *x = ds(f, grp, "x", nx), *wt = ds(f, grp, "w", nw), *gamma = ds(f, grp, "gamma", co);
  float *beta = ds(f, grp, "beta", co), *rm = ds(f, grp, "rm", co), *rv = ds(f, grp, "rv", co);
  float *y_ref = ds(f, grp, "y", ny), *z = ds(f, grp, "z", ny), *dy = ds(f, grp, "dy", ny);
  float *dz_ref = ds(f, grp, "dz", ny), *b = has_bias ? ds(f, grp, "b", co) : NULL;
  float *scale = test_alloc_guarded(co, GUARD), *shift = test_alloc_guarded(co, GUARD);
  batch_norm_fold(co, eps, gamma, beta, rm, rv, scale, shift);
  check_true(label(what, sizeof what, grp, "fold guards intact"),
             check_guard("scale", scale, co, GUARD) && check_guard("shift", shift, co, GUARD));
  // Folded conv == conv followed by BN in eval mode.
  float *wf = mallocCheck((size_t)nw * sizeof(float)), *bf = test_alloc_guarded(co, GUARD);
  memcpy(wf, wt, (size_t)nw * sizeof(float));
  conv_fold_affine(co, ci * 9, scale, shift, wf, b, bf);
  check_guard("folded bias", bf, co, GUARD);
  conv2d_desc d = conv2d_make(n, ci, h, w, co, 3, 1, 1, 1, 1);
  float *y = test_alloc_guarded(ny, GUARD);
  conv2d_forward_cpu(&d, x, wf, bf, y);
  check_fwd(label(what, sizeof what, grp, "folded conv == conv + BN eval"), y, y_ref, ny, 5e-5,
            2e-5, "float32 conv (K = 27..36) with weights scaled by up to ~3, values ~5");
  // Channel affine on the conv output == BN eval; its backward == BN eval's input gradient.
  channel_affine_forward_cpu(n, co, h * w, z, scale, shift, y);
  check_fwd(label(what, sizeof what, grp, "channel affine == BN eval"), y, y_ref, ny, 2e-5, 2e-5,
            "one float32 fma-like step");
  float *dz = grad_buf(ny);
  channel_affine_backward_cpu(n, co, h * w, scale, dy, dz);
  check_acc(label(what, sizeof what, grp, "channel affine dx (accumulated)"), dz, dz_ref, ny, 2e-5,
            2e-5, "one float32 product");
  float *gz = callocCheck((size_t)ny, sizeof(float));
  channel_affine_backward_cpu(n, co, h * w, scale, dy, gz);
  affine_ctx actx = {.n = n, .c = co, .hw = h * w, .z = z, .scale = scale, .shift = shift,
                     .y = y, .r = dy};
  check_grad_fd(label(what, sizeof what, grp, "channel affine fd dx"), z, ny, gz, affine_loss,
                &actx, 16, FD_EPS, FD_ATOL, FD_RTOL, g_seed + 4, NULL);
  free(gz);
  free(m); free(x); free(wt); free(gamma); free(beta); free(rm); free(rv); free(y_ref); free(z);
  free(dy); free(dz_ref); free(b); free(scale); free(shift); free(wf); free(bf); free(y); free(dz);
}

// ---- reductions independent of the thread count ----

static void run_determinism(void) {
  const int64_t n = 2, c = 64, hw = 33 * 31, nx = n * c * hw;
  float *x = mallocCheck((size_t)nx * sizeof(float)), *dy = mallocCheck((size_t)nx * sizeof(float));
  float *gamma = mallocCheck((size_t)c * sizeof(float)), *beta = mallocCheck((size_t)c * sizeof(float));
  rng_fill_normal(x, nx, 1.0f, 2.0f, g_seed, 41);
  rng_fill_normal(dy, nx, 0.0f, 1.0f, g_seed, 42);
  rng_fill_normal(gamma, c, 1.0f, 0.5f, g_seed, 43);
  rng_fill_normal(beta, c, 0.0f, 0.5f, g_seed, 44);
  float *out[2][6];
  int saved = omp_get_max_threads();
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(t + 1);
    float *y = mallocCheck((size_t)nx * sizeof(float)), *mean = mallocCheck((size_t)(n * hw) * sizeof(float));
    float *rstd = mallocCheck((size_t)(n * hw) * sizeof(float));
    float *dx = callocCheck((size_t)nx, sizeof(float)), *dg = callocCheck((size_t)c * 3, sizeof(float));
    float *stats = callocCheck((size_t)c * 2, sizeof(float));
    group_norm_forward_cpu(n, c, hw, 16, 1e-5f, x, gamma, beta, y, mean, rstd);
    group_norm_backward_cpu(n, c, hw, 16, x, gamma, mean, rstd, dy, dx, dg, dg + c);
    layer_norm2d_forward_cpu(n, c, hw, 1e-6f, x, gamma, beta, y, mean, rstd);
    layer_norm2d_backward_cpu(n, c, hw, x, gamma, mean, rstd, dy, dx, dg, dg + c);
    batch_norm_train_forward_cpu(n, c, hw, 1e-5f, 0.1f, x, gamma, beta, y, stats, stats + c, NULL,
                                 NULL, NULL, NULL);
    batch_norm_train_backward_cpu(n, c, hw, x, gamma, stats, stats + c, dy, dx, dg + 2 * c, dg,
                                  NULL, NULL);
    out[t][0] = y; out[t][1] = mean; out[t][2] = rstd; out[t][3] = dx; out[t][4] = dg;
    out[t][5] = stats;
  }
  omp_set_num_threads(saved);
  int same = memcmp(out[0][0], out[1][0], (size_t)nx * sizeof(float)) == 0 &&
             memcmp(out[0][1], out[1][1], (size_t)(n * hw) * sizeof(float)) == 0 &&
             memcmp(out[0][2], out[1][2], (size_t)(n * hw) * sizeof(float)) == 0 &&
             memcmp(out[0][3], out[1][3], (size_t)nx * sizeof(float)) == 0 &&
             memcmp(out[0][4], out[1][4], (size_t)(3 * c) * sizeof(float)) == 0 &&
             memcmp(out[0][5], out[1][5], (size_t)(2 * c) * sizeof(float)) == 0;
  check_true("norm outputs and reductions identical with 1 and 2 threads", same);
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 6; k++) free(out[t][k]);
  free(x); free(dy); free(gamma); free(beta);
}

static int count_groups(h5file *f, const char *prefix) {
  char name[64];
  int i = 0;
  for (;; i++) {
    snprintf(name, sizeof name, "%s%d/meta", prefix, i);
    if (!h5_has(f, name)) break;
  }
  return i;
}

int main(int argc, char **argv) {
  g_seed = test_begin("norm", 7002);
  h5file *f = oracle_open(argc > 1 ? argv[1] : NULL);
  int ngn = count_groups(f, "gn"), nln = count_groups(f, "ln"), nbn = count_groups(f, "bn");
  int nfold = count_groups(f, "fold");
  check_true("oracle has every case kind", ngn >= 5 && nln >= 3 && nbn >= 4 && nfold >= 2);
  for (int i = 0; i < ngn; i++) run_gn(f, i);
  for (int i = 0; i < nln; i++) run_ln(f, i);
  for (int i = 0; i < nbn; i++) run_bn(f, i);
  for (int i = 0; i < nfold; i++) run_fold(f, i);
  h5_close(f);
  run_determinism();
  return test_end();
}
