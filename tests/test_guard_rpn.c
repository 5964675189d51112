// Device parity of the RPN proposals: rpn_proposals_dev on maps uploaded to the guard device
// (only image b's slices come back to the host) and on the cpu device must equal rpn_proposals on
// the host maps bit for bit (count, boxes, scores, source anchors), for the train and test
// configs, batched NMS's split branch, no clipping with the size filter off and NaN logits, and
// every image of the batch. Output slots past the count must stay untouched.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/device.h"
#include "core/rng.h"
#include "guard_util.h"
#include "harness.h"
#include "model/rpn.h"

typedef struct {
  const char *name;
  int L;
  int64_t n;
  int64_t hs[5], ws[5];
  float img_h, img_w;
  rpn_proposal_cfg cfg;
  int ties, nans;
} rpn_case;

#define I64_SENTINEL ((int64_t)-4242)

// Outputs of one call, with sentinels after cap slots.
typedef struct {
  int64_t n;
  float *box, *score;
  int64_t *src;
} props;

static props props_alloc(int64_t cap) {
  props p = {0, test_alloc_guarded(4 * cap, 16), test_alloc_guarded(cap, 16),
             mallocCheck((size_t)(cap + 16) * sizeof(int64_t))};
  for (int64_t i = 0; i < cap + 16; i++) p.score[i] = TEST_SENTINEL, p.src[i] = I64_SENTINEL;
  for (int64_t i = 0; i < 4 * cap + 16; i++) p.box[i] = TEST_SENTINEL;
  return p;
}

static void props_free(props *p) { free(p->box), free(p->score), free(p->src); }

// Bitwise equality with the reference, and nothing written past got's count.
static void check_same(const char *what, const props *got, const props *ref, int64_t cap) {
  char w[256];
  snprintf(w, sizeof w, "%s: count %lld", what, (long long)ref->n);
  check_true(w, got->n == ref->n);
  int64_t n = got->n < ref->n ? got->n : ref->n;
  snprintf(w, sizeof w, "%s: boxes, scores, sources bit-identical", what);
  check_true(w, !memcmp(got->box, ref->box, (size_t)n * 4 * sizeof(float)) &&
                    !memcmp(got->score, ref->score, (size_t)n * sizeof(float)) &&
                    !memcmp(got->src, ref->src, (size_t)n * sizeof(int64_t)));
  int untouched = 1;
  for (int64_t i = 4 * got->n; i < 4 * cap + 16; i++)
    untouched &= !memcmp(&got->box[i], &(float){TEST_SENTINEL}, sizeof(float));
  for (int64_t i = got->n; i < cap + 16; i++)
    untouched &= !memcmp(&got->score[i], &(float){TEST_SENTINEL}, sizeof(float)) &&
                 got->src[i] == I64_SENTINEL;
  snprintf(w, sizeof w, "%s: slots past the count untouched", what);
  check_true(w, untouched);
}

