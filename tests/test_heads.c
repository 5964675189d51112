// MASA's heads against tests/oracle_heads.py (PyTorch reference modules in
// tests/reference/heads_ref.py): track head, RPN head, Shared2FC / Shared4Conv1FC box heads
// (forward, every parameter gradient, feature-map gradients), the official key layout at full
// size, the official init, anchors, the delta coder, NMS / batched NMS, RPN proposals and box-head
// detections; finite differences on a tiny track head; zero RoIs; accumulation of gradients.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "harness.h"
#include "model/bbox_coder.h"
#include "model/bbox_head.h"
#include "model/nms.h"
#include "model/rpn.h"
#include "model/track_head.h"

// ---- tolerances (|got - ref| <= atol + rtol |ref|) ----
// Module outputs vs float64 autograd. Inputs, weights and upstream gradients are the same
// float32 numbers; the C side rounds every op to float32. Sums run over up to 3136 products
// (fc) and 576 (3x3 conv over 64 channels) of O(1) terms, and GroupNorm / BatchNorm divide by
// standard deviations that can be ~0.3: a few 1e-6 relative per layer, compounded over 4
// conv layers and 2 fcs. 1e-4 + 1e-4 |ref| is ~10x the largest error seen.
#define ATOL_FWD 1e-4
#define RTOL_FWD 1e-4
#define WHY_FWD "float32 sums (up to ~3000 terms) through 4 conv+norm layers vs float64 autograd"
// Parameter gradients sum over every RoI and output position (up to k*49*channels terms);
// values reach O(100) for weights feeding many positions, so relative error dominates.
#define ATOL_GRAD 2e-4
#define RTOL_GRAD 5e-4
#define WHY_GRAD "float32 gradient sums over RoIs x positions x channels vs float64 autograd"
// Geometry: float32 in mmdet's order; exp/log/sigmoid may differ from torch's vectorised
// float32 versions by an ulp or two, which moves a decoded coordinate of magnitude <= ~2000
// by a few ulp there (ulp(2048) = 2.4e-4) even when the result is small after cancellation.
#define ATOL_BOX 5e-4
#define RTOL_BOX 2e-6
#define WHY_BOX "exp/log ulp differences vs torch float32, coordinates up to ~2000 px"
#define ATOL_SCORE 1e-6
#define RTOL_SCORE 1e-5
#define WHY_SCORE "sigmoid/softmax: expf and sum order vs torch float32, a few ulp"

static h5file *F;

static float *rd(const char *key, int64_t *n) { return oracle_read_any(F, key, n, NULL, NULL); }

static float *rdf(const char *fmt, const char *g, int i, int64_t *n) {
  char key[256];
  snprintf(key, sizeof key, fmt, g, i);
  return rd(key, n);
}

static int64_t *rdi(const char *key, int64_t *n) {
  int64_t *p;
  int nd;
  int64_t shape[TENSOR_MAX_DIMS];
  if (h5_read_i64(F, key, &p, &nd, shape) != MASA_OK) {
    fprintf(stderr, "test_heads: %s\n", masa_errmsg());
    exit(1);
  }
  if (n) *n = shape_numel(nd, shape);
  return p;
}

static tensor read_tensor(const char *key) {
  tensor t;
  if (h5_read_tensor(F, key, &t) != MASA_OK) {
    fprintf(stderr, "test_heads: %s\n", masa_errmsg());
    exit(1);
  }
  return t;
}

static float scalar(const char *key) {
  float *p = rd(key, NULL);
  float v = p[0];
  free(p);
  return v;
}

// Loads every parameter of t from <g>/params/<key>; the oracle must hold exactly as many keys.
static void load_params(const char *g, param_table *t) {
  char key[320];
  for (int i = 0; i < t->count; i++) {
    snprintf(key, sizeof key, "%s/params/%s", g, t->entries[i].name);
    if (h5_read(F, key, param_ptr(t, i), t->entries[i].ndim, t->entries[i].shape) != MASA_OK) {
      fprintf(stderr, "test_heads: %s\n", masa_errmsg());
      exit(1);
    }
  }
  snprintf(key, sizeof key, "%s/num_params", g);
  char what[160];
  snprintf(what, sizeof what, "%s: C and reference key sets agree (%d keys)", g, t->count);
  check_true(what, (int)scalar(key) == t->count);
}

// Compares every trainable parameter's gradient with <g>/grad/<key>. skip: substring of keys
// whose gradients the C model deliberately does not produce (NULL: none).
static void check_param_grads(const char *g, param_table *t, const char *skip) {
  char key[320], what[320];
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    if (!e->trainable) continue;
    if (skip && strstr(e->name, skip)) continue;
    snprintf(key, sizeof key, "%s/grad/%s", g, e->name);
    float *ref = rd(key, NULL);
    snprintf(what, sizeof what, "%s d %s", g, e->name);
    check_close(what, param_grad_ptr(t, i), ref, e->numel, ATOL_GRAD, RTOL_GRAD, WHY_GRAD);
    free(ref);
  }
}

typedef struct {
  int L;
  tensor feats[8], dfeats[8];
} feat_set;

static void load_feats(const char *g, int L, feat_set *fs) {
  fs->L = L;
  char key[256];
  for (int l = 0; l < L; l++) {
    snprintf(key, sizeof key, "%s/feat/%d", g, l);
    fs->feats[l] = read_tensor(key);
    fs->dfeats[l] = tensor_alloc(4, fs->feats[l].shape);
  }
}

static void zero_dfeats(feat_set *fs) {
  for (int l = 0; l < fs->L; l++)
    memset(fs->dfeats[l].data, 0, (size_t)tensor_numel(&fs->dfeats[l]) * sizeof(float));
}

