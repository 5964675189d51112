// Box samplers (see sample.h). Index sets are built with a flag array over the box list, which
// gives torch.unique's deduplicated ascending order for free.
#include "train/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

enum { CALL_POS = 0, CALL_NEG = 1, CALL_IB_TOPUP = 2, CALL_IB_TRIM = 3, CALL_IB_GT = 16 };

rng_key sample_rng_key(uint64_t seed, sample_role role, int64_t step, int64_t image) {
  masa_assert(step >= 0 && step < (INT64_C(1) << 32));
  masa_assert(image >= 0 && image < (INT64_C(1) << 20));
  masa_assert((int)role > 0 && (int)role < 256);
  rng_key k = {seed, (UINT64_C(0xA) << 60) | ((uint64_t)role << 52) | ((uint64_t)step << 20) |
                         (uint64_t)image};
  return k;
}

sampler_cfg sampler_cfg_rpn(void) { return (sampler_cfg){256, 0.5, -1.0, 0, 0, 0}; }
sampler_cfg sampler_cfg_rcnn(void) { return (sampler_cfg){512, 0.25, -1.0, 1, 0, 0}; }
sampler_cfg sampler_cfg_track(void) { return (sampler_cfg){512, 0.5, 3.0, 1, 1, 0}; }

void sample_random_choice(int64_t *gallery, int64_t n, int64_t k, rng_key key, uint64_t call) {
  masa_assert(k >= 0 && k <= n && n < (INT64_C(1) << 32) && call < (UINT64_C(1) << 24));
  for (int64_t t = 0; t < k; t++) {
    uint64_t idx = (call << 40) | (uint64_t)t;
    int64_t s = t + (int64_t)rng_below(key.seed, key.stream, idx, (uint32_t)(n - t));
    int64_t tmp = gallery[t];
    gallery[t] = gallery[s];
    gallery[s] = tmp;
  }
}

// InstanceBalancedPosSampler._sample_pos on nc > E candidates (ascending); marks the chosen
// boxes in flag.
static void instance_balanced_pos(const sampler_cfg *cfg, const int64_t *gt_inds,
                                  const int64_t *cand, int64_t nc, int64_t E, int64_t num_gts,
                                  rng_key key, unsigned char *flag) {
  // Candidates grouped by GT, each group ascending (a counting sort keeps the order).
  int64_t *count = callocCheck((size_t)num_gts + 1, sizeof(int64_t));
  for (int64_t t = 0; t < nc; t++) count[gt_inds[cand[t]] - 1 + 1]++;
  int64_t groups = 0;
  for (int64_t i = 0; i < num_gts; i++) groups += count[i + 1] > 0;
  for (int64_t i = 0; i < num_gts; i++) count[i + 1] += count[i];
  int64_t *by_gt = mallocCheck((size_t)nc * sizeof(int64_t));
  int64_t *fill = mallocCheck((size_t)(num_gts + 1) * sizeof(int64_t));
  memcpy(fill, count, (size_t)(num_gts + 1) * sizeof(int64_t));
  for (int64_t t = 0; t < nc; t++) by_gt[fill[gt_inds[cand[t]] - 1]++] = cand[t];
  free(fill);

  // Python's round(E / float(G')) rounds half to even, as rint does in the default mode.
  int64_t q = (int64_t)rint((double)E / (double)groups) + 1;
  int64_t *sampled = mallocCheck((size_t)nc * sizeof(int64_t));
  int64_t ns = 0;
  for (int64_t i = 0; i < num_gts; i++) {
    int64_t *grp = by_gt + count[i], len = count[i + 1] - count[i];
    if (len == 0) continue;
    int64_t take = len;
    if (len > q) {
      sample_random_choice(grp, len, q, key, CALL_IB_GT + (uint64_t)i);
      take = q;
    }
    memcpy(sampled + ns, grp, (size_t)take * sizeof(int64_t));
    ns += take;
  }
  free(by_gt);
  free(count);

  if (ns < E) {
    for (int64_t t = 0; t < ns; t++) flag[sampled[t]] = 1;
    int64_t extra = E - ns;
    // The pool the extras come from: every candidate (mmdet as run) or the unsampled ones.
    int64_t *pool = mallocCheck((size_t)nc * sizeof(int64_t));
    int64_t np = 0;
    for (int64_t t = 0; t < nc; t++)
      if (!cfg->ib_topup_excludes_sampled || !flag[cand[t]]) pool[np++] = cand[t];
    if (np > extra) sample_random_choice(pool, np, extra, key, CALL_IB_TOPUP);
    else extra = np;
    for (int64_t t = 0; t < extra; t++) flag[pool[t]] = 1;
    free(pool);
  } else {
    if (ns > E) sample_random_choice(sampled, ns, E, key, CALL_IB_TRIM), ns = E;
    for (int64_t t = 0; t < ns; t++) flag[sampled[t]] = 1;
  }
  free(sampled);
}

