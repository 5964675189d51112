// GPU check: RPN proposals (rpn_proposals_dev on a CUDA device, kernels/rpn.cu) against
// rpn_proposals on the host copy of the same maps. Random logits (some levels quantised so that
// exact score ties test the stable top-k and NMS order) and deltas (a few beyond the wh clamp),
// at a tiny size, a multi-level size with and without the per-level cut, and the R50 shapes of a
// 1024 image (5 levels, strides 4..64, 3 anchors) with the train (nms_pre 2000) and test (1000)
// configs, plus batched NMS's split branch, no clipping with the size filter off and NaN logits.
// Tolerance: the kernels repeat the CPU's float operations, except exp (in double, rounded to
// float; glibc's expf is correctly rounded in practice, so the two agree but for a double's error
// at a float midpoint). So the expectation is an exact match; a row passes when the counts agree,
// every proposal has the same source anchor at the same position, boxes agree to 1e-3 px (an ulp
// of exp moves a ~1000 px box by ~1e-4 px) and scores to 1e-6 (a few ulp below 1). Otherwise it
// fails and reports how many proposals differ (a flipped top-k tie or IoU decision).
#ifdef MASA_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "core/rng.h"
#include "cuda_check.h"
#include "kernels.h"
#include "model/rpn.h"

#define I64_SENTINEL ((int64_t)-31337)

typedef struct {
  const char *name;
  int L;
  int64_t n, b;          // batch, image whose proposals are made
  int64_t hs[5], ws[5];  // level map sizes
  float img_h, img_w;    // img_shape (0: no clipping)
  rpn_proposal_cfg cfg;
  int ties, nans;        // quantised logits on even levels; a few NaN logits
} rpn_check_case;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static void check_case(check_state *st, const rpn_check_case *c, uint64_t seed) {
  static const float strides[5] = {4, 8, 16, 32, 64};
  anchor_generator g = anchor_generator_make(c->L, strides);
  int na = anchor_generator_num_base(&g);
  delta_xywh_coder coder = delta_xywh_coder_make((float[]){0, 0, 0, 0}, (float[]){1, 1, 1, 1});
  tensor hc[5], hr[5], dc[5], dr[5];
  int64_t cap = 0;
  for (int l = 0; l < c->L; l++) {
    int64_t h = c->hs[l], w = c->ws[l], nc = c->n * na * h * w;
    hc[l] = tensor_alloc4(c->n, na, h, w);
    hr[l] = tensor_alloc4(c->n, 4 * na, h, w);
    rng_fill_normal(hc[l].data, nc, -1.0f, 2.5f, seed, 700 + (uint64_t)l);
    rng_fill_normal(hr[l].data, 4 * nc, 0.0f, 0.4f, seed, 720 + (uint64_t)l);
    if (c->ties && l % 2 == 0)
      for (int64_t i = 0; i < nc; i++) hc[l].data[i] = roundf(hc[l].data[i] * 2.0f) * 0.5f;
    for (int64_t i = 0; i < 4 * nc; i += 97) hr[l].data[i] = (i / 97) % 2 ? 9.0f : -9.0f;
    if (c->nans)
      for (int64_t i = 5; i < nc; i += 211) hc[l].data[i] = NAN;
    dc[l] = hc[l], dr[l] = hr[l];
    dc[l].owns = dr[l].owns = 0;
    dc[l].data = cuda_alloc((size_t)nc * sizeof(float));
    dr[l].data = cuda_alloc((size_t)(4 * nc) * sizeof(float));
    cuda_upload(dc[l].data, hc[l].data, (size_t)nc * sizeof(float));
    cuda_upload(dr[l].data, hr[l].data, (size_t)(4 * nc) * sizeof(float));
    int64_t cnt = na * h * w;
    cap += c->cfg.nms_pre > 0 && c->cfg.nms_pre < cnt ? c->cfg.nms_pre : cnt;
  }
  if (c->cfg.max_per_img > 0 && c->cfg.max_per_img < cap) cap = c->cfg.max_per_img;
  float *rbox = mallocCheck((size_t)(cap + 1) * 4 * sizeof(float));
  float *rscore = mallocCheck((size_t)(cap + 1) * sizeof(float));
  int64_t *rsrc = mallocCheck((size_t)(cap + 1) * sizeof(int64_t));
  float *gbox = mallocCheck((size_t)(cap * 4 + GUARD) * sizeof(float));
  float *gscore = mallocCheck((size_t)(cap + GUARD) * sizeof(float));
  int64_t *gsrc = mallocCheck((size_t)(cap + GUARD) * sizeof(int64_t));
  for (int64_t i = 0; i < cap * 4 + GUARD; i++) gbox[i] = SENTINEL;
  for (int64_t i = 0; i < cap + GUARD; i++) gscore[i] = SENTINEL, gsrc[i] = I64_SENTINEL;

  double t0 = now_ms();
  int64_t nr = rpn_proposals(&g, &coder, &c->cfg, hc, hr, c->b, c->img_h, c->img_w, rbox, rscore,
                             rsrc);
  double t_cpu = now_ms() - t0;
  int ord = 0;
  cudaCheck(cudaGetDevice(&ord));
  device cd = {DEV_CUDA, ord, NULL};
  // First call sizes the workspace; the timed second call must not grow it.
  int64_t ng = rpn_proposals_dev(&cd, &g, &coder, &c->cfg, dc, dr, c->b, c->img_h, c->img_w, gbox,
                                 gscore, gsrc);
  size_t ws_bytes = rpn_cuda_workspace_bytes();
  t0 = now_ms();
  int64_t ng2 = rpn_proposals_dev(&cd, &g, &coder, &c->cfg, dc, dr, c->b, c->img_h, c->img_w,
                                  gbox, gscore, gsrc);
  double t_gpu = now_ms() - t0;

  double box_err = 0, score_err = 0;
  int64_t differ = 0, nmin = nr < ng ? nr : ng;
  for (int64_t q = 0; q < nmin; q++) {
    int bad = gsrc[q] != rsrc[q];
    for (int j = 0; j < 4; j++) {
      float a = gbox[4 * q + j], r = rbox[4 * q + j];
      if (isnan(a) && isnan(r)) continue;
      double e = fabs((double)a - (double)r);
      if (!(e <= 1e-3)) bad = 1, e = isnan(e) ? INFINITY : e;
      if (e > box_err) box_err = e;
    }
    float a = gscore[q], r = rscore[q];
    if (!(isnan(a) && isnan(r))) {
      double e = fabs((double)a - (double)r);
      if (!(e <= 1e-6)) bad = 1, e = isnan(e) ? INFINITY : e;
      if (e > score_err) score_err = e;
    }
    differ += bad;
  }
  differ += (nr > ng ? nr - ng : ng - nr);
  int guard_ok = 1;
  for (int64_t i = ng * 4; i < cap * 4 + GUARD; i++) guard_ok &= gbox[i] == SENTINEL;
  for (int64_t i = ng; i < cap + GUARD; i++)
    guard_ok &= gscore[i] == SENTINEL && gsrc[i] == I64_SENTINEL;
  int steady = ng2 == ng && rpn_cuda_workspace_bytes() == ws_bytes;
  int ok = nr == ng && differ == 0 && guard_ok && steady;
  st->total++;
  if (!ok) st->failures++;
  char name[96], tol[64];
  snprintf(name, sizeof name, "rpn_proposals %s b=%lld", c->name, (long long)c->b);
  snprintf(tol, sizeof tol, "1e-3px,1e-6,src");
  printf("%-40s %10lld %11.3g %11.3g %17s %s%s%s\n", name, (long long)nr, box_err, score_err, tol,
         ok ? "pass" : "FAIL", guard_ok ? "" : " (guard overwritten)",
         steady ? "" : " (second call differs or grew the workspace)");
  if (!ok || nr != ng)
    printf("    %lld proposals on the host, %lld on the GPU, %lld differ\n", (long long)nr,
           (long long)ng, (long long)differ);
  printf("    %s: host %.1f ms, GPU %.2f ms (steady state, workspace %.1f MiB)\n", c->name, t_cpu,
         t_gpu, (double)rpn_cuda_workspace_bytes() / (1 << 20));
  for (int l = 0; l < c->L; l++) {
    cuda_free(dc[l].data), cuda_free(dr[l].data);
    tensor_free(&hc[l]), tensor_free(&hr[l]);
  }
  free(rbox), free(rscore), free(rsrc), free(gbox), free(gscore), free(gsrc);
}