static void check_dfeats(const char *g, feat_set *fs, double scale) {
  char what[160];
  for (int l = 0; l < fs->L; l++) {
    float *ref = rdf("%s/dfeat/%d", g, l, NULL);
    int64_t n = tensor_numel(&fs->dfeats[l]);
    for (int64_t i = 0; i < n; i++) ref[i] *= (float)scale;
    snprintf(what, sizeof what, "%s dfeat[%d]%s", g, l, scale != 1.0 ? " (accumulated x2)" : "");
    check_close(what, fs->dfeats[l].data, ref, n, ATOL_GRAD * scale, RTOL_GRAD, WHY_GRAD);
    free(ref);
  }
}

static void free_feats(feat_set *fs) {
  for (int l = 0; l < fs->L; l++) {
    tensor_free(&fs->feats[l]);
    tensor_free(&fs->dfeats[l]);
  }
}

// ============================================================================ track head

static void test_track(const char *g) {
  int64_t ncfg;
  float *c = rdf("%s/cfg", g, 0, &ncfg);
  int64_t n = (int64_t)c[0];
  int L = (int)c[1];
  float strides[8];
  for (int l = 0; l < L; l++) strides[l] = c[10 + l];
  track_head_cfg cfg = track_head_default_cfg(L, strides);
  cfg.in_channels = (int64_t)c[2];
  cfg.num_convs = (int)c[3];
  cfg.conv_channels = (int64_t)c[4];
  cfg.gn_groups = (int64_t)c[5];
  cfg.num_fcs = (int)c[6];
  cfg.fc_channels = (int64_t)c[7];
  cfg.embed_channels = (int64_t)c[8];
  int64_t k = (int64_t)c[9];
  free(c);
  printf(" %s: batch %lld, %d levels, c_in %lld, conv %lld (GN %lld), fc %lld, embed %lld, %lld "
         "RoIs\n",
         g, (long long)n, L, (long long)cfg.in_channels, (long long)cfg.conv_channels,
         (long long)cfg.gn_groups, (long long)cfg.fc_channels, (long long)cfg.embed_channels,
         (long long)k);

  param_table t;
  param_table_init(&t);
  track_head m;
  track_head_register(&m, &t, "track_head", &cfg);
  param_table_alloc(&t);
  load_params(g, &t);
  feat_set fs;
  load_feats(g, L, &fs);
  float *rois = rdf("%s/rois", g, 0, NULL);
  float *dy = rdf("%s/dy", g, 0, NULL);
  arena ar;
  arena_init(&ar, 1 << 24);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 1};

  // RoI levels as mmdet maps them.
  int64_t nlv;
  int64_t *lv_ref = rdi(strcmp(g, "track") == 0 ? "track/levels" : "track_b1/levels", &nlv);
  int *lv = mallocCheck((size_t)k * sizeof(int));
  float *tmp = mallocCheck((size_t)(k * cfg.in_channels * 49) * sizeof(float));
  roi_extractor_forward(&dev_cpu, &cfg.roi, fs.feats, k, rois, tmp, lv);
  int same = nlv == k;
  for (int64_t i = 0; same && i < k; i++) same = lv[i] == lv_ref[i];
  char what[200];
  snprintf(what, sizeof what, "%s RoI levels match mmdet's rule", g);
  check_true(what, same);
  free(lv);
  free(lv_ref);
  free(tmp);

  track_head_acts a;
  track_head_forward(&m, &ctx, fs.feats, k, rois, &a);
  float *ref = rdf("%s/embed", g, 0, NULL);
  snprintf(what, sizeof what, "%s embed", g);
  check_true(what, a.embed.shape[0] == k && a.embed.shape[1] == cfg.embed_channels);
  check_close(what, a.embed.data, ref, k * cfg.embed_channels, ATOL_FWD, RTOL_FWD, WHY_FWD);
  free(ref);

  tensor dyt = tensor_view(dy, 2, (int64_t[]){k, cfg.embed_channels});
  param_table_zero_grads(&t);
  zero_dfeats(&fs);
  track_head_backward(&m, &ctx, &a, &dyt, fs.dfeats);
  check_param_grads(g, &t, NULL);
  check_dfeats(g, &fs, 1.0);

  // A second backward accumulates: everything doubles.
  track_head_backward(&m, &ctx, &a, &dyt, fs.dfeats);
  check_dfeats(g, &fs, 2.0);
  {
    int i = m.fc_w[0];
    float *r = rdf("%s/grad/track_head.embed_head.fcs.0.weight", g, 0, NULL);
    for (int64_t j = 0; j < t.entries[i].numel; j++) r[j] *= 2.0f;
    snprintf(what, sizeof what, "%s d fcs.0.weight (accumulated x2)", g);
    check_close(what, param_grad_ptr(&t, i), r, t.entries[i].numel, 2 * ATOL_GRAD, RTOL_GRAD,
                WHY_GRAD);
    free(r);
  }

  // Backward without feature gradients (frozen features): same parameter gradients.
  param_table_zero_grads(&t);
  track_head_backward(&m, &ctx, &a, &dyt, NULL);
  check_param_grads(g, &t, NULL);

  // Zero RoIs: an empty embedding; backward leaves every gradient at zero.
  arena_reset(&ar);
  param_table_zero_grads(&t);
  zero_dfeats(&fs);
  track_head_acts a0;
  track_head_forward(&m, &ctx, fs.feats, 0, rois, &a0);
  tensor dy0 = tensor_view(dy, 2, (int64_t[]){0, cfg.embed_channels});
  track_head_backward(&m, &ctx, &a0, &dy0, fs.dfeats);
  int zero = a0.embed.shape[0] == 0 && a0.embed.shape[1] == cfg.embed_channels;
  for (size_t i = 0; i < t.total; i++) zero &= t.grads[i] == 0.0f;
  for (int l = 0; l < L; l++)
    for (int64_t i = 0; i < tensor_numel(&fs.dfeats[l]); i++) zero &= fs.dfeats[l].data[i] == 0;
  snprintf(what, sizeof what, "%s zero RoIs: (0, %lld) embedding, zero gradients", g,
           (long long)cfg.embed_channels);
  check_true(what, zero);

  arena_free(&ar);
  free(rois);
  free(dy);
  free_feats(&fs);
  param_table_free(&t);
}