void sample_boxes(const sampler_cfg *cfg, assign_result *assign, rng_key key, sample_result *out) {
  if (cfg->add_gt_as_proposals) assign_result_add_gt(assign);
  const int64_t n = assign->num_boxes;
  const int64_t *gi = assign->gt_inds;
  memset(out, 0, sizeof *out);
  out->num_gt_prepended = assign->num_gt_prepended;

  unsigned char *flag = callocCheck((size_t)n + 1, 1);
  int64_t *cand = mallocCheck((size_t)(n + 1) * sizeof(int64_t));
  const int64_t E = (int64_t)((double)cfg->num * cfg->pos_fraction);

  int64_t nc = 0;
  for (int64_t j = 0; j < n; j++)
    if (gi[j] > 0) cand[nc++] = j;
  if (nc <= E) {
    for (int64_t t = 0; t < nc; t++) flag[cand[t]] = 1;
  } else if (cfg->instance_balanced) {
    instance_balanced_pos(cfg, gi, cand, nc, E, assign->num_gts, key, flag);
  } else {
    sample_random_choice(cand, nc, E, key, CALL_POS);
    for (int64_t t = 0; t < E; t++) flag[cand[t]] = 1;
  }
  int64_t P = 0;
  for (int64_t j = 0; j < n; j++) P += flag[j];
  out->num_pos = P;
  out->pos_inds = mallocCheck((size_t)(P + 1) * sizeof(int64_t));
  out->pos_gt = mallocCheck((size_t)(P + 1) * sizeof(int64_t));
  for (int64_t j = 0, t = 0; j < n; j++)
    if (flag[j]) out->pos_inds[t] = j, out->pos_gt[t] = gi[j] - 1, t++;

  int64_t En = cfg->num - P;
  if (cfg->neg_pos_ub >= 0) {
    int64_t ub = (int64_t)(cfg->neg_pos_ub * (double)(P > 1 ? P : 1));
    if (En > ub) En = ub;
  }
  if (En < 0) En = 0;
  nc = 0;
  for (int64_t j = 0; j < n; j++)
    if (gi[j] == 0) cand[nc++] = j;
  memset(flag, 0, (size_t)n + 1);
  if (nc > En) {
    sample_random_choice(cand, nc, En, key, CALL_NEG);
    nc = En;
  }
  for (int64_t t = 0; t < nc; t++) flag[cand[t]] = 1;
  out->num_neg = nc;
  out->neg_inds = mallocCheck((size_t)(nc + 1) * sizeof(int64_t));
  for (int64_t j = 0, t = 0; j < n; j++)
    if (flag[j]) out->neg_inds[t++] = j;
  free(cand);
  free(flag);
}

void sample_result_free(sample_result *s) {
  free(s->pos_inds);
  free(s->neg_inds);
  free(s->pos_gt);
  memset(s, 0, sizeof *s);
}

double sample_avg_factor(const sample_result *s) {
  return (double)(s->num_pos > 1 ? s->num_pos : 1) + (double)(s->num_neg > 1 ? s->num_neg : 1);
}

void sample_gather_boxes(const sample_result *s, const float *gts, const float *boxes,
                         int64_t n, const int64_t *inds, float *out) {
  const int64_t g = s->num_gt_prepended;
  for (int64_t t = 0; t < n; t++) {
    int64_t k = inds[t];
    const float *src = k < g ? gts + 4 * k : boxes + 4 * (k - g);
    memcpy(out + 4 * t, src, 4 * sizeof(float));
  }
}
