// Device parity of the training ops: optim_step (gradient norm, non-finite guard, clipping, SGD /
// AdamW updates) on a param table moved to the guard device, and the tracking losses' device
// entry points (train/dispatch_train.h) on guard memory, against the same on the cpu device.
// The guard device computes with the CPU twins, so everything must be bit-identical; a crash
// naming guard memory means host code touched device memory.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "guard_util.h"
#include "harness.h"
#include "train/dispatch_train.h"
#include "train/losses.h"
#include "train/optim.h"

// A frozen entry in the middle (its storage comes after the trainable prefix, so it splits the
// decay runs in table order) and one entry spanning two gradient-norm blocks.
static const struct {
  const char *name;
  int ndim;
  int64_t shape[4];
  int trainable;
} ENTRIES[] = {
    {"blk.conv.weight", 4, {4, 3, 3, 3}, 1}, {"blk.conv.bias", 1, {4}, 1},
    {"frozen.bn.running_mean", 1, {4}, 0},   {"blk.gn.weight", 1, {4}, 1},
    {"blk.gn.bias", 1, {4}, 1},              {"head.fc.weight", 2, {70, 1001}, 1},
    {"head.fc.bias", 1, {70}, 1},            {"head.fc2.weight", 2, {3, 7}, 1},
};
#define NENT ((int)(sizeof ENTRIES / sizeof ENTRIES[0]))

static void make_table(param_table *t, uint64_t seed) {
  param_table_init(t);
  for (int i = 0; i < NENT; i++)
    param_table_add(t, ENTRIES[i].name, ENTRIES[i].ndim, ENTRIES[i].shape, ENTRIES[i].trainable);
  param_table_alloc(t);
  rng_fill_uniform(t->params, (int64_t)t->total, -1.0f, 1.0f, seed, 1);
}

// Compares every role of the guard table g with the cpu table c, bitwise.
static void check_roles(const char *what, const param_table *g, const param_table *c) {
  char name[200];
  snprintf(name, sizeof name, "%s: params", what);
  guard_check_same(name, &g->dev, g->params, c->params, (int64_t)c->total);
  snprintf(name, sizeof name, "%s: grads (clipped)", what);
  guard_check_same(name, &g->dev, g->grads, c->grads, (int64_t)c->total);
  snprintf(name, sizeof name, "%s: moment1", what);
  guard_check_same(name, &g->dev, g->moment1, c->moment1, (int64_t)c->trainable_total);
  if (c->moment2) {
    snprintf(name, sizeof name, "%s: moment2", what);
    guard_check_same(name, &g->dev, g->moment2, c->moment2, (int64_t)c->trainable_total);
  }
}

static void test_optim_case(optim_kind kind, int no_decay, uint64_t seed) {
  param_table c, g;
  make_table(&c, seed);
  make_table(&g, seed);
  param_table_to_device(&g, &guard_dev);
  const int64_t ntr = (int64_t)c.trainable_total;
  // clip_max_norm 2: the random gradients below have norms ~ 50, so every step clips.
  optim_opts o = {kind, 0.05, 0.9, 0.9, 0.999, 1e-8, 1e-2, no_decay, 2.0, 5};
  optim oc, og;
  optim_init(&oc, &o, &c);
  optim_init(&og, &o, &g);
  float *grads = mallocCheck((size_t)ntr * sizeof(float));
  char what[160];
  const char *kname = optim_kind_name(kind);
  for (int s = 0; s < 3; s++) {
    rng_fill_normal(grads, ntr, 0.0f, 0.2f, seed, 10 + (uint64_t)s);
    memcpy(c.grads, grads, (size_t)ntr * sizeof(float));
    dev_upload(&g.dev, g.grads, grads, (size_t)ntr * sizeof(float));
    double lr = 0.05 * (1.0 + s);
    optim_step_info ic, ig;
    int rc = optim_step(&oc, &c, lr, 1.0, &ic), rg = optim_step(&og, &g, lr, 1.0, &ig);
    snprintf(what, sizeof what, "%s no_decay=%d step %d: same norm, clip coefficient (< 1), counters",
             kname, no_decay, s);
    check_true(what, rc == MASA_OK && rg == MASA_OK && !ic.skipped && !ig.skipped &&
                         memcmp(&ic.grad_norm, &ig.grad_norm, sizeof(double)) == 0 &&
                         ic.clip_coef == ig.clip_coef && ic.clip_coef < 1.0 &&
                         oc.steps == og.steps && oc.steps == s + 1);
    snprintf(what, sizeof what, "%s no_decay=%d step %d", kname, no_decay, s);
    check_roles(what, &g, &c);
  }
  // A non-finite gradient on the device: the step is skipped and nothing moves.
  grads[5] = NAN;
  memcpy(c.grads, grads, (size_t)ntr * sizeof(float));
  dev_upload(&g.dev, g.grads, grads, (size_t)ntr * sizeof(float));
  optim_step_info ic, ig;
  int rc = optim_step(&oc, &c, 0.1, 1.0, &ic), rg = optim_step(&og, &g, 0.1, 1.0, &ig);
  snprintf(what, sizeof what, "%s no_decay=%d: NaN gradient on the device skips the step", kname,
           no_decay);
  check_true(what, rc == MASA_OK && rg == MASA_OK && ic.skipped && ig.skipped && isnan(ig.grad_norm) &&
                       og.steps == 3 && og.skipped_total == 1);
  snprintf(what, sizeof what, "%s no_decay=%d after the skipped step", kname, no_decay);
  check_roles(what, &g, &c);
  free(grads);
  optim_free(&oc), optim_free(&og);
  param_table_free(&c), param_table_free(&g);
}