// ---- finite differences on a tiny track head ----

typedef struct {
  track_head *m;
  model_ctx *ctx;
  tensor *feats;
  int64_t k;
  const float *rois, *r;
} fd_ctx;

static double track_loss(void *p) {
  fd_ctx *c = p;
  arena_mark_t mk = arena_mark(c->ctx->arena);
  track_head_acts a;
  track_head_forward(c->m, c->ctx, c->feats, c->k, c->rois, &a);
  double l = dot_f64(a.embed.data, c->r, c->k * c->m->cfg.embed_channels);
  arena_rewind(c->ctx->arena, mk);
  return l;
}

static void test_track_fd(uint64_t seed) {
  printf(" tiny track head, finite differences\n");
  float strides[2] = {4, 8};
  track_head_cfg cfg = track_head_default_cfg(2, strides);
  cfg.in_channels = 8;
  cfg.conv_channels = 8;
  cfg.gn_groups = 4;
  cfg.fc_channels = 16;
  cfg.embed_channels = 8;
  param_table t;
  param_table_init(&t);
  track_head m;
  track_head_register(&m, &t, "track_head", &cfg);
  param_table_alloc(&t);
  // Random weights at O(1)-preserving scales (the official fc_embed std 0.01 would put every
  // gradient under the FD noise floor). GN and fc biases are shifted well positive (pre-ReLU
  // values ~ 4 sigma above 0) so that no ReLU kink lies within a step of any point the FD
  // visits; the oracle comparison above covers the ReLU masks themselves.
  for (int i = 0; i < t.count; i++) {
    const param_entry *e = &t.entries[i];
    float *p = param_ptr(&t, i);
    if (e->ndim > 1) {
      int64_t fan_in = e->numel / e->shape[0];
      float sd = (float)sqrt(2.0 / fan_in) * (i == m.fc_w[0] ? 0.25f : 1.0f);
      rng_fill_normal(p, e->numel, 0.0f, sd, seed, 100 + i);
    } else if (strstr(e->name, "gn.weight")) {
      rng_fill_normal(p, e->numel, 1.0f, 0.2f, seed, 100 + i);
    } else if (strstr(e->name, "gn.bias")) {
      rng_fill_normal(p, e->numel, 4.0f, 0.1f, seed, 100 + i);
    } else if (i == m.fc_b[0]) {
      rng_fill_normal(p, e->numel, 6.0f, 0.1f, seed, 100 + i);
    } else {
      rng_fill_normal(p, e->numel, 0.0f, 0.1f, seed, 100 + i);
    }
  }
  tensor feats[2] = {tensor_alloc4(1, 8, 16, 20), tensor_alloc4(1, 8, 8, 10)};
  tensor dfeats[2] = {tensor_alloc4(1, 8, 16, 20), tensor_alloc4(1, 8, 8, 10)};
  for (int l = 0; l < 2; l++)
    rng_fill_normal(feats[l].data, tensor_numel(&feats[l]), 0, 1, seed, 10 + l);
  // Input 64 x 80: two RoIs on level 0 (< 112 px), two on level 1, one partly outside.
  const float rois[4 * 5] = {0, 3.25f, 5.5f, 40.75f, 50.125f,  0, 20, 10, 70.5f, 46,
                             0, -20.5f, 4.25f, 100.75f, 110.5f, 0, 8, -6.5f, 78, 130.25f};
  int64_t k = 4;
  float r[4 * 8];
  rng_fill_normal(r, k * 8, 0, 1, seed, 20);
  arena ar;
  arena_init(&ar, 1 << 22);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 1};
  track_head_acts a;
  track_head_forward(&m, &ctx, feats, k, rois, &a);
  tensor rt = tensor_view(r, 2, (int64_t[]){k, 8});
  param_table_zero_grads(&t);
  track_head_backward(&m, &ctx, &a, &rt, dfeats);
  fd_ctx fc = {&m, &ctx, feats, k, rois, r};
  // float32 forward: L ~ 50 carries ~1e-5 of rounding; / (2 eps = 2e-2) -> ~5e-4 of FD noise.
  // Curvature (GroupNorm's 1/std, bilinear products) over a step of 1e-2 stays under 1%:
  // atol 2e-3, rtol 1e-2.
  struct {
    const char *what;
    float *x, *g;
    int64_t n;
  } items[] = {
      {"fd d convs.0.conv.weight", param_ptr(&t, m.convs[0].w), param_grad_ptr(&t, m.convs[0].w),
       t.entries[m.convs[0].w].numel},
      {"fd d convs.3.gn.weight", param_ptr(&t, m.convs[3].nw), param_grad_ptr(&t, m.convs[3].nw),
       t.entries[m.convs[3].nw].numel},
      {"fd d convs.2.gn.bias", param_ptr(&t, m.convs[2].nb), param_grad_ptr(&t, m.convs[2].nb),
       t.entries[m.convs[2].nb].numel},
      {"fd d fcs.0.weight", param_ptr(&t, m.fc_w[0]), param_grad_ptr(&t, m.fc_w[0]),
       t.entries[m.fc_w[0]].numel},
      {"fd d fc_embed.weight", param_ptr(&t, m.embed_w), param_grad_ptr(&t, m.embed_w),
       t.entries[m.embed_w].numel},
      {"fd d fc_embed.bias", param_ptr(&t, m.embed_b), param_grad_ptr(&t, m.embed_b),
       t.entries[m.embed_b].numel},
      {"fd dfeat[0]", feats[0].data, dfeats[0].data, tensor_numel(&feats[0])},
      {"fd dfeat[1]", feats[1].data, dfeats[1].data, tensor_numel(&feats[1])},
  };
  for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
    check_grad_fd(items[i].what, items[i].x, items[i].n, items[i].g, track_loss, &fc, 16, 1e-2f,
                  2e-3, 1e-2, seed + i, NULL);
  arena_free(&ar);
  for (int l = 0; l < 2; l++) {
    tensor_free(&feats[l]);
    tensor_free(&dfeats[l]);
  }
  param_table_free(&t);
}