void gpu_check_rpn(check_state *st, uint64_t seed) {
  rpn_proposal_cfg test = rpn_proposal_cfg_test(), train = rpn_proposal_cfg_train();
  rpn_proposal_cfg small = test, split = train, loose = test;
  small.nms_pre = 60, small.max_per_img = 25;
  split.split_thr = 4000;  // forces batched_nms_cpu's per-level branch at ~8800 candidates
  loose.min_bbox_size = -1.0f, loose.max_per_img = 0, loose.nms_pre = 300;
  const rpn_check_case cases[] = {
      {"tiny 1 level", 1, 1, 0, {3}, {5}, 10.0f, 18.0f, test, 0, 0},
      {"tiny 1 level ties", 1, 2, 1, {2}, {3}, 8.0f, 12.0f, small, 1, 0},
      {"5 levels 120x152 test", 5, 3, 2, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3}, 118.0f, 150.0f,
       test, 0, 0},
      {"5 levels 120x152 cut 60 max 25", 5, 3, 0, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3}, 118.0f,
       150.0f, small, 1, 0},
      {"5 levels no clip, no size filter, NaN", 5, 2, 1, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3},
       0.0f, 0.0f, loose, 1, 1},
      {"r50-1024 train", 5, 2, 1, {256, 128, 64, 32, 16}, {256, 128, 64, 32, 16}, 1024.0f,
       1024.0f, train, 0, 0},
      {"r50-1024 test", 5, 2, 0, {256, 128, 64, 32, 16}, {256, 128, 64, 32, 16}, 1000.0f, 760.0f,
       test, 0, 0},
      {"r50-1024 train ties", 5, 1, 0, {256, 128, 64, 32, 16}, {256, 128, 64, 32, 16}, 1024.0f,
       1024.0f, train, 1, 0},
      {"r50-1024 train split_thr 4000", 5, 1, 0, {256, 128, 64, 32, 16}, {256, 128, 64, 32, 16},
       1024.0f, 1024.0f, split, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(st, &cases[i], seed);
}
#endif