static void run_case(const rpn_case *c, uint64_t seed) {
  static const float strides[5] = {4, 8, 16, 32, 64};
  anchor_generator g = anchor_generator_make(c->L, strides);
  int na = anchor_generator_num_base(&g);
  delta_xywh_coder coder = delta_xywh_coder_make((float[]){0, 0, 0, 0}, (float[]){1, 1, 1, 1});
  arena ar;
  arena_init_on(&ar, 0, &guard_dev);
  tensor hc[5], hr[5], gc[5], gr[5];
  int64_t cap = 0;
  for (int l = 0; l < c->L; l++) {
    int64_t h = c->hs[l], w = c->ws[l], nc = c->n * na * h * w;
    hc[l] = tensor_alloc4(c->n, na, h, w);
    hr[l] = tensor_alloc4(c->n, 4 * na, h, w);
    rng_fill_normal(hc[l].data, nc, -1.0f, 2.5f, seed, 30 + (uint64_t)l);
    rng_fill_normal(hr[l].data, 4 * nc, 0.0f, 0.4f, seed, 50 + (uint64_t)l);
    // Exact score ties (stable top-k and NMS order) and deltas beyond the wh clamp.
    if (c->ties && l % 2 == 0)
      for (int64_t i = 0; i < nc; i++) hc[l].data[i] = roundf(hc[l].data[i] * 2.0f) * 0.5f;
    for (int64_t i = 0; i < 4 * nc; i += 97) hr[l].data[i] = (i / 97) % 2 ? 9.0f : -9.0f;
    if (c->nans)
      for (int64_t i = 5; i < nc; i += 211) hc[l].data[i] = NAN;
    gc[l] = guard_put(&ar, &hc[l]);
    gr[l] = guard_put(&ar, &hr[l]);
    int64_t cnt = na * h * w;
    cap += c->cfg.nms_pre > 0 && c->cfg.nms_pre < cnt ? c->cfg.nms_pre : cnt;
  }
  if (c->cfg.max_per_img > 0 && c->cfg.max_per_img < cap) cap = c->cfg.max_per_img;
  for (int64_t b = 0; b < c->n; b++) {
    props ref = props_alloc(cap), onc = props_alloc(cap), ong = props_alloc(cap);
    ref.n = rpn_proposals(&g, &coder, &c->cfg, hc, hr, b, c->img_h, c->img_w, ref.box, ref.score,
                          ref.src);
    onc.n = rpn_proposals_dev(&dev_cpu, &g, &coder, &c->cfg, hc, hr, b, c->img_h, c->img_w,
                              onc.box, onc.score, onc.src);
    ong.n = rpn_proposals_dev(&guard_dev, &g, &coder, &c->cfg, gc, gr, b, c->img_h, c->img_w,
                              ong.box, ong.score, ong.src);
    char what[160];
    snprintf(what, sizeof what, "%s b=%lld cpu device", c->name, (long long)b);
    check_same(what, &onc, &ref, cap);
    snprintf(what, sizeof what, "%s b=%lld guard device", c->name, (long long)b);
    check_same(what, &ong, &ref, cap);
    check_true("  (a non-trivial case: some proposals)", ref.n > 0);
    // src == NULL is allowed.
    ong.n = rpn_proposals_dev(&guard_dev, &g, &coder, &c->cfg, gc, gr, b, c->img_h, c->img_w,
                              ong.box, ong.score, NULL);
    snprintf(what, sizeof what, "%s b=%lld guard device, no src: same count", c->name,
             (long long)b);
    check_true(what, ong.n == ref.n);
    props_free(&ref), props_free(&onc), props_free(&ong);
  }
  for (int l = 0; l < c->L; l++) tensor_free(&hc[l]), tensor_free(&hr[l]);
  arena_free(&ar);
}

int main(void) {
  uint64_t seed = test_begin("guard_rpn", 9301);
  rpn_proposal_cfg test = rpn_proposal_cfg_test(), train = rpn_proposal_cfg_train();
  rpn_proposal_cfg small = test, split = train, loose = test;
  small.nms_pre = 60, small.max_per_img = 25;
  split.nms_pre = 400, split.split_thr = 1000;  // ~1700 candidates: the per-level branch
  loose.min_bbox_size = -1.0f, loose.max_per_img = 0, loose.nms_pre = 300;
  // 5 levels of a 120x152 input: level 0 has 3420 anchors (cut by both configs), level 1 855.
  const rpn_case cases[] = {
      {"tiny 1 level", 1, 2, {3}, {5}, 10.0f, 18.0f, test, 0, 0},
      {"5 levels test", 5, 3, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3}, 118.0f, 150.0f, test, 0, 0},
      {"5 levels train", 5, 3, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3}, 120.0f, 152.0f, train, 1,
       0},
      {"5 levels cut 60 max 25 ties", 5, 2, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3}, 118.0f,
       150.0f, small, 1, 0},
      {"5 levels split branch", 5, 2, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3}, 118.0f, 150.0f,
       split, 0, 0},
      {"5 levels no clip, no size filter, NaN", 5, 2, {30, 15, 8, 4, 2}, {38, 19, 10, 5, 3}, 0.0f,
       0.0f, loose, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], seed);
  check_true("no guard memory leaked", dev_guard_bytes() == 0);
  return test_end();
}