// ============================================================================ RPN head

static void test_rpn(void) {
  const char *g = "rpn";
  float *c = rd("rpn/cfg", NULL);
  int64_t n = (int64_t)c[0];
  int L = (int)c[1];
  int64_t cin = (int64_t)c[2], feat = (int64_t)c[3];
  int A = (int)c[4];
  free(c);
  printf(" rpn: batch %lld, %d levels, c_in %lld, feat %lld, %d anchors\n", (long long)n, L,
         (long long)cin, (long long)feat, A);
  param_table t;
  param_table_init(&t);
  rpn_head m;
  rpn_head_register(&m, &t, "rpn_head", cin, feat, A, 1);
  param_table_alloc(&t);
  load_params(g, &t);
  feat_set fs;
  load_feats(g, L, &fs);
  arena ar;
  arena_init(&ar, 1 << 22);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 1};
  rpn_head_acts a;
  rpn_head_forward(&m, &ctx, L, fs.feats, &a);
  tensor dcls[8], dreg[8];
  char what[160];
  for (int l = 0; l < L; l++) {
    float *rc = rdf("%s/cls/%d", g, l, NULL), *rr = rdf("%s/reg/%d", g, l, NULL);
    snprintf(what, sizeof what, "rpn cls[%d]", l);
    check_close(what, a.cls[l].data, rc, tensor_numel(&a.cls[l]), ATOL_FWD, RTOL_FWD, WHY_FWD);
    snprintf(what, sizeof what, "rpn reg[%d]", l);
    check_close(what, a.reg[l].data, rr, tensor_numel(&a.reg[l]), ATOL_FWD, RTOL_FWD, WHY_FWD);
    free(rc);
    free(rr);
    dcls[l] = a.cls[l];
    dcls[l].data = rdf("%s/dcls/%d", g, l, NULL);
    dreg[l] = a.reg[l];
    dreg[l].data = rdf("%s/dreg/%d", g, l, NULL);
  }
  param_table_zero_grads(&t);
  zero_dfeats(&fs);
  rpn_head_backward(&m, &ctx, &a, dcls, dreg, fs.dfeats);
  check_param_grads(g, &t, NULL);
  check_dfeats(g, &fs, 1.0);
  // Upstream from the regression branch only: rpn_cls gets nothing.
  param_table_zero_grads(&t);
  rpn_head_backward(&m, &ctx, &a, NULL, dreg, NULL);
  int z = 1;
  for (int64_t i = 0; i < t.entries[m.cls_w].numel; i++) z &= param_grad_ptr(&t, m.cls_w)[i] == 0;
  check_true("rpn backward with d_cls NULL leaves rpn_cls.weight's gradient at 0", z);
  for (int l = 0; l < L; l++) {
    free(dcls[l].data);
    free(dreg[l].data);
  }
  arena_free(&ar);
  free_feats(&fs);
  param_table_free(&t);
}

// ============================================================================ box heads

static void test_bbox(const char *g) {
  float *c = rdf("%s/cfg", g, 0, NULL);
  int64_t n = (int64_t)c[0];
  int L = (int)c[1];
  float strides[8];
  for (int l = 0; l < L; l++) strides[l] = c[9 + l];
  int num_convs = (int)c[3];
  bbox_head_cfg cfg = bbox_head_default_cfg(num_convs ? BBOX_HEAD_SHARED4CONV1FC
                                                      : BBOX_HEAD_SHARED2FC,
                                            L, strides);
  cfg.in_channels = (int64_t)c[2];
  cfg.conv_channels = (int64_t)c[4];
  cfg.fc_channels = (int64_t)c[5];
  cfg.num_classes = (int)c[6];
  int64_t k = (int64_t)c[7];
  int train = (int)c[8];
  free(c);
  printf(" %s: batch %lld, %d levels, c_in %lld, %d convs, fc %lld, %d classes, %lld RoIs, %s\n", g,
         (long long)n, L, (long long)cfg.in_channels, num_convs, (long long)cfg.fc_channels,
         cfg.num_classes, (long long)k, train ? "train mode (BN batch stats)" : "eval mode");
  param_table t;
  param_table_init(&t);
  bbox_head m;
  bbox_head_register(&m, &t, "roi_head.bbox_head", &cfg);
  param_table_alloc(&t);
  load_params(g, &t);
  feat_set fs;
  load_feats(g, L, &fs);
  float *rois = rdf("%s/rois", g, 0, NULL);
  arena ar;
  arena_init(&ar, 1 << 24);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = train};
  bbox_head_acts a;
  bbox_head_forward(&m, &ctx, fs.feats, k, rois, &a);
  char what[200];
  float *rc = rdf("%s/cls", g, 0, NULL), *rr = rdf("%s/reg", g, 0, NULL);
  snprintf(what, sizeof what, "%s cls", g);
  check_close(what, a.cls.data, rc, k * (cfg.num_classes + 1), ATOL_FWD, RTOL_FWD, WHY_FWD);
  snprintf(what, sizeof what, "%s reg", g);
  check_close(what, a.reg.data, rr, k * 4, ATOL_FWD, RTOL_FWD, WHY_FWD);
  free(rc);
  free(rr);
  if (train && num_convs) {  // running statistics updated like PyTorch's (momentum 0.1)
    char key[320];
    for (int i = 0; i < t.count; i++) {
      if (!strstr(t.entries[i].name, "running_")) continue;
      snprintf(key, sizeof key, "%s/after/%s", g, t.entries[i].name);
      float *r = rd(key, NULL);
      snprintf(what, sizeof what, "%s %s after the step", g, t.entries[i].name);
      check_close(what, param_ptr(&t, i), r, t.entries[i].numel, ATOL_FWD, RTOL_FWD, WHY_FWD);
      free(r);
    }
  }
  tensor dcls = a.cls, dreg = a.reg;
  dcls.data = rdf("%s/dcls", g, 0, NULL);
  dreg.data = rdf("%s/dreg", g, 0, NULL);
  param_table_zero_grads(&t);
  zero_dfeats(&fs);
  bbox_head_backward(&m, &ctx, &a, &dcls, &dreg, fs.dfeats);
  // In eval mode the C ConvModule treats BN as a frozen affine (no weight/bias gradients);
  // PyTorch would still produce them, so they are not compared there.
  check_param_grads(g, &t, (!train && num_convs) ? ".bn." : NULL);
  check_dfeats(g, &fs, 1.0);

  // Zero RoIs.
  arena_reset(&ar);
  param_table_zero_grads(&t);
  bbox_head_acts a0;
  bbox_head_forward(&m, &ctx, fs.feats, 0, rois, &a0);
  tensor d0c = a0.cls, d0r = a0.reg;
  bbox_head_backward(&m, &ctx, &a0, &d0c, &d0r, NULL);
  int zero = a0.cls.shape[0] == 0 && a0.reg.shape[0] == 0;
  for (size_t i = 0; i < t.total; i++) zero &= t.grads[i] == 0.0f;
  snprintf(what, sizeof what, "%s zero RoIs: empty outputs, zero gradients", g);
  check_true(what, zero);

  free(dcls.data);
  free(dreg.data);
  free(rois);
  arena_free(&ar);
  free_feats(&fs);
  param_table_free(&t);
}