// Host array uploaded to fresh guard memory.
static float *to_guard(const float *h, int64_t n) {
  float *p = dev_alloc(&guard_dev, (size_t)(n ? n : 1) * sizeof(float));
  dev_upload(&guard_dev, p, h, (size_t)n * sizeof(float));
  return p;
}

// One loss configuration: which 0 contrast, 1 margin. Gradients start from random values
// (accumulate semantics); with_grads 0 passes NULL.
static void test_loss_case(int which, int64_t nk, int64_t nr, int64_t d, const margin_l2_cfg *mc,
                           int with_grads, const char *label, uint64_t seed) {
  float *key = mallocCheck((size_t)(nk * d) * sizeof(float));
  float *ref = mallocCheck((size_t)(nr * d) * sizeof(float));
  float *target = callocCheck((size_t)(nk * nr + 1), sizeof(float));
  float *dk = mallocCheck((size_t)(nk * d) * sizeof(float));
  float *dr = mallocCheck((size_t)(nr * d) * sizeof(float));
  rng_fill_uniform(key, nk * d, -0.5f, 0.5f, seed, 30);
  rng_fill_uniform(ref, nr * d, -0.5f, 0.5f, seed, 31);
  rng_fill_uniform(dk, nk * d, -0.1f, 0.1f, seed, 32);
  rng_fill_uniform(dr, nr * d, -0.1f, 0.1f, seed, 33);
  // Key i matches ref i and ref i + nk (two positives); the last key row has none (dropped by
  // the contrastive loss).
  for (int64_t i = 0; i + 1 < nk; i++) {
    if (i < nr) target[i * nr + i] = 1.0f;
    if (i + nk < nr) target[i * nr + i + nk] = 1.0f;
  }
  float *gkey = to_guard(key, nk * d), *gref = to_guard(ref, nr * d);
  float *gdk = to_guard(dk, nk * d), *gdr = to_guard(dr, nr * d);
  double lc, lg;
  if (which == 0) {
    lc = unbiased_contrast_loss(nk, nr, d, key, ref, target, 0.7f, with_grads ? dk : NULL,
                                with_grads ? dr : NULL);
    lg = unbiased_contrast_loss_dev(&guard_dev, nk, nr, d, gkey, gref, target, 0.7f,
                                    with_grads ? gdk : NULL, with_grads ? gdr : NULL);
  } else {
    lc = margin_l2_loss(nk, nr, d, key, ref, target, mc, 0.7f, with_grads ? dk : NULL,
                        with_grads ? dr : NULL);
    lg = margin_l2_loss_dev(&guard_dev, nk, nr, d, gkey, gref, target, mc, 0.7f,
                            with_grads ? gdk : NULL, with_grads ? gdr : NULL);
  }
  char what[160];
  snprintf(what, sizeof what, "%s: loss bit-identical (%.9g)", label, lc);
  check_true(what, memcmp(&lc, &lg, sizeof lc) == 0 && isfinite(lc));
  snprintf(what, sizeof what, "%s: dkey", label);
  guard_check_same(what, &guard_dev, gdk, dk, nk * d);
  snprintf(what, sizeof what, "%s: dref", label);
  guard_check_same(what, &guard_dev, gdr, dr, nr * d);
  dev_free(&guard_dev, gkey), dev_free(&guard_dev, gref);
  dev_free(&guard_dev, gdk), dev_free(&guard_dev, gdr);
  free(key), free(ref), free(target), free(dk), free(dr);
}

int main(void) {
  uint64_t seed = test_begin("guard_train_ops", 20240601);
  size_t guard_before = dev_guard_bytes();
  for (int no_decay = 0; no_decay < 2; no_decay++) {
    test_optim_case(OPTIM_SGD, no_decay, seed);
    test_optim_case(OPTIM_ADAMW, no_decay, seed);
  }
  margin_l2_cfg hard = {0.0f, 0.1f, 3.0f, 1, seed, 7};  // the recipe's (configs/*.cfg)
  margin_l2_cfg rand_sel = {0.0f, 0.1f, 3.0f, 0, seed, 7};
  margin_l2_cfg no_mining = {0.2f, 0.1f, 0.0f, 1, seed, 7};
  test_loss_case(0, 6, 23, 32, NULL, 1, "unbiased_contrast 6x23 d32", seed);
  test_loss_case(0, 1, 5, 8, NULL, 1, "unbiased_contrast 1x5 d8 (no positives: loss 0)", seed);
  test_loss_case(0, 9, 40, 16, NULL, 0, "unbiased_contrast 9x40 d16 no grads", seed);
  test_loss_case(1, 6, 23, 32, &hard, 1, "margin_l2 6x23 d32 hard mining", seed);
  test_loss_case(1, 6, 23, 32, &rand_sel, 1, "margin_l2 6x23 d32 random negatives", seed);
  test_loss_case(1, 4, 7, 8, &no_mining, 1, "margin_l2 4x7 d8 no mining, pos margin", seed);
  test_loss_case(1, 9, 40, 16, &hard, 0, "margin_l2 9x40 d16 no grads", seed);
  check_true("guard memory freed (no leaks)", dev_guard_bytes() == guard_before);
  return test_end();
}