// ============================================================================ keys and init

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *key_lines(const param_table *t) {
  char **lines = mallocCheck((size_t)t->count * sizeof(char *));
  size_t total = 1;
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    char buf[320];
    int o = snprintf(buf, sizeof buf, "%s ", e->name);
    for (int d = 0; d < e->ndim; d++)
      o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%lld", d ? "," : "", (long long)e->shape[d]);
    lines[i] = strdup(buf);
    total += strlen(buf) + 1;
  }
  qsort(lines, (size_t)t->count, sizeof(char *), cmp_str);
  char *s = mallocCheck(total);
  s[0] = 0;
  for (int i = 0; i < t->count; i++) {
    strcat(s, lines[i]);
    strcat(s, "\n");
    free(lines[i]);
  }
  free(lines);
  return s;
}

static void test_full_keys(void) {
  for (int variant = 0; variant < 2; variant++) {
    float s_gdino[3] = {8, 16, 32}, s_r50[4] = {4, 8, 16, 32};
    int L = variant ? 4 : 3;
    const float *s = variant ? s_r50 : s_gdino;
    param_table t;
    param_table_init(&t);
    track_head th;
    track_head_cfg tc = track_head_default_cfg(L, s);
    track_head_register(&th, &t, "track_head", &tc);
    rpn_head rh;
    rpn_head_register(&rh, &t, "rpn_head", 256, 256, 3, 1);
    bbox_head bh;
    bbox_head_cfg bc =
        bbox_head_default_cfg(variant ? BBOX_HEAD_SHARED4CONV1FC : BBOX_HEAD_SHARED2FC, L, s);
    bbox_head_register(&bh, &t, "roi_head.bbox_head", &bc);
    char *mine = key_lines(&t);
    char *ref = NULL;
    const char *attr = variant ? "keys_s4c1fc" : "keys_s2fc";
    if (h5_read_attr_str(F, attr, &ref) != MASA_OK) {
      fprintf(stderr, "test_heads: %s\n", masa_errmsg());
      exit(1);
    }
    char what[160];
    snprintf(what, sizeof what, "official keys and shapes, full size (%s, %d keys)",
             variant ? "R50 Shared4Conv1FC" : "Shared2FC", t.count);
    int ok = strcmp(mine, ref) == 0;
    if (!ok) printf("C keys:\n%s\nreference keys:\n%s\n", mine, ref);
    check_true(what, ok);
    free(mine);
    free(ref);
    param_table_free(&t);
  }
}

static void stats(const float *p, int64_t n, double *mean, double *std, double *amax) {
  double s = 0, s2 = 0, m = 0;
  for (int64_t i = 0; i < n; i++) {
    s += p[i];
    s2 += (double)p[i] * p[i];
    if (fabs(p[i]) > m) m = fabs(p[i]);
  }
  *mean = s / n;
  *std = sqrt(s2 / n - *mean * *mean);
  *amax = m;
}

// Sample statistics of the official init on a reduced-size model: std within 5% (>= 4000
// samples each: the sample std's relative error is ~1/sqrt(2n) < 1.2%, so 5% is > 4 sigma).
static void check_std(const char *what, const param_table *t, int idx, double want_std,
                      double bound) {
  double mean, std, amax;
  stats(param_ptr(t, idx), t->entries[idx].numel, &mean, &std, &amax);
  char w[200];
  snprintf(w, sizeof w, "init %s: std %.4g (want %.4g)%s", what, std, want_std,
           bound > 0 ? ", within the uniform bound" : "");
  check_true(w, fabs(std / want_std - 1) < 0.05 && fabs(mean) < 0.1 * want_std + 1e-9 &&
                    (bound <= 0 || amax <= bound));
}

static void check_const(const char *what, const param_table *t, int idx, float v) {
  int ok = 1;
  for (int64_t i = 0; i < t->entries[idx].numel; i++) ok &= param_ptr(t, idx)[i] == v;
  char w[200];
  snprintf(w, sizeof w, "init %s == %g", what, (double)v);
  check_true(w, ok);
}

static void test_init(uint64_t seed) {
  float s[4] = {4, 8, 16, 32};
  param_table t;
  param_table_init(&t);
  track_head th;
  track_head_cfg tc = track_head_default_cfg(4, s);
  tc.in_channels = tc.conv_channels = 64;
  tc.fc_channels = 256;
  tc.embed_channels = 128;
  track_head_register(&th, &t, "track_head", &tc);
  rpn_head rh;
  rpn_head_register(&rh, &t, "rpn_head", 64, 64, 3, 1);
  bbox_head bh;
  bbox_head_cfg bc = bbox_head_default_cfg(BBOX_HEAD_SHARED4CONV1FC, 4, s);
  bc.in_channels = bc.conv_channels = 64;
  bc.fc_channels = 2048;
  bbox_head_register(&bh, &t, "roi_head.bbox_head", &bc);
  param_table_alloc(&t);
  track_head_init(&th, &t, seed);
  rpn_head_init(&rh, &t, seed);
  bbox_head_init(&bh, &t, seed);
  // ConvModule: Kaiming normal, fan_out = c_out * 9, gain sqrt(2).
  check_std("track convs.0.conv.weight (Kaiming fan_out)", &t, th.convs[0].w, sqrt(2.0 / (64 * 9)), 0);
  check_const("track convs.1.gn.weight", &t, th.convs[1].nw, 1.0f);
  check_const("track convs.1.gn.bias", &t, th.convs[1].nb, 0.0f);
  double xb = sqrt(6.0 / (64 * 49 + 256));
  check_std("track fcs.0.weight (Xavier uniform)", &t, th.fc_w[0], xb / sqrt(3.0), xb);
  check_const("track fcs.0.bias", &t, th.fc_b[0], 0.0f);
  check_std("track fc_embed.weight (Normal 0.01)", &t, th.embed_w, 0.01, 0);
  check_const("track fc_embed.bias", &t, th.embed_b, 0.0f);
  check_std("rpn_conv.weight (Normal 0.01)", &t, rh.conv_w, 0.01, 0);
  check_std("rpn_reg.weight (Normal 0.01)", &t, rh.reg_w, 0.01, 0);
  check_const("rpn_cls.bias", &t, rh.cls_b, 0.0f);
  check_std("bbox shared_convs.0.conv.weight (Kaiming)", &t, bh.convs[0].w, sqrt(2.0 / (64 * 9)), 0);
  check_const("bbox shared_convs.0.bn.running_var", &t, bh.convs[0].rv, 1.0f);
  double xb2 = sqrt(6.0 / (64 * 49 + 2048));
  check_std("bbox shared_fcs.0.weight (Xavier uniform)", &t, bh.fc_w[0], xb2 / sqrt(3.0), xb2);
  check_std("bbox fc_cls.weight (Normal 0.01)", &t, bh.cls_w, 0.01, 0);
  check_std("bbox fc_reg.weight (Normal 0.001)", &t, bh.reg_w, 0.001, 0);
  check_const("bbox fc_reg.bias", &t, bh.reg_b, 0.0f);
  param_table_free(&t);
}

// ============================================================================ geometry

static void test_anchors(void) {
  const char *tags[2] = {"s4", "s8"};
  for (int ti = 0; ti < 2; ti++) {
    float strides[5];
    int64_t hs[5], ws[5];
    char key[128];
    for (int l = 0; l < 5; l++) {
      snprintf(key, sizeof key, "anchors/%s/size%d", tags[ti], l);
      float *sz = rd(key, NULL);
      strides[l] = sz[0];
      hs[l] = (int64_t)sz[1];
      ws[l] = (int64_t)sz[2];
      free(sz);
    }
    anchor_generator g = anchor_generator_make(5, strides);
    int A = anchor_generator_num_base(&g);
    int base_ok = 1, grid_ok = 1;
    for (int l = 0; l < 5; l++) {
      float base[12];
      anchor_generator_base(&g, l, base);
      snprintf(key, sizeof key, "anchors/%s/base%d", tags[ti], l);
      float *rb = rd(key, NULL);
      base_ok &= memcmp(base, rb, sizeof base) == 0;
      free(rb);
      int64_t n = hs[l] * ws[l] * A;
      float *grid = mallocCheck((size_t)n * 4 * sizeof(float));
      anchor_generator_grid(&g, l, hs[l], ws[l], grid);
      snprintf(key, sizeof key, "anchors/%s/grid%d", tags[ti], l);
      int64_t nr;
      float *rg = rd(key, &nr);
      grid_ok &= nr == n * 4 && memcmp(grid, rg, (size_t)n * 4 * sizeof(float)) == 0;
      free(rg);
      free(grid);
    }
    char what[160];
    snprintf(what, sizeof what, "anchors strides %g..%g: base anchors bit-exact", strides[0],
             strides[4]);
    check_true(what, base_ok);
    snprintf(what, sizeof what, "anchors strides %g..%g: grids bit-exact (order y, x, a)",
             strides[0], strides[4]);
    check_true(what, grid_ok);
  }
}

static void test_coder(void) {
  int64_t n4;
  float *props = rd("coder/props", &n4), *gts = rd("coder/gts", NULL);
  float *deltas = rd("coder/deltas", NULL);
  int64_t n = n4 / 4;
  float *out = mallocCheck((size_t)n4 * sizeof(float));
  const char *tags[2] = {"rpn", "rcnn"};
  const float zeros[4] = {0, 0, 0, 0};
  char key[128], what[160];
  for (int ti = 0; ti < 2; ti++) {
    snprintf(key, sizeof key, "coder/%s/stds", tags[ti]);
    float *stds = rd(key, NULL);
    delta_xywh_coder c = delta_xywh_coder_make(zeros, stds);
    free(stds);
    delta_xywh_encode(&c, n, props, gts, out);
    snprintf(key, sizeof key, "coder/%s/enc", tags[ti]);
    float *r = rd(key, NULL);
    snprintf(what, sizeof what, "coder %s encode", tags[ti]);
    // Deltas are O(1..30): a few ulp of logf / division.
    check_close(what, out, r, n4, 1e-6, 1e-6, "logf / division ulp vs torch float32");
    free(r);
    delta_xywh_decode(&c, n, props, deltas, 600, 800, out);
    snprintf(key, sizeof key, "coder/%s/dec_clip", tags[ti]);
    r = rd(key, NULL);
    snprintf(what, sizeof what, "coder %s decode, clipped to 600x800", tags[ti]);
    check_close(what, out, r, n4, ATOL_BOX, RTOL_BOX, WHY_BOX);
    free(r);
    delta_xywh_decode(&c, n, props, deltas, 0, 0, out);
    snprintf(key, sizeof key, "coder %s decode, no clip (wh clamp at |log 0.016|)", tags[ti]);
    snprintf(what, sizeof what, "%s", key);
    snprintf(key, sizeof key, "coder/%s/dec_noclip", tags[ti]);
    r = rd(key, NULL);
    check_close(what, out, r, n4, ATOL_BOX, RTOL_BOX, WHY_BOX);
    free(r);
  }
  free(out);
  free(props);
  free(gts);
  free(deltas);
}

static void test_nms(void) {
  int count = (int)scalar("nms/count");
  char key[128], what[200];
  for (int ci = 0; ci < count; ci++) {
    int64_t n4, n, nk_ref;
    snprintf(key, sizeof key, "nms/c%d/boxes", ci);
    float *boxes = rd(key, &n4);
    n = n4 / 4;
    snprintf(key, sizeof key, "nms/c%d/scores", ci);
    float *scores = rd(key, NULL);
    snprintf(key, sizeof key, "nms/c%d/idxs", ci);
    int64_t *idxs = rdi(key, NULL);
    snprintf(key, sizeof key, "nms/c%d/keep", ci);
    int64_t *keep_ref = rdi(key, &nk_ref);
    snprintf(key, sizeof key, "nms/c%d/params", ci);
    float *p = rd(key, NULL);
    float thr = p[0];
    int agnostic = (int)p[1];
    int64_t split = (int64_t)p[2];
    free(p);
    int64_t *keep = mallocCheck((size_t)n * sizeof(int64_t));
    int64_t nk = batched_nms_cpu(n, boxes, scores, idxs, thr, agnostic, split, keep);
    int ok = nk == nk_ref && memcmp(keep, keep_ref, (size_t)nk * sizeof(int64_t)) == 0;
    snprintf(what, sizeof what, "nms c%d: %lld boxes, IoU %.2g, %s, split_thr %lld: %lld kept", ci,
             (long long)n, (double)thr, agnostic ? "class-agnostic" : "offset per group",
             (long long)split, (long long)nk_ref);
    check_true(what, ok);
    if (!ok) printf("    got %lld kept\n", (long long)nk);
    if (agnostic && split > n) {  // plain nms_cpu agrees
      int64_t nk2 = nms_cpu(n, boxes, scores, thr, keep);
      snprintf(what, sizeof what, "nms c%d: nms_cpu equals batched class-agnostic", ci);
      check_true(what, nk2 == nk_ref && memcmp(keep, keep_ref, (size_t)nk2 * sizeof(int64_t)) == 0);
    }
    free(keep);
    free(boxes);
    free(scores);
    free(idxs);
    free(keep_ref);
  }
  int64_t k1[1];
  check_true("nms of 0 boxes keeps 0", nms_cpu(0, NULL, NULL, 0.5f, k1) == 0 &&
                                            batched_nms_cpu(0, NULL, NULL, NULL, 0.5f, 0, 10, k1) == 0);
}

static void test_proposals(void) {
  int count = (int)scalar("prop/count");
  char key[128], what[200];
  for (int ci = 0; ci < count; ci++) {
    snprintf(key, sizeof key, "prop/c%d/cfg", ci);
    float *c = rd(key, NULL);
    int L = (int)c[0];
    int64_t b = (int64_t)c[2];
    float img_h = c[3], img_w = c[4];
    rpn_proposal_cfg pc = {.nms_pre = (int64_t)c[5], .max_per_img = (int64_t)c[6],
                           .iou_thr = c[7], .min_bbox_size = c[8], .split_thr = (int64_t)c[9]};
    float strides[8];
    for (int l = 0; l < L; l++) strides[l] = c[10 + l];
    free(c);
    tensor cls[8], reg[8];
    int64_t cap = 0;
    for (int l = 0; l < L; l++) {
      snprintf(key, sizeof key, "prop/c%d/cls/%d", ci, l);
      cls[l] = read_tensor(key);
      snprintf(key, sizeof key, "prop/c%d/reg/%d", ci, l);
      reg[l] = read_tensor(key);
      cap += cls[l].shape[1] * cls[l].shape[2] * cls[l].shape[3];
    }
    anchor_generator g = anchor_generator_make(L, strides);
    const float zeros[4] = {0, 0, 0, 0}, ones[4] = {1, 1, 1, 1};
    delta_xywh_coder coder = delta_xywh_coder_make(zeros, ones);
    float *boxes = mallocCheck((size_t)cap * 4 * sizeof(float));
    float *scores = mallocCheck((size_t)cap * sizeof(float));
    int64_t *src = mallocCheck((size_t)cap * sizeof(int64_t));
    int64_t np = rpn_proposals(&g, &coder, &pc, cls, reg, b, img_h, img_w, boxes, scores, src);
    snprintf(key, sizeof key, "prop/c%d/count", ci);
    int64_t nref = (int64_t)scalar(key);
    snprintf(what, sizeof what,
             "proposals c%d (nms_pre %lld, max %lld, min size %g, split %lld): %lld proposals", ci,
             (long long)pc.nms_pre, (long long)pc.max_per_img, (double)pc.min_bbox_size,
             (long long)pc.split_thr, (long long)nref);
    check_true(what, np == nref);
    if (np == nref && nref > 0) {
      snprintf(key, sizeof key, "prop/c%d/src", ci);
      int64_t *sref = rdi(key, NULL);
      snprintf(what, sizeof what, "proposals c%d: source anchors identical, same order", ci);
      check_true(what, memcmp(src, sref, (size_t)np * sizeof(int64_t)) == 0);
      free(sref);
      snprintf(key, sizeof key, "prop/c%d/boxes", ci);
      float *rb = rd(key, NULL);
      snprintf(what, sizeof what, "proposals c%d boxes", ci);
      check_close(what, boxes, rb, np * 4, ATOL_BOX, RTOL_BOX, WHY_BOX);
      free(rb);
      snprintf(key, sizeof key, "prop/c%d/scores", ci);
      float *rs = rd(key, NULL);
      snprintf(what, sizeof what, "proposals c%d scores", ci);
      check_close(what, scores, rs, np, ATOL_SCORE, RTOL_SCORE, WHY_SCORE);
      free(rs);
    } else {
      printf("    got %lld\n", (long long)np);
    }
    free(boxes);
    free(scores);
    free(src);
    for (int l = 0; l < L; l++) {
      tensor_free(&cls[l]);
      tensor_free(&reg[l]);
    }
  }
}

static void test_bbox_predict(void) {
  int count = (int)scalar("bpred/count");
  char key[128], what[200];
  const float zeros[4] = {0, 0, 0, 0}, stds[4] = {0.1f, 0.1f, 0.2f, 0.2f};
  delta_xywh_coder coder = delta_xywh_coder_make(zeros, stds);
  for (int ci = 0; ci < count; ci++) {
    snprintf(key, sizeof key, "bpred/c%d/cfg", ci);
    float *c = rd(key, NULL);
    int64_t k = (int64_t)c[0];
    int nc = (int)c[1];
    rcnn_test_cfg tc = rcnn_test_cfg_default();
    tc.class_agnostic = (int)c[2];
    tc.max_per_img = (int64_t)c[3];
    float img_h = c[4], img_w = c[5];
    free(c);
    snprintf(key, sizeof key, "bpred/c%d/rois", ci);
    float *rois = rd(key, NULL);
    snprintf(key, sizeof key, "bpred/c%d/cls", ci);
    float *cls = rd(key, NULL);
    snprintf(key, sizeof key, "bpred/c%d/reg", ci);
    float *reg = rd(key, NULL);
    int64_t cap = k * nc;
    float *boxes = mallocCheck((size_t)cap * 4 * sizeof(float));
    float *scores = mallocCheck((size_t)cap * sizeof(float));
    int64_t *labels = mallocCheck((size_t)cap * sizeof(int64_t));
    int64_t *src = mallocCheck((size_t)cap * sizeof(int64_t));
    int64_t nd = bbox_head_predict(nc, &coder, &tc, k, rois, cls, reg, img_h, img_w, boxes, scores,
                                   labels, src);
    snprintf(key, sizeof key, "bpred/c%d/count", ci);
    int64_t nref = (int64_t)scalar(key);
    snprintf(what, sizeof what, "detections c%d (%lld RoIs, %d classes, %s, max %lld): %lld", ci,
             (long long)k, nc, tc.class_agnostic ? "agnostic NMS" : "per-class NMS",
             (long long)tc.max_per_img, (long long)nref);
    check_true(what, nd == nref);
    if (nd == nref && nd > 0) {
      snprintf(key, sizeof key, "bpred/c%d/src", ci);
      int64_t *sref = rdi(key, NULL);
      snprintf(key, sizeof key, "bpred/c%d/labels", ci);
      int64_t *lref = rdi(key, NULL);
      snprintf(what, sizeof what, "detections c%d: RoI indices and labels identical", ci);
      check_true(what, memcmp(src, sref, (size_t)nd * sizeof(int64_t)) == 0 &&
                           memcmp(labels, lref, (size_t)nd * sizeof(int64_t)) == 0);
      free(sref);
      free(lref);
      snprintf(key, sizeof key, "bpred/c%d/boxes", ci);
      float *rb = rd(key, NULL);
      snprintf(what, sizeof what, "detections c%d boxes", ci);
      check_close(what, boxes, rb, nd * 4, ATOL_BOX, RTOL_BOX, WHY_BOX);
      free(rb);
      snprintf(key, sizeof key, "bpred/c%d/scores", ci);
      float *rs = rd(key, NULL);
      snprintf(what, sizeof what, "detections c%d scores", ci);
      check_close(what, scores, rs, nd, ATOL_SCORE, RTOL_SCORE, WHY_SCORE);
      free(rs);
    } else if (nd != nref) {
      printf("    got %lld\n", (long long)nd);
    }
    free(boxes);
    free(scores);
    free(labels);
    free(src);
    free(rois);
    free(cls);
    free(reg);
  }
  check_true("detections of 0 RoIs: 0",
             bbox_head_predict(1, &coder, &(rcnn_test_cfg){0.02f, 0.5f, 1, 50, 100000}, 0, NULL,
                               NULL, NULL, 100, 100, NULL, NULL, NULL, NULL) == 0);
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("test_heads", 20240612);
  F = oracle_open(argc > 1 ? argv[1] : NULL);
  test_full_keys();
  test_init(seed);
  test_track("track");
  test_track("track_b1");
  test_track_fd(seed);
  test_rpn();
  test_bbox("s2fc");
  test_bbox("s4c1fc_train");
  test_bbox("s4c1fc_eval");
  test_anchors();
  test_coder();
  test_nms();
  test_proposals();
  test_bbox_predict();
  h5_close(F);
  return test_end();
}
